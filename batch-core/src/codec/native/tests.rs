use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::decode::explain;
use super::{Each, decode, decode_each};
use crate::model::{BatchRequest, Operation};

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
                json!("/\u{e9}\u{1f600}/a\tb\n\"c\"\u{8}\u{c}\r\u{1}"),
            ]
        }
        "headers" => vec![
            json!({"x-a": "1", "x-b": ["2", "3"]}),
            json!({"Content-Type": "text/plain"}),
            // Escaped names and values: decoded, not the document's bytes.
            json!({"x-\"q\"": "a\\b", "x-\u{e9}": ["\"1\"", "2\n"]}),
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
fn urls_and_ids_without_escapes_share_the_batch_body() {
    let body = Bytes::from_static(
        br#"{"ops": [{"id": "first", "url": "/a?b=1"}, {"id": "s\u0065cond", "url": "/\u0063"}]}"#,
    );
    let batch = decode(&body).unwrap();
    let inside =
        |text: &crate::model::Text| body.as_ptr_range().contains(&text.as_bytes().as_ptr());
    let [first, second] = &batch.ops[..] else {
        panic!("two ops");
    };
    assert_eq!(
        (&first.url, first.id.as_ref().unwrap()),
        (&"/a?b=1".into(), &"first".into())
    );
    assert!(inside(&first.url), "a view of the body, not a copy");
    assert!(
        inside(first.id.as_ref().unwrap()),
        "a view of the body, not a copy"
    );
    assert_eq!(
        (&second.url, second.id.as_ref().unwrap()),
        (&"/c".into(), &"second".into())
    );
    assert!(
        !inside(&second.url) && !inside(second.id.as_ref().unwrap()),
        "an escaped string is decoded into its own bytes"
    );
}

/// A url or an id that is not UTF-8, read where the document's own bytes would be
/// kept (the document, not UTF-8, was not checked whole), refuses the batch on
/// both passes alike.
#[test]
fn a_url_or_an_id_that_is_not_utf8_is_refused_alike() {
    for bad in [
        &b"{\"ops\": [{\"url\": \"/\xff\"}]}"[..],
        b"{\"ops\": [{\"id\": \"\xc3\", \"url\": \"/a\"}]}",
    ] {
        let body = Bytes::from_static(bad);
        assert!(decode(&body).is_err());
        assert_eq!(decode(&body), explain(&body));
    }
}

/// A `body` of `null` is no body at all, on both passes: no JSON text `null` is
/// sent, and no content type is set for one.
#[test]
fn a_null_body_is_no_body() {
    let body = Bytes::from_static(br#"{"ops": [{"method": "POST", "url": "/a", "body": null}]}"#);
    for batch in [decode(&body).unwrap(), explain(&body).unwrap()] {
        assert!(batch.ops[0].body.is_empty(), "{:?}", batch.ops[0].body);
        assert!(
            batch.ops[0].headers.is_empty(),
            "{:?}",
            batch.ops[0].headers
        );
    }
}

/// Every op is read into the same typed fields: an op that leaves a field out gets
/// its default, never the value the op before it gave.
#[test]
fn an_op_has_only_the_fields_it_gives() {
    let body = Bytes::from(
        json!({"ops": [
            {"id": "a", "method": "POST", "url": "/a", "headers": {"x-a": "1"},
             "body": {"n": 1}, "depends_on": [], "silent": true, "timeout_ms": 5,
             "if": "$b/$succeeded"},
            {"url": "/b", "params": {"q": 1}},
            {"url": "/c", "body_base64": "aGk="},
            {"url": "/d"},
        ]})
        .to_string(),
    );
    let batch = decode(&body).unwrap();
    assert_eq!(batch, explain(&body).unwrap());
    let last = &batch.ops[3];
    assert_eq!(
        (last.id.as_ref(), last.method.as_ref(), &last.url),
        (None, None, &"/d".into())
    );
    assert!(last.headers.is_empty() && last.body.is_empty() && last.depends_on.is_empty());
    assert!(!last.silent && last.timeout.is_none() && last.condition.is_none());
    assert_eq!(batch.ops[1].url, "/b?q=1");
    assert!(batch.ops[2].body == "hi" && batch.ops[3].body.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// The one-pass decode must mean exactly what the value-by-value one does:
    /// the same batch, or the same refusal at the same pointer.
    #[test]
    fn the_typed_pass_agrees_with_the_explaining_one(document in document()) {
        let body = Bytes::from(document.to_string());
        prop_assert_eq!(decode(&body), explain(&body));
        prop_assert_eq!(each(&body), decode(&body).ok());
    }
}

/// What reading `body` op by op hands on: the batch, with the ops as they were
/// handed over.
fn each(body: &Bytes) -> Option<BatchRequest> {
    struct Taken(Vec<Operation>);
    impl Each for Taken {
        fn reserve(&mut self, _: usize) {}
        fn take(&mut self, _: usize, op: &mut Operation) -> Result<(), ()> {
            self.0.push(std::mem::take(op));
            Ok(())
        }
    }
    let mut taken = Taken(Vec::new());
    let mut batch = decode_each(body, &mut taken)?;
    batch.ops = taken.0;
    Some(batch)
}

/// A JSON document as text is written: keys in the order given, repeated ones
/// kept, and pieces of raw text (numbers of every form, lone surrogates, deep
/// nesting, malformed bits) put in as they are.
#[derive(Debug, Clone)]
enum Text {
    Value(Value),
    Raw(&'static str),
    Deep(usize),
    Array(Vec<Text>),
    Object(Vec<(String, Text)>),
}

/// Writes `text` with the liberties JSON allows, each taken where `choices` says:
/// whitespace around tokens (and now and then a form feed, which JSON does not
/// allow), any character of a string or a key escaped as `\uXXXX` (a pair of
/// surrogates outside the basic plane) or in its short form.
struct Liberties<'c> {
    choices: &'c [u8],
    next: usize,
    out: String,
}

impl Liberties<'_> {
    fn choice(&mut self) -> u8 {
        let choice = self.choices[self.next % self.choices.len()];
        self.next += 1;
        choice
    }

    fn space(&mut self) {
        let space = match self.choice() % 16 {
            0 => " ",
            1 => "\n  ",
            2 => "\t",
            3 => "\r\n",
            4 if self.choice() % 64 == 0 => "\u{c}",
            _ => "",
        };
        self.out.push_str(space);
    }

    fn string(&mut self, text: &str) {
        self.out.push('"');
        for c in text.chars() {
            let short = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '/' => "\\/",
                '\u{8}' => "\\b",
                '\u{c}' => "\\f",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => "",
            };
            if !short.is_empty() && self.choice() % 2 == 0 {
                self.out.push_str(short);
            } else if c == '"' || c == '\\' || c < ' ' || self.choice() % 4 == 0 {
                let mut units = [0; 2];
                for unit in c.encode_utf16(&mut units) {
                    self.out.push_str(&format!("\\u{unit:04x}"));
                }
            } else {
                self.out.push(c);
            }
        }
        self.out.push('"');
    }

    fn write(&mut self, text: &Text) {
        self.space();
        match text {
            Text::Value(Value::String(string)) => self.string(string),
            Text::Value(Value::Array(items)) => {
                let items = items.iter().cloned().map(Text::Value).collect();
                self.write(&Text::Array(items));
            }
            Text::Value(Value::Object(entries)) => {
                let entries = entries
                    .iter()
                    .map(|(key, value)| (key.clone(), Text::Value(value.clone())))
                    .collect();
                self.write(&Text::Object(entries));
            }
            Text::Value(scalar) => self.out.push_str(&scalar.to_string()),
            Text::Raw(raw) => self.out.push_str(raw),
            Text::Deep(levels) => {
                self.out.push_str(&"[".repeat(*levels));
                self.out.push_str(&"]".repeat(*levels));
            }
            Text::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.write(item);
                }
                self.space();
                self.out.push(']');
            }
            Text::Object(entries) => {
                self.out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.space();
                    self.string(key);
                    self.space();
                    self.out.push(':');
                    self.write(value);
                }
                self.space();
                self.out.push('}');
            }
        }
        self.space();
    }
}

