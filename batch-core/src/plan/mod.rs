//! Planning: a decoded batch becomes a [`Plan`], every op checked and its
//! dependencies resolved into a graph, before anything runs.

mod graph;

use std::borrow::Cow;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{Extensions, HeaderMap, HeaderValue, Request, request::Parts};

use crate::codec;
use crate::condition::{Condition, ConditionError};
use crate::config::Config;
use crate::headers;
use crate::ids::{self, Ids};
use crate::links::{self, Found, Links};
use crate::model::{BatchOp, BatchRequest, Field, Format, Layout, OnError, Operation, Text};
use crate::observe::{BatchId, OpIds, X_REQUEST_ID};
use crate::problem::Problem;
use crate::validate::{self, CheckedOp, OpTerms, Validated, Violation, ViolationKind};
pub(crate) use graph::Graph;
use graph::{GraphError, GraphErrorKind};

/// A validated batch: its ops, who waits for whom, and how to run them.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Each op's id, by index.
    pub(crate) ids: Vec<Text>,
    /// The ops; each one's request is completed by [`Shared::complete`].
    pub(crate) ops: Vec<CheckedOp>,
    /// How each op runs, beyond its request.
    pub(crate) terms: OpTerms,
    /// What of each op's request comes from other ops' results, filled in as it
    /// starts, by op index. Empty, with no room made, when no op has any (most
    /// batches): kept apart from the ops, whose drop then has no box to look at.
    pub(crate) links: Vec<Option<Box<Links>>>,
    /// What every op's request takes from the outer request.
    pub(crate) shared: Shared,
    /// Whether every op's request is complete already.
    pub(crate) complete: bool,
    pub(crate) graph: Graph,
    pub(crate) sequential: bool,
    pub(crate) on_error: OnError,
    pub(crate) include_headers: bool,
    /// The request's layout, for the codec to answer in the same shape.
    pub(crate) layout: Layout,
}

/// Checks every op of the `decoded` batch (unless they were checked as it was read)
/// and resolves its dependencies, refusing the batch (413, 422) at the first fault,
/// in op order. `id` is the batch's, which each op's
/// `x-request-id` is derived from.
///
/// The ops inherit from the `outer` request: its headers and extensions themselves
/// when they are taken from it, copies when it is only lent.
///
/// The plan is boxed: it passes through the endpoint's futures to the engine's, and
/// its 300 bytes, moved by value, would be copied at every step and held twice by
/// each future.
// A hint only: `planned`, its caller, is inlined into the batch's future, and this
// one forced in there too cost a batch ~75 instructions more than the call.
#[inline]
pub(crate) fn plan(
    decoded: Decoded,
    outer: Outer<'_>,
    config: &Config,
    id: &BatchId,
) -> Result<Box<Plan>, Problem> {
    let count = match &decoded {
        Decoded::Batch(batch) => batch.ops.len(),
        Decoded::Checked(checked) => checked.validated.ops.len(),
    };
    validate::count(count, config)?;
    let format = match &decoded {
        Decoded::Batch(batch) => batch.layout.format,
        Decoded::Checked(_) => Format::Native,
    };
    let refuse = |violation: Violation| violation.into_problem(format);
    let (headers, mut extensions) = match outer {
        Outer::Taken(outer) => (
            Cow::Owned(std::mem::take(&mut outer.headers)),
            std::mem::take(&mut outer.extensions),
        ),
        Outer::Lent(outer) => (Cow::Borrowed(&outer.headers), outer.extensions.clone()),
    };
    // Each op's marker is this one, copied with the extensions and given the op's
    // index: a copy of a map that holds it already has its room, where inserting it
    // into each op's copy grew the map anew (~100 instructions an op).
    // An outer request with no extensions of its own (nothing in front of the
    // endpoint put any in) gets a copy of a map made once that holds the marker
    // alone: an insert into an empty map makes its table and grows it.
    if extensions.is_empty() {
        extensions = marked().clone();
    } else {
        extensions.insert(BatchOp { index: 0 });
    }
    let mut headers = config.header_policy().inherited(headers);
    // The outer request's id names the batch; each op gets its own, in the place the
    // batch's holds in the inherited headers (so that adding it grows no op's map).
    let op_ids = id.op_ids(count);
    // A batch of one op hands it these very headers: its id goes in at once, not
    // the batch's to be replaced by it when the op starts.
    let inherited_id = if count == 1 {
        op_ids.op(0)
    } else {
        op_ids.batch()
    };
    if let Some(id) = inherited_id {
        headers.insert(X_REQUEST_ID, id);
    }
    // Where the batch's value lies among the inherited values, for the ops that set
    // no header: their map is a copy of these, and the value is taken from there
    // without a walk that compares names.
    let batch_id_at = if count > 1 {
        headers.values().position(|value| op_ids.is_batch(value))
    } else {
        None
    };
    let shared = Shared {
        headers,
        extensions,
        op_ids,
        batch_id_at,
    };
    let (batch, pending, validated) = match decoded {
        Decoded::Batch(mut batch) => {
            let mut ops = std::mem::take(&mut batch.ops);
            // Each step's answer matched where it comes, not mapped into another
            // `Result` first: the mapped one (a graph, a list) was moved once more
            // on its way out.
            let pending = match pending(&mut ops, format) {
                Ok(pending) => pending,
                Err(violation) => return Err(refuse(violation)),
            };
            match validate::validate(ops, config) {
                Ok(validated) => (batch, pending, validated),
                Err(violation) => return Err(refuse(violation)),
            }
        }
        Decoded::Checked(checked) => (checked.batch, checked.pending, checked.validated),
    };
    let Validated {
        ops,
        mut terms,
        ids,
    } = validated;
    // Most batches have no references or conditions (nor a format with links of
    // its own), and no op with terms of its own: nothing to link, and a graph
    // without edges. Known here, neither is called (~100 instructions a batch).
    let links = if pending.is_empty() && !names_by_location(format) {
        Vec::new()
    } else {
        match link(&ops, &mut terms, pending, &ids, format, batch.sequential) {
            Ok(links) => links,
            Err(violation) => return Err(refuse(violation)),
        }
    };
    let graph = if terms.is_empty() {
        Graph::default()
    } else {
        match Graph::build(&ids, terms.depends_on(), batch.sequential) {
            Ok(graph) => graph,
            Err(error) => return Err(refuse(violation(error))),
        }
    };
    Ok(Box::new(Plan {
        ids: ids.into_vec(),
        ops,
        terms,
        links,
        shared,
        complete: false,
        graph,
        sequential: batch.sequential,
        on_error: batch.on_error,
        include_headers: batch.include_headers,
        layout: batch.layout,
    }))
}

