//! A single-pass reader of JSON text for decoders that know their document's shape:
//! the caller says what it expects next (an object, a string, a boolean, any value),
//! and the reader checks the syntax and the nesting depth as it goes.
//!
//! It reads exactly what serde_json reads, the way serde_json reads it, so a decoder
//! built on it means what a serde-derived one does: a string that is read is checked
//! as UTF-8 and its `\u` escapes must pair their surrogates; a value that is skipped
//! is checked for syntax only; a value kept as raw JSON text is checked as UTF-8 but
//! its escapes are left as written. Any other input is [`Refused`], with no reason:
//! the caller explains refusals some other way.

use std::borrow::Cow;

use super::MAX_DEPTH;

/// The input is not what the caller expected (or not JSON at all).
#[derive(Debug)]
pub(crate) struct Refused;

/// What reading a piece answers.
pub(crate) type Scan<T> = Result<T, Refused>;

/// The bytes that end a run of a string's plain text: a quote, a backslash, and
/// the control characters, which a string may not hold.
static SPECIAL: [bool; 256] = {
    let mut special = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        special[byte] = true;
        byte += 1;
    }
    special[b'"' as usize] = true;
    special[b'\\' as usize] = true;
    special
};

/// A reader positioned in a JSON document.
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    /// The whole document as text when it is UTF-8, as nearly every one is: its
    /// strings are then slices of it, checked once for all.
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
        self.whitespace();
        self.bytes.get(self.at).copied()
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
        let value = match self.peek() {
            Some(b't') if self.literal(b"true") => true,
            Some(b'f') if self.literal(b"false") => false,
            _ => return Err(Refused),
        };
        self.at += if value { 4 } else { 5 };
        Ok(value)
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
        if self.peek() != Some(b'"') {
            return Err(Refused);
        }
        self.at += 1;
        let start = self.at;
        if self.next_special()? == b'"' {
            let text = self.slice(start, self.at)?;
            self.at += 1;
            return Ok(Cow::Borrowed(text));
        }
        self.escaped(start).map(Cow::Owned)
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
        match self.peek().ok_or(Refused)? {
            b'"' => {
                self.at += 1;
                self.skip_string()
            }
            b'{' => self.container(b'{', b'}', |scan| {
                if scan.peek() != Some(b'"') {
                    return Err(Refused);
                }
                scan.at += 1;
                scan.skip_string()?;
                scan.expect(b':')?;
                scan.skip()
            }),
            b'[' => self.items(Self::skip),
            b't' => self.bool().map(drop),
            b'f' => self.bool().map(drop),
            b'n' if self.null() => Ok(()),
            _ => self.skip_number(),
        }
    }

    /// An object, `each` reading the value of every key in turn (the reader is just
    /// past the key's `:`).
    pub(crate) fn members(
        &mut self,
        mut each: impl FnMut(&mut Self, Cow<'a, str>) -> Scan<()>,
    ) -> Scan<()> {
        self.container(b'{', b'}', |scan| {
            let key = scan.string()?;
            scan.expect(b':')?;
            each(scan, key)
        })
    }

    /// An array, `each` reading every item in turn.
    pub(crate) fn items(&mut self, each: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.container(b'[', b']', each)
    }

    /// An object or an array, nested no deeper than [`MAX_DEPTH`], `each` reading
    /// one entry at a time.
    fn container(
        &mut self,
        open: u8,
        close: u8,
        mut each: impl FnMut(&mut Self) -> Scan<()>,
    ) -> Scan<()> {
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
        } else {
            loop {
                each(self)?;
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b) if b == close => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(Refused),
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Consumes `byte`, after any whitespace.
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

    fn literal(&self, word: &[u8]) -> bool {
        self.bytes[self.at..].starts_with(word)
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
    fn next_special(&mut self) -> Scan<u8> {
        while let Some(byte) = self.byte() {
            if SPECIAL[usize::from(byte)] {
                return if byte < 0x20 { Err(Refused) } else { Ok(byte) };
            }
            self.at += 1;
        }
        Err(Refused)
    }

    /// The rest of a string whose opening quote is consumed, its escapes checked
    /// for syntax only.
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
        let text = std::str::from_utf8(digits).map_err(|_| Refused)?;
        // `from_str_radix` would take a sign, which an escape may not have.
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(Refused);
        }
        self.at += 4;
        u16::from_str_radix(text, 16).map_err(|_| Refused)
    }

    /// A number: `-`, an integer without leading zeros, a fraction, an exponent.
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
