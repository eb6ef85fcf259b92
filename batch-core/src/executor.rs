//! The one thing an adapter provides: running a single request in-process.

use std::future::Future;
use std::pin::pin;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use thiserror::Error;
use tower::{Service, ServiceExt};

/// A boxed error from a service or body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs one operation through the application, in-process.
///
/// Implementations dispatch the request to the application's own routes and
/// middleware and collect the response body, reading at most `max_response_body`
/// bytes of it (the endpoint's [`Config::max_response_body`](crate::Config::max_response_body)):
/// a larger body is [`ExecuteError::ResponseTooLarge`], which the op is answered
/// with 502 for. [`collect_body`] reads a body so.
///
/// The returned future has no `Send` bound: the engine's future is `Send` exactly
/// when the executor's is, so one engine serves `Send` frameworks (axum, warp) and
/// thread-local ones (actix-web) alike.
///
/// ```
/// use batch_core::{Executor, ExecuteError};
/// use bytes::Bytes;
/// use http::{Request, Response};
///
/// /// Answers every op with its own path.
/// struct Echo;
///
/// impl Executor for Echo {
///     async fn execute(
///         &self,
///         request: Request<Bytes>,
///         max_response_body: usize,
///     ) -> Result<Response<Bytes>, ExecuteError> {
///         let path = request.uri().path().to_owned();
///         if path.len() > max_response_body {
///             return Err(ExecuteError::ResponseTooLarge { limit: max_response_body });
///         }
///         Ok(Response::new(Bytes::from(path)))
///     }
/// }
/// ```
pub trait Executor {
    /// Dispatches `request` and returns the response with its whole body, refusing
    /// one larger than `max_response_body` bytes.
    fn execute(
        &self,
        request: Request<Bytes>,
        max_response_body: usize,
    ) -> impl Future<Output = Result<Response<Bytes>, ExecuteError>>;
}

impl<E: Executor + ?Sized> Executor for &E {
    fn execute(
        &self,
        request: Request<Bytes>,
        max_response_body: usize,
    ) -> impl Future<Output = Result<Response<Bytes>, ExecuteError>> {
        (**self).execute(request, max_response_body)
    }
}

/// Why an operation produced no response.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExecuteError {
    /// The response body was larger than the limit; the op is answered with 502.
    #[error("the response body is larger than {limit} bytes")]
    ResponseTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The service or its body failed; the op is answered with 500.
    #[error("the operation failed: {0}")]
    Failed(#[source] BoxError),
}

/// Reads a whole body, refusing one larger than `limit` bytes without buffering
/// more than `limit`.
pub async fn collect_body<B>(body: B, limit: usize) -> Result<Bytes, ExecuteError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(ExecuteError::ResponseTooLarge { limit });
    }
    let mut body = pin!(body);
    let mut collected = Collected::Nothing;
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| ExecuteError::Failed(err.into()))?;
        // Trailers carry no body bytes.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len();
        if len > limit {
            return Err(ExecuteError::ResponseTooLarge { limit });
        }
        collected = match collected {
            Collected::Nothing => Collected::One(data),
            // A second chunk: with the rest's length known, copy into one buffer of
            // the final size as chunks come; without it, keep the chunks and copy
            // them once at the end, so no buffer ever outgrows the body.
            Collected::One(first) => match body.size_hint().exact() {
                Some(rest) if rest <= (limit - len) as u64 => {
                    let rest = usize::try_from(rest).unwrap_or_default();
                    let mut joined = Vec::with_capacity(len + rest);
                    joined.extend_from_slice(&first);
                    joined.extend_from_slice(&data);
                    Collected::Joined(joined)
                }
                _ => Collected::Chunks(vec![first, data]),
            },
            Collected::Joined(mut joined) => {
                joined.extend_from_slice(&data);
                Collected::Joined(joined)
            }
            Collected::Chunks(mut chunks) => {
                chunks.push(data);
                Collected::Chunks(chunks)
            }
        };
    }
    Ok(match collected {
        Collected::Nothing => Bytes::new(),
        Collected::One(data) => data,
        Collected::Joined(joined) => Bytes::from(joined),
        Collected::Chunks(chunks) => Bytes::from(chunks.concat()),
    })
}

