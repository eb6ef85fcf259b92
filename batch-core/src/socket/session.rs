//! One client's session, whatever carries it: its identity, its subscriptions, and
//! each message it sends run as an op through the application.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::{StatusCode, header, request::Parts};
use tokio::sync::OwnedSemaphorePermit;

use super::message::{Action, ClientMessage};
use super::reply::{Answer, Reply};
use super::uri::{Expect, ResourceUri};
use crate::changes::{Event, Since, Subscriber, Subscribers};
use crate::codec::native;
use crate::endpoint::BatchEndpoint;
use crate::executor::Executor;
use crate::model::{BatchRequest, BatchResponse, OpResult, Operation, ResultBody};
use crate::observe::{BatchId, SocketMeter, Transport};
use crate::problem::Problem;

/// Where a session's messages to its client go: the answers to its messages and
/// the change events of its subscriptions, in the order they are handed over.
///
/// The WebSocket transport queues them for its socket; another transport (Socket.IO,
/// say) emits them its own way.
pub trait Outbox: Send + Sync + 'static {
    /// Takes one message for the client, in order with the ones before it.
    fn send(&self, message: Outgoing<'_>);
}

/// A message for a session's client.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    /// The answer to one of its messages.
    Answer(&'a Answer),
    /// A change to a resource it subscribed to, or to that resource's list.
    Event(&'a Event),
}

/// See [`SocketAdmission::read_buffer`].
const READ_BUFFER: usize = 4 * 1024;

/// A client's right to a session: admitted by [`BatchEndpoint::admit_socket`],
/// it holds one of the endpoint's socket places until the session ends.
#[derive(Debug)]
pub struct SocketAdmission {
    pub(crate) outer: Parts,
    pub(crate) permit: OwnedSemaphorePermit,
    pub(crate) read_limit: usize,
}

impl SocketAdmission {
    /// The largest message the adapter's WebSocket reader should take whole: four
    /// times [`SocketConfig::max_message`](crate::SocketConfig::max_message), so a
    /// message over the limit reaches the session, which closes with 1009. Beyond
    /// this the framework's own reader ends the socket.
    pub fn read_limit(&self) -> usize {
        self.read_limit
    }

    /// The read buffer the adapter's WebSocket reader should give the socket, in
    /// bytes, where its library lets it be chosen (tungstenite's
    /// `read_buffer_size`). Larger messages are still read whole, in more reads.
    pub fn read_buffer(&self) -> usize {
        // tungstenite's default, 128 KiB, is zeroed in full before every read
        // attempt, and a socket's task attempts a read each time it wakes, even to
        // write a change event: a thousand subscribers meant 128 MiB of `memset` per
        // change, and each idle socket held 128 KiB.
        READ_BUFFER
    }
}

/// One client's session: its messages run as ops through `executor` with the
/// identity of the request that opened it, and its subscriptions are told of every
/// change. Dropping it ends every subscription.
pub struct Session<E> {
    endpoint: BatchEndpoint,
    executor: E,
    outer: Parts,
    subscriptions: Arc<Subscriptions>,
    meter: SocketMeter,
    _permit: OwnedSemaphorePermit,
}

impl<E> std::fmt::Debug for Session<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("subscriptions", &self.subscriptions.lock().len())
            .finish_non_exhaustive()
    }
}

/// A session's subscriptions, as the hub's subscribers see it: a subscription whose
/// state is not yet sent holds the changes that arrive meanwhile, so its client
/// gets the state first and every change after it.
struct Subscriptions {
    id: u64,
    outbox: Arc<dyn Outbox>,
    by_key: Mutex<HashMap<String, Subscription>>,
}

enum Subscription {
    /// The `GET` of its state runs; changes wait here.
    Pending(Vec<Event>),
    /// Its state was sent; changes go straight out.
    Active,
}

impl Subscriptions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Subscription>> {
        self.by_key.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Subscriber for Subscriptions {
    fn deliver(&self, event: &Event) {
        let mut by_key = self.lock();
        let keys = event.keys();
        if keys
            .iter()
            .any(|key| matches!(by_key.get(*key), Some(Subscription::Active)))
        {
            self.outbox.send(Outgoing::Event(event));
            return;
        }
        // Subscribed only where the state is still on its way: held for after it.
        for key in keys {
            if let Some(Subscription::Pending(held)) = by_key.get_mut(key) {
                held.push(event.clone());
                return;
            }
        }
    }
}

impl<E: Executor> Session<E> {
    pub(crate) fn new(
        endpoint: BatchEndpoint,
        executor: E,
        admission: SocketAdmission,
        outbox: Arc<dyn Outbox>,
    ) -> Self {
        let subscriptions = Arc::new(Subscriptions {
            id: endpoint.hub().subscribers().next_id(),
            outbox,
            by_key: Mutex::new(HashMap::new()),
        });
        Self {
            endpoint,
            executor,
            outer: admission.outer,
            subscriptions,
            meter: SocketMeter::open(),
            _permit: admission.permit,
        }
    }

