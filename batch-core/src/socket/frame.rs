//! WebSocket frames, as adapters convert them to and from their framework's.

use bytes::Bytes;

/// One WebSocket frame, as an adapter hands it to the endpoint and takes it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame; its bytes are UTF-8.
    Text(Bytes),
    /// A binary frame.
    Binary(Bytes),
    /// A ping.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close frame, with its code and reason if it has them.
    Close(Option<CloseFrame>),
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code (RFC 6455 §7.4): 1009 for a message too large, 1013 for a
    /// reader too slow, 1001 for a client that stopped answering pings.
    pub code: u16,
    /// Why, in a few words.
    pub reason: String,
}

/// The close codes the server sends (RFC 6455 §7.4.1).
pub(crate) mod close_code {
    /// The exchange is over.
    pub(crate) const NORMAL: u16 = 1000;
    /// The client stopped answering pings.
    pub(crate) const GOING_AWAY: u16 = 1001;
    /// A message was larger than the server takes.
    pub(crate) const TOO_BIG: u16 = 1009;
    /// The client read too slowly to keep up.
    pub(crate) const TRY_AGAIN_LATER: u16 = 1013;
}
