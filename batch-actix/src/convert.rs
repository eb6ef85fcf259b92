//! Conversion between the `http` 1 types the engine speaks and the `http` 0.2 types
//! actix-web 4 is built on.
//!
//! Everything goes through bytes or plain integers, so nothing is reinterpreted: a
//! header value that is not UTF-8 arrives byte for byte, repeated headers keep their
//! order, and an extension method such as `PURGE` stays itself.

use std::cell::RefCell;
use std::net::SocketAddr;

use actix_http::Request as ActixRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, RequestHead, ResponseHead};
use actix_web::http::header::{
    HeaderMap as ActixHeaderMap, HeaderName as ActixHeaderName, HeaderValue as ActixHeaderValue,
};
use actix_web::http::{
    Method as ActixMethod, StatusCode as ActixStatus, Uri as ActixUri, Version as ActixVersion,
};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use batch_core::BatchOp;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header};
use thiserror::Error;

/// A part of a request or response that one `http` version accepts and the other
/// does not. Both versions share the grammar, so this marks a bug rather than bad
/// input; it is reported, never panicked on.
#[derive(Debug, Error)]
pub(crate) enum ConvertError {
    #[error("method {0:?} cannot be converted")]
    Method(String),
    #[error("uri {0:?} cannot be converted")]
    Uri(String),
    #[error("header {0:?} cannot be converted")]
    Header(String),
    #[error("status {0} cannot be converted")]
    Status(u16),
}

/// The request line, headers and batch marker of an op, as an actix request carrying
/// `body`, from `peer_addr` (the outer request's peer), its target and headers
/// converted through `headers`.
pub(crate) fn to_actix_request(
    request: http::Request<Bytes>,
    peer_addr: Option<SocketAddr>,
    headers: &RequestHeaders,
) -> Result<ActixRequest, ConvertError> {
    let (parts, body) = request.into_parts();
    let payload = if body.is_empty() {
        Payload::None
    } else {
        Payload::from(body)
    };
    let mut converted = ActixRequest::with_payload(payload);
    let head = converted.head_mut();
    head.method = ActixMethod::from_bytes(parts.method.as_str().as_bytes())
        .map_err(|_| ConvertError::Method(parts.method.to_string()))?;
    head.uri = to_actix_uri(&parts.uri, &headers.copies)?;
    head.version = to_actix_version(parts.version);
    // The head comes from actix's pool with its last map cleared, not freed: filling
    // that map spares allocating one and freeing the other.
    let target = &mut head.headers;
    target.reserve(parts.headers.len());
    let append = |name, value| target.append(name, value);
    let to_value = |name: &HeaderName, value: &HeaderValue| {
        ActixHeaderValue::from_maybe_shared(headers.copies.copy(value.as_bytes()))
            .map_err(|_| ConvertError::Header(name.to_string()))
    };
    headers
        .cache
        .convert(&parts.headers, to_actix_name, to_value, append)?;
    head.peer_addr = peer_addr;
    // Typed extensions cannot cross into actix's map wholesale; the batch marker can,
    // so handlers (and a nested batch route) still tell ops from direct requests.
    if let Some(op) = parts.extensions.get::<BatchOp>() {
        converted.extensions_mut().insert(*op);
    }
    Ok(converted)
}

/// An op's target, which the engine makes origin-form (a path and query, nothing
/// else): those bytes are the whole URI, handed over without formatting it first,
/// copied through `copies`.
fn to_actix_uri(uri: &Uri, copies: &Copies) -> Result<ActixUri, ConvertError> {
    let path_and_query = uri.path_and_query().map_or("/", |target| target.as_str());
    ActixUri::from_maybe_shared(copies.copy(path_and_query.as_bytes()))
        .map_err(|_| ConvertError::Uri(uri.to_string()))
}

/// What converting one executor's ops to actix requests keeps from op to op: the
/// headers converted so far, and the blocks that the bytes actix's types own (each
/// op's target, its headers' new values) are copied into.
#[derive(Default)]
pub(crate) struct RequestHeaders {
    cache: HeaderCache<HeaderName, HeaderValue, ActixHeaderName, ActixHeaderValue>,
    copies: Copies,
}

/// Bytes copied for actix's types out of blocks that many copies share, rather than
/// into an allocation each: an op's target and `x-request-id`, a few dozen bytes
/// apiece, then cost a slice of a block and a reference count, not an allocation
/// and a free, and a copy a header cache clones is not made shared by an allocation
/// of its own first. A block is freed once every copy cut from it is dropped.
#[derive(Default)]
struct Copies(RefCell<BytesMut>);

