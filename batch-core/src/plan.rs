//! The dependency graph of a batch, planned once before anything runs.

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, HeaderMap, Request};

use crate::codec::Field;
use crate::endpoint::BatchOp;
use crate::hooks::OpView;
use crate::model::{Layout, OnError};
use crate::validate::{Violation, ViolationKind};

/// A validated operation, ready to dispatch.
#[derive(Debug)]
pub(crate) struct PlannedOp {
    /// The request; until [`Shared::complete`] runs on it, its headers are only the
    /// op's own and its extensions are empty.
    pub(crate) request: Request<Bytes>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) silent: bool,
}

/// A validated batch: its ops, who waits for whom, and how to run them.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Each op's id, by index.
    pub(crate) ids: Vec<String>,
    pub(crate) ops: Vec<PlannedOp>,
    /// What every op's request takes from the outer request.
    pub(crate) shared: Shared,
    /// Whether every op's request is complete already.
    pub(crate) complete: bool,
    pub(crate) graph: Graph,
    pub(crate) sequential: bool,
    pub(crate) on_error: OnError,
    pub(crate) include_headers: bool,
    /// The request's layout, for the codec to answer in the same shape.
    pub(crate) layout: Layout,
}

impl PlannedOp {
    /// Takes the request to dispatch it, leaving an empty one.
    pub(crate) fn take_request(&mut self) -> Request<Bytes> {
        std::mem::replace(&mut self.request, Request::new(Bytes::new()))
    }
}

/// What every op's request takes from the outer request: its inherited headers and
/// its extensions.
///
/// An op's request is completed with them just before it starts, not when the batch
/// is validated: a batch then holds one request's copies at a time rather than
/// every op's, and ops that answer at once hand their memory straight to the next.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) headers: HeaderMap,
    pub(crate) extensions: Extensions,
}

impl Shared {
    /// Gives op `index`'s request the inherited headers, its own replacing those
    /// of the same name, the outer extensions, and the [`BatchOp`] marker.
    pub(crate) fn complete(&self, index: usize, request: &mut Request<Bytes>) {
        let own = std::mem::replace(request.headers_mut(), self.headers.clone());
        let headers = request.headers_mut();
        let mut current = None;
        // A map yields a name with its first value, then `None` for each further one.
        for (name, value) in own {
            match name {
                Some(name) => {
                    headers.insert(&name, value);
                    current = Some(name);
                }
                None => {
                    if let Some(name) = &current {
                        headers.append(name, value);
                    }
                }
            }
        }
        *request.extensions_mut() = self.extensions.clone();
        request.extensions_mut().insert(BatchOp { index });
    }
}

impl Plan {
    /// Completes every op's request now, for hooks that see the whole batch.
    pub(crate) fn complete_all(&mut self) {
        if !self.complete {
            for (index, op) in self.ops.iter_mut().enumerate() {
                self.shared.complete(index, &mut op.request);
            }
            self.complete = true;
        }
    }

    /// How hooks see op `index`, once [`Plan::complete_all`] has run.
    pub(crate) fn view(&self, index: usize) -> OpView<'_> {
        OpView {
            index,
            id: &self.ids[index],
            request: &self.ops[index].request,
        }
    }
}

/// Edges between ops, by index, both ways.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// For each op, the ops it waits for, in the order its `depends_on` named them.
    pub(crate) deps: Vec<Vec<usize>>,
    /// For each op, the ops waiting for it.
    pub(crate) dependents: Vec<Vec<usize>>,
}

/// The ids of a batch's ops, in op order, compared ignoring case.
///
/// Validation adds each op's id, refusing duplicates as it goes, and planning
/// resolves `depends_on` against the same index. An id is folded only as it is
/// hashed and compared, never into a copy: most ids are short and lower-case, and a
/// copy per op costs more than the rest of the lookup.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    ids: Vec<String>,
    /// The first op whose folded id has this hash.
    first: HashMap<u64, usize, BuildHasherDefault<Prehashed>>,
    /// For each op, the next op whose folded id hashes the same.
    next: Vec<Option<usize>>,
    /// Keyed per batch, so clients cannot choose ids that all collide.
    hasher: RandomState,
}

