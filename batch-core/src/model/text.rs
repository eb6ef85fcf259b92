//! Text that shares the batch body's bytes.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A piece of a batch's text, such as an op's url or id: it shares the batch body's
/// bytes when it was written there as it is, so that it is never copied on its way
/// from the body to the op's request or result.
///
/// It reads as a `str` and compares, orders and hashes as one.
///
/// ```
/// use batch_core::Text;
///
/// let url = Text::from("/items?limit=2");
/// assert_eq!(url, "/items?limit=2");
/// assert_eq!(url.split_once('?'), Some(("/items", "limit=2")));
/// assert_eq!(Text::from(String::from("a")), Text::from("a"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text(
    // Always UTF-8: every constructor takes a `str`. (Byte order is the order of
    // the `str`s, so comparing the bytes compares the texts.)
    Bytes,
);

impl Text {
    /// A text of a `'static` string: no allocation, no copy.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// A view of `text`, which lies inside `document`, sharing its bytes (a copy if it
    /// does not lie inside).
    pub(crate) fn shared(document: &Bytes, text: &str) -> Self {
        Self(shared(document, text))
    }

    /// The bytes `range` of `document`, sharing them. `range` is where a reader of
    /// the document found a text: within it, and UTF-8 (bytes that are not would
    /// read as empty).
    #[inline]
    pub(crate) fn within(document: &Bytes, range: std::ops::Range<usize>) -> Self {
        debug_assert!(std::str::from_utf8(&document[range.clone()]).is_ok());
        Self(document.slice(range))
    }

    /// The part `range` of the text, sharing its bytes. `range` is the caller's own
    /// arithmetic on a text it made: within it, and on character boundaries (a part
    /// that is not UTF-8 would read as empty).
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> Self {
        debug_assert!(std::str::from_utf8(&self.0[range.clone()]).is_ok());
        Self(self.0.slice(range))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // The bytes are UTF-8 (see the field): the check never fails. It costs a pass
        // over the bytes, which hot paths avoid with `as_bytes`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The text's bytes, without the UTF-8 check [`Text::as_str`] makes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text's length in bytes, read without the UTF-8 check (as the `str`'s
    /// would be through `Deref`).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty, read without the UTF-8 check.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text's bytes, shared, for a type that holds them (such as a
    /// [`http::Uri`]).
    pub(crate) fn into_bytes(self) -> Bytes {
        self.0
    }
}

/// `part` as a view into `document` when it lies inside it, as every value parsed
/// from the document does; a copy otherwise. Op bodies are most of a large batch's
/// bytes: sharing them keeps one copy of each in memory, not two.
pub(crate) fn shared(document: &Bytes, part: &str) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(document.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= document.len() => document.slice(start..end),
        _ => Bytes::copy_from_slice(part.as_bytes()),
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

// As the `str`, so that a map keyed by `Text` is searched by `&str` (`Borrow`).
impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        other == self
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        other == self
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;

    #[test]
    fn values_inside_the_document_are_shared_others_copied() {
        let document = Bytes::from_static(br#"{"body": {"x": [1, 2]}}"#);
        let text = std::str::from_utf8(&document).unwrap();
        let inside = &text[9..22];
        let view = shared(&document, inside);
        assert_eq!(view, inside.as_bytes());
        assert_eq!(view.as_ptr(), inside.as_ptr(), "no copy");
        let elsewhere = String::from(r#"{"x": [1, 2]}"#);
        let copy = shared(&document, &elsewhere);
        assert_eq!(copy, elsewhere.as_bytes());
        assert_ne!(copy.as_ptr(), elsewhere.as_ptr());
    }

    #[test]
    fn a_text_orders_hashes_and_prints_as_its_str() {
        let texts: BTreeSet<Text> = ["b", "a", "é", "B"].into_iter().map(Text::from).collect();
        let strs: BTreeSet<&str> = ["b", "a", "é", "B"].into_iter().collect();
        assert!(texts.iter().map(Text::as_str).eq(strs.iter().copied()));
        let map = HashMap::from([(Text::from(String::from("op")), 1)]);
        assert_eq!(map.get("op"), Some(&1));
        let text = Text::from("say \"hi\"");
        assert_eq!(format!("{text:?}"), format!("{:?}", "say \"hi\""));
        assert_eq!(text.to_string(), "say \"hi\"");
        assert_eq!(serde_json::to_string(&text).unwrap(), r#""say \"hi\"""#);
        let back: Text = serde_json::from_str(r#""say \"hi\"""#).unwrap();
        assert_eq!(back, text);
    }
}
