//! Header policy: what an operation inherits from the outer request, what it may set,
//! and how the two are laid together into the op's request.

use std::borrow::Cow;

use http::header::Entry;
use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::stream::accept;

/// Headers that describe one connection hop, never the message (RFC 9110 §7.6.1).
pub(crate) const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The connection-scoped headers a proxy drops from a message it forwards (RFC 9110
/// §7.6.1): what an HTTP library writes into every request it sends, whatever the
/// request is.
const CONNECTION_SCOPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
];

/// Whether `name` (any case) is a connection-scoped header, which describes the
/// connection a request came on rather than the request itself.
pub(crate) fn is_connection_scoped(name: &str) -> bool {
    CONNECTION_SCOPED
        .iter()
        .any(|scoped| scoped.eq_ignore_ascii_case(name))
}

/// Headers that describe the outer body or how its answer may be encoded, which no
/// operation shares: an op's body is embedded in the batch's answer, so it must come
/// back unencoded (the batch's own answer may still be compressed as a whole).
const NOT_INHERITED: &[&str] = &[
    "content-length",
    "content-type",
    "content-encoding",
    "expect",
    "accept-encoding",
];

/// The lengths of the names in `lists`, as bits (every name is shorter than 64).
const fn lengths(lists: &[&[&str]]) -> u64 {
    let mut mask = 0;
    let mut list = 0;
    while list < lists.len() {
        let mut i = 0;
        while i < lists[list].len() {
            mask |= 1 << lists[list][i].len();
            i += 1;
        }
        list += 1;
    }
    mask
}

/// Whether `name` has one of the lengths in `mask` (see [`lengths`]).
fn length_in(mask: u64, name: &str) -> bool {
    name.len() < 64 && mask & (1 << name.len()) != 0
}

/// The lengths of the names in [`HOP_BY_HOP`] and [`NOT_INHERITED`]: most outer
/// names (`host`, `authorization`, `user-agent`, …) have none of them, and are
/// passed without a walk of both lists.
const NOT_INHERITED_LENGTHS: u64 = lengths(&[HOP_BY_HOP, NOT_INHERITED]);

/// How many names an op never inherits by default: [`HOP_BY_HOP`] and
/// [`NOT_INHERITED`].
const NEVER_INHERITED_LEN: usize = HOP_BY_HOP.len() + NOT_INHERITED.len();

/// The names of [`HOP_BY_HOP`] then [`NOT_INHERITED`], made once: an outer header
/// that goes is noted by its place here and removed by this name, not by a copy of
/// the outer one kept on the side.
static NEVER_INHERITED: [HeaderName; NEVER_INHERITED_LEN] = {
    let mut names = [const { HeaderName::from_static("x") }; NEVER_INHERITED_LEN];
    let mut at = 0;
    while at < NEVER_INHERITED_LEN {
        let name = if at < HOP_BY_HOP.len() {
            HOP_BY_HOP[at]
        } else {
            NOT_INHERITED[at - HOP_BY_HOP.len()]
        };
        // What it replaces, a static name, owns nothing.
        std::mem::forget(std::mem::replace(
            &mut names[at],
            HeaderName::from_static(name),
        ));
        at += 1;
    }
    names
};

/// Where `connection` is in [`NEVER_INHERITED`] (first of [`HOP_BY_HOP`]).
const CONNECTION_AT: usize = 0;

// `inherited` notes the names that go as bits of a `u32`, one per place.
const _: () = assert!(NEVER_INHERITED_LEN <= u32::BITS as usize);

/// Where an outer header named `name` is in [`NEVER_INHERITED`], if it is hop-by-hop
/// or in [`NOT_INHERITED`].
fn never_inherited(name: &str) -> Option<usize> {
    if !length_in(NOT_INHERITED_LENGTHS, name) {
        return None;
    }
    match HOP_BY_HOP.iter().position(|listed| *listed == name) {
        Some(at) => Some(at),
        None => NOT_INHERITED
            .iter()
            .position(|listed| *listed == name)
            .map(|at| HOP_BY_HOP.len() + at),
    }
}

/// Headers an operation may not set by default: identity, routing and framing.
const FORBIDDEN_IN_OPS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "authorization",
    "proxy-authorization",
    "cookie",
    "forwarded",
    "x-real-ip",
];

/// Every header name starting with this is forbidden in ops by default.
const FORBIDDEN_PREFIX: &str = "x-forwarded-";

