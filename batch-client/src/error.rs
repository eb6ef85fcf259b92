//! What can go wrong with a batch as a whole (an op's own failure is its result).

use http::StatusCode;
use serde::Deserialize;

/// Why a batch, or part of it, got no results.
///
/// An op that ran and failed is not an error: it is an [`OpResponse`](crate::OpResponse)
/// with its status (see [`OpResponse::error`](crate::OpResponse::error)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A batch could not be sent, or its answer not read, and sending it again was
    /// not allowed (it may have run, and the server keeps no idempotency keys) or
    /// did not help.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server refused a batch (nothing of it ran), and retrying did not help
    /// or was not allowed.
    #[error("batch refused: {status}{}", problem_text(.problem))]
    Refused {
        /// The answer's status.
        status: StatusCode,
        /// Its RFC 9457 problem document, when it had one (boxed, to keep `Error`
        /// small).
        problem: Option<Box<Problem>>,
    },
    /// Ops tied together by `depends_on` must travel in one batch, and these do not
    /// fit in one; nothing was sent.
    #[error(
        "the ops {ops:?} depend on one another and must be sent in one batch, \
         but they are {count} ops and {bytes} bytes; the server takes at most \
         {max_ops} ops and {max_body_bytes} bytes per batch"
    )]
    GroupTooLarge {
        /// The positions of the group's ops in the list.
        ops: Vec<usize>,
        /// How many ops the group has.
        count: usize,
        /// The size of a batch holding the group alone.
        bytes: usize,
        /// The server's limit on ops.
        max_ops: usize,
        /// The server's limit on the body.
        max_body_bytes: usize,
    },
    /// The server answered something that is not a batch answer of the format sent.
    #[error("unreadable answer: {0}")]
    Answer(String),
    /// The batch URL, or an op's url, is not usable.
    #[error("bad url: {0}")]
    Url(String),
    /// A header given to the client is not a valid HTTP header.
    #[error("bad header: {0}")]
    Header(String),
}

/// An RFC 9457 problem document: why a server refused a batch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Problem {
    /// The status the problem was answered with.
    #[serde(default)]
    pub status: Option<u16>,
    /// A short summary.
    #[serde(default)]
    pub title: Option<String>,
    /// What exactly is wrong.
    #[serde(default)]
    pub detail: Option<String>,
    /// The op at fault: its position in the caller's list (the server's position
    /// in the batch it got, mapped back).
    #[serde(default)]
    pub op: Option<usize>,
    /// A JSON pointer to the fault in the batch document the server got (one
    /// batch of a split list).
    #[serde(default)]
    pub pointer: Option<String>,
    /// What the problem is, by name, for problems a client handles on its own:
    /// `idempotency_key_reused` (a key sent with another batch),
    /// `idempotency_key_interrupted` (the batch sent first with this key was cut
    /// short and may have run in part), ...
    #[serde(default)]
    pub code: Option<String>,
}

fn problem_text(problem: &Option<Box<Problem>>) -> String {
    let Some(problem) = problem else {
        return String::new();
    };
    let mut text = String::new();
    if let Some(detail) = problem.detail.as_deref().or(problem.title.as_deref()) {
        text.push_str(": ");
        text.push_str(detail);
    }
    match (problem.op, &problem.pointer) {
        (Some(op), Some(pointer)) => text.push_str(&format!(" (op {op}, at {pointer})")),
        (Some(op), None) => text.push_str(&format!(" (op {op})")),
        (None, Some(pointer)) => text.push_str(&format!(" (at {pointer})")),
        (None, None) => {}
    }
    text
}
