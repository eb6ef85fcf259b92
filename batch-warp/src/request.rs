//! The request a warp filter is looking at, rebuilt as an `http` request for the
//! endpoint: warp hands it out piece by piece.

use std::convert::Infallible;

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use http::request::Parts;
use http::{HeaderMap, Method, Request};
use http_body::Frame;
use http_body_util::StreamBody;
use http_body_util::combinators::BoxBody;
use warp::Filter;
use warp::filters::path::FullPath;

use batch_core::BatchOp;

use crate::BatchRemoteAddr;

/// The method, path, query, headers, batch marker and remote address of the
/// request, as the head of an `http` request; the remote address rides in
/// [`BatchRemoteAddr`], for [`remote`](crate::remote).
pub(crate) fn parts() -> impl Filter<Extract = (Parts,), Error = Infallible> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<BatchOp>())
        .and(warp::addr::remote())
        .map(
            |method: Method, path: FullPath, query: String, headers: HeaderMap, op, remote| {
                let (mut parts, ()) = Request::new(()).into_parts();
                parts.method = method;
                let target = if query.is_empty() {
                    path.as_str().to_owned()
                } else {
                    format!("{}?{query}", path.as_str())
                };
                if let Ok(uri) = target.parse() {
                    parts.uri = uri;
                }
                parts.headers = headers;
                if let Some(op) = op {
                    parts.extensions.insert::<BatchOp>(op);
                }
                if let Some(addr) = remote {
                    parts.extensions.insert(BatchRemoteAddr(addr));
                }
                parts
            },
        )
}

/// A request body, as the endpoint and the routes take it.
pub(crate) type Body = BoxBody<Bytes, warp::Error>;

/// The request's body, as warp streams it, as an `http` body.
pub(crate) fn into_body<S, D>(stream: S) -> Body
where
    S: Stream<Item = Result<D, warp::Error>> + Send + Sync + 'static,
    D: Buf,
{
    BoxBody::new(StreamBody::new(stream.map(|chunk| {
        chunk.map(|mut data| Frame::data(data.copy_to_bytes(data.remaining())))
    })))
}
