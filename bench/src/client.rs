//! One client connection, as a real client would hold it: HTTP/1.1 keep-alive, or
//! HTTP/2 with prior knowledge (h2c) multiplexing every request on one connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::BenchError;

/// A response as the bench needs it: the status and the whole body.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

/// One HTTP/1.1 keep-alive connection: requests go one at a time.
pub(crate) struct Http1 {
    addr: SocketAddr,
    send: http1::SendRequest<Full<Bytes>>,
    connection: JoinHandle<Result<(), hyper::Error>>,
}

impl Http1 {
    /// Connects to `addr` with `TCP_NODELAY`, as latency-minded clients do.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self, BenchError> {
        let (send, connection) = http1::handshake(TokioIo::new(stream(addr).await?)).await?;
        let connection = tokio::spawn(connection);
        Ok(Self {
            addr,
            send,
            connection,
        })
    }

    /// Closes the connection and waits until it is closed. Merely dropped, it stays
    /// open until the client's runtime next runs, and a server stopped meanwhile
    /// waits for it (actix for its whole shutdown timeout).
    pub(crate) async fn close(self) {
        drop(self.send);
        let _ = self.connection.await;
    }

    /// Sends one request and reads the whole response.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        json: Option<Bytes>,
    ) -> Result<Reply, BenchError> {
        self.send_with(method, path, json, &[]).await
    }

    /// Sends one request with `headers` besides the usual ones and reads the whole
    /// response.
    pub(crate) async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        json: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, BenchError> {
        let mut request =
            request(method, path, json.is_some()).header(header::HOST, self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(json.unwrap_or_default()))?;
        self.send.ready().await?;
        read(self.send.send_request(request).await?).await
    }
}

impl Http1 {
    /// Sends one request with `headers` and reads the response as it arrives: when
    /// its first line (up to the first `\n`) had arrived, counted from sending,
    /// and the whole reply.
    pub(crate) async fn send_timing_first_line(
        &mut self,
        method: Method,
        path: &str,
        json: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<(Duration, Reply), BenchError> {
        let mut request =
            request(method, path, json.is_some()).header(header::HOST, self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(json.unwrap_or_default()))?;
        self.send.ready().await?;
        let started = Instant::now();
        let response = self.send.send_request(request).await?;
        let status = response.status();
        let mut body = response.into_body();
        let mut whole = Vec::new();
        let mut first_line = None;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                whole.extend_from_slice(&data);
                if first_line.is_none() && data.contains(&b'\n') {
                    first_line = Some(started.elapsed());
                }
            }
        }
        let first_line = first_line.unwrap_or_else(|| started.elapsed());
        let body = Bytes::from(whole);
        Ok((first_line, Reply { status, body }))
    }
}

/// One HTTP/2 connection (h2c, prior knowledge): concurrent requests are
/// multiplexed on it.
pub(crate) struct Http2 {
    base: String,
    send: http2::SendRequest<Full<Bytes>>,
    connection: JoinHandle<Result<(), hyper::Error>>,
}

impl Http2 {
    /// Connects to `addr` and speaks HTTP/2 from the first byte.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self, BenchError> {
        let io = TokioIo::new(stream(addr).await?);
        let (send, connection) = http2::handshake(TokioExecutor::new(), io).await?;
        let connection = tokio::spawn(connection);
        Ok(Self {
            base: format!("http://{addr}"),
            send,
            connection,
        })
    }

    /// Closes the connection and waits until it is closed (see [`Http1::close`]).
    pub(crate) async fn close(self) {
        drop(self.send);
        let _ = self.connection.await;
    }

    /// Sends one GET and reads the whole response.
    pub(crate) async fn get(&self, path: &str) -> Result<Reply, BenchError> {
        let mut send = self.send.clone();
        let request =
            request(Method::GET, &format!("{}{path}", self.base), false).body(Full::default())?;
        send.ready().await?;
        read(send.send_request(request).await?).await
    }
}

async fn stream(addr: SocketAddr) -> Result<TcpStream, BenchError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|err| BenchError::Io(format!("connecting to {addr}"), err))?;
    stream
        .set_nodelay(true)
        .map_err(|err| BenchError::Io("setting TCP_NODELAY".into(), err))?;
    Ok(stream)
}

/// A request for `uri`, declared JSON when it has a `json` body.
pub(crate) fn request(method: Method, uri: &str, json: bool) -> http::request::Builder {
    let builder = Request::builder().method(method).uri(uri);
    if json {
        builder.header(header::CONTENT_TYPE, "application/json")
    } else {
        builder
    }
}

async fn read(response: http::Response<hyper::body::Incoming>) -> Result<Reply, BenchError> {
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Reply { status, body })
}
