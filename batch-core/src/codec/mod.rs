//! Wire formats. Each codec translates one format to and from the internal model;
//! validation, limits, header policy and execution are shared and never live here.
//!
//! | [`Format`] | content type | shape |
//! |---|---|---|
//! | `Native` | `application/json` | an object with `ops` |
//! | `Graph` | `application/json` | an object with `requests` (and no `ops`) |
//! | `Aggregate` | `application/json` | a top-level array |
//! | `Multipart` | `multipart/mixed` | `application/http` parts |
//! | `Facebook` | `application/x-www-form-urlencoded` | a `batch` field |

mod aggregate;
mod facebook;
mod graph;
mod json;
mod multipart;
pub(crate) mod native;

use std::borrow::Cow;

use bytes::Bytes;
use http::{Response, StatusCode, header, request::Parts};

use crate::config::Config;
use crate::model::{BatchRequest, BatchResponse};
use crate::problem::Problem;

/// A wire format the batch endpoint can accept, switched on and off with
/// [`ConfigBuilder::format`](crate::ConfigBuilder::format).
///
/// The format of a batch is chosen from its content type, then, for JSON, from the
/// document's shape. Every format but [`Format::Facebook`] is on by default: its form
/// body is one a browser sends cross-site without a preflight, so a page on another
/// origin could make a signed-in user's browser submit a batch (CSRF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The native format: `application/json`, an object with `ops`.
    Native,
    /// Microsoft Graph / OData 4.01 JSON batching: `application/json`, an object with
    /// `requests`.
    Graph,
    /// Facebook Graph batching: `application/x-www-form-urlencoded` with a `batch`
    /// field. Off by default.
    Facebook,
    /// The aggregate array (Flask-Aggregator): `application/json`, an array of GET
    /// paths, answered as one object from path to body.
    Aggregate,
    /// `multipart/mixed` with one `application/http` request per part (Google APIs,
    /// OData, Flask-Batch).
    Multipart,
}

impl Format {
    /// Every format, in the order their switches are stored.
    pub(crate) const ALL: [Format; 5] = [
        Format::Native,
        Format::Graph,
        Format::Facebook,
        Format::Aggregate,
        Format::Multipart,
    ];

    /// The format's position in [`Format::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// How a client sends this format, for the 415 that lists what is accepted.
    fn describe(self) -> &'static str {
        match self {
            Format::Native => r#"application/json {"ops": [...]}"#,
            Format::Graph => r#"application/json {"requests": [...]}"#,
            Format::Facebook => "application/x-www-form-urlencoded with a `batch` field",
            Format::Aggregate => r#"application/json ["/path", ...]"#,
            Format::Multipart => "multipart/mixed of application/http parts",
        }
    }
}

/// A place in an operation, for locating validation faults in the request document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Url,
    Method,
    Id,
    Headers,
    Header(String),
    DependsOn(usize),
}

impl Field {
    /// The field's JSON pointer in a document whose ops are the array `ops`, in a
    /// format that names the url, id and dependency fields `[url, id, depends_on]`.
    pub(crate) fn pointer(&self, ops: &str, op: usize, [url, id, depends_on]: [&str; 3]) -> String {
        let name = match self {
            Field::Url => url.to_owned(),
            Field::Method => "method".to_owned(),
            Field::Id => id.to_owned(),
            Field::Headers => "headers".to_owned(),
            Field::Header(name) => format!("headers/{}", pointer_token(name)),
            Field::DependsOn(i) => format!("{depends_on}/{i}"),
        };
        format!("/{ops}/{op}/{name}")
    }
}

/// One wire format.
pub(crate) trait Codec: Send + Sync {
    /// The format's name, for logs.
    fn name(&self) -> &'static str;

    /// Translates a request body into the internal model, or refuses it (400/413/422).
    fn decode(&self, parts: &Parts, body: &Bytes) -> Result<BatchRequest, Problem>;

    /// Translates the results into the format's response.
    fn encode(&self, response: &BatchResponse) -> Response<Bytes>;

