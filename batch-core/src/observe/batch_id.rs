//! A batch's id: the caller's `x-request-id`, or one made up for it; each op's
//! `x-request-id` is derived from it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The header that names a request across services.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The response header that gives a batch's id when the request named none.
pub(crate) const X_BATCH_ID: HeaderName = HeaderName::from_static("x-batch-id");

/// The longest `x-request-id` taken as a batch's id; a longer one is replaced.
const MAX_LEN: usize = 128;

/// The longest id the engine makes up: a 32-bit prefix and a 64-bit counter, in hex.
const GENERATED_MAX: usize = 24;

/// A batch's id, and whether the engine made it up (then the answer carries it in
/// `x-batch-id`, since the caller cannot know it).
#[derive(Debug, Clone)]
pub(crate) struct BatchId(Id);

#[derive(Debug, Clone)]
enum Id {
    /// The caller's `x-request-id`, sharing its bytes.
    Given(HeaderValue),
    /// One made up, held in place: every batch without an `x-request-id` makes one,
    /// and it is copied wherever it goes (op ids, `x-batch-id`) rather than shared.
    Generated {
        digits: [u8; GENERATED_MAX],
        len: usize,
    },
}

impl BatchId {
    /// The id of a batch that came with `headers`: its `x-request-id` when it has
    /// one that is short and printable, otherwise a new one.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        Self::named(headers.get(X_REQUEST_ID))
    }

    /// The id of a batch whose (first) `x-request-id` is `given`, found by the
    /// caller: [`of`](Self::of) without the lookup.
    pub(crate) fn named(given: Option<&HeaderValue>) -> Self {
        let given = given.filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(u8::is_ascii_graphic)
        });
        match given {
            Some(value) => Self(Id::Given(value.clone())),
            None => Self::generate(),
        }
    }

    /// A new id, unique in this process and unlikely to repeat across processes: a
    /// random prefix drawn once, then a counter, in hex.
    pub(crate) fn generate() -> Self {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let mut digits = *prefix();
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        // A `u32` always takes 8 digits.
        let len = push_hex(&mut digits, 8, count);
        Self(Id::Generated { digits, len })
    }

    /// Draws the random prefix of the ids this process makes up, if it has not been
    /// drawn yet: an endpoint does it when it is made, so that no batch pays for it.
    pub(crate) fn draw_prefix() {
        prefix();
    }

    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Id::Given(value) => value.as_bytes(),
            Id::Generated { digits, len } => &digits[..*len],
        }
    }

    /// The id as text (always ASCII: checked or made so).
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The id as an `x-batch-id` value when the engine made it up (the caller cannot
    /// know it); `None` for the caller's own `x-request-id`. Made from `ops`, the
    /// batch's op ids, when it was planned: the value shares their bytes rather than
    /// copying the id once more, and is taken from them: nothing needs it there once
    /// the ops inherit it.
    pub(crate) fn generated_header(&self, ops: Option<&mut OpIds>) -> Option<HeaderValue> {
        match &self.0 {
            Id::Given(_) => None,
            Id::Generated { .. } => ops
                .and_then(OpIds::take_batch)
                .or_else(|| HeaderValue::from_bytes(self.as_bytes()).ok()),
        }
    }

    /// The `x-request-id`s of a batch of `ops` ops: the batch's own, which they
    /// inherit, and each op's, `{batch}-{index}`.
    pub(crate) fn op_ids(&self, ops: usize) -> OpIds {
        let id = self.as_bytes();
        let width = id.len() + 1 + decimal_len(ops.saturating_sub(1));
        let total = id.len() + ops * width;
        // Shared from the start: `Bytes::from` of a full `Vec` makes a buffer that
        // the first clone (the batch's value, just below) converts to a shared one,
        // and every op's clone and drop then pays for checking which of the two it is.
        // The ids of a small batch are held in that shared box itself, not in a
        // buffer of their own: one allocation (and free) fewer.
        let values = if total <= SHORT {
            let mut short = Short {
                len: total,
                bytes: [0; SHORT],
            };
            write_op_ids(&mut short.bytes[..total], id, width);
            Bytes::from_owner(short)
        } else {
            // Filled rather than zeroed by the allocator: glibc's `calloc`, which
            // `vec![0; n]` calls, passes its per-thread cache by.
            let mut values = Vec::with_capacity(total);
            values.extend_from_slice(id);
            values.resize(total, 0);
            write_op_ids(&mut values, id, width);
            Bytes::from_owner(values)
        };
        // Checked once here: it goes into the inherited headers and, made up, into
        // the answer's `x-batch-id`, each a clone. Cut from the buffer even when the
        // caller sent it: a value the op sets can never share these bytes.
        let batch = HeaderValue::from_maybe_shared(values.slice(..id.len())).ok();
        OpIds {
            values,
            batch,
            id_len: id.len(),
            width,
        }
    }
}

