//! The aggregate array (Flask-Aggregator): a JSON array of GET paths in, one JSON
//! object from path to body out.
//!
//! Only bodies are answered, as the format defines: JSON embedded, text as a string,
//! other bytes as a base64 string, no body as `null`. A path listed twice runs once
//! and keeps its first place.

mod decode;
mod encode;

pub(crate) use decode::decode;
pub(crate) use encode::encode;

#[cfg(test)]
mod tests;