/// Values JSON text can hold that a `Value` cannot write: numbers in every form
/// (some only floats, some too large, some malformed), strings with lone
/// surrogates, nesting at and past the depth limit, and unicode.
fn raw() -> impl Strategy<Value = Text> {
    prop_oneof![
        prop::sample::select(vec![
            "1e3",
            "-0",
            "20.0",
            "-1.5E-3",
            "18446744073709551615",
            "18446744073709551616",
            "01",
            "1.",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "\"\\ud83d\\ude00\"",
            "\"/caf\u{e9}/\u{1f600}\"",
            "\"\\q\"",
            "\"a\u{1}b\"",
            "tru",
            "[1,]",
        ])
        .prop_map(Text::Raw),
        (120usize..132).prop_map(Text::Deep),
    ]
}

/// A value for `key` as text: mostly as [`field_value`], sometimes raw.
fn field_text(key: &'static str) -> impl Strategy<Value = Text> {
    prop_oneof![16 => field_value(key).prop_map(Text::Value), 1 => raw()]
}

/// An object of `keys`, now and then with a key given twice.
fn entries(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, Text)>> {
    (
        prop::collection::vec(
            prop::sample::select(keys).prop_flat_map(|k| (Just(k.to_owned()), field_text(k))),
            0..6,
        ),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(mut entries, twice)| {
            if !twice {
                let mut seen = std::collections::HashSet::new();
                entries.retain(|(key, _)| seen.insert(key.clone()));
            }
            entries
        })
}

/// An op's fields as serde's derive also takes them: an array of all of them in
/// order (and, to be refused, one too few or too many).
fn positional() -> impl Strategy<Value = Text> {
    const IN_ORDER: [&str; 11] = [
        "id",
        "method",
        "url",
        "headers",
        "body",
        "body_base64",
        "params",
        "depends_on",
        "silent",
        "timeout_ms",
        "if",
    ];
    (
        IN_ORDER.map(|key| prop_oneof![1 => Just(Text::Value(Value::Null)), 2 => field_text(key)]),
        0usize..3,
    )
        .prop_map(|(fields, length)| {
            let mut fields = fields.to_vec();
            match length {
                0 => drop(fields.pop()),
                1 => fields.push(Text::Value(Value::Null)),
                _ => {}
            }
            Text::Array(fields)
        })
}

