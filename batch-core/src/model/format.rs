//! The wire formats a batch can arrive in, as names only: the codecs that speak them
//! live in [`crate::codec`], which maps each `Format` to its codec.

/// A wire format the batch endpoint can accept, switched on and off with
/// [`ConfigBuilder::format`](crate::ConfigBuilder::format).
///
/// The format of a batch is chosen from its content type, then, for JSON, from the
/// document's shape. Every format but [`Format::Facebook`] is on by default: its form
/// body is one a browser sends cross-site without a preflight, so a page on another
/// origin could make a signed-in user's browser submit a batch (CSRF).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The native format: `application/json`, an object with `ops`.
    #[default]
    Native,
    /// Microsoft Graph / OData 4.01 JSON batching: `application/json`, an object with
    /// `requests`.
    Graph,
    /// Facebook Graph batching: `application/x-www-form-urlencoded` with a `batch`
    /// field. Off by default.
    Facebook,
    /// The aggregate array (Flask-Aggregator): `application/json`, an array of GET
    /// paths, answered as one object from path to body.
    Aggregate,
    /// `multipart/mixed` with one `application/http` request per part (Google APIs,
    /// OData, Flask-Batch).
    Multipart,
}

impl Format {
    /// Every format, in the order their switches are stored.
    pub(crate) const ALL: [Format; 5] = [
        Format::Native,
        Format::Graph,
        Format::Facebook,
        Format::Aggregate,
        Format::Multipart,
    ];

    /// The format's position in [`Format::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The format's name in logs: `native`, `graph`, `facebook`, `aggregate`,
    /// `multipart`.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Graph => "graph",
            Format::Facebook => "facebook",
            Format::Aggregate => "aggregate",
            Format::Multipart => "multipart",
        }
    }
}