/// The most bytes of op ids held in the box of their shared `Bytes` (see
/// [`BatchId::op_ids`]): a batch of one or two ops with an id the engine made up.
const SHORT: usize = 56;

/// The op ids of a small batch, in place.
struct Short {
    len: usize,
    bytes: [u8; SHORT],
}

impl AsRef<[u8]> for Short {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Writes the batch's `id` into `out`, then after it a slot of `width` bytes per op
/// (as many as `out` has room for), each op's id at its start: `{id}-{index}`.
fn write_op_ids(out: &mut [u8], id: &[u8], width: usize) {
    let Some((batch, slots)) = out.split_at_mut_checked(id.len()) else {
        return;
    };
    batch.copy_from_slice(id);
    // The first op's id is written whole: a batch of one op needs no more.
    if let Some(first) = slots.get_mut(..id.len() + 2) {
        first[..id.len()].copy_from_slice(id);
        first[id.len()..].copy_from_slice(b"-0");
    }
    if slots.len() <= width {
        return;
    }
    // Every other slot starts `{batch}-` too: the slots written so far are copied
    // after themselves, doubling, in a few large copies rather than one small copy
    // per op.
    let mut written = width;
    while written < slots.len() {
        let copied = written.min(slots.len() - written);
        slots.copy_within(..copied, written);
        written += copied;
    }
    // Then each later op's index over the first's, in place, its length counted up
    // rather than worked out per op.
    let (mut digits, mut longer_from) = (1, 10_usize);
    let later = slots.get_mut(width..).unwrap_or_default();
    for (index, slot) in (1..).zip(later.chunks_exact_mut(width)) {
        if index == longer_from {
            digits += 1;
            longer_from = longer_from.saturating_mul(10);
        }
        write_decimal(&mut slot[id.len() + 1..][..digits], index);
    }
}

/// The digits of the random prefix of every id this process makes up, drawn by the
/// first call (see [`BatchId::draw_prefix`]); written once, and only the counter's
/// digits change.
fn prefix() -> &'static [u8; GENERATED_MAX] {
    static PREFIX: OnceLock<[u8; GENERATED_MAX]> = OnceLock::new();
    PREFIX.get_or_init(|| {
        // `RandomState` is seeded from the OS: random enough to tell processes apart.
        let prefix = RandomState::new().hash_one(0u8) as u32;
        let mut digits = [0; GENERATED_MAX];
        push_hex(&mut digits, 0, u64::from(prefix));
        digits
    })
}

/// A batch's `x-request-id`s, written once per batch into one buffer that every
/// value shares: an op's id then costs it no allocation of its own, nor a free when
/// its request is dropped.
#[derive(Debug)]
pub(crate) struct OpIds {
    /// The batch's id, then op `i`'s at the start of the `i`-th slot of `width`
    /// bytes (the longest op id's length; shorter ones leave the rest unused).
    values: Bytes,
    /// The batch's own id as a value, sharing the first `id_len` bytes of `values`.
    batch: Option<HeaderValue>,
    id_len: usize,
    width: usize,
}

impl OpIds {
    /// The batch's own id, which every op inherits unless it is given its own.
    pub(crate) fn batch(&self) -> Option<HeaderValue> {
        self.batch.clone()
    }

