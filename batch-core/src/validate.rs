//! Validation: what makes an operation, or a whole batch, unacceptable before
//! anything runs.
//!
//! Each op is checked here (its id, url, method and headers) and becomes the request
//! it will be dispatched as; its dependencies are resolved by the planner, which
//! reports a fault there as a [`Violation`] too.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use thiserror::Error;

use crate::codec;
use crate::condition::{Condition, ConditionError};
use crate::config::Config;
use crate::ids::Ids;
use crate::links::ReferenceError;
use crate::model::{Field, Format, Operation, Text};
use crate::problem::Problem;
use crate::target::{self, TargetError};

/// The most headers one operation may set.
pub(crate) const MAX_OP_HEADERS: usize = 100;

/// Why an operation makes its batch unacceptable (422).
#[derive(Debug, Error)]
#[error("operation {op}: {kind}")]
pub(crate) struct Violation {
    pub(crate) op: usize,
    pub(crate) field: Field,
    pub(crate) kind: ViolationKind,
}

#[derive(Debug, Error)]
pub(crate) enum ViolationKind {
    #[error("url {0}")]
    Target(#[from] TargetError),
    #[error("method {0:?} is not an HTTP method token")]
    Method(String),
    #[error("header name {0:?} is not a valid header name")]
    HeaderName(String),
    #[error("header {0:?} has a value with CR, LF, NUL or other forbidden bytes")]
    HeaderValue(String),
    #[error(
        "header {0:?} may not be set by an operation (the batch's own request sets identity and framing)"
    )]
    ForbiddenHeader(String),
    #[error("more than {MAX_OP_HEADERS} headers")]
    TooManyHeaders,
    #[error("id {0:?} is already used by an earlier operation (ids are compared ignoring case)")]
    DuplicateId(Text),
    #[error("depends_on names {0:?}, which is no operation of this batch")]
    UnknownDependency(String),
    #[error("depends_on names {0:?}, which does not come earlier in a sequential batch")]
    ForwardDependency(String),
    #[error("depends_on forms a cycle")]
    Cycle,
    #[error("{0}")]
    Reference(#[from] ReferenceError),
    #[error("`if` {0}")]
    Condition(#[from] ConditionError),
}

impl Violation {
    /// The 422 for a batch in `format`, pointing at the offending field when the
    /// format is a JSON document of ops.
    pub(crate) fn into_problem(self, format: Format) -> Problem {
        let pointer = codec::pointer(format, self.op, &self.field);
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, self.to_string()).at(Some(self.op), pointer)
    }
}

/// An operation that passed every check of its own: the request it is dispatched
/// as. How it runs (its [`Terms`]) is kept apart, in [`OpTerms`].
///
/// The request alone: a checked op is moved into its list whole, and at 256 bytes
/// it takes `memcpy`'s short path (with the terms beside it, 336 bytes, it took the
/// long one, twice the instructions), and it has nothing else to drop.
#[derive(Debug)]
pub(crate) struct CheckedOp {
    /// The request, until the engine takes it to start the op; until the planner
    /// completes it, its headers are only the op's own and its extensions are empty.
    pub(crate) request: Option<Request<Bytes>>,
}

/// How an op runs, beyond its request: what most ops leave as it is.
#[derive(Debug, Default)]
pub(crate) struct Terms {
    /// The ids it waits for, as the client wrote them.
    pub(crate) depends_on: Vec<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) silent: bool,
    /// When set, the op runs when it holds, instead of when its dependencies
    /// succeeded.
    pub(crate) condition: Option<Condition>,
}

/// Each op's [`Terms`], by op index. Empty, with no room made, when every op's are
/// the default (most batches): the list is made, for every op, by the first op
/// with terms of its own.
#[derive(Debug, Default)]
pub(crate) struct OpTerms(Vec<Terms>);

