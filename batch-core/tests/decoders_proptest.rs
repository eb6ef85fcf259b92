//! Property: whatever bytes arrive, every decoder answers with a documented status and
//! never panics, and a refused batch runs nothing. The inputs are random bytes and
//! random near-JSON text (which gets past the first byte far more often).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, reason = "the fuzz targets' entry point is not used here")]
#[path = "../../fuzz/src/lib.rs"]
mod harness;

use proptest::prelude::*;

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_get_a_documented_status(data in prop::collection::vec(any::<u8>(), 0..512)) {
        for target in harness::TARGETS {
            harness::run(target, &data);
        }
    }

    #[test]
    fn any_near_json_gets_a_documented_status(data in near_json()) {
        for target in harness::TARGETS {
            harness::run(target, &data);
        }
    }
}
