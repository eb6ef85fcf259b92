//! Splitting a list of ops of any length into batches the server takes: ops tied by
//! `depends_on` travel together, every batch within the advertised `max_ops` and
//! `max_body_bytes`.

use std::collections::HashMap;

use batch_core::Operation;
use bytes::Bytes;

use crate::error::Error;
use crate::wire::WireFormat;

/// The ops of a list with their dependencies resolved to positions, and the id
/// each travels under.
#[derive(Debug)]
pub(crate) struct Ops {
    pub(crate) ops: Vec<Operation>,
    /// Per op, the positions of the ops it depends on (unknown ids are left to the
    /// server, which refuses them).
    pub(crate) depends_on: Vec<Vec<usize>>,
    /// Per op, the id it is sent with: its own, else its position in the list when
    /// another op names it or the format needs one. `None`: sent without, its
    /// position in its batch standing in.
    pub(crate) wire_ids: Vec<Option<String>>,
}

impl Ops {
    pub(crate) fn new(ops: Vec<Operation>, format: WireFormat) -> Self {
        let mut by_id = HashMap::new();
        for (index, op) in ops.iter().enumerate() {
            // An op without an id answers to its position, as a batch of the whole
            // list would read it.
            let id = op
                .id
                .as_deref()
                .map_or_else(|| index.to_string(), str::to_owned);
            by_id.entry(id).or_insert(index);
        }
        let depends_on: Vec<Vec<usize>> = ops
            .iter()
            .map(|op| {
                op.depends_on
                    .iter()
                    .filter_map(|id| by_id.get(id).copied())
                    .collect()
            })
            .collect();
        let mut named = vec![format.needs_ids(); ops.len()];
        for &dependency in depends_on.iter().flatten() {
            named[dependency] = true;
        }
        let wire_ids = ops
            .iter()
            .enumerate()
            .map(|(index, op)| {
                op.id
                    .as_deref()
                    .map(str::to_owned)
                    .or_else(|| named[index].then(|| index.to_string()))
            })
            .collect();
        Self {
            ops,
            depends_on,
            wire_ids,
        }
    }

    /// The id the caller knows op `index` by.
    pub(crate) fn id(&self, index: usize) -> String {
        self.ops[index]
            .id
            .as_deref()
            .map_or_else(|| index.to_string(), str::to_owned)
    }

    /// Op `index` written for a batch in which only the ops `kept` accepts are sent:
    /// dependencies on the others are dropped (they succeeded in an earlier attempt).
    fn write(&self, index: usize, format: WireFormat, kept: &dyn Fn(usize) -> bool) -> Vec<u8> {
        let op = &self.ops[index];
        let depends_on: Vec<String> = if self.depends_on[index].len() == op.depends_on.len() {
            op.depends_on
                .iter()
                .zip(&self.depends_on[index])
                .filter(|&(_, &dependency)| kept(dependency))
                .map(|(id, _)| id.clone())
                .collect()
        } else {
            // An id that names no op stays, for the server to refuse.
            op.depends_on.clone()
        };
        format.op(op, self.wire_ids[index].as_deref(), &depends_on)
    }

    /// The body of a batch of the ops at `indices` (a retry of some of a batch's ops).
    pub(crate) fn body(&self, indices: &[usize], format: WireFormat) -> Bytes {
        let kept = |index: usize| indices.contains(&index);
        let written: Vec<Vec<u8>> = indices
            .iter()
            .map(|&index| self.write(index, format, &kept))
            .collect();
        assemble(format, &written)
    }

    /// The ids the ops at `indices` travel under, as their answers name them.
    pub(crate) fn wire_ids(&self, indices: &[usize]) -> Vec<String> {
        indices
            .iter()
            .enumerate()
            .map(|(position, &index)| {
                self.wire_ids[index]
                    .clone()
                    .unwrap_or_else(|| position.to_string())
            })
            .collect()
    }
}