impl Ids {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            ids: Vec::with_capacity(n),
            first: HashMap::with_capacity_and_hasher(n, BuildHasherDefault::default()),
            next: Vec::with_capacity(n),
            hasher: RandomState::new(),
        }
    }

    /// Adds the next op's id; gives it back if an earlier op has it already.
    pub(crate) fn push(&mut self, id: String) -> Result<(), String> {
        let hash = self.hash(&id);
        let index = self.ids.len();
        let next = match self.first.entry(hash) {
            Entry::Vacant(entry) => {
                entry.insert(index);
                None
            }
            Entry::Occupied(mut entry) => {
                let (ids, next) = (&self.ids, &self.next);
                if chain(next, *entry.get()).any(|other| same(&ids[other], &id)) {
                    return Err(id);
                }
                Some(entry.insert(index))
            }
        };
        self.ids.push(id);
        self.next.push(next);
        Ok(())
    }

    /// The index of the op with `id`, ignoring case.
    fn get(&self, id: &str) -> Option<usize> {
        let first = *self.first.get(&self.hash(id))?;
        chain(&self.next, first).find(|&other| same(&self.ids[other], id))
    }

    /// The ids, in op order.
    pub(crate) fn into_vec(self) -> Vec<String> {
        self.ids
    }

    /// The hash of `id` folded: the same for ids [`same`] calls equal.
    fn hash(&self, id: &str) -> u64 {
        let mut state = self.hasher.build_hasher();
        if id.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
            state.write(id.as_bytes());
        } else {
            let mut utf8 = [0; 4];
            for c in id.chars().flat_map(char::to_lowercase) {
                state.write(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
        state.finish()
    }
}

/// The ops whose ids share a hash, from `first`, given each op's next.
fn chain(next: &[Option<usize>], first: usize) -> impl Iterator<Item = usize> + '_ {
    std::iter::successors(Some(first), |&index| next[index])
}