    /// The batch's own id, taken: once the batch is planned, its ops inherit it
    /// (or their own) already, and only the answer's `x-batch-id` wants it.
    fn take_batch(&mut self) -> Option<HeaderValue> {
        self.batch.take()
    }

    /// Whether `value` was made by [`batch`](Self::batch): shares its bytes, not
    /// merely equals them (an op may send the batch's id as its own).
    pub(crate) fn is_batch(&self, value: &HeaderValue) -> bool {
        let bytes = value.as_bytes();
        bytes.len() == self.id_len && std::ptr::eq(bytes.as_ptr(), self.values.as_ptr())
    }

    /// Op `index`'s `x-request-id`, `{batch}-{index}`.
    // Inlined into the completion of each op's request.
    #[inline]
    pub(crate) fn op(&self, index: usize) -> Option<HeaderValue> {
        let start = index.checked_mul(self.width)?.checked_add(self.id_len)?;
        // The buffer is the batch's id and a slot of `width` bytes per op: a slot
        // that starts within it is an op's, and ends within it too.
        if start >= self.values.len() {
            return None;
        }
        let end = start + self.id_len + 1 + decimal_len(index);
        HeaderValue::from_maybe_shared(self.values.slice(start..end)).ok()
    }
}

/// Writes `n` in lower-case hex into `out` from `at`, zero-padded to at least 8
/// digits (`{n:08x}`), and gives back where the digits end: every batch without an
/// `x-request-id` makes one, and `fmt` would cost more than the rest of the id.
fn push_hex(out: &mut [u8; GENERATED_MAX], at: usize, n: u64) -> usize {
    // Every count but those past four billion: its low word's 8 digits, copied as
    // one word rather than cut from all 16 at a length worked out.
    if let Ok(low) = u32::try_from(n) {
        out[at..at + 8].copy_from_slice(&hex8(low));
        return at + 8;
    }
    let digits = (16 - n.leading_zeros() as usize / 4).max(8);
    let mut all = [0; 16];
    all[..8].copy_from_slice(&hex8((n >> 32) as u32));
    all[8..].copy_from_slice(&hex8(n as u32));
    out[at..at + digits].copy_from_slice(&all[16 - digits..]);
    at + digits
}

/// `n`'s 8 hex digits, each nibble spread into a byte of one word and made its digit
/// there, all eight at once, rather than looked up one at a time.
fn hex8(n: u32) -> [u8; 8] {
    let mut x = u64::from(n);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    // Byte `i` (from the lowest) now holds nibble `i`.
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // 1 in each byte whose nibble is 10 or more: those are letters, 39 past the
    // digits in ASCII. No byte carries into the next: none exceeds 0x66.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
}

/// The decimal digits of 0 to 99, two by two.
const PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0; 2]; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    pairs
};

/// Writes `n` in decimal into `out`, which is as long as its digits: two digits at a
/// time, since every op's index is written (most take one step, not two).
fn write_decimal(out: &mut [u8], mut n: usize) {
    let mut end = out.len();
    while end >= 2 {
        out[end - 2..end].copy_from_slice(&PAIRS[n % 100]);
        n /= 100;
        end -= 2;
    }
    if let Some(first) = out.first_mut().filter(|_| end == 1) {
        *first = b'0' + (n % 10) as u8;
    }
}

