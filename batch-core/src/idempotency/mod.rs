//! Idempotency keys: a batch sent with `Idempotency-Key: <key>` runs at most once
//! per key and caller, and a retry gets the first answer again.
//!
//! The caller is part of the key (a hash of its `authorization`, or of whatever
//! [`ConfigBuilder::idempotency_identity`](crate::ConfigBuilder::idempotency_identity)
//! returns), so one caller never receives another's answer. Once the batch's body
//! is read and its format known, the endpoint claims the key in the
//! [`IdempotencyStore`] with a [`Fingerprint`] of format and body:
//!
//! | the store holds | answer |
//! |---|---|
//! | nothing | the batch runs; its answer is stored and sent |
//! | an answer, same fingerprint | that answer again, with `idempotent-replayed: true`; nothing runs |
//! | anything, another fingerprint | 422 `idempotency_key_reused` |
//! | a running batch, same fingerprint | 409 `idempotency_key_in_use`, `retry-after: 1` |
//! | a batch that started longer ago than its deadline and left no answer | 409 `idempotency_key_interrupted` |
//! | (the store cannot be reached) | 503 `idempotency_store_unavailable`, `retry-after: 1`; nothing runs |
//!
//! A batch refused with a problem (a 4xx, or 503 at the cap on ops in flight) ran
//! nothing: its claim is released and it is not stored. A batch whose ops failed ran:
//! its 200 answer is stored like any other. Answers are stored whole (status, headers,
//! every byte of the body with its content type), whatever the format, and replayed
//! byte for byte.

mod key;
mod memory;
mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header, request::Parts};

pub use key::{Fingerprint, StoreKey};
pub use memory::MemoryStore;
pub use store::{Entry, IdempotencyStore, StoreError, StoreFuture, StoredAnswer};

pub(crate) use key::HEADER as IDEMPOTENCY_KEY;
use key::IdempotencyKey;

use crate::model::Format;
use crate::problem::Problem;

/// The header a replayed answer carries.
const REPLAYED: &str = "idempotent-replayed";

/// How long past its deadline a batch's claim may still be the batch running: the
/// clocks of replicas sharing a store differ a little.
const CLOCK_SLACK: Duration = Duration::from_secs(5);

/// What names the caller of a request, to keep callers' keys apart.
pub(crate) type Identity = Arc<dyn Fn(&Parts) -> Vec<u8> + Send + Sync>;

/// The endpoint's idempotency settings.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) enabled: bool,
    pub(crate) store: Arc<dyn IdempotencyStore>,
    pub(crate) ttl: Duration,
    pub(crate) identity: Identity,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: true,
            store: Arc::new(MemoryStore::default()),
            ttl: Duration::from_secs(24 * 60 * 60),
            identity: Arc::new(|parts: &Parts| {
                parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .map_or_else(Vec::new, |value| value.as_bytes().to_vec())
            }),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("enabled", &self.enabled)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// What becomes of a request to the batch endpoint, as far as its key goes.
pub(crate) enum Admission {
    /// The key is this request's: run the batch, then keep or release the claim.
    Claimed(Claim),
    /// A retry: the stored answer, to send as it is.
    Replay(Response<Bytes>),
}

impl Settings {
    /// The request's key, checked (400), before its body is read; `None` without one
    /// or with idempotency off.
    pub(crate) fn key_of(&self, parts: &Parts) -> Result<Option<IdempotencyKey>, Problem> {
        if !self.enabled {
            return Ok(None);
        }
        IdempotencyKey::of(&parts.headers)
    }

    /// Claims `key` for the batch `body` in `format`, or answers from the store.
    /// `deadline` is the longest a batch runs: a claim older than that was left by a
    /// batch that was interrupted.
    pub(crate) async fn admit(
        &self,
        key: IdempotencyKey,
        parts: &Parts,
        format: Format,
        body: &[u8],
        deadline: Duration,
    ) -> Result<Admission, Problem> {
        let key = key.for_caller(&(self.identity)(parts));
        let fingerprint = Fingerprint::of(format.name(), body);
        let now = now_ms();
        let running = Entry::Running {
            fingerprint,
            started_ms: now,
        };
        let held = self
            .store
            .claim(&key, &running, self.ttl)
            .await
            .map_err(unavailable)?;
        match held {
            None => Ok(Admission::Claimed(Claim {
                store: Arc::clone(&self.store),
                ttl: self.ttl,
                key,
                fingerprint,
            })),
            Some(held) if *held.fingerprint() != fingerprint => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "this Idempotency-Key was sent with another request (another body or format); \
                 a new request needs a new key",
            )
            .with_code("idempotency_key_reused")),
            Some(Entry::Answered(answer)) => Ok(Admission::Replay(replay(answer))),
            Some(Entry::Running { started_ms, .. }) => {
                let limit = deadline.saturating_add(CLOCK_SLACK).as_millis();
                if u128::from(now.saturating_sub(started_ms)) > limit {
                    Err(Problem::new(
                        StatusCode::CONFLICT,
                        "the first request with this Idempotency-Key was interrupted before its \
                         answer was stored; some of its operations may have run. Check the state \
                         and send a new key to run the batch again",
                    )
                    .with_code("idempotency_key_interrupted"))
                } else {
                    Err(Problem::new(
                        StatusCode::CONFLICT,
                        "a request with this Idempotency-Key is still running; retry shortly",
                    )
                    .with_code("idempotency_key_in_use")
                    .retry_after(1))
                }
            }
        }
    }
}

/// A key this request holds while its batch runs.
pub(crate) struct Claim {
    store: Arc<dyn IdempotencyStore>,
    ttl: Duration,
    key: StoreKey,
    fingerprint: Fingerprint,
}

impl Claim {
    /// Stores `answer` for retries. When the store fails now, after the batch ran,
    /// the answer is still sent and the claim stays: retries get 409, never a
    /// second run.
    pub(crate) async fn keep(self, answer: &Response<Bytes>) {
        let entry = Entry::Answered(StoredAnswer {
            fingerprint: self.fingerprint,
            status: answer.status(),
            headers: answer.headers().clone(),
            body: answer.body().clone(),
        });
        if let Err(err) = self.store.answer(&self.key, &entry, self.ttl).await {
            tracing::warn!(error = %err, "idempotency: the batch ran but its answer could not be stored; retries of its key get 409");
        }
    }

    /// Gives the key up: the batch was refused and ran nothing.
    pub(crate) async fn release(self) {
        if let Err(err) = self.store.release(&self.key).await {
            tracing::warn!(error = %err, "idempotency: a refused batch's key could not be released; retries get 409 until it expires");
        }
    }
}

/// The stored answer as a response, marked as a replay.
fn replay(answer: StoredAnswer) -> Response<Bytes> {
    let mut response = Response::new(answer.body);
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

fn unavailable(err: StoreError) -> Problem {
    tracing::warn!(error = %err, "idempotency: a keyed batch is refused, the store cannot take its key");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the idempotency store cannot take this key now; the batch did not run; retry shortly",
    )
    .with_code("idempotency_store_unavailable")
    .retry_after(1)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
