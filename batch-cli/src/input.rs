//! Reading the ops to send: a native batch object, a JSON array of ops, or JSON
//! Lines with one op per line.

use batch_core::{BatchRequest, Operation};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

/// Why the input holds no ops to send.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The whole input is one JSON document that is not a batch or ops.
    #[error("{0}")]
    Document(serde_json::Error),
    /// A line of JSON Lines is not an op.
    #[error("line {line}: {source}")]
    Line {
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// Nothing to send.
    #[error("no operations in the input")]
    Empty,
}

/// A document's top-level `ops`, to tell a native batch from a single op.
#[derive(Deserialize)]
struct Probe {
    ops: Option<IgnoredAny>,
}

/// The ops `text` holds, in order.
pub fn parse(text: &str) -> Result<Vec<Operation>, InputError> {
    let ops = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<Operation>>(text).map_err(InputError::Document)?
    } else if let Ok(document) = serde_json::from_str::<&RawValue>(text) {
        let probe: Probe = serde_json::from_str(document.get()).map_err(InputError::Document)?;
        if probe.ops.is_some() {
            serde_json::from_str::<BatchRequest>(document.get())
                .map_err(InputError::Document)?
                .ops
        } else {
            vec![serde_json::from_str::<Operation>(document.get()).map_err(InputError::Document)?]
        }
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(number, line)| {
                serde_json::from_str::<Operation>(line).map_err(|source| InputError::Line {
                    line: number + 1,
                    source,
                })
            })
            .collect::<Result<_, _>>()?
    };
    if ops.is_empty() {
        return Err(InputError::Empty);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_shapes_read_the_same_ops() {
        let native =
            r#"{"ops": [{"url": "/a"}, {"method": "POST", "url": "/b", "body": {"x": 1}}]}"#;
        let array = r#"[{"url": "/a"}, {"method": "POST", "url": "/b", "body": {"x": 1}}]"#;
        let lines =
            "{\"url\": \"/a\"}\n\n{\"method\": \"POST\", \"url\": \"/b\", \"body\": {\"x\": 1}}\n";
        let expected = parse(native).unwrap();
        assert_eq!(expected.len(), 2);
        assert_eq!(expected[1].url, "/b");
        assert_eq!(parse(array).unwrap(), expected);
        assert_eq!(parse(lines).unwrap(), expected);
        assert_eq!(parse(r#"{"url": "/a"}"#).unwrap(), expected[..1]);
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = parse("{\"url\": \"/a\"}\n{\"url\": 7}\n").unwrap_err();
        assert!(matches!(err, InputError::Line { line: 2, .. }), "{err}");
        assert!(matches!(
            parse("  \n"),
            Err(InputError::Line { .. } | InputError::Empty)
        ));
        assert!(matches!(
            parse(r#"{"ops": []}"#),
            Err(InputError::Document(_) | InputError::Empty)
        ));
    }
}
