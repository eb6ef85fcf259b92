//! A single-pass reader of JSON text for decoders that know their document's shape:
//! the caller says what it expects next (an object, a string, a boolean, any value),
//! and the reader checks the syntax and the nesting depth as it goes.
//!
//! It reads exactly what serde_json reads, the way serde_json reads it, so a decoder
//! built on it means what a serde-derived one does: a string that is read is checked
//! as UTF-8 and its `\u` escapes must pair their surrogates; a value that is skipped
//! is checked for syntax only; a value kept as raw JSON text is checked as UTF-8 but
//! its escapes are left as written. Any other input is [`Refused`], with no reason:
//! the caller explains refusals some other way. [`is_json`] asks it what serde_json
//! answers when it reads a raw value: whether a text is one JSON value.

use std::borrow::Cow;

/// How deep a batch document may nest.
// Here, not with the formats that check it too: this reader also checks the
// bodies of op responses, so it depends on no other part of the crate.
pub(crate) const MAX_DEPTH: usize = 128;

/// The input is not what the caller expected (or not JSON at all).
#[derive(Debug)]
pub(crate) struct Refused;

/// What reading a piece answers.
pub(crate) type Scan<T> = Result<T, Refused>;

/// A string read from the document.
pub(crate) enum StringAt {
    /// Without escapes: its text is the document's bytes `start..end`.
    Plain(usize, usize),
    /// With escapes, decoded.
    Escaped(String),
}

/// An object's key read by [`Scanner::field`].
pub(crate) enum Key<'a> {
    /// Without escapes: the document's own bytes.
    Plain(&'a [u8]),
    /// With escapes, decoded.
    Escaped(String),
}

impl Key<'_> {
    /// The key's text, as bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Plain(bytes) => bytes,
            Self::Escaped(text) => text.as_bytes(),
        }
    }
}

/// An object's key, its colon and the opening quote of a string value, written
/// compactly (`"url":"`, eight bytes at most), as a word to compare the next eight
/// bytes of a document with: see [`Scanner::known_string`].
#[derive(Clone, Copy)]
pub(crate) struct Literal {
    /// The bytes, read little-endian, zeros past them.
    word: u64,
    /// The bits of the bytes.
    mask: u64,
    len: usize,
}

impl Literal {
    /// The literal of `key` with a string value; a key of more than four bytes
    /// does not fit in a word, and does not compile.
    pub(crate) const fn string(key: &str) -> Self {
        let key = key.as_bytes();
        let len = key.len() + 4;
        assert!(len <= 8, "a literal key is at most four bytes");
        let mut bytes = [0; 8];
        bytes[0] = b'"';
        let mut at = 0;
        while at < key.len() {
            bytes[at + 1] = key[at];
            at += 1;
        }
        bytes[len - 3] = b'"';
        bytes[len - 2] = b':';
        bytes[len - 1] = b'"';
        Self {
            word: u64::from_le_bytes(bytes),
            mask: u64::MAX >> (64 - 8 * len),
            len,
        }
    }
}

/// Each byte's top bit, in a word of eight.
pub(crate) const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
/// One in each byte of a word of eight.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;

/// Whether `byte` ends a run of a string's plain text: a quote, a backslash, or a
/// control character, which a string may not hold as it is (a writer escapes it).
///
/// Written without short-circuits: a scan that only asks whether some byte is one
/// folds over every byte rather than stop at the first, and is then compiled to a
/// few vector instructions.
#[inline]
pub(super) fn special(byte: u8) -> bool {
    (byte < 0x20) | (byte == b'"') | (byte == b'\\')
}

/// The top bit of the first byte of `word` (read little-endian) that is
/// [`special`], and maybe of later ones; 0 when there is none.
///
/// Each test is the classic one for a byte below a bound, `(b - n) & !b & 0x80`
/// per byte: a borrow only runs up from a byte that matched, so the lowest bit set
/// is the first match.
fn special_bytes(word: u64) -> u64 {
    let below = |word: u64, bound: u8| word.wrapping_sub(ONES * u64::from(bound)) & !word;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    (control | quote | backslash) & HIGH_BITS
}

/// Whether some byte of `bytes` is [`special`] or, with `high`, is DEL or not ASCII:
/// whether a writer has to look at them one by one rather than copy them whole.
// Always inlined: called, with `high` a variable, it costs more than the scan it
// saves (~60 instructions a text).
#[inline(always)]
pub(super) fn needs_care(bytes: &[u8], high: bool) -> bool {
    any_word(bytes, |word| {
        let found = special_bytes(word);
        if high {
            let del = word ^ (ONES * 0x7f);
            found | ((word | (del.wrapping_sub(ONES) & !del)) & HIGH_BITS)
        } else {
            found
        }
    })
}