impl OpTerms {
    /// Op `index`'s terms, to set, in a batch of `ops` ops (or about as many, for
    /// a batch read op by op, which [`fit`](Self::fit) then sizes).
    pub(crate) fn make(&mut self, index: usize, ops: usize) -> &mut Terms {
        if self.0.len() <= index {
            self.0.resize_with(ops.max(index + 1), Terms::default);
        }
        &mut self.0[index]
    }

    /// Sizes the terms, if any op has some of its own, for a batch of `ops` ops.
    pub(crate) fn fit(&mut self, ops: usize) {
        if !self.0.is_empty() {
            self.0.resize_with(ops, Terms::default);
        }
    }

    /// Whether no op has terms of its own.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Op `index`'s terms, if some op has terms of its own.
    pub(crate) fn get(&self, index: usize) -> Option<&Terms> {
        self.0.get(index)
    }

    /// The ids each op waits for, as the client wrote them, in op order; none at
    /// all when no op has terms of its own (so no op waits for another).
    pub(crate) fn depends_on(&self) -> impl ExactSizeIterator<Item = &[String]> {
        self.0.iter().map(|terms| &terms.depends_on[..])
    }

    /// Whether op `index` is answered with its id and status alone on success.
    pub(crate) fn silent(&self, index: usize) -> bool {
        self.get(index).is_some_and(|terms| terms.silent)
    }
}

/// Refuses a batch of more operations than the configuration allows (413).
pub(crate) fn count(ops: usize, config: &Config) -> Result<(), Problem> {
    if ops <= config.max_ops() {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the batch has {ops} operations; at most {} are allowed",
            config.max_ops()
        ),
    ))
}

/// The ops of a batch, each checked and built into its request, with their ids.
#[derive(Debug)]
pub(crate) struct Validated {
    pub(crate) ops: Vec<CheckedOp>,
    pub(crate) terms: OpTerms,
    pub(crate) ids: Ids,
}

/// Checks every op, in order, and builds its request; the first fault refuses the
/// batch.
pub(crate) fn validate(mut ops: Vec<Operation>, config: &Config) -> Result<Validated, Violation> {
    let ids = Ids::take(&mut ops);
    // Found for the whole batch at once, refused in its place in op order.
    let duplicate = ids.first_duplicate();
    let count = ops.len();
    let (mut checked, mut terms) = (Vec::with_capacity(count), OpTerms::default());
    // Each op is read where it lies, its parts taken out, rather than moved out whole.
    for (index, op) in ops.iter_mut().enumerate() {
        if duplicate == Some(index) {
            let id = ids.as_slice()[index].clone();
            return Err(Violation {
                op: index,
                field: Field::Id,
                kind: ViolationKind::DuplicateId(id),
            });
        }
        check(index, op, &mut checked, &mut terms, count, config)?;
    }
    Ok(Validated {
        ops: checked,
        terms,
        ids,
    })
}

/// Checks op `index` of a batch of about `count` ops (but for its id, which the
/// batch's [`Ids`] check) and builds its request at the end of `checked`, its
/// parts taken out of `op`; its terms, if it has any of its own, go into `terms`.
// Always inlined into the loops over ops: the request is made where it stays.
#[inline(always)]
pub(crate) fn check(
    index: usize,
    op: &mut Operation,
    checked: &mut Vec<CheckedOp>,
    terms: &mut OpTerms,
    count: usize,
    config: &Config,
) -> Result<(), Violation> {
    let violation = |field, kind| Violation {
        op: index,
        field,
        kind,
    };
    let method = parse_method(op.method.as_ref()).map_err(|kind| violation(Field::Method, kind))?;
    let uri = target::parse(std::mem::take(&mut op.url), config.path())
        .map_err(|err| violation(Field::Url, err.into()))?;
    if op.headers.len() > MAX_OP_HEADERS {
        return Err(violation(Field::Headers, ViolationKind::TooManyHeaders));
    }
    // Most ops set no header: their request keeps the empty map it is made with.
    let headers = if op.headers.is_empty() {
        None
    } else {
        let previous = checked
            .last()
            .and_then(|op: &CheckedOp| op.request.as_ref())
            .map(Request::headers);
        let own = own_headers(std::mem::take(&mut op.headers), previous, config)
            .map_err(|(name, kind)| violation(Field::Header(name), kind))?;
        Some(own)
    };
    if op.silent || op.timeout.is_some() || !op.depends_on.is_empty() {
        let own = terms.make(index, count);
        own.depends_on = std::mem::take(&mut op.depends_on);
        own.timeout = op.timeout;
        own.silent = op.silent;
    }
    // The request is made where it stays, in its checked op, and completed
    // there, rather than made, completed and moved in.
    checked.push(CheckedOp {
        request: Some(Request::new(std::mem::take(&mut op.body))),
    });
    if let Some(request) = checked.last_mut().and_then(|op| op.request.as_mut()) {
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        if let Some(headers) = headers {
            *request.headers_mut() = headers;
        }
    }
    Ok(())
}

