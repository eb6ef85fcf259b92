//! What a client sends on a socket: one JSON object per text frame.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::codec::json::parse_document;
use crate::model::shared;

/// The longest `ref` a client may give a message, in bytes.
const MAX_REFERENCE: usize = 64;

/// A client's message: what to do, and the `ref` its answer echoes.
///
/// Transports other than the WebSocket one (Socket.IO, say) build messages from
/// their own events:
///
/// ```
/// use batch_core::{Action, ClientMessage};
///
/// let message = ClientMessage::new(Action::Subscribe { uri: "/items/7".into() })
///     .with_reference("a1");
/// assert_eq!(message.reference(), Some("a1"));
///
/// let decoded = ClientMessage::decode(br#"{"type": "delete", "uri": "/items/7", "ref": "x"}"#)?;
/// assert_eq!(decoded.action(), &Action::Delete { uri: "/items/7".into() });
/// # Ok::<(), batch_core::MessageError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    reference: Option<String>,
    action: Action,
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// `subscribe`: the state of `uri` now (a `GET`), then every change to it.
    Subscribe {
        /// A resource or list URI, with a query if wanted.
        uri: String,
    },
    /// `subscribe` with `since`: the changes of `uri` after the cursor `since` (an
    /// event's or a state's `seq`), then every change; a fresh state when they are
    /// no longer all kept.
    Resume {
        /// A resource or list URI, with a query if wanted.
        uri: String,
        /// The cursor; `None` when the client's `since` was not a string, which no
        /// history covers.
        since: Option<String>,
    },
    /// `unsubscribe`: no more changes of `uri`.
    Unsubscribe {
        /// A URI subscribed to before.
        uri: String,
    },
    /// `create`: a `POST` to the list path, with `attributes` as its JSON body.
    Create {
        /// A list URI, ending in `/`.
        uri: String,
        /// A JSON object.
        attributes: Bytes,
    },
    /// `patch`: a `PATCH` of `uri`, with `patch` as its JSON body.
    Patch {
        /// A resource URI.
        uri: String,
        /// A JSON object.
        patch: Bytes,
    },
    /// `delete`: a `DELETE` of `uri`.
    Delete {
        /// A resource URI.
        uri: String,
    },
    /// `batch`: a native batch, by every rule of the native format.
    Batch {
        /// The batch object, `{"ops": [...], ...}`.
        batch: Bytes,
    },
}

/// Why a text frame is not a message (answered with an `error` 400; the socket
/// stays open).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct MessageError {
    reference: Option<String>,
    detail: String,
}

impl MessageError {
    /// The message's `ref`, when it had a usable one.
    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }

    /// What is wrong with the message.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// The message with each value left unparsed.
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow, rename = "ref")]
    reference: Option<&'a RawValue>,
    #[serde(borrow)]
    uri: Option<&'a RawValue>,
    #[serde(borrow)]
    attributes: Option<&'a RawValue>,
    #[serde(borrow)]
    patch: Option<&'a RawValue>,
    #[serde(borrow)]
    batch: Option<&'a RawValue>,
    #[serde(borrow)]
    since: Option<&'a RawValue>,
}

impl ClientMessage {
    /// A message asking for `action`, with no `ref`.
    pub fn new(action: Action) -> Self {
        Self {
            reference: None,
            action,
        }
    }