impl Copies {
    /// The room a block is made with: the copies of a few dozen ops.
    const BLOCK: usize = 1024;

    /// `bytes`, copied into the current block, or into a new one if they do not fit.
    fn copy(&self, bytes: &[u8]) -> Bytes {
        let mut block = self.0.borrow_mut();
        if block.capacity() < bytes.len() {
            *block = BytesMut::with_capacity(Self::BLOCK.max(bytes.len()));
        }
        block.extend_from_slice(bytes);
        block.split().freeze()
    }
}

/// The converted copies of the headers the ops of one batch have carried so far,
/// from names `N` and values `V` of one `http` version to those of the other.
///
/// Ops inherit the same outer headers and routes answer with much the same ones, so
/// each header is converted (its name parsed, its value checked and copied) for the
/// first op that carries it and cloned, which only counts a reference, for the ops
/// after it. One value is kept per name: a header whose value changes from op to op
/// (each op's own `x-request-id`) keeps its converted name and has only its value
/// converted again. Kept small: names past the first few are converted each time.
pub(crate) struct HeaderCache<N, V, CN, CV>(RefCell<Vec<CachedHeader<N, V, CN, CV>>>);

/// The cache of the headers of the ops' responses, on their way back to the engine.
pub(crate) type ResponseHeaders =
    HeaderCache<ActixHeaderName, ActixHeaderValue, HeaderName, HeaderValue>;

/// A header as one version has it and as the other takes it.
struct CachedHeader<N, V, CN, CV> {
    name: N,
    value: V,
    converted: (CN, CV),
}

impl<N, V, CN, CV> Default for HeaderCache<N, V, CN, CV> {
    fn default() -> Self {
        Self(RefCell::new(Vec::new()))
    }
}

impl<N, V, CN, CV> HeaderCache<N, V, CN, CV>
where
    N: PartialEq + Clone,
    V: PartialEq + Clone,
    CN: Clone,
    CV: Clone,
{
    /// How many names are kept: enough for what ops inherit and the few they set
    /// alike, few enough that a look-up stays cheaper than a conversion.
    const CAPACITY: usize = 16;

    /// Each of `headers`, in order, converted by `to_name` and `to_value` unless
    /// already known, then handed to `append`.
    fn convert<'a>(
        &self,
        headers: impl IntoIterator<Item = (&'a N, &'a V)>,
        to_name: impl Fn(&N) -> Result<CN, ConvertError>,
        to_value: impl Fn(&N, &V) -> Result<CV, ConvertError>,
        mut append: impl FnMut(CN, CV),
    ) -> Result<(), ConvertError>
    where
        N: 'a,
        V: 'a,
    {
        let mut cached = self.0.borrow_mut();
        for (name, value) in headers {
            let (name, value) = match cached.iter_mut().find(|header| header.name == *name) {
                Some(header) => {
                    if header.value != *value {
                        header.converted.1 = to_value(name, value)?;
                        header.value = value.clone();
                    }
                    header.converted.clone()
                }
                None => {
                    let pair = (to_name(name)?, to_value(name, value)?);
                    if cached.len() < Self::CAPACITY {
                        cached.push(CachedHeader {
                            name: name.clone(),
                            value: value.clone(),
                            converted: pair.clone(),
                        });
                    }
                    pair
                }
            };
            append(name, value);
        }
        Ok(())
    }
}

/// The method, target, version, headers and batch marker of the outer batch request,
/// ready to be joined with its body.
pub(crate) fn outer_parts(request: &HttpRequest) -> Result<http::request::Parts, ConvertError> {
    let mut parts = head_parts(request.head())?;
    if let Some(op) = request.extensions().get::<BatchOp>() {
        parts.extensions.insert(*op);
    }
    Ok(parts)
}

/// The method, target, version and headers of a request.
///
/// An HTTP/2 request names its host in `:authority`, not in a `host` header; that
/// authority becomes the `host` header here, because ops are HTTP/1.1 requests that
/// inherit the caller's host.
pub(crate) fn head_parts(head: &RequestHead) -> Result<http::request::Parts, ConvertError> {
    let mut parts = request_line(head)?;
    let mut headers = to_http_headers(&head.headers)?;
    if !headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
    {
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| ConvertError::Header(header::HOST.to_string()))?;
        headers.insert(header::HOST, host);
    }
    parts.headers = headers;
    Ok(parts)
}

