//! Server-Sent Events: subscriptions for a client that cannot open a WebSocket
//! (`GET /events?uri=U&uri=U2`). A read-only transport of the same session as a
//! socket: the same admission, identity, limits, resume and revocation; only the
//! framing differs.

use std::convert::Infallible;
use std::future::ready;
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderValue, Response, StatusCode, header, request::Parts};
use tokio::time::{Instant, MissedTickBehavior};

use super::frame::Frame;
use super::mailbox::{Mailbox, Next};
use super::reply::Reply;
use super::session::{Outbox, Outgoing, Session};
use super::uri::{Expect, ResourceUri};
use crate::changes::Event;
use crate::endpoint::BatchEndpoint;
use crate::executor::Executor;
use crate::problem::Problem;

/// The comment line that keeps an idle stream open through proxies.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

impl BatchEndpoint {
    /// Whether a request for `path` is for the Server-Sent Events stream: sockets
    /// are on, and `path` is
    /// [`SocketConfig::events_path`](crate::SocketConfig::events_path) by the rule of
    /// [`Config::is_batch_path`](crate::Config::is_batch_path).
    pub fn is_events_path(&self, path: &str) -> bool {
        self.config()
            .sockets()
            .is_some_and(|sockets| crate::target::is_batch_path(path, sockets.events_path()))
    }

    /// Answers `GET /events?uri=U&uri=U2…`, the Server-Sent Events stream of the
    /// subscriptions to each `uri`, with the identity of `request`'s headers; its
    /// `GET`s run through `executor`. The adapter sends the answer's head and
    /// streams its body until the body ends or the client leaves (dropping the body
    /// ends the subscriptions).
    ///
    /// Refused before the stream starts, as a problem: no `uri` (400), a `uri`
    /// refused by the rules of a socket's `subscribe` (422), more than
    /// [`max_subscriptions`](crate::SocketConfig::max_subscriptions) (429), and
    /// whatever [`admit_socket`](Self::admit_socket) refuses (origin, the cap on
    /// open sockets, the application's answer to a `GET` of the socket path).
    ///
    /// The stream: one `state` event per URI (`resumed`, or `state` with
    /// `"reset": true`, when the request carries `Last-Event-ID`), or `error` for a
    /// URI whose `GET` is not 2xx; then every change as `create`, `patch` or
    /// `delete` with `id:` its cursor; `revoked` when a recheck ends a
    /// subscription; a comment line every
    /// [`ping_interval`](crate::SocketConfig::ping_interval). A client too far
    /// behind ([`max_queued`](crate::SocketConfig::max_queued), a resume's replay
    /// aside) sees the stream end, and resumes from its last `id`.
    pub async fn serve_events<E: Executor>(
        &self,
        executor: E,
        request: &Parts,
    ) -> Result<Response<impl Stream<Item = Result<Bytes, Infallible>> + use<E>>, Response<Bytes>>
    {
        let Some(config) = self.config().sockets().cloned() else {
            return Err(
                Problem::new(StatusCode::NOT_FOUND, "sockets are not served here").into_response(),
            );
        };
        let uris = self
            .event_uris(request.uri.query(), config.max_subscriptions())
            .map_err(Problem::into_response)?;
        // A `Last-Event-ID` that is not text is a cursor of no run: a fresh state.
        let since = request
            .headers
            .get("last-event-id")
            .map(|id| id.to_str().ok().map(str::to_owned));
        let admission = self.admit_socket(&executor, request).await?;
        let mailbox = Arc::new(Mailbox::for_config(&config));
        let outbox = Arc::new(EventsOutbox(mailbox.clone()));
        let session = Session::new(self.clone(), executor, admission, outbox);
        let keep_alive = mailbox.clone();
        let driver = async move {
            session.subscribe_all(&uris, None, since).await;
            let mut recheck = pin!(session.recheck());
            let every = config.ping_interval();
            let mut ping = tokio::time::interval_at(Instant::now() + every, every);
            ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = &mut recheck => {}
                    _ = ping.tick() => keep_alive.control(Frame::Ping(Bytes::new())),
                }
            }
        };
        let output = futures::stream::unfold(mailbox, |mailbox| async move {
            match mailbox.next().await {
                Next::Frame(Frame::Text(text)) => Some((Some(text), mailbox)),
                Next::Frame(_) => Some((Some(Bytes::from_static(KEEP_ALIVE)), mailbox)),
                Next::Close(..) => None,
            }
        });
        // The driver runs as long as the body is read; the body ends when the
        // output does (a reader too far behind), and with it the session.
        let body = futures::stream::select(
            output.chain(futures::stream::once(ready(None))).map(Some),
            futures::stream::once(driver).map(|()| None),
        )
        .take_while(|item| ready(!matches!(item, Some(None))))
        .filter_map(|item| ready(item.flatten().map(Ok)));
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(response)
    }

    /// The URIs a request for the events stream names, each checked.
    fn event_uris(&self, query: Option<&str>, limit: usize) -> Result<Vec<ResourceUri>, Problem> {
        let mut uris: Vec<ResourceUri> = Vec::new();
        for pair in query.unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name != "uri" {
                continue;
            }
            let Some(value) = decode(value) else {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "a uri is not valid percent-encoded UTF-8",
                ));
            };
            let uri = ResourceUri::parse(&value, Expect::Readable, self.config())
                .map_err(|err| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()))?;
            if !uris.iter().any(|seen| seen.key() == uri.key()) && uris.len() >= limit {
                return Err(Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("an events stream may subscribe to at most {limit} resources"),
                ));
            }
            uris.push(uri);
        }
        if uris.is_empty() {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "name at least one resource to subscribe to: ?uri=/items/",
            ));
        }
        Ok(uris)
    }
}

