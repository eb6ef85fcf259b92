//! Whether a small response body is JSON, checked in one pass over its bytes.
//!
//! Every op's response body is checked once, and most are a few dozen bytes: on
//! those, setting up serde_json's reader costs several times the scan itself. The
//! check here accepts exactly what `serde_json::from_slice::<&RawValue>` does (one
//! value of RFC 8259, whitespace around it, the whole in UTF-8, nesting unbounded),
//! and is used only up to [`MAX`] bytes: serde_json's string scan is the faster one
//! on long text.

/// The largest body checked here: every container open at once still fits in one
/// bit each of a `u128`.
pub(super) const MAX: usize = 128;

/// Whether `text`, at most [`MAX`] bytes long, is one JSON value in UTF-8.
pub(super) fn is_json(text: &[u8]) -> bool {
    debug_assert!(text.len() <= MAX);
    let mut scan = Scan {
        text,
        at: 0,
        high: 0,
    };
    scan.document().is_some() && (scan.high < 0x80 || std::str::from_utf8(text).is_ok())
}

/// Each byte's top bit, in a word of eight.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
/// One in each byte of a word of eight.
const ONES: u64 = 0x0101_0101_0101_0101;

/// The top bit of the first byte of `word` (read little-endian) that is a quote, a
/// backslash or a control character, and maybe of later ones; 0 when there is none.
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

/// A scan of a text: where it is, and the bytes its strings held.
struct Scan<'a> {
    text: &'a [u8],
    at: usize,
    /// Every string byte or-ed together: above `0x7f`, a UTF-8 check is due (no
    /// byte outside a string may be one).
    high: u8,
}

