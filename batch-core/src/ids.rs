//! The ids of a batch's ops, compared ignoring case, indexed once per batch.

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::codec::json::scan::{HIGH_BITS, ONES};
use crate::model::{Operation, Text};

/// The ids of a batch's ops, in op order, compared ignoring case.
///
/// Indexed by sorting, not hashing: each op is sorted by a key, its id's first eight
/// bytes folded, and ops whose keys tie by their whole ids folded. One sort finds
/// every duplicate, and a lookup is a binary search. No choice of ids can make it
/// cost more than a sort's comparisons, so nothing needs a key kept from clients.
/// An id is folded only as it is compared, never into a copy: most ids are short and
/// lower-case, and a copy per op costs more than the rest of the lookup.
#[derive(Debug)]
pub(crate) struct Ids {
    ids: Vec<Text>,
    /// Each op's entry: its key's high bits, and its index in the bits of
    /// `index_bits`; in the order of their ids folded, equal ids in op order; empty
    /// for a batch of one op.
    ///
    /// One word, not a key and an index side by side: words sort in half the
    /// instructions pairs of them do. The bits an index takes from the key (6 of 64
    /// for a batch of 50) only make more keys tie, which the ids then settle.
    sorted: Vec<u64>,
    /// The low bits of an entry, which hold the op's index.
    index_bits: u64,
    /// The first op, in op order, whose id an earlier op has already.
    duplicate: Option<usize>,
}

impl Ids {
    /// Takes the ops' ids and indexes them. An op without one has its index, as a
    /// decimal string.
    pub(crate) fn take(ops: &mut [Operation]) -> Self {
        Self::new(taken(ops))
    }

    /// Indexes the ops' ids, given in op order.
    pub(crate) fn new(ids: Vec<Text>) -> Self {
        // A batch of one op has nothing to sort, and only its own id to find.
        let Some(last) = ids.len().checked_sub(1).filter(|&last| last > 0) else {
            return Self {
                ids,
                sorted: Vec::new(),
                index_bits: 0,
                duplicate: None,
            };
        };
        // As many bits as the last index has: below the first that is set, all.
        let index_bits = u64::MAX >> (last as u64).leading_zeros();
        let mut sorted: Vec<u64> = (ids.iter().map(|id| key(id.as_bytes())).zip(0..))
            .map(|(key, index)| key & !index_bits | index)
            .collect();
        // Numbers sort fast; only ops whose keys tie need their ids compared, and
        // only ids whose keys tie can be the same.
        sorted.sort_unstable();
        let mut duplicate = None;
        let same_key = |a: &u64, b: &u64| (a ^ b) & !index_bits == 0;
        for tied in sorted.chunk_by_mut(same_key).filter(|tied| tied.len() > 1) {
            let id = |entry: u64| ids[index_of(entry, index_bits)].as_bytes();
            tied.sort_by(|&a, &b| folded_cmp(id(a), id(b)).then(a.cmp(&b)));
            // Equal ids are next to each other, the earliest op first.
            let later = (tied.windows(2))
                .filter(|pair| folded_cmp(id(pair[0]), id(pair[1])).is_eq())
                .map(|pair| index_of(pair[1], index_bits))
                .min();
            if let Some(later) = later {
                duplicate = Some(duplicate.map_or(later, |first: usize| first.min(later)));
            }
        }
        Self {
            ids,
            sorted,
            index_bits,
            duplicate,
        }
    }

    /// The first op, in op order, whose id an earlier op has already.
    pub(crate) fn first_duplicate(&self) -> Option<usize> {
        self.duplicate
    }

    /// The index of the op with `id`, ignoring case (the first, were two the same).
    pub(crate) fn get(&self, id: &str) -> Option<usize> {
        let id = id.as_bytes();
        if self.sorted.is_empty() {
            return self
                .ids
                .iter()
                .position(|own| folded_cmp(own.as_bytes(), id).is_eq());
        }
        let key = key(id) & !self.index_bits;
        let order = |entry: u64| {
            let own = self.ids[index_of(entry, self.index_bits)].as_bytes();
            ((entry & !self.index_bits).cmp(&key)).then_with(|| folded_cmp(own, id))
        };
        let at = self.sorted.partition_point(|&entry| order(entry).is_lt());
        let entry = *self.sorted.get(at)?;
        order(entry)
            .is_eq()
            .then_some(index_of(entry, self.index_bits))
    }

    /// The ids, in op order.
    pub(crate) fn as_slice(&self) -> &[Text] {
        &self.ids
    }