    /// Runs `message` and hands its answer to the outbox; returns the answer too
    /// (for a transport that acknowledges messages one by one).
    pub async fn handle(&self, message: ClientMessage) -> Answer {
        let (reference, action) = message.into_parts();
        let reply = match action {
            Action::Subscribe { uri } => {
                match self.subscribe(&uri, reference.clone(), None).await {
                    Ok(answer) => return answer,
                    Err(refused) => refused.into(),
                }
            }
            Action::Resume { uri, since } => {
                match self.subscribe(&uri, reference.clone(), Some(since)).await {
                    Ok(answer) => return answer,
                    Err(refused) => refused.into(),
                }
            }
            Action::Unsubscribe { uri } => self.unsubscribe(&uri),
            Action::Create { uri, attributes } => {
                self.change(&uri, Expect::List, "POST", Some(attributes))
                    .await
            }
            Action::Patch { uri, patch } => {
                self.change(&uri, Expect::Resource, "PATCH", Some(patch))
                    .await
            }
            Action::Delete { uri } => self.change(&uri, Expect::Resource, "DELETE", None).await,
            Action::Batch { batch } => self.batch(&batch).await,
        };
        let answer = Answer::new(reference, reply);
        self.subscriptions.outbox.send(Outgoing::Answer(&answer));
        answer
    }

    /// Answers `refused` with an `error` 400, as for any malformed message.
    pub fn refuse(&self, reference: Option<String>, detail: impl Into<String>) -> Answer {
        let answer = Answer::new(
            reference,
            Reply::Error {
                status: StatusCode::BAD_REQUEST,
                detail: detail.into(),
                body: None,
            },
        );
        self.subscriptions.outbox.send(Outgoing::Answer(&answer));
        answer
    }

    /// How many resources the session subscribes to.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.lock().len()
    }

    /// Subscribes to `uri`: the state of it now, then every change. The state is
    /// sent from here, ahead of any change that arrived while its `GET` ran.
    ///
    /// A resume (`since`, the client's cursor, `None` inside when it was not a
    /// string) runs the same `GET`, to be authorized like any subscription, then
    /// answers `resumed` and the events missed since the cursor instead of the
    /// state, when the history still holds all of them; else the state, `reset`.
    async fn subscribe(
        &self,
        uri: &str,
        reference: Option<String>,
        since: Option<Option<String>>,
    ) -> Result<Answer, Refused> {
        let uri = self.resource(uri, Expect::Readable)?;
        let key = uri.key().to_owned();
        let subscribers = self.subscribers();
        let limit = self
            .endpoint
            .config()
            .sockets()
            .map_or(usize::MAX, |sockets| sockets.max_subscriptions());
        let new = self.hold(&key, limit)?;
        // Read once the subscription holds changes: every later one reaches it.
        let seq = subscribers.cursor();
        let read = self.run(Operation::new("GET", uri.op_url())).await;
        let state = match read {
            Ok(result) if result.status.is_success() => result,
            failed => {
                if new && self.subscriptions.lock().remove(&key).is_some() {
                    subscribers.remove(&key, self.subscriptions.id);
                    self.meter.unsubscribed(1);
                }
                return Err(match failed {
                    Ok(result) => Refused {
                        status: result.status,
                        detail: format!(
                            "the GET of {} answered {}",
                            uri.as_str(),
                            result.status.as_u16()
                        ),
                        body: Some(result.body),
                    },
                    Err(refused) => refused,
                });
            }
        };
        // Read after the subscription was made, so the missed events and the held
        // ones overlap rather than leave a gap; the overlap is sent once.
        let missed = match &since {
            Some(since) => match self.endpoint.hub().since(&key, since.as_deref()).await {
                Since::Missed(events) => Some(events),
                Since::NotCovered => None,
            },
            None => None,
        };
        let reply = match missed {
            Some(_) => Reply::Resumed {
                uri: uri.as_str().to_owned(),
            },
            None => Reply::State {
                uri: uri.as_str().to_owned(),
                resource: state.body,
                seq,
                reset: since.is_some(),
            },
        };
        let answer = Answer::new(reference, reply);
        // A subscription ended while its GET ran (by an unsubscribe, or by the failed
        // GET of another subscribe to the path) is made again: the state, answered
        // after, is the client's last word on it.
        self.hold(&key, limit)?;
        let mut by_key = self.subscriptions.lock();
        self.subscriptions.outbox.send(Outgoing::Answer(&answer));
        let mut sent = 0;
        for event in missed.iter().flatten() {
            self.subscriptions.outbox.send(Outgoing::Event(event));
            sent = event.seq();
        }
        if let Some(Subscription::Pending(held)) = by_key.insert(key, Subscription::Active) {
            for event in held.iter().filter(|event| event.seq() > sent) {
                self.subscriptions.outbox.send(Outgoing::Event(event));
            }
        }
        Ok(answer)
    }