/// Extensions that hold the [`BatchOp`] marker alone, made once per process.
fn marked() -> &'static Extensions {
    static MARKED: OnceLock<Extensions> = OnceLock::new();
    MARKED.get_or_init(|| {
        let mut marked = Extensions::new();
        marked.insert(BatchOp { index: 0 });
        marked
    })
}

/// Makes the extensions the ops of a request with none of its own start from, if
/// they are not made yet: an endpoint does it when it is made, so that no batch
/// pays for it.
pub(crate) fn make_marked() {
    marked();
}

/// What an op inherits from `slot`: for the `last` op, the value itself; for any
/// other, a copy.
#[inline(always)]
fn taken_or_copied<T: Clone + Default>(slot: &mut T, last: bool) -> T {
    if last {
        std::mem::take(slot)
    } else {
        slot.clone()
    }
}

/// The request a batch came in, as its ops inherit from it.
pub(crate) enum Outer<'a> {
    /// Nothing needs its headers and extensions once the batch is planned: the ops
    /// take them, leaving it none. Taken through a borrow, not handed over: the
    /// request then has one place in its caller's future, not one more in each
    /// future it is handed down to (224 bytes, copied each time).
    Taken(&'a mut Parts),
    /// Something still needs it (a batch hook, or a socket's next message): the ops
    /// inherit copies.
    Lent(&'a Parts),
}

impl Outer<'_> {
    /// The request, as it came.
    pub(crate) fn parts(&self) -> &Parts {
        match self {
            Self::Taken(outer) => outer,
            Self::Lent(outer) => outer,
        }
    }
}

/// What an op refers to before the batch's ids are known: its references and its
/// condition, by op index. Most batches have none, and allocate nothing here.
type Pending = Vec<(usize, Option<Box<Found>>, Option<String>)>;

/// Takes the references and conditions out of `ops`, checking their syntax.
fn pending(ops: &mut [Operation], format: Format) -> Result<Pending, Violation> {
    let mut pending = Vec::new();
    for (index, op) in ops.iter_mut().enumerate() {
        pend(index, op, format, &mut pending)?;
    }
    Ok(pending)
}

/// Takes the references and condition out of op `index`, checking their syntax,
/// into `pending` if it has any.
// Always inlined into the loops over ops: most have none.
#[inline(always)]
fn pend(
    index: usize,
    op: &mut Operation,
    format: Format,
    pending: &mut Pending,
) -> Result<(), Violation> {
    let found = links::extract(op, format).map_err(|(field, error)| Violation {
        op: index,
        field,
        kind: error.into(),
    })?;
    let condition = op.condition.take();
    if found.is_some() || condition.is_some() {
        pending.push((index, found, condition));
    }
    Ok(())
}

