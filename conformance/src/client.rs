//! A plain HTTP/1.1 client over hyper, for sending scenario steps to a server, and
//! for the upgrades that open sockets.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::client::legacy::{Client as HyperClient, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use thiserror::Error;

/// The longest one exchange may take before it counts as failed.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP/1.1 client bound to one base URL (`http://host:port`, no path).
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    inner: HyperClient<HttpConnector, Full<Bytes>>,
}

/// A response as the runner needs it: the whole body, and how long it took.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// From sending the request to having read the whole body.
    pub elapsed: Duration,
}

/// Why a request got no response.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The base URL and path do not form a URL, or a header is invalid.
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    /// The connection failed.
    #[error("the request failed: {0}")]
    Send(#[from] hyper_util::client::legacy::Error),
    /// The response body could not be read.
    #[error("the response body could not be read: {0}")]
    Body(#[from] hyper::Error),
    /// No connection to the server could be opened.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The server answered 101 but the connection could not be taken over.
    #[error("the upgraded connection was not handed over: {0}")]
    Upgrade(#[source] hyper::Error),
    /// No response within the time limit.
    #[error("no response within {} s", EXCHANGE_TIMEOUT.as_secs())]
    Timeout,
}

impl Client {
    /// A client for the server at `base` (such as `http://127.0.0.1:8080`); a trailing
    /// slash is ignored.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            // Every request on a connection of its own: a server may close a kept-alive
            // connection after any answer (actix-web does after refusing a request
            // whose body it did not read), and a step must not fail for another's.
            inner: HyperClient::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build_http(),
        }
    }

    /// Sends `method path` with `headers` and `body`, and reads the whole response.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Exchange, ClientError> {
        let request = self.request(method, path, headers, body)?;
        let started = Instant::now();
        let exchange = async {
            let response = self.inner.request(request).await?;
            read(response, started).await
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Sends `method path` as [`Client::send`] does, and reads the response as it
    /// arrives: each chunk of the body with the time it arrived at, since the
    /// request was sent.
    pub async fn send_streamed(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<(Exchange, Vec<(Duration, Bytes)>), ClientError> {
        let request = self.request(method, path, headers, body)?;
        let started = Instant::now();
        let exchange = async {
            let response = self.inner.request(request).await?;
            let (parts, mut body) = response.into_parts();
            let mut chunks = Vec::new();
            let mut whole = Vec::new();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    whole.extend_from_slice(&data);
                    chunks.push((started.elapsed(), data));
                }
            }
            let exchange = Exchange {
                status: parts.status,
                headers: parts.headers,
                body: Bytes::from(whole),
                elapsed: started.elapsed(),
            };
            Ok((exchange, chunks))
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Sends `GET path` with `headers`, which ask to switch protocols: a `101`
    /// answer comes with the connection the server handed over; any other is read
    /// whole, as [`Client::send`] reads it.
    pub async fn upgrade(
        &self,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<(Exchange, Option<Upgraded>), ClientError> {
        let mut request = self.request("GET", path, headers, Bytes::new())?;
        let authority = request
            .uri()
            .authority()
            .map(|authority| authority.as_str().to_owned())
            .unwrap_or_default();
        // On a connection of its own the target is origin-form, the host a header.
        if !request.headers().contains_key(http::header::HOST) {
            let host = http::HeaderValue::from_str(&authority).map_err(http::Error::from)?;
            request.headers_mut().insert(http::header::HOST, host);
        }
        let origin_form = request
            .uri()
            .path_and_query()
            .map_or("/", |target| target.as_str())
            .parse::<Uri>()
            .map_err(http::Error::from)?;
        *request.uri_mut() = origin_form;
        let started = Instant::now();
        let exchange = async {
            // A connection of its own, as WebSocket clients open: a server may close a
            // connection after refusing an upgrade on it, and a pooled one would
            // carry that into the next request.
            let stream = tokio::net::TcpStream::connect(authority)
                .await
                .map_err(ClientError::Connect)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection.with_upgrades());
            let mut response = sender.send_request(request).await?;
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                return Ok((read(response, started).await?, None));
            }
            let upgraded = hyper::upgrade::on(&mut response)
                .await
                .map_err(ClientError::Upgrade)?;
            let (parts, _) = response.into_parts();
            let exchange = Exchange {
                status: parts.status,
                headers: parts.headers,
                body: Bytes::new(),
                elapsed: started.elapsed(),
            };
            Ok((exchange, Some(upgraded)))
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(http::Error::from)?;
        let method = Method::from_bytes(method.as_bytes()).map_err(http::Error::from)?;
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        Ok(request.body(Full::new(body))?)
    }
}

/// Reads a whole response.
async fn read(response: Response<Incoming>, started: Instant) -> Result<Exchange, ClientError> {
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Exchange {
        status: parts.status,
        headers: parts.headers,
        body,
        elapsed: started.elapsed(),
    })
}
