//! Resource URIs of socket messages: what a client may name, and the op path and
//! subscription each one stands for.

use crate::config::Config;
use crate::target::{self, TargetError};

/// A URI a socket message named, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceUri {
    /// The URI as the client wrote it.
    uri: String,
    /// Where its query starts, if it has one.
    query_at: Option<usize>,
    /// The path, normalized as the paths of changes are.
    key: String,
}

/// Why a URI is refused (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UriError {
    #[error("uri {0}")]
    Target(#[from] TargetError),
    #[error("uri must not target the socket endpoint")]
    Socket,
    #[error("uri must not carry a query here (only a subscribe's may)")]
    Query,
    #[error("uri must be a list URI, ending in '/', to create in")]
    NotList,
}

/// What a message may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A resource or list URI with a query (subscribe).
    Readable,
    /// A resource or list URI without a query (unsubscribe, patch, delete).
    Resource,
    /// A list URI, ending in `/` (create).
    List,
}

impl ResourceUri {
    /// Checks `uri` by the url rules of a batch op, refusing the socket path too.
    pub(crate) fn parse(uri: &str, expect: Expect, config: &Config) -> Result<Self, UriError> {
        target::check(uri, config.path())?;
        let query_at = uri.find('?');
        let path = &uri[..query_at.unwrap_or(uri.len())];
        if config
            .sockets()
            .is_some_and(|sockets| target::is_batch_path(path, sockets.path()))
        {
            return Err(UriError::Socket);
        }
        match expect {
            Expect::Readable => {}
            Expect::Resource | Expect::List if query_at.is_some() => return Err(UriError::Query),
            Expect::List if !path.ends_with('/') => return Err(UriError::NotList),
            Expect::Resource | Expect::List => {}
        }
        Ok(Self {
            uri: uri.to_owned(),
            query_at,
            key: target::normalize_path(path).into_owned(),
        })
    }

    /// The URI as the client wrote it.
    pub(crate) fn as_str(&self) -> &str {
        &self.uri
    }

    /// The resource path subscriptions and change events are known by: the URI
    /// without its query, normalized (`/items/%31` is `/items/1`); a list URI keeps
    /// its final `/`.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The url of the op the message runs, as the client wrote it: a list URI
    /// without its final `/` (`/items/` → `/items`, `/` stays `/`), with the query
    /// if there is one.
    pub(crate) fn op_url(&self) -> String {
        let written = &self.uri[..self.query_at.unwrap_or(self.uri.len())];
        let path = match written.strip_suffix('/') {
            Some(list) if !list.is_empty() => list,
            _ => written,
        };
        match self.query_at {
            Some(at) => format!("{path}{}", &self.uri[at..]),
            None => path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SocketConfig;

    fn config() -> Config {
        Config::builder()
            .sockets(SocketConfig::default())
            .build()
            .unwrap()
    }

    fn parse(uri: &str, expect: Expect) -> Result<ResourceUri, UriError> {
        ResourceUri::parse(uri, expect, &config())
    }

    #[test]
    fn list_uris_run_on_their_path_and_keep_their_slash_as_a_key() {
        let list = parse("/items/", Expect::List).unwrap();
        assert_eq!((list.key(), list.op_url().as_str()), ("/items/", "/items"));
        let root = parse("/", Expect::List).unwrap();
        assert_eq!((root.key(), root.op_url().as_str()), ("/", "/"));
        let read = parse("/items/7?verbose=1", Expect::Readable).unwrap();
        assert_eq!(
            (read.key(), read.op_url().as_str()),
            ("/items/7", "/items/7?verbose=1")
        );
        let listed = parse("/items/?limit=2", Expect::Readable).unwrap();
        assert_eq!(
            (listed.key(), listed.op_url().as_str()),
            ("/items/", "/items?limit=2")
        );
    }

    #[test]
    fn keys_are_normalized_and_op_urls_kept_as_written() {
        let read = parse("/items/%31?x=%41", Expect::Readable).unwrap();
        assert_eq!(
            (read.key(), read.op_url().as_str(), read.as_str()),
            ("/items/1", "/items/%31?x=%41", "/items/%31?x=%41")
        );
        let list = parse("/%69tems/", Expect::List).unwrap();
        assert_eq!(
            (list.key(), list.op_url().as_str()),
            ("/items/", "/%69tems")
        );
    }

    #[test]
    fn uris_follow_the_op_url_rules_and_spare_both_endpoints() {
        assert_eq!(
            parse("/a/../b", Expect::Resource),
            Err(UriError::Target(TargetError::DotSegment))
        );
        assert_eq!(
            parse("http://x/y", Expect::Resource),
            Err(UriError::Target(TargetError::NotOriginForm))
        );
        assert_eq!(
            parse("/Batch/", Expect::Readable),
            Err(UriError::Target(TargetError::NestedBatch))
        );
        assert_eq!(parse("/SOCKET", Expect::Readable), Err(UriError::Socket));
        assert_eq!(parse("/items/7?x", Expect::Resource), Err(UriError::Query));
        assert_eq!(parse("/items", Expect::List), Err(UriError::NotList));
        assert!(parse("/sockets", Expect::Resource).is_ok());
    }
}