fn text_document() -> impl Strategy<Value = Text> {
    let op = prop_oneof![
        12 => entries(OP_KEYS).prop_map(Text::Object),
        1 => positional(),
        1 => value().prop_map(Text::Value),
        1 => raw(),
    ];
    let ops = prop_oneof![
        12 => prop::collection::vec(op, 0..4).prop_map(Text::Array),
        1 => value().prop_map(Text::Value),
    ];
    let options = entries(&["sequential", "on_error", "include_headers", "other", "ops"]);
    (options, ops, 0usize..5).prop_map(|(mut entries, ops, at)| {
        // Mostly one `ops`: a second is a duplicate key.
        if entries.iter().any(|(key, _)| key == "ops") {
            entries.retain(|(key, _)| key != "ops" || at == 0);
        }
        entries.insert(at.min(entries.len()), ("ops".to_owned(), ops));
        Text::Object(entries)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// The same, for documents written as clients may write them: whitespace
    /// anywhere, escapes in keys and strings, keys given twice, numbers of every
    /// form, deep nesting, positional ops.
    #[test]
    fn the_typed_pass_agrees_with_the_explaining_one_on_any_text(
        document in text_document(),
        choices in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut liberties = Liberties { choices: &choices, next: 0, out: String::new() };
        liberties.write(&document);
        let body = Bytes::from(liberties.out);
        prop_assert_eq!(decode(&body), explain(&body));
        prop_assert_eq!(each(&body), decode(&body).ok());
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
/// data, lone surrogates (refused in a value that is read, let through in one that
/// is skipped, as serde_json does), depth, numbers, positional ops (serde's derive
/// accepts a struct as an array of its fields). Invalid UTF-8 is refused wherever it
/// is, at its first byte, in a value that is skipped too (serde_json lets that
/// through).
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
        ("utf8 other op", r##"Err(("the batch is not valid JSON: invalid unicode code point at line 1 column 30", None))"##, b"{\"ops\": [{\"url\": \"/a\", \"x\": \"\xff\"}]}".to_vec()),
        ("utf8 other op key", r##"Err(("the batch is not valid JSON: invalid unicode code point at line 1 column 31", None))"##, b"{\"ops\": [{\"url\": \"/a\", \"x\": {\"\xff\": 1}}]}".to_vec()),
        ("utf8 op key", r##"Err(("the batch is not valid JSON: invalid unicode code point at line 1 column 25", None))"##, b"{\"ops\": [{\"url\": \"/a\", \"\xff\": 1}]}".to_vec()),
        ("utf8 top key", r##"Err(("the batch is not valid JSON: invalid unicode code point at line 1 column 3", None))"##, b"{\"\xff\": 1, \"ops\": [{\"url\": \"/a\"}]}".to_vec()),
        ("utf8 other top", r##"Err(("the batch is not valid JSON: invalid unicode code point at line 1 column 8", None))"##, b"{\"x\": \"\xff\", \"ops\": [{\"url\": \"/a\"}]}".to_vec()),
        ("utf8 other line", r##"Err(("the batch is not valid JSON: invalid unicode code point at line 2 column 8", None))"##, b"{\"ops\": [{\"url\": \"/a\"}],\n \"x\": \"\xff\"}".to_vec()),
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
        ("no url", r##"Err(("operation 0 has no `url`", Some("/ops/0/url")))"##, br#"{"ops": [{"id": "a"}, {"url": "/b"}]}"#.to_vec()),
        ("no url later", r##"Err(("operation 2 has no `url`", Some("/ops/2/url")))"##, br#"{"ops": [{"url": "/a"}, {"url": "/b"}, {"url": null, "id": "c"}]}"#.to_vec()),
        ("null texts", r##"Ok(["/a", "/b"])"##, br#"{"ops": [{"id": null, "method": null, "url": "/a"}, {"url": "/b", "id": null}]}"#.to_vec()),
        ("empty id then no url", r##"Err(("/ops/0/id must be a non-empty string", Some("/ops/0/id")))"##, br#"{"ops": [{"url": "/a", "id": ""}, {"id": "b"}, {"url": "/c"}]}"#.to_vec()),
        ("no url then type", r##"Err(("operation 0 has no `url`", Some("/ops/0/url")))"##, br#"{"ops": [{"id": "a"}, {"url": 1}]}"#.to_vec()),
        ("on_error bad", r##"Err(("/on_error must be \"continue\" or \"stop\"", Some("/on_error")))"##, br#"{"ops": [{"url": "/a"}], "on_error": "x"}"#.to_vec()),
        ("empty id", r##"Err(("/ops/0/id must be a non-empty string", Some("/ops/0/id")))"##, br#"{"ops": [{"url": "/a", "id": ""}]}"#.to_vec()),
    ];
    for (name, expected, body) in cases {
        assert_eq!(format!("{:?}", answer(&body)), expected, "{name}");
    }
}