/// A batch as decoded, for [`plan`] to check and plan.
pub(crate) enum Decoded {
    /// Its ops, not yet checked.
    Batch(BatchRequest),
    /// A native batch whose ops were checked as they were read ([`decode`]).
    Checked(Checked),
}

impl From<BatchRequest> for Decoded {
    fn from(batch: BatchRequest) -> Self {
        Self::Batch(batch)
    }
}

/// A native batch checked as it was read: its options (its ops are in
/// `validated`), and its ops' references and conditions, taken out.
pub(crate) struct Checked {
    batch: BatchRequest,
    pending: Pending,
    validated: Validated,
}

/// Decodes a batch request in `format`, as [`codec::decode_as`] does.
///
/// A native batch is checked as it is read: each op goes through [`pend`] and
/// [`validate::check`] as soon as it is built, and becomes its checked op, with no
/// list of decoded ops made and dropped. Any fault on the way (the document's, an
/// op's, the batch's size, a duplicate id) makes it read again as any batch is,
/// and checked by [`plan`], which finds the same fault as it would have, in the
/// same place: the faults a batch can have are found, and ordered, in one place.
pub(crate) fn decode(
    format: Format,
    parts: &Parts,
    body: &Bytes,
    config: &Config,
) -> Result<Decoded, Problem> {
    if format == Format::Native
        && let Some(checked) = checked(body, config)
    {
        return Ok(Decoded::Checked(checked));
    }
    codec::decode_as(format, parts, body, config).map(Decoded::Batch)
}

/// A native batch read and checked op by op; `None` at its first fault.
fn checked(body: &Bytes, config: &Config) -> Option<Checked> {
    let mut checking = Checking {
        config,
        ops: Vec::new(),
        ids: Vec::new(),
        terms: OpTerms::default(),
        pending: Vec::new(),
        reserved: 1,
    };
    let batch = codec::native::decode_each(body, &mut checking)?;
    let Checking {
        ops,
        ids,
        mut terms,
        pending,
        ..
    } = checking;
    let ids = Ids::new(ids);
    if ids.first_duplicate().is_some() {
        return None;
    }
    terms.fit(ops.len());
    Some(Checked {
        batch,
        pending,
        validated: Validated { ops, terms, ids },
    })
}

/// The ops of a native batch checked as they are read.
struct Checking<'a> {
    config: &'a Config,
    ops: Vec<CheckedOp>,
    ids: Vec<Text>,
    terms: OpTerms,
    pending: Pending,
    /// How many ops the lists have room for.
    reserved: usize,
}

impl codec::native::Each for Checking<'_> {
    fn reserve(&mut self, ops: usize) {
        // Made, not grown: the lists are empty still, and a list made is made
        // without the reallocation's steps.
        self.reserved = ops.min(self.config.max_ops());
        self.ops = Vec::with_capacity(self.reserved);
        self.ids = Vec::with_capacity(self.reserved);
    }

    // A call of its own per op: inlined into the reading of the ops, it made
    // one function too large for the steps of both to be inlined into it.
    #[inline(never)]
    fn take(&mut self, index: usize, op: &mut Operation) -> Result<(), ()> {
        // A batch of too many ops is refused (413) before any op is checked.
        if index >= self.config.max_ops() {
            return Err(());
        }
        pend(index, op, Format::Native, &mut self.pending).map_err(drop)?;
        self.ids.push(ids::own_or_made_up(op.id.take(), index));
        let reserved = self.reserved;
        validate::check(
            index,
            op,
            &mut self.ops,
            &mut self.terms,
            reserved,
            self.config,
        )
        .map_err(drop)
    }
}

