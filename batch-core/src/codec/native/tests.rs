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
