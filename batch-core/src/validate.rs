//! Validation of a decoded batch against the configuration, before anything runs.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, request::Parts};
use thiserror::Error;

use crate::codec::{Codec, Field};
use crate::config::Config;
use crate::model::BatchRequest;
use crate::plan::{Graph, Ids, Plan, PlannedOp, Shared};
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
    DuplicateId(String),
    #[error("depends_on names {0:?}, which is no operation of this batch")]
    UnknownDependency(String),
    #[error("depends_on names {0:?}, which does not come earlier in a sequential batch")]
    ForwardDependency(String),
    #[error("depends_on forms a cycle")]
    Cycle,
}

impl Violation {
    pub(crate) fn into_problem(self, codec: &dyn Codec) -> Problem {
        let pointer = codec.pointer(self.op, &self.field);
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, self.to_string()).at(Some(self.op), pointer)
    }
}

/// Checks every op and the dependency graph, and prepares each op's request:
/// the outer request's inherited headers and extensions, then the op's own.
pub(crate) fn validate(
    batch: BatchRequest,
    outer: &Parts,
    config: &Config,
    codec: &dyn Codec,
) -> Result<Plan, Problem> {
    if batch.ops.len() > config.max_ops() {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the batch has {} operations; at most {} are allowed",
                batch.ops.len(),
                config.max_ops()
            ),
        ));
    }
    let shared = Shared {
        headers: config.header_policy().inherited(&outer.headers),
        extensions: outer.extensions.clone(),
    };
    let mut ids = Ids::with_capacity(batch.ops.len());
    let mut depends_on = Vec::with_capacity(batch.ops.len());
    let mut ops = Vec::with_capacity(batch.ops.len());
    for (index, op) in batch.ops.into_iter().enumerate() {
        let violation = |field, kind| Violation {
            op: index,
            field,
            kind,
        };
        let id = op.id.unwrap_or_else(|| index.to_string());
        ids.push(id).map_err(|id| {
            violation(Field::Id, ViolationKind::DuplicateId(id)).into_problem(codec)
        })?;
        let method = parse_method(op.method.as_deref())
            .map_err(|kind| violation(Field::Method, kind).into_problem(codec))?;
        let uri = target::parse(op.url, config.path())
            .map_err(|err| violation(Field::Url, err.into()).into_problem(codec))?;
        if op.headers.len() > MAX_OP_HEADERS {
            return Err(
                violation(Field::Headers, ViolationKind::TooManyHeaders).into_problem(codec)
            );
        }
        let headers = own_headers(op.headers, config)
            .map_err(|(name, kind)| violation(Field::Header(name), kind).into_problem(codec))?;
        let mut request = Request::new(op.body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        depends_on.push(op.depends_on);
        ops.push(PlannedOp {
            request,
            timeout: op.timeout,
            silent: op.silent,
        });
    }
    let graph = Graph::build(&ids, &depends_on, batch.sequential)
        .map_err(|violation| violation.into_problem(codec))?;
    Ok(Plan {
        ids: ids.into_vec(),
        ops,
        shared,
        complete: false,
        graph,
        sequential: batch.sequential,
        on_error: batch.on_error,
        include_headers: batch.include_headers,
        layout: batch.layout,
    })
}

fn parse_method(method: Option<&str>) -> Result<Method, ViolationKind> {
    let Some(method) = method else {
        return Ok(Method::GET);
    };
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

/// The headers an op sets itself, checked, in the order it set them.
fn own_headers(
    own: Vec<(String, String)>,
    config: &Config,
) -> Result<HeaderMap, (String, ViolationKind)> {
    let mut headers = HeaderMap::with_capacity(own.len());
    for (name, value) in own {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| (name.clone(), ViolationKind::HeaderName(name.clone())))?;
        if config.header_policy().is_forbidden(&header_name) {
            return Err((name.clone(), ViolationKind::ForbiddenHeader(name)));
        }
        let header_value = HeaderValue::from_str(&value)
            .map_err(|_| (name.clone(), ViolationKind::HeaderValue(name.clone())))?;
        headers.append(header_name, header_value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::native::Native;
    use crate::model::Operation;

    fn outer() -> Parts {
        let (mut parts, ()) = Request::builder()
            .method("POST")
            .uri("/batch")
            .header("authorization", "Bearer outer")
            .header("accept-language", "de")
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.insert(7u32);
        parts
    }

    fn op(url: &str) -> Operation {
        Operation::new("get", url)
    }

    fn check(ops: Vec<Operation>) -> Result<Plan, Problem> {
        validate(
            BatchRequest::new(ops),
            &outer(),
            &Config::default(),
            &Native,
        )
    }

    #[test]
    fn ops_inherit_identity_and_extensions_and_override_headers() {
        let mut second = op("/b");
        second.headers = vec![
            ("Accept-Language".into(), "fr".into()),
            ("x-many".into(), "1".into()),
            ("x-many".into(), "2".into()),
        ];
        let mut plan = check(vec![op("/a?x=1"), second]).unwrap();
        plan.complete_all();
        let first = &plan.ops[0].request;
        assert_eq!(first.method(), Method::GET);
        assert_eq!(first.uri(), "/a?x=1");
        assert_eq!(first.headers()["authorization"], "Bearer outer");
        assert_eq!(first.headers()["accept-language"], "de");
        assert!(!first.headers().contains_key("content-type"));
        assert_eq!(first.extensions().get::<u32>(), Some(&7));
        let marker = first.extensions().get::<crate::BatchOp>();
        assert_eq!(marker.map(crate::BatchOp::index), Some(0));
        assert_eq!(plan.ids[0], "0");
        let second = &plan.ops[1].request;
        assert_eq!(second.headers()["accept-language"], "fr");
        assert_eq!(second.headers().get_all("x-many").iter().count(), 2);
    }

    #[test]
    fn faults_are_422_at_the_op_and_field() {
        let mut forbidden = op("/a");
        forbidden.headers = vec![("Authorization".into(), "Bearer other".into())];
        let mut crlf = op("/a");
        crlf.headers = vec![("x-a".into(), "a\r\nb".into())];
        let mut dup = op("/a");
        dup.id = Some("0".into());
        let cases = [
            (op("http://x/"), "/ops/1/url"),
            (Operation::new("GE T", "/a"), "/ops/1/method"),
            (forbidden, "/ops/1/headers/Authorization"),
            (crlf, "/ops/1/headers/x-a"),
            (dup, "/ops/1/id"),
            (op("/batch"), "/ops/1/url"),
        ];
        for (bad, pointer) in cases {
            let problem = check(vec![op("/ok"), bad]).unwrap_err();
            assert_eq!(
                problem.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{problem}"
            );
            assert_eq!((problem.op(), problem.pointer()), (Some(1), Some(pointer)));
        }
    }

    #[test]
    fn too_many_ops_is_413() {
        let ops = (0..51).map(|_| op("/a")).collect();
        assert_eq!(
            check(ops).unwrap_err().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert!(check((0..50).map(|_| op("/a")).collect()).is_ok());
    }

    #[test]
    fn methods_are_case_insensitive_tokens() {
        assert_eq!(parse_method(Some("patch")).unwrap(), Method::PATCH);
        assert_eq!(parse_method(Some("PROPFIND")).unwrap().as_str(), "PROPFIND");
        assert!(parse_method(Some("")).is_err());
        assert!(parse_method(Some("GET\n")).is_err());
    }
}
