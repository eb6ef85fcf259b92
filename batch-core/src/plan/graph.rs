//! The dependency graph of a batch: `depends_on` ids resolved to op indexes, checked
//! for unknown ids, forward references in a sequential batch, and cycles.

use crate::ids::Ids;

/// Edges between ops, by index, both ways.
///
/// Both lists are empty when no op waits for another, as in most batches: there is
/// then no list per op to make.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// For each op, the ops it waits for, in the order its `depends_on` named them.
    deps: Vec<Vec<usize>>,
    /// For each op, the ops waiting for it.
    dependents: Vec<Vec<usize>>,
}

/// Why the ops' dependencies cannot be planned.
#[derive(Debug)]
pub(crate) struct GraphError {
    /// The op whose `depends_on` is at fault (for a cycle, its lowest index).
    pub(crate) op: usize,
    /// The position of the offending id in that op's `depends_on`.
    pub(crate) position: usize,
    pub(crate) kind: GraphErrorKind,
}

#[derive(Debug)]
pub(crate) enum GraphErrorKind {
    /// An id that names no op.
    Unknown(String),
    /// An id of a later op, in a sequential batch.
    Forward(String),
    /// The op is on a cycle.
    Cycle,
}

impl Graph {
    /// Resolves every `depends_on` id against `ids` and refuses unknown ids, forward
    /// references in a sequential batch, and cycles.
    pub(crate) fn build<'a>(
        ids: &Ids,
        depends_on: impl ExactSizeIterator<Item = &'a [String]>,
        sequential: bool,
    ) -> Result<Self, GraphError> {
        let mut graph = Self::default();
        // The last op that named each op: an id named twice by one op is one edge,
        // found without searching the op's list (references and conditions can make
        // that list long). Made with the lists at the first name.
        let mut named_by = Vec::new();
        let n = depends_on.len();
        for (op, names) in depends_on.enumerate() {
            if !names.is_empty() && named_by.is_empty() {
                named_by = vec![usize::MAX; n];
                graph.deps = vec![Vec::new(); n];
                graph.dependents = vec![Vec::new(); n];
            }
            for (position, name) in names.iter().enumerate() {
                let error = |kind| GraphError { op, position, kind };
                let dep = ids
                    .get(name)
                    .ok_or_else(|| error(GraphErrorKind::Unknown(name.clone())))?;
                if sequential && dep >= op {
                    return Err(error(GraphErrorKind::Forward(name.clone())));
                }
                if named_by[dep] != op {
                    named_by[dep] = op;
                    graph.deps[op].push(dep);
                    graph.dependents[dep].push(op);
                }
            }
        }
        // A cycle needs an edge; most batches have none.
        let has_edges = !named_by.is_empty();
        if let Some(op) = has_edges.then(|| lowest_on_cycle(&graph.deps)).flatten() {
            return Err(GraphError {
                op,
                position: 0,
                kind: GraphErrorKind::Cycle,
            });
        }
        Ok(graph)
    }

    /// The ops `op` waits for, in the order its `depends_on` named them.
    pub(crate) fn deps(&self, op: usize) -> &[usize] {
        // A graph without edges has no lists at all; one with edges has every op's.
        if self.deps.is_empty() {
            &[]
        } else {
            &self.deps[op]
        }
    }

    /// The ops waiting for `op`.
    pub(crate) fn dependents(&self, op: usize) -> &[usize] {
        if self.dependents.is_empty() {
            &[]
        } else {
            &self.dependents[op]
        }
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
    use crate::model::Text;

    fn ids(n: usize) -> Ids {
        Ids::new((0..n).map(|i| Text::from(format!("Op{i}"))).collect())
    }

    fn build(ids: &Ids, lists: &[Vec<String>], sequential: bool) -> Result<Graph, GraphError> {
        Graph::build(ids, lists.iter().map(Vec::as_slice), sequential)
    }

    fn deps(lists: &[&[&str]]) -> Vec<Vec<String>> {
        lists
            .iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn resolves_ids_ignoring_case_both_directions() {
        let graph = build(&ids(3), &deps(&[&["OP2"], &[], &["op1", "op1"]]), false).unwrap();
        assert_eq!(graph.deps, vec![vec![2], vec![], vec![1]]);
        assert_eq!(graph.dependents, vec![vec![], vec![2], vec![0]]);
    }

    #[test]
    fn a_batch_without_dependencies_makes_no_lists() {
        let graph = build(&ids(3), &deps(&[&[], &[], &[]]), true).unwrap();
        assert!(graph.deps.is_empty() && graph.dependents.is_empty());
        assert!((0..3).all(|op| graph.deps(op).is_empty() && graph.dependents(op).is_empty()));
        let graph = build(&ids(3), &deps(&[&[], &[], &["op0"]]), true).unwrap();
        assert_eq!((graph.deps(2), graph.dependents(0)), (&[0][..], &[2][..]));
        assert!(graph.deps(1).is_empty() && graph.dependents(1).is_empty());
    }

    #[test]
    fn unknown_and_forward_references_are_refused() {
        let err = build(&ids(2), &deps(&[&[], &["op0", "nope"]]), false).unwrap_err();
        assert_eq!((err.op, err.position), (1, 1));
        assert!(matches!(err.kind, GraphErrorKind::Unknown(_)));
        let err = build(&ids(2), &deps(&[&["op1"], &[]]), true).unwrap_err();
        assert!(matches!(err.kind, GraphErrorKind::Forward(_)));
    }

    #[test]
    fn cycles_are_reported_at_their_lowest_index() {
        // 0 -> 1 -> 2 -> 3 -> 2: 0 and 1 only lead into the cycle {2, 3}.
        let err = build(
            &ids(4),
            &deps(&[&["op1"], &["op2"], &["op3"], &["op2"]]),
            false,
        )
        .unwrap_err();
        assert_eq!(err.op, 2);
        assert!(matches!(err.kind, GraphErrorKind::Cycle));
        let err = build(&ids(3), &deps(&[&[], &[], &["op2"]]), false).unwrap_err();
        assert_eq!(err.op, 2, "an op depending on itself is a cycle");
        let err = build(
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
        let graph = build(&ids(n), &lists, false).unwrap();
        assert_eq!(graph.deps[0], vec![1]);
    }
}
