//! Reading an aggregate array: GET paths, each run once.

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::codec::json::{field, parse_document};
use crate::model::{BatchRequest, Operation};
use crate::problem::Problem;

/// Decodes an aggregate array of paths.
pub(crate) fn decode(body: &Bytes) -> Result<BatchRequest, Problem> {
    let paths: Vec<&RawValue> = parse_document(body)?;
    if paths.is_empty() {
        return Err(Problem::bad_request("the array of paths is empty"));
    }
    let mut seen = HashSet::with_capacity(paths.len());
    let mut ops = Vec::with_capacity(paths.len());
    let mut labels = Vec::with_capacity(paths.len());
    for (index, raw) in paths.into_iter().enumerate() {
        let path: String = field(raw, Some(index), format!("/{index}"), "a path string")?;
        if seen.insert(path.clone()) {
            ops.push(Operation::new("GET", path.clone()));
            labels.push(Some(path));
        }
    }
    let mut batch = BatchRequest::new(ops);
    batch.layout.labels = labels;
    Ok(batch)
}
