//! One client's session, whatever carries it: its identity, its subscriptions, and
//! each message it sends run as an op through the application.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{StatusCode, request::Parts};
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::message::{Action, ClientMessage};
use super::reply::{Answer, Reply};
use super::uri::{Expect, ResourceUri};
use crate::changes::{Event, EventKind, Since, Subscriber, Subscribers};
use crate::codec::native;
use crate::endpoint::BatchEndpoint;
use crate::executor::Executor;
use crate::model::{BatchRequest, BatchResponse, OpResult, Operation, ResultBody, Text};
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

    /// Takes the events a subscribe or resume caught up on (the events missed
    /// since the client's cursor, and those that arrived while the state was
    /// read), in order, after its answer. A replay can be as long as the history
    /// the hub keeps per URI: a transport that bounds what waits for a slow
    /// client bounds it apart from live messages, so that a replay the history
    /// holds is always delivered. By default, each is sent as an
    /// [`Outgoing::Event`].
    fn replay(&self, events: &[Event]) {
        for event in events {
            self.send(Outgoing::Event(event));
        }
    }
}

/// A message for a session's client.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    /// The answer to one of its messages.
    Answer(&'a Answer),
    /// A change to a resource it subscribed to, or to that resource's list.
    Event(&'a Event),
}

/// How often, and how long apart, a recheck refused by the server at its cap on ops
/// in flight is tried again before the refusal counts.
const CHECK_RETRIES: u32 = 10;
const CHECK_RETRY_AFTER: Duration = Duration::from_millis(100);

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
            .field("subscriptions", &self.subscriptions.lock().by_key.len())
            .finish_non_exhaustive()
    }
}

/// A session's subscriptions, as the hub's subscribers see it: a subscription whose
/// state is not yet sent holds the changes that arrive meanwhile, so its client
/// gets the state first and every change after it; an event for a subscription
/// due for a check waits until [`Session::recheck`] has checked it.
struct Subscriptions {
    id: u64,
    outbox: Arc<dyn Outbox>,
    /// [`SocketConfig::recheck`](crate::SocketConfig::recheck).
    recheck: Option<Duration>,
    table: Mutex<Table>,
    /// Told when an event starts waiting for a check.
    waiting: Notify,
}

#[derive(Default)]
struct Table {
    by_key: HashMap<String, Subscription>,
    /// Events waiting for a check of a subscription they are for, in order; while
    /// one waits, every later event waits behind it, so that none overtakes
    /// another and none is sent once its subscription is revoked.
    due: VecDeque<Event>,
}

enum Subscription {
    /// The `GET` of its state runs; changes wait here.
    Pending(Vec<Event>),
    /// Its state was sent; changes go out, after a check when one is due.
    Active(Checked),
}

/// An active subscription: what its `GET` reads, and when it last ran.
struct Checked {
    uri: ResourceUri,
    at: Instant,
}

impl Checked {
    /// Whether `event`, for subscription `key`, waits for a check first: when the
    /// last one is older than `interval`. The `delete` of the subscribed resource
    /// itself never does: it tells nothing but that the resource is gone, and the
    /// `GET` of a deleted resource could not tell a lost right from that.
    fn due(&self, event: &Event, key: &str, interval: Duration) -> bool {
        self.at.elapsed() >= interval && !(event.kind() == EventKind::Delete && key == event.uri())
    }
}

impl Subscriptions {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The URIs of the subscriptions `event` is for whose last check is older than
    /// `interval`.
    fn due(&self, event: &Event, interval: Duration) -> Vec<ResourceUri> {
        let table = self.lock();
        let mut due: Vec<ResourceUri> = Vec::new();
        for key in event.keys() {
            if let Some(Subscription::Active(checked)) = table.by_key.get(key)
                && checked.due(event, key, interval)
                && !due.iter().any(|uri| uri.key() == key)
            {
                due.push(checked.uri.clone());
            }
        }
        due
    }

    /// The oldest event waiting for a check, once there is one; it stays first in
    /// line until [`release`](Self::release).
    async fn next_due(&self) -> Event {
        loop {
            if let Some(event) = self.lock().due.front().cloned() {
                return event;
            }
            // `notify_one` keeps its permit for a waiter to come: nothing is missed
            // between the look and the wait.
            self.waiting.notified().await;
        }
    }

    /// Sends the oldest waiting event, now that its subscriptions are checked,
    /// unless none of them is left.
    fn release(&self) {
        let mut table = self.lock();
        if let Some(event) = table.due.pop_front() {
            let subscribed = event
                .keys()
                .iter()
                .any(|key| matches!(table.by_key.get(*key), Some(Subscription::Active(_))));
            if subscribed {
                self.outbox.send(Outgoing::Event(&event));
            }
        }
    }

