//! Property: whatever bytes arrive, every decoder answers with a documented status and
//! never panics, and a refused batch runs nothing. The inputs are random bytes and
//! random near-JSON text (which gets past the first byte far more often). Socket
//! messages also get well-formed messages of random fields, which must decode to
//! exactly those fields or be refused for a stated reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, reason = "the fuzz targets' entry point is not used here")]
#[path = "../../fuzz/src/lib.rs"]
mod harness;

use batch_core::{Action, ClientMessage};
use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Text made of JSON's punctuation, the native format's keys and url pieces.
fn near_json() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        " ",
        "null",
        "true",
        "1",
        "-1",
        "0.5",
        "\"ops\"",
        "\"url\"",
        "\"method\"",
        "\"id\"",
        "\"headers\"",
        "\"body\"",
        "\"body_base64\"",
        "\"params\"",
        "\"depends_on\"",
        "\"timeout_ms\"",
        "\"sequential\"",
        "\"on_error\"",
        "\"silent\"",
        "\"/a\"",
        "\"/batch\"",
        "\"/%2e%2e\"",
        "\"\\u0000\"",
        "\"GET\"",
        "\"x-a\"",
        "\"requests\"",
        "\"batch\"",
    ]);
    prop::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat().into_bytes())
}

/// Text made of JSON's punctuation and the keys and values of socket messages.
fn near_message() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        " ",
        "null",
        "1",
        "{\"type\":",
        "\"type\"",
        "\"ref\"",
        "\"uri\"",
        "\"attributes\"",
        "\"patch\"",
        "\"batch\"",
        "\"subscribe\"",
        "\"unsubscribe\"",
        "\"create\"",
        "\"delete\"",
        "\"ops\"",
        "\"url\"",
        "\"/items/\"",
        "\"/items/7?x=1\"",
        "\"/socket\"",
        "\"/%2e%2e\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat().into_bytes())
}

/// Text made of the pieces of references, paths and conditions, a line per op of
/// the `references` target.
fn near_reference() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "{result=",
        "src",
        "nobody",
        ":",
        "$",
        ".id",
        ".name",
        ".dots",
        ".slash",
        ".batch",
        ".nested",
        ".list",
        ".big",
        "['q']",
        "['crlf']",
        "[0]",
        "[2]",
        "[*]",
        ".*",
        "}",
        "{",
        "/",
        "/items/",
        "?x=",
        "&",
        "=",
        "..",
        "%2F",
        "\n",
        " ",
        "not ",
        " and ",
        " or ",
        "(",
        ")",
        "$src/$succeeded",
        "$nobody/$succeeded",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat().into_bytes())
}

/// The `socket` fuzz target: decoded and, when a message, run by a session.
fn socket_target() -> &'static harness::Target {
    harness::TARGETS
        .iter()
        .find(|t| t.name == "socket")
        .unwrap()
}

/// A small JSON object.
fn object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{0,4}", any::<String>(), 0..3).prop_map(|map| json!(map))
}

/// The fields of a socket message: its type (a known one or not), a URI and a
/// `ref` of any text, and objects for its bodies.
fn message_fields() -> impl Strategy<Value = (String, String, Option<String>, Value)> {
    let kind = prop_oneof![
        prop::sample::select(vec![
            "subscribe",
            "unsubscribe",
            "create",
            "patch",
            "delete",
            "batch"
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    let reference = prop::option::of(".{0,70}");
    (kind, any::<String>(), reference, object())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_near_message_is_decoded_or_refused_with_a_reason(data in near_message()) {
        harness::run(socket_target(), &data);
    }

    #[test]
    fn a_well_formed_message_decodes_to_its_fields(
        (kind, uri, reference, body) in message_fields(),
        extra in any::<String>(),
    ) {
        let mut message = json!({"type": kind, "uri": uri, "unknown": extra});
        for name in ["attributes", "patch", "batch"] {
            message[name] = body.clone();
        }
        if let Some(reference) = &reference {
            message["ref"] = json!(reference);
        }
        let decoded = ClientMessage::decode(message.to_string().as_bytes());
        let usable_ref = reference.as_ref().is_none_or(|r| r.len() <= 64);
        let known = ["subscribe", "unsubscribe", "create", "patch", "delete", "batch"]
            .contains(&kind.as_str());
        match decoded {
            Ok(decoded) => {
                prop_assert!(usable_ref && known);
                prop_assert_eq!(decoded.reference(), reference.as_deref());
                let as_object = |bytes: &Bytes| serde_json::from_slice::<Value>(bytes).unwrap();
                let uri = uri.clone();
                match decoded.action() {
                    Action::Subscribe { uri: got } => prop_assert_eq!((kind.as_str(), got), ("subscribe", &uri)),
                    Action::Unsubscribe { uri: got } => prop_assert_eq!((kind.as_str(), got), ("unsubscribe", &uri)),
                    Action::Delete { uri: got } => prop_assert_eq!((kind.as_str(), got), ("delete", &uri)),
                    Action::Create { uri: got, attributes } => {
                        prop_assert_eq!((kind.as_str(), got), ("create", &uri));
                        prop_assert_eq!(as_object(attributes), body);
                    }
                    Action::Patch { uri: got, patch } => {
                        prop_assert_eq!((kind.as_str(), got), ("patch", &uri));
                        prop_assert_eq!(as_object(patch), body);
                    }
                    Action::Batch { batch } => {
                        prop_assert_eq!(kind.as_str(), "batch");
                        prop_assert_eq!(as_object(batch), body);
                    }
                    other => prop_assert!(false, "an action the test does not know: {:?}", other),
                }
            }
            Err(error) => {
                prop_assert!(!usable_ref || !known, "refused: {}", error.detail());
                if usable_ref {
                    prop_assert!(error.detail().contains("unknown message type"));
                    prop_assert_eq!(error.reference(), reference.as_deref());
                } else {
                    prop_assert!(error.detail().contains("`ref`"));
                    prop_assert_eq!(error.reference(), None);
                }
            }
        }
    }

    #[test]
    fn any_bytes_get_a_documented_status(data in prop::collection::vec(any::<u8>(), 0..512)) {
        for target in harness::TARGETS {
            harness::run(target, &data);
        }
    }

    #[test]
    fn referring_ops_dispatch_only_plain_paths(data in near_reference()) {
        let target = harness::TARGETS.iter().find(|t| t.name == "references").unwrap();
        harness::run(target, &data);
    }

    #[test]
    fn any_near_json_gets_a_documented_status(data in near_json()) {
        for target in harness::TARGETS {
            harness::run(target, &data);
        }
    }
}
