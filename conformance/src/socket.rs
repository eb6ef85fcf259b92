//! A WebSocket client for socket steps: the upgrade goes through the runner's HTTP
//! client (so a refusal is read whole, like any answer), then frames go over
//! tokio-tungstenite on the connection the server handed over.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::client::{Client, ClientError, Exchange};

/// One open WebSocket, as a client.
#[derive(Debug)]
pub struct Socket {
    inner: WebSocketStream<TokioIo<Upgraded>>,
}

/// What arrived on a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// The server's close frame: its code and reason, if it had any.
    Closed(Option<(u16, String)>),
    /// The connection ended without a close frame.
    Ended,
    /// Nothing within the time allowed.
    Nothing,
}

/// Why a socket could not be opened or used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SocketError {
    /// The upgrade request got no answer.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server switched protocols without proving it read the key (RFC 6455 §4.1).
    #[error("the 101 answer has no sec-websocket-accept matching the key sent")]
    Accept,
    /// A frame could not be sent or read.
    #[error("the socket failed: {0}")]
    WebSocket(#[from] tungstenite::Error),
}

/// Asks the server for a socket at `path` with `headers` (besides the upgrade's
/// own): the answer, and the socket when it is `101`.
pub async fn open(
    client: &Client,
    path: &str,
    headers: &[(String, String)],
) -> Result<(Exchange, Option<Socket>), SocketError> {
    let key = generate_key();
    let mut request_headers = headers.to_vec();
    request_headers.extend(
        [
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", key.as_str()),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    let (exchange, upgraded) = client.upgrade(path, &request_headers).await?;
    let Some(upgraded) = upgraded else {
        return Ok((exchange, None));
    };
    let accepted = exchange
        .headers
        .get(http::header::SEC_WEBSOCKET_ACCEPT)
        .is_some_and(|accept| accept.as_bytes() == derive_accept_key(key.as_bytes()).as_bytes());
    if !accepted {
        return Err(SocketError::Accept);
    }
    let inner = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    Ok((exchange, Some(Socket { inner })))
}

impl Socket {
    /// Sends `text` in one text frame.
    pub async fn send_text(&mut self, text: String) -> Result<(), SocketError> {
        Ok(self.inner.send(Message::text(text)).await?)
    }

    /// Sends `bytes` in one binary frame.
    pub async fn send_binary(&mut self, bytes: Bytes) -> Result<(), SocketError> {
        Ok(self.inner.send(Message::binary(bytes)).await?)
    }

    /// The next message or close within `wait`; pings and pongs are not messages
    /// (the pongs pings call for are sent as reading goes on).
    pub async fn next(&mut self, wait: Duration) -> Result<Received, SocketError> {
        let deadline = Instant::now() + wait;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, self.inner.next()).await else {
                return Ok(Received::Nothing);
            };
            return Ok(match next {
                None => Received::Ended,
                Some(Ok(Message::Text(text))) => Received::Text(text.as_str().to_owned()),
                Some(Ok(Message::Binary(bytes))) => Received::Binary(bytes),
                Some(Ok(Message::Close(frame))) => Received::Closed(
                    frame.map(|frame| (u16::from(frame.code), frame.reason.as_str().to_owned())),
                ),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Err(
                    tungstenite::Error::ConnectionClosed
                    | tungstenite::Error::AlreadyClosed
                    | tungstenite::Error::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ),
                )) => Received::Ended,
                Some(Err(err)) => return Err(err.into()),
            });
        }
    }

    /// Starts the closing handshake, if the socket is still open, without waiting
    /// for the server's answer.
    pub async fn close(mut self) {
        let _ = self.inner.close(None).await;
    }
}
