//! The request-level factory [`with_batch`](crate::with_batch) returns: the App's
//! own factory, plus a handle on each worker's app service for the batch route.

use std::rc::Rc;

use actix_http::Request as ActixRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Service, ServiceFactory, ServiceResponse, forward_ready};
use actix_web::{Error, HttpMessage};
use batch_core::BatchEndpoint;
use futures::future::LocalBoxFuture;

use crate::executor::Dispatcher;

/// An actix-web `App` with the batch endpoint, as [`with_batch`](crate::with_batch)
/// returns it; give it to `HttpServer::new` (or `actix_web::test::init_service`)
/// in place of the `App`.
///
/// Requests, responses and errors are the App's own: the wrapper only lets the batch
/// route reach the worker's app service, so every op runs through the same App
/// instance as a direct request.
pub struct BatchApp<F> {
    app: F,
    endpoint: BatchEndpoint,
}

impl<F> BatchApp<F> {
    pub(crate) fn new(app: F, endpoint: BatchEndpoint) -> Self {
        Self { app, endpoint }
    }
}

impl<F, B> ServiceFactory<ActixRequest> for BatchApp<F>
where
    F: ServiceFactory<
            ActixRequest,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = Error,
        >,
    F::Future: 'static,
    F::Service: 'static,
    <F::Service as Service<ActixRequest>>::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Config = AppConfig;
    type Service = BatchAppService<F::Service>;
    type InitError = F::InitError;
    type Future = LocalBoxFuture<'static, Result<Self::Service, Self::InitError>>;

    fn new_service(&self, config: AppConfig) -> Self::Future {
        let app = self.app.new_service(config);
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            let app = Rc::new(app.await?);
            let dispatcher = Dispatcher::new(Rc::clone(&app));
            Ok(BatchAppService {
                app,
                dispatcher,
                endpoint,
            })
        })
    }
}

/// One worker's app service behind [`BatchApp`]: it passes every request to the App
/// unchanged, and gives requests for the batch path the means to dispatch ops.
pub struct BatchAppService<S> {
    app: Rc<S>,
    dispatcher: Dispatcher,
    endpoint: BatchEndpoint,
}

impl<S, B> Service<ActixRequest> for BatchAppService<S>
where
    S: Service<ActixRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = S::Future;

    forward_ready!(app);

    fn call(&self, request: ActixRequest) -> Self::Future {
        if self.endpoint.config().is_batch_path(request.path()) {
            request.extensions_mut().insert(self.dispatcher.clone());
        }
        self.app.call(request)
    }
}
