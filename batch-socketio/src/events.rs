//! What a Flask-SocketAPI client sends: one Socket.IO event per message, read into
//! the session's [`Action`]s.

use batch_core::Action;
use bytes::Bytes;
use serde_json::{Map, Value};

/// Reads an event's data into what it asks for, or says what is wrong with it.
pub(crate) type Read = fn(Value) -> Result<Action, String>;

/// The client events answered, each with the reader of its data.
pub(crate) const EVENTS: [(&str, Read); 5] = [
    ("subscribe", subscribe),
    ("unsubscribe", unsubscribe),
    ("create", create),
    ("patch", patch),
    ("delete", delete),
];

/// `subscribe`: the data is the URI itself.
fn subscribe(data: Value) -> Result<Action, String> {
    Ok(Action::Subscribe {
        uri: bare_uri(data, "subscribe")?,
    })
}

/// `unsubscribe`: the data is the URI itself.
fn unsubscribe(data: Value) -> Result<Action, String> {
    Ok(Action::Unsubscribe {
        uri: bare_uri(data, "unsubscribe")?,
    })
}

/// `create`: `{uri, attributes}`; no `attributes` is `{}`, as Flask-SocketAPI reads it.
fn create(data: Value) -> Result<Action, String> {
    let mut payload = payload(data, "create")?;
    Ok(Action::Create {
        uri: uri(&mut payload, "create")?,
        attributes: object(&mut payload, "attributes")?,
    })
}

/// `patch`: `{uri, patch}`; no `patch` is `{}`, as Flask-SocketAPI reads it.
fn patch(data: Value) -> Result<Action, String> {
    let mut payload = payload(data, "patch")?;
    Ok(Action::Patch {
        uri: uri(&mut payload, "patch")?,
        patch: object(&mut payload, "patch")?,
    })
}

/// `delete`: `{uri}`.
fn delete(data: Value) -> Result<Action, String> {
    let mut payload = payload(data, "delete")?;
    Ok(Action::Delete {
        uri: uri(&mut payload, "delete")?,
    })
}

fn bare_uri(data: Value, event: &str) -> Result<String, String> {
    match data {
        Value::String(uri) => Ok(uri),
        _ => Err(format!("`{event}` wants the URI as a string")),
    }
}

fn payload(data: Value, event: &str) -> Result<Map<String, Value>, String> {
    match data {
        Value::Object(payload) => Ok(payload),
        _ => Err(format!("`{event}` wants an object with a `uri`")),
    }
}

fn uri(payload: &mut Map<String, Value>, event: &str) -> Result<String, String> {
    match payload.remove("uri") {
        Some(Value::String(uri)) => Ok(uri),
        Some(_) => Err("`uri` must be a string".to_owned()),
        None => Err(format!("`{event}` has no `uri`")),
    }
}

/// The JSON body an op is sent with.
fn object(payload: &mut Map<String, Value>, name: &str) -> Result<Bytes, String> {
    match payload.remove(name) {
        None => Ok(Bytes::from_static(b"{}")),
        Some(object @ Value::Object(_)) => Ok(Bytes::from(object.to_string())),
        Some(_) => Err(format!("`{name}` must be an object")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn read(event: &str, data: Value) -> Result<Action, String> {
        let (_, read) = EVENTS.iter().find(|(name, _)| *name == event).unwrap();
        read(data)
    }

    #[test]
    fn flask_socketapi_payloads_become_actions() {
        assert_eq!(
            read("subscribe", json!("/items/")),
            Ok(Action::Subscribe {
                uri: "/items/".into()
            })
        );
        assert_eq!(
            read("unsubscribe", json!("/items/")),
            Ok(Action::Unsubscribe {
                uri: "/items/".into()
            })
        );
        assert_eq!(
            read(
                "create",
                json!({"uri": "/items/", "attributes": {"name": "pen"}})
            ),
            Ok(Action::Create {
                uri: "/items/".into(),
                attributes: Bytes::from_static(br#"{"name":"pen"}"#)
            })
        );
        assert_eq!(
            read("patch", json!({"uri": "/items/7"})),
            Ok(Action::Patch {
                uri: "/items/7".into(),
                patch: Bytes::from_static(b"{}")
            }),
            "a missing patch is an empty one, as in Flask-SocketAPI"
        );
        assert_eq!(
            read("delete", json!({"uri": "/items/7"})),
            Ok(Action::Delete {
                uri: "/items/7".into()
            })
        );
    }

    #[test]
    fn malformed_payloads_say_why() {
        for (event, data, says) in [
            ("subscribe", json!({"uri": "/a"}), "URI as a string"),
            ("create", json!("/items/"), "an object with a `uri`"),
            (
                "create",
                json!({"uri": "/items/", "attributes": [1]}),
                "must be an object",
            ),
            ("patch", json!({"patch": {}}), "has no `uri`"),
            ("delete", json!({"uri": 7}), "`uri` must be a string"),
        ] {
            let error = read(event, data).unwrap_err();
            assert!(error.contains(says), "{event}: {error}");
        }
    }
}
