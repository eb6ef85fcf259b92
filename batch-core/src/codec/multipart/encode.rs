//! Writing the `multipart/mixed` response: CRLF everywhere, an unquoted boundary of
//! letters, digits and `_` that appears nowhere in the content, one
//! `application/http` part per op in request order, change sets as nested multiparts.

use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use memchr::memmem;

use super::parse::unbracketed;
use crate::codec::spelling::canonical_name;
use crate::model::{BatchResponse, Format, OpResult};

/// The multipart answer: one part per op, change sets as nested multiparts.
pub(crate) fn encode(response: &BatchResponse) -> Response<Bytes> {
    let results = &response.results;
    // Content-IDs and change sets, when the client sent this format.
    let no_layout = crate::model::Layout::default();
    let layout = match response.layout.format {
        Format::Multipart => &response.layout,
        _ => &no_layout,
    };
    let outer = boundary("batch", results);
    let mut out = Vec::new();
    let mut index = 0;
    while let Some(result) = results.get(index) {
        out.extend_from_slice(format!("--{outer}\r\n").as_bytes());
        match layout
            .groups
            .iter()
            .find(|g| g.start == index && !g.is_empty())
        {
            Some(group) => {
                let members = results.get(group.clone()).unwrap_or_default();
                let labels = layout.labels.get(group.clone()).unwrap_or_default();
                write_changeset(&mut out, members, labels);
                index = group.end;
            }
            None => {
                let label = layout
                    .labels
                    .get(index)
                    .and_then(Option::as_deref)
                    .map(|label| format!("<response-{}>", unbracketed(label)));
                write_part(&mut out, result, label.as_deref());
                index += 1;
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{outer}--\r\n").as_bytes());
    let mut http = Response::new(Bytes::from(out));
    let content_type = format!("multipart/mixed; boundary={outer}");
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        http.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    http
}

/// A change set's answer, the body of one outer part: a nested multipart of its
/// `members`' parts, in order, each labelled as the client labelled it.
pub(crate) fn write_changeset(out: &mut Vec<u8>, members: &[OpResult], labels: &[Option<String>]) {
    let inner = boundary("changeset", members);
    out.extend_from_slice(
        format!("Content-Type: multipart/mixed; boundary={inner}\r\n\r\n").as_bytes(),
    );
    for (member, result) in members.iter().enumerate() {
        out.extend_from_slice(format!("--{inner}\r\n").as_bytes());
        // Inside a change set the id is echoed as sent: OData clients match on it.
        let label = labels.get(member).and_then(Option::as_deref);
        write_part(out, result, label);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{inner}--").as_bytes());
}

/// One part of a streamed answer, op `index`'s: as in a buffered answer, but every
/// part carries a `Content-ID` (the one the client sent, else the op's id), since
/// parts come in the order their ops finish.
pub(crate) fn write_labelled_part(out: &mut Vec<u8>, result: &OpResult, label: Option<&str>) {
    let id = format!(
        "<response-{}>",
        label.map_or(result.id.as_str(), unbracketed)
    );
    write_part(out, result, Some(&id));
}

/// A boundary for an answer written before its results are known: random, so no
/// op can plant it (it is not checked against results still to come).
pub(crate) fn streamed_boundary() -> String {
    boundary("batch", &[])
}

/// One `application/http` part: MIME headers, then the op's response as HTTP/1.1.
fn write_part(out: &mut Vec<u8>, result: &OpResult, content_id: Option<&str>) {
    out.extend_from_slice(b"Content-Type: application/http\r\n");
    if let Some(id) = content_id {
        out.extend_from_slice(format!("Content-ID: {id}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    let status = result.status;
    let reason = status.canonical_reason().unwrap_or("Unknown");
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
    for (name, value) in &result.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(canonical_name(name.as_str()).as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // Always a Content-Length, 0 on a 204 too (as Google answers): clients split the
    // head from the body at the first empty line and fail on a head with no header.
    let body = result.body.as_bytes();
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

/// A boundary `{prefix}_{16 hex digits}` that occurs in no body or header value of
/// `results`: random, so no op can plant it, and checked, so none did by chance.
fn boundary(prefix: &str, results: &[OpResult]) -> String {
    loop {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let candidate = format!("{prefix}_{random:016x}");
        let finder = memmem::Finder::new(candidate.as_bytes());
        let taken = results.iter().any(|result| {
            finder.find(result.body.as_bytes()).is_some()
                || result
                    .headers
                    .values()
                    .any(|value| finder.find(value.as_bytes()).is_some())
        });
        if !taken {
            return candidate;
        }
    }
}
