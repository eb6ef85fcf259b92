//! Applying an op's [`Links`] to its request once the ops it refers to have
//! finished: each reference's value found, encoded for where it goes, and the
//! request checked again as it will be dispatched.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use super::template::{Body, Links, Part, Reference, Source, Template, each_value};
use crate::codec::native::query_text;
use crate::model::{OpResult, ResultBody};
use crate::reference::{Selected, has_reference};
use crate::target::{self, MAX_TARGET_LEN};

/// The largest value one reference may insert, in bytes.
pub(crate) const MAX_VALUE: usize = 8 * 1024;

/// Why an op with references is not run (424).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    error: &'static str,
    /// The reference at fault, as written, when one is.
    reference: Option<String>,
}

impl Failure {
    fn unresolved(reference: &Reference) -> Self {
        Self {
            error: "reference_unresolved",
            reference: Some(reference.text.clone()),
        }
    }

    fn invalid(reference: Option<&Reference>) -> Self {
        Self {
            error: "reference_invalid",
            reference: reference.map(|r| r.text.clone()),
        }
    }

    fn too_large(reference: Option<&Reference>) -> Self {
        Self {
            error: "reference_too_large",
            reference: reference.map(|r| r.text.clone()),
        }
    }

    /// The op's answer: 424 with `{"error": ..., "reference": ...}`.
    pub(crate) fn outcome(&self) -> (StatusCode, HeaderMap, ResultBody) {
        #[derive(Serialize)]
        struct Answer<'a> {
            error: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            reference: Option<&'a str>,
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let body = ResultBody::json(&Answer {
            error: self.error,
            reference: self.reference.as_deref(),
        });
        (StatusCode::FAILED_DEPENDENCY, headers, body)
    }
}

/// A reference's value: one JSON value, or several from a `*`.
enum Found {
    One(Value),
    Many(Vec<Value>),
}

impl Links {
    /// Fills `request` in from `results`, which holds by index the result of every
    /// op referred to (each has finished); the url that comes out must pass the url
    /// rules, with `batch_path` the batch endpoint's path.
    pub(crate) fn apply(
        &self,
        request: &mut Request<Bytes>,
        results: &[Option<OpResult>],
        batch_path: &str,
    ) -> Result<(), Failure> {
        let values = self.values(results)?;
        if let Some(url) = &self.url {
            let text = self.render(url, &values, Encoding::Url)?;
            if text.len() > MAX_TARGET_LEN {
                return Err(Failure::too_large(None));
            }
            *request.uri_mut() =
                target::parse(text.into(), batch_path).map_err(|_| Failure::invalid(None))?;
        }
        for (name, templates) in &self.headers {
            request.headers_mut().remove(name);
            for template in templates {
                let text = self.render(template, &values, Encoding::None)?;
                let value = HeaderValue::from_str(&text).map_err(|_| Failure::invalid(None))?;
                request.headers_mut().append(name.clone(), value);
            }
        }
        match &self.body {
            Some(Body::Json(document, templates)) => {
                let mut document = document.clone();
                let mut templates = templates.iter();
                let mut failed = None;
                each_value(&mut document, &mut |value: &mut Value| {
                    let Value::String(text) = value else {
                        return;
                    };
                    if failed.is_some() || !has_reference(text) {
                        return;
                    }
                    let Some(template) = templates.next() else {
                        return;
                    };
                    match self.json(template, &values) {
                        Ok(new) => *value = new,
                        Err(failure) => failed = Some(failure),
                    }
                });
                if let Some(failure) = failed {
                    return Err(failure);
                }
                // A `Value` always serialises.
                *request.body_mut() =
                    Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
            }
            Some(Body::Form(template)) => {
                *request.body_mut() = Bytes::from(self.render(template, &values, Encoding::Url)?);
            }
            None => {}
        }
        Ok(())
    }

    /// Each reference's value, in order.
    fn values(&self, results: &[Option<OpResult>]) -> Result<Vec<Found>, Failure> {
        // Each document referred to is parsed once per op, whatever its references.
        let mut documents: Vec<(usize, Value)> = Vec::new();
        let mut values = Vec::with_capacity(self.references.len());
        for reference in &self.references {
            let unresolved = || Failure::unresolved(reference);
            let result = results
                .get(reference.op)
                .and_then(Option::as_ref)
                .ok_or_else(unresolved)?;
            if !result.status.is_success() {
                return Err(unresolved());
            }
            let found = match &reference.source {
                Source::Body(path) => {
                    let at = match documents.iter().position(|(op, _)| *op == reference.op) {
                        Some(at) => at,
                        None => {
                            let ResultBody::Json(bytes) = &result.body else {
                                return Err(unresolved());
                            };
                            let document =
                                serde_json::from_slice(bytes).map_err(|_| unresolved())?;
                            documents.push((reference.op, document));
                            documents.len() - 1
                        }
                    };
                    match path.select(&documents[at].1).ok_or_else(unresolved)? {
                        Selected::One(value) => Found::One(value.clone()),
                        Selected::Many(values) => {
                            Found::Many(values.into_iter().cloned().collect())
                        }
                    }
                }
                Source::Location => {
                    let location = header_text(result, header::LOCATION).ok_or_else(unresolved)?;
                    Found::One(Value::String(path_of(location).to_owned()))
                }
                Source::ETag => {
                    let etag = header_text(result, header::ETAG).ok_or_else(unresolved)?;
                    Found::One(Value::String(etag.to_owned()))
                }
            };
            values.push(found);
        }
        Ok(values)
    }

