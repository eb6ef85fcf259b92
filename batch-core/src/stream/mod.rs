//! Streamed answers: a batch whose `Accept` asks for one is answered `200` as soon
//! as it has validated, and each result is written the moment its op finishes
//! (NDJSON lines, server-sent events, or multipart parts for a multipart batch),
//! then a last line or event with the counts.
//!
//! Nothing is held but the results the reader has not taken yet: [`BatchBody`]
//! runs the batch as it is read, so a slow reader slows the batch rather than
//! filling memory, and a reader that goes away drops the ops still running.

pub(crate) mod accept;
mod body;
mod sink;

pub(crate) use accept::{Streaming, requested};
pub use body::BatchBody;
pub(crate) use sink::Streamer;
