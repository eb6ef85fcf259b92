//! Writing results as their ops finish.

use std::ops::{ControlFlow, Range};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use tokio::sync::mpsc;

use super::accept::Streaming;
use crate::codec::json::Writer;
use crate::codec::{multipart, native};
use crate::engine::Sink;
use crate::model::{Layout, OpResult};
use crate::observe::Tally;

/// A streamed answer being written: each result, encoded, goes to the reader as it
/// comes, and only a multipart change set's results wait, for the rest of their set.
pub(crate) struct Streamer {
    encoding: Encoding,
    frames: mpsc::Sender<Bytes>,
    include_headers: bool,
    /// Every byte written, when the answer is kept for an idempotency key.
    kept: Option<Vec<u8>>,
    tally: Tally,
}

enum Encoding {
    Lines(Streaming),
    Multipart {
        boundary: String,
        labels: Vec<Option<String>>,
        /// Each change set with the results of its members so far.
        sets: Vec<(Range<usize>, Vec<Option<OpResult>>)>,
    },
}

impl Streamer {
    /// A streamed answer `kind`, for a batch laid out as `layout`, written to
    /// `frames`; with `keep`, every byte is also kept for
    /// [`Streamer::finish`] to hand back.
    pub(crate) fn new(
        kind: Streaming,
        layout: &Layout,
        include_headers: bool,
        frames: mpsc::Sender<Bytes>,
        keep: bool,
    ) -> Self {
        let encoding = match kind {
            Streaming::Multipart => Encoding::Multipart {
                boundary: multipart::streamed_boundary(),
                labels: layout.labels.clone(),
                sets: layout
                    .groups
                    .iter()
                    .filter(|group| !group.is_empty())
                    .map(|group| (group.clone(), vec![None; group.len()]))
                    .collect(),
            },
            lines => Encoding::Lines(lines),
        };
        Self {
            encoding,
            frames,
            include_headers,
            kept: keep.then(Vec::new),
            tally: Tally::default(),
        }
    }

    /// The answer's content type.
    pub(crate) fn content_type(&self) -> HeaderValue {
        match &self.encoding {
            Encoding::Lines(kind) => HeaderValue::from_static(kind.content_type()),
            Encoding::Multipart { boundary, .. } => {
                HeaderValue::from_str(&format!("multipart/mixed; boundary={boundary}"))
                    .unwrap_or_else(|_| HeaderValue::from_static("multipart/mixed"))
            }
        }
    }

    /// Writes the end of the answer (the `done` line or event, or the closing
    /// boundary) and gives back the tally of results and, if it was kept, the whole
    /// answer as a response.
    pub(crate) async fn finish(mut self) -> (Tally, Option<Response<Bytes>>) {
        let end = match &self.encoding {
            Encoding::Lines(kind) => {
                let done = format!(
                    r#"{{"done":true,"ops":{},"failed":{}}}"#,
                    self.tally.ops(),
                    self.tally.failed()
                );
                line(*kind, "done", done.as_bytes())
            }
            Encoding::Multipart { boundary, .. } => format!("--{boundary}--\r\n").into_bytes(),
        };
        // The reader may be gone: there is nothing left to tell it.
        let _ = self.write(end).await;
        let kept = self.kept.take().map(|bytes| {
            let mut answer = Response::new(Bytes::from(bytes));
            answer
                .headers_mut()
                .insert(header::CONTENT_TYPE, self.content_type());
            answer
        });
        (self.tally, kept)
    }

    /// Sends `bytes` to the reader; `Break` when it is gone.
    async fn write(&mut self, bytes: Vec<u8>) -> ControlFlow<()> {
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(&bytes);
        }
        match self.frames.send(Bytes::from(bytes)).await {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }

    /// Op `index`'s result as the answer writes it, or `None` while it waits for
    /// the rest of its change set.
    fn encode(&mut self, index: usize, result: OpResult) -> Option<Vec<u8>> {
        match &mut self.encoding {
            Encoding::Lines(kind) => {
                let mut out = Writer::new();
                native::write_indexed(&mut out, index, result.parts(), self.include_headers);
                Some(line(*kind, "result", &out.into_bytes()))
            }
            Encoding::Multipart {
                boundary,
                labels,
                sets,
            } => {
                let mut out = format!("--{boundary}\r\n").into_bytes();
                let Some(at) = sets.iter().position(|(set, _)| set.contains(&index)) else {
                    let label = labels.get(index).and_then(Option::as_deref);
                    multipart::write_labelled_part(&mut out, &result, label);
                    out.extend_from_slice(b"\r\n");
                    return Some(out);
                };
                let (set, members) = &mut sets[at];
                members[index - set.start] = Some(result);
                if members.iter().any(Option::is_none) {
                    return None;
                }
                let (set, members) = sets.swap_remove(at);
                let members: Vec<OpResult> = members.into_iter().flatten().collect();
                let set_labels = labels.get(set).unwrap_or_default();
                multipart::write_changeset(&mut out, &members, set_labels);
                out.extend_from_slice(b"\r\n");
                Some(out)
            }
        }
    }
}

impl Sink for Streamer {
    async fn put(&mut self, index: usize, result: OpResult) -> ControlFlow<()> {
        self.tally.add(result.status);
        match self.encode(index, result) {
            Some(bytes) => self.write(bytes).await,
            None => ControlFlow::Continue(()),
        }
    }
}

/// One NDJSON line, or one server-sent event named `event`, of the JSON `data`.
///
/// Line breaks in `data` can only be whitespace between JSON tokens (a body a
/// handler pretty-printed, copied verbatim; inside strings they are escaped), so
/// they become spaces: each result stays one line.
fn line(kind: Streaming, event: &str, data: &[u8]) -> Vec<u8> {
    let mut flat;
    let data = if memchr::memchr2(b'\n', b'\r', data).is_some() {
        flat = data.to_vec();
        for b in &mut flat {
            if matches!(*b, b'\n' | b'\r') {
                *b = b' ';
            }
        }
        &flat[..]
    } else {
        data
    };
    match kind {
        Streaming::EventStream => {
            let mut out = Vec::with_capacity(data.len() + event.len() + 16);
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(event.as_bytes());
            out.extend_from_slice(b"\ndata: ");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\n\n");
            out
        }
        _ => {
            let mut out = Vec::with_capacity(data.len() + 1);
            out.extend_from_slice(data);
            out.push(b'\n');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pretty_printed_body_stays_on_its_line() {
        let data = b"{\"body\":{\n  \"a\": \"x\\ny\"\r\n}}";
        let written = line(Streaming::Ndjson, "result", data);
        assert_eq!(written, b"{\"body\":{   \"a\": \"x\\ny\"  }}\n");
        let value: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(value["body"]["a"], "x\ny");
        let event = line(Streaming::EventStream, "done", b"{}");
        assert_eq!(event, b"event: done\ndata: {}\n\n");
    }
}