/// Resolves the pending references and conditions, and the OData references of a
/// Graph or multipart batch, against the batch's ids: each op they name becomes a
/// dependency. Gives back each op's links, by index: none (and no room made) when
/// no op has any.
fn link(
    ops: &[CheckedOp],
    terms: &mut OpTerms,
    pending: Pending,
    ids: &Ids,
    format: Format,
    sequential: bool,
) -> Result<Vec<Option<Box<Links>>>, Violation> {
    let (mut all, count) = (Vec::new(), ops.len());
    let mut put = |index: usize, links: Links| {
        if all.is_empty() {
            all.resize_with(count, || None);
        }
        all[index] = Some(Box::new(links));
    };
    for (index, found, condition) in pending {
        let violation = |field, kind| Violation {
            op: index,
            field,
            kind,
        };
        if let Some(found) = found {
            let links = found
                .resolve(ids, index, sequential)
                .map_err(|(field, error)| violation(field, error.into()))?;
            let own = terms.make(index, count);
            own.depends_on.extend(links.ids().map(str::to_owned));
            put(index, links);
        }
        if let Some(text) = condition {
            let condition = Condition::parse(&text, |id| ids.get(id))
                .map_err(|error| violation(Field::Condition, error.into()))?;
            let mut named = Vec::new();
            condition.ops(&mut named);
            if sequential && named.iter().any(|&dep| dep >= index) {
                let kind = ViolationKind::Condition(ConditionError::Forward);
                return Err(violation(Field::Condition, kind));
            }
            let names = ids.as_slice();
            let own = terms.make(index, count);
            own.depends_on
                .extend(named.iter().map(|&dep| names[dep].as_str().to_owned()));
            own.condition = Some(condition);
        }
    }
    if names_by_location(format) {
        for (index, op) in ops.iter().enumerate() {
            let found = op
                .request
                .as_ref()
                .and_then(|request| links::odata(request, ids, index));
            if let Some(links) = found {
                let names = ids.as_slice();
                terms
                    .make(index, count)
                    .depends_on
                    .extend(links.ops().map(|dep| names[dep].as_str().to_owned()));
                put(index, links);
            }
        }
    }
    Ok(all)
}

/// Whether the ops of a `format` batch may name earlier ops' answers by `$ID` (the
/// `Location` they answered, their `ETag` in `If-Match`): Graph/OData and multipart.
fn names_by_location(format: Format) -> bool {
    matches!(format, Format::Graph | Format::Multipart)
}

/// A dependency fault as the op field it lies in.
fn violation(error: GraphError) -> Violation {
    Violation {
        op: error.op,
        field: Field::DependsOn(error.position),
        kind: match error.kind {
            GraphErrorKind::Unknown(id) => ViolationKind::UnknownDependency(id),
            GraphErrorKind::Forward(id) => ViolationKind::ForwardDependency(id),
            GraphErrorKind::Cycle => ViolationKind::Cycle,
        },
    }
}

/// What every op's request takes from the outer request: its inherited headers, its
/// extensions and, from the batch's id, its own `x-request-id`.
///
/// An op's request is completed with them just before it starts, not when the batch
/// is planned: a batch then holds one request's copies of the headers and
/// extensions at a time rather than every op's, and ops that answer at once hand
/// their memory straight to the next. (The ops' `x-request-id` values are cut from
/// one buffer made at plan time.)
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) headers: HeaderMap,
    /// The outer request's extensions, and the [`BatchOp`] marker each op's copy
    /// holds with its own index.
    pub(crate) extensions: Extensions,
    pub(crate) op_ids: OpIds,
    /// The position of the batch's `x-request-id` among the values of `headers`
    /// (in their order), which each op replaces with its own; `None` in a batch of
    /// one op, whose inherited headers hold its own already.
    batch_id_at: Option<usize>,
}

impl Shared {
    /// Gives op `index`'s request the inherited headers under its own, an
    /// `x-request-id` of `{batch}-{index}` unless it set one, the outer extensions,
    /// and the [`BatchOp`] marker.
    ///
    /// The `last` op to start takes the inherited headers and extensions themselves
    /// rather than copies: no op needs them after it (a batch of one op copies none).
    // Always inlined into the run, which completes each op's request as it starts
    // it: called, it cost ~9 instructions an op.
    #[inline(always)]
    pub(crate) fn complete(&mut self, index: usize, request: &mut Request<Bytes>, last: bool) {
        let mut extensions = taken_or_copied(&mut self.extensions, last);
        match extensions.get_mut::<BatchOp>() {
            Some(marker) => marker.index = index,
            None => {
                extensions.insert(BatchOp { index });
            }
        }
        *request.extensions_mut() = extensions;
        // Most ops set no header: theirs is the inherited map, moved in as it is,
        // and the batch's id lies where it lies there. The map is taken or copied
        // in each branch, where it goes: made once before them, it was moved twice
        // more on its way.
        let inherited_id = if request.headers().is_empty() {
            headers::replace_map(
                request.headers_mut(),
                taken_or_copied(&mut self.headers, last),
            );
            self.at_place(request.headers_mut())
        } else {
            headers::lay_under(
                request.headers_mut(),
                taken_or_copied(&mut self.headers, last),
            );
            // Still the batch's own value (its very bytes), so the op set none.
            // Found by those bytes' address in a walk of the few entries, not by
            // hashing the name.
            request
                .headers_mut()
                .iter_mut()
                .find(|(name, value)| self.op_ids.is_batch(value) && *name == X_REQUEST_ID)
                .map(|(_, value)| value)
        };
        if let Some(value) = inherited_id {
            if let Some(id) = self.op_ids.op(index) {
                *value = id;
            }
        }
    }