    /// The ids, in op order.
    pub(crate) fn into_vec(self) -> Vec<Text> {
        self.ids
    }
}

/// The made-up ids of the first [`IN_TABLE`] ops, one after another: `0` to `99`.
const TABLE: &str = concat!(
    "0123456789",
    "10111213141516171819",
    "20212223242526272829",
    "30313233343536373839",
    "40414243444546474849",
    "50515253545556575859",
    "60616263646566676869",
    "70717273747576777879",
    "80818283848586878889",
    "90919293949596979899",
);

/// How many ops have their made-up ids in [`TABLE`].
const IN_TABLE: usize = 100;

/// Each op's id, taken from it, in op order. The ids made up for ops without one
/// allocate nothing of their own: the first ops' are slices of a static table, and
/// the others' slices of one buffer of their digits.
fn taken(ops: &mut [Operation]) -> Vec<Text> {
    let mut digits = String::new();
    for (index, _) in (ops.iter().enumerate().skip(IN_TABLE)).filter(|(_, op)| op.id.is_none()) {
        // Writing to a `String` does not fail.
        let _ = write!(digits, "{index}");
    }
    let digits = Text::from(digits);
    let mut at = 0;
    let mut made_up = |index: usize| {
        if index < IN_TABLE {
            return in_table(index);
        }
        let end = at + index.ilog10() as usize + 1;
        let id = digits.slice(at..end);
        at = end;
        id
    };
    // A plain loop: as a `collect`, its setup cost a batch of one op ~75
    // instructions.
    let mut ids = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter_mut().enumerate() {
        ids.push(op.id.take().unwrap_or_else(|| made_up(index)));
    }
    ids
}

/// The id of op `index`, its own or, without one, its index as a decimal string:
/// for one op at a time, where [`Ids::take`] has every op's at once (past the
/// table, a string of its own for each).
#[inline]
pub(crate) fn own_or_made_up(id: Option<Text>, index: usize) -> Text {
    match id {
        Some(id) => id,
        None if index < IN_TABLE => in_table(index),
        None => index.to_string().into(),
    }
}

/// The made-up id of op `index`, below [`IN_TABLE`]: a slice of the table.
fn in_table(index: usize) -> Text {
    let start = if index < 10 { index } else { 2 * index - 10 };
    let end = if index < 10 { index + 1 } else { start + 2 };
    TABLE
        .get(start..end)
        .map_or_else(Text::default, Text::from_static)
}

/// The op an entry of the index stands for, its index in the bits `index_bits`.
fn index_of(entry: u64, index_bits: u64) -> usize {
    (entry & index_bits) as usize
}

/// The first eight bytes of `id` folded (UTF-8, zeros past its end), as a number:
/// ids whose keys differ compare as their keys do, so most comparisons look at
/// nothing else.
// Inlined into the loop over the ids, as an ASCII one's key alone is.
#[inline]
fn key(id: &[u8]) -> u64 {
    let word = first_word(id);
    // ASCII folds byte for byte, whatever comes after: all eight at once. (The
    // word is read little-endian, the key is its first byte most significant.)
    if word & HIGH_BITS == 0 {
        return ascii_lowercase(word).swap_bytes();
    }
    unicode_key(id)
}

/// [`key`] for an id whose first eight bytes are not all ASCII.
#[inline(never)]
fn unicode_key(id: &[u8]) -> u64 {
    let mut bytes = text(id).chars().flat_map(char::to_lowercase).flat_map(|c| {
        let mut utf8 = [0; 4];
        let len = c.encode_utf8(&mut utf8).len();
        utf8.into_iter().take(len)
    });
    let mut key = [0; 8];
    for to in &mut key {
        *to = bytes.next().unwrap_or(0);
    }
    u64::from_be_bytes(key)
}

/// The first eight bytes of `id`, zeros past its end, as a word read
/// little-endian: read as one or two pieces, not copied byte by byte (most ids are
/// shorter than a word).
fn first_word(id: &[u8]) -> u64 {
    if let Some(first) = id.first_chunk::<8>() {
        return u64::from_le_bytes(*first);
    }
    if let (Some(first), Some(last)) = (id.first_chunk::<4>(), id.last_chunk::<4>()) {
        // Four to seven bytes: the first four, and the last four where they lie
        // (the bytes they share are the same in both).
        let last = u64::from(u32::from_le_bytes(*last)) << (8 * (id.len() - 4));
        return u64::from(u32::from_le_bytes(*first)) | last;
    }
    match *id {
        [a, b, c] => u64::from(u32::from_le_bytes([a, b, c, 0])),
        [a, b] => u64::from(u16::from_le_bytes([a, b])),
        [a] => u64::from(a),
        _ => 0,
    }
}

