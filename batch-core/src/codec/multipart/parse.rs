//! Reading `multipart/mixed` bodies and the HTTP requests in their parts, for hostile
//! input: every step is one forward pass over a slice of the body, nothing recurses,
//! header counts and sizes are capped, and nothing indexes past what it checked.
//!
//! Accepted beyond the RFCs, because real clients send it: bare LF as well as CRLF,
//! a body without its final line break, a quoted boundary containing `=`, request
//! lines without an HTTP version, and head blocks that end with the part.

use http::StatusCode;
use memchr::memchr;

use crate::problem::Problem;

/// The longest boundary RFC 2046 allows.
const MAX_BOUNDARY: usize = 70;
/// The most MIME headers one part may have (`Content-Type`, `Content-ID`, ...).
const MAX_PART_HEADERS: usize = 16;
/// The largest MIME header block of a part, in bytes.
const MAX_PART_HEAD: usize = 8 * 1024;
/// The most headers one embedded request may have: the op header limit, plus room for
/// the framing headers the codec checks and drops.
const MAX_REQUEST_HEADERS: usize = 128;
/// The largest embedded request head (request line and headers), in bytes.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// The `boundary` parameter of a `multipart/mixed` content type.
pub(super) fn boundary(content_type: &str) -> Result<&str, Problem> {
    let value = content_type
        .split(';')
        .skip(1)
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim())
        .ok_or_else(|| Problem::bad_request("the multipart content type has no boundary"))?;
    let value = match value.strip_prefix('"') {
        Some(quoted) => quoted
            .strip_suffix('"')
            .ok_or_else(|| Problem::bad_request("the multipart boundary has no closing quote"))?,
        None => value,
    };
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b);
    if value.is_empty()
        || value.len() > MAX_BOUNDARY
        || value.ends_with(' ')
        || !value.bytes().all(allowed)
    {
        return Err(Problem::bad_request(format!(
            "the multipart boundary must be 1 to {MAX_BOUNDARY} characters of RFC 2046's set, not ending in a space"
        )));
    }
    Ok(value)
}

/// The parts of a multipart body, each as the bytes between its delimiter lines.
///
/// A delimiter line is exactly `--boundary` (or `--boundary--` for the last), ended
/// by CRLF, LF or the end of the body; the line break before it belongs to it.
/// Refuses more than `max_parts` parts (413) as soon as it sees one more.
pub(super) fn split<'a>(
    body: &'a [u8],
    boundary: &str,
    max_parts: usize,
) -> Result<Vec<&'a [u8]>, Problem> {
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    let mut line_start = 0;
    loop {
        let rest = body.get(line_start..).unwrap_or_default();
        let newline = memchr(b'\n', rest).map(|i| line_start + i);
        let line_end = newline.unwrap_or(body.len());
        let line = body.get(line_start..line_end).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let close = match line.strip_prefix(delimiter.as_slice()) {
            Some(b"") => Some(false),
            Some(b"--") => Some(true),
            _ => None,
        };
        if let Some(close) = close {
            if let Some(start) = open {
                // The line break before the delimiter is part of the delimiter.
                let before = &body[..line_start];
                let before = before.strip_suffix(b"\n").unwrap_or(before);
                let end = before.strip_suffix(b"\r").unwrap_or(before).len();
                parts.push(body.get(start..end.max(start)).unwrap_or_default());
                if parts.len() > max_parts {
                    return Err(Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "the batch has more than {max_parts} parts; at most {max_parts} operations are allowed"
                        ),
                    ));
                }
            }
            if close {
                if parts.is_empty() {
                    return Err(Problem::bad_request("the multipart body has no parts"));
                }
                return Ok(parts);
            }
            open = Some(newline.map_or(body.len(), |n| n + 1));
        }
        match newline {
            Some(n) => line_start = n + 1,
            None => {
                return Err(Problem::bad_request(format!(
                    "the multipart body ends before its closing delimiter --{boundary}--"
                )));
            }
        }
    }
}

/// What a part holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind<'a> {
    /// One HTTP request (`application/http`).
    Request,
    /// A change set: a nested `multipart/mixed` with this boundary.
    ChangeSet(&'a str),
}

/// A part's MIME headers, read, and its content.
#[derive(Debug)]
pub(super) struct Part<'a> {
    pub(super) kind: Kind<'a>,
    /// The `Content-ID` as sent, trimmed.
    pub(super) content_id: Option<&'a str>,
    pub(super) content: &'a [u8],
}

