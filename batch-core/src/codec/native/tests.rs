use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::decode;
use super::decode::explain;
use crate::model::Target;

/// Values of every JSON type, including strings with escapes (which cannot be
/// borrowed) and the shapes each field accepts.
fn value() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(20),
        json!(-1),
        json!(1.5),
        json!(""),
        json!("a"),
        json!("/items/1"),
        json!("/items/\u{e9}?q=\"x\""),
        json!("continue"),
        json!("stop"),
        json!("aGk="),
        json!("a\\b"),
        json!("POST"),
        json!(["a", "b"]),
        json!([1]),
        json!([]),
        json!({"x-a": "1", "x-b": ["2", "3"]}),
        json!({"Content-Type": "text/plain"}),
        json!({"q": 1, "r": [true, "s"], "t": null}),
        json!({"x": {"y": 1}}),
        json!({}),
    ])
}

/// A value for `key`: mostly one of the type the field takes, so that many
/// documents pass the typed pass, sometimes any value at all.
fn field_value(key: &'static str) -> impl Strategy<Value = Value> {
    let valid = match key {
        "id" | "method" | "url" | "body_base64" | "on_error" => {
            vec![
                json!("a"),
                json!(""),
                json!("/items/1"),
                json!("a\\b"),
                json!("stop"),
            ]
        }
        "headers" => vec![
            json!({"x-a": "1", "x-b": ["2", "3"]}),
            json!({"Content-Type": "text/plain"}),
        ],
        "depends_on" => vec![json!("a"), json!(["a", "b"]), json!([])],
        "silent" | "sequential" | "include_headers" => {
            vec![json!(true), json!(false), json!(null)]
        }
        "timeout_ms" => vec![json!(20), json!(0)],
        _ => vec![json!({"q": 1, "r": [true, "s"]}), json!("s"), json!(null)],
    };
    prop_oneof![12 => prop::sample::select(valid), 1 => value()]
}

fn object(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec(
        prop::sample::select(keys).prop_flat_map(|k| (Just(k), field_value(k))),
        0..6,
    )
    .prop_map(|entries| {
        Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    })
}

const OP_KEYS: &[&str] = &[
    "id",
    "method",
    "url",
    "url",
    "url",
    "headers",
    "body",
    "body_base64",
    "params",
    "args",
    "depends_on",
    "silent",
    "timeout_ms",
    "other",
];

fn document() -> impl Strategy<Value = Value> {
    let ops = prop::collection::vec(prop_oneof![12 => object(OP_KEYS), 1 => value()], 0..4);
    (
        object(&["sequential", "on_error", "include_headers", "other"]),
        prop_oneof![
            12 => ops.prop_map(Value::Array),
            1 => value(),
        ],
    )
        .prop_map(|(mut envelope, ops)| {
            envelope["ops"] = ops;
            envelope
        })
}