/// The lengths of the names in [`HOP_BY_HOP`] and [`FORBIDDEN_IN_OPS`].
const FORBIDDEN_LENGTHS: u64 = lengths(&[HOP_BY_HOP, FORBIDDEN_IN_OPS]);

/// Whether an op may not set `name` by default: a walk of the lists only for a name
/// of one of their lengths.
fn forbidden_by_default(name: &str) -> bool {
    (length_in(FORBIDDEN_LENGTHS, name)
        && (HOP_BY_HOP.contains(&name) || FORBIDDEN_IN_OPS.contains(&name)))
        || name.starts_with(FORBIDDEN_PREFIX)
}

/// Decides which outer headers each operation inherits and which headers an
/// operation may set itself.
///
/// The defaults follow the native format (`docs/native-format.md`):
/// - an op inherits every outer header except hop-by-hop ones (and any named in
///   `connection`), `content-length`, `content-type`, `content-encoding`, `expect` and
///   `accept-encoding`; so `authorization` and `cookie` reach every op and each op
///   acts as the caller, and every op's body comes back unencoded;
/// - an op's own headers replace inherited headers of the same name;
/// - an op may not set `host`, `content-length`, `transfer-encoding`, hop-by-hop
///   headers, `authorization`, `proxy-authorization`, `cookie`, `forwarded`,
///   `x-forwarded-*` or `x-real-ip`: such a batch is refused with 422.
///
/// ```
/// use batch_core::HeaderPolicy;
/// use http::HeaderName;
///
/// let policy = HeaderPolicy::default()
///     // ops may carry their own tenant, which the outer request's must not override
///     .not_inherited(HeaderName::from_static("x-tenant"))
///     // ops may not choose their own request id
///     .forbid(HeaderName::from_static("x-request-id"))
///     // and they may say which scheme the client used, which the defaults forbid
///     .allow(HeaderName::from_static("x-forwarded-proto"));
/// assert!(policy.is_forbidden(&HeaderName::from_static("x-request-id")));
/// assert!(!policy.is_forbidden(&HeaderName::from_static("x-forwarded-proto")));
/// assert!(policy.is_forbidden(&HeaderName::from_static("x-forwarded-for")));
/// ```
#[derive(Debug, Clone, Default)]
pub struct HeaderPolicy {
    not_inherited: Vec<HeaderName>,
    /// Forbidden beyond the defaults (`forbidden_by_default`), which stay lists of
    /// `str`s: an op's name is screened by its length before any is compared,
    /// rather than compared with each of some fifteen `HeaderName`s.
    forbidden: Vec<HeaderName>,
    /// Allowed even where the defaults or an earlier [`HeaderPolicy::forbid`]
    /// forbid them.
    allowed: Vec<HeaderName>,
}

impl HeaderPolicy {
    /// Stops operations from inheriting `name` from the outer request.
    pub fn not_inherited(mut self, name: HeaderName) -> Self {
        self.not_inherited.push(name);
        self
    }

    /// Refuses batches in which an operation sets `name`.
    pub fn forbid(mut self, name: HeaderName) -> Self {
        self.allowed.retain(|n| n != name);
        self.forbidden.push(name);
        self
    }

    /// Lets operations set `name`, even where the defaults forbid it.
    ///
    /// Loosening identity headers (`authorization`, `cookie`) lets one batch act as
    /// several principals; do it only where every route authenticates on its own.
    pub fn allow(mut self, name: HeaderName) -> Self {
        self.forbidden.retain(|n| n != name);
        self.allowed.push(name);
        self
    }

    /// Whether an operation may not set `name`.
    pub fn is_forbidden(&self, name: &HeaderName) -> bool {
        if self.allowed.contains(name) {
            return false;
        }
        forbidden_by_default(name.as_str()) || self.forbidden.contains(name)
    }

