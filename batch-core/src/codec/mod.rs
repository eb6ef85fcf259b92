//! Wire formats. Each codec translates one format to and from the model; validation,
//! limits, header policy and execution are shared and never live here.
//!
//! | [`Format`] | content type | shape |
//! |---|---|---|
//! | `Native` | `application/json` | an object with `ops` |
//! | `Graph` | `application/json` | an object with `requests` (and no `ops`) |
//! | `Aggregate` | `application/json` | a top-level array |
//! | `Multipart` | `multipart/mixed` | `application/http` parts |
//! | `Facebook` | `application/x-www-form-urlencoded` | a `batch` field |
//!
//! Every codec has the same shape: `decode.rs` reads its format into a
//! [`BatchRequest`], `encode.rs` writes a [`BatchResponse`] in it, and `tests.rs`
//! checks both against traffic captured from real clients.

mod aggregate;
mod facebook;
mod graph;
pub(crate) mod json;
pub(crate) mod multipart;
pub(crate) mod native;
pub(crate) mod spelling;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header, request::Parts};

use crate::config::Config;
use crate::model::{BatchRequest, BatchResponse, Field, Format};
use crate::problem::Problem;

/// Decodes a batch request in whichever enabled format its content type (and, for
/// JSON, its shape) names, into the model.
///
/// Refuses with a [`Problem`] (400, 413 or 415) a body no enabled format accepts or
/// one its format cannot read. Nothing is validated beyond the format: urls,
/// methods, headers and ids are checked when the batch runs.
///
/// ```
/// use batch_core::{Config, Format};
/// use bytes::Bytes;
///
/// let (parts, ()) = http::Request::post("/batch")
///     .header("content-type", "application/json")
///     .body(())?
///     .into_parts();
/// let body = Bytes::from_static(br#"{"requests": [{"id": "1", "method": "GET", "url": "me"}]}"#);
/// let batch = batch_core::decode(&parts, &body, &Config::default())?;
/// assert_eq!(batch.format(), Format::Graph);
/// assert_eq!(batch.ops[0].url, "/me");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode(parts: &Parts, body: &Bytes, config: &Config) -> Result<BatchRequest, Problem> {
    let format = format_of(parts, body, config)?;
    decode_as(format, parts, body, config)
}

/// Decodes `body` as `format`, which [`format_of`] chose.
pub(crate) fn decode_as(
    format: Format,
    parts: &Parts,
    body: &Bytes,
    config: &Config,
) -> Result<BatchRequest, Problem> {
    let mut batch = match format {
        // Native already, as `BatchRequest::new` makes a batch: handed back as its
        // decoder gives it rather than moved once more to be marked so.
        Format::Native => return native::decode(body),
        Format::Graph => graph::decode(body),
        Format::Facebook => facebook::decode(body),
        Format::Aggregate => aggregate::decode(body),
        Format::Multipart => multipart::decode(parts, body, config.max_ops()),
    }?;
    batch.layout.format = format;
    Ok(batch)
}

/// Encodes `response` as a `200 OK` answer in `format`, results in request order.
///
/// The endpoint answers in the format the batch came in
/// ([`BatchResponse::format`]); any other format works too, without the labels
/// only its own format carries (a multipart `Content-ID`, an aggregate path).
///
/// ```
/// use batch_core::{BatchResponse, Format, OpResult};
/// use http::StatusCode;
///
/// let response = BatchResponse::new(vec![OpResult::new("a", StatusCode::NOT_FOUND)]);
/// let graph = batch_core::encode(&response, Format::Graph);
/// assert_eq!(graph.status(), StatusCode::OK);
/// assert_eq!(graph.body(), r#"{"responses":[{"id":"a","status":404,"headers":{}}]}"#);
/// ```
pub fn encode(response: &BatchResponse, format: Format) -> Response<Bytes> {
    match format {
        Format::Native => native::encode(response),
        Format::Graph => graph::encode(response),
        Format::Facebook => facebook::encode(response),
        Format::Aggregate => aggregate::encode(response),
        Format::Multipart => multipart::encode(response),
    }
}