/// The method, target and version of a request, without its headers.
pub(crate) fn request_line(head: &RequestHead) -> Result<http::request::Parts, ConvertError> {
    let method = Method::from_bytes(head.method.as_str().as_bytes())
        .map_err(|_| ConvertError::Method(head.method.to_string()))?;
    let uri =
        Uri::try_from(head.uri.to_string()).map_err(|_| ConvertError::Uri(head.uri.to_string()))?;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = to_http_version(head.version);
    Ok(parts)
}

/// The status and headers of an op's actix response, joined with its collected body,
/// its headers converted through `headers`.
pub(crate) fn to_http_response(
    head: &ResponseHead,
    body: Bytes,
    headers: &ResponseHeaders,
) -> Result<http::Response<Bytes>, ConvertError> {
    let mut response = http::Response::new(body);
    *response.status_mut() = StatusCode::from_u16(head.status.as_u16())
        .map_err(|_| ConvertError::Status(head.status.as_u16()))?;
    *response.version_mut() = to_http_version(head.version);
    // Not reserved up front: a route answers with a few headers, which the map's
    // first growth holds, and reserving cost more than it spared.
    let converted = response.headers_mut();
    headers.convert(&head.headers, to_http_name, to_http_value, |name, value| {
        converted.append(name, value);
    })?;
    Ok(response)
}

/// The engine's answer to a batch as an actix response.
pub(crate) fn to_actix_response<B: MessageBody + 'static>(
    response: http::Response<B>,
) -> Result<HttpResponse, ConvertError> {
    let (parts, body) = response.into_parts();
    let status = ActixStatus::from_u16(parts.status.as_u16())
        .map_err(|_| ConvertError::Status(parts.status.as_u16()))?;
    let mut converted = HttpResponse::with_body(status, body);
    *converted.headers_mut() = to_actix_headers(&parts.headers)?;
    // actix writes `connection` from the head's connection type, never from the
    // header map, so a response that must close its connection says so there.
    let closes = parts
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
    if closes {
        converted
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(converted.map_into_boxed_body())
}

fn to_actix_headers(headers: &HeaderMap) -> Result<ActixHeaderMap, ConvertError> {
    let mut converted = ActixHeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        converted.append(to_actix_name(name)?, to_actix_value(name, value)?);
    }
    Ok(converted)
}

fn to_actix_name(name: &HeaderName) -> Result<ActixHeaderName, ConvertError> {
    ActixHeaderName::from_bytes(name.as_str().as_bytes())
        .map_err(|_| ConvertError::Header(name.to_string()))
}

fn to_actix_value(
    name: &HeaderName,
    value: &HeaderValue,
) -> Result<ActixHeaderValue, ConvertError> {
    ActixHeaderValue::from_bytes(value.as_bytes())
        .map_err(|_| ConvertError::Header(name.to_string()))
}

pub(crate) fn to_http_headers(headers: &ActixHeaderMap) -> Result<HeaderMap, ConvertError> {
    let mut converted = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        converted.append(to_http_name(name)?, to_http_value(name, value)?);
    }
    Ok(converted)
}

fn to_http_name(name: &ActixHeaderName) -> Result<HeaderName, ConvertError> {
    HeaderName::from_bytes(name.as_str().as_bytes())
        .map_err(|_| ConvertError::Header(name.to_string()))
}

fn to_http_value(
    name: &ActixHeaderName,
    value: &ActixHeaderValue,
) -> Result<HeaderValue, ConvertError> {
    HeaderValue::from_bytes(value.as_bytes()).map_err(|_| ConvertError::Header(name.to_string()))
}

fn to_actix_version(version: Version) -> ActixVersion {
    match version {
        Version::HTTP_09 => ActixVersion::HTTP_09,
        Version::HTTP_10 => ActixVersion::HTTP_10,
        Version::HTTP_2 => ActixVersion::HTTP_2,
        Version::HTTP_3 => ActixVersion::HTTP_3,
        _ => ActixVersion::HTTP_11,
    }
}

