//! Reading a Graph / OData JSON batch: required ids, relative urls, bodies in JSON
//! or base64, and atomicity groups made dependency chains.

use std::collections::HashMap;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::codec::json::{self, At, OneOrMany, field, parse_document};
use crate::codec::spelling::rooted;
use crate::model::{BatchRequest, Operation, is_json_content_type};
use crate::problem::Problem;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    requests: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    url: Option<&'a RawValue>,
    #[serde(borrow)]
    headers: Option<&'a RawValue>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
    #[serde(borrow, rename = "dependsOn")]
    depends_on: Option<&'a RawValue>,
    #[serde(borrow, rename = "atomicityGroup")]
    atomicity_group: Option<&'a RawValue>,
    #[serde(borrow, rename = "if")]
    condition: Option<&'a RawValue>,
}

/// Base64 as Graph and OData clients write it: standard or URL-safe alphabet, with
/// or without padding.
const BASE64: [GeneralPurpose; 2] = [
    GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    ),
    GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    ),
];

/// Decodes a Graph / OData JSON batch.
pub(crate) fn decode(body: &Bytes) -> Result<BatchRequest, Problem> {
    let envelope: Envelope<'_> = parse_document(body)?;
    let requests = envelope
        .requests
        .ok_or_else(|| Problem::bad_request("the batch has no `requests` array"))?;
    let requests: Vec<&RawValue> = field(requests, None, "/requests", "an array of requests")?;
    if requests.is_empty() {
        return Err(Problem::bad_request("`requests` is empty").at(None, Some("/requests".into())));
    }
    let mut ops = Vec::with_capacity(requests.len());
    let mut groups = Vec::with_capacity(requests.len());
    for (index, raw) in requests.into_iter().enumerate() {
        let (op, group) = decode_request(index, raw, body)?;
        ops.push(op);
        groups.push(group);
    }
    chain_groups(&mut ops, &groups)?;
    Ok(BatchRequest::new(ops))
}

fn decode_request(
    index: usize,
    raw: &RawValue,
    document: &Bytes,
) -> Result<(Operation, Option<String>), Problem> {
    let at = |name| At {
        list: "requests",
        index,
        name,
    };
    let request: RawRequest<'_> = field(
        raw,
        Some(index),
        at(""),
        "an object with `id`, `method` and `url`",
    )?;
    let missing = |name: &'static str| {
        Problem::bad_request(format!("request {index} has no `{name}`"))
            .at(Some(index), Some(at(name).to_string()))
    };
    let id: String = field(
        request.id.ok_or_else(|| missing("id"))?,
        Some(index),
        at("id"),
        "a non-empty string",
    )?;
    if id.is_empty() {
        return Err(
            Problem::bad_request(format!("{} must be a non-empty string", at("id")))
                .at(Some(index), Some(at("id").to_string())),
        );
    }
    let method: String = field(
        request.method.ok_or_else(|| missing("method"))?,
        Some(index),
        at("method"),
        "a string",
    )?;
    let url: String = field(
        request.url.ok_or_else(|| missing("url"))?,
        Some(index),
        at("url"),
        "a string",
    )?;
    let mut op = Operation::new(method, rooted(url));
    op.id = Some(id.into());
    if let Some(raw) = request.headers {
        op.headers = json::headers(raw, index, at("headers"))?;
    }
    if let Some(raw) = request.depends_on {
        let ids: OneOrMany<'_> =
            field(raw, Some(index), at("dependsOn"), "an array of request ids")?;
        op.depends_on = ids.into_vec();
    }
    if let Some(raw) = request.condition {
        op.condition = Some(field(raw, Some(index), at("if"), "a condition string")?);
    }
    if let Some(raw) = request.body.filter(|raw| raw.get() != "null") {
        op.body = body(&mut op, raw, document).ok_or_else(|| {
            Problem::bad_request(format!(
                "{} must be base64 when the request's content type is not JSON",
                at("body")
            ))
            .at(Some(index), Some(at("body").to_string()))
        })?;
    }
    let group = match request.atomicity_group {
        Some(raw) => Some(field::<String>(
            raw,
            Some(index),
            at("atomicityGroup"),
            "a string",
        )?),
        None => None,
    };
    Ok((op, group))
}

/// A request body: base64 when the declared content type is not JSON and the body is
/// a string (`None` if it is not base64), JSON text otherwise.
fn body(op: &mut Operation, raw: &RawValue, document: &Bytes) -> Option<Bytes> {
    let binary = json::declared_content_type(op).is_some_and(|ct| !is_json_content_type(ct));
    match serde_json::from_str::<String>(raw.get()) {
        Ok(text) if binary => BASE64
            .iter()
            .find_map(|engine| engine.decode(text.as_bytes()).ok())
            .map(Bytes::from),
        _ => Some(json::json_body(op, raw.get(), document)),
    }
}

/// Makes every atomicity group a dependency chain (each member waits for the one
/// before it) and resolves group names in `dependsOn` to the group's members.
///
/// A group name replaces itself with the group's first member in place, and the other
/// members go to the end of the list, so `dependsOn/{i}` still points at what the
/// client wrote for every `i` it wrote.
fn chain_groups(ops: &mut [Operation], groups: &[Option<String>]) -> Result<(), Problem> {
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    let mut previous_group: Option<String> = None;
    for (index, group) in groups.iter().enumerate() {
        let Some(group) = group.as_deref() else {
            previous_group = None;
            continue;
        };
        let key = group.to_lowercase();
        let id = ops[index].id.as_deref().unwrap_or_default().to_owned();
        match members.get_mut(&key) {
            Some(list) if previous_group.as_ref() == Some(&key) => {
                let before = list.last().cloned().unwrap_or_default();
                list.push(id);
                ops[index].depends_on.push(before);
            }
            Some(_) => {
                return Err(Problem::bad_request(format!(
                    "the members of atomicity group {group:?} must be adjacent"
                ))
                .at(
                    Some(index),
                    Some(format!("/requests/{index}/atomicityGroup")),
                ));
            }
            None => {
                members.insert(key.clone(), vec![id]);
            }
        }
        previous_group = Some(key);
    }
    if members.is_empty() {
        return Ok(());
    }
    for (index, op) in ops.iter_mut().enumerate() {
        let id = op.id.as_deref().unwrap_or_default().to_lowercase();
        if members.contains_key(&id) {
            return Err(Problem::bad_request(format!(
                "request id {id:?} is also the name of an atomicity group"
            ))
            .at(Some(index), Some(format!("/requests/{index}/id"))));
        }
        let mut extra = Vec::new();
        for name in &mut op.depends_on {
            if let Some(list) = members.get(&name.to_lowercase()) {
                *name = list[0].clone();
                extra.extend(list[1..].iter().cloned());
            }
        }
        op.depends_on.extend(extra);
    }
    Ok(())
}
