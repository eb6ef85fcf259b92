//! Finding `{result=ID:PATH}` references in a piece of text.

use super::path::Path;

/// What every reference starts with.
pub(crate) const OPEN: &str = "{result=";

/// A reference as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written<'a> {
    /// The id of the op referred to, as written.
    pub(crate) id: &'a str,
    pub(crate) path: Path,
    /// The whole reference, braces included, for the answer that says which failed.
    pub(crate) text: &'a str,
}

/// A piece of text with references in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Reference(Written<'a>),
}

/// Why text holds a reference that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed<'a> {
    /// The text from where the reference starts.
    pub(crate) at: &'a str,
}

/// The marker as one word, for texts compared with it eight bytes at a time.
const OPEN_WORD: u64 = match OPEN.as_bytes().first_chunk() {
    Some(bytes) if OPEN.len() == 8 => u64::from_ne_bytes(*bytes),
    _ => panic!("the marker is eight bytes, one word"),
};

/// Texts shorter than this are searched window by window: a substring searcher's
/// setup costs more than the search itself (an op's url, most header values).
const SHORT: usize = 64;

/// Whether `text` (a string, or a body's bytes) holds something meant as a
/// reference.
pub(crate) fn has_reference(text: impl AsRef<[u8]>) -> bool {
    let text = text.as_ref();
    if text.len() < OPEN.len() {
        return false;
    }
    if text.len() < SHORT {
        // Every eight-byte window compared with the marker at once, as one word.
        return text
            .windows(OPEN.len())
            .filter_map(|window| window.first_chunk())
            .any(|window| u64::from_ne_bytes(*window) == OPEN_WORD);
    }
    memchr::memmem::find(text, OPEN.as_bytes()).is_some()
}

/// Cuts `text` into literal text and references. A `{` that does not open
/// `{result=` is text; one that does must be followed by a non-empty id, `:`, a
/// path of the subset and `}`.
pub(crate) fn pieces(text: &str) -> Result<Vec<Piece<'_>>, Malformed<'_>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = memchr::memmem::find(rest.as_bytes(), OPEN.as_bytes()) {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let at = &rest[start..];
        let malformed = || Malformed { at };
        let inner = &at[OPEN.len()..];
        let colon = inner.find([':', '}', '{']).ok_or_else(malformed)?;
        let id = &inner[..colon];
        let after_id = inner[colon..].strip_prefix(':').ok_or_else(malformed)?;
        if id.is_empty() {
            return Err(malformed());
        }
        let (path, after_path) = Path::parse(after_id).map_err(|_| malformed())?;
        let after = after_path.strip_prefix('}').ok_or_else(malformed)?;
        let length = at.len() - after.len();
        pieces.push(Piece::Reference(Written {
            id,
            path,
            text: &at[..length],
        }));
        rest = after;
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Vec<String> {
        pieces(text)
            .unwrap()
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => format!("text {text}"),
                Piece::Reference(r) => format!("ref {} {}", r.id, r.text),
            })
            .collect()
    }

    #[test]
    fn cuts_text_and_references() {
        assert_eq!(
            shape("/items/{result=new:$.id}/tags?x={y}&n={result=a b:$['k']}"),
            [
                "text /items/",
                "ref new {result=new:$.id}",
                "text /tags?x={y}&n=",
                "ref a b {result=a b:$['k']}",
            ]
        );
        assert_eq!(shape("{result=x:$}{result=y:$[0]}").len(), 2);
        assert_eq!(shape("no reference {here}"), ["text no reference {here}"]);
        assert!(!has_reference("{results=x:$}"));
    }

    #[test]
    fn the_marker_is_found_anywhere_in_short_and_long_texts() {
        assert!(!has_reference(""));
        assert!(!has_reference("{result"));
        assert!(has_reference(OPEN));
        for len in [OPEN.len(), 9, 15, 16, 17, SHORT - 1, SHORT, SHORT + 1, 200] {
            let filler = |n: usize| "x".repeat(n);
            for at in 0..=len - OPEN.len() {
                let text = format!("{}{OPEN}{}", filler(at), filler(len - OPEN.len() - at));
                assert!(has_reference(&text), "{len} bytes, marker at {at}");
                // One byte off anywhere in the marker, and it is not one.
                for wrong in 0..OPEN.len() {
                    let mut bytes = text.clone().into_bytes();
                    bytes[at + wrong] = b'X';
                    assert!(!has_reference(&bytes), "{len} bytes, {at}, {wrong}");
                }
            }
            assert!(!has_reference(filler(len)));
        }
        // Cut short at either end.
        assert!(!has_reference("result=xxxxxxxx"));
        assert!(!has_reference("xxxxxxxx{result"));
    }

    #[test]
    fn malformed_references_are_refused_where_they_start() {
        for text in [
            "/a/{result=",
            "/a/{result=x}",
            "/a/{result=:$.id}",
            "/a/{result=x:id}",
            "/a/{result=x:$.id",
            "/a/{result=x:$..id}",
            "/a/{result=x:$[?(@.a)]}",
            "/a/{result=x{result=y:$}:$}",
            "/a/{result=x:$.id }",
        ] {
            let error = pieces(text).unwrap_err();
            assert!(error.at.starts_with(OPEN), "{text}");
        }
    }
}