impl Scan<'_> {
    /// The whole text: one value, whitespace around it.
    fn document(&mut self) -> Option<()> {
        // Each open container is one bit, set for an object; a text of `MAX` bytes
        // opens at most `MAX` of them.
        let mut open: u128 = 0;
        let mut depth = 0u32;
        loop {
            // A value starts here.
            match self.next_token()? {
                b'{' if self.closes(b'}')? => {}
                b'{' => {
                    open = open << 1 | 1;
                    depth += 1;
                    self.key()?;
                    continue;
                }
                b'[' if self.closes(b']')? => {}
                b'[' => {
                    open <<= 1;
                    depth += 1;
                    continue;
                }
                b'"' => self.string()?,
                b't' => self.literal(b"rue")?,
                b'f' => self.literal(b"alse")?,
                b'n' => self.literal(b"ull")?,
                b'-' => {
                    let first = self.byte()?;
                    self.number(first)?;
                }
                first @ b'0'..=b'9' => self.number(first)?,
                _ => return None,
            }
            // A value ended: its containers close, or a comma leads to the next.
            loop {
                if depth == 0 {
                    self.skip_whitespace();
                    return (self.at == self.text.len()).then_some(());
                }
                let object = open & 1 == 1;
                match self.next_token()? {
                    b',' if object => {
                        self.key()?;
                        break;
                    }
                    b',' => break,
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                open >>= 1;
                depth -= 1;
            }
        }
    }

    /// The next byte that is not whitespace, consumed.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.byte()
    }

    /// The next byte, consumed.
    fn byte(&mut self) -> Option<u8> {
        let b = *self.text.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    /// Whether the container just opened closes at once with `close` (consumed if so).
    fn closes(&mut self, close: u8) -> Option<bool> {
        self.skip_whitespace();
        let closes = *self.text.get(self.at)? == close;
        self.at += usize::from(closes);
        Some(closes)
    }

    /// An object's key and its colon.
    #[inline(always)]
    fn key(&mut self) -> Option<()> {
        (self.next_token()? == b'"').then_some(())?;
        self.string()?;
        (self.next_token()? == b':').then_some(())
    }

    /// The rest of a string, after its opening quote.
    #[inline(always)]
    fn string(&mut self) -> Option<()> {
        loop {
            // Eight bytes at a time up to the first that ends the string or needs a
            // look: long text costs a few instructions a word, not a match a byte.
            if let Some(word) = self.text.get(self.at..).and_then(|rest| rest.first_chunk()) {
                let word = u64::from_le_bytes(*word);
                // Any byte above 0x7f in the word asks for the UTF-8 check, even one
                // past the string's end: the check itself is exact.
                self.high |= u8::from(word & HIGH_BITS != 0) << 7;
                let special = special_bytes(word);
                if special == 0 {
                    self.at += 8;
                    continue;
                }
                self.at += (special.trailing_zeros() / 8) as usize;
            }
            match self.byte()? {
                b'"' => return Some(()),
                b'\\' => match self.byte()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        for _ in 0..4 {
                            self.byte()?.is_ascii_hexdigit().then_some(())?;
                        }
                    }
                    _ => return None,
                },
                0..0x20 => return None,
                b => self.high |= b,
            }
        }
    }

    /// The rest of a literal, after its first letter.
    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.at + rest.len();
        (self.text.get(self.at..end)? == rest).then_some(())?;
        self.at = end;
        Some(())
    }

    /// The rest of a number whose first digit, `first`, was consumed.
    fn number(&mut self, first: u8) -> Option<()> {
        match first {
            // A leading zero stands alone: a digit after it ends the number, and the
            // value with it.
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.text.get(self.at) == Some(&b'.') {
            self.at += 1;
            self.digit()?;
        }
        if let Some(b'e' | b'E') = self.text.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.text.get(self.at) {
                self.at += 1;
            }
            self.digit()?;
        }
        Some(())
    }

    /// At least one digit.
    fn digit(&mut self) -> Option<()> {
        self.byte()?.is_ascii_digit().then_some(())?;
        self.digits();
        Some(())
    }

    fn digits(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
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
            b"01",
            b"-",
            b"1.",
            b"1e",
            b"1e+",
            b".5",
            b"+1",
            b"[1,]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{1:2}",
            b"[1 2]",
            b"{\"a\":1]",
            b"[}",
            b"tru",
            b"truex",
            b"nul",
            b"\"\\x\"",
            b"\"\\u12g4\"",
            b"\"\\u12\"",
            b"\"a\tb\"",
            b"\"unterminated",
            b"{} {}",
            b"",
            b"   ",
            b"\x0c1",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        ];
        for &text in cases {
            assert_eq!(
                is_json(text),
                serde_json_accepts(text),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        // Every kind of byte a string's word-at-a-time scan stops at, or must note,
        // at every place in and around a word.
        for inside in [
            &b"\\\""[..],
            b"\\n",
            b"\\u00e9",
            b"\x01",
            b"\x7f",
            b"\xc3\xa9",
            b"\xff",
            b"\"",
            b"\\x",
        ] {
            for at in 0..20 {
                let text = [
                    &b"[\""[..],
                    &b"a".repeat(at),
                    inside,
                    &b"b".repeat(20 - at),
                    b"\"]",
                ]
                .concat();
                assert_eq!(
                    is_json(&text),
                    serde_json_accepts(&text),
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        let deepest = [b"[".repeat(MAX / 2), b"]".repeat(MAX / 2)].concat();
        assert!(is_json(&deepest));
        assert!(!is_json(&b"[".repeat(MAX)));
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
            .prop_filter("small", |text| text.len() <= MAX)
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
            .prop_filter("small", |text| text.len() <= MAX)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// A body is JSON here exactly when serde_json says so.
        #[test]
        fn agrees_with_serde_json(text in text()) {
            prop_assert_eq!(is_json(&text), serde_json_accepts(&text));
        }

        #[test]
        fn agrees_with_serde_json_near_json(text in near_json()) {
            prop_assert_eq!(is_json(&text), serde_json_accepts(&text));
        }

        #[test]
        fn agrees_with_serde_json_on_any_bytes(text in prop::collection::vec(any::<u8>(), 0..MAX)) {
            prop_assert_eq!(is_json(&text), serde_json_accepts(&text));
        }
    }
}
