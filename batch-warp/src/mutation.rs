//! Direct mutations with sockets on: a `POST`, `PATCH`, `PUT` or `DELETE` whose
//! change subscribers must hear of is dispatched through the filter tree from here,
//! so that its body and its answer can be watched as they stream past.

use batch_core::{BatchEndpoint, BatchLayer, RequestBody};
use http::{Request, Uri};
use http_body_util::BodyDataStream;
use tower::{Layer, ServiceExt};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::request::{Body, into_body, parts};
use crate::{Routes, matching, task};

/// Answers the requests [`BatchEndpoint::watch`] watches by dispatching them
/// through `routes`, watched by [`BatchLayer`]; every other request is "not found",
/// for the routes to answer as before.
pub(crate) fn filter(
    endpoint: BatchEndpoint,
    routes: Routes<RequestBody<Body>>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let watched = BatchLayer::from_endpoint(endpoint.clone()).layer(routes);
    matching(move |method, path| {
        // Only with sockets on: every other request goes straight to the routes.
        endpoint.config().sockets().is_some()
            && path.parse::<Uri>().is_ok_and(|uri| {
                let (mut head, ()) = Request::new(()).into_parts();
                head.method = method.clone();
                head.uri = uri;
                endpoint.watch(&head).is_some()
            })
    })
    .and(parts())
    .and(warp::body::stream())
    .then(move |parts, body| {
        let request = Request::from_parts(parts, into_body(body));
        let answer = task::spawn(watched.clone().oneshot(request));
        async move {
            match answer.await {
                Ok(Ok(response)) => {
                    let (head, body) = response.into_parts();
                    let mut response =
                        warp::reply::stream(BodyDataStream::new(body)).into_response();
                    *response.status_mut() = head.status;
                    *response.headers_mut() = head.headers;
                    response
                }
                Ok(Err(never)) => match never {},
                Err(err) => task::failed(&err).into_response(),
            }
        }
    })
}