    /// Records the check of `key` that started at `started`: passed, the next is
    /// due an interval later; failed with `status`, the subscription ends with
    /// `revoked`. Whether it ended. A subscription made again since the check
    /// started is left as it is.
    fn checked(&self, key: &str, started: Instant, status: StatusCode) -> bool {
        let mut table = self.lock();
        let Some(Subscription::Active(checked)) = table.by_key.get_mut(key) else {
            return false;
        };
        if checked.at > started {
            return false;
        }
        if status.is_success() {
            checked.at = started;
            return false;
        }
        if let Some(Subscription::Active(checked)) = table.by_key.remove(key) {
            let revoked = Answer::new(
                None,
                Reply::Revoked {
                    uri: checked.uri.as_str().to_owned(),
                    status,
                },
            );
            self.outbox.send(Outgoing::Answer(&revoked));
        }
        true
    }
}

impl Subscriber for Subscriptions {
    fn deliver(&self, event: &Event) {
        let mut table = self.lock();
        let keys = event.keys();
        let mut active = false;
        let mut due = !table.due.is_empty();
        for key in keys {
            if let Some(Subscription::Active(checked)) = table.by_key.get(key) {
                active = true;
                due = due
                    || self
                        .recheck
                        .is_some_and(|interval| checked.due(event, key, interval));
            }
        }
        if active && due {
            // Checked by the session's own task: the hub's lock is held here, and a
            // check runs the application.
            table.due.push_back(event.clone());
            drop(table);
            self.waiting.notify_one();
            return;
        }
        if active {
            self.outbox.send(Outgoing::Event(event));
            return;
        }
        // Subscribed only where the state is still on its way: held for after it.
        for key in keys {
            if let Some(Subscription::Pending(held)) = table.by_key.get_mut(key) {
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
        let recheck = endpoint
            .config()
            .sockets()
            .and_then(|sockets| sockets.recheck());
        let subscriptions = Arc::new(Subscriptions {
            id: endpoint.hub().subscribers().next_id(),
            outbox,
            recheck,
            table: Mutex::new(Table::default()),
            waiting: Notify::new(),
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
            Action::Subscribe { uri } => match self.resource(&uri, Expect::Readable) {
                Ok(uri) => return self.subscribe(uri, reference, None).await,
                Err(refused) => refused.into(),
            },
            Action::Resume { uri, since } => match self.resource(&uri, Expect::Readable) {
                Ok(uri) => return self.subscribe(uri, reference, Some(since)).await,
                Err(refused) => refused.into(),
            },
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
        self.subscriptions.lock().by_key.len()
    }

    /// Subscribes to `uri`: the state of it now, then every change, as
    /// [`subscribe_all`](Self::subscribe_all) does for one URI.
    async fn subscribe(
        &self,
        uri: ResourceUri,
        reference: Option<String>,
        since: Option<Option<String>>,
    ) -> Answer {
        let mut answers = self
            .subscribe_all(std::slice::from_ref(&uri), reference, since)
            .await;
        // One answer per URI.
        answers.swap_remove(0)
    }

    /// Subscribes to each of `uris`: the state of each now, then every change. The
    /// answers (`state`, `resumed` or `error`, each with `reference`) are sent from
    /// here, in the order of `uris`, ahead of any change that arrived while the
    /// `GET`s ran, and returned in that order.
    ///
    /// A resume (`since`, the client's cursor, `None` inside when it was not a
    /// string) runs the same `GET`s, to be authorized like any subscription, then
    /// answers `resumed` for each URI whose history still holds every event after
    /// the cursor, else the state, `reset`. The events missed since the cursor and
    /// those held while the `GET`s ran follow the answers, merged in the order they
    /// were delivered, each once.
    pub(crate) async fn subscribe_all(
        &self,
        uris: &[ResourceUri],
        reference: Option<String>,
        since: Option<Option<String>>,
    ) -> Vec<Answer> {
        let subscribers = self.subscribers();
        let limit = self
            .endpoint
            .config()
            .sockets()
            .map_or(usize::MAX, |sockets| sockets.max_subscriptions());
        let made: Vec<_> = uris.iter().map(|uri| self.hold(uri.key(), limit)).collect();
        // Read once the subscriptions hold changes: every later one reaches them.
        let seq = subscribers.cursor();
        let started = Instant::now();
        let mut states = futures::future::join_all(
            uris.iter()
                .zip(made)
                .map(|(uri, made)| self.read_state(uri, made)),
        )
        .await;
        // Read after every GET, so the missed events and the held ones overlap
        // rather than leave a gap; the overlap is sent once.
        let (hub, since_ref) = (self.endpoint.hub(), &since);
        // Each covered resume's events, with the seq its cursor names.
        let missed: Vec<Option<(u64, Vec<Event>)>> =
            futures::future::join_all(uris.iter().zip(&states).map(|(uri, state)| async move {
                match (state, since_ref) {
                    (Ok(_), Some(since)) => match hub.since(uri.key(), since.as_deref()).await {
                        Since::Missed { after, events } => Some((after, events)),
                        Since::NotCovered => None,
                    },
                    _ => None,
                }
            }))
            .await;
        // A subscription ended while its GET ran (by an unsubscribe, or by the failed
        // GET of another subscribe to the path) is made again: the state, answered
        // after, is the client's last word on it.
        for (uri, state) in uris.iter().zip(states.iter_mut()) {
            if state.is_ok()
                && let Err(refused) = self.hold(uri.key(), limit)
            {
                *state = Err(refused);
            }
        }
        let made: Vec<bool> = states.iter().map(Result::is_ok).collect();
        let answers: Vec<Answer> = uris
            .iter()
            .zip(states)
            .zip(&missed)
            .map(|((uri, state), missed)| {
                let reply = match (state, missed) {
                    (Err(refused), _) => Reply::from(refused),
                    (Ok(_), Some(_)) => Reply::Resumed {
                        uri: uri.as_str().to_owned(),
                    },
                    (Ok(resource), None) => Reply::State {
                        uri: uri.as_str().to_owned(),
                        resource,
                        seq: seq.clone(),
                        reset: since.is_some(),
                    },
                };
                Answer::new(reference.clone(), reply)
            })
            .collect();
        let mut table = self.subscriptions.lock();
        for answer in &answers {
            self.subscriptions.outbox.send(Outgoing::Answer(answer));
        }
        let mut events: Vec<Event> = Vec::new();
        for ((uri, made), missed) in uris.iter().zip(made).zip(missed) {
            let after = missed.as_ref().map(|(after, _)| *after);
            events.extend(missed.into_iter().flat_map(|(_, events)| events));
            if !made {
                continue;
            }
            let checked = Checked {
                uri: uri.clone(),
                at: started,
            };
            if let Some(Subscription::Pending(held)) = table
                .by_key
                .insert(uri.key().to_owned(), Subscription::Active(checked))
            {
                // A replica behind the one the client left delivers, after the
                // subscription was made, events the client had before its cursor.
                events.extend(
                    held.into_iter()
                        .filter(|event| after.is_none_or(|after| event.seq() > after)),
                );
            }
        }
        events.sort_by_key(Event::seq);
        events.dedup_by_key(|event| event.seq());
        self.subscriptions.outbox.replay(&events);
        answers
    }

    /// The state of `uri` for a subscription `made` (whether it is new), by its
    /// `GET`; a new subscription whose `GET` did not answer 2xx is ended.
    async fn read_state(
        &self,
        uri: &ResourceUri,
        made: Result<bool, Refused>,
    ) -> Result<ResultBody, Refused> {
        let new = made?;
        let read = self.run(Operation::new("GET", uri.op_url())).await;
        match read {
            Ok(result) if result.status.is_success() => Ok(result.body),
            failed => {
                if new && self.subscriptions.lock().by_key.remove(uri.key()).is_some() {
                    self.subscribers().remove(uri.key(), self.subscriptions.id);
                    self.meter.unsubscribed(1);
                }
                Err(match failed {
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
                })
            }
        }
    }

    /// Delivers the events that wait for a check of their subscription, in order:
    /// runs each due subscription's `GET` again with the session's identity, at most
    /// once per [`SocketConfig::recheck`](crate::SocketConfig::recheck) interval,
    /// ends it with `revoked` when that does not answer 2xx, and sends the event if
    /// a subscription it is for is left. Runs as long as the session, and never
    /// returns: the transport polls it beside the session's messages (without it,
    /// an event due for a check is never sent).
    pub async fn recheck(&self) {
        let Some(interval) = self.subscriptions.recheck else {
            return std::future::pending().await;
        };
        loop {
            let event = self.subscriptions.next_due().await;
            for uri in self.subscriptions.due(&event, interval) {
                let started = Instant::now();
                let status = self.check(&uri).await;
                if self.subscriptions.checked(uri.key(), started, status) {
                    self.subscribers().remove(uri.key(), self.subscriptions.id);
                    self.meter.unsubscribed(1);
                }
            }
            self.subscriptions.release();
        }
    }

    /// The status of the `GET` of `uri`, run again. A refusal by the server itself
    /// at its cap on ops in flight says nothing of the client's rights: retried a
    /// few times before it counts.
    async fn check(&self, uri: &ResourceUri) -> StatusCode {
        let mut tries = 0;
        loop {
            match self.run(Operation::new("GET", uri.op_url())).await {
                Ok(result) => return result.status,
                Err(refused)
                    if refused.status == StatusCode::SERVICE_UNAVAILABLE
                        && tries < CHECK_RETRIES =>
                {
                    tries += 1;
                    tokio::time::sleep(CHECK_RETRY_AFTER).await;
                }
                Err(refused) => return refused.status,
            }
        }
    }

    /// Makes `key` a subscription, its changes held until its state is sent, unless
    /// it is one already: whether it is new, or 429 when the socket has `limit`.
    fn hold(&self, key: &str, limit: usize) -> Result<bool, Refused> {
        {
            let by_key = &mut self.subscriptions.lock().by_key;
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
        if self.subscriptions.lock().by_key.remove(uri.key()).is_some() {
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
                Text::from_static("content-type"),
                Text::from_static("application/json"),
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
            .by_key
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
