use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, StatusCode};

use super::parse;
use crate::model::{BatchRequest, BatchResponse, Format, Layout, OpResult, ResultBody};
use crate::problem::Problem;

fn outer(content_type: &str) -> Parts {
    Request::post("/batch")
        .header("host", "127.0.0.1:8080")
        .header("content-type", content_type)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn decode_with(content_type: &str, body: &[u8], max_ops: usize) -> Result<BatchRequest, Problem> {
    super::decode(&outer(content_type), &Bytes::copy_from_slice(body), max_ops)
}

fn decode(body: &str) -> Result<BatchRequest, Problem> {
    decode_with("multipart/mixed; boundary=b", body.as_bytes(), 50)
}

/// A captured exchange: `content-type: ...`, an empty line, then the body.
fn capture(text: &str) -> (&str, &str) {
    let (head, body) = text.split_once("\n\n").unwrap();
    (head.trim_start_matches("content-type: "), body)
}

/// What google-api-python-client's `BatchHttpRequest` sent to the demo server
/// (`clients/google-python`), byte for byte: bare LF throughout, a quoted boundary
/// with `=`, `<uuid + id>` Content-IDs, a `Content-Type` and `Host` on every GET.
const CLIENT_REQUEST: &str = include_str!("../../../tests/fixtures/multipart/client-request.txt");
/// What the demo answered, which the client parsed.
const DEMO_RESPONSE: &str = include_str!("../../../tests/fixtures/multipart/demo-response.txt");

#[test]
fn decodes_what_google_api_python_client_sends() {
    let (content_type, body) = capture(CLIENT_REQUEST);
    let parts = Request::post("/batch")
        .header("host", host_of(body))
        .header("content-type", content_type)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let batch = super::decode(&parts, &Bytes::copy_from_slice(body.as_bytes()), 50).unwrap();
    let summary: Vec<(&str, &str)> = batch
        .ops
        .iter()
        .map(|op| (op.method.as_deref().unwrap(), op.url.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("GET", "/items/1"),
            ("POST", "/items"),
            ("PATCH", "/items/4"),
            ("DELETE", "/items/5"),
            ("GET", "/items/999999")
        ]
    );
    let get = &batch.ops[0];
    assert!(get.body.is_empty());
    assert!(
        get.headers.iter().all(
            |(n, _)| !n.eq_ignore_ascii_case("host") && !n.eq_ignore_ascii_case("content-type")
        ),
        "{:?}",
        get.headers
    );
    assert_eq!(
        batch.ops[1].body.as_ref(),
        br#"{"name": "from google client"}"#
    );
    let label = batch.layout.labels[0].as_deref().unwrap();
    assert!(
        label.starts_with('<') && label.ends_with(" + get>"),
        "{label}"
    );
    assert_eq!(batch.ops[0].id.as_deref(), Some(&label[1..label.len() - 1]));
}

fn host_of(body: &str) -> &str {
    body.lines()
        .find_map(|line| line.strip_prefix("Host: "))
        .unwrap()
}

#[test]
fn the_answer_the_client_parsed_is_crlf_with_a_plain_boundary() {
    let (content_type, body) = capture(DEMO_RESPONSE);
    let boundary = content_type
        .strip_prefix("multipart/mixed; boundary=")
        .unwrap();
    assert!(
        boundary
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    assert!(!body.replace("\r\n", "").contains('\n'), "CRLF only");
    let parts = parse::split(body.as_bytes(), boundary, 50).unwrap();
    assert_eq!(parts.len(), 5);
    for part in parts {
        let text = std::str::from_utf8(part).unwrap();
        assert!(text.starts_with("Content-Type: application/http\r\nContent-ID: <response-"));
        assert!(text.contains("\r\n\r\nHTTP/1.1 "));
    }
}

fn json_result(id: &str, status: u16, body: &str) -> OpResult {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    OpResult {
        id: id.to_owned().into(),
        status: StatusCode::from_u16(status).unwrap(),
        body: ResultBody::classify(&headers, Bytes::copy_from_slice(body.as_bytes())),
        headers,
        silent: false,
    }
}

#[test]
fn real_client_quirks_are_accepted() {
    // Bare LF, a quoted boundary with `=`, no HTTP version, no final line break,
    // Content-IDs with and without <> and with spaces and `+`, no Content-ID at all,
    // a GET with a `null` body, an absolute-form target naming this host.
    let body = "--==a=b==\nContent-Type: application/http\nContent-ID: <x + 1>\n\nGET /items/1\nContent-Type: application/json\n\nnull\n--==a=b==\nContent-Type: application/http; msgtype=request\nContent-ID: plain\n\nGET http://127.0.0.1:8080/items?limit=2 HTTP/1.1\n\n\n--==a=b==\ncontent-type: APPLICATION/HTTP\n\nPOST /items HTTP/1.1\ncontent-type: application/json\ncontent-length: 2\n\n{}\n--==a=b==--";
    let batch = decode_with(
        r#"multipart/mixed; boundary="==a=b==""#,
        body.as_bytes(),
        50,
    )
    .unwrap();
    let ops = &batch.ops;
    assert_eq!(ops[0].url, "/items/1");
    assert!(ops[0].body.is_empty() && ops[0].headers.is_empty());
    assert_eq!(ops[0].id.as_deref(), Some("x + 1"));
    assert_eq!(ops[1].url, "/items?limit=2");
    assert_eq!(ops[1].id.as_deref(), Some("plain"));
    assert_eq!(ops[2].id, None);
    assert_eq!(ops[2].body.as_ref(), b"{}");
    assert_eq!(
        batch.layout.labels,
        [Some("<x + 1>".to_owned()), Some("plain".to_owned()), None]
    );
}

#[test]
fn other_hosts_are_422() {
    for part in [
        "GET http://evil.example/items HTTP/1.1\r\n\r\n",
        "GET /items HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        "GET ftp://127.0.0.1:8080/items HTTP/1.1\r\n\r\n",
    ] {
        let body = format!("--b\r\nContent-Type: application/http\r\n\r\n{part}\r\n--b--\r\n");
        let problem = decode(&body).unwrap_err();
        assert_eq!(problem.status(), 422, "{part}");
        assert_eq!(problem.op(), Some(0));
    }
}

#[test]
fn malformed_batches_are_refused() {
    let part = "--b\r\nContent-Type: application/http\r\n\r\nGET /a\r\n";
    for (body, status) in [
        (format!("{part}--b\r\n"), 400),
        (part.to_owned(), 400),
        ("--b--".to_owned(), 400),
        (
            format!("{part}--b\r\nContent-Type: text/plain\r\n\r\nGET /a\r\n--b--"),
            400,
        ),
        (
                            "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\n--d\r\nContent-Type: application/http\r\n\r\nGET /a\r\n--d--\r\n--c--\r\n--b--"
                .to_owned(),
            400,
        ),
    ] {
        let problem = decode(&body).unwrap_err();
        assert_eq!(problem.status(), status, "{body:?}: {problem}");
    }
    assert_eq!(
        decode_with("multipart/mixed", part.as_bytes(), 50)
            .unwrap_err()
            .status(),
        400,
        "no boundary"
    );
    let three = format!("{part}{part}{part}--b--");
    assert_eq!(
        decode_with("multipart/mixed; boundary=b", three.as_bytes(), 2)
            .unwrap_err()
            .status(),
        413
    );
    let set = "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nGET /a\r\n--c\r\nContent-Type: application/http\r\n\r\nGET /a\r\n--c--\r\n";
    let body = format!("{part}{set}--b--");
    assert_eq!(
        decode_with("multipart/mixed; boundary=b", body.as_bytes(), 2)
            .unwrap_err()
            .status(),
        413,
        "requests inside change sets count"
    );
}

#[test]
fn change_sets_chain_and_answer_nested_with_ids_echoed() {
    let body = "--b\r\nContent-Type: application/http\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n--cs\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nPOST /items HTTP/1.1\r\n\r\n\r\n--cs\r\nContent-Type: application/http\r\nContent-ID: <2>\r\n\r\nPATCH /items/1 HTTP/1.1\r\n\r\n\r\n--cs--\r\n--b--\r\n";
    let batch = decode(body).unwrap();
    assert_eq!(batch.ops.len(), 3);
    assert_eq!(batch.layout.groups, vec![1..3]);
    assert_eq!(batch.ops[0].id, None);
    assert_eq!(batch.ops[1].depends_on, [] as [String; 0]);
    assert_eq!(batch.ops[2].depends_on, ["1"]);
    let response = BatchResponse {
        results: vec![
            json_result("0", 200, "{}"),
            json_result("1", 404, r#"{"error": "not found"}"#),
            json_result("2", 424, r#"{"error": "dependency_failed"}"#),
        ],
        include_headers: true,
        layout: Layout {
            format: Format::Multipart,
            ..batch.layout
        },
    };
    let http = super::encode(&response);
    let content_type = http.headers()["content-type"].to_str().unwrap();
    let outer = parse::boundary(content_type).unwrap();
    let parts = parse::split(http.body(), outer, 50).unwrap();
    assert_eq!(parts.len(), 2);
    let first = parse::part(parts[0]).unwrap();
    assert_eq!(first.content_id, None);
    assert!(first.content.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let set = parse::part(parts[1]).unwrap();
    let parse::Kind::ChangeSet(inner) = set.kind else {
        panic!("{set:?}");
    };
    let members: Vec<_> = parse::split(set.content, inner, 50)
        .unwrap()
        .into_iter()
        .map(|raw| parse::part(raw).unwrap())
        .collect();
    assert_eq!(members[0].content_id, Some("1"));
    assert_eq!(members[1].content_id, Some("<2>"));
    assert!(
        members[1]
            .content
            .starts_with(b"HTTP/1.1 424 Failed Dependency\r\n")
    );
    assert!(
        members[0]
            .content
            .ends_with(b"Content-Length: 22\r\n\r\n{\"error\": \"not found\"}")
    );
}

#[test]
fn content_ids_never_collide_with_index_ids() {
    // The second part has no Content-ID; its index, 1, is the first part's id.
    let body = "--b\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nGET /a\r\n--b\r\nContent-Type: application/http\r\n\r\nGET /b\r\n--b--";
    let batch = decode(body).unwrap();
    assert_eq!(batch.ops[0].id.as_deref(), Some("1"));
    assert_eq!(batch.ops[1].id.as_deref(), Some("part-1"));
}

#[test]
fn response_boundaries_avoid_the_content() {
    let results = vec![json_result("0", 200, r#""--batch_""#)];
    let response = BatchResponse {
        results,
        include_headers: true,
        layout: Layout {
            format: Format::Multipart,
            labels: vec![Some("<a + 1>".into())],
            groups: Vec::new(),
        },
    };
    let http = super::encode(&response);
    let text = std::str::from_utf8(http.body()).unwrap();
    assert!(text.contains("Content-ID: <response-a + 1>\r\n"), "{text}");
    let boundary = parse::boundary(http.headers()["content-type"].to_str().unwrap()).unwrap();
    let parts = parse::split(http.body(), boundary, 50).unwrap();
    assert!(parts[0].ends_with(b"\"--batch_\""));
}

#[test]
fn connection_scoped_headers_are_dropped_and_others_kept() {
    // What Python's requests session writes into every request it embeds.
    let part = "GET /items/1 HTTP/1.1\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nte: trailers\r\nUPGRADE: h2c\r\nAccept: */*\r\nAuthorization: Bearer x\r\n\r\n";
    let body = format!("--b\r\nContent-Type: application/http\r\n\r\n{part}\r\n--b--\r\n");
    let batch = decode(&body).unwrap();
    let names: Vec<&str> = batch.ops[0]
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        names,
        ["Accept", "Authorization"],
        "identity headers stay, for validation to refuse"
    );
}