    /// The batch's `x-request-id` in `headers`, a map of the inherited values as
    /// they are.
    fn at_place<'a>(&self, headers: &'a mut HeaderMap) -> Option<&'a mut HeaderValue> {
        let value = headers.values_mut().nth(self.batch_id_at?)?;
        self.op_ids.is_batch(value).then_some(value)
    }
}

impl Plan {
    /// Completes every op's request now, for hooks that see the whole batch.
    pub(crate) fn complete_all(&mut self) {
        if !self.complete {
            let last = self.ops.len().saturating_sub(1);
            for (index, op) in self.ops.iter_mut().enumerate() {
                if let Some(request) = &mut op.request {
                    self.shared.complete(index, request, index == last);
                }
            }
            self.complete = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, StatusCode};
    use proptest::prelude::*;

    fn outer() -> Parts {
        let (mut parts, ()) = Request::post("/batch")
            .header("authorization", "Bearer outer")
            .header("accept-language", "de")
            .header("content-type", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.insert(7u32);
        parts
    }

    /// The outer request with an `x-request-id` of `outer-7`, the batch's id.
    fn outer_with_id() -> Parts {
        let mut outer = outer();
        outer
            .headers
            .insert(X_REQUEST_ID, http::HeaderValue::from_static("outer-7"));
        outer
    }

    /// `ops` planned under `outer`, lent as a hook's batch lends it, with every
    /// op's request completed.
    fn completed(ops: Vec<Operation>, outer: &Parts) -> Box<Plan> {
        let id = BatchId::of(&outer.headers);
        let mut plan = plan(
            BatchRequest::new(ops).into(),
            Outer::Lent(outer),
            &Config::default(),
            &id,
        )
        .unwrap();
        plan.complete_all();
        plan
    }

    fn planned(ops: Vec<Operation>) -> Result<Box<Plan>, Problem> {
        let mut outer = outer();
        let id = BatchId::of(&outer.headers);
        plan(
            BatchRequest::new(ops).into(),
            Outer::Taken(&mut outer),
            &Config::default(),
            &id,
        )
    }

    /// A native batch checked as it is read is planned as it would be decoded
    /// first and checked after, and refused with the same problem: the first fault
    /// of the document, then of the batch's size, then of the ops, in op order.
    #[test]
    fn a_native_batch_checked_as_read_is_planned_as_any() {
        let many = |n: usize| {
            let ops: Vec<_> = (0..n).map(|i| format!(r#"{{"url":"/i/{i}"}}"#)).collect();
            format!(r#"{{"ops":[{}]}}"#, ops.join(","))
        };
        let bodies = [
            r#"{"ops":[{"id":"a","url":"/a"},{"url":"/b?x=1","method":"post","body":{"n":1}}]}"#,
            r#"{"ops":[{"url":"/a","headers":{"x-a":"1","x-b":["2","3"]}},{"url":"/b","headers":{"x-a":"4","x-b":["5","6"]}},{"url":"/c","headers":{"x-b":"7"}}]}"#,
            r#"{"ops":[{"id":"a","url":"/a"},{"url":"/b/{result=a:$.id}","depends_on":"a","silent":true,"timeout_ms":5}],"sequential":true,"on_error":"stop","include_headers":false}"#,
            r#"{"ops":[{"id":"a","url":"/a"},{"url":"/b","if":"$a/$succeeded"},{"url":"/c","params":{"q":"{result=a:$.q}"},"headers":{"x-a":"{result=a:$.h}"}}]}"#,
            r#"{"ops":[{"url":"/a","body_base64":"aGk="},{"url":"/b","args":{"k":[1,"v"]}},{"id":"c","url":"/c","method":"PROPFIND"}]}"#,
            r#"{"ops":[{"url":"/a"},{"id":"1","url":"/b"}]}"#,
            r#"{"ops":[{"id":"x","url":"/a"},{"id":"X","url":"//b"}]}"#,
            r#"{"ops":[{"id":"x","url":"//a"},{"id":"X","url":"/b"}]}"#,
            r#"{"ops":[{"url":"/a","method":"GE T"},{"url":"/b/{result=nope}"}]}"#,
            r#"{"ops":[{"url":"/batch"},{"url":"/b","headers":{"cookie":"c"}}]}"#,
            r#"{"ops":[{"url":"/a","depends_on":"z"},{"url":"/b","if":"$a/$nonsense"}]}"#,
            r#"{"ops":[{"url":"/a"},{"url":"/b","timeout_ms":0}]}"#,
            r#"{"ops":[{"url":"/a"},{"id":""}]}"#,
            r#"{"ops":[{"url":"/a#f"}],"on_error":"never"}"#,
            r#"{"ops":[{"url":"/a"},{"url":7}]}"#,
            r#"{"ops":[]}"#,
            r#"{"ops":[{"url":"/a"}],"ops":[]}"#,
            r#"{"other":1}"#,
            &many(50),
            &many(51),
        ];
        for body in bodies {
            let (read, decoded_first, checked_as_read) = both_ways(body);
            assert_eq!(read, decoded_first, "{body:?}");
            // Every batch that plans is checked as it is read.
            assert!(checked_as_read || read.starts_with("Err"), "{body:?}");
        }
    }

    /// A native `body` planned as [`decode`] reads it and as it is decoded first and
    /// checked after (each plan, or its refusal, as its `Debug` text), and whether
    /// it was checked as it was read.
    fn both_ways(body: &str) -> (String, String, bool) {
        let body = Bytes::from(body.to_owned());
        let parts = outer_with_id();
        let id = BatchId::of(&parts.headers);
        let config = Config::default();
        let plan_as = |decoded: Result<Decoded, Problem>| {
            let mut outer = outer_with_id();
            let planned =
                decoded.and_then(|decoded| plan(decoded, Outer::Taken(&mut outer), &config, &id));
            format!("{planned:?}")
        };
        let read = decode(Format::Native, &parts, &body, &config);
        let checked_as_read = matches!(read, Ok(Decoded::Checked(_)));
        let decoded_first = codec::decode_as(Format::Native, &parts, &body, &config);
        (
            plan_as(read),
            plan_as(decoded_first.map(Decoded::Batch)),
            checked_as_read,
        )
    }

    /// An op of a native batch: each field (but its id and url) absent or one of a
    /// few values that plan, or now and then one that is a fault of its own or that
    /// faults with another op's.
    fn native_op() -> impl Strategy<Value = String> {
        let field = |optional: bool, good: &[&'static str], bad: &[&'static str]| {
            let good: Vec<Option<&'static str>> = good.iter().copied().map(Some).collect();
            let bad: Vec<Option<&'static str>> = bad.iter().copied().map(Some).collect();
            let absent = if optional { 60 } else { 0 };
            prop_oneof![
                absent => Just(None),
                40 => prop::sample::select(good),
                1 => prop::sample::select(bad),
            ]
        };
        (
            // `ID` is the op's own letter (`a` for the first, `b` for the second) and
            // `BEFORE` the letter before it (`` ` `` for the first: no op's).
            field(false, &[r#""ID""#], &[r#""A""#, r#""1""#, r#""""#]),
            field(
                false,
                &[r#""/a""#, r#""/b?x={result=BEFORE:$.x}""#, r#""/c/d""#],
                &[r#""//c""#, r#""/batch""#, r#""/d/{result=""#, "7"],
            ),
            field(true, &[r#""post""#, "null"], &[r#""GE T""#]),
            field(
                true,
                &[r#"{"x-a":"1"}"#, r#"{"x-a":["1","2"],"x-b":"3"}"#],
                &[r#"{"cookie":"c"}"#],
            ),
            field(true, &[r#""BEFORE""#, r#"["a","BEFORE"]"#], &[r#""z""#]),
            field(true, &[r#""$BEFORE/$succeeded""#], &[r#""$nope/$done""#]),
            field(true, &["true", "5"], &["0"]),
            field(
                true,
                &[r#"{"n":1}"#, r#"{"q":"{result=BEFORE:$.q}"}"#],
                &[r#"{"q":{}}"#],
            ),
        )
            .prop_map(
                |(id, url, method, headers, depends_on, condition, number, params)| {
                    let fields = [
                        ("id", id),
                        ("url", url),
                        ("method", method),
                        ("headers", headers),
                        ("depends_on", depends_on),
                        ("if", condition),
                        ("timeout_ms", number.filter(|&n| n != "true")),
                        ("silent", number.filter(|&n| n == "true")),
                        ("params", params),
                    ];
                    let fields: Vec<String> = fields
                        .iter()
                        .filter_map(|(name, value)| {
                            value.map(|value| format!(r#""{name}":{value}"#))
                        })
                        .collect();
                    format!("{{{}}}", fields.join(","))
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// The same for batches of ops that plan and of ops that fault in every
        /// way, alone or with another's: the first fault is the same one.
        #[test]
        fn any_native_batch_checked_as_read_is_planned_as_any(
            ops in prop::collection::vec(native_op(), 1..5),
            sequential in any::<bool>(),
        ) {
            let ops: Vec<String> = (ops.iter().zip('a'..))
                .map(|(op, letter)| {
                    let before = char::from_u32(u32::from(letter) - 1).unwrap_or('a');
                    (op.replace("ID", &letter.to_string())).replace("BEFORE", &before.to_string())
                })
                .collect();
            let body = format!(r#"{{"ops":[{}],"sequential":{sequential}}}"#, ops.join(","));
            let (read, decoded_first, checked_as_read) = both_ways(&body);
            prop_assert_eq!(&read, &decoded_first, "{}", body);
            prop_assert!(checked_as_read || read.starts_with("Err"), "{}", body);
        }
    }

    #[test]
    fn ops_of_a_request_without_extensions_are_marked_each_with_its_index() {
        for _ in 0..2 {
            let (mut outer, ()) = Request::post("/batch").body(()).unwrap().into_parts();
            let id = BatchId::of(&outer.headers);
            let ops = ["/a", "/b", "/c"].map(|url| Operation::new("get", url));
            let batch = BatchRequest::new(ops.into()).into();
            let outer = Outer::Taken(&mut outer);
            let mut plan = plan(batch, outer, &Config::default(), &id).unwrap();
            plan.complete_all();
            for (index, op) in plan.ops.iter().enumerate() {
                let extensions = op.request.as_ref().unwrap().extensions();
                assert_eq!(extensions.get::<BatchOp>().map(BatchOp::index), Some(index));
                assert_eq!(extensions.len(), 1);
            }
        }
    }

    #[test]
    fn ops_inherit_identity_and_extensions_and_override_headers() {
        let mut second = Operation::new("get", "/b");
        second.headers = vec![
            ("Accept-Language".into(), "fr".into()),
            ("x-many".into(), "1".into()),
            ("x-many".into(), "2".into()),
        ];
        let mut plan = planned(vec![Operation::new("get", "/a?x=1"), second]).unwrap();
        plan.complete_all();
        let first = plan.ops[0].request.as_ref().unwrap();
        assert_eq!(first.method(), Method::GET);
        assert_eq!(first.uri(), "/a?x=1");
        assert_eq!(first.headers()["authorization"], "Bearer outer");
        assert_eq!(first.headers()["accept-language"], "de");
        assert!(!first.headers().contains_key("content-type"));
        assert_eq!(first.extensions().get::<u32>(), Some(&7));
        let marker = first.extensions().get::<BatchOp>();
        assert_eq!(marker.map(BatchOp::index), Some(0));
        assert_eq!(plan.ids[0], "0");
        // The last op takes the shared headers and extensions rather than copies:
        // it inherits all the same.
        let second = plan.ops[1].request.as_ref().unwrap();
        assert_eq!(second.headers()["accept-language"], "fr");
        assert_eq!(second.headers().get_all("x-many").iter().count(), 2);
        assert_eq!(second.headers()["authorization"], "Bearer outer");
        assert!(!second.headers().contains_key("content-type"));
        assert_eq!(second.extensions().get::<u32>(), Some(&7));
        let marker = second.extensions().get::<BatchOp>();
        assert_eq!(marker.map(BatchOp::index), Some(1));
    }

    #[test]
    fn each_op_keeps_its_own_terms_by_index() {
        let plain = planned(vec![
            Operation::new("get", "/a"),
            Operation::new("get", "/b"),
        ]);
        assert!(plain.unwrap().terms.get(0).is_none());
        let mut quiet = Operation::new("get", "/b");
        quiet.silent = true;
        let mut waits = Operation::new("get", "/c");
        waits.timeout = Some(std::time::Duration::from_millis(5));
        waits.depends_on = vec!["0".into()];
        waits.condition = Some("$0/$succeeded".into());
        let plan = planned(vec![Operation::new("get", "/a"), quiet, waits]).unwrap();
        let terms = |index| plan.terms.get(index).unwrap();
        assert!(!terms(0).silent && terms(0).timeout.is_none());
        assert!(terms(0).depends_on.is_empty() && terms(0).condition.is_none());
        assert!(terms(1).silent && terms(1).timeout.is_none());
        assert!(!terms(2).silent);
        assert_eq!(terms(2).timeout, Some(std::time::Duration::from_millis(5)));
        assert!(terms(2).depends_on.iter().all(|id| id == "0"));
        assert!(terms(2).condition.is_some());
        assert_eq!(plan.graph.deps(2), [0]);
    }

    #[test]
    fn each_op_gets_a_request_id_of_its_own_unless_it_set_one() {
        let outer = outer_with_id();
        let mut own = Operation::new("get", "/b");
        own.headers = vec![("X-Request-Id".into(), "mine".into())];
        // An op may even send the batch's own id as its own: it is kept.
        let mut same = Operation::new("get", "/d");
        same.headers = vec![("x-request-id".into(), "outer-7".into())];
        let ops = vec![
            Operation::new("get", "/a"),
            own,
            Operation::new("get", "/c"),
            same,
        ];
        let plan = completed(ops, &outer);
        let ids: Vec<_> = plan
            .ops
            .iter()
            .map(|op| {
                op.request
                    .as_ref()
                    .unwrap()
                    .headers()
                    .get_all(X_REQUEST_ID)
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            ids,
            [
                vec!["outer-7-0"],
                vec!["mine"],
                vec!["outer-7-2"],
                vec!["outer-7"]
            ]
        );
    }

    #[test]
    fn an_op_gets_its_request_id_among_inherited_headers_of_many_values() {
        // Values of one name before the batch's id and after it: each op's id still
        // replaces the batch's, and no other value.
        let mut outer = outer();
        outer
            .headers
            .append("accept-language", http::HeaderValue::from_static("fr"));
        outer
            .headers
            .insert(X_REQUEST_ID, http::HeaderValue::from_static("outer-7"));
        outer
            .headers
            .append("x-after", http::HeaderValue::from_static("1"));
        outer
            .headers
            .append("x-after", http::HeaderValue::from_static("2"));
        let mut own = Operation::new("get", "/c");
        own.headers = vec![("x-after".into(), "3".into())];
        let ops = vec![
            Operation::new("get", "/a"),
            Operation::new("get", "/b"),
            own,
        ];
        let plan = completed(ops, &outer);
        for (index, op) in plan.ops.iter().enumerate() {
            let headers = op.request.as_ref().unwrap().headers();
            let values = |name| headers.get_all(name).iter().collect::<Vec<_>>();
            let own_id = format!("outer-7-{index}");
            assert_eq!(values("x-request-id"), [own_id.as_str()]);
            assert_eq!(values("accept-language"), ["de", "fr"]);
            let after: &[&str] = if index == 2 { &["3"] } else { &["1", "2"] };
            assert_eq!(values("x-after"), after);
        }
    }

    #[test]
    fn a_lone_op_gets_the_batch_id_and_its_index_unless_it_set_one() {
        let outer = outer_with_id();
        let mut own = Operation::new("get", "/b");
        own.headers = vec![("x-request-id".into(), "mine".into())];
        for (op, expected) in [(Operation::new("get", "/a"), "outer-7-0"), (own, "mine")] {
            let plan = completed(vec![op], &outer);
            let request = plan.ops[0].request.as_ref().unwrap();
            let ids: Vec<_> = request.headers().get_all(X_REQUEST_ID).iter().collect();
            assert_eq!(ids, [expected]);
        }
    }

    #[test]
    fn faults_across_ops_are_422_at_the_op_and_field() {
        let mut dup = Operation::new("GET", "/a");
        dup.id = Some("0".into());
        let problem = planned(vec![Operation::new("GET", "/ok"), dup]).unwrap_err();
        assert_eq!(problem.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            (problem.op(), problem.pointer()),
            (Some(1), Some("/ops/1/id"))
        );
        let mut unknown = Operation::new("GET", "/a");
        unknown.depends_on = vec!["0".into(), "nope".into()];
        let problem = planned(vec![Operation::new("GET", "/ok"), unknown]).unwrap_err();
        assert_eq!(
            (problem.op(), problem.pointer()),
            (Some(1), Some("/ops/1/depends_on/1"))
        );
    }

    #[test]
    fn a_batch_keeps_its_format_for_its_pointers() {
        let mut batch = BatchRequest::new(vec![Operation::new("GET", "http://x/")]);
        batch.layout.format = Format::Facebook;
        let mut outer = outer();
        let outer = Outer::Taken(&mut outer);
        let problem = plan(
            batch.into(),
            outer,
            &Config::default(),
            &BatchId::generate(),
        )
        .unwrap_err();
        assert_eq!(problem.pointer(), Some("/batch/0/relative_url"));
    }

    #[test]
    fn too_many_ops_is_413() {
        let ops = (0..51).map(|_| Operation::new("GET", "/a")).collect();
        assert_eq!(
            planned(ops).unwrap_err().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
