//! Which answer the outer `Accept` asks for.

use http::{HeaderMap, header};

/// A streamed answer, as the outer `Accept` asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streaming {
    /// `application/x-ndjson` (or `application/jsonl`): one JSON object per line.
    Ndjson,
    /// `text/event-stream`: one server-sent event per result.
    EventStream,
    /// `multipart/mixed`, for a multipart batch: one part per result.
    Multipart,
}

impl Streaming {
    /// The answer's content type (multipart's names its boundary, added there).
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::EventStream => "text/event-stream",
            Self::Multipart => "multipart/mixed",
        }
    }
}

/// The media types that ask for a streamed answer in any format.
const STREAM_TYPES: [&str; 3] = [
    "application/x-ndjson",
    "application/jsonl",
    "text/event-stream",
];

/// The streamed answer `headers`' `Accept` prefers for a batch (a `multipart` one
/// or not), if any:
/// the range with the highest `q` (the first of equals) decides, so
/// `application/x-ndjson, */*` streams and `*/*` or `application/json` does not.
/// `multipart/mixed` streams a multipart batch only.
pub(crate) fn requested(headers: &HeaderMap, multipart: bool) -> Option<Streaming> {
    let mut best: Option<(&str, f32)> = None;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for range in value.split(',') {
            let (essence, q) = parse_range(range);
            if q > 0.0 && best.is_none_or(|(_, top)| q > top) {
                best = Some((essence, q));
            }
        }
    }
    let (essence, _) = best?;
    if essence.eq_ignore_ascii_case("application/x-ndjson")
        || essence.eq_ignore_ascii_case("application/jsonl")
    {
        Some(Streaming::Ndjson)
    } else if essence.eq_ignore_ascii_case("text/event-stream") {
        Some(Streaming::EventStream)
    } else if essence.eq_ignore_ascii_case("multipart/mixed") && multipart {
        Some(Streaming::Multipart)
    } else {
        None
    }
}

/// Whether one range of an `Accept` value asks for a streamed answer: such a range
/// is about the batch's answer, never an op's, and ops do not inherit it.
pub(crate) fn is_stream_range(range: &str) -> bool {
    let (essence, _) = parse_range(range);
    STREAM_TYPES.iter().any(|t| t.eq_ignore_ascii_case(essence))
}

/// A media range's type and its `q` (1 when absent; 0 when unreadable, so that a
/// malformed weight never wins).
fn parse_range(range: &str) -> (&str, f32) {
    let mut params = range.split(';');
    let essence = params.next().unwrap_or_default().trim();
    let q = params
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
        .map_or(1.0, |(_, q)| {
            q.trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(0.0)
        });
    (essence, q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn asked(accept: &[&str], multipart: bool) -> Option<Streaming> {
        let mut headers = HeaderMap::new();
        for value in accept {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        requested(&headers, multipart)
    }

    #[test]
    fn the_preferred_range_decides() {
        let native = false;
        assert_eq!(
            asked(&["application/x-ndjson"], native),
            Some(Streaming::Ndjson)
        );
        assert_eq!(
            asked(&["Application/JSONL"], native),
            Some(Streaming::Ndjson)
        );
        assert_eq!(
            asked(&["text/event-stream"], native),
            Some(Streaming::EventStream)
        );
        assert_eq!(
            asked(&["application/x-ndjson, */*"], native),
            Some(Streaming::Ndjson)
        );
        assert_eq!(asked(&["*/*", "application/x-ndjson"], native), None);
        assert_eq!(
            asked(&["application/json;q=0.5, text/event-stream;q=0.9"], native),
            Some(Streaming::EventStream)
        );
        assert_eq!(asked(&["application/x-ndjson;q=0"], native), None);
        assert_eq!(asked(&["application/x-ndjson;q=nonsense"], native), None);
        assert_eq!(asked(&[], native), None);
        assert_eq!(asked(&["application/json"], native), None);
    }

    #[test]
    fn multipart_streams_only_a_multipart_batch() {
        assert_eq!(
            asked(&["multipart/mixed"], true),
            Some(Streaming::Multipart)
        );
        assert_eq!(asked(&["multipart/mixed"], false), None);
        assert_eq!(
            asked(&["application/x-ndjson"], true),
            Some(Streaming::Ndjson)
        );
    }

    #[test]
    fn stream_ranges_are_recognised_with_parameters() {
        assert!(is_stream_range(" application/x-ndjson ; q=0.3"));
        assert!(is_stream_range("TEXT/EVENT-STREAM"));
        assert!(!is_stream_range("application/json"));
        assert!(!is_stream_range("multipart/mixed"));
    }
}