fn to_http_version(version: ActixVersion) -> Version {
    match version {
        ActixVersion::HTTP_09 => Version::HTTP_09,
        ActixVersion::HTTP_10 => Version::HTTP_10,
        ActixVersion::HTTP_2 => Version::HTTP_2,
        ActixVersion::HTTP_3 => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use actix_web::test::TestRequest;
    use futures::StreamExt;

    use super::*;

    fn op(method: &str, uri: &str) -> http::request::Builder {
        http::Request::builder().method(method).uri(uri)
    }

    async fn payload_bytes(request: &mut ActixRequest) -> Vec<u8> {
        let mut payload = request.take_payload();
        let mut bytes = Vec::new();
        while let Some(chunk) = payload.next().await {
            bytes.extend_from_slice(&chunk.expect("an in-memory payload cannot fail"));
        }
        bytes
    }

    #[test]
    fn methods_keep_their_name_including_extension_methods() {
        for method in [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE",
        ] {
            let request = op(method, "/").body(Bytes::new()).unwrap();
            let converted = to_actix_request(request, None, &RequestHeaders::default()).unwrap();
            assert_eq!(converted.method().as_str(), method);
        }
    }

    #[test]
    fn uris_keep_path_and_query_verbatim() {
        for uri in [
            "/",
            "/items/7",
            "/items?limit=2&x=%20y",
            "/echo/a%2Bb?q=%E2%82%AC&q=2",
        ] {
            let request = op("GET", uri).body(Bytes::new()).unwrap();
            let converted = to_actix_request(request, None, &RequestHeaders::default()).unwrap();
            assert_eq!(converted.uri().to_string(), uri);
            assert_eq!(converted.path(), uri.split('?').next().unwrap());
            assert_eq!(converted.uri().query(), uri.split_once('?').map(|(_, q)| q));
        }
    }

    #[test]
    fn repeated_and_non_utf8_headers_survive_both_ways() {
        let opaque = HeaderValue::from_bytes(b"caf\xe9 \xff").unwrap();
        let request = op("GET", "/")
            .header("accept", "text/plain")
            .header("accept", "application/json")
            .header("x-opaque", opaque.clone())
            .body(Bytes::new())
            .unwrap();
        let converted = to_actix_request(request, None, &RequestHeaders::default()).unwrap();
        let accept: Vec<_> = converted
            .headers()
            .get_all("accept")
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(accept, [&b"text/plain"[..], b"application/json"]);
        assert_eq!(
            converted.headers().get("x-opaque").unwrap().as_bytes(),
            opaque.as_bytes()
        );

        let mut head = ResponseHead::new(ActixStatus::OK);
        head.headers = converted.headers().clone();
        let back = to_http_response(&head, Bytes::new(), &ResponseHeaders::default()).unwrap();
        let accept: Vec<_> = back.headers().get_all("accept").iter().collect();
        assert_eq!(accept, ["text/plain", "application/json"]);
        assert_eq!(back.headers()["x-opaque"], opaque);
    }

    #[test]
    fn ops_copied_into_shared_blocks_each_keep_their_own_target_and_values() {
        // Enough ops, and values longer than a block, for copies to span blocks
        // while every converted request still holds its own.
        let headers = RequestHeaders::default();
        let long = "v".repeat(Copies::BLOCK + 1);
        let value = |i: usize| {
            if i.is_multiple_of(10) {
                long.as_str()
            } else {
                "short"
            }
        };
        let converted: Vec<_> = (0..100)
            .map(|i| {
                let request = op("GET", &format!("/items/{i}?q={i}"))
                    .header("x-request-id", format!("batch-{i}"))
                    .header("x-value", value(i))
                    .body(Bytes::new())
                    .unwrap();
                to_actix_request(request, None, &headers).unwrap()
            })
            .collect();
        for (i, request) in converted.iter().enumerate() {
            assert_eq!(request.uri().to_string(), format!("/items/{i}?q={i}"));
            let header = |name: &str| request.headers().get(name).unwrap().as_bytes();
            assert_eq!(header("x-request-id"), format!("batch-{i}").as_bytes());
            assert_eq!(header("x-value"), value(i).as_bytes());
        }
    }

    #[test]
    fn ops_sharing_a_header_cache_each_keep_their_own_headers() {
        let cache = RequestHeaders::default();
        let first = op("GET", "/")
            .header("host", "example.test")
            .header("x-request-id", "batch/1")
            .header("accept", "text/plain")
            .header("accept", "application/json")
            .body(Bytes::new())
            .unwrap();
        let second = op("GET", "/")
            .header("host", "example.test")
            .header("x-request-id", "batch/2")
            .header("accept", "application/json")
            .body(Bytes::new())
            .unwrap();
        let first = to_actix_request(first, None, &cache).unwrap();
        let second = to_actix_request(second, None, &cache).unwrap();
        let values = |request: &ActixRequest, name: &str| -> Vec<Vec<u8>> {
            let values = request.headers().get_all(name);
            values.map(|value| value.as_bytes().to_vec()).collect()
        };
        assert_eq!(values(&first, "x-request-id"), [b"batch/1".to_vec()]);
        assert_eq!(values(&second, "x-request-id"), [b"batch/2".to_vec()]);
        assert_eq!(
            values(&first, "accept"),
            [b"text/plain".to_vec(), b"application/json".to_vec()]
        );
        assert_eq!(values(&second, "accept"), [b"application/json".to_vec()]);
        assert_eq!(values(&second, "host"), [b"example.test".to_vec()]);
        assert_eq!((first.headers().len(), second.headers().len()), (4, 3));
    }

    #[test]
    fn responses_sharing_a_header_cache_each_keep_their_own_headers() {
        let cache = ResponseHeaders::default();
        let head = |etag: &'static str, cookies: &[&'static str]| {
            let mut head = ResponseHead::new(ActixStatus::OK);
            head.headers.append(
                ActixHeaderName::from_static("etag"),
                ActixHeaderValue::from_static(etag),
            );
            for cookie in cookies {
                head.headers.append(
                    ActixHeaderName::from_static("set-cookie"),
                    ActixHeaderValue::from_static(cookie),
                );
            }
            head
        };
        let first = to_http_response(&head("\"1\"", &["a=1", "b=2"]), Bytes::new(), &cache);
        let second = to_http_response(&head("\"2\"", &["b=2"]), Bytes::new(), &cache);
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.headers()["etag"], "\"1\"");
        assert_eq!(second.headers()["etag"], "\"2\"");
        let cookies = |response: &http::Response<Bytes>| -> Vec<String> {
            let values = response.headers().get_all("set-cookie").iter();
            values
                .map(|value| value.to_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(cookies(&first), ["a=1", "b=2"]);
        assert_eq!(cookies(&second), ["b=2"]);
    }

    #[test]
    fn bodies_arrive_whole_and_empty_bodies_as_no_payload() {
        let bytes = Bytes::from_static(b"\x00\x01binary\xff");
        let request = op("POST", "/").body(bytes.clone()).unwrap();
        let mut converted = to_actix_request(request, None, &RequestHeaders::default()).unwrap();
        let received = actix_web::rt::System::new().block_on(payload_bytes(&mut converted));
        assert_eq!(received, bytes);

        let request = op("GET", "/").body(Bytes::new()).unwrap();
        let mut converted = to_actix_request(request, None, &RequestHeaders::default()).unwrap();
        assert!(matches!(converted.take_payload(), Payload::None));
    }

    #[test]
    fn peer_address_and_batch_marker_reach_the_actix_request() {
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let request = op("GET", "/").body(Bytes::new()).unwrap();
        let converted = to_actix_request(request, Some(peer), &RequestHeaders::default()).unwrap();
        assert_eq!(converted.peer_addr(), Some(peer));
        assert!(converted.extensions().get::<BatchOp>().is_none());
    }

    #[test]
    fn outer_request_keeps_its_line_and_headers() {
        let request = TestRequest::post()
            .uri("/batch?trace=1")
            .insert_header(("host", "example.test"))
            .append_header(("cookie", "a=1"))
            .append_header(("cookie", "b=2"))
            .to_http_request();
        let parts = outer_parts(&request).unwrap();
        assert_eq!(parts.method, Method::POST);
        assert_eq!(parts.uri, "/batch?trace=1");
        assert_eq!(parts.version, Version::HTTP_11);
        assert_eq!(parts.headers["host"], "example.test");
        let cookies: Vec<_> = parts.headers.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn an_http2_authority_becomes_the_host_ops_inherit() {
        let request = TestRequest::post()
            .uri("http://example.test:8080/batch")
            .version(ActixVersion::HTTP_2)
            .to_http_request();
        let parts = outer_parts(&request).unwrap();
        assert_eq!(parts.version, Version::HTTP_2);
        assert_eq!(parts.headers["host"], "example.test:8080");
    }

    #[test]
    fn the_engine_response_keeps_status_headers_and_body() {
        let response = http::Response::builder()
            .status(413)
            .header("content-type", "application/problem+json")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        let converted = to_actix_response(response).unwrap();
        assert_eq!(converted.status().as_u16(), 413);
        assert_eq!(
            converted.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        assert_eq!(converted.headers().get_all("set-cookie").count(), 2);
        assert_eq!(
            converted.into_body().try_into_bytes().ok(),
            Some(Bytes::from_static(b"{}"))
        );
    }
}
