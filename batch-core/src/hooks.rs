//! Hooks: the application's own checks on a whole batch and on each operation,
//! like the batch_api gem's batch and operation middleware.
//!
//! A batch hook sees the validated batch before anything runs and may refuse it
//! (a [`Problem`], which may point at one op with [`Problem::at_op`]); an op hook
//! sees each operation just before it starts and may refuse it (a [`Refusal`],
//! answered inline, so dependents get 424). Both are async, so a check can ask a
//! rate limiter in Redis or a database without blocking. Route rules
//! ([`ConfigBuilder::allow_routes`](crate::ConfigBuilder::allow_routes),
//! [`deny_routes`](crate::ConfigBuilder::deny_routes)) are batch hooks, and op
//! hooks too: a url that takes a value from another op's result has its final path
//! only as the op starts.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, request::Parts};

use crate::model::Text;
use crate::problem::Problem;

/// A hook's check, running on its own: it owns what it needs of the view.
pub(crate) type Check<E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send>>;

/// The signature of a batch hook.
pub(crate) type BatchHook = Arc<dyn Fn(&BatchView<'_>) -> Check<Problem> + Send + Sync>;

/// The signature of an op hook.
pub(crate) type OpHook = Arc<dyn Fn(&OpView<'_>) -> Check<Refusal> + Send + Sync>;

/// `hook` as a batch hook: its check is boxed to sit in a list with the others.
pub(crate) fn batch_hook<F, Fut>(hook: F) -> BatchHook
where
    F: Fn(&BatchView<'_>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Problem>> + Send + 'static,
{
    Arc::new(move |batch| Box::pin(hook(batch)))
}

/// `hook` as an op hook.
pub(crate) fn op_hook<F, Fut>(hook: F) -> OpHook
where
    F: Fn(&OpView<'_>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Refusal>> + Send + 'static,
{
    Arc::new(move |op| Box::pin(hook(op)))
}

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
    pub(crate) fn new(outer: &'a Parts, ops: Vec<OpView<'a>>) -> Self {
        Self { outer, ops }
    }

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
    /// Read as text only if a hook asks for it.
    pub(crate) id: &'a Text,
    pub(crate) request: &'a Request<Bytes>,
}

impl<'a> OpView<'a> {
    pub(crate) fn new(index: usize, id: &'a Text, request: &'a Request<Bytes>) -> Self {
        Self { index, id, request }
    }

    /// The op's position in the batch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The op's id.
    pub fn id(&self) -> &'a str {
        self.id.as_str()
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

    /// Adds a header to the op's result.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Tells the client when the op may be tried again: `retry-after: seconds` on
    /// the op's result.
    pub fn retry_after(self, seconds: u32) -> Self {
        self.header(http::header::RETRY_AFTER, HeaderValue::from(seconds))
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

    /// An op hook refusing (403 `route_refused`) an op whose path `self` does not
    /// match (`allow`) or does match (`!allow`): the batch hook sees a url with
    /// references before their values are in.
    pub(crate) fn into_op_hook(self, allow: bool) -> OpHook {
        op_hook(move |op: &OpView<'_>| {
            let verdict = match self.matches(op.uri().path()) == allow {
                true => Ok(()),
                false => Err(Refusal::new(StatusCode::FORBIDDEN, "route_refused")),
            };
            std::future::ready(verdict)
        })
    }

    /// A batch hook refusing (403) any batch with an op whose path `self` does not
    /// match (`allow`) or does match (`!allow`).
    pub(crate) fn into_hook(self, allow: bool) -> BatchHook {
        batch_hook(move |batch: &BatchView<'_>| {
            let refused = batch
                .ops()
                .iter()
                .find(|op| self.matches(op.uri().path()) != allow);
            let verdict = match refused {
                None => Ok(()),
                Some(op) => Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "operation {} targets {}, which cannot be batched",
                        op.index(),
                        op.uri().path()
                    ),
                )
                .at_op(op.index())),
            };
            std::future::ready(verdict)
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