/// The server's limits a batch must stay within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_ops: usize,
    pub(crate) max_body_bytes: usize,
}

/// One batch to send: the positions of its ops in the list, in list order, and its
/// body.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) indices: Vec<usize>,
    pub(crate) body: Bytes,
}

/// Splits `ops` into batches within `limits`, keeping every group of ops tied by
/// dependencies in one batch; groups are packed in list order. Fails, before
/// anything is sent, when a group alone is over a limit.
pub(crate) fn split(ops: &Ops, format: WireFormat, limits: Limits) -> Result<Vec<Chunk>, Error> {
    let groups = groups(&ops.depends_on);
    let (open, close) = format.envelope();
    let envelope = open.len() + close.len();
    let mut chunks = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut written: Vec<Vec<u8>> = Vec::new();
    let mut bytes = envelope;
    let all = |_| true;
    for group in groups {
        let group_ops: Vec<Vec<u8>> = group
            .iter()
            .map(|&index| ops.write(index, format, &all))
            .collect();
        let group_bytes: usize = group_ops.iter().map(|op| op.len() + 1).sum();
        let alone = envelope + group_bytes - 1;
        if group.len() > limits.max_ops || alone > limits.max_body_bytes {
            return Err(Error::GroupTooLarge {
                count: group.len(),
                ops: group,
                bytes: alone,
                max_ops: limits.max_ops,
                max_body_bytes: limits.max_body_bytes,
            });
        }
        let fits = current.len() + group.len() <= limits.max_ops
            && bytes + group_bytes - usize::from(current.is_empty()) <= limits.max_body_bytes;
        if !fits {
            chunks.push(chunk(format, &mut current, &mut written));
            bytes = envelope;
        }
        bytes += group_bytes - usize::from(current.is_empty());
        current.extend(group);
        written.extend(group_ops);
    }
    if !current.is_empty() {
        chunks.push(chunk(format, &mut current, &mut written));
    }
    Ok(chunks)
}

/// The batch of the ops gathered so far, in list order.
fn chunk(format: WireFormat, indices: &mut Vec<usize>, written: &mut Vec<Vec<u8>>) -> Chunk {
    let mut pairs: Vec<(usize, Vec<u8>)> = indices.drain(..).zip(written.drain(..)).collect();
    pairs.sort_by_key(|(index, _)| *index);
    let (indices, written): (Vec<usize>, Vec<Vec<u8>>) = pairs.into_iter().unzip();
    Chunk {
        body: assemble(format, &written),
        indices,
    }
}

fn assemble(format: WireFormat, written: &[Vec<u8>]) -> Bytes {
    let (open, close) = format.envelope();
    let mut body = Vec::with_capacity(
        open.len() + close.len() + written.iter().map(|op| op.len() + 1).sum::<usize>(),
    );
    body.extend_from_slice(open);
    for (position, op) in written.iter().enumerate() {
        if position > 0 {
            body.push(b',');
        }
        body.extend_from_slice(op);
    }
    body.extend_from_slice(close);
    body.into()
}