/// Where `field` of op `op` sits in a request document of `format`, as a JSON
/// pointer; `None` for formats that are not one JSON document of ops in order.
pub(crate) fn pointer(format: Format, op: usize, field: &Field) -> Option<String> {
    match format {
        Format::Native => native::pointer(op, field),
        Format::Graph => graph::pointer(op, field),
        Format::Facebook => facebook::pointer(op, field),
        // Aggregate ops are the distinct paths, so an op's index is not a position
        // in the array; a multipart batch is no JSON document (the problem's `op`
        // locates the part).
        Format::Aggregate | Format::Multipart => None,
    }
}

/// The format of a request, from its content type and, for JSON, from the
/// document's shape, among the formats `config` enables.
///
/// The shape is read from the top-level keys only, up to the first that decides
/// (`ops` or `requests`), so the document is parsed in full once, by its codec.
pub(crate) fn format_of(parts: &Parts, body: &[u8], config: &Config) -> Result<Format, Problem> {
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    if content_type.is_some_and(is_exactly_json) {
        return json_format(body, config);
    }
    let content_type = content_type
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let format = match spelling::essence(content_type).as_ref() {
        "application/json" => json_shape(body, config),
        "multipart/mixed" => Some(Format::Multipart),
        "application/x-www-form-urlencoded" => Some(Format::Facebook),
        _ => None,
    };
    accepted(format, content_type, config)
}

/// Whether a content type says exactly `application/json`, as nearly every batch's
/// does: compared as bytes, it needs no check that it is text, no parameters cut
/// off, no case folded.
pub(crate) fn is_exactly_json(content_type: &HeaderValue) -> bool {
    content_type.as_bytes() == b"application/json"
}

/// [`format_of`] for a batch whose content type is JSON: the format its `body`'s
/// shape names. Asked directly by a caller that saw the content type itself.
pub(crate) fn json_format(body: &[u8], config: &Config) -> Result<Format, Problem> {
    accepted(json_shape(body, config), "application/json", config)
}

/// `format` if the `config` accepts it; otherwise the 415 for `content_type`.
fn accepted(
    format: Option<Format>,
    content_type: &str,
    config: &Config,
) -> Result<Format, Problem> {
    format
        .filter(|&f| config.accepts(f))
        .ok_or_else(|| unsupported(content_type, format, config))
}

/// The JSON format a document's shape names: a top-level array is an aggregate, an
/// object with `ops` native, one with `requests` (and no `ops`) Graph. Anything else
/// goes to the first enabled object format, whose decoder says what is wrong.
fn json_shape(body: &[u8], config: &Config) -> Option<Format> {
    // A native batch written compactly, `ops` first (as clients write it), is named
    // by its first six bytes, without the walk to its first key.
    if body.starts_with(b"{\"ops\"") {
        return Some(Format::Native);
    }
    let fallback = || {
        [Format::Native, Format::Graph]
            .into_iter()
            .find(|&f| config.accepts(f))
    };
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Some(Format::Aggregate),
        Some(b'{') => json::object_shape(body).or_else(fallback),
        _ => fallback().or(Some(Format::Aggregate)),
    }
}

/// How a client sends `format`, for the 415 that lists what is accepted.
fn describe(format: Format) -> &'static str {
    match format {
        Format::Native => r#"application/json {"ops": [...]}"#,
        Format::Graph => r#"application/json {"requests": [...]}"#,
        Format::Facebook => "application/x-www-form-urlencoded with a `batch` field",
        Format::Aggregate => r#"application/json ["/path", ...]"#,
        Format::Multipart => "multipart/mixed of application/http parts",
    }
}

