//! Running one op through the worker's own app service.

use std::net::SocketAddr;
use std::rc::Rc;

use actix_http::Request as ActixRequest;
use actix_web::body::{BodyLimitExceeded, BodySize, BoxBody, MessageBody, to_bytes_limited};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{Error, HttpResponse};
use batch_core::{ExecuteError, Executor};
use bytes::Bytes;
use futures::future::LocalBoxFuture;

use crate::convert::{self, RequestHeaders, ResponseHeaders};

type Dispatch = dyn Fn(ActixRequest) -> LocalBoxFuture<'static, Result<ServiceResponse, Error>>;

/// Hands a request to the app service of the worker that built it.
///
/// [`BatchAppService`](crate::BatchAppService) gives a clone to each outer batch
/// request through its extensions; actix clears those when it pools the finished
/// request, so no clone outlives the batch.
#[derive(Clone)]
pub(crate) struct Dispatcher(Rc<Dispatch>);

impl Dispatcher {
    pub(crate) fn new<S, B>(app: Rc<S>) -> Self
    where
        S: Service<ActixRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
        S::Future: 'static,
        B: MessageBody + 'static,
    {
        Self(Rc::new(move |request| {
            let response = app.call(request);
            Box::pin(async move { response.await.map(ServiceResponse::map_into_boxed_body) })
        }))
    }

    fn dispatch(
        &self,
        request: ActixRequest,
    ) -> LocalBoxFuture<'static, Result<ServiceResponse, Error>> {
        (self.0)(request)
    }
}

/// The [`Executor`] of one batch: every op becomes a fresh `actix_http::Request`
/// sent through the whole App (middleware, routing, `app_data`, extractors).
pub(crate) struct ActixExecutor {
    dispatcher: Option<Dispatcher>,
    peer_addr: Option<SocketAddr>,
    requests: RequestHeaders,
    responses: ResponseHeaders,
}

impl ActixExecutor {
    /// `dispatcher` is `None` for a batch that arrived as an op of another batch: the
    /// engine refuses such a batch before running anything.
    pub(crate) fn new(dispatcher: Option<Dispatcher>, peer_addr: Option<SocketAddr>) -> Self {
        Self {
            dispatcher,
            peer_addr,
            requests: RequestHeaders::default(),
            responses: ResponseHeaders::default(),
        }
    }
}

impl Executor for ActixExecutor {
    async fn execute(
        &self,
        request: http::Request<Bytes>,
        max_response_body: usize,
    ) -> Result<http::Response<Bytes>, ExecuteError> {
        let failed = |err: convert::ConvertError| ExecuteError::Failed(Box::new(err));
        let Some(dispatcher) = &self.dispatcher else {
            return Err(ExecuteError::Failed(
                "a nested batch has no app to run its operations on".into(),
            ));
        };
        let request =
            convert::to_actix_request(request, self.peer_addr, &self.requests).map_err(failed)?;
        let response = match dispatcher.dispatch(request).await {
            Ok(response) => response.into_parts().1,
            // What actix's HTTP dispatcher would send the client for this error.
            Err(err) => HttpResponse::from_error(err),
        };
        let (head, body) = response.into_parts();
        let body = match collect(body, max_response_body).await {
            Ok(Ok(body)) => body,
            Ok(Err(err)) => return Err(ExecuteError::Failed(err.to_string().into())),
            Err(_exceeded) => {
                return Err(ExecuteError::ResponseTooLarge {
                    limit: max_response_body,
                });
            }
        };
        convert::to_http_response(head.head(), body, &self.responses).map_err(failed)
    }
}

/// The whole of `body`, or [`BodyLimitExceeded`] past `limit` bytes.
///
/// Most answers are one buffer already: that buffer is taken as it is rather than
/// polled and copied into a new one.
async fn collect(
    body: BoxBody,
    limit: usize,
) -> Result<Result<Bytes, <BoxBody as MessageBody>::Error>, BodyLimitExceeded> {
    let body = match body.size() {
        BodySize::Sized(size) if usize::try_from(size).is_ok_and(|size| size <= limit) => {
            match body.try_into_bytes() {
                Ok(bytes) => return Ok(Ok(bytes)),
                Err(body) => body,
            }
        }
        _ => body,
    };
    to_bytes_limited(body, limit).await
}
