//! One client WebSocket on the server's `/socket`, as the real-time figures need it:
//! opened with `TCP_NODELAY`, messages written without waiting for answers, frames
//! read raw (the bench checks them with a glance, not a JSON parse).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::future::try_join_all;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::BenchError;

/// How long any socket step may take before the bench gives up on it: far beyond
/// any figure it measures, so only a lost message or a stuck server reaches it.
const PATIENCE: Duration = Duration::from_secs(30);
/// Sockets opened at once: a thousand handshakes at the same instant would measure
/// the listen backlog rather than the server.
const OPEN_AT_ONCE: usize = 100;
/// The client's read buffer. tungstenite's default (128 KiB) is zeroed before every
/// read attempt, which would make a thousand clients in one process cost more than
/// the server they measure.
const READ_BUFFER: usize = 4 * 1024;

/// An open socket.
pub(crate) struct Socket {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    /// Opens `/socket` on the server at `addr`.
    pub(crate) async fn open(addr: SocketAddr) -> Result<Self, BenchError> {
        let url = format!("ws://{addr}/socket");
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (inner, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        Ok(Self { inner })
    }

    /// Opens `n` more sockets onto `sockets`, [`OPEN_AT_ONCE`] at a time.
    pub(crate) async fn open_more(
        sockets: &mut Vec<Socket>,
        addr: SocketAddr,
        n: usize,
    ) -> Result<(), BenchError> {
        let target = sockets.len() + n;
        while sockets.len() < target {
            let chunk = (target - sockets.len()).min(OPEN_AT_ONCE);
            let opened = within(
                "opening sockets",
                try_join_all((0..chunk).map(|_| Socket::open(addr))),
            )
            .await?;
            sockets.extend(opened);
        }
        Ok(())
    }

    /// Queues `text` as one text frame, unwritten until [`flush`](Self::flush).
    pub(crate) async fn feed(&mut self, text: String) -> Result<(), BenchError> {
        Ok(self.inner.feed(Message::text(text)).await?)
    }

    /// Writes what was queued.
    pub(crate) async fn flush(&mut self) -> Result<(), BenchError> {
        Ok(self.inner.flush().await?)
    }

    /// Sends `text` as one text frame.
    pub(crate) async fn send(&mut self, text: String) -> Result<(), BenchError> {
        self.feed(text).await?;
        self.flush().await
    }

    /// The next text frame (control frames are skipped), with no time limit: callers
    /// bound a whole exchange with [`within`], not every frame with a timer.
    pub(crate) async fn next(&mut self) -> Result<Bytes, BenchError> {
        loop {
            match self.inner.next().await {
                Some(Ok(Message::Text(text))) => return Ok(Bytes::from(text)),
                Some(Ok(Message::Close(close))) => {
                    return Err(BenchError::Unexpected {
                        what: "a socket".into(),
                        detail: format!("the server closed it: {close:?}"),
                    });
                }
                None => {
                    return Err(BenchError::Unexpected {
                        what: "a socket".into(),
                        detail: "the connection ended".into(),
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
            }
        }
    }

    /// Sends `message` and checks that the answer is `{"type":"<answer>"…`.
    pub(crate) async fn ask(&mut self, message: String, answer: &str) -> Result<(), BenchError> {
        self.send(message).await?;
        let frame = self.next().await?;
        expect_type(&frame, answer)
    }
}

/// Subscribes every socket to `uri` at once and waits for each one's `state`.
pub(crate) async fn subscribe_all(sockets: &mut [Socket], uri: &str) -> Result<(), BenchError> {
    let message = subscribe(uri, "s");
    within(
        "subscribing",
        try_join_all(
            sockets
                .iter_mut()
                .map(|socket| socket.ask(message.clone(), "state")),
        ),
    )
    .await?;
    Ok(())
}

/// `{"type":"subscribe","uri":…,"ref":…}`.
pub(crate) fn subscribe(uri: &str, reference: &str) -> String {
    serde_json::json!({ "type": "subscribe", "uri": uri, "ref": reference }).to_string()
}

/// Checks that `frame` is a server message of type `kind`: the engine writes `type`
/// first, so a glance at the start is enough (and cheap enough for timed rounds).
pub(crate) fn expect_type(frame: &[u8], kind: &str) -> Result<(), BenchError> {
    let head = format!(r#"{{"type":"{kind}""#);
    if frame.starts_with(head.as_bytes()) {
        return Ok(());
    }
    Err(BenchError::Unexpected {
        what: format!("a socket message (wanted {kind})"),
        detail: String::from_utf8_lossy(frame).into_owned(),
    })
}

/// Whether `needle` occurs in `frame` (an empty one always does).
pub(crate) fn contains(frame: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || frame.windows(needle.len()).any(|window| window == needle)
}

/// Runs `step`, failing it if it takes longer than [`PATIENCE`].
pub(crate) async fn within<T>(
    what: &str,
    step: impl Future<Output = Result<T, BenchError>>,
) -> Result<T, BenchError> {
    tokio::time::timeout(PATIENCE, step)
        .await
        .map_err(|_| BenchError::Unexpected {
            what: what.to_owned(),
            detail: format!("not done within {PATIENCE:?}"),
        })?
}