    /// Where `field` of op `op` sits in the request document, as a JSON pointer.
    fn pointer(&self, op: usize, field: &Field) -> Option<String>;
}

/// Chooses the codec for a request from its content type and, for JSON, from the
/// document's shape, among the formats `config` enables.
///
/// The shape is read from the top-level keys only, up to the first that decides
/// (`ops` or `requests`), so the document is parsed in full once, by its codec.
pub(crate) fn select(
    parts: &Parts,
    body: &[u8],
    config: &Config,
) -> Result<Box<dyn Codec>, Problem> {
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let format = match essence(content_type).as_ref() {
        "application/json" => json_shape(body, config),
        "multipart/mixed" => Some(Format::Multipart),
        "application/x-www-form-urlencoded" => Some(Format::Facebook),
        _ => None,
    };
    let codec: Box<dyn Codec> = match format.filter(|&f| config.accepts(f)) {
        Some(Format::Native) => Box::new(native::Native),
        Some(Format::Graph) => Box::new(graph::Graph),
        Some(Format::Facebook) => Box::new(facebook::Facebook),
        Some(Format::Aggregate) => Box::new(aggregate::Aggregate),
        Some(Format::Multipart) => Box::new(multipart::Multipart::new(config.max_ops())),
        None => return Err(unsupported(content_type, format, config)),
    };
    Ok(codec)
}

/// The JSON format a document's shape names: a top-level array is an aggregate, an
/// object with `ops` native, one with `requests` (and no `ops`) Graph. Anything else
/// goes to the first enabled object format, whose decoder says what is wrong.
fn json_shape(body: &[u8], config: &Config) -> Option<Format> {
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

/// The 415 for a content type (and shape) no enabled format accepts, listing those
/// that are.
fn unsupported(content_type: &str, format: Option<Format>, config: &Config) -> Problem {
    let accepted: Vec<&str> = Format::ALL
        .into_iter()
        .filter(|&f| config.accepts(f))
        .map(Format::describe)
        .collect();
    let sent = match format {
        Some(format) => format!("{} (not enabled on this server)", format.describe()),
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

/// A media type without its parameters, lower-case.
pub(crate) fn essence(content_type: &str) -> Cow<'_, str> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(essence.to_ascii_lowercase())
    } else {
        Cow::Borrowed(essence)
    }
}

/// A header name in the case most clients expect (`Content-Type`, `X-Request-Id`):
/// Graph's SDK looks up `Content-Type` spelled exactly so.
pub(crate) fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// Escapes one reference token of a JSON pointer (RFC 6901).
pub(crate) fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// An op url relative to the service root (`me/drive`, as Graph, OData and Facebook
/// clients write them) made origin-form; a url with a scheme is left as sent, for
/// validation to refuse.
pub(crate) fn rooted(url: String) -> String {
    if url.starts_with('/') || url.contains("://") {
        url
    } else {
        format!("/{url}")
    }
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
        select(&parts(content_type), body.as_bytes(), config)
            .map(|codec| codec.name())
            .map_err(|problem| problem.status().as_u16())
    }

    #[test]
    fn json_shape_picks_the_format() {
        let config = Config::default();
        let json = "application/json; charset=utf-8";
        assert_eq!(chosen(json, r#"{"ops": []}"#, &config), Ok("native"));
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
        let problem = select(
            &parts("application/json"),
            br#"{"requests": []}"#,
            &no_graph,
        )
        .err()
        .unwrap();
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
    fn canonical_names() {
        assert_eq!(canonical_name("content-type"), "Content-Type");
        assert_eq!(canonical_name("x-request-id"), "X-Request-Id");
        assert_eq!(canonical_name("etag"), "Etag");
    }

    #[test]
    fn relative_urls_are_rooted() {
        assert_eq!(rooted("me/drive".into()), "/me/drive");
        assert_eq!(rooted("/items".into()), "/items");
        assert_eq!(rooted("https://x/y".into()), "https://x/y");
    }
}
