//! Ops of a [`BatchService`](super::BatchService), run through the service it wraps.

use std::future::Future;
use std::marker::PhantomData;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::Service;

use super::body::RequestBody;
use crate::executor::{self, BoxError, ExecuteError, Executor};

/// Runs ops through the wrapped service, each with the body the engine holds.
pub(crate) struct Ops<S, ReqBody> {
    service: S,
    body: PhantomData<fn(ReqBody)>,
}

impl<S, ReqBody> Ops<S, ReqBody> {
    pub(super) fn new(service: S) -> Self {
        Self {
            service,
            body: PhantomData,
        }
    }
}

impl<S, ReqBody, ResBody> Executor for Ops<S, ReqBody>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    fn execute(
        &self,
        request: Request<Bytes>,
        max_response_body: usize,
    ) -> impl Future<Output = Result<Response<Bytes>, ExecuteError>> {
        let request = request.map(RequestBody::op);
        executor::call(&self.service, request, max_response_body)
    }
}
