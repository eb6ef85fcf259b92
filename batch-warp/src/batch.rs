//! The batch route: requests for the batch path, answered by the endpoint.

use batch_core::BatchEndpoint;
use http::Request;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::request::{into_body, parts};
use crate::{Ops, matching, task};

/// Answers every request for the batch path ([`Config::is_batch_path`]); ops run
/// through `executor`, on a task of the batch's own.
///
/// [`Config::is_batch_path`]: batch_core::Config::is_batch_path
pub(crate) fn filter(
    endpoint: BatchEndpoint,
    executor: Ops,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let matcher = endpoint.clone();
    matching(move |_, path| matcher.config().is_batch_path(path))
        .and(parts())
        .and(warp::body::stream())
        .then(move |parts, body| {
            let (endpoint, executor) = (endpoint.clone(), executor.clone());
            let request = Request::from_parts(parts, into_body(body));
            let batch = task::spawn(async move { endpoint.handle(&executor, request).await });
            async move {
                match batch.await {
                    Ok(response) => response.into_response(),
                    Err(err) => task::failed(&err).into_response(),
                }
            }
        })
}
