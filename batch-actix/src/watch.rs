//! Direct requests watched for the change they make, with sockets on: the payload
//! the App reads and the body it answers pass through the endpoint's [`Watch`].

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_http::Request as ActixRequest;
use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceResponse};
use batch_core::Watch;
use bytes::Bytes;
use futures::TryStreamExt;
use http::{HeaderMap, StatusCode};

use crate::convert;

/// The body of an answer [`BatchAppService`](crate::BatchAppService) passes on: the
/// App's own, or, for a watched request, the App's own watched as it is written.
pub type ResponseBody<B> = EitherBody<B, WatchedBody>;

/// An answer's body, watched as it is written for the change the request made.
pub struct WatchedBody {
    body: BoxBody,
    watch: Rc<Watch>,
}

impl MessageBody for WatchedBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let next = Pin::new(&mut this.body).poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(data))) => this.watch.response_data(data),
            Poll::Ready(None) => this.watch.response_end(),
            _ => {}
        }
        next
    }
}

/// Watches `request`'s payload as the App reads it; the watch goes on to
/// [`answer`].
pub(crate) fn request(request: &mut ActixRequest, watch: Watch) -> Rc<Watch> {
    let watch = Rc::new(watch);
    let payload = request.take_payload();
    if !matches!(payload, Payload::None) {
        let seen = Rc::clone(&watch);
        let watched = payload.inspect_ok(move |data| seen.request_data(data));
        *request.payload() = Payload::Stream {
            payload: Box::pin(watched),
        };
    }
    watch
}

/// The App's answer to a watched request, passed on with its body watched when the
/// event needs it; without a body to wait for, the answer ends here.
pub(crate) fn answer<B>(
    response: ServiceResponse<B>,
    watch: Rc<Watch>,
) -> ServiceResponse<ResponseBody<B>>
where
    B: MessageBody + 'static,
{
    let status = StatusCode::from_u16(response.status().as_u16())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = convert::to_http_headers(response.headers()).unwrap_or_else(|_| HeaderMap::new());
    watch.response_head(status, &headers);
    // actix writes no body of these, and never polls it.
    let bodiless = matches!(
        response.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    );
    if !watch.needs_response_body() || bodiless {
        watch.response_end();
        return response.map_body(|_, body| EitherBody::left(body));
    }
    response.map_body(|_, body| {
        EitherBody::right(WatchedBody {
            body: body.boxed(),
            watch,
        })
    })
}