    /// Gives the message a `ref`, which its answer echoes.
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// The `ref` its answer echoes.
    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }

    /// What it asks for.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// Its `ref` and what it asks for, apart.
    pub fn into_parts(self) -> (Option<String>, Action) {
        (self.reference, self.action)
    }

    /// Reads a message from the text of one frame. URIs are checked when the
    /// message runs.
    pub fn decode(text: &[u8]) -> Result<Self, MessageError> {
        let document = Bytes::copy_from_slice(text);
        Self::decode_shared(&document)
    }

    /// Reads a message, its bodies sharing `document`'s bytes.
    pub(crate) fn decode_shared(document: &Bytes) -> Result<Self, MessageError> {
        let refuse = |reference: &Option<String>, detail: String| MessageError {
            reference: reference.clone(),
            detail,
        };
        let raw: Raw<'_> = parse_document(document).map_err(|problem| MessageError {
            reference: None,
            detail: format!("a message must be one JSON object: {}", problem.detail()),
        })?;
        let reference = match raw.reference {
            None => None,
            Some(value) => match serde_json::from_str::<String>(value.get()) {
                Ok(reference) if reference.len() <= MAX_REFERENCE => Some(reference),
                _ => {
                    return Err(refuse(
                        &None,
                        format!("`ref` must be a string of at most {MAX_REFERENCE} bytes"),
                    ));
                }
            },
        };
        let text = |value: Option<&RawValue>, name: &str| -> Result<String, MessageError> {
            let value =
                value.ok_or_else(|| refuse(&reference, format!("the message has no `{name}`")))?;
            serde_json::from_str(value.get())
                .map_err(|_| refuse(&reference, format!("`{name}` must be a string")))
        };
        let object = |value: Option<&RawValue>, name: &str| -> Result<Bytes, MessageError> {
            let value =
                value.ok_or_else(|| refuse(&reference, format!("the message has no `{name}`")))?;
            if !value.get().starts_with('{') {
                return Err(refuse(&reference, format!("`{name}` must be an object")));
            }
            Ok(shared(document, value.get()))
        };
        let kind = text(raw.kind, "type")?;
        let action = match kind.as_str() {
            "subscribe" => match raw.since {
                None => Action::Subscribe {
                    uri: text(raw.uri, "uri")?,
                },
                Some(since) => Action::Resume {
                    uri: text(raw.uri, "uri")?,
                    since: serde_json::from_str(since.get()).ok(),
                },
            },
            "unsubscribe" => Action::Unsubscribe {
                uri: text(raw.uri, "uri")?,
            },
            "create" => Action::Create {
                uri: text(raw.uri, "uri")?,
                attributes: object(raw.attributes, "attributes")?,
            },
            "patch" => Action::Patch {
                uri: text(raw.uri, "uri")?,
                patch: object(raw.patch, "patch")?,
            },
            "delete" => Action::Delete {
                uri: text(raw.uri, "uri")?,
            },
            "batch" => Action::Batch {
                batch: object(raw.batch, "batch")?,
            },
            other => {
                return Err(refuse(
                    &reference,
                    format!(
                        "unknown message type {other:?}: subscribe, unsubscribe, create, patch, delete or batch"
                    ),
                ));
            }
        };
        Ok(Self { reference, action })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<ClientMessage, MessageError> {
        ClientMessage::decode(text.as_bytes())
    }

    #[test]
    fn every_message_type_decodes() {
        let message = decode(
            r#"{"type": "create", "uri": "/items/", "attributes": {"name": "pen"}, "ref": "r1"}"#,
        )
        .unwrap();
        assert_eq!(message.reference(), Some("r1"));
        assert_eq!(
            message.action(),
            &Action::Create {
                uri: "/items/".into(),
                attributes: Bytes::from_static(br#"{"name": "pen"}"#)
            }
        );
        for (text, action) in [
            (
                r#"{"type": "subscribe", "uri": "/items/7?x=1"}"#,
                Action::Subscribe {
                    uri: "/items/7?x=1".into(),
                },
            ),
            (
                r#"{"type": "subscribe", "uri": "/a", "since": "5f-3"}"#,
                Action::Resume {
                    uri: "/a".into(),
                    since: Some("5f-3".into()),
                },
            ),
            (
                r#"{"type": "subscribe", "uri": "/a", "since": 3}"#,
                Action::Resume {
                    uri: "/a".into(),
                    since: None,
                },
            ),
            (
                r#"{"uri": "/a", "type": "unsubscribe"}"#,
                Action::Unsubscribe { uri: "/a".into() },
            ),
            (
                r#"{"type": "patch", "uri": "/a", "patch": {}}"#,
                Action::Patch {
                    uri: "/a".into(),
                    patch: Bytes::from_static(b"{}"),
                },
            ),
            (
                r#"{"type": "delete", "uri": "/a"}"#,
                Action::Delete { uri: "/a".into() },
            ),
            (
                r#"{"type": "batch", "batch": {"ops": []}}"#,
                Action::Batch {
                    batch: Bytes::from_static(br#"{"ops": []}"#),
                },
            ),
        ] {
            assert_eq!(decode(text).unwrap().action(), &action, "{text}");
        }
    }

    #[test]
    fn malformed_messages_say_why_and_keep_their_ref() {
        for (text, reference, says) in [
            ("not json", None, "one JSON object"),
            ("[1]", None, "one JSON object"),
            (r#"{"uri": "/a", "ref": "q"}"#, Some("q"), "no `type`"),
            (
                r#"{"type": "fly", "ref": "q"}"#,
                Some("q"),
                "unknown message type",
            ),
            (
                r#"{"type": "subscribe", "ref": "q"}"#,
                Some("q"),
                "no `uri`",
            ),
            (
                r#"{"type": "delete", "uri": 7}"#,
                None,
                "`uri` must be a string",
            ),
            (
                r#"{"type": "create", "uri": "/a/", "attributes": [1]}"#,
                None,
                "must be an object",
            ),
            (r#"{"type": "patch", "uri": "/a"}"#, None, "no `patch`"),
            (
                r#"{"type": "delete", "uri": "/a", "ref": 5}"#,
                None,
                "`ref` must be",
            ),
        ] {
            let error = decode(text).unwrap_err();
            assert_eq!(error.reference(), reference, "{text}");
            assert!(error.detail().contains(says), "{text}: {}", error.detail());
        }
        let long = format!(
            r#"{{"type": "delete", "uri": "/a", "ref": "{}"}}"#,
            "r".repeat(65)
        );
        assert!(decode(&long).is_err());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(decode(&deep).is_err(), "nesting is bounded as in a batch");
    }
}