// Always inlined into `check`, which is inlined into two loops.
#[inline(always)]
fn parse_method(method: Option<&Text>) -> Result<Method, ViolationKind> {
    let Some(method) = method else {
        return Ok(Method::GET);
    };
    // Nearly every op names a standard method: matched in any case, without the
    // upper-case copy an extension method is read from.
    const STANDARD: [Method; 7] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ];
    if let Some(standard) = STANDARD.into_iter().find(|standard| {
        standard
            .as_str()
            .as_bytes()
            .eq_ignore_ascii_case(method.as_bytes())
    }) {
        return Ok(standard);
    }
    let method = method.as_str();
    let upper = method.to_ascii_uppercase();
    let is_token = !upper.is_empty()
        && upper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !is_token {
        return Err(ViolationKind::Method(method.to_owned()));
    }
    Method::from_bytes(upper.as_bytes()).map_err(|_| ViolationKind::Method(method.to_owned()))
}

/// The headers an op sets itself, checked, in the order it set them. `previous`
/// holds those of the op before it, if it set any.
fn own_headers(
    own: Vec<(Text, Text)>,
    previous: Option<&HeaderMap>,
    config: &Config,
) -> Result<HeaderMap, (String, ViolationKind)> {
    let refused =
        |name: &Text, kind: fn(String) -> ViolationKind| (name.to_string(), kind(name.to_string()));
    // The value's own bytes, most often the batch body's, kept rather than copied
    // (the name's cannot be: `HeaderName` copies what it is made from).
    let value_of = |name: &Text, value: Text| {
        HeaderValue::from_maybe_shared(value.into_bytes())
            .map_err(|_| refused(name, ViolationKind::HeaderValue))
    };
    // The ops of a batch often set the same headers in the same order. When every
    // name is written exactly as the previous op's, in the order its map holds
    // them, this op's map is that one with its values in their places: appended
    // one by one they would make the same map, name by name, hash by hash.
    if let Some(previous) = previous.filter(|previous| same_names(&own, previous)) {
        let mut headers = previous.clone();
        for ((name, value), (_, slot)) in own.into_iter().zip(headers.iter_mut()) {
            *slot = value_of(&name, value)?;
        }
        return Ok(headers);
    }
    let mut headers = HeaderMap::with_capacity(own.len());
    // Otherwise a name written exactly as the previous op's name in its place is
    // still that name, checked already, and shared rather than made again (a name
    // `http` does not know is copied into memory of its own). Past a name set twice
    // the two lists are out of step, and the rest are made: never wrong, only slower.
    let mut previous = previous.map(HeaderMap::keys);
    for (name, value) in own {
        let known = previous
            .as_mut()
            .and_then(Iterator::next)
            .filter(|known| known.as_str().as_bytes() == name.as_bytes());
        let header_name = match known {
            Some(known) => known.clone(),
            None => {
                let made = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| refused(&name, ViolationKind::HeaderName))?;
                if config.header_policy().is_forbidden(&made) {
                    return Err(refused(&name, ViolationKind::ForbiddenHeader));
                }
                made
            }
        };
        let header_value = value_of(&name, value)?;
        headers.append(header_name, header_value);
    }
    Ok(headers)
}

