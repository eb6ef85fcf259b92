//! The client: where batches go, what they carry, and what the server takes.

use std::sync::Arc;
use std::time::Duration;

use batch_core::{Capabilities, OpResult, Operation, ResultBody};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tokio::sync::OnceCell;

use crate::batch::Batch;
use crate::error::Error;
use crate::response::OpResponse;
use crate::retry::RetryPolicy;
use crate::wire::WireFormat;

/// A client of one batch endpoint. Cheap to clone: clones share connections and
/// what was learnt of the server.
///
/// The server's limits are asked for once, with `OPTIONS` on the batch URL, the
/// first time a batch is sent; a server that does not answer them is assumed to
/// have the defaults ([`Capabilities::default`]) and to keep no idempotency keys.
///
/// When the server says it keeps idempotency keys ([`Capabilities::idempotency`]),
/// every batch carries a fresh random `Idempotency-Key`, sent again with each resend
/// of that batch, so a batch whose answer was lost is sent again without the risk
/// of running twice ([`ClientBuilder::idempotency_keys`]).
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) url: reqwest::Url,
    pub(crate) headers: HeaderMap,
    pub(crate) format: WireFormat,
    pub(crate) concurrency: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) idempotency_keys: bool,
    capabilities: OnceCell<Capabilities>,
}

impl Client {
    /// A client of the batch endpoint at `url` (`http://host:port/batch`), with
    /// the defaults.
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// Starts a client of the batch endpoint at `url`.
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            headers: Vec::new(),
            format: WireFormat::Native,
            concurrency: 4,
            retry: RetryPolicy::default(),
            idempotency_keys: true,
            capabilities: None,
            http: None,
        }
    }

    /// A new, empty batch to add ops to.
    pub fn batch(&self) -> Batch {
        Batch::new(self.clone())
    }

    /// The batch endpoint's URL.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// What the server advertises (`OPTIONS` on the batch URL, asked once), or the
    /// defaults when it does not say, without `idempotency` and `streaming`: such a
    /// server is not known to keep keys, nor to stream.
    pub async fn capabilities(&self) -> &Capabilities {
        self.inner
            .capabilities
            .get_or_init(|| async {
                self.discover().await.unwrap_or_else(|| {
                    let mut assumed = Capabilities::default();
                    assumed.idempotency = false;
                    assumed.streaming = false;
                    assumed
                })
            })
            .await
    }

    async fn discover(&self) -> Option<Capabilities> {
        let response = self
            .inner
            .http
            .request(Method::OPTIONS, self.inner.url.clone())
            .headers(self.inner.headers.clone())
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    }

    /// Sends `op` on its own, as a plain request to the server (its url resolved
    /// against the batch URL's origin), with the client's headers: what a batch
    /// saves is measured against this.
    pub async fn send_single(&self, op: &Operation) -> Result<OpResponse, Error> {
        let url = self
            .inner
            .url
            .join(op.url.as_str())
            .map_err(|err| Error::Url(format!("{}: {err}", op.url)))?;
        let method = Method::from_bytes(op.method.as_deref().unwrap_or("GET").as_bytes())
            .map_err(|err| Error::Url(format!("method: {err}")))?;
        let mut headers = self.inner.headers.clone();
        for (name, value) in &op.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|err| Error::Header(format!("{name}: {err}")))?,
                HeaderValue::from_str(value)
                    .map_err(|err| Error::Header(format!("{name}: {err}")))?,
            );
        }
        let response = self
            .inner
            .http
            .request(method, url)
            .headers(headers)
            .body(op.body.clone())
            .send()
            .await?;
        let mut result = OpResult::new(op.id.clone().unwrap_or_default(), response.status());
        result.headers = response.headers().clone();
        let body = response.bytes().await?;
        result.body = ResultBody::classify(&result.headers, body);
        Ok(OpResponse::new(0, result.id.to_string(), result, 1))
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    url: String,
    headers: Vec<(String, String)>,
    format: WireFormat,
    concurrency: usize,
    retry: RetryPolicy,
    idempotency_keys: bool,
    capabilities: Option<Capabilities>,
    http: Option<reqwest::Client>,
}

impl ClientBuilder {
    /// Sends `name: value` with every batch (every op inherits what the server
    /// lets it, `authorization` among them).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends batches in `format` (default [`WireFormat::Native`]).
    pub fn format(mut self, format: WireFormat) -> Self {
        self.format = format;
        self
    }

    /// Sends at most `batches` batches at once when a list is split (default 4).
    pub fn concurrency(mut self, batches: usize) -> Self {
        self.concurrency = batches.max(1);
        self
    }

    /// Retries ops and batches the server asked to send later, by `policy`
    /// (default [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sends every batch with a fresh `Idempotency-Key` when the server keeps keys
    /// (`true`, the default), so a batch whose answer was lost is sent again with
    /// its key and runs at most once; `false` sends no key, and such a batch is sent
    /// again only when all its ops have idempotent methods (see [`RetryPolicy`]).
    pub fn idempotency_keys(mut self, send: bool) -> Self {
        self.idempotency_keys = send;
        self
    }

    /// Uses `capabilities` instead of asking the server: to split within limits
    /// lower than the server's, or for a server that does not answer `OPTIONS`.
    /// Keys are sent only when it says `idempotency`.
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = Some(capabilities);
        self
    }

    /// Sends through `http` (proxies, TLS roots, timeouts of your own) instead of
    /// a client with reqwest's defaults.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The client; fails on a URL or header that cannot be used.
    pub fn build(self) -> Result<Client, Error> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|err| Error::Url(format!("{}: {err}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Url(format!("{}: not http or https", self.url)));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let parsed_name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|err| Error::Header(format!("{name}: {err}")))?;
            let parsed_value = HeaderValue::from_str(value.trim())
                .map_err(|err| Error::Header(format!("{name}: {err}")))?;
            headers.append(parsed_name, parsed_value);
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                url,
                headers,
                format: self.format,
                concurrency: self.concurrency,
                retry: self.retry,
                idempotency_keys: self.idempotency_keys,
                capabilities: self
                    .capabilities
                    .map_or_else(OnceCell::new, |known| OnceCell::new_with(Some(known))),
            }),
        })
    }
}