/// A query value, percent-decoded (`+` is a space), if it is UTF-8.
fn decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A session's messages as Server-Sent Events, queued in a mailbox.
struct EventsOutbox(Arc<Mailbox>);

impl Outbox for EventsOutbox {
    fn send(&self, message: Outgoing<'_>) {
        if let Some(text) = framed(message) {
            self.0.push(text);
        }
    }

    fn replay(&self, events: &[Event]) {
        self.0.push_replay(
            events
                .iter()
                .filter_map(|event| framed(Outgoing::Event(event)))
                .collect::<Vec<_>>()
                .into_iter(),
        );
    }
}

/// `message` as one Server-Sent Event; none for an answer the stream does not
/// send.
fn framed(message: Outgoing<'_>) -> Option<Bytes> {
    let mut out = Vec::new();
    let data = match message {
        Outgoing::Event(event) => {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(event.kind().name().as_bytes());
            if let Some(cursor) = event.cursor() {
                out.extend_from_slice(b"\nid: ");
                out.extend_from_slice(cursor.as_bytes());
            }
            event.json().clone()
        }
        Outgoing::Answer(answer) => {
            let name: &[u8] = match answer.reply() {
                Reply::State { .. } => b"state",
                Reply::Resumed { .. } => b"resumed",
                Reply::Revoked { .. } => b"revoked",
                Reply::Error { .. } => b"error",
                // The stream sends no message that has another answer.
                _ => return None,
            };
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name);
            answer.json()
        }
    };
    // A body embedded as the application wrote it may span lines: one `data:`
    // line each, which the client joins with newlines (whitespace to JSON).
    for line in data.split(|&byte| byte == b'\n' || byte == b'\r') {
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b"\n\n");
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::reply::Answer;

    fn sent(message: Outgoing<'_>) -> String {
        let mailbox = Arc::new(Mailbox::new(4, 4));
        EventsOutbox(mailbox.clone()).send(message);
        match mailbox.take() {
            Some(Next::Frame(Frame::Text(text))) => String::from_utf8(text.to_vec()).unwrap(),
            _ => String::new(),
        }
    }

    #[test]
    fn messages_are_framed_as_server_sent_events() {
        let event = Event::delete("/items/7".into()).with_seq(3, "e-3");
        assert_eq!(
            sent(Outgoing::Event(&event)),
            "event: delete\nid: e-3\ndata: {\"type\":\"delete\",\"uri\":\"/items/7\",\"seq\":\"e-3\"}\n\n"
        );
        let resumed = Answer::new(None, Reply::Resumed { uri: "/a".into() });
        assert_eq!(
            sent(Outgoing::Answer(&resumed)),
            "event: resumed\ndata: {\"type\":\"resumed\",\"uri\":\"/a\"}\n\n"
        );
        let unsubscribed = Answer::new(None, Reply::Unsubscribed { uri: "/a".into() });
        assert_eq!(sent(Outgoing::Answer(&unsubscribed)), "");
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(decode("%2Fitems%2F7").as_deref(), Some("/items/7"));
        assert_eq!(decode("/a+b").as_deref(), Some("/a b"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%2"), None);
        assert_eq!(decode("%FF"), None);
    }
}
