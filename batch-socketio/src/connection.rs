//! One Socket.IO client: admitted as a WebSocket client is, then served by a
//! batch-core session until it disconnects.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use batch_core::{
    Action, BatchEndpoint, BoxError, ClientMessage, Executor, ServiceExecutor, Session,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use serde_json::Value;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, TryData};
use socketioxide::handler::{ConnectMiddleware, Value as Packet};
use socketioxide::socket::Socket;

use tokio::sync::{Semaphore, oneshot};
use tower::Service;

use crate::events::EVENTS;
use crate::outbox::{SocketOutbox, raw};

/// What every client's session is opened with.
pub(crate) struct Sessions<S> {
    endpoint: BatchEndpoint,
    executor: ServiceExecutor<S>,
}

/// A client's session while its socket is connected: taken out (and so ended) when
/// it disconnects.
type Slot<S> = Arc<Mutex<Option<Arc<Connection<S>>>>>;

struct Connection<S> {
    session: Session<ServiceExecutor<S>>,
    /// Messages running at once; later ones wait for a place.
    in_flight: Semaphore,
}

/// Why a client may not connect: the HTTP answer a WebSocket upgrade would have
/// been refused with, sent as the `connect_error`'s message.
struct Refusal(Response<Bytes>);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.status())?;
        match std::str::from_utf8(self.0.body()) {
            Ok(body) if !body.is_empty() => write!(f, ": {body}"),
            _ => Ok(()),
        }
    }
}

impl<S> Sessions<S> {
    pub(crate) fn new(endpoint: BatchEndpoint, service: S) -> Self {
        Self {
            endpoint,
            executor: ServiceExecutor::new(service),
        }
    }
}

impl<S, B> Sessions<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    /// Admits `socket` by the rules of a WebSocket upgrade, with the request that
    /// opened it, and opens its session: each client event runs as a message of it.
    async fn open(&self, socket: Arc<Socket>) -> Result<(), Refusal> {
        let admission = self
            .endpoint
            .admit_socket(&self.executor, socket.req_parts())
            .await
            .map_err(Refusal)?;
        let in_flight = self
            .endpoint
            .config()
            .sockets()
            .map_or(Semaphore::MAX_PERMITS, |sockets| sockets.max_in_flight());
        let outbox = SocketOutbox::new(Arc::downgrade(&socket), tokio::runtime::Handle::current());
        let session = self
            .endpoint
            .session(self.executor.clone(), admission, Arc::new(outbox));
        let connection = Arc::new(Connection {
            session,
            in_flight: Semaphore::new(in_flight),
        });
        // Events due for a check wait for it on a task of the client's own, which
        // ends when the client disconnects (the sender is dropped then).
        let (stop, stopped) = oneshot::channel::<()>();
        let checking = connection.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = checking.session.recheck() => {}
                _ = stopped => {}
            }
        });
        let stop = Arc::new(Mutex::new(Some(stop)));
        let slot: Slot<S> = Arc::new(Mutex::new(Some(connection)));
        for (event, read) in EVENTS {
            let slot = slot.clone();
            socket.on(
                event,
                move |TryData(data): TryData<Value>, ack: AckSender| async move {
                    let Some(connection) = live(&slot) else {
                        return;
                    };
                    let answer = match data.map_err(|err| err.to_string()).and_then(read) {
                        Ok(action) => connection.run(action).await,
                        Err(detail) => connection.session.refuse(None, detail),
                    };
                    let json = answer.json();
                    if let Some(data) = raw(&json) {
                        // The client may be gone already; nothing is left to tell.
                        let _ = ack.send(data);
                    }
                },
            );
        }
        socket.on_disconnect(move || async move {
            let ended = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            let stop = stop.lock().unwrap_or_else(PoisonError::into_inner).take();
            drop((stop, ended));
        });
        Ok(())
    }
}

impl<S> Connection<S>
where
    ServiceExecutor<S>: Executor,
{
    async fn run(&self, action: Action) -> batch_core::Answer {
        // The semaphore is never closed, so a place always comes.
        let _place = self.in_flight.acquire().await;
        self.session.handle(ClientMessage::new(action)).await
    }
}

fn live<S>(slot: &Slot<S>) -> Option<Arc<Connection<S>>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Admits each client and opens its session before the client counts as
/// connected, so a refused one gets a `connect_error` and never a `connect`.
pub(crate) struct Admit<S>(pub(crate) Arc<Sessions<S>>);

impl<S> Clone for Admit<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S, B> ConnectMiddleware<LocalAdapter, ()> for Admit<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    async fn call<'a>(
        &'a self,
        socket: Arc<Socket>,
        _auth: &'a Option<Packet>,
    ) -> Result<(), Box<dyn fmt::Display + Send>> {
        self.0
            .open(socket)
            .await
            .map_err(|refusal| Box::new(refusal) as Box<dyn fmt::Display + Send>)
    }
}
