//! What a configuration can get wrong.

use thiserror::Error;

/// A setting given to [`ConfigBuilder`](super::ConfigBuilder) or
/// [`SocketConfigBuilder`](super::SocketConfigBuilder) that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The batch path must be a literal absolute path such as `/batch`.
    #[error(
        "the batch path must be a literal path starting with '/' (no query, no route parameters), got {0:?}"
    )]
    Path(String),
    /// A limit that must be at least one was zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// Every format was switched off, so no batch could be accepted.
    #[error("at least one batch format must be enabled")]
    NoFormat,
    /// The socket path must be a literal absolute path other than the batch path.
    #[error(
        "the socket path must be a literal path starting with '/', other than the batch path, got {0:?}"
    )]
    SocketPath(String),
    /// An allowed origin must be `scheme://host[:port]`.
    #[error(
        "an allowed origin must look like https://example.com or http://127.0.0.1:8080, got {0:?}"
    )]
    Origin(String),
}
