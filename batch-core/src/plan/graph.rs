//! The dependency graph of a batch: `depends_on` ids resolved to op indexes, checked
//! for unknown ids, forward references in a sequential batch, and cycles.

use crate::ids::Ids;

/// Edges between ops, by index, both ways.
///
/// Each direction is one list of every op's neighbours, op after op, and where each
/// op's part of it ends: a batch makes a handful of allocations for its edges, not
/// two per op. All four lists are empty when no op waits for another, as in most
/// batches.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// The ops each op waits for, in the order its `depends_on` named them.
    deps: Vec<usize>,
    /// Where each op's part of `deps` ends.
    deps_end: Vec<usize>,
    /// The ops waiting for each op, lowest first.
    dependents: Vec<usize>,
    /// Where each op's part of `dependents` ends.
    dependents_end: Vec<usize>,
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
    /// references in a sequential batch, and cycles. `depends_on` has each op's ids
    /// in op order, or no entry at all when no op names another.
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
                graph.deps_end.reserve_exact(n);
                // The ops before this one name none.
                graph.deps_end.resize(op, 0);
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
                    graph.deps.push(dep);
                }
            }
            if !named_by.is_empty() {
                graph.deps_end.push(graph.deps.len());
            }
        }
        // A graph without edges has nothing more to build, and no cycle.
        if named_by.is_empty() {
            return Ok(graph);
        }
        graph.link_dependents();
        match lowest_on_cycle(&graph) {
            Some(op) => Err(GraphError {
                op,
                position: 0,
                kind: GraphErrorKind::Cycle,
            }),
            None => Ok(graph),
        }
    }

    /// Fills the dependents' lists from the dependencies' (a counting sort: each
    /// op's dependents come out in op order).
    fn link_dependents(&mut self) {
        let n = self.deps_end.len();
        // First each op's count of dependents, then where its part starts, then,
        // as the part is filled, where it ends.
        let mut end = vec![0; n];
        for &dep in &self.deps {
            end[dep] += 1;
        }
        let mut total = 0;
        for at in &mut end {
            (*at, total) = (total, total + *at);
        }
        let mut dependents = vec![0; self.deps.len()];
        for op in 0..n {
            for &dep in self.deps(op) {
                dependents[end[dep]] = op;
                end[dep] += 1;
            }
        }
        self.dependents = dependents;
        self.dependents_end = end;
    }

    /// Whether no op waits for another.
    pub(crate) fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// The ops `op` waits for, in the order its `depends_on` named them.
    #[inline]
    pub(crate) fn deps(&self, op: usize) -> &[usize] {
        part(&self.deps, &self.deps_end, op)
    }

    /// The ops waiting for `op`, lowest first.
    #[inline]
    pub(crate) fn dependents(&self, op: usize) -> &[usize] {
        part(&self.dependents, &self.dependents_end, op)
    }
}

/// Op `op`'s part of `list`, whose parts end at `ends`: none in a graph without
/// edges, which has no lists at all.
fn part<'a>(list: &'a [usize], ends: &[usize], op: usize) -> &'a [usize] {
    let Some(&end) = ends.get(op) else {
        return &[];
    };
    let start = match op {
        0 => 0,
        _ => ends[op - 1],
    };
    list.get(start..end).unwrap_or_default()
}

/// Where Tarjan's walk stands with an op.
#[derive(Clone, Copy)]
struct Visit {
    order: usize,
    low: usize,
    on_stack: bool,
}

/// The lowest index of any op on a dependency cycle, found with Tarjan's strongly
/// connected components in linear time (iteratively: batches may be large).
fn lowest_on_cycle(graph: &Graph) -> Option<usize> {
    const UNVISITED: usize = usize::MAX;
    let n = graph.deps_end.len();
    let mut visits = vec![
        Visit {
            order: UNVISITED,
            low: 0,
            on_stack: false,
        };
        n
    ];
    let mut stack = Vec::new();
    let mut frames: Vec<(usize, usize)> = Vec::new();
    let mut next = 0;
    let mut lowest: Option<usize> = None;
    for root in 0..n {
        if visits[root].order != UNVISITED {
            continue;
        }
        visits[root] = Visit {
            order: next,
            low: next,
            on_stack: true,
        };
        next += 1;
        stack.push(root);
        frames.push((root, 0));
        while let Some(&(v, edge)) = frames.last() {
            if let Some(&w) = graph.deps(v).get(edge) {
                if let Some(frame) = frames.last_mut() {
                    frame.1 += 1;
                }
                if visits[w].order == UNVISITED {
                    visits[w] = Visit {
                        order: next,
                        low: next,
                        on_stack: true,
                    };
                    next += 1;
                    stack.push(w);
                    frames.push((w, 0));
                } else if visits[w].on_stack {
                    visits[v].low = visits[v].low.min(visits[w].order);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                visits[parent].low = visits[parent].low.min(visits[v].low);
            }
            if visits[v].low == visits[v].order {
                let mut smallest = v;
                let mut size = 0;
                while let Some(w) = stack.pop() {
                    visits[w].on_stack = false;
                    smallest = smallest.min(w);
                    size += 1;
                    if w == v {
                        break;
                    }
                }
                if size > 1 || graph.deps(v).contains(&v) {
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
        let deps: Vec<&[usize]> = (0..3).map(|op| graph.deps(op)).collect();
        assert_eq!(deps, [&[2][..], &[], &[1]]);
        let dependents: Vec<&[usize]> = (0..3).map(|op| graph.dependents(op)).collect();
        assert_eq!(dependents, [&[][..], &[2], &[0]]);
    }

    #[test]
    fn each_op_keeps_its_order_of_dependencies_and_dependents_come_lowest_first() {
        let lists = deps(&[
            &[],
            &["op3", "op0"],
            &[],
            &["op0", "op2"],
            &["op0", "op3", "OP0"],
        ]);
        let graph = build(&ids(5), &lists, false).unwrap();
        let deps: Vec<&[usize]> = (0..5).map(|op| graph.deps(op)).collect();
        assert_eq!(deps, [&[][..], &[3, 0], &[], &[0, 2], &[0, 3]]);
        let dependents: Vec<&[usize]> = (0..5).map(|op| graph.dependents(op)).collect();
        assert_eq!(dependents, [&[1, 3, 4][..], &[], &[3], &[1, 4], &[]]);
    }

    #[test]
    fn a_batch_without_dependencies_makes_no_lists() {
        let graph = build(&ids(3), &deps(&[&[], &[], &[]]), true).unwrap();
        assert!(graph.deps_end.is_empty() && graph.dependents_end.is_empty());
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
        assert_eq!(graph.deps(0), [1]);
        assert_eq!(graph.dependents(n - 1), [n - 2]);
    }
}