#[test]
fn urls_without_escapes_share_the_batch_body() {
    let body = Bytes::from_static(br#"{"ops": [{"url": "/a?b=1"}, {"url": "/\u0063"}]}"#);
    let batch = decode(&body).unwrap();
    let inside = |url: &Target| body.as_ptr_range().contains(&url.as_str().as_ptr());
    assert_eq!(batch.ops[0].url, "/a?b=1");
    assert!(inside(&batch.ops[0].url), "a view of the body, not a copy");
    assert_eq!(batch.ops[1].url, "/c");
    assert!(
        !inside(&batch.ops[1].url),
        "an escaped url is decoded into its own bytes"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// The one-pass decode must mean exactly what the value-by-value one does:
    /// the same batch, or the same refusal at the same pointer.
    #[test]
    fn the_typed_pass_agrees_with_the_explaining_one(document in document()) {
        let body = Bytes::from(document.to_string());
        prop_assert_eq!(decode(&body), explain(&body));
    }
}

/// What decoding `body` answers: each op's url, or the refusal's detail and pointer.
fn answer(body: &[u8]) -> Result<Vec<String>, (String, Option<String>)> {
    decode(&Bytes::copy_from_slice(body))
        .map(|batch| batch.ops.iter().map(|op| op.url.to_string()).collect())
        .map_err(|problem| {
            (
                problem.detail().to_owned(),
                problem.pointer().map(str::to_owned),
            )
        })
}

/// Corners of JSON and of the fields' types, each answered as the serde typed pass
/// answered them before the hand-written one replaced it: duplicate keys, trailing
/// data, invalid UTF-8 and lone surrogates (refused in a value that is read, let
/// through in one that is skipped, as serde_json does), depth, numbers, positional
/// ops (serde's derive accepts a struct as an array of its fields).
#[test]
fn corners_answer_as_before() {
    let deep = |n: usize| {
        let mut s = String::from(r#"{"ops": [{"url": "/a", "body": "#);
        s.push_str(&"[".repeat(n - 3));
        s.push_str(&"]".repeat(n - 3));
        s.push_str("}]}");
        s.into_bytes()
    };
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("dup url", r##"Err(("/ops/0 must be an object with a `url`", Some("/ops/0")))"##, br#"{"ops": [{"url": "/a", "url": "/b"}]}"#.to_vec()),
        ("dup url after null", r##"Err(("/ops/0 must be an object with a `url`", Some("/ops/0")))"##, br#"{"ops": [{"url": null, "url": "/b"}]}"#.to_vec()),
        ("params and args", r##"Err(("/ops/0 must be an object with a `url`", Some("/ops/0")))"##, br#"{"ops": [{"url": "/a", "params": {}, "args": {}}]}"#.to_vec()),
        ("dup other", r##"Ok(["/a"])"##, br#"{"ops": [{"url": "/a", "x": 1, "x": 2}]}"#.to_vec()),
        ("dup ops", r##"Err(("the batch is not valid JSON: duplicate field `ops` at line 1 column 30", None))"##, br#"{"ops": [{"url": "/a"}], "ops": [{"url": "/b"}]}"#.to_vec()),
        ("dup sequential", r##"Err(("the batch is not valid JSON: duplicate field `sequential` at line 1 column 33", None))"##, br#"{"sequential": null, "sequential": true, "ops": [{"url": "/a"}]}"#.to_vec()),
        ("trailing", r##"Err(("the batch is not valid JSON: trailing characters at line 1 column 26", None))"##, br#"{"ops": [{"url": "/a"}]} x"#.to_vec()),
        ("trailing ws", r##"Ok(["/a"])"##, b"{\"ops\": [{\"url\": \"/a\"}]} \n\t\r".to_vec()),
        ("form feed", r##"Err(("the batch is not valid JSON: expected value at line 1 column 8", None))"##, b"{\"ops\":\x0c[{\"url\": \"/a\"}]}".to_vec()),
        ("utf8 url", r##"Err(("the batch is not valid JSON: invalid unicode code point at line 1 column 20", None))"##, b"{\"ops\": [{\"url\": \"/\xff\"}]}".to_vec()),
        ("utf8 other op", r##"Ok(["/a"])"##, b"{\"ops\": [{\"url\": \"/a\", \"x\": \"\xff\"}]}".to_vec()),
        ("utf8 other op key", r##"Ok(["/a"])"##, b"{\"ops\": [{\"url\": \"/a\", \"x\": {\"\xff\": 1}}]}".to_vec()),
        ("utf8 op key", r##"Err(("the batch is not valid JSON: invalid unicode code point at line 1 column 25", None))"##, b"{\"ops\": [{\"url\": \"/a\", \"\xff\": 1}]}".to_vec()),
        ("utf8 other top", r##"Ok(["/a"])"##, b"{\"x\": \"\xff\", \"ops\": [{\"url\": \"/a\"}]}".to_vec()),
        ("utf8 body", r##"Err(("the batch is not valid JSON: invalid unicode code point at line 1 column 33", None))"##, b"{\"ops\": [{\"url\": \"/a\", \"body\": \"\xff\"}]}".to_vec()),
        ("surrogate url", r##"Err(("/ops/0/url must be a string", Some("/ops/0/url")))"##, br#"{"ops": [{"url": "/\ud800"}]}"#.to_vec()),
        ("trailing surrogate url", r##"Err(("/ops/0/url must be a string", Some("/ops/0/url")))"##, br#"{"ops": [{"url": "/\udc00"}]}"#.to_vec()),
        ("pair url", r##"Ok(["/😀"])"##, br#"{"ops": [{"url": "/\ud83d\ude00"}]}"#.to_vec()),
        ("surrogate other", r##"Ok(["/a"])"##, br#"{"ops": [{"url": "/a", "x": "\ud800"}]}"#.to_vec()),
        ("surrogate body", r##"Ok(["/a"])"##, br#"{"ops": [{"url": "/a", "body": "\ud800"}]}"#.to_vec()),
        ("bad escape other", r##"Err(("the batch is not valid JSON: invalid escape at line 1 column 31", None))"##, br#"{"ops": [{"url": "/a", "x": "\q"}]}"#.to_vec()),
        ("control other", r##"Err(("the batch is not valid JSON: control character (\\u0000-\\u001F) found while parsing a string at line 1 column 29", None))"##, b"{\"ops\": [{\"url\": \"/a\", \"x\": \"\x01\"}]}".to_vec()),
        ("deep 128", r##"Ok(["/a"])"##, deep(128)),
        ("deep 129", r##"Err(("the document nests deeper than 128 levels", None))"##, deep(129)),
        ("positional", r##"Ok(["/a"])"##, br#"{"ops": [[null, "GET", "/a", null, null, null, null, null, null, null, null]]}"#.to_vec()),
        ("positional 10", r##"Err(("/ops/0 must be an object with a `url`", Some("/ops/0")))"##, br#"{"ops": [[null, "GET", "/a", null, null, null, null, null, null, null]]}"#.to_vec()),
        ("positional 12", r##"Err(("/ops/0 must be an object with a `url`", Some("/ops/0")))"##, br#"{"ops": [[null, "GET", "/a", null, null, null, null, null, null, null, null, null]]}"#.to_vec()),
        ("escaped keys", r##"Ok(["/a"])"##, br#"{"o\u0070s": [{"\u0075rl": "/a"}]}"#.to_vec()),
        ("timeout 1e3", r##"Err(("/ops/0/timeout_ms must be a positive integer", Some("/ops/0/timeout_ms")))"##, br#"{"ops": [{"url": "/a", "timeout_ms": 1e3}]}"#.to_vec()),
        ("timeout -0", r##"Err(("/ops/0/timeout_ms must be a positive integer", Some("/ops/0/timeout_ms")))"##, br#"{"ops": [{"url": "/a", "timeout_ms": -0}]}"#.to_vec()),
        ("timeout 20.0", r##"Err(("/ops/0/timeout_ms must be a positive integer", Some("/ops/0/timeout_ms")))"##, br#"{"ops": [{"url": "/a", "timeout_ms": 20.0}]}"#.to_vec()),
        ("timeout max", r##"Ok(["/a"])"##, br#"{"ops": [{"url": "/a", "timeout_ms": 18446744073709551615}]}"#.to_vec()),
        ("timeout over", r##"Err(("/ops/0/timeout_ms must be a positive integer", Some("/ops/0/timeout_ms")))"##, br#"{"ops": [{"url": "/a", "timeout_ms": 18446744073709551616}]}"#.to_vec()),
        ("timeout 01", r##"Err(("the batch is not valid JSON: invalid number at line 1 column 39", None))"##, br#"{"ops": [{"url": "/a", "timeout_ms": 01}]}"#.to_vec()),
        ("number other", r##"Ok(["/a"])"##, br#"{"ops": [{"url": "/a", "x": -0.5e+7}]}"#.to_vec()),
        ("bad number other", r##"Err(("the batch is not valid JSON: invalid number at line 1 column 31", None))"##, br#"{"ops": [{"url": "/a", "x": 1.}]}"#.to_vec()),
        ("trailing comma", r##"Err(("the batch is not valid JSON: expected value at line 1 column 24", None))"##, br#"{"ops": [{"url": "/a"},]}"#.to_vec()),
        ("top null", r##"Err(("the batch is not valid JSON: invalid type: null, expected struct Envelope at line 1 column 4", None))"##, b"null".to_vec()),
        ("ops null", r##"Err(("the batch has no `ops` array", None))"##, br#"{"ops": null}"#.to_vec()),
        ("ops empty", r##"Err(("`ops` is empty", Some("/ops")))"##, br#"{"ops": []}"#.to_vec()),
        ("headers null value", r##"Err(("/ops/0/headers must be an object of strings or arrays of strings", Some("/ops/0/headers")))"##, br#"{"ops": [{"url": "/a", "headers": {"x": null}}]}"#.to_vec()),
        ("depends_on mixed", r##"Err(("/ops/0/depends_on must be an id or an array of ids", Some("/ops/0/depends_on")))"##, br#"{"ops": [{"url": "/a", "depends_on": ["a", 1]}]}"#.to_vec()),
        ("bom", r##"Err(("the batch is not valid JSON: expected value at line 1 column 1", None))"##, b"\xef\xbb\xbf{\"ops\": [{\"url\": \"/a\"}]}".to_vec()),
        ("no url then type", r##"Err(("operation 0 has no `url`", Some("/ops/0/url")))"##, br#"{"ops": [{"id": "a"}, {"url": 1}]}"#.to_vec()),
        ("on_error bad", r##"Err(("/on_error must be \"continue\" or \"stop\"", Some("/on_error")))"##, br#"{"ops": [{"url": "/a"}], "on_error": "x"}"#.to_vec()),
        ("empty id", r##"Err(("/ops/0/id must be a non-empty string", Some("/ops/0/id")))"##, br#"{"ops": [{"url": "/a", "id": ""}]}"#.to_vec()),
    ];
    for (name, expected, body) in cases {
        assert_eq!(format!("{:?}", answer(&body)), expected, "{name}");
    }
}
