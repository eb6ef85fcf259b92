//! Translating the parts of a `multipart/mixed` batch into ops: ids from
//! `Content-ID`s, change sets made dependency chains, targets made origin-form.

use std::collections::HashSet;

use bytes::Bytes;
use http::{StatusCode, header, request::Parts};

use super::parse::{self, unbracketed};
use crate::codec::spelling::rooted;
use crate::headers::is_connection_scoped;
use crate::model::{BatchRequest, Operation};
use crate::problem::Problem;

/// Decodes a `multipart/mixed` batch of at most `max_ops` requests.
pub(crate) fn decode(parts: &Parts, body: &Bytes, max_ops: usize) -> Result<BatchRequest, Problem> {
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = parse::boundary(content_type)?;
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let mut decoded = Decoded::default();
    for raw in parse::split(body, boundary, max_ops)? {
        let part = parse::part(raw).map_err(|p| p.at(Some(decoded.ops.len()), None))?;
        match part.kind {
            parse::Kind::Request => decoded.push(&part, host, max_ops)?,
            parse::Kind::ChangeSet(inner) => {
                let start = decoded.ops.len();
                let budget = max_ops.saturating_sub(start);
                for raw in parse::split(part.content, inner, budget)? {
                    let part = parse::part(raw).map_err(|p| p.at(Some(decoded.ops.len()), None))?;
                    if part.kind != parse::Kind::Request {
                        return Err(Problem::bad_request(
                            "a change set may hold only application/http parts, not another change set",
                        )
                        .at(Some(decoded.ops.len()), None));
                    }
                    decoded.push(&part, host, max_ops)?;
                }
                decoded.groups.push(start..decoded.ops.len());
            }
        }
    }
    Ok(decoded.into_batch())
}

/// The ops read so far, with their `Content-ID`s and change sets.
#[derive(Default)]
struct Decoded {
    ops: Vec<Operation>,
    labels: Vec<Option<String>>,
    groups: Vec<std::ops::Range<usize>>,
}

impl Decoded {
    fn push(
        &mut self,
        part: &parse::Part<'_>,
        host: Option<&str>,
        max_ops: usize,
    ) -> Result<(), Problem> {
        let index = self.ops.len();
        if index >= max_ops {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the batch has more than {max_ops} requests"),
            ));
        }
        let request = parse::request(part.content).map_err(|p| p.at(Some(index), None))?;
        let op = operation(request, host).map_err(|p| p.at(Some(index), None))?;
        self.ops.push(op);
        self.labels.push(part.content_id.map(str::to_owned));
        Ok(())
    }

    /// The batch: ids from `Content-ID`s, change sets chained.
    fn into_batch(mut self) -> BatchRequest {
        let given: HashSet<String> = self
            .labels
            .iter()
            .flatten()
            .map(|label| unbracketed(label).to_lowercase())
            .collect();
        for (index, (op, label)) in self.ops.iter_mut().zip(&self.labels).enumerate() {
            op.id = match label {
                Some(label) => Some(unbracketed(label).to_owned().into()),
                // A part without a Content-ID is known by its index, unless another
                // part already took that as its Content-ID.
                None if given.contains(&index.to_string()) => Some(format!("part-{index}").into()),
                None => None,
            };
        }
        for group in &self.groups {
            for index in group.clone().skip(1) {
                let previous = index - 1;
                let id = self.ops[previous]
                    .id
                    .as_deref()
                    .map_or_else(|| previous.to_string(), str::to_owned);
                self.ops[index].depends_on.push(id);
            }
        }
        let mut batch = BatchRequest::new(self.ops);
        batch.layout.labels = self.labels;
        batch.layout.groups = self.groups;
        batch
    }
}

/// Translates an embedded request into an op: the target made origin-form, `Host`
/// checked against the outer request's and dropped, connection-scoped headers
/// dropped as a proxy drops them (an HTTP library's session writes `Connection:
/// keep-alive` into every request it embeds), and the `Content-Type` and `null` body
/// some clients put on a GET ignored.
fn operation(request: parse::Request<'_>, host: Option<&str>) -> Result<Operation, Problem> {
    let mut op = Operation::new(request.method, url(request.target, host)?);
    for (name, value) in request.headers {
        if name.eq_ignore_ascii_case("host") {
            same_host(&value, host)?;
        } else if !is_connection_scoped(&name) {
            op.headers.push((name.into(), value.into()));
        }
    }
    let bodiless = ["GET", "HEAD"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(request.method));
    if bodiless && matches!(request.body.trim_ascii(), b"" | b"null") {
        op.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
    } else {
        op.body = Bytes::copy_from_slice(request.body);
    }
    Ok(op)
}

/// An origin-form url for `target`: an absolute-form target only when it names the
/// host the batch was sent to.
fn url(target: &str, host: Option<&str>) -> Result<String, Problem> {
    let Some((scheme, rest)) = target.split_once("://") else {
        return Ok(rooted(target.to_owned()));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(Problem::unprocessable(format!(
            "a part's target {target:?} is neither a path nor an http(s) URL"
        )));
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    same_host(authority, host)?;
    Ok(match path.as_bytes().first() {
        Some(b'/') => path.to_owned(),
        _ => format!("/{path}"),
    })
}

fn same_host(authority: &str, host: Option<&str>) -> Result<(), Problem> {
    if host.is_some_and(|host| host.eq_ignore_ascii_case(authority.trim())) {
        return Ok(());
    }
    Err(Problem::unprocessable(format!(
        "a part names host {authority:?}, but the batch was sent to {}; ops can only reach this server",
        host.unwrap_or("a request without a host")
    )))
}
