//! Links: an op's url, headers or body taking values from the results of ops that
//! finished before it.
//!
//! Two spellings, by format:
//!
//! - `{result=ID:PATH}` (native and Facebook formats), in the url, header values and
//!   string values of a JSON body (a form body in the Facebook format): the value at
//!   `PATH`, a JSONPath subset (module `reference`), in op `ID`'s JSON response body;
//! - `$ID` (Graph / OData JSON and multipart) as the first segment of the url, for
//!   the `Location` op `ID` answered, and as the whole of an `If-Match` header, for
//!   its `ETag`.
//!
//! A batch is read for references once, when it is planned: [`extract`] takes them
//! out of an op before it is validated (each is checked with a placeholder in its
//! place), [`Found::resolve`] maps their ids to op indexes with the batch's id index
//! (no reference ever scans the ops), and the [`Links`] that come out are applied by
//! the engine when the op is about to start, its dependencies finished
//! (module `substitute`).

mod substitute;
mod template;

use bytes::Bytes;
use http::{HeaderName, Request, header};
use serde_json::Value;
use thiserror::Error;

use crate::codec::spelling;
use crate::ids::Ids;
use crate::model::{Field, Format, Operation, is_json_content_type};
use crate::reference::{Piece, has_reference, pieces};
pub(crate) use template::Links;
use template::{Body, Part, Reference, Source, Template, each_string};

/// The most references one op may hold.
pub(crate) const MAX_REFERENCES: usize = 16;

/// What a placeholder stands for while the text around a reference is validated.
const PLACEHOLDER: &str = "0";

/// An op's references as extracted, ids not yet resolved; where each lies.
#[derive(Debug)]
pub(crate) struct Found {
    links: Links,
    fields: Vec<Field>,
}

/// Why an op's references make its batch unacceptable (422).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ReferenceError {
    #[error(
        "has a malformed reference at {0:?} (a reference is {{result=ID:PATH}}, PATH one of $, .name, ['name'], [n], [*] and .*)"
    )]
    Malformed(String),
    #[error("has more than {MAX_REFERENCES} references")]
    TooMany,
    #[error("refers to {0:?}, which is no operation of this batch")]
    Unknown(String),
    #[error("refers to {0:?}, which does not come earlier in a sequential batch")]
    Forward(String),
}

/// A [`ReferenceError`] and the field it lies in.
pub(crate) type Refusal = (Field, ReferenceError);

/// Takes the `{result=...}` references out of `op`, in a format that has them:
/// the url and header values are left with a placeholder in each reference's place,
/// to be validated as the rest of the op is. `None` when the op has none.
// Inlined, and the taking kept apart: most ops hold none, and are answered by the
// tests alone, without the call into the large frame the taking needs. What is
// found is boxed: the answer for most is then a word, not a `Found` moved about.
#[inline]
pub(crate) fn extract(op: &mut Operation, format: Format) -> Result<Option<Box<Found>>, Refusal> {
    if !matches!(format, Format::Native | Format::Facebook) {
        return Ok(None);
    }
    let in_url = has_reference(op.url.as_bytes());
    let in_headers = op
        .headers
        .iter()
        .any(|(_, value)| has_reference(value.as_bytes()));
    let in_body = has_reference(&op.body);
    if !(in_url || in_headers || in_body) {
        return Ok(None);
    }
    take(op, in_url, in_headers, in_body)
}

/// The references of an op that holds some, in the fields that do.
#[inline(never)]
fn take(
    op: &mut Operation,
    in_url: bool,
    in_headers: bool,
    in_body: bool,
) -> Result<Option<Box<Found>>, Refusal> {
    let mut found = Found {
        links: Links {
            references: Vec::new(),
            url: None,
            headers: Vec::new(),
            body: None,
        },
        fields: Vec::new(),
    };
    if in_url {
        let template = found.template(op.url.as_str(), Field::Url, &op.whole_params)?;
        op.url = placeholder(&template).into();
        found.links.url = Some(template);
    }
    if in_headers {
        found.headers(op)?;
    }
    if in_body {
        found.body(op)?;
    }
    Ok((!found.links.references.is_empty()).then(|| Box::new(found)))
}