/// A body read so far. Most bodies are one chunk, which is kept as it came.
enum Collected {
    Nothing,
    One(Bytes),
    /// Chunks copied into a buffer sized for the whole body.
    Joined(Vec<u8>),
    /// Chunks of a body whose length was not known, joined at the end.
    Chunks(Vec<Bytes>),
}

/// An [`Executor`] for any `tower::Service` over `http` types: a hyper service, a
/// tonic server, an axum `Router`, or a whole middleware stack.
///
/// Each op is sent to a clone of the service (`oneshot`), so the service must be
/// cheap to clone, as tower services are. To serve the batch endpoint in front of
/// the same service, use [`BatchLayer`](crate::BatchLayer), which builds one.
///
/// ```
/// use batch_core::{BatchEndpoint, Config, ServiceExecutor};
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let app = tower::service_fn(|req: Request<Full<Bytes>>| async move {
///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
///         format!("you asked for {}", req.uri()),
///     ))))
/// });
/// let endpoint = BatchEndpoint::new(Config::default());
/// let batch = Request::post("/batch")
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from_static(br#"{"ops": [{"url": "/a"}, {"url": "/b"}]}"#)))
///     .unwrap();
/// let response = endpoint.handle(&ServiceExecutor::new(app), batch).await;
/// let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
/// assert_eq!(body["results"][1]["body"], "you asked for /b");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ServiceExecutor<S> {
    service: S,
}

impl<S> ServiceExecutor<S> {
    /// Dispatches ops to clones of `service`.
    pub fn new(service: S) -> Self {
        Self { service }
    }
}

impl<S, B> Executor for ServiceExecutor<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    fn execute(
        &self,
        request: Request<Bytes>,
        max_response_body: usize,
    ) -> impl Future<Output = Result<Response<Bytes>, ExecuteError>> {
        call(&self.service, request.map(Full::new), max_response_body)
    }
}

/// Sends `request` to a clone of `service` and reads the whole response, at most
/// `limit` bytes of its body.
pub(crate) async fn call<S, ReqBody, B>(
    service: &S,
    request: Request<ReqBody>,
    limit: usize,
) -> Result<Response<Bytes>, ExecuteError>
where
    S: Service<Request<ReqBody>, Response = Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let response = service
        .clone()
        .oneshot(request)
        .await
        .map_err(|err| ExecuteError::Failed(err.into()))?;
    let (parts, body) = response.into_parts();
    let body = collect_body(body, limit).await?;
    Ok(Response::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collect_body_enforces_the_limit_exactly() {
        let body = |n: usize| Full::new(Bytes::from(vec![b'x'; n]));
        assert_eq!(collect_body(body(10), 10).await.unwrap().len(), 10);
        assert!(matches!(
            collect_body(body(11), 10).await,
            Err(ExecuteError::ResponseTooLarge { limit: 10 })
        ));
        let chunks = futures::stream::iter((0..4).map(|_| {
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(b"abcd")))
        }));
        let streamed = http_body_util::StreamBody::new(chunks);
        assert!(matches!(
            collect_body(streamed, 10).await,
            Err(ExecuteError::ResponseTooLarge { .. })
        ));
        let frames = [
            http_body::Frame::data(Bytes::from_static(b"ab")),
            http_body::Frame::data(Bytes::from_static(b"cd")),
            http_body::Frame::trailers(http::HeaderMap::new()),
            http_body::Frame::data(Bytes::from_static(b"e")),
        ];
        let chunked = futures::stream::iter(frames.map(Ok::<_, std::convert::Infallible>));
        let collected = collect_body(http_body_util::StreamBody::new(chunked), 5).await;
        assert_eq!(
            collected.unwrap(),
            "abcde",
            "chunks joined in order, trailers skipped"
        );
        let sized =
            |chunks: &[&'static str]| Sized(chunks.iter().map(|c| Bytes::from(*c)).collect());
        assert_eq!(
            collect_body(sized(&["ab", "cd", "e"]), 5).await.unwrap(),
            "abcde"
        );
        assert!(matches!(
            collect_body(sized(&["ab", "cd", "ef"]), 5).await,
            Err(ExecuteError::ResponseTooLarge { limit: 5 })
        ));
    }

    /// A body that knows how much of it is left, as one with a content length does.
    struct Sized(std::collections::VecDeque<Bytes>);

    impl Body for Sized {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(http_body::Frame::data(c))))
        }

        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(self.0.iter().map(|c| c.len() as u64).sum())
        }
    }
}
