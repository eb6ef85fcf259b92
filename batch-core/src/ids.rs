//! The ids of a batch's ops, compared ignoring case, indexed once per batch.

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

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
    pub(crate) fn get(&self, id: &str) -> Option<usize> {
        let first = *self.first.get(&self.hash(id))?;
        chain(&self.next, first).find(|&other| same(&self.ids[other], id))
    }

    /// The ids, in op order.
    pub(crate) fn as_slice(&self) -> &[String] {
        &self.ids
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