/// Whether `test`, given words of eight of `bytes` (read little-endian), finds
/// something (answers other than 0) in one of them. `test` must find nothing in
/// spaces.
///
/// The words overlap rather than leave a tail: on the short texts that matter here
/// (ids, header values, small bodies), a few instructions in all, not a test a
/// byte. A text shorter than a word is read as one word padded with spaces.
#[inline(always)]
fn any_word(bytes: &[u8], test: impl Fn(u64) -> u64) -> bool {
    let found = if let (Some(first), Some(last)) =
        (bytes.first_chunk::<8>(), bytes.last_chunk::<8>())
    {
        // Eight bytes or more: the first eight and the last eight, which are all of
        // them up to sixteen, and past that every eight in turn.
        let mut found = test(u64::from_le_bytes(*first)) | test(u64::from_le_bytes(*last));
        if bytes.len() > 16 {
            let mut rest = bytes;
            while let Some((word, tail)) = rest.split_first_chunk::<8>() {
                found |= test(u64::from_le_bytes(*word));
                rest = tail;
            }
        }
        found
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        // Four to seven bytes: the first four and the last four.
        test(u64::from(u32::from_le_bytes(*first)) | u64::from(u32::from_le_bytes(*last)) << 32)
    } else {
        // Up to three bytes: the first, the middle and the last are all of them.
        let (first, middle, last) = match *bytes {
            [first, middle, last] => (first, middle, last),
            [first, last] => (first, last, last),
            [only] => (only, only, only),
            _ => return false,
        };
        test(u64::from_le_bytes([
            first, middle, last, b' ', b' ', b' ', b' ', b' ',
        ]))
    };
    found != 0
}

/// Whether `bytes` is one JSON value in UTF-8 with only whitespace around it: what
/// `serde_json::from_slice::<&RawValue>` accepts, on any text shorter than
/// [`AGREES_BELOW`] bytes. (serde_json skips a value nested however deep, this
/// reader none deeper than [`MAX_DEPTH`]; a shorter text cannot be both.)
// Inlined into its callers (every op's answer is checked by it), where the
// scanner's setup folds into theirs.
#[inline]
pub(crate) fn is_json(bytes: &[u8]) -> bool {
    let mut scan = Scanner {
        bytes,
        text: None,
        at: 0,
        depth: 0,
    };
    // Skipping reads no text, and on short ASCII (most such texts) a check of the
    // top bits costs a fraction of the full UTF-8 check.
    scan.document().is_ok()
        && scan.end().is_ok()
        && (!any_word(bytes, |word| word & HIGH_BITS) || std::str::from_utf8(bytes).is_ok())
}

/// The length from which [`is_json`] and serde_json may differ: the shortest text
/// that nests deeper than [`MAX_DEPTH`] and is still JSON.
pub(crate) const AGREES_BELOW: usize = 2 * (MAX_DEPTH + 1);

// `Scanner::skip` keeps one bit per open container.
const _: () = assert!(MAX_DEPTH <= u128::BITS as usize);

/// A reader positioned in a JSON document.
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    /// The whole document as text when it was checked up front and is UTF-8, as
    /// nearly every one is: its strings are then slices of it, checked once for
    /// all. Without it, each string is checked on its own.
    text: Option<&'a str>,
    at: usize,
    depth: usize,
}