impl Found {
    /// Reads the references of `text`, which lies in `field`; `params` says where
    /// in it the `params` values that are exactly one reference start (ascending).
    fn template(
        &mut self,
        text: &str,
        field: Field,
        params: &[usize],
    ) -> Result<Template, Refusal> {
        let pieces = pieces(text).map_err(|malformed| {
            let shown: String = malformed.at.chars().take(64).collect();
            (field.clone(), ReferenceError::Malformed(shown))
        })?;
        let mut template = Vec::with_capacity(pieces.len());
        let mut params = params.iter().peekable();
        let mut at = 0;
        for piece in pieces {
            match piece {
                Piece::Text(text) => {
                    at += text.len();
                    template.push(Part::Text(text.to_owned()));
                }
                Piece::Reference(written) => {
                    let reference = self.links.references.len();
                    while params.next_if(|&&start| start < at).is_some() {}
                    let param = params.next_if_eq(&&at).is_some();
                    at += written.text.len();
                    let key = if param {
                        param_key(&mut template)
                    } else {
                        None
                    };
                    template.push(match key {
                        Some(key) => Part::Param { key, reference },
                        None => Part::Reference(reference),
                    });
                    self.push(
                        Reference {
                            id: written.id.to_owned(),
                            op: usize::MAX,
                            source: Source::Body(written.path),
                            text: written.text.to_owned(),
                        },
                        field.clone(),
                    )?;
                }
            }
        }
        Ok(template)
    }

    fn push(&mut self, reference: Reference, field: Field) -> Result<(), Refusal> {
        if self.links.references.len() >= MAX_REFERENCES {
            return Err((field, ReferenceError::TooMany));
        }
        self.links.references.push(reference);
        self.fields.push(field);
        Ok(())
    }

    /// Every header named like one with a reference becomes a template, values in
    /// order, each reference replaced by a placeholder in the op.
    fn headers(&mut self, op: &mut Operation) -> Result<(), Refusal> {
        let mut names: Vec<String> = Vec::new();
        for (name, value) in &op.headers {
            if has_reference(value.as_bytes())
                && !names.iter().any(|n| n.eq_ignore_ascii_case(name))
            {
                names.push(name.to_string());
            }
        }
        for name in names {
            let field = Field::Header(name.clone());
            // A name that is no header name is left for validation to refuse.
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            let mut values = Vec::new();
            for (other, value) in &mut op.headers {
                if other.eq_ignore_ascii_case(&name) {
                    let template = self.template(value, field.clone(), &[])?;
                    *value = placeholder(&template).into();
                    values.push(template);
                }
            }
            self.links.headers.push((header, values));
        }
        Ok(())
    }

    /// A JSON body's strings (a form body's text, in the Facebook format) with
    /// references. A body of another type, or JSON that does not parse, is sent as
    /// it is.
    fn body(&mut self, op: &Operation) -> Result<(), Refusal> {
        let content_type = crate::codec::json::declared_content_type(op).unwrap_or_default();
        if is_json_content_type(content_type) {
            let Ok(mut document) = serde_json::from_slice::<Value>(&op.body) else {
                return Ok(());
            };
            let mut templates = Vec::new();
            let mut failed = None;
            each_string(&mut document, &mut |text: &mut String| {
                if failed.is_none() && has_reference(&*text) {
                    match self.template(text, Field::Body, &[]) {
                        Ok(template) => templates.push(template),
                        Err(refusal) => failed = Some(refusal),
                    }
                }
            });
            if let Some(refusal) = failed {
                return Err(refusal);
            }
            self.links.body = Some(Body::Json(document, templates));
        } else if spelling::essence(content_type) == "application/x-www-form-urlencoded" {
            let Ok(text) = std::str::from_utf8(&op.body) else {
                return Ok(());
            };
            let template = self.template(text, Field::Body, &[])?;
            self.links.body = Some(Body::Form(template));
        }
        Ok(())
    }

    /// Resolves every id to its op's index with `ids`; returns the links and the ids
    /// the op now depends on. `index` is the op's own; in a sequential batch a
    /// reference must name an earlier op.
    pub(crate) fn resolve(
        mut self,
        ids: &Ids,
        index: usize,
        sequential: bool,
    ) -> Result<Links, Refusal> {
        for (reference, field) in self.links.references.iter_mut().zip(self.fields) {
            let unknown = || ReferenceError::Unknown(reference.id.clone());
            let op = ids
                .get(&reference.id)
                .ok_or_else(|| (field.clone(), unknown()))?;
            if sequential && op >= index {
                let kind = ReferenceError::Forward(reference.id.clone());
                return Err((field, kind));
            }
            reference.op = op;
        }
        Ok(self.links)
    }
}

