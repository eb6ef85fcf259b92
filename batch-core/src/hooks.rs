//! Hooks: the application's own checks on a whole batch and on each operation,
//! like the batch_api gem's batch and operation middleware.
//!
//! A batch hook sees the validated batch before anything runs and may refuse it
//! (a [`Problem`]); an op hook sees each operation just before it starts and may
//! refuse it (a [`Refusal`], answered inline, so dependents get 424). Route rules
//! ([`ConfigBuilder::allow_routes`](crate::ConfigBuilder::allow_routes),
//! [`deny_routes`](crate::ConfigBuilder::deny_routes)) are batch hooks.
//!
//! Charging a rate limiter per op, so that batching cannot dodge it:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use batch_core::{Config, Refusal};
//! use http::StatusCode;
//!
//! // Five requests per window, per caller; the real limiter would refill over time.
//! let budget = Arc::new(Mutex::new(std::collections::HashMap::<String, u32>::new()));
//! let config = Config::builder()
//!     .op_hook(move |op| {
//!         let caller = op
//!             .headers()
//!             .get("authorization")
//!             .and_then(|v| v.to_str().ok())
//!             .unwrap_or("anonymous")
//!             .to_owned();
//!         let mut used = budget.lock().unwrap_or_else(|e| e.into_inner());
//!         let count = used.entry(caller).or_default();
//!         *count += 1;
//!         if *count > 5 {
//!             return Err(Refusal::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
//!                 .header(http::header::RETRY_AFTER, http::HeaderValue::from_static("60")));
//!         }
//!         Ok(())
//!     })
//!     .build()?;
//! # Ok::<(), batch_core::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, request::Parts};

use crate::problem::Problem;

/// The signature of a batch hook.
pub(crate) type BatchHook = Arc<dyn Fn(&BatchView<'_>) -> Result<(), Problem> + Send + Sync>;

/// The signature of an op hook.
pub(crate) type OpHook = Arc<dyn Fn(&OpView<'_>) -> Result<(), Refusal> + Send + Sync>;

/// The hooks of one endpoint, in the order they were added.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) batch: Vec<BatchHook>,
    pub(crate) op: Vec<OpHook>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("batch", &self.batch.len())
            .field("op", &self.op.len())
            .finish()
    }
}

/// A validated batch, as a batch hook sees it.
#[derive(Debug)]
pub struct BatchView<'a> {
    pub(crate) outer: &'a Parts,
    pub(crate) ops: Vec<OpView<'a>>,
}

impl<'a> BatchView<'a> {
    /// The outer batch request (its headers, extensions and uri).
    pub fn outer(&self) -> &'a Parts {
        self.outer
    }

    /// The operations in request order.
    pub fn ops(&self) -> &[OpView<'a>] {
        &self.ops
    }
}

/// One operation about to run, as a hook sees it: the exact request the
/// application will get.
#[derive(Debug, Clone, Copy)]
pub struct OpView<'a> {
    pub(crate) index: usize,
    pub(crate) id: &'a str,
    pub(crate) request: &'a Request<Bytes>,
}

impl<'a> OpView<'a> {
    /// The op's position in the batch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The op's id.
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The op's method.
    pub fn method(&self) -> &'a Method {
        self.request.method()
    }

    /// The op's target, exactly as dispatched (already checked and canonical).
    pub fn uri(&self) -> &'a Uri {
        self.request.uri()
    }

    /// The op's headers: inherited from the outer request, then its own.
    pub fn headers(&self) -> &'a HeaderMap {
        self.request.headers()
    }

    /// The op's extensions (a clone of the outer request's).
    pub fn extensions(&self) -> &'a http::Extensions {
        self.request.extensions()
    }

    /// The op's body.
    pub fn body(&self) -> &'a Bytes {
        self.request.body()
    }
}

/// An op hook's refusal: the op is answered with `status` and
/// `{"error": "<error>"}` without running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) error: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

impl Refusal {
    /// Refuses with `status`, naming the reason in the body's `error` field.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header to the op's result, such as `retry-after`.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// Route patterns: `/items` matches that path only; `/items/*` matches `/items`
/// and every path below it.
#[derive(Debug, Clone)]
pub(crate) struct Routes(Vec<String>);

impl Routes {
    pub(crate) fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(patterns.into_iter().map(Into::into).collect())
    }

    fn matches(&self, path: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| match pattern.strip_suffix("/*") {
                Some(prefix) => {
                    path == prefix
                        || path
                            .strip_prefix(prefix)
                            .is_some_and(|rest| rest.starts_with('/'))
                }
                None => path == pattern,
            })
    }

    /// A batch hook refusing (403) any batch with an op whose path `self` does not
    /// match (`allow`) or does match (`!allow`).
    pub(crate) fn into_hook(self, allow: bool) -> BatchHook {
        Arc::new(move |batch: &BatchView<'_>| {
            for op in batch.ops() {
                let path = op.uri().path();
                if self.matches(path) != allow {
                    return Err(Problem::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "operation {} targets {path}, which cannot be batched",
                            op.index()
                        ),
                    )
                    .at(Some(op.index()), None));
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exact_paths_or_whole_subtrees() {
        let routes = Routes::new(["/health", "/items/*"]);
        for path in ["/health", "/items", "/items/1", "/items/1/tags"] {
            assert!(routes.matches(path), "{path}");
        }
        for path in ["/health/x", "/itemsx", "/items-admin", "/", "/admin"] {
            assert!(!routes.matches(path), "{path}");
        }
    }
}