impl<'a> Scanner<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            text: std::str::from_utf8(bytes).ok(),
            at: 0,
            depth: 0,
        }
    }

    /// Whether the whole document is UTF-8, the values a reader skips included.
    pub(crate) fn is_text(&self) -> bool {
        self.text.is_some()
    }

    /// How far into the document the reader is.
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    /// How many bytes of the document are left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// Whitespace and then the end of the document.
    pub(crate) fn end(mut self) -> Scan<()> {
        self.whitespace();
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(Refused)
        }
    }

    /// The next byte that is not whitespace, not consumed.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        // Most documents are written compact: a byte above the space is no
        // whitespace, and answers with one test instead of the loop's.
        match self.byte() {
            Some(byte) if byte > b' ' => Some(byte),
            _ => {
                self.whitespace();
                self.byte()
            }
        }
    }

    /// Consumes a `null` if one comes next.
    pub(crate) fn null(&mut self) -> bool {
        let null = self.peek() == Some(b'n') && self.literal(b"null");
        if null {
            self.at += 4;
        }
        null
    }

    /// A `true` or a `false`.
    pub(crate) fn bool(&mut self) -> Scan<bool> {
        match self.peek() {
            Some(b't') => self.word(b"true").map(|()| true),
            Some(b'f') => self.word(b"false").map(|()| false),
            _ => Err(Refused),
        }
    }

    /// A number that is an integer from 0 to `u64::MAX`, written without a fraction
    /// or an exponent (serde_json reads any other number as negative or as a float).
    pub(crate) fn u64(&mut self) -> Scan<u64> {
        self.whitespace();
        let start = self.at;
        let mut value = 0u64;
        while let Some(&digit @ b'0'..=b'9') = self.bytes.get(self.at) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .ok_or(Refused)?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        if digits == 0 || leading_zero || matches!(self.byte(), Some(b'.' | b'e' | b'E')) {
            return Err(Refused);
        }
        Ok(value)
    }

    /// A string, its escapes decoded: borrowed from the document unless it has any.
    pub(crate) fn string(&mut self) -> Scan<Cow<'a, str>> {
        match self.plain_or_escaped()? {
            StringAt::Plain(start, end) => self.slice(start, end).map(Cow::Borrowed),
            StringAt::Escaped(text) => Ok(Cow::Owned(text)),
        }
    }

    /// A string: where its text lies in the document when it has no escapes, as most
    /// do, else its text decoded. Those bytes are UTF-8: they lie between two quotes
    /// of a document that is (one that is not has them checked), so a caller that
    /// keeps the document's bytes needs no `str` of them.
    // Always inlined: read by more than one caller, it was left a call, which costs
    // every op's url and id ~50 instructions per op of a batch.
    #[inline(always)]
    pub(crate) fn string_at(&mut self) -> Scan<StringAt> {
        let read = self.plain_or_escaped()?;
        self.check_plain(&read)?;
        Ok(read)
    }

    /// Refuses a string without escapes that is not UTF-8, in a document that was not
    /// found UTF-8 up front.
    #[inline(always)]
    fn check_plain(&self, read: &StringAt) -> Scan<()> {
        if let StringAt::Plain(start, end) = *read
            && self.text.is_none()
        {
            std::str::from_utf8(&self.bytes[start..end]).map_err(|_| Refused)?;
        }
        Ok(())
    }

    /// A string, as [`Scanner::string_at`] reads it, or `null`, which reads as `None`:
    /// with one look at the byte they start with.
    #[inline(always)]
    pub(crate) fn string_or_null(&mut self) -> Scan<Option<StringAt>> {
        match self.peek() {
            Some(b'"') => {
                self.at += 1;
                let read = self.opened_string()?;
                self.check_plain(&read)?;
                Ok(Some(read))
            }
            Some(b'n') => self.word(b"null").map(|()| None),
            _ => Err(Refused),
        }
    }

    /// A string: where its text lies in the document when it has no escapes, as most
    /// do, else its text decoded.
    // Always inlined: left to the compiler, `string` calls it once edits elsewhere
    // move its inlining around (+50 instructions per op of a batch).
    #[inline(always)]
    fn plain_or_escaped(&mut self) -> Scan<StringAt> {
        if self.peek() != Some(b'"') {
            return Err(Refused);
        }
        self.at += 1;
        self.opened_string()
    }

    /// [`Scanner::plain_or_escaped`] past the opening quote.
    #[inline(always)]
    fn opened_string(&mut self) -> Scan<StringAt> {
        let start = self.at;
        if self.next_special()? == b'"' {
            let end = self.at;
            self.at += 1;
            return Ok(StringAt::Plain(start, end));
        }
        self.escaped(start).map(StringAt::Escaped)
    }

    /// A string that ends, without an escape, within the eight bytes after its
    /// opening quote, as most keys do: its text, the document's own bytes, found with
    /// one word's test and no call. Otherwise nothing is consumed.
    #[inline(always)]
    fn short_plain(&mut self) -> Option<&'a [u8]> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.at + 1;
        let bytes: &'a [u8] = self.bytes;
        let word: &'a [u8; 8] = bytes.get(start..)?.first_chunk()?;
        let found = special_bytes(u64::from_le_bytes(*word));
        let len = (found.trailing_zeros() / 8) as usize;
        // No special byte at all reads as an end past the word.
        if bytes.get(start + len) != Some(&b'"') {
            return None;
        }
        self.at = start + len + 1;
        word.get(..len)
    }

    /// The rest of a string that starts at `start` and has an escape where the
    /// reader is.
    #[cold]
    fn escaped(&mut self, mut start: usize) -> Scan<String> {
        let mut text = String::new();
        loop {
            text.push_str(self.slice(start, self.at)?);
            let byte = self.bytes[self.at];
            self.at += 1;
            if byte == b'"' {
                return Ok(text);
            }
            text.push(self.escape()?);
            start = self.at;
            self.next_special()?;
        }
    }

    /// Any value, as its JSON text (without the whitespace around it).
    pub(crate) fn raw(&mut self) -> Scan<&'a str> {
        self.whitespace();
        let start = self.at;
        self.skip()?;
        self.slice(start, self.at)
    }

    /// Any value, checked for syntax only.
    pub(crate) fn skip(&mut self) -> Scan<()> {
        // One loop, without recursion: each container open inside the value is one
        // bit, set for an object, the innermost lowest; the depth limit keeps them
        // within the 128 bits.
        let outer = self.depth;
        let mut open: u128 = 0;
        loop {
            // A value starts here.
            match self.peek().ok_or(Refused)? {
                first @ (b'{' | b'[') => {
                    self.at += 1;
                    if self.depth == MAX_DEPTH {
                        return Err(Refused);
                    }
                    let object = first == b'{';
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.at += 1;
                    } else {
                        self.depth += 1;
                        open = open << 1 | u128::from(object);
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                first => self.scalar(first)?,
            }
            // A value ended: its containers close, or a comma leads to the next.
            loop {
                if self.depth == outer {
                    return Ok(());
                }
                let object = open & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ => return Err(Refused),
                }
                self.at += 1;
                open >>= 1;
                self.depth -= 1;
            }
        }
    }

    /// A value that is not a container, checked for syntax only: the reader at its
    /// first byte, `first`.
    #[inline(always)]
    fn scalar(&mut self, first: u8) -> Scan<()> {
        match first {
            b'"' => {
                self.at += 1;
                self.skip_string()
            }
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            _ => self.skip_number(),
        }
    }

    /// The document's value (the reader at its start), checked for syntax only, as
    /// [`Scanner::skip`] checks it; an object's members are read by a loop of their
    /// own, which leaves only the containers in it to `skip`. Most answers are an
    /// object of plain members: read so, they cost none of the nesting `skip`
    /// keeps.
    #[inline(always)]
    fn document(&mut self) -> Scan<()> {
        if self.peek() != Some(b'{') {
            return self.skip();
        }
        self.at += 1;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        self.depth += 1;
        loop {
            self.key()?;
            match self.peek().ok_or(Refused)? {
                b'{' | b'[' => self.skip()?,
                first => self.scalar(first)?,
            }
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => break,
                _ => return Err(Refused),
            }
        }
        self.at += 1;
        self.depth -= 1;
        Ok(())
    }

    /// An object's key and its colon, skipped.
    #[inline(always)]
    fn key(&mut self) -> Scan<()> {
        if self.short_plain().is_none() {
            self.expect(b'"')?;
            self.skip_string()?;
        }
        self.expect(b':')
    }

    /// An object, `each` reading the value of every key in turn (the reader is just
    /// past the key's `:`), given where the key lies (see [`Scanner::string_at`]).
    // Inlined into the decoder's loops with `items` and `container`: left to itself
    // the compiler did not, at a cost of ~80 instructions per op of a batch.
    #[inline]
    pub(crate) fn members(
        &mut self,
        mut each: impl FnMut(&mut Self, StringAt) -> Scan<()>,
    ) -> Scan<()> {
        self.container(b'{', b'}', |scan| {
            let key = scan.string_at()?;
            scan.expect(b':')?;
            each(scan, key)
        })
    }

    /// An object whose keys the caller compares with names it knows: as
    /// [`Scanner::members`], but each key is given as its bytes (its escapes
    /// decoded), with no slice of the text to make.
    #[inline]
    pub(crate) fn fields(
        &mut self,
        mut each: impl FnMut(&mut Self, &[u8]) -> Scan<()>,
    ) -> Scan<()> {
        if self.open(b'{', b'}')? {
            loop {
                let key = self.field()?;
                each(self, key.as_bytes())?;
                if !self.next(b'}')? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// A member's key, its escapes decoded, and the `:` after it: the reader is then
    /// at its value. For a caller that reads an object's members in a loop of its
    /// own, between [`Scanner::open`] and [`Scanner::next`].
    #[inline(always)]
    pub(crate) fn field(&mut self) -> Scan<Key<'a>> {
        // Most keys are short: found without the call a string's scan costs.
        let key = match self.short_plain() {
            Some(key) => key,
            None => match self.plain_or_escaped()? {
                StringAt::Plain(start, end) => &self.bytes[start..end],
                StringAt::Escaped(text) => {
                    self.expect(b':')?;
                    return Ok(Key::Escaped(text));
                }
            },
        };
        self.expect(b':')?;
        // Between two quotes, a key of a document that is UTF-8 is too; of one that
        // is not, it is checked as `slice` would.
        if self.text.is_none() && std::str::from_utf8(key).is_err() {
            return Err(Refused);
        }
        Ok(Key::Plain(key))
    }

    /// A member whose key is one of `keys` and whose value is a string, written as
    /// compact writers write it: its key, colon and opening quote exactly its
    /// [`Literal`], with no whitespace or escape. It is read whole, its string as
    /// [`Scanner::string_at`] reads one. `None`, with nothing consumed, for any other
    /// member or one written otherwise, which [`Scanner::field`] and a read of its
    /// value then read (to the same key and string, when it is one of them).
    // Always inlined: for a caller that finds the keys it knows with one word's
    // compare each, not the scan of a string and a compare of its text.
    #[inline(always)]
    pub(crate) fn known_string<T: Copy>(
        &mut self,
        keys: &[(Literal, T)],
    ) -> Scan<Option<(T, StringAt)>> {
        let Some(word) = (self.bytes.get(self.at..)).and_then(|rest| rest.first_chunk::<8>())
        else {
            return Ok(None);
        };
        let word = u64::from_le_bytes(*word);
        let Some(&(literal, key)) = keys
            .iter()
            .find(|(literal, _)| word & literal.mask == literal.word)
        else {
            return Ok(None);
        };
        self.at += literal.len;
        let read = self.opened_string()?;
        self.check_plain(&read)?;
        Ok(Some((key, read)))
    }

    /// An array, `each` reading every item in turn.
    #[inline]
    pub(crate) fn items(&mut self, each: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.container(b'[', b']', each)
    }

    /// An object or an array, nested no deeper than [`MAX_DEPTH`], `each` reading
    /// one entry at a time.
    #[inline]
    fn container(
        &mut self,
        open: u8,
        close: u8,
        mut each: impl FnMut(&mut Self) -> Scan<()>,
    ) -> Scan<()> {
        if self.open(open, close)? {
            loop {
                each(self)?;
                if !self.next(close)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Opens an object (`{`, `}`) or an array (`[`, `]`), nested no deeper than
    /// [`MAX_DEPTH`], for a caller that reads its entries in a loop of its own:
    /// whether it has any (an empty one is read whole).
    #[inline(always)]
    pub(crate) fn open(&mut self, open: u8, close: u8) -> Scan<bool> {
        if self.peek() != Some(open) {
            return Err(Refused);
        }
        self.at += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Refused);
        }
        if self.peek() == Some(close) {
            self.at += 1;
            self.depth -= 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After an entry of a container that [`Scanner::open`] opened: whether another
    /// follows (its comma read), or the container ends (its `close` read).
    #[inline(always)]
    pub(crate) fn next(&mut self, close: u8) -> Scan<bool> {
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            Some(byte) if byte == close => {
                self.at += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(Refused),
        }
    }

    /// Consumes `byte`, after any whitespace.
    // Inlined: after each key, a call cost more than the test.
    #[inline]
    pub(crate) fn expect(&mut self, byte: u8) -> Scan<()> {
        if self.peek() != Some(byte) {
            return Err(Refused);
        }
        self.at += 1;
        Ok(())
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.byte() {
            self.at += 1;
        }
    }

    fn byte(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline]
    fn literal(&self, word: &[u8]) -> bool {
        self.bytes[self.at..].starts_with(word)
    }

    /// Consumes `word`, which must come next.
    #[inline]
    fn word(&mut self, word: &[u8]) -> Scan<()> {
        if !self.literal(word) {
            return Err(Refused);
        }
        self.at += word.len();
        Ok(())
    }

    /// The text from `start` to `end`, which are next to quotes or at a value's ends.
    fn slice(&self, start: usize, end: usize) -> Scan<&'a str> {
        match self.text {
            Some(text) => text.get(start..end),
            None => std::str::from_utf8(&self.bytes[start..end]).ok(),
        }
        .ok_or(Refused)
    }

    /// Moves to the next quote or backslash of a string, and answers which it is;
    /// refuses a control character before it or the document's end.
    // Inlinable into the decoder's other modules: left a call there (where an edit
    // anywhere in the crate could put it), each header's name and value paid it.
    #[inline]
    fn next_special(&mut self) -> Scan<u8> {
        // Eight bytes at a time while eight are left: text costs a few
        // instructions a word, not a test a byte.
        // (Counted in a local: the reader's own place is written back once.)
        let mut at = self.at;
        while let Some(word) = self.bytes.get(at..).and_then(|rest| rest.first_chunk()) {
            let found = special_bytes(u64::from_le_bytes(*word));
            if found != 0 {
                self.at = at + (found.trailing_zeros() / 8) as usize;
                return self.quote_or_backslash();
            }
            at += 8;
        }
        self.at = at;
        while let Some(byte) = self.byte() {
            if special(byte) {
                return self.quote_or_backslash();
            }
            self.at += 1;
        }
        Err(Refused)
    }

    /// The [`special`] byte the reader is at, if it may be in a string.
    fn quote_or_backslash(&self) -> Scan<u8> {
        match self.byte() {
            Some(byte @ (b'"' | b'\\')) => Ok(byte),
            _ => Err(Refused),
        }
    }

    /// The rest of a string whose opening quote is consumed, its escapes checked
    /// for syntax only.
    // In `skip`'s loop (with `key`) a string costs no call: most are short.
    #[inline(always)]
    fn skip_string(&mut self) -> Scan<()> {
        loop {
            let byte = self.next_special()?;
            self.at += 1;
            if byte == b'"' {
                return Ok(());
            }
            match self.byte().ok_or(Refused)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => {
                    self.at += 1;
                    self.hex()?;
                }
                _ => return Err(Refused),
            }
        }
    }

    /// The character an escape (its backslash consumed) stands for; a `\u` escape
    /// of a surrogate must be the first of a pair.
    fn escape(&mut self) -> Scan<char> {
        let byte = self.byte().ok_or(Refused)?;
        self.at += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex()?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if !self.literal(b"\\u") {
                        return Err(Refused);
                    }
                    self.at += 2;
                    let second = self.hex()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(Refused);
                    }
                    0x1_0000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
                } else {
                    u32::from(first)
                };
                // A trailing surrogate on its own is no character.
                char::from_u32(code).ok_or(Refused)?
            }
            _ => return Err(Refused),
        })
    }

    /// Four hex digits.
    fn hex(&mut self) -> Scan<u16> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or(Refused)?;
        // Digit by digit: `from_str_radix` would also take a sign, which an escape
        // may not have.
        let value = digits
            .iter()
            .try_fold(0, |value, &b| {
                let digit = char::from(b).to_digit(16)?;
                Some(value << 4 | digit)
            })
            .ok_or(Refused)?;
        self.at += 4;
        u16::try_from(value).map_err(|_| Refused)
    }

    /// A number: `-`, an integer without leading zeros, a fraction, an exponent.
    // Always inlined: read by `skip` and by an object's own loop, it was left a
    // call (~25 instructions a number).
    #[inline(always)]
    fn skip_number(&mut self) -> Scan<()> {
        if self.byte() == Some(b'-') {
            self.at += 1;
        }
        match self.byte() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Refused),
        }
        if self.byte() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.byte() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.byte() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.byte() {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Scan<()> {
        let start = self.at;
        self.digits();
        if self.at == start {
            return Err(Refused);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    use super::*;

    fn serde_json_accepts(text: &[u8]) -> bool {
        serde_json::from_slice::<&RawValue>(text).is_ok()
    }

    /// The strings of an array of strings, decoded by [`Scanner::string`].
    fn strings(text: &[u8]) -> Option<Vec<String>> {
        let mut scan = Scanner::new(text);
        let mut strings = Vec::new();
        scan.items(|scan| {
            strings.push(scan.string()?.into_owned());
            Ok(())
        })
        .ok()?;
        scan.end().ok()?;
        Some(strings)
    }

    /// Every length a word check reads differently (short, one word, overlapping
    /// words), with each byte that needs care at each place: found wherever it is,
    /// and a text of plain bytes passes.
    #[test]
    fn needs_care_finds_any_byte_anywhere() {
        for len in 0..=25 {
            let plain = vec![b'a'; len];
            assert!(
                !needs_care(&plain, false) && !needs_care(&plain, true),
                "{len}"
            );
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    let mut text = plain.clone();
                    text[at] = byte;
                    assert_eq!(needs_care(&text, false), special(byte), "{len} {at} {byte}");
                    assert_eq!(
                        needs_care(&text, true),
                        special(byte) || byte >= 0x7f,
                        "{len} {at} {byte}"
                    );
                }
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_edge_cases() {
        let cases: &[&[u8]] = &[
            br#"{"ok":true}"#,
            b" [1, -0.5e+10, 2E3, 0, -0, \"\\u00e9\\n\", null, false, {}] \r\n",
            b"{\"a\": {\"b\": [[], {}]}}",
            b"\"caf\xc3\xa9\"",
            b"\"\xff\"",
            b"\"\xc3\"",
            b"\xef\xbb\xbf{}",
            b"{}\xc3\xa9",
            b"\"\xed\xa0\x80\"",
            // A lone or reversed surrogate is fine in a value only skipped.
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"[\"\\ud800\\u0041\", \"\\udc00\\ud800\"]",
            b"\"\\uD83D\\uDE00\"",
            b"01",
            b"-01",
            b"-",
            b"- 1",
            b"1.",
            b"1.e3",
            b"1e",
            b"1e+",
            b".5",
            b"+1",
            b"[1,]",
            b"[,1]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{\"a\":}",
            b"{1:2}",
            b"[1 2]",
            b"{\"a\":1]",
            b"[}",
            b"tru",
            b"truex",
            b"nul",
            b"NaN",
            b"\"\\x\"",
            b"\"\\u12g4\"",
            b"\"\\u+123\"",
            b"\"\\u12\"",
            b"\"a\tb\"",
            b"\"a\x7fb\"",
            b"\"unterminated",
            b"\"ends in a backslash\\",
            b"{} {}",
            b"1 2",
            b"",
            b"   ",
            b"\x0c1",
            b"\xa01",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            // Objects read by their own loop: of plain members, with containers in
            // them (read by `skip`), and near misses.
            b"{}",
            b" { } ",
            b"{,}",
            b"{\"a\":1 , \"b\" : null}\n",
            b"{\"a\":\"x\\\"y\",\"a\":-1.5e3}",
            b"{\"a\":1,\"b\":[1]}",
            b"{\"a\":{\"b\":true}}",
            b"{\"a\":{\"b\":tru}}",
            b"{\"a\":tru}",
            b"{\"a\":-}",
            b"{\"a\":01}",
            b"{\"a\":1}}",
            b"{\"a\":1}x",
            b"{\"a\":1",
            b"{\"a\":\"\\ud800\"}",
            b"{\"caf\xc3\xa9\":\"\xff\"}",
        ];
        for &text in cases {
            assert_eq!(
                is_json(text),
                serde_json_accepts(text),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// Every kind of byte a string's word-at-a-time scan stops at, or passes, at
    /// every place in and around a word, in a document that ends right after the
    /// string (the last bytes are read one at a time) and in one that goes on:
    /// whether the text is JSON, and what its strings read as.
    #[test]
    fn strings_agree_with_serde_json_wherever_a_word_ends() {
        for inside in [
            &b"\\\""[..],
            b"\\n",
            b"\\u00e9",
            b"\\ud83d\\ude00",
            b"\\ud800",
            b"\x01",
            b"\x1f",
            b"\x7f",
            b"\xc3\xa9",
            b"\xff",
            b"\"",
            b"\\",
            b"\\x",
            b" ",
        ] {
            for at in 0..20 {
                for end in [&b"\"]"[..], b"\", \"and another string\"]"] {
                    let text = [
                        &b"[\""[..],
                        &b"a".repeat(at),
                        inside,
                        &b"b".repeat(20 - at),
                        end,
                    ]
                    .concat();
                    let shown = String::from_utf8_lossy(&text);
                    assert_eq!(is_json(&text), serde_json_accepts(&text), "{shown:?}");
                    assert_eq!(
                        strings(&text),
                        serde_json::from_slice::<Vec<String>>(&text).ok(),
                        "{shown:?}"
                    );
                }
            }
        }
    }

    /// A member with a known key is read whole only when written exactly as its
    /// literal, to the key and string, and the place, that [`Scanner::field`] and
    /// [`Scanner::string_at`] read; any other spelling, of that member or another,
    /// is left to them, with nothing consumed.
    #[test]
    fn known_strings_are_read_only_as_written_compactly() {
        const KEYS: [(Literal, &str); 2] = [
            (Literal::string("id"), "id"),
            (Literal::string("url"), "url"),
        ];
        let text_of = |text: &[u8], read: StringAt| match read {
            StringAt::Plain(start, end) => String::from_utf8_lossy(&text[start..end]).into_owned(),
            StringAt::Escaped(text) => text,
        };
        for (text, known) in [
            (&br#""id":"a"}"#[..], Some(("id", "a"))),
            (br#""url":"/"}"#, Some(("url", "/"))),
            (br#""url":"/\u0061"}"#, Some(("url", "/a"))),
            (b"\"id\":\"x\ty\"}", None),
            (br#""url":null}"#, None),
            (br#""url": "/"}"#, None),
            (br#""idx":"a"}"#, None),
            (br#""i":"a"}"#, None),
            (br#""id" :"a"}"#, None),
            (br#" "id":"a"}"#, None),
            (br#""\u0069d":"a"}"#, None),
            (br#""URL":"/"}"#, None),
            // Fewer than eight bytes left.
            (br#""id":"}"#, None),
        ] {
            let shown = String::from_utf8_lossy(text);
            let mut scan = Scanner::new(text);
            let read = scan.known_string(&KEYS);
            let mut by_field = Scanner::new(text);
            let key = by_field.field().ok();
            match known {
                Some((known, string)) => {
                    let (name, read) = read.ok().flatten().expect("read whole");
                    assert_eq!(name, known, "{shown}");
                    assert_eq!(text_of(text, read), string, "{shown}");
                    assert_eq!(key.as_ref().map(Key::as_bytes), Some(known.as_bytes()));
                    let by_string = by_field.string_at().ok().map(|read| text_of(text, read));
                    assert_eq!(by_string.as_deref(), Some(string), "{shown}");
                    assert_eq!(scan.offset(), by_field.offset(), "{shown}");
                }
                None => {
                    // A control byte in the string: refused, as `string_at` refuses it.
                    if read.is_err() {
                        assert!(by_field.string_at().is_err(), "{shown}");
                    } else {
                        assert!(matches!(read, Ok(None)), "{shown}");
                        assert_eq!(scan.offset(), 0, "{shown}");
                    }
                }
            }
        }
    }

    /// The keys of an object, read by [`Scanner::fields`], in order.
    fn keys(text: &[u8]) -> Option<Vec<String>> {
        let mut scan = Scanner::new(text);
        let mut keys = Vec::new();
        scan.fields(|scan, key| {
            keys.push(String::from_utf8(key.to_vec()).map_err(|_| Refused)?);
            scan.skip()
        })
        .ok()?;
        scan.end().ok()?;
        Some(keys)
    }

    /// As for strings, for keys, which are found with a word's test when short (in
    /// an object read by fields, and in one skipped): every kind of byte at every
    /// place in and around the first word, the key last in the object or not.
    #[test]
    fn keys_agree_with_serde_json_wherever_a_word_ends() {
        for inside in [
            &b""[..],
            b"\\\\",
            b"\\u00e9",
            b"\\ud800",
            b"\\x",
            b"\x01",
            b"\x7f",
            b"\xc3\xa9",
            b"\xff",
            b"\"",
            b"\\",
        ] {
            for at in 0..12 {
                for end in [&b"\":1}"[..], b"\":null,\"and another key\":[]}"] {
                    let text = [&b"{\""[..], &b"k".repeat(at), inside, end].concat();
                    let shown = String::from_utf8_lossy(&text);
                    assert_eq!(is_json(&text), serde_json_accepts(&text), "{shown:?}");
                    let expected = serde_json::from_slice::<serde_json::Map<_, _>>(&text)
                        .ok()
                        .map(|object| object.keys().cloned().collect::<Vec<_>>());
                    let mut read = keys(&text);
                    if let Some(keys) = &mut read {
                        keys.sort();
                    }
                    assert_eq!(read, expected, "{shown:?}");
                }
            }
        }
    }

    #[test]
    fn nesting_agrees_with_serde_json_below_the_bound() {
        let nested = |depth: usize| [b"[".repeat(depth), b"]".repeat(depth)].concat();
        let deepest = nested(MAX_DEPTH);
        assert!(deepest.len() < AGREES_BELOW);
        assert!(is_json(&deepest) && serde_json_accepts(&deepest));
        assert!(!is_json(&b"[".repeat(AGREES_BELOW - 1)));
        // The bound is the first length at which the answers part.
        let deeper = nested(MAX_DEPTH + 1);
        assert_eq!(deeper.len(), AGREES_BELOW);
        assert!(!is_json(&deeper) && serde_json_accepts(&deeper));
    }

    /// Texts made of JSON's own pieces, right and wrong, so that most are nearly
    /// JSON and many are.
    fn text() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop::sample::select(vec![
            &b"{"[..],
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b" ",
            b"\n",
            b"\"",
            b"\"k\"",
            b"\"a\\\"b\\u00E9\\/\"",
            b"\"\\uDBFF\"",
            b"\\",
            b"\\u",
            b"\xc3\xa9",
            b"\xc3",
            b"\x01",
            b"true",
            b"fals",
            b"null",
            b"0",
            b"-",
            b"12",
            b".5",
            b"e-3",
            b"E",
            b"+",
            b"x",
        ]);
        prop::collection::vec(piece, 0..24)
            .prop_map(|pieces| pieces.concat())
            .prop_filter("below the bound", |text| text.len() < AGREES_BELOW)
    }

    /// JSON documents spaced at random, each byte then kept or, now and then,
    /// replaced: valid texts and the near misses around them.
    fn near_json() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i32>().prop_map(serde_json::Value::from),
            (-1e6f64..1e6).prop_map(serde_json::Value::from),
            "[a-z\\\"\u{e9}\u{1}/]{0,6}".prop_map(serde_json::Value::from),
        ];
        let value = leaf.prop_recursive(4, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z]{0,3}", inner, 0..3)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        });
        let space = prop::sample::select(vec!["", "", "", " ", "\n", "\t\r"]);
        (
            value,
            prop::collection::vec(space, 64),
            any::<Option<(prop::sample::Index, u8)>>(),
        )
            .prop_map(|(value, spaces, change)| {
                let mut text = Vec::new();
                // Whitespace goes where serde_json's compact form has a structural byte.
                for (at, b) in value.to_string().into_bytes().into_iter().enumerate() {
                    if matches!(b, b'{' | b'}' | b'[' | b']' | b',' | b':') {
                        text.extend_from_slice(spaces[at % spaces.len()].as_bytes());
                    }
                    text.push(b);
                }
                if let Some((at, b)) = change.filter(|_| !text.is_empty()) {
                    let at = at.index(text.len());
                    text[at] = b;
                }
                text
            })
            .prop_filter("below the bound", |text| text.len() < AGREES_BELOW)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// A text is JSON here exactly when serde_json says so.
        #[test]
        fn agrees_with_serde_json(text in text()) {
            prop_assert_eq!(is_json(&text), serde_json_accepts(&text));
        }

        #[test]
        fn agrees_with_serde_json_near_json(text in near_json()) {
            prop_assert_eq!(is_json(&text), serde_json_accepts(&text));
        }

        #[test]
        fn agrees_with_serde_json_on_any_bytes(
            text in prop::collection::vec(any::<u8>(), 0..AGREES_BELOW)
        ) {
            prop_assert_eq!(is_json(&text), serde_json_accepts(&text));
        }
    }
}