/// The OData references of an op of a Graph or multipart batch: a url whose first
/// segment is `$ID` and an `If-Match: $ID`, where `ID` names an op of the batch
/// (any other `$` segment, `$metadata` say, is a plain url).
pub(crate) fn odata(request: &Request<Bytes>, ids: &Ids, index: usize) -> Option<Links> {
    let mut links = Links {
        references: Vec::new(),
        url: None,
        headers: Vec::new(),
        body: None,
    };
    let url = request.uri().path_and_query().map_or("", |pq| pq.as_str());
    if let Some(after) = url.strip_prefix("/$") {
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let id = &after[..end];
        if let Some(op) = ids.get(id).filter(|&op| op != index) {
            links.url = Some(vec![
                Part::Reference(0),
                Part::Text(after[end..].to_owned()),
            ]);
            links.references.push(Reference {
                id: id.to_owned(),
                op,
                source: Source::Location,
                text: format!("${id}"),
            });
        }
    }
    let if_match = request.headers().get_all(header::IF_MATCH);
    let mut values = if_match.iter();
    if let (Some(value), None) = (values.next(), values.next()) {
        let id = value.to_str().ok().and_then(|v| v.trim().strip_prefix('$'));
        if let Some((id, op)) = id.and_then(|id| Some((id, ids.get(id)?))) {
            let at = links.references.len();
            links.references.push(Reference {
                id: id.to_owned(),
                op,
                source: Source::ETag,
                text: format!("${id}"),
            });
            links
                .headers
                .push((header::IF_MATCH, vec![vec![Part::Reference(at)]]));
        }
    }
    (!links.references.is_empty()).then_some(links)
}

/// Takes the `key=` a `params` value follows off the end of `template`: the key,
/// or `None` (nothing taken) when the template does not end in a query's `key=`.
fn param_key(template: &mut Template) -> Option<String> {
    let Some(Part::Text(text)) = template.last_mut() else {
        return None;
    };
    let pair = text.strip_suffix('=')?;
    let start = pair.rfind(['?', '&'])? + 1;
    let key = pair[start..].to_owned();
    text.truncate(start);
    Some(key)
}

/// `template` with a placeholder for each reference: what validation checks.
fn placeholder(template: &Template) -> String {
    let mut out = String::new();
    for part in template {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Reference(_) => out.push_str(PLACEHOLDER),
            Part::Param { key, .. } => {
                out.push_str(key);
                out.push('=');
                out.push_str(PLACEHOLDER);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    /// The first op of a native batch, as decoded.
    fn decoded(batch: serde_json::Value) -> Operation {
        let body = Bytes::from(batch.to_string());
        let mut batch = crate::codec::native::decode(&body).unwrap();
        batch.ops.remove(0)
    }

    fn url_of(op: &mut Operation) -> Template {
        let found = extract(op, Format::Native).unwrap().unwrap();
        found.links.url.unwrap()
    }

    fn text(text: &str) -> Part {
        Part::Text(text.to_owned())
    }

    #[test]
    fn a_params_value_that_is_one_reference_is_a_param() {
        let mut op = decoded(json!({"ops": [{"url": "/echo?x=1", "params": {
            "a": "{result=a:$[*].id}",
            "b c": "{result=a:$.b}",
            "d": "x{result=a:$.d}",
            "e": ["{result=a:$.e}"],
            "f": 2,
        }}]}));
        assert_eq!(
            url_of(&mut op),
            [
                text("/echo?x=1&"),
                Part::Param {
                    key: "a".into(),
                    reference: 0
                },
                text("&"),
                Part::Param {
                    key: "b%20c".into(),
                    reference: 1
                },
                text("&d=x"),
                Part::Reference(2),
                text("&e="),
                Part::Reference(3),
                text("&f=2"),
            ]
        );
        assert_eq!(op.url, "/echo?x=1&a=0&b%20c=0&d=x0&e=0&f=2");
    }

    #[test]
    fn a_reference_in_the_url_itself_stays_text() {
        let mut op = decoded(json!({"ops": [{
            "url": "/echo?a={result=a:$[*]}",
            "params": {"b": "{result=a:$[*]}"},
        }]}));
        assert_eq!(
            url_of(&mut op),
            [
                text("/echo?a="),
                Part::Reference(0),
                text("&"),
                Part::Param {
                    key: "b".into(),
                    reference: 1
                },
            ]
        );
    }

    #[test]
    fn params_of_a_body_are_not_params_of_a_query() {
        let mut op = decoded(json!({"ops": [{
            "method": "POST", "url": "/echo", "params": {"b": "{result=a:$[*]}"},
        }]}));
        assert!(op.whole_params.is_empty());
        let found = extract(&mut op, Format::Native).unwrap().unwrap();
        assert!(found.links.url.is_none() && found.links.body.is_some());
    }

    #[test]
    fn offsets_that_name_no_params_value_are_plain_references() {
        let url = "/echo?a={result=a:$}&{result=b:$}";
        for offsets in [vec![0, 3, 8, 9, 21, 500], vec![usize::MAX], vec![21]] {
            let mut op = Operation::new("GET", url);
            op.whole_params = offsets;
            let template = url_of(&mut op);
            let wanted = if op.whole_params.contains(&8) {
                Part::Param {
                    key: "a".into(),
                    reference: 0,
                }
            } else {
                Part::Reference(0)
            };
            assert_eq!(template[1], wanted);
            // The second follows no `key=`: never a param.
            assert_eq!(template[3], Part::Reference(1));
        }
    }
}
