//! Building a list of ops, then sending it: all results at once, or as they come.

use batch_core::{Operation, Text};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::client::Client;
use crate::error::Error;
use crate::response::OpResponse;
use crate::run;

/// A list of ops to send through a [`Client`], of any length: it is split into
/// batches the server takes when it is sent.
///
/// Methods that set something of an op ([`id`](Self::id),
/// [`depends_on`](Self::depends_on), [`header`](Self::header)) set it on the op
/// added last, and do nothing on an empty list.
///
/// ```no_run
/// # async fn example() -> Result<(), batch_client::Error> {
/// use serde_json::json;
///
/// let client = batch_client::Client::new("http://127.0.0.1:3000/batch")?;
/// let results = client
///     .batch()
///     .post("/items", json!({"name": "pen"}))
///     .id("new")
///     .get("/items/1")
///     .get("/health")
///     .depends_on("new")
///     .send()
///     .await?;
/// assert_eq!(results[0].status, 201);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Batch {
    client: Client,
    ops: Vec<Operation>,
}

impl Batch {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            ops: Vec::new(),
        }
    }

    /// Adds `GET url`.
    pub fn get(self, url: &str) -> Self {
        self.op(Operation::new("GET", url))
    }

    /// Adds `DELETE url`.
    pub fn delete(self, url: &str) -> Self {
        self.op(Operation::new("DELETE", url))
    }

    /// Adds `POST url` with `body` as JSON.
    pub fn post(self, url: &str, body: serde_json::Value) -> Self {
        self.op(with_json(Operation::new("POST", url), &body))
    }

    /// Adds `PUT url` with `body` as JSON.
    pub fn put(self, url: &str, body: serde_json::Value) -> Self {
        self.op(with_json(Operation::new("PUT", url), &body))
    }

    /// Adds `PATCH url` with `body` as JSON.
    pub fn patch(self, url: &str, body: serde_json::Value) -> Self {
        self.op(with_json(Operation::new("PATCH", url), &body))
    }

    /// Adds `op` as it is (any method, headers, body, dependencies).
    pub fn op(mut self, op: Operation) -> Self {
        self.ops.push(op);
        self
    }

    /// Adds every op of `ops`, in order.
    pub fn ops(mut self, ops: impl IntoIterator<Item = Operation>) -> Self {
        self.ops.extend(ops);
        self
    }

    /// Gives the last op the id `id`, for others to depend on and its result to
    /// carry.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        if let Some(op) = self.ops.last_mut() {
            op.id = Some(Text::from(id.into()));
        }
        self
    }

    /// Runs the last op only after the op with id `id` (its own, or its position
    /// in the list) succeeded; it answers 424 otherwise.
    pub fn depends_on(mut self, id: impl Into<String>) -> Self {
        if let Some(op) = self.ops.last_mut() {
            op.depends_on.push(id.into());
        }
        self
    }

    /// Sets `name: value` on the last op.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Some(op) = self.ops.last_mut() {
            let (name, value): (String, String) = (name.into(), value.into());
            op.headers.push((name.into(), value.into()));
        }
        self
    }

    /// The ops added so far.
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// Sends every op and answers their results in the order the ops were added,
    /// however the list was split.
    ///
    /// Fails, without a result, when a batch is refused (after the retries its
    /// refusal allows), when a group of ops tied by dependencies does not fit in
    /// one batch (before anything is sent), or on a transport error; batches still
    /// running then are dropped.
    pub async fn send(self) -> Result<Vec<OpResponse>, Error> {
        let count = self.ops.len();
        let mut slots: Vec<Option<OpResponse>> = vec![None; count];
        let mut results = std::pin::pin!(run::run(self.client, self.ops, false));
        while let Some(result) = results.next().await {
            let result = result?;
            let index = result.index;
            slots[index] = Some(result);
        }
        slots
            .into_iter()
            .enumerate()
            .map(|(index, slot)| {
                slot.ok_or_else(|| Error::Answer(format!("no result for op {index}")))
            })
            .collect()
    }

    /// Sends every op and yields each result as it arrives. Each batch asks a
    /// server that advertises streaming ([`Capabilities::streaming`]) for its
    /// results one by one as its ops finish (`accept: application/x-ndjson`);
    /// from any other server, every result of a batch comes when its answer is
    /// read. Results come in no set order; [`OpResponse::index`] says which op each
    /// answers. An error ends the stream.
    ///
    /// [`Capabilities::streaming`]: batch_core::Capabilities::streaming
    pub fn stream(self) -> BoxStream<'static, Result<OpResponse, Error>> {
        run::run(self.client, self.ops, true).boxed()
    }
}

fn with_json(mut op: Operation, body: &serde_json::Value) -> Operation {
    op.headers
        .push(("content-type".into(), "application/json".into()));
    op.body = serde_json::to_vec(body).unwrap_or_default().into();
    op
}