/// `word`, eight ASCII bytes, with each upper-case letter made lower-case.
fn ascii_lowercase(word: u64) -> u64 {
    // A byte's top bit after adding is whether it was at least `A`, and whether it
    // was past `Z`: no sum of an ASCII byte carries into the next.
    let from_a = word + ONES * u64::from(0x80 - b'A');
    let past_z = word + ONES * u64::from(0x80 - b'Z' - 1);
    let upper = from_a & !past_z & HIGH_BITS;
    word | upper >> 2
}

/// Orders two ids folded, character by character: equal for ids that are the same
/// ignoring case.
fn folded_cmp(a: &[u8], b: &[u8]) -> Ordering {
    // An id is mostly named as it was given: the same bytes, equal at once.
    if a == b {
        return Ordering::Equal;
    }
    if a.is_ascii() && b.is_ascii() {
        // A plain loop: the iterators' `cmp` costs about 150 instructions for a
        // short id.
        for (x, y) in a.iter().zip(b) {
            let order = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
            if order.is_ne() {
                return order;
            }
        }
        return a.len().cmp(&b.len());
    }
    (text(a).chars().flat_map(char::to_lowercase)).cmp(text(b).chars().flat_map(char::to_lowercase))
}

/// An id's bytes as the text they are. Ids are compared as bytes, which spares
/// ASCII ids (most) a UTF-8 check; only folding other characters reads them as text.
fn text(id: &[u8]) -> &str {
    // Every id is a `Text` or a `str`: the check cannot fail.
    std::str::from_utf8(id).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What the index must answer, the slow way: every pair compared.
    fn same(a: &str, b: &str) -> bool {
        a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
    }

    /// Ids from pieces that fold alike or nearly, some past eight bytes and some
    /// sharing those first eight.
    fn id() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "a", "A", "b", "é", "É", "ß", "\u{212a}", "k", "K", "İ", "i", "\0", "abcdefgh",
            "ABCDEFGH",
        ]);
        prop::collection::vec(piece, 0..4).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn the_index_answers_as_comparing_every_pair_would(
            ids in prop::collection::vec(id(), 0..12),
            asked in prop::collection::vec(id(), 0..6),
        ) {
            let index = Ids::new(ids.iter().cloned().map(Text::from).collect());
            let duplicate = (0..ids.len()).find(|&j| (0..j).any(|i| same(&ids[i], &ids[j])));
            prop_assert_eq!(index.first_duplicate(), duplicate);
            for id in ids.iter().chain(&asked) {
                let first = ids.iter().position(|other| same(other, id));
                prop_assert_eq!(index.get(id), first, "{:?}", id);
            }
        }
    }

    fn ids(ids: &[&str]) -> Ids {
        Ids::new(ids.iter().map(|&id| Text::from(id)).collect())
    }

    #[test]
    fn ids_are_the_same_ignoring_case_in_any_script() {
        let index = ids(&["Op", "ÉTÉ", "straße", "Ωμέγα", "\u{212a}elvin"]);
        assert_eq!(index.first_duplicate(), None);
        for (other, at) in [
            ("oP", 0),
            ("été", 1),
            ("STRAßE", 2),
            ("ωΜΈΓΑ", 3),
            ("kelvin", 4),
        ] {
            assert_eq!(index.get(other), Some(at), "{other}");
            let mut with = index.as_slice().to_vec();
            with.push(other.to_owned().into());
            assert_eq!(Ids::new(with).first_duplicate(), Some(5), "{other}");
        }
        assert_eq!(index.get("op "), None);
        assert_eq!(
            index.get("strasse"),
            None,
            "folding is per character, not full case folding"
        );
    }

    #[test]
    fn ids_that_share_their_first_bytes_stay_apart() {
        let index = ids(&["request-00002", "REQUEST-00001", "request-0000", "request-"]);
        assert_eq!(index.first_duplicate(), None);
        let found = [
            "request-00001",
            "Request-00002",
            "request-0000",
            "request-",
            "request",
        ]
        .map(|id| index.get(id));
        assert_eq!(found, [Some(1), Some(0), Some(2), Some(3), None]);
        // An id that ends in NUL bytes has the key of one without them.
        let index = ids(&["a", "a\0"]);
        assert_eq!(index.first_duplicate(), None);
        assert_eq!((index.get("A"), index.get("A\0")), (Some(0), Some(1)));
    }

    /// An entry's index takes the low bits of its key, more as a batch grows: ids
    /// that differ only there tie, and are told apart (and found) by their bytes.
    #[test]
    fn ids_that_differ_where_the_index_lies_stay_apart() {
        for count in [2, 3, 50, 300, 70_000] {
            // Ids of eight bytes (more past 4,096 ops) that differ in their last two,
            // each of 64 bytes that are no letters: the eighth byte, and the seventh
            // past 256 ops, are where the index lies.
            let byte = |bits: u32| char::from(b'\x01' + (bits & 63) as u8);
            let made: Vec<String> = (0..count)
                .map(|i: u32| {
                    let more = if i >> 12 > 0 {
                        (i >> 12).to_string()
                    } else {
                        String::new()
                    };
                    format!("id-xyz{}{}{more}", byte(i >> 6), byte(i))
                })
                .collect();
            let index = Ids::new(made.iter().map(|id| Text::from(id.as_str())).collect());
            assert_eq!(index.first_duplicate(), None, "{count}");
            for at in [0, count / 2, count - 1] {
                let at = at as usize;
                assert_eq!(index.get(&made[at].to_uppercase()), Some(at), "{count}");
            }
            let mut twice = made.clone();
            twice.push(made[made.len() / 2].to_uppercase());
            twice.push(made[0].clone());
            let index = Ids::new(twice.into_iter().map(Text::from).collect());
            assert_eq!(index.first_duplicate(), Some(made.len()), "{count}");
        }
    }

    #[test]
    fn an_op_without_an_id_has_its_index() {
        const NAMED: [usize; 8] = [0, 7, 99, 100, 101, 999, 1000, 1233];
        let mut ops: Vec<Operation> = (0..1234).map(|_| Operation::new("GET", "/")).collect();
        for named in NAMED {
            ops[named].id = Some(Text::from(format!("op{named}")));
        }
        let index = Ids::take(&mut ops);
        assert!(ops.iter().all(|op| op.id.is_none()), "taken");
        for (at, id) in index.as_slice().iter().enumerate() {
            if NAMED.contains(&at) {
                assert_eq!(*id, format!("op{at}"));
            } else {
                assert_eq!(*id, at.to_string());
            }
        }
        assert_eq!(index.get("1001"), Some(1001));
        assert_eq!(index.get("7"), None, "op 7 has an id of its own");
    }

    /// The key read a word at a time is the one the eight bytes copied one by
    /// one and folded make, for every short length and every kind of byte.
    #[test]
    fn keys_are_the_first_eight_bytes_folded() {
        let slow = |id: &[u8]| {
            let mut key = [0; 8];
            for (to, &b) in key.iter_mut().zip(id) {
                *to = b.to_ascii_lowercase();
            }
            u64::from_be_bytes(key)
        };
        for len in 0..=10 {
            for at in 0..len {
                for b in [
                    0, b'0', b'@', b'A', b'M', b'Z', b'[', b'`', b'a', b'z', b'{', 0x7f,
                ] {
                    let mut id = b"kEy-Id-Ab".repeat(2)[..len].to_vec();
                    id[at] = b;
                    assert_eq!(key(&id), slow(&id), "{id:?}");
                }
            }
        }
        assert_eq!(key("ÉTÉ".as_bytes()), key("été".as_bytes()));
    }

    #[test]
    fn one_id_is_found_unsorted() {
        let index = ids(&["Only"]);
        assert_eq!(index.first_duplicate(), None);
        assert_eq!((index.get("ONLY"), index.get("other")), (Some(0), None));
        assert_eq!(ids(&[]).get("x"), None);
    }

    #[test]
    fn the_first_duplicate_is_the_earliest_op_an_earlier_one_named_first() {
        assert_eq!(ids(&["a", "b", "B", "A"]).first_duplicate(), Some(2));
        assert_eq!(ids(&["a", "b", "A", "B"]).first_duplicate(), Some(2));
        assert_eq!(
            ids(&["x", "a", "b", "c", "b", "A"]).first_duplicate(),
            Some(4)
        );
        let thrice = ids(&["k", "K", "k"]);
        assert_eq!(thrice.first_duplicate(), Some(1));
        assert_eq!(thrice.get("k"), Some(0), "the first of equal ids");
    }
}
