//! What the server answers a client's message with, directly.

use bytes::Bytes;
use http::StatusCode;

use crate::codec::json::Writer;
use crate::codec::native::write_results;
use crate::model::{BatchResponse, OpResult, ResultBody};

/// The direct answer to a message: what happened, and the `ref` it echoes.
#[derive(Debug, Clone)]
pub struct Answer {
    reference: Option<String>,
    reply: Reply,
}

/// What a message came to.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Reply {
    /// `state`: a subscription's `GET` answered 2xx; changes follow.
    State {
        /// The URI subscribed to.
        uri: String,
        /// The `GET`'s body.
        resource: ResultBody,
        /// The cursor of the last change delivered before the `GET` ran: a resume
        /// from it misses nothing that came after.
        seq: String,
        /// Whether it answers a resume whose cursor the history no longer covers.
        reset: bool,
    },
    /// `resumed`: the changes missed since the cursor follow, then every change.
    Resumed {
        /// The URI subscribed to.
        uri: String,
    },
    /// `result`: the answer of a `create`, `patch` or `delete`, whatever its status.
    Result {
        /// The URI the message named.
        uri: String,
        /// The op's result.
        result: OpResult,
    },
    /// `results`: the results of a `batch`, as the native format answers them.
    Results(BatchResponse),
    /// `unsubscribed`: no more changes of `uri` come.
    Unsubscribed {
        /// The URI unsubscribed from.
        uri: String,
    },
    /// `revoked`: a subscription's `GET`, run again before an event, did not answer
    /// 2xx; the subscription ended and no more changes of `uri` come. Answers no
    /// message: it carries no `ref`.
    Revoked {
        /// The URI as it was subscribed to.
        uri: String,
        /// The status the `GET` answered.
        status: StatusCode,
    },
    /// `error`: the message was refused, or a subscription's `GET` did not answer
    /// 2xx (then `body` is its body).
    Error {
        /// 400 for a malformed message, 422 for a refused URI or batch, 429 for too
        /// many subscriptions, or the status a subscription's `GET` answered.
        status: StatusCode,
        /// What went wrong.
        detail: String,
        /// The body of the `GET` that did not answer 2xx.
        body: Option<ResultBody>,
    },
}

impl Answer {
    pub(crate) fn new(reference: Option<String>, reply: Reply) -> Self {
        Self { reference, reply }
    }

    /// The `ref` of the message answered.
    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }

    /// What the message came to.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }

    /// The answer as a WebSocket client gets it: `{"type": …, "ref": …, …}`.
    pub fn json(&self) -> Bytes {
        let mut out = Writer::new();
        out.raw(br#"{"type":"#);
        match &self.reply {
            Reply::State {
                uri,
                resource,
                seq,
                reset,
            } => {
                out.raw(br#""state","uri":"#);
                out.string(uri);
                out.member("resource", resource);
                out.raw(br#","seq":"#);
                out.string(seq);
                if *reset {
                    out.raw(br#","reset":true"#);
                }
            }
            Reply::Resumed { uri } => {
                out.raw(br#""resumed","uri":"#);
                out.string(uri);
            }
            Reply::Result { uri, result } => {
                out.raw(br#""result","uri":"#);
                out.string(uri);
                out.raw(br#","status":"#);
                out.status(result.status);
                out.headers(&result.headers, false);
                out.body(&result.body);
            }
            Reply::Results(response) => {
                out.raw(br#""results","results":"#);
                write_results(&mut out, response);
            }
            Reply::Unsubscribed { uri } => {
                out.raw(br#""unsubscribed","uri":"#);
                out.string(uri);
            }
            Reply::Revoked { uri, status } => {
                out.raw(br#""revoked","uri":"#);
                out.string(uri);
                out.raw(br#","status":"#);
                out.status(*status);
            }
            Reply::Error {
                status,
                detail,
                body,
            } => {
                out.raw(br#""error","status":"#);
                out.status(*status);
                out.raw(br#","detail":"#);
                out.string(detail);
                if let Some(body) = body {
                    out.body(body);
                }
            }
        }
        if let Some(reference) = &self.reference {
            out.raw(br#","ref":"#);
            out.string(reference);
        }
        out.raw(b"}");
        Bytes::from(out.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use serde_json::{Value, json};

    fn parsed(answer: Answer) -> Value {
        serde_json::from_slice(&answer.json()).unwrap()
    }

    #[test]
    fn answers_are_the_documented_messages() {
        let state = Answer::new(
            Some("r".into()),
            Reply::State {
                uri: "/items/7".into(),
                resource: ResultBody::Json(Bytes::from_static(br#"{"id":7}"#)),
                seq: "a-1".into(),
                reset: false,
            },
        );
        assert_eq!(
            parsed(state),
            json!({"type": "state", "uri": "/items/7", "resource": {"id": 7}, "seq": "a-1", "ref": "r"})
        );
        let reset = Answer::new(
            None,
            Reply::State {
                uri: "/a".into(),
                resource: ResultBody::Empty,
                seq: "a-2".into(),
                reset: true,
            },
        );
        assert_eq!(parsed(reset)["reset"], json!(true));
        assert_eq!(
            parsed(Answer::new(
                Some("s".into()),
                Reply::Resumed { uri: "/a".into() }
            )),
            json!({"type": "resumed", "uri": "/a", "ref": "s"})
        );
        let mut result = OpResult::new("0", StatusCode::CREATED);
        result
            .headers
            .insert("location", HeaderValue::from_static("/items/1001"));
        result.body = ResultBody::Text("made".into());
        assert_eq!(
            parsed(Answer::new(
                None,
                Reply::Result {
                    uri: "/items/".into(),
                    result
                }
            )),
            json!({"type": "result", "uri": "/items/", "status": 201, "headers": {"location": "/items/1001"}, "body": "made"})
        );
        let mut response = BatchResponse::new(vec![OpResult::new("a", StatusCode::NO_CONTENT)]);
        response.results[0].headers = HeaderMap::new();
        assert_eq!(
            parsed(Answer::new(Some("b".into()), Reply::Results(response))),
            json!({"type": "results", "results": [{"id": "a", "status": 204, "headers": {}, "body": null}], "ref": "b"})
        );
        assert_eq!(
            parsed(Answer::new(None, Reply::Unsubscribed { uri: "/a".into() })),
            json!({"type": "unsubscribed", "uri": "/a"})
        );
        assert_eq!(
            parsed(Answer::new(
                None,
                Reply::Revoked {
                    uri: "/items/7".into(),
                    status: StatusCode::FORBIDDEN
                }
            )),
            json!({"type": "revoked", "uri": "/items/7", "status": 403})
        );
        let error = Reply::Error {
            status: StatusCode::NOT_FOUND,
            detail: "the subscription's GET answered 404".into(),
            body: Some(ResultBody::Json(Bytes::from_static(
                br#"{"error":"not found"}"#,
            ))),
        };
        assert_eq!(
            parsed(Answer::new(None, error)),
            json!({"type": "error", "status": 404, "detail": "the subscription's GET answered 404", "body": {"error": "not found"}})
        );
    }
}