/// Whether `own`'s names are, in order, exactly those `previous` yields with its
/// values (a name once for each of its values, the values of a name together).
fn same_names(own: &[(Text, Text)], previous: &HeaderMap) -> bool {
    own.len() == previous.len()
        && own
            .iter()
            .zip(previous.iter())
            .all(|((name, _), (known, _))| known.as_str().as_bytes() == name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Op 1 of a batch whose op 0 is fine.
    fn check(op: Operation) -> Result<CheckedOp, Violation> {
        let ok = Operation::new("GET", "/ok");
        validate(vec![ok, op], &Config::default()).map(|mut v| v.ops.remove(1))
    }

    #[test]
    fn an_op_becomes_its_request_with_its_own_headers() {
        let mut op = Operation::new("patch", "/a?x=1");
        op.headers = vec![("x-many".into(), "1".into()), ("x-many".into(), "2".into())];
        op.body = Bytes::from_static(b"{}");
        let checked = check(op).unwrap();
        let request = checked.request.as_ref().unwrap();
        assert_eq!(request.method(), Method::PATCH);
        assert_eq!(request.uri(), "/a?x=1");
        assert_eq!(request.headers().get_all("x-many").iter().count(), 2);
        assert_eq!(request.body(), "{}");
    }

    #[test]
    fn an_op_setting_the_names_of_the_op_before_is_checked_as_any() {
        let with_headers = |headers: &[(&str, &str)]| {
            let mut op = Operation::new("GET", "/a");
            op.headers = headers
                .iter()
                .map(|&(name, value)| (name.into(), value.into()))
                .collect();
            op
        };
        let first = with_headers(&[("x-a", "1"), ("x-b", "2"), ("x-b", "3"), ("x-c", "4")]);
        let validated = validate(
            vec![
                first.clone(),
                with_headers(&[("X-A", "5"), ("x-b", "6"), ("x-c", "7"), ("x-b", "8")]),
                with_headers(&[("x-a", "9"), ("x-b", "10"), ("x-b", "11"), ("x-c", "12")]),
            ],
            &Config::default(),
        )
        .unwrap();
        let seen = |index: usize| -> Vec<(String, String)> {
            let request = validated.ops[index].request.as_ref().unwrap();
            request
                .headers()
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                .collect()
        };
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|&(name, value)| (name.to_owned(), value.to_owned()))
                .collect()
        };
        assert_eq!(
            seen(1),
            pairs(&[("x-a", "5"), ("x-b", "6"), ("x-b", "8"), ("x-c", "7")])
        );
        assert_eq!(
            seen(2),
            pairs(&[("x-a", "9"), ("x-b", "10"), ("x-b", "11"), ("x-c", "12")])
        );
        // A name the op before did not set in its place is checked, even after
        // names that it did.
        let forbidden = with_headers(&[("x-a", "1"), ("cookie", "c")]);
        let violation = validate(vec![first.clone(), forbidden], &Config::default()).unwrap_err();
        assert_eq!(
            (violation.op, violation.field),
            (1, Field::Header("cookie".into()))
        );
        assert!(matches!(violation.kind, ViolationKind::ForbiddenHeader(_)));
        // And every value is checked, names all known or not.
        let bad = with_headers(&[("x-a", "1"), ("x-b", "2"), ("x-b", "a\r\nb"), ("x-c", "4")]);
        let violation = validate(vec![first, bad], &Config::default()).unwrap_err();
        assert_eq!(
            (violation.op, violation.field),
            (1, Field::Header("x-b".into()))
        );
        assert!(matches!(violation.kind, ViolationKind::HeaderValue(_)));
    }

    #[test]
    fn faults_are_violations_at_their_field() {
        let with_header = |name: &str, value: &str| {
            let mut op = Operation::new("GET", "/a");
            op.headers = vec![(name.into(), value.into())];
            op
        };
        let cases = [
            (Operation::new("GET", "http://x/"), Field::Url),
            (Operation::new("GE T", "/a"), Field::Method),
            (
                with_header("Authorization", "Bearer other"),
                Field::Header("Authorization".into()),
            ),
            (with_header("x-a", "a\r\nb"), Field::Header("x-a".into())),
            (Operation::new("GET", "/batch"), Field::Url),
        ];
        for (op, field) in cases {
            let violation = check(op).unwrap_err();
            assert_eq!((violation.op, &violation.field), (1, &field));
        }
        let mut dup = Operation::new("GET", "/a");
        dup.id = Some("0".into());
        assert!(matches!(
            check(dup).unwrap_err().kind,
            ViolationKind::DuplicateId(_)
        ));
        let mut many = Operation::new("GET", "/a");
        many.headers = (0..=MAX_OP_HEADERS)
            .map(|i| (format!("x-{i}").into(), "v".into()))
            .collect();
        assert!(matches!(
            check(many).unwrap_err().kind,
            ViolationKind::TooManyHeaders
        ));
    }

    #[test]
    fn a_duplicate_id_is_refused_in_its_place_in_op_order() {
        let with_id = |id: &str, url: &str| {
            let mut op = Operation::new("GET", url);
            op.id = Some(id.to_owned().into());
            op
        };
        let fault = |ops| {
            let violation = validate(ops, &Config::default()).unwrap_err();
            (violation.op, violation.field, violation.kind.to_string())
        };
        // An earlier op's own fault comes first; within an op, its id before its url.
        let (op, field, _) = fault(vec![
            with_id("a", "/a"),
            with_id("b", "//b"),
            with_id("A", "/c"),
        ]);
        assert_eq!((op, field), (1, Field::Url));
        let (op, field, message) = fault(vec![
            with_id("a", "/a"),
            with_id("b", "/b"),
            with_id("B", "//c"),
            with_id("A", "/d"),
        ]);
        assert_eq!((op, field), (2, Field::Id));
        assert!(message.contains("\"B\" is already used"), "{message}");
    }

    #[test]
    fn violations_point_into_the_document_of_their_format() {
        let violation = check(Operation::new("GET", "//x")).unwrap_err();
        let problem = violation.into_problem(Format::Graph);
        assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            (problem.op(), problem.pointer()),
            (Some(1), Some("/requests/1/url"))
        );
    }

    #[test]
    fn too_many_ops_is_413() {
        let config = Config::default();
        assert_eq!(
            count(51, &config).unwrap_err().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert!(count(50, &config).is_ok());
    }

    #[test]
    fn methods_are_case_insensitive_tokens() {
        assert_eq!(
            parse_method(Some(&Text::from("patch"))).unwrap(),
            Method::PATCH
        );
        assert_eq!(parse_method(Some(&Text::from("Get"))).unwrap(), Method::GET);
        assert_eq!(
            parse_method(Some(&Text::from("OPTIONS"))).unwrap(),
            Method::OPTIONS
        );
        assert_eq!(
            parse_method(Some(&Text::from("trace"))).unwrap(),
            Method::TRACE
        );
        assert_eq!(
            parse_method(Some(&Text::from("connect"))).unwrap(),
            Method::CONNECT
        );
        assert!(parse_method(Some(&Text::from("GE T"))).is_err());
        assert_eq!(
            parse_method(Some(&Text::from("PROPFIND")))
                .unwrap()
                .as_str(),
            "PROPFIND"
        );
        assert!(parse_method(Some(&Text::from(""))).is_err());
        assert!(parse_method(Some(&Text::from("GET\n"))).is_err());
    }
}