    /// The headers every operation of a batch starts with, made once per batch from
    /// the `outer` request's: its own map when nothing else needs it any more, a copy
    /// when something does (a batch hook, or a socket's next message).
    pub(crate) fn inherited(&self, outer: Cow<'_, HeaderMap>) -> HeaderMap {
        // Most outer headers are inherited: keeping the map and removing the few that
        // are not is cheaper than adding the rest one by one. A map cannot lose names
        // while it is walked, so the one walk notes those of the lists that go, each
        // as its place's bit in one word (nothing to clear or count on the stack,
        // and `connection` among them with no compare of its own), and whether
        // `accept` is there (rather than a lookup each).
        let mut inherited = outer.into_owned();
        let mut accept = false;
        let mut gone = 0u32;
        for name in inherited.keys() {
            accept |= name == header::ACCEPT;
            if let Some(at) = never_inherited(name.as_str()) {
                gone |= 1 << at;
            }
        }
        let connection = gone & (1 << CONNECTION_AT) != 0;
        if connection {
            // So are the headers `connection` names, for the hop they came over: its
            // values are taken out of the map first, to read while the map loses them.
            let values: Vec<HeaderValue> = match inherited.entry(header::CONNECTION) {
                Entry::Occupied(entry) => entry.remove_entry_mult().1.collect(),
                Entry::Vacant(_) => Vec::new(),
            };
            let named = values
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .map(str::trim)
                .filter(|token| !token.is_empty());
            for name in named {
                inherited.remove(name);
            }
        }
        while gone != 0 {
            let at = gone.trailing_zeros() as usize;
            gone &= gone - 1;
            if let Some(name) = NEVER_INHERITED.get(at) {
                inherited.remove(name);
            }
        }
        // The configured names are looked up, not compared with every outer name.
        for name in &self.not_inherited {
            inherited.remove(name);
        }
        if accept {
            without_stream_ranges(&mut inherited);
        }
        inherited
    }
}

/// Removes from `headers`' `accept` the media ranges that ask for a streamed batch
/// answer (`application/x-ndjson`, `application/jsonl`, `text/event-stream`): they
/// choose how the batch is answered, and each op is answered as in any batch. What
/// is left is kept; an `accept` with nothing left goes.
fn without_stream_ranges(headers: &mut HeaderMap) {
    let values: Vec<HeaderValue> = headers.get_all(header::ACCEPT).iter().cloned().collect();
    let streamed = |value: &HeaderValue| {
        value
            .to_str()
            .is_ok_and(|text| text.split(',').any(accept::is_stream_range))
    };
    if !values.iter().any(streamed) {
        return;
    }
    headers.remove(header::ACCEPT);
    for value in values {
        let Ok(text) = value.to_str() else {
            headers.append(header::ACCEPT, value);
            continue;
        };
        let kept: Vec<&str> = text
            .split(',')
            .filter(|range| !accept::is_stream_range(range))
            .map(str::trim)
            .filter(|range| !range.is_empty())
            .collect();
        if let Ok(value) = HeaderValue::from_str(&kept.join(", ")) {
            if !value.is_empty() {
                headers.append(header::ACCEPT, value);
            }
        }
    }
}

/// Puts `map` in `slot` in place of the map there.
///
/// A map that never had room for a header owns no memory: the one replaced is then
/// forgotten rather than dropped, which costs no walk of its parts.
#[inline(always)]
pub(crate) fn replace_map(slot: &mut HeaderMap, map: HeaderMap) {
    if slot.capacity() == 0 {
        std::mem::forget(std::mem::replace(slot, map));
    } else {
        *slot = map;
    }
}