/// How many decimal digits `n` has.
fn decimal_len(n: usize) -> usize {
    // Counted up: an op's index has few digits, found in as many compares, fewer
    // instructions than `ilog10`'s general case.
    let (mut digits, mut limit) = (1, 10_usize);
    while n >= limit {
        digits += 1;
        let Some(next) = limit.checked_mul(10) else {
            break;
        };
        limit = next;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_request_id_is_the_batch_id_when_usable() {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID, HeaderValue::from_static("req-42"));
        let id = BatchId::of(&headers);
        let mut ops = id.op_ids(1235);
        assert_eq!((id.as_str(), id.generated_header(None)), ("req-42", None));
        assert_eq!(id.generated_header(Some(&mut ops)), None);
        assert_eq!(ops.batch().unwrap(), "req-42");
        assert!(ops.is_batch(&ops.batch().unwrap()));
        assert!(!ops.is_batch(&HeaderValue::from_static("req-42")));
        assert_eq!(ops.op(0).unwrap(), "req-42-0");
        assert_eq!(ops.op(9).unwrap(), "req-42-9");
        assert_eq!(ops.op(10).unwrap(), "req-42-10");
        assert_eq!(ops.op(1234).unwrap(), "req-42-1234");
        assert!(ops.op(1235).is_none());
        assert!(id.op_ids(0).op(0).is_none());

        for unusable in ["", "has space", &"x".repeat(129)] {
            headers.insert(X_REQUEST_ID, HeaderValue::from_str(unusable).unwrap());
            let id = BatchId::of(&headers);
            assert!(id.generated_header(None).is_some(), "{unusable:?}");
            assert_eq!(id.as_str().len(), 16);
        }
        let (a, b) = (BatchId::generate(), BatchId::generate());
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.generated_header(None).unwrap(), a.as_str());
        // Made from the batch's op ids, it shares their bytes and says the same.
        let mut ops = a.op_ids(3);
        let shared = a.generated_header(Some(&mut ops)).unwrap();
        assert_eq!(shared, a.as_str());
        assert!(ops.is_batch(&shared));
        // Taken from them: the ops inherit it already.
        assert!(ops.batch().is_none());
        assert!(
            ops.is_batch(&shared),
            "an op's copy is still known by its bytes"
        );
    }

    #[test]
    fn every_op_id_is_the_batch_id_and_its_index_at_every_digit_count() {
        let id = BatchId::of(&HeaderMap::new());
        for ops in [1, 2, 10, 11, 100, 101, 1000] {
            let values = id.op_ids(ops);
            for index in 0..ops {
                let expected = format!("{}-{index}", id.as_str());
                assert_eq!(values.op(index).unwrap(), expected.as_str());
            }
            assert!(values.op(ops).is_none());
            assert_eq!(values.batch().unwrap(), id.as_str());
        }
    }

    #[test]
    fn op_ids_are_whole_on_both_sides_of_the_short_buffer() {
        // One op: the id, then a slot of the id, `-` and a digit: 2 × len + 2 bytes.
        for len in [SHORT / 2 - 2, SHORT / 2 - 1, SHORT / 2] {
            let given = HeaderValue::from_str(&"r".repeat(len)).unwrap();
            let id = BatchId::named(Some(&given));
            for ops in [1, 2, 3] {
                let values = id.op_ids(ops);
                assert_eq!(values.batch().unwrap(), given);
                for index in 0..ops {
                    let expected = format!("{}-{index}", given.to_str().unwrap());
                    assert_eq!(values.op(index).unwrap(), expected.as_str());
                }
                assert!(values.op(ops).is_none());
            }
        }
    }

    #[test]
    fn decimal_digits_are_what_fmt_writes() {
        for n in [0, 7, 10, 42, 99, 100, 101, 999, 1000, 12_345, usize::MAX] {
            let mut out = vec![0; decimal_len(n)];
            write_decimal(&mut out, n);
            assert_eq!(std::str::from_utf8(&out).unwrap(), n.to_string(), "{n}");
        }
    }

    #[test]
    fn decimal_len_is_the_length_fmt_writes() {
        for n in [
            0,
            9,
            10,
            99,
            100,
            999_999,
            1_000_000,
            usize::MAX / 10,
            usize::MAX,
        ] {
            assert_eq!(decimal_len(n), n.to_string().len(), "{n}");
        }
    }

    #[test]
    fn hex_is_what_fmt_writes() {
        for n in [
            0,
            9,
            0xa,
            0xf,
            0x1234_5678,
            0x9abc_def0,
            0xabc,
            0xffff_ffff,
            0x1_0000_0000,
            0xf_ffff_ffff,
            u64::MAX,
        ] {
            let mut out = [0; GENERATED_MAX];
            let at = push_hex(&mut out, 0, 0xabc);
            let end = push_hex(&mut out, at, n);
            assert_eq!(
                std::str::from_utf8(&out[at..end]).unwrap(),
                format!("{n:08x}")
            );
        }
    }
}
