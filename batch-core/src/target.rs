//! Operation targets: the one check and canonical form of an op's url.
//!
//! The rules reject rather than repair: a target that would need normalising
//! (dot segments, `//`, encoded slashes) is refused, so the URI handed to the
//! executor is byte for byte the string that every check saw.

use http::Uri;
use http::uri::PathAndQuery;
use thiserror::Error;

use crate::model::Text;

/// The longest op url accepted, in bytes.
pub(crate) const MAX_TARGET_LEN: usize = 8 * 1024;

/// Why an op url was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum TargetError {
    /// The url is empty or does not start with `/`.
    #[error("must be a path starting with '/', without scheme or host")]
    NotOriginForm,
    /// The url is longer than the limit.
    #[error("is longer than {MAX_TARGET_LEN} bytes")]
    TooLong,
    /// The path contains `//`, which some routers read as an authority.
    #[error("must not contain '//' in its path")]
    EmptySegment,
    /// The url carries a `#fragment`.
    #[error("must not contain a fragment ('#')")]
    Fragment,
    /// The path has a `.` or `..` segment, raw or percent-encoded.
    #[error("must not contain '.' or '..' path segments")]
    DotSegment,
    /// The path has an encoded `/` or `\`, or a raw `\`.
    #[error("must not contain a backslash or an encoded '/' or '\\' in its path")]
    Slash,
    /// A control byte or space, raw anywhere or percent-encoded in the path.
    #[error("must not contain control characters or spaces")]
    Control,
    /// A byte outside ASCII.
    #[error("must not contain raw non-ASCII characters (percent-encode them)")]
    NonAscii,
    /// A `%` not followed by two hex digits.
    #[error("contains an invalid percent-encoding")]
    BadPercent,
    /// A character the URI grammar does not allow.
    #[error("is not a valid URI path and query")]
    Invalid,
    /// The path is the batch endpoint itself.
    #[error("must not target the batch endpoint (nested batches are refused)")]
    NestedBatch,
}

/// Checks an op url and returns the URI to dispatch, which holds the url's own
/// bytes.
///
/// `batch_path` is the batch endpoint's path, which no op may target.
// Always inlined into `validate::check`: a call of its own moved the `Uri` once
// more.
#[inline(always)]
pub(crate) fn parse(url: Text, batch_path: &str) -> Result<Uri, TargetError> {
    check_bytes(url.as_bytes(), batch_path)?;
    // The url starts with `/` (checked above): it is a path and query, and the
    // `Uri` is that alone, without the parse of every form a `Uri` may take.
    let path_and_query =
        PathAndQuery::from_maybe_shared(url.into_bytes()).map_err(|_| TargetError::Invalid)?;
    Ok(Uri::from(path_and_query))
}

/// Every rule but the URI grammar's own, which [`Uri`] checks. One scan of the bytes
/// finds the query, whether anything is percent-encoded, the path's empty segments,
/// and whether its path has a `.`; only a path with a `.` is looked at again for
/// dot segments, and only a url with a `%` has its segments decoded.
pub(crate) fn check(url: &str, batch_path: &str) -> Result<(), TargetError> {
    check_bytes(url.as_bytes(), batch_path)
}

/// [`check`] on the url's bytes, which [`parse`] has without a UTF-8 check.
// Always inlined into `validate`: most urls need only the scan and the batch path's
// length, and the call (its saved registers and arguments) cost about a fifth of
// that. A url with a `%`, rarer, is checked further out of line.
#[inline(always)]
fn check_bytes(url: &[u8], batch_path: &str) -> Result<(), TargetError> {
    if url.len() > MAX_TARGET_LEN {
        return Err(TargetError::TooLong);
    }
    if url.first() != Some(&b'/') {
        return Err(TargetError::NotOriginForm);
    }
    let mut query_at = None;
    let mut encoded = false;
    // Of the path's segments as written, the scan notes only whether one was empty
    // before another (a `//`) and whether any `.` was seen: only then are they
    // looked at for dot segments, which most paths cannot have.
    let mut empty = false;
    let mut dotted = false;
    // Indexed from 1, past the `/`: an iterator that skips it kept a state the
    // loop tested at every byte that is not plain (~30 instructions a url).
    for at in 1..url.len() {
        let b = url[at];
        if PLAIN[usize::from(b)] {
            continue;
        }
        match b {
            b'\\' => return Err(TargetError::Slash),
            b'#' => return Err(TargetError::Fragment),
            0x00..=0x20 | 0x7f => return Err(TargetError::Control),
            0x80.. => return Err(TargetError::NonAscii),
            b'"' | b'<' | b'>' | b'^' | b'`' | b'{' | b'|' | b'}' => {
                return Err(TargetError::Invalid);
            }
            b'/' if query_at.is_none() => {
                empty |= url[at - 1] == b'/';
            }
            b'.' => dotted |= query_at.is_none(),
            b'?' if query_at.is_none() => query_at = Some(at),
            b'%' => encoded = true,
            _ => {}
        }
    }
    if empty {
        return Err(TargetError::EmptySegment);
    }
    // Bytes from here on: the scan above let only ASCII through, and a `str` of
    // them would cost a UTF-8 check for every op.
    let path = match query_at {
        Some(at) => &url[..at],
        None => url,
    };
    if encoded {
        return check_encoded(url, query_at, batch_path);
    }
    if dotted && path[1..].split(|&b| b == b'/').any(is_dot) {
        return Err(TargetError::DotSegment);
    }
    // Most paths differ from the batch path in length by more than its trailing
    // slash: told apart without trimming them.
    let batch_path = batch_path.as_bytes();
    if path.len().abs_diff(batch_path.len()) <= 1
        && trim_slash(path).eq_ignore_ascii_case(trim_slash(batch_path))
    {
        return Err(TargetError::NestedBatch);
    }
    Ok(())
}