    /// Makes `key` a subscription, its changes held until its state is sent, unless
    /// it is one already: whether it is new, or 429 when the socket has `limit`.
    fn hold(&self, key: &str, limit: usize) -> Result<bool, Refused> {
        {
            let mut by_key = self.subscriptions.lock();
            if by_key.contains_key(key) {
                return Ok(false);
            }
            if by_key.len() >= limit {
                return Err(refused(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("a socket may subscribe to at most {limit} resources"),
                ));
            }
            by_key.insert(key.to_owned(), Subscription::Pending(Vec::new()));
        }
        self.meter.subscribed(1);
        // Added to the hub with the session's lock released: the hub delivers holding
        // its own lock, then takes the session's.
        let subscriber: Arc<dyn Subscriber> = self.subscriptions.clone();
        self.subscribers()
            .add(key, self.subscriptions.id, subscriber);
        Ok(true)
    }

    fn unsubscribe(&self, uri: &str) -> Reply {
        let uri = match self.resource(uri, Expect::Readable) {
            Ok(uri) => uri,
            Err(refused) => return refused.into(),
        };
        if self.subscriptions.lock().remove(uri.key()).is_some() {
            self.subscribers().remove(uri.key(), self.subscriptions.id);
            self.meter.unsubscribed(1);
        }
        Reply::Unsubscribed {
            uri: uri.as_str().to_owned(),
        }
    }

    /// Runs a `create`, `patch` or `delete` as one op.
    async fn change(&self, uri: &str, expect: Expect, method: &str, body: Option<Bytes>) -> Reply {
        let uri = match self.resource(uri, expect) {
            Ok(uri) => uri,
            Err(refused) => return refused.into(),
        };
        let mut op = Operation::new(method, uri.op_url());
        if let Some(body) = body {
            op.headers.push((
                header::CONTENT_TYPE.as_str().to_owned(),
                "application/json".to_owned(),
            ));
            op.body = body;
        }
        match self.run(op).await {
            Ok(result) => Reply::Result {
                uri: uri.as_str().to_owned(),
                result,
            },
            Err(refused) => refused.into(),
        }
    }

    /// Runs a native batch, by every rule of the native format.
    async fn batch(&self, batch: &Bytes) -> Reply {
        let outcome = match native::decode(batch) {
            Ok(batch) => self.run_batch(batch).await,
            Err(problem) => Err(problem),
        };
        match outcome {
            Ok(response) => Reply::Results(response),
            Err(problem) => refused(problem.status(), problem.detail()).into(),
        }
    }

    /// Runs one op with the session's identity, through the engine: every rule of a
    /// batch op holds, and its change is published.
    async fn run(&self, op: Operation) -> Result<OpResult, Refused> {
        let batch = BatchRequest::new(vec![op]);
        match self.run_batch(batch).await {
            Ok(response) => response
                .results
                .into_iter()
                .next()
                .ok_or_else(|| refused(StatusCode::INTERNAL_SERVER_ERROR, "no result")),
            Err(problem) => Err(refused(problem.status(), problem.detail())),
        }
    }

    /// Runs a batch of the session's, named afresh: every message is a batch of its
    /// own, whatever `x-request-id` the upgrade request had.
    async fn run_batch(&self, batch: BatchRequest) -> Result<BatchResponse, Problem> {
        let id = BatchId::generate();
        self.endpoint
            .run_as(&self.executor, &self.outer, batch, &id, Transport::Socket)
            .await
    }

    fn resource(&self, uri: &str, expect: Expect) -> Result<ResourceUri, Refused> {
        ResourceUri::parse(uri, expect, self.endpoint.config())
            .map_err(|err| refused(StatusCode::UNPROCESSABLE_ENTITY, &err.to_string()))
    }

    fn subscribers(&self) -> &Subscribers {
        self.endpoint.hub().subscribers()
    }
}

impl<E> Session<E> {
    /// Ends every subscription: the session is told of no change any more.
    pub(crate) fn unsubscribe_all(&self) {
        let keys: Vec<String> = self
            .subscriptions
            .lock()
            .drain()
            .map(|(key, _)| key)
            .collect();
        let subscribers = self.endpoint.hub().subscribers();
        self.meter.unsubscribed(keys.len());
        for key in keys {
            subscribers.remove(&key, self.subscriptions.id);
        }
    }
}

impl<E> Drop for Session<E> {
    fn drop(&mut self) {
        self.unsubscribe_all();
    }
}

/// Why a message came to an `error`.
struct Refused {
    status: StatusCode,
    detail: String,
    body: Option<ResultBody>,
}

impl From<Refused> for Reply {
    fn from(refused: Refused) -> Self {
        Reply::Error {
            status: refused.status,
            detail: refused.detail,
            body: refused.body,
        }
    }
}

fn refused(status: StatusCode, detail: &str) -> Refused {
    Refused {
        status,
        detail: detail.to_owned(),
        body: None,
    }
}

/// The request a session's ops take their identity from: the upgrade request,
/// without what described the upgrade itself.
pub(crate) fn identity(upgrade: &Parts) -> Parts {
    let mut outer = upgrade.clone();
    let upgrade_only: Vec<_> = outer
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("sec-websocket-"))
        .cloned()
        .collect();
    for name in upgrade_only {
        outer.headers.remove(name);
    }
    outer
}