/// Reads a part's MIME headers.
pub(super) fn part(raw: &[u8]) -> Result<Part<'_>, Problem> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
    let (consumed, headers) = match httparse::parse_headers(raw, &mut storage) {
        Ok(httparse::Status::Complete(done)) => done,
        Ok(httparse::Status::Partial) => {
            return Err(Problem::bad_request(
                "a part's headers do not end with an empty line",
            ));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Problem::bad_request(format!(
                "a part has more than {MAX_PART_HEADERS} headers"
            )));
        }
        Err(err) => {
            return Err(Problem::bad_request(format!(
                "a part's headers are malformed: {err}"
            )));
        }
    };
    if consumed > MAX_PART_HEAD {
        return Err(Problem::bad_request(format!(
            "a part's headers are larger than {MAX_PART_HEAD} bytes"
        )));
    }
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| {
                std::str::from_utf8(h.value).map(str::trim).map_err(|_| {
                    Problem::bad_request(format!("a part's {name} header is not UTF-8"))
                })
            })
            .transpose()
    };
    let content_type = value("content-type")?.unwrap_or_default();
    let kind = match crate::codec::spelling::essence(content_type).as_ref() {
        "application/http" => Kind::Request,
        "multipart/mixed" => Kind::ChangeSet(boundary(content_type)?),
        _ => {
            return Err(Problem::bad_request(format!(
                "a part must be Content-Type: application/http (or a multipart/mixed change set), not {content_type:?}"
            )));
        }
    };
    if let Some(encoding) = value("content-transfer-encoding")? {
        if !["binary", "8bit", "7bit"]
            .iter()
            .any(|e| e.eq_ignore_ascii_case(encoding))
        {
            return Err(Problem::bad_request(format!(
                "a part's Content-Transfer-Encoding must be binary, 8bit or 7bit, not {encoding:?}"
            )));
        }
    }
    Ok(Part {
        kind,
        content_id: value("content-id")?.filter(|id| !id.is_empty()),
        content: raw.get(consumed..).unwrap_or_default(),
    })
}

/// A `Content-ID` without its angle brackets.
pub(super) fn unbracketed(label: &str) -> &str {
    label
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix('>'))
        .unwrap_or(label)
}

/// An HTTP request embedded in a part.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub(super) method: &'a str,
    pub(super) target: &'a str,
    /// Headers in order, `Content-Length` checked and removed.
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: &'a [u8],
}

/// Reads the HTTP request in a part's content: request line, headers, body.
pub(super) fn request(content: &[u8]) -> Result<Request<'_>, Problem> {
    // Some clients put a line break between the part headers' blank line and the
    // request line; RFC 9112 lets servers skip it.
    let mut rest = content;
    while let Some(after) = rest
        .strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
    {
        rest = after;
    }
    let line_end = memchr(b'\n', rest).unwrap_or(rest.len());
    if line_end > MAX_REQUEST_HEAD {
        return Err(too_large_head());
    }
    let line = &rest[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line)
        .map_err(|_| Problem::bad_request("a part's request line is not UTF-8"))?;
    let mut words = line.split(' ');
    let (Some(method), Some(target), version, None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad_request_line(line));
    };
    if method.is_empty()
        || target.is_empty()
        || version.is_some_and(|v| !matches!(v, "HTTP/1.1" | "HTTP/1.0"))
    {
        return Err(bad_request_line(line));
    }
    let after_line = rest.get(line_end + 1..).unwrap_or_default();
    let (mut headers, body) = headers_and_body(after_line)?;
    let body = checked_length(&mut headers, body)?;
    Ok(Request {
        method,
        target,
        headers,
        body,
    })
}

fn bad_request_line(line: &str) -> Problem {
    let shown: String = line.chars().take(100).collect();
    Problem::bad_request(format!(
        "a part's request line must be `METHOD target [HTTP/1.1]`, not {shown:?}"
    ))
}

fn too_large_head() -> Problem {
    Problem::bad_request(format!(
        "a part's request head is larger than {MAX_REQUEST_HEAD} bytes"
    ))
}

type Headers = Vec<(String, String)>;