/// Lays the `inherited` headers under an op's `own`: each of its own headers
/// replaces every inherited value of its name, in the order the op set them.
pub(crate) fn lay_under(own: &mut HeaderMap, inherited: HeaderMap) {
    let own_only = std::mem::replace(own, inherited);
    // Room for all at once (the map is rebuilt on each growth), and each name moved
    // in rather than cloned: `extend` replaces a name's values with the first it is
    // given and appends the rest.
    own.reserve(own_only.len());
    own.extend(own_only);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn outer() -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer t"),
            ("cookie", "a=1"),
            ("host", "example.com"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("content-type", "application/json"),
            ("content-length", "10"),
            ("content-encoding", "gzip"),
            ("expect", "100-continue"),
            ("accept-encoding", "gzip, br"),
            ("accept-language", "de"),
            ("x-tenant", "t1"),
        ] {
            map.append(name, HeaderValue::from_static(value));
        }
        map.append("accept-language", HeaderValue::from_static("fr"));
        map
    }

    #[test]
    fn ops_never_inherit_the_ranges_that_ask_for_a_streamed_answer() {
        let inherited = |accept: &[&str]| {
            let mut outer = HeaderMap::new();
            for value in accept {
                outer.append(header::ACCEPT, HeaderValue::from_str(value).unwrap());
            }
            let inherited = HeaderPolicy::default().inherited(Cow::Owned(outer));
            inherited
                .get_all(header::ACCEPT)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert!(inherited(&["application/x-ndjson"]).is_empty());
        assert!(inherited(&["text/event-stream"]).is_empty());
        assert_eq!(
            inherited(&["application/jsonl;q=0.9, application/json;q=0.5"]),
            ["application/json;q=0.5"]
        );
        assert_eq!(
            inherited(&["text/event-stream", "text/html"]),
            ["text/html"]
        );
        assert_eq!(inherited(&["application/json"]), ["application/json"]);
    }

    #[test]
    fn identity_and_message_headers_are_inherited_framing_is_not() {
        let inherited = HeaderPolicy::default().inherited(Cow::Owned(outer()));
        let outer = outer();
        let copied = HeaderPolicy::default().inherited(Cow::Borrowed(&outer));
        assert_eq!(copied, inherited, "a copy loses what the map itself does");
        assert_eq!(outer.len(), 14, "the outer request keeps all its headers");
        let mut names: Vec<_> = inherited.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "accept-language",
                "authorization",
                "cookie",
                "host",
                "x-tenant"
            ]
        );
        assert_eq!(inherited.get_all("accept-language").iter().count(), 2);
    }

    #[test]
    fn every_listed_name_goes_even_all_at_once() {
        let mut outer = HeaderMap::new();
        for name in HOP_BY_HOP.iter().chain(NOT_INHERITED) {
            outer.append(*name, HeaderValue::from_static("x"));
        }
        outer.append("x-kept", HeaderValue::from_static("1"));
        outer.append("x-gone", HeaderValue::from_static("1"));
        // Longer than any length the lists are screened by.
        let long = "x-".to_owned() + &"l".repeat(70);
        outer.append(
            HeaderName::try_from(&long).unwrap(),
            HeaderValue::from_static("1"),
        );
        let inherited = HeaderPolicy::default()
            .not_inherited(HeaderName::from_static("x-gone"))
            .inherited(Cow::Owned(outer));
        let mut names: Vec<_> = inherited.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["x-kept", long.as_str()]);
    }

    #[test]
    fn connection_goes_with_the_names_it_lists_when_alone_of_the_lists() {
        assert_eq!(NEVER_INHERITED[CONNECTION_AT], header::CONNECTION);
        let mut outer = HeaderMap::new();
        outer.append("x-kept", HeaderValue::from_static("1"));
        outer.append("x-hop", HeaderValue::from_static("1"));
        outer.append(header::CONNECTION, HeaderValue::from_static("x-hop"));
        let inherited = HeaderPolicy::default().inherited(Cow::Owned(outer));
        let names: Vec<_> = inherited.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn own_headers_replace_every_inherited_value_of_their_name() {
        let mut own = HeaderMap::new();
        own.append("accept-language", HeaderValue::from_static("fr"));
        own.append("x-many", HeaderValue::from_static("1"));
        own.append("x-many", HeaderValue::from_static("2"));
        let mut merged = own;
        lay_under(
            &mut merged,
            HeaderPolicy::default().inherited(Cow::Owned(outer())),
        );
        let values = |name| -> Vec<_> { merged.get_all(name).iter().collect() };
        assert_eq!(values("accept-language"), ["fr"]);
        assert_eq!(values("x-many"), ["1", "2"]);
        assert_eq!(values("authorization"), ["Bearer t"]);
    }

    #[test]
    fn configured_names_are_not_inherited() {
        let policy = HeaderPolicy::default().not_inherited(HeaderName::from_static("x-tenant"));
        assert!(
            !policy
                .inherited(Cow::Owned(outer()))
                .contains_key("x-tenant")
        );
    }

    #[test]
    fn default_deny_list_covers_identity_routing_and_framing() {
        let policy = HeaderPolicy::default();
        for name in [
            "host",
            "content-length",
            "transfer-encoding",
            "connection",
            "te",
            "upgrade",
            "authorization",
            "proxy-authorization",
            "cookie",
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-real-ip",
        ] {
            assert!(
                policy.is_forbidden(&HeaderName::from_static(name)),
                "{name}"
            );
        }
        for name in ["accept", "content-type", "if-match", "x-request-id"] {
            assert!(
                !policy.is_forbidden(&HeaderName::from_static(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn allow_and_forbid_override_each_other() {
        let cookie = HeaderName::from_static("cookie");
        let policy = HeaderPolicy::default().allow(cookie.clone());
        assert!(!policy.is_forbidden(&cookie));
        assert!(policy.forbid(cookie.clone()).is_forbidden(&cookie));
    }
}
