//! What the hub and the store both start from: a Redis client and a runtime.

use redis::Client;
use tokio::runtime::Handle;

use crate::error::RedisHubError;

/// A client for `url` and the runtime to run on: `runtime`, or the current one.
pub(crate) fn open(url: &str, runtime: Option<Handle>) -> Result<(Client, Handle), RedisHubError> {
    // The client's own message names what is wrong without echoing the URL.
    let client = Client::open(url).map_err(|err| RedisHubError::Url(err.to_string()))?;
    let runtime = match runtime {
        Some(handle) => handle,
        None => Handle::try_current().map_err(|_| RedisHubError::NoRuntime)?,
    };
    Ok((client, runtime))
}