/// The 415 for a content type (and shape) no enabled format accepts, listing those
/// that are.
fn unsupported(content_type: &str, format: Option<Format>, config: &Config) -> Problem {
    let accepted: Vec<&str> = Format::ALL
        .into_iter()
        .filter(|&f| config.accepts(f))
        .map(describe)
        .collect();
    let sent = match format {
        Some(format) => format!("{} (not enabled on this server)", describe(format)),
        None if content_type.is_empty() => "no content type".to_owned(),
        None => format!("{content_type:?}"),
    };
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "this endpoint accepts batches as {}; the request sent {sent}",
            accepted.join(", or ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(content_type: &str) -> Parts {
        Request::post("/batch")
            .header("content-type", content_type)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn chosen(content_type: &str, body: &str, config: &Config) -> Result<&'static str, u16> {
        format_of(&parts(content_type), body.as_bytes(), config)
            .map(Format::name)
            .map_err(|problem| problem.status().as_u16())
    }

    #[test]
    fn json_shape_picks_the_format() {
        let config = Config::default();
        let json = "application/json; charset=utf-8";
        assert_eq!(chosen(json, r#"{"ops": []}"#, &config), Ok("native"));
        assert_eq!(chosen(json, r#"{"ops":[]}"#, &config), Ok("native"));
        assert_eq!(
            chosen(json, r#"{"opsx":[],"requests":[]}"#, &config),
            Ok("graph"),
            "a key that starts with `ops` is not `ops`"
        );
        assert_eq!(
            chosen(json, r#" {"requests": [{"id": "1"}]}"#, &config),
            Ok("graph")
        );
        assert_eq!(
            chosen(
                json,
                r#"{"x": {"ops": 1, "requests": [}, "ops": [1]}"#,
                &config
            ),
            Ok("native"),
            "nested keys are skipped, only top-level ones count"
        );
        assert_eq!(
            chosen(json, r#"{"a\"ops": "requests", "requests": []}"#, &config),
            Ok("graph")
        );
        assert_eq!(chosen(json, "\n[\"/a\"]", &config), Ok("aggregate"));
        assert_eq!(
            chosen(json, "not json", &config),
            Ok("native"),
            "the native codec answers 400"
        );
        assert_eq!(
            chosen("multipart/mixed; boundary=x", "", &config),
            Ok("multipart")
        );
        for spelled in [
            "application/json",
            "Application/JSON",
            " application/json ;",
        ] {
            assert_eq!(chosen(spelled, "[]", &config), Ok("aggregate"), "{spelled}");
        }
    }

    #[test]
    fn disabled_and_unknown_formats_are_415() {
        let config = Config::default();
        assert_eq!(
            chosen("application/x-www-form-urlencoded", "batch=[]", &config),
            Err(415),
            "Facebook is off by default"
        );
        assert_eq!(chosen("text/plain", "{}", &config), Err(415));
        assert_eq!(chosen("", "{}", &config), Err(415));
        let no_graph = Config::builder()
            .format(Format::Graph, false)
            .build()
            .unwrap();
        assert_eq!(
            chosen("application/json", r#"{"requests": []}"#, &no_graph),
            Err(415)
        );
        let problem = format_of(
            &parts("application/json"),
            br#"{"requests": []}"#,
            &no_graph,
        )
        .unwrap_err();
        assert!(problem.detail().contains("not enabled"), "{problem}");
        assert!(
            !problem.detail().contains("requests\": [...]}, or"),
            "{problem}"
        );
        let facebook = Config::builder()
            .format(Format::Facebook, true)
            .build()
            .unwrap();
        assert_eq!(
            chosen("application/x-www-form-urlencoded", "batch=[]", &facebook),
            Ok("facebook")
        );
    }

    #[test]
    fn every_format_answers_in_its_own_shape() {
        use crate::model::{BatchResponse, OpResult};
        let response = BatchResponse::new(vec![OpResult::new("a", StatusCode::OK)]);
        let content_type = |format| {
            encode(&response, format).headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_owned()
        };
        for format in [
            Format::Native,
            Format::Graph,
            Format::Facebook,
            Format::Aggregate,
        ] {
            assert_eq!(content_type(format), "application/json", "{format:?}");
        }
        assert!(content_type(Format::Multipart).starts_with("multipart/mixed; boundary="));
    }
}
