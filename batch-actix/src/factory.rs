//! The request-level factory [`with_batch`](crate::with_batch) returns: the App's
//! own factory, plus a handle on each worker's app service for the batch route.

use std::rc::Rc;

use actix_http::Request as ActixRequest;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{AppConfig, Service, ServiceFactory, ServiceResponse, forward_ready};
use actix_web::{Error, HttpMessage};
use batch_core::{BatchEndpoint, Watch};
use futures::future::LocalBoxFuture;

use crate::convert;
use crate::executor::Dispatcher;
use crate::watch::{self, ResponseBody};

/// An actix-web `App` with the batch endpoint, as [`with_batch`](crate::with_batch)
/// returns it; give it to `HttpServer::new` (or `actix_web::test::init_service`)
/// in place of the `App`.
///
/// Requests, responses and errors are the App's own: the wrapper only lets the batch
/// and socket routes reach the worker's app service, so every op runs through the
/// same App instance as a direct request. With sockets on, a direct `POST`,
/// `PATCH`, `PUT` or `DELETE` is watched as it passes: its payload as the App reads
/// it, its answer's body as it is written ([`ResponseBody`]).
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
    type Response = ServiceResponse<ResponseBody<B>>;
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

/// One worker's app service behind [`BatchApp`]: it passes every request to the App,
/// gives requests for the batch and socket paths the means to dispatch ops, and, with
/// sockets on, watches direct mutations for the change they make.
pub struct BatchAppService<S> {
    app: Rc<S>,
    dispatcher: Dispatcher,
    endpoint: BatchEndpoint,
}

impl<S, B> Service<ActixRequest> for BatchAppService<S>
where
    S: Service<ActixRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    forward_ready!(app);

    fn call(&self, mut request: ActixRequest) -> Self::Future {
        let path = request.path();
        if self.endpoint.config().is_batch_path(path)
            || self.endpoint.is_socket_path(path)
            || self.endpoint.is_events_path(path)
        {
            request.extensions_mut().insert(self.dispatcher.clone());
        }
        // Ops reach the App through the dispatcher, not here: only direct requests
        // are watched, and ops' changes are the engine's to publish.
        let watch = self
            .watch(&request)
            .map(|watch| watch::request(&mut request, watch));
        let response = self.app.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match watch {
                Some(watch) => watch::answer(response, watch),
                None => response.map_body(|_, body| EitherBody::left(body)),
            })
        })
    }
}

impl<S> BatchAppService<S> {
    /// The watch of a direct request that may change a resource, with sockets on.
    fn watch(&self, request: &ActixRequest) -> Option<Watch> {
        // Sockets off, or a request that changes nothing: no headers converted.
        self.endpoint.config().sockets()?;
        self.endpoint
            .watch(&convert::request_line(request.head()).ok()?)?;
        self.endpoint
            .watch(&convert::head_parts(request.head()).ok()?)
    }
}