/// The header block after the request line, and the body after it. A head that runs
/// to the end of the part without its blank line is all headers and no body.
fn headers_and_body(after_line: &[u8]) -> Result<(Headers, &[u8]), Problem> {
    if after_line.is_empty() {
        return Ok((Vec::new(), after_line));
    }
    let mut storage = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    match httparse::parse_headers(after_line, &mut storage) {
        Ok(httparse::Status::Complete((consumed, headers))) => {
            if consumed > MAX_REQUEST_HEAD {
                return Err(too_large_head());
            }
            Ok((
                owned(headers)?,
                after_line.get(consumed..).unwrap_or_default(),
            ))
        }
        Ok(httparse::Status::Partial) if after_line.len() <= MAX_REQUEST_HEAD => {
            let mut terminated = after_line.to_vec();
            if !terminated.ends_with(b"\n") {
                terminated.push(b'\n');
            }
            terminated.push(b'\n');
            let mut storage = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
            match httparse::parse_headers(&terminated, &mut storage) {
                Ok(httparse::Status::Complete((_, headers))) => Ok((owned(headers)?, &[])),
                _ => Err(Problem::bad_request(
                    "a part's request headers are malformed",
                )),
            }
        }
        Ok(httparse::Status::Partial) => Err(too_large_head()),
        Err(httparse::Error::TooManyHeaders) => Err(Problem::bad_request(format!(
            "a part's request has more than {MAX_REQUEST_HEADERS} headers"
        ))),
        Err(err) => Err(Problem::bad_request(format!(
            "a part's request headers are malformed: {err}"
        ))),
    }
}