/// The groups of ops tied by dependencies (either way), each in list order, the
/// groups ordered by their first op.
fn groups(depends_on: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..depends_on.len()).collect();
    fn root(parent: &mut [usize], mut index: usize) -> usize {
        while parent[index] != index {
            parent[index] = parent[parent[index]];
            index = parent[index];
        }
        index
    }
    for (index, dependencies) in depends_on.iter().enumerate() {
        for &dependency in dependencies {
            let (a, b) = (root(&mut parent, index), root(&mut parent, dependency));
            // The smaller position is the root, so a group is found at its first op.
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of = vec![usize::MAX; depends_on.len()];
    for index in 0..depends_on.len() {
        let first = root(&mut parent, index);
        if group_of[first] == usize::MAX {
            group_of[first] = groups.len();
            groups.push(Vec::new());
        }
        groups[group_of[first]].push(index);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> Operation {
        Operation::new("GET", url)
    }

    fn depends(mut op: Operation, on: &str) -> Operation {
        op.depends_on.push(on.to_owned());
        op
    }

    fn limits(max_ops: usize) -> Limits {
        Limits {
            max_ops,
            max_body_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_dependency_pair_on_a_boundary_moves_to_the_next_batch() {
        let mut list: Vec<Operation> = (0..6).map(|i| get(&format!("/items/{i}"))).collect();
        list[2].id = Some("first".into());
        list[3] = depends(get("/health"), "first");
        let ops = Ops::new(list, WireFormat::Native);
        let chunks = split(&ops, WireFormat::Native, limits(3)).unwrap();
        let indices: Vec<_> = chunks.iter().map(|c| c.indices.clone()).collect();
        assert_eq!(indices, [vec![0, 1], vec![2, 3, 4], vec![5]]);
        let body: serde_json::Value = serde_json::from_slice(&chunks[1].body).unwrap();
        assert_eq!(body["ops"][0]["id"], "first");
        assert_eq!(body["ops"][1]["depends_on"], serde_json::json!(["first"]));
    }

    #[test]
    fn ops_named_by_position_get_that_id_on_the_wire() {
        let list = vec![get("/a"), get("/b"), depends(get("/c"), "1")];
        let ops = Ops::new(list, WireFormat::Native);
        assert_eq!(ops.wire_ids, [None, Some("1".to_owned()), None]);
        let chunks = split(&ops, WireFormat::Native, limits(2)).unwrap();
        assert_eq!(chunks[0].indices, [0]);
        assert_eq!(chunks[1].indices, [1, 2]);
        assert_eq!(ops.wire_ids(&chunks[1].indices), ["1", "1"]);
    }

    #[test]
    fn groups_are_kept_whole_even_when_interleaved() {
        let list = vec![
            get("/a"),
            get("/b"),
            depends(get("/c"), "0"),
            depends(get("/d"), "1"),
        ];
        let ops = Ops::new(list, WireFormat::Native);
        let chunks = split(&ops, WireFormat::Native, limits(2)).unwrap();
        let indices: Vec<_> = chunks.iter().map(|c| c.indices.clone()).collect();
        assert_eq!(indices, [vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn bodies_stay_within_the_byte_limit_exactly() {
        let list: Vec<Operation> = (0..40).map(|i| get(&format!("/items/{i}"))).collect();
        let ops = Ops::new(list, WireFormat::Graph);
        let max_body_bytes = 300;
        let chunks = split(
            &ops,
            WireFormat::Graph,
            Limits {
                max_ops: 50,
                max_body_bytes,
            },
        )
        .unwrap();
        assert!(chunks.len() > 1);
        let mut seen: Vec<usize> = Vec::new();
        for chunk in &chunks {
            assert!(chunk.body.len() <= max_body_bytes, "{}", chunk.body.len());
            let body: serde_json::Value = serde_json::from_slice(&chunk.body).unwrap();
            assert_eq!(
                body["requests"].as_array().unwrap().len(),
                chunk.indices.len()
            );
            seen.extend(chunk.indices.iter().copied());
        }
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        // A chunk one op larger would not have fit.
        let first = &chunks[0];
        let next = ops.body(
            &[&first.indices[..], &[first.indices.len()]].concat(),
            WireFormat::Graph,
        );
        assert!(next.len() > max_body_bytes);
    }

    #[test]
    fn a_group_larger_than_a_batch_fails_before_sending() {
        let list = vec![
            get("/a"),
            depends(get("/b"), "0"),
            depends(get("/c"), "1"),
            get("/d"),
        ];
        let ops = Ops::new(list, WireFormat::Native);
        match split(&ops, WireFormat::Native, limits(2)) {
            Err(Error::GroupTooLarge { ops, count, .. }) => {
                assert_eq!(ops, [0, 1, 2]);
                assert_eq!(count, 3);
            }
            other => panic!("{other:?}"),
        }
    }
}
