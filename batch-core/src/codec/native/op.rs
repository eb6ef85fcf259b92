//! Building one native op from its typed fields: the checks that are not about
//! types, shared by the typed pass and the explaining one.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, Visitor};
use serde_json::value::RawValue;

use crate::codec::json::{
    self, At, Entries, OneOrMany, field, json_body, pointer_token, set_default_content_type,
};
use crate::model::{Operation, Target, shared};
use crate::problem::Problem;
use crate::reference::{self, Piece};

/// One op with every field in its type.
#[derive(Deserialize)]
pub(super) struct TypedOp<'a> {
    pub(super) id: Option<String>,
    pub(super) method: Option<String>,
    /// Borrowed from the document unless it has escapes, so that the op's request
    /// can share the document's bytes.
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub(super) url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) headers: Option<Entries<OneOrMany<'a>>>,
    #[serde(borrow)]
    pub(super) body: Option<&'a RawValue>,
    pub(super) body_base64: Option<String>,
    #[serde(borrow, alias = "args")]
    pub(super) params: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) depends_on: Option<OneOrMany<'a>>,
    pub(super) silent: Option<bool>,
    pub(super) timeout_ms: Option<u64>,
    #[serde(rename = "if")]
    pub(super) condition: Option<String>,
}

/// An optional string, borrowed from the document where it can be (serde's own
/// `Cow` borrows only outside an `Option`).
fn borrowed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Text;

    impl<'de> Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_str(self)
        }

        fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(text)))
        }

        fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(text.to_owned())))
        }
    }

    deserializer.deserialize_option(Text)
}

/// Where field `name` of op `index` sits.
pub(super) fn at(index: usize, name: &'static str) -> At {
    At {
        list: "ops",
        index,
        name,
    }
}

/// The operation from its typed fields: the checks that are not about types.
pub(super) fn build_op(
    index: usize,
    op: TypedOp<'_>,
    document: &Bytes,
) -> Result<Operation, Problem> {
    let at = |name| at(index, name);
    let invalid = |name, must: &str| {
        Problem::bad_request(format!("{} must be {must}", at(name)))
            .at(Some(index), Some(at(name).to_string()))
    };
    let url = op.url.ok_or_else(|| {
        Problem::bad_request(format!("operation {index} has no `url`"))
            .at(Some(index), Some(at("url").to_string()))
    })?;
    let mut operation = Operation {
        url: match url {
            Cow::Borrowed(url) => Target::shared(document, url),
            Cow::Owned(url) => url.into(),
        },
        ..Operation::default()
    };
    if let Some(id) = op.id {
        if id.is_empty() {
            return Err(invalid("id", "a non-empty string"));
        }
        operation.id = Some(id);
    }
    operation.method = op.method;
    if let Some(headers) = op.headers {
        operation.headers = json::header_list(headers);
    }
    if let Some(ids) = op.depends_on {
        operation.depends_on = ids.into_vec();
    }
    operation.silent = op.silent.unwrap_or(false);
    operation.condition = op.condition;
    if let Some(ms) = op.timeout_ms {
        if ms == 0 {
            return Err(invalid("timeout_ms", "a positive integer"));
        }
        operation.timeout = Some(Duration::from_millis(ms));
    }
    let method_has_query_params = operation.method.as_deref().is_none_or(|m| {
        ["GET", "HEAD", "DELETE"]
            .iter()
            .any(|q| q.eq_ignore_ascii_case(m))
    });
    let body = match (op.body, op.body_base64) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request(format!(
                "operation {index} has both `body` and `body_base64`"
            ))
            .at(Some(index), Some(at("body_base64").to_string())));
        }
        (Some(raw), None) if raw.get() != "null" => Some(json_body(&mut operation, raw, document)),
        (_, Some(text)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| {
                    Problem::bad_request(format!("{} is not valid base64", at("body_base64")))
                        .at(Some(index), Some(at("body_base64").to_string()))
                })?;
            set_default_content_type(&mut operation, "application/octet-stream");
            Some(Bytes::from(bytes))
        }
        _ => None,
    };
    if let Some(raw) = op.params {
        let pointer = at("params").to_string();
        let params: Entries<serde_json::Value> = field(raw, Some(index), &pointer, "an object")?;
        if method_has_query_params {
            let query =
                encode_query(&params).map_err(|key| {
                    Problem::bad_request(format!(
                    "{pointer}/{key} must be a string, number, boolean, null or an array of them"
                ))
                .at(Some(index), Some(format!("{pointer}/{}", pointer_token(&key))))
                })?;
            if !query.is_empty() {
                let url = operation.url.as_str();
                let separator = if url.contains('?') { '&' } else { '?' };
                operation.url = format!("{url}{separator}{query}").into();
            }
        } else if body.is_none() {
            set_default_content_type(&mut operation, "application/json");
            operation.body = shared(document, raw.get());
        }
    }
    if let Some(body) = body {
        operation.body = body;
    }
    Ok(operation)
}

/// `params` as a query string; on a value that has no query form, the offending key.
fn encode_query(params: &Entries<serde_json::Value>) -> Result<String, String> {
    use serde_json::Value;
    let mut query = String::new();
    let mut push = |key: &str, value: &Value| -> Result<(), ()> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            Value::Array(_) | Value::Object(_) => return Err(()),
        };
        if !query.is_empty() {
            query.push('&');
        }
        percent_encode_into(&mut query, key);
        query.push('=');
        encode_value(&mut query, &text);
        Ok(())
    };
    for (key, value) in &params.0 {
        let pushed = match value {
            serde_json::Value::Array(items) => items.iter().try_for_each(|item| push(key, item)),
            other => push(key, other),
        };
        pushed.map_err(|()| key.clone())?;
    }
    Ok(query)
}

/// A query value percent-encoded, but for the `{result=...}` references in it,
/// which the url's own rules then apply to.
fn encode_value(out: &mut String, text: &str) {
    if !reference::has_reference(text) {
        return percent_encode_into(out, text);
    }
    match reference::pieces(text) {
        Ok(pieces) => {
            for piece in pieces {
                match piece {
                    Piece::Text(text) => percent_encode_into(out, text),
                    Piece::Reference(written) => out.push_str(written.text),
                }
            }
        }
        // Left as written, for the url's check to refuse where it is malformed.
        Err(malformed) => {
            percent_encode_into(out, &text[..text.len() - malformed.at.len()]);
            out.push_str(malformed.at);
        }
    }
}

fn percent_encode_into(out: &mut String, text: &str) {
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xf)]));
        }
    }
}