fn owned(headers: &[httparse::Header<'_>]) -> Result<Headers, Problem> {
    headers
        .iter()
        .map(|h| {
            let value = std::str::from_utf8(h.value).map_err(|_| {
                Problem::bad_request(format!("a part's {} header is not UTF-8", h.name))
            })?;
            Ok((h.name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Checks a `Content-Length` against the body and removes it (the op's request gets
/// its own). One line break after the declared length is the part's, not the body's.
fn checked_length<'a>(headers: &mut Headers, body: &'a [u8]) -> Result<&'a [u8], Problem> {
    let mut declared: Option<usize> = None;
    for (_, value) in headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        let length = value
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| declared.is_none_or(|d| d == n))
            .ok_or_else(|| {
                Problem::bad_request(format!(
                    "a part's Content-Length {value:?} is not one number"
                ))
            })?;
        declared = Some(length);
    }
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-length"));
    let Some(length) = declared else {
        return Ok(body);
    };
    let (content, extra) = body.split_at(length.min(body.len()));
    if content.len() == length && matches!(extra, b"" | b"\n" | b"\r\n") {
        Ok(content)
    } else {
        Err(Problem::bad_request(format!(
            "a part's Content-Length is {length} but its body has {} bytes",
            body.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_quoted_or_not() {
        assert_eq!(boundary("multipart/mixed; boundary=abc").unwrap(), "abc");
        assert_eq!(
            boundary(r#"multipart/mixed; BOUNDARY="===============7330845974216740156==""#)
                .unwrap(),
            "===============7330845974216740156=="
        );
        assert_eq!(
            boundary("multipart/mixed;charset=utf-8; boundary=b_1").unwrap(),
            "b_1"
        );
        let long = format!("multipart/mixed; boundary={}", "a".repeat(71));
        for bad in [
            "multipart/mixed",
            "multipart/mixed; boundary=",
            "multipart/mixed; boundary=\"open",
            "multipart/mixed; boundary=a\"b",
            long.as_str(),
            "multipart/mixed; boundary=\"trailing \"",
        ] {
            assert_eq!(boundary(bad).unwrap_err().status(), 400, "{bad}");
        }
        assert!(boundary(&format!("multipart/mixed; boundary={}", "a".repeat(70))).is_ok());
    }

    #[test]
    fn split_takes_crlf_lf_preamble_and_a_missing_final_line_break() {
        let crlf = b"preamble\r\n--b\r\none\r\n--b\r\ntwo\r\n\r\n--b--";
        assert_eq!(split(crlf, "b", 10).unwrap(), [&b"one"[..], b"two\r\n"]);
        let lf = b"--b\none\n--b\n\n--b--\nepilogue";
        assert_eq!(split(lf, "b", 10).unwrap(), [&b"one"[..], b""]);
    }

    #[test]
    fn delimiter_lines_are_byte_exact() {
        // `--bx`, ` --b` and `--b ` are content, not delimiters.
        let body = b"--b\r\n--bx\r\n --b\r\n--b \r\n--b--\r\n";
        assert_eq!(
            split(body, "b", 10).unwrap(),
            [&b"--bx\r\n --b\r\n--b "[..]]
        );
    }

    #[test]
    fn split_refuses_truncation_emptiness_and_too_many_parts() {
        assert_eq!(
            split(b"--b\r\nx\r\n--b\r\n", "b", 10).unwrap_err().status(),
            400
        );
        assert_eq!(
            split(b"no delimiter at all", "b", 10).unwrap_err().status(),
            400
        );
        assert_eq!(split(b"--b--\r\n", "b", 10).unwrap_err().status(), 400);
        let three = b"--b\n1\n--b\n2\n--b\n3\n--b--";
        assert_eq!(split(three, "b", 2).unwrap_err().status(), 413);
        assert_eq!(split(three, "b", 3).unwrap().len(), 3);
    }

    #[test]
    fn part_headers() {
        let raw = b"Content-Type: application/http\nContent-Transfer-Encoding: binary\nMIME-Version: 1.0\nContent-ID: <a + 1>\n\nGET /x\n";
        let part = part(raw).unwrap();
        assert_eq!(part.kind, Kind::Request);
        assert_eq!(part.content_id, Some("<a + 1>"));
        assert_eq!(part.content, b"GET /x\n");
        let set = super::part(b"Content-Type: multipart/mixed; boundary=cs\r\n\r\n--cs--").unwrap();
        assert_eq!(set.kind, Kind::ChangeSet("cs"));
        for bad in [
            &b"Content-Type: text/plain\r\n\r\n"[..],
            b"\r\nGET / HTTP/1.1\r\n",
            b"Content-Type: application/http\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            b"Content-Type: application/http\r\n",
            b"GET /x HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(super::part(bad).unwrap_err().status(), 400, "{bad:?}");
        }
        let many = "X-A: 1\r\n".repeat(MAX_PART_HEADERS + 1) + "\r\n";
        assert_eq!(super::part(many.as_bytes()).unwrap_err().status(), 400);
    }

    #[test]
    fn requests_with_and_without_version_and_head_terminator() {
        let r = request(b"\r\nPOST /items HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.method, r.target, r.body), ("POST", "/items", &b"{}"[..]));
        assert_eq!(
            r.headers,
            [("Content-Type".to_owned(), "application/json".to_owned())]
        );
        let r = request(b"GET /items/1").unwrap();
        assert_eq!(
            (r.method, r.target, r.headers.len()),
            ("GET", "/items/1", 0)
        );
        let r = request(b"GET /items/1\nAccept: a").unwrap();
        assert_eq!(r.headers, [("Accept".to_owned(), "a".to_owned())]);
        assert!(r.body.is_empty());
        let r = request(b"DELETE /x HTTP/1.1\nContent-Length: 0\n\n\r\n").unwrap();
        assert!(
            r.body.is_empty(),
            "a line break after the declared length is the part's"
        );
    }

    #[test]
    fn malformed_requests_are_400() {
        for bad in [
            &b""[..],
            b"GET",
            b"GET  /x",
            b"GET /x HTTP/2",
            b"GET /x HTTP/1.1 extra",
            b"GET /x HTTP/1.1\r\nBad Header: 1\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc",
            b"POST /x HTTP/1.1\r\nContent-Length: 1\r\n\r\nabc",
            b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
            b"POST /x HTTP/1.1\r\nContent-Length: -3\r\n\r\nabc",
            b"\xff /x",
        ] {
            assert_eq!(request(bad).unwrap_err().status(), 400, "{bad:?}");
        }
        let many = format!(
            "GET /x\r\n{}\r\n",
            "X-A: 1\r\n".repeat(MAX_REQUEST_HEADERS + 1)
        );
        assert_eq!(request(many.as_bytes()).unwrap_err().status(), 400);
    }

    #[test]
    fn no_byte_sequence_panics() {
        // A cheap deterministic fuzz: every prefix and many mutations of a real body.
        let seed: &[u8] = b"--b\r\nContent-Type: application/http\r\nContent-ID: <1>\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nGET /y\r\n--c--\r\n--b--";
        let mut state = 0x2545_f491_u32;
        for len in 0..=seed.len() {
            let mut body = seed[..len].to_vec();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if !body.is_empty() {
                    let at = state as usize % body.len();
                    body[at] = (state >> 8) as u8;
                }
                if let Ok(parts) = split(&body, "b", 50) {
                    for raw in parts {
                        if let Ok(p) = part(raw) {
                            let _ = request(p.content);
                            if let Kind::ChangeSet(inner) = p.kind {
                                let _ = split(p.content, inner, 50);
                            }
                        }
                    }
                }
            }
        }
    }
}