/// Hashes a key that is a hash already: the ids' own hasher is keyed per batch.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// Whether two ids are equal ignoring case.
fn same(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

impl Graph {
    /// Resolves every `depends_on` id against `ids` and refuses unknown ids, forward
    /// references in a sequential batch, and cycles.
    pub(crate) fn build(
        ids: &Ids,
        depends_on: &[Vec<String>],
        sequential: bool,
    ) -> Result<Self, Violation> {
        let mut graph = Self {
            deps: vec![Vec::new(); depends_on.len()],
            dependents: vec![Vec::new(); depends_on.len()],
        };
        for (op, names) in depends_on.iter().enumerate() {
            for (position, name) in names.iter().enumerate() {
                let violation = |kind| Violation {
                    op,
                    field: Field::DependsOn(position),
                    kind,
                };
                let dep = ids
                    .get(name)
                    .ok_or_else(|| violation(ViolationKind::UnknownDependency(name.clone())))?;
                if sequential && dep >= op {
                    return Err(violation(ViolationKind::ForwardDependency(name.clone())));
                }
                if !graph.deps[op].contains(&dep) {
                    graph.deps[op].push(dep);
                    graph.dependents[dep].push(op);
                }
            }
        }
        // A cycle needs an edge; most batches have none.
        let has_edges = graph.deps.iter().any(|deps| !deps.is_empty());
        if let Some(op) = has_edges.then(|| lowest_on_cycle(&graph.deps)).flatten() {
            return Err(Violation {
                op,
                field: Field::DependsOn(0),
                kind: ViolationKind::Cycle,
            });
        }
        Ok(graph)
    }
}

/// The lowest index of any op on a dependency cycle, found with Tarjan's strongly
/// connected components in linear time (iteratively: batches may be large).
fn lowest_on_cycle(deps: &[Vec<usize>]) -> Option<usize> {
    const UNVISITED: usize = usize::MAX;
    let n = deps.len();
    let mut order = vec![UNVISITED; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut frames: Vec<(usize, usize)> = Vec::new();
    let mut next = 0;
    let mut lowest: Option<usize> = None;
    for root in 0..n {
        if order[root] != UNVISITED {
            continue;
        }
        order[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        frames.push((root, 0));
        while let Some(&(v, edge)) = frames.last() {
            if let Some(&w) = deps[v].get(edge) {
                if let Some(frame) = frames.last_mut() {
                    frame.1 += 1;
                }
                if order[w] == UNVISITED {
                    order[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    frames.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == order[v] {
                let mut smallest = v;
                let mut size = 0;
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    smallest = smallest.min(w);
                    size += 1;
                    if w == v {
                        break;
                    }
                }
                if size > 1 || deps[v].contains(&v) {
                    lowest = Some(lowest.map_or(smallest, |l| l.min(smallest)));
                }
            }
        }
    }
    lowest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Ids {
        let mut ids = Ids::with_capacity(n);
        for i in 0..n {
            ids.push(format!("Op{i}")).unwrap();
        }
        ids
    }

    #[test]
    fn ids_are_the_same_ignoring_case_in_any_script() {
        let mut ids = Ids::with_capacity(4);
        for id in ["Op", "ÉTÉ", "straße", "Ωμέγα"] {
            ids.push(id.to_owned()).unwrap();
        }
        for (other, index) in [("oP", 0), ("été", 1), ("STRAßE", 2), ("ωΜΈΓΑ", 3)] {
            assert_eq!(ids.get(other), Some(index), "{other}");
            assert_eq!(ids.push(other.to_owned()), Err(other.to_owned()));
        }
        assert_eq!(ids.get("op "), None);
        assert_eq!(
            ids.get("strasse"),
            None,
            "folding is per character, not full case folding"
        );
    }

    #[test]
    fn ids_whose_hashes_collide_stay_apart() {
        // Every id in one chain, as if all hashed the same: lookups must compare.
        let mut ids = Ids::with_capacity(3);
        for id in ["a", "b", "c"] {
            ids.ids.push(id.to_owned());
            ids.next.push(ids.ids.len().checked_sub(2));
        }
        for id in ["a", "b", "c", "d"] {
            ids.first.insert(ids.hash(id), 2);
        }
        let found: Vec<_> = ["A", "b", "C", "d"].map(|id| ids.get(id)).into();
        assert_eq!(found, [Some(0), Some(1), Some(2), None]);
        assert_eq!(ids.push("B".to_owned()), Err("B".to_owned()));
    }

    fn deps(lists: &[&[&str]]) -> Vec<Vec<String>> {
        lists
            .iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn resolves_ids_ignoring_case_both_directions() {
        let graph = Graph::build(&ids(3), &deps(&[&["OP2"], &[], &["op1", "op1"]]), false).unwrap();
        assert_eq!(graph.deps, vec![vec![2], vec![], vec![1]]);
        assert_eq!(graph.dependents, vec![vec![], vec![2], vec![0]]);
    }

    #[test]
    fn unknown_and_forward_references_are_refused() {
        let err = Graph::build(&ids(2), &deps(&[&[], &["op0", "nope"]]), false).unwrap_err();
        assert_eq!((err.op, err.field), (1, Field::DependsOn(1)));
        assert!(matches!(err.kind, ViolationKind::UnknownDependency(_)));
        let err = Graph::build(&ids(2), &deps(&[&["op1"], &[]]), true).unwrap_err();
        assert!(matches!(err.kind, ViolationKind::ForwardDependency(_)));
    }

    #[test]
    fn cycles_are_reported_at_their_lowest_index() {
        // 0 -> 1 -> 2 -> 3 -> 2: 0 and 1 only lead into the cycle {2, 3}.
        let err = Graph::build(
            &ids(4),
            &deps(&[&["op1"], &["op2"], &["op3"], &["op2"]]),
            false,
        )
        .unwrap_err();
        assert_eq!(err.op, 2);
        assert!(matches!(err.kind, ViolationKind::Cycle));
        let err = Graph::build(&ids(3), &deps(&[&[], &[], &["op2"]]), false).unwrap_err();
        assert_eq!(err.op, 2, "an op depending on itself is a cycle");
        let err = Graph::build(
            &ids(5),
            &deps(&[&[], &["op4"], &[], &["op1"], &["op3"]]),
            false,
        )
        .unwrap_err();
        assert_eq!(err.op, 1);
    }

    #[test]
    fn long_chains_are_planned_without_recursion() {
        let n = 100_000;
        let lists: Vec<Vec<String>> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![format!("op{}", i + 1)]
                } else {
                    vec![]
                }
            })
            .collect();
        let graph = Graph::build(&ids(n), &lists, false).unwrap();
        assert_eq!(graph.deps[0], vec![1]);
    }
}