/// Whether a path segment, as written, is a dot segment.
fn is_dot(segment: &[u8]) -> bool {
    segment == b"." || segment == b".."
}

/// The rest of [`check_bytes`] for a url with a `%` (its query, if any, from
/// `query_at`): every escape valid and none of a control byte or a slash in the
/// path, no dot segment once decoded, and not the batch path once decoded.
#[inline(never)]
fn check_encoded(url: &[u8], query_at: Option<usize>, batch_path: &str) -> Result<(), TargetError> {
    let (path, query) = match query_at {
        Some(at) => (&url[..at], Some(&url[at + 1..])),
        None => (url, None),
    };
    let decoded_dot = |segment: &[u8]| {
        std::str::from_utf8(segment).is_ok_and(|text| is_dot(normalize_path(text).as_bytes()))
    };
    let dot = path[1..].split(|&b| b == b'/').any(decoded_dot);
    check_percent(path, true)?;
    if let Some(query) = query {
        check_percent(query, false)?;
    }
    if dot {
        return Err(TargetError::DotSegment);
    }
    // Only a `%` makes the decoded path differ from the path as written.
    if std::str::from_utf8(path).is_ok_and(|path| is_batch_path(path, batch_path)) {
        return Err(TargetError::NestedBatch);
    }
    Ok(())
}

/// The bytes the scan of a url passes over: looked up, since most bytes are these
/// and the match for the others costs several branches a byte.
static PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        plain[b] = !matches!(
            b as u8,
            b'\\'
                | b'#'
                | b'"'
                | b'<'
                | b'>'
                | b'^'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'/'
                | b'?'
                | b'%'
                | b'.'
        );
        b += 1;
    }
    plain
};

/// Checks every `%XX` in `bytes`: it must be valid, never a control byte and, in
/// the path, never an encoded slash, backslash or space.
fn check_percent(bytes: &[u8], is_path: bool) -> Result<(), TargetError> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(hex_byte)
                .ok_or(TargetError::BadPercent)?;
            match byte {
                0x00..=0x1f | 0x7f => return Err(TargetError::Control),
                b' ' if is_path => return Err(TargetError::Control),
                b'/' | b'\\' if is_path => return Err(TargetError::Slash),
                _ => {}
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// The byte two hex digits stand for (`from_str_radix` alone would take a sign).
fn hex_byte(hex: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    match hex {
        [high, low] => u8::try_from(digit(*high)? * 16 + digit(*low)?).ok(),
        _ => None,
    }
}

/// Decodes percent-encoded unreserved characters (RFC 3986 §2.3), which mean the same
/// encoded or not, and writes every other escape's hex digits in upper case
/// (§6.2.2.1): two spellings of one path come out the same. Anything else, an
/// invalid escape included, stays as it is.
pub(crate) fn normalize_path(input: &str) -> std::borrow::Cow<'_, str> {
    if !input.contains('%') {
        return input.into();
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    // Each `%` and its two hex digits are ASCII, so every cut is a char boundary.
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escaped = rest.as_bytes().get(at + 1..at + 3).and_then(hex_byte);
        rest = match escaped {
            Some(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                out.push(char::from(b));
                &rest[at + 3..]
            }
            Some(b) => {
                out.push_str(&format!("%{b:02X}"));
                &rest[at + 3..]
            }
            None => {
                out.push('%');
                &rest[at + 1..]
            }
        };
    }
    out.push_str(rest);
    out.into()
}

/// Whether `path` names the batch endpoint: equal after decoding unreserved
/// characters, folding case and dropping one trailing slash.
pub(crate) fn is_batch_path(path: &str, batch_path: &str) -> bool {
    let decoded = normalize_path(path);
    trim_slash(decoded.as_bytes()).eq_ignore_ascii_case(trim_slash(batch_path.as_bytes()))
}