    /// A template as text, each value encoded as `encoding` says.
    fn render(
        &self,
        template: &Template,
        values: &[Found],
        encoding: Encoding,
    ) -> Result<String, Failure> {
        let mut out = String::new();
        for part in template {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Param { key, reference: at } => {
                    let reference = &self.references[*at];
                    let items = match &values[*at] {
                        Found::One(Value::Array(items)) | Found::Many(items) => &items[..],
                        Found::One(value) => std::slice::from_ref(value),
                    };
                    match pairs(&mut out, key, items) {
                        Ok(()) => {}
                        Err(Unfit::NoQueryForm) => return Err(Failure::invalid(Some(reference))),
                        Err(Unfit::TooLarge) => return Err(Failure::too_large(Some(reference))),
                    }
                }
                Part::Reference(at) => {
                    let reference = &self.references[*at];
                    // A `Location` is a path already: it is checked, not encoded.
                    let encoding = match reference.source {
                        Source::Location => Encoding::None,
                        _ => encoding,
                    };
                    let texts: Vec<String> = match &values[*at] {
                        Found::One(value) => vec![text_of(value)],
                        Found::Many(values) => values.iter().map(text_of).collect(),
                    };
                    let size = texts.iter().map(|text| text.len() + 1).sum::<usize>();
                    if size > MAX_VALUE + 1 {
                        return Err(Failure::too_large(Some(reference)));
                    }
                    // Several values are joined with a `,` of their own, each encoded.
                    for (index, text) in texts.iter().enumerate() {
                        if index > 0 {
                            out.push(',');
                        }
                        match encoding {
                            Encoding::Url => percent_encode(&mut out, text),
                            Encoding::None => out.push_str(text),
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// A JSON string's new value: the value itself, typed, when the string is
    /// exactly one reference (an array of the values of a `*`); text otherwise.
    fn json(&self, template: &Template, values: &[Found]) -> Result<Value, Failure> {
        if let [Part::Reference(at)] = template[..] {
            let value = match &values[at] {
                Found::One(value) => value.clone(),
                Found::Many(values) => Value::Array(values.clone()),
            };
            let size = serde_json::to_vec(&value).map_or(usize::MAX, |json| json.len());
            if size > MAX_VALUE {
                return Err(Failure::too_large(Some(&self.references[at])));
            }
            return Ok(value);
        }
        self.render(template, values, Encoding::None)
            .map(Value::String)
    }
}

/// How a value is written into its place.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    /// Percent-encoded: a url segment or query value, or a form value.
    Url,
    /// As it is (header values and JSON strings, checked or escaped afterwards).
    None,
}

/// Why a value cannot be a `params` value.
enum Unfit {
    /// An object, or an array holding an array or an object: 424 `reference_invalid`.
    NoQueryForm,
    /// Over [`MAX_VALUE`] bytes of text, all items together.
    TooLarge,
}

/// `items` as a `params` value of the query, by the native format's rules for a
/// literal one: a `key=value` pair per item (none for none), each value's text
/// percent-encoded so that it can neither add a pair nor leave the query.
fn pairs(out: &mut String, key: &str, items: &[Value]) -> Result<(), Unfit> {
    if items.is_empty() {
        // No pair, so no `&` to start it.
        if out.ends_with('&') {
            out.pop();
        }
        return Ok(());
    }
    // The items' text as a url joins them, `,` between: a url reference's limit.
    let mut size = items.len() - 1;
    for (index, item) in items.iter().enumerate() {
        let text = query_text(item).ok_or(Unfit::NoQueryForm)?;
        size += text.len();
        if size > MAX_VALUE {
            return Err(Unfit::TooLarge);
        }
        if index > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        percent_encode(out, &text);
    }
    Ok(())
}

/// A value as text: a string as it is, anything else as its JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `text` percent-encoded so that it stays one path segment or one query value:
/// every byte but `A-Z a-z 0-9 - _ ~`, and `.` unless the text is `.` or `..`.
fn percent_encode(out: &mut String, text: &str) {
    let dots = text == "." || text == "..";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_~".contains(&b) || (b == b'.' && !dots) {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

fn header_text(result: &OpResult, name: header::HeaderName) -> Option<&str> {
    result.headers.get(name)?.to_str().ok()
}

/// The path of a `Location`, absolute or not.
fn path_of(location: &str) -> &str {
    let location = location.split(['?', '#']).next().unwrap_or_default();
    match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => location,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn encoded(text: &str) -> String {
        let mut out = String::new();
        percent_encode(&mut out, text);
        out
    }

    #[test]
    fn a_value_is_encoded_into_one_segment() {
        assert_eq!(encoded("item-1_a~b.c"), "item-1_a~b.c");
        assert_eq!(encoded("../../whoami"), "..%2F..%2Fwhoami");
        assert_eq!(encoded(".."), "%2E%2E");
        assert_eq!(encoded("."), "%2E");
        assert_eq!(encoded("a b?c#d%e&f=g"), "a%20b%3Fc%23d%25e%26f%3Dg");
        assert_eq!(encoded("é\r\n"), "%C3%A9%0D%0A");
    }

    fn param_links(ids: Value) -> (Links, Vec<Found>) {
        let links = Links {
            references: vec![Reference {
                id: "a".into(),
                op: 0,
                source: Source::ETag,
                text: "{result=a:$.x}".into(),
            }],
            url: None,
            headers: Vec::new(),
            body: None,
        };
        let found = match ids {
            Value::Array(items) if items.first() == Some(&json!("many")) => {
                Found::Many(items[1..].to_vec())
            }
            other => Found::One(other),
        };
        (links, vec![found])
    }

    fn query(value: Value) -> Result<String, Failure> {
        let (links, values) = param_links(value);
        let template = vec![
            Part::Text("/echo?a=1&".into()),
            Part::Param {
                key: "k%20y".into(),
                reference: 0,
            },
            Part::Text("&z=2".into()),
        ];
        links.render(&template, &values, Encoding::Url)
    }

    #[test]
    fn a_whole_params_value_follows_the_params_rules() {
        let ok = |value| query(value).unwrap();
        assert_eq!(ok(json!("a&b=c#d")), "/echo?a=1&k%20y=a%26b%3Dc%23d&z=2");
        assert_eq!(ok(json!(1.5)), "/echo?a=1&k%20y=1.5&z=2");
        assert_eq!(ok(json!(-1e300)), "/echo?a=1&k%20y=-1e%2B300&z=2");
        assert_eq!(ok(json!(true)), "/echo?a=1&k%20y=true&z=2");
        assert_eq!(ok(json!(null)), "/echo?a=1&k%20y=&z=2");
        assert_eq!(
            ok(json!([1, "x y", null, false])),
            "/echo?a=1&k%20y=1&k%20y=x%20y&k%20y=&k%20y=false&z=2"
        );
        // What a `[*]` selects is a repeated key, as an array is.
        assert_eq!(
            ok(json!(["many", 1, ".."])),
            "/echo?a=1&k%20y=1&k%20y=%2E%2E&z=2"
        );
        assert_eq!(ok(json!([])), "/echo?a=1&z=2");
        assert_eq!(ok(json!(["many"])), "/echo?a=1&z=2");
    }

    #[test]
    fn a_whole_params_value_without_a_query_form_is_invalid() {
        for value in [
            json!({"id": 1}),
            json!([1, [2]]),
            json!([{"id": 1}]),
            json!(["many", 1, {"id": 2}]),
            json!(["many", [1]]),
        ] {
            let failure = query(value.clone()).unwrap_err();
            assert_eq!(
                failure,
                Failure::invalid(Some(&param_links(value).0.references[0]))
            );
        }
    }

    #[test]
    fn a_whole_params_value_has_the_url_limit() {
        let most = "x".repeat(MAX_VALUE);
        assert!(query(json!(most)).is_ok());
        let halves = json!(["many", "x".repeat(MAX_VALUE / 2), "x".repeat(MAX_VALUE / 2)]);
        let failure = query(halves).unwrap_err();
        assert_eq!(failure.error, "reference_too_large");
        assert_eq!(
            query(json!(format!("{most}x"))).unwrap_err().error,
            "reference_too_large"
        );
    }

    #[test]
    fn a_location_gives_its_path() {
        assert_eq!(path_of("/items/7"), "/items/7");
        assert_eq!(path_of("http://host:8080/items/7?x=1#f"), "/items/7");
        assert_eq!(path_of("https://host"), "/");
        assert_eq!(path_of("items/7"), "items/7");
    }

    #[test]
    fn failures_answer_424_naming_the_reference() {
        let failure = Failure {
            error: "reference_unresolved",
            reference: Some("{result=a:$.id}".into()),
        };
        let (status, headers, body) = failure.outcome();
        assert_eq!(status, StatusCode::FAILED_DEPENDENCY);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            body.as_bytes(),
            br#"{"error":"reference_unresolved","reference":"{result=a:$.id}"}"#
        );
    }
}