/// Drops one trailing slash, but never the root's.
fn trim_slash(path: &[u8]) -> &[u8] {
    match path.strip_suffix(b"/") {
        Some(rest) if !rest.is_empty() => rest,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<Uri, TargetError> {
        parse(url.to_owned().into(), "/batch")
    }

    #[test]
    fn accepts_origin_form_paths_and_queries() {
        for url in [
            "/",
            "/items",
            "/items/1?verbose=1",
            "/echo/a?q=hello%20world",
            "/items?redirect=%2Fhome",
            "/caf%C3%A9",
            "/a.b/..c/.d",
            "/files/a.txt?at=./..&back=/../",
            "/batches",
            "/api/batch",
        ] {
            let uri = check(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(uri.to_string(), url, "the URI is the url, unchanged");
        }
    }

    #[test]
    fn refuses_everything_that_is_not_a_plain_path() {
        let cases: &[(&str, TargetError)] = &[
            ("", TargetError::NotOriginForm),
            ("items", TargetError::NotOriginForm),
            ("http://evil.example/", TargetError::NotOriginForm),
            ("//evil.example/x", TargetError::EmptySegment),
            ("/a//b", TargetError::EmptySegment),
            ("/a\\b", TargetError::Slash),
            ("/a%2Fb", TargetError::Slash),
            ("/a%2fb", TargetError::Slash),
            ("/a%5Cb", TargetError::Slash),
            ("/a/../b", TargetError::DotSegment),
            ("/a/./b", TargetError::DotSegment),
            ("/a/..", TargetError::DotSegment),
            ("/./a", TargetError::DotSegment),
            ("/.", TargetError::DotSegment),
            ("/a.b/.?x=1", TargetError::DotSegment),
            ("/a.b/..//c", TargetError::EmptySegment),
            ("/a/%2e%2e/b", TargetError::DotSegment),
            ("/a/.%2E/b", TargetError::DotSegment),
            ("/a/%2e/b", TargetError::DotSegment),
            ("/a b", TargetError::Control),
            ("/a%20b", TargetError::Control),
            ("/a\r\nHost: x", TargetError::Control),
            ("/a%0d%0a", TargetError::Control),
            ("/a?x=%00", TargetError::Control),
            ("/a\u{0}", TargetError::Control),
            ("/caf\u{e9}", TargetError::NonAscii),
            ("/a%zz", TargetError::BadPercent),
            ("/a%4", TargetError::BadPercent),
            ("/a?q=%g0", TargetError::BadPercent),
            ("/a#frag", TargetError::Fragment),
            ("/a{b}", TargetError::Invalid),
            ("/a?q=<script>", TargetError::Invalid),
            ("/a|b", TargetError::Invalid),
        ];
        for (url, expected) in cases {
            assert_eq!(check(url).as_ref().err(), Some(expected), "{url:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_TARGET_LEN));
        assert_eq!(check(&long).err(), Some(TargetError::TooLong));
        let longest = format!("/{}", "a".repeat(MAX_TARGET_LEN - 1));
        assert!(check(&longest).is_ok());
    }

    #[test]
    fn bytes_passed_over_as_plain_are_accepted_anywhere() {
        for b in (0..=u8::MAX).filter(|&b| PLAIN[usize::from(b)]) {
            let url = format!("/a{}b?c{}d", char::from(b), char::from(b));
            assert!(check(&url).is_ok(), "{url}");
        }
    }

    #[test]
    fn spellings_of_one_path_normalize_alike() {
        for (path, normal) in [
            ("/items/1", "/items/1"),
            ("/items/%31", "/items/1"),
            ("/%69tems/%7e%2D", "/items/~-"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/a%2fb", "/a%2Fb"),
            ("/café/%41", "/café/A"),
            ("/bad%zz%4", "/bad%zz%4"),
            ("/signed%+F", "/signed%+F"),
            ("/end%", "/end%"),
        ] {
            assert_eq!(normalize_path(path), normal, "{path}");
        }
    }

    #[test]
    fn nested_batch_is_refused_whatever_the_spelling() {
        for url in [
            "/batch",
            "/BATCH",
            "/Batch/",
            "/batch?x=1",
            "/b%61tch",
            "/%62atch/",
        ] {
            assert_eq!(check(url).err(), Some(TargetError::NestedBatch), "{url}");
        }
        assert_eq!(
            check("/./batch").err(),
            Some(TargetError::DotSegment),
            "dot segments are refused before the path is compared"
        );
        assert_eq!(
            parse("/v1/Batch/".into(), "/v1/batch").err(),
            Some(TargetError::NestedBatch)
        );
        // A batch path with its trailing slash, or the root, against urls a byte
        // longer or shorter.
        for (url, batch_path, nested) in [
            ("/v1/batch", "/v1/batch/", true),
            ("/v1/batch/", "/v1/batch/", true),
            ("/v1/batchx", "/v1/batch/", false),
            ("/", "/", true),
            ("/a", "/", false),
        ] {
            let refused = parse(url.into(), batch_path).err() == Some(TargetError::NestedBatch);
            assert_eq!(refused, nested, "{url} {batch_path}");
        }
    }

    #[test]
    fn batch_path_match_drops_one_trailing_slash_only() {
        assert!(is_batch_path("/batch/", "/batch"));
        assert!(!is_batch_path("/batch//", "/batch"));
        assert!(!is_batch_path("/batch/x", "/batch"));
        assert!(is_batch_path("/", "/"));
    }
}
