//! The typed pass: a valid native batch read once, straight into operations.
//!
//! A hand-written reader walks the document's bytes a single time, checking its
//! syntax and depth as it goes; strings without escapes stay slices of the body.
//! Ops are built as the reader reaches them, so no op is held twice. The pass
//! accepts exactly the batches serde's derive would read into the field types
//! below (a key given twice, a value of another type, a malformed document: each is
//! [`Refused`]), and says nothing more of a batch it refuses: `explain` reads that
//! one again value by value, to say which value is wrong and where.

use std::borrow::Cow;

use bytes::Bytes;

use super::op::{TypedOp, build_op};
use crate::codec::json::scan::{Literal, Refused, Scan, Scanner, StringAt};
use crate::model::{Operation, Text};
use crate::problem::Problem;

/// The batch-level options, typed.
pub(super) struct Options {
    pub(super) sequential: Option<bool>,
    pub(super) on_error: Option<String>,
    pub(super) include_headers: Option<bool>,
}

/// What the typed pass read.
pub(super) struct Typed {
    /// The ops built, why the first that could not be built could not, or `None`
    /// if the batch has no `ops` (or a null one). The problem is boxed: this rare
    /// one made every batch's ops three times as large to move (each value is
    /// moved several times on its way out of the pass).
    pub(super) ops: Option<Result<Vec<Operation>, Box<Problem>>>,
    pub(super) options: Options,
}

/// Reads `document`, a native batch.
pub(super) fn parse(document: &Bytes) -> Scan<Typed> {
    let (ops, options) = envelope(document, |scan| read_ops(scan, document))?;
    Ok(Typed {
        ops: ops.flatten(),
        options,
    })
}

/// What takes each op of a batch read op by op ([`parse_each`]).
pub(crate) trait Each {
    /// Makes room for `ops` ops in all, about, once the first has been read.
    fn reserve(&mut self, ops: usize);

    /// Takes op `index`, built, out of `op`; what it leaves there is dropped.
    /// `Err` stops the reading.
    fn take(&mut self, index: usize, op: &mut Operation) -> Result<(), ()>;
}

/// Reads `document`, a native batch, handing each op to `each` as soon as it is
/// built rather than making a list of them. Refuses every batch that [`parse`]
/// refuses or does not read into at least one op, and one whose ops `each` does
/// not all take: what `each` took of it is then to be dropped, and the batch read
/// again by [`parse`].
pub(super) fn parse_each(document: &Bytes, each: &mut impl Each) -> Scan<Options> {
    match envelope(document, |scan| read_each(scan, document, each))? {
        (Some(Some(())), options) => Ok(options),
        _ => Err(Refused),
    }
}

/// Reads `document`'s members, its ops with `read_ops`.
// Always inlined: each reader of ops has its own.
#[inline(always)]
fn envelope<'a, T>(
    document: &'a Bytes,
    mut read_ops: impl FnMut(&mut Scanner<'a>) -> Scan<T>,
) -> Scan<(Option<Option<T>>, Options)> {
    let mut scan = Scanner::new(document);
    // A batch is UTF-8 throughout, in the values it skips too (serde_json skips
    // them unread): `explain` names the first byte that is not.
    if !scan.is_text() {
        return Err(Refused);
    }
    let mut ops = None;
    let (mut sequential, mut on_error, mut include_headers) = (None, None, None);
    scan.fields(|scan, key| match key {
        b"ops" => once(&mut ops, optional(scan, &mut read_ops)?),
        b"sequential" => once(&mut sequential, optional(scan, Scanner::bool)?),
        b"on_error" => once(&mut on_error, optional(scan, owned)?),
        b"include_headers" => once(&mut include_headers, optional(scan, Scanner::bool)?),
        _ => scan.skip(),
    })?;
    scan.end()?;
    Ok((
        ops,
        Options {
            sequential: sequential.flatten(),
            on_error: on_error.flatten(),
            include_headers: include_headers.flatten(),
        },
    ))
}

/// Fills `slot`, refusing a key the object has already given, as the derived
/// parsers of `explain` do.
fn once<T>(slot: &mut Option<T>, value: T) -> Scan<()> {
    if slot.is_some() {
        return Err(Refused);
    }
    *slot = Some(value);
    Ok(())
}

/// A value that may be `null`, which reads as `None`.
// Always inlined: as a call, each field's value is moved out of it once more.
#[inline(always)]
fn optional<'a, T>(
    scan: &mut Scanner<'a>,
    read: impl FnOnce(&mut Scanner<'a>) -> Scan<T>,
) -> Scan<Option<T>> {
    if scan.null() {
        Ok(None)
    } else {
        read(scan).map(Some)
    }
}

fn owned(scan: &mut Scanner<'_>) -> Scan<String> {
    scan.string().map(Cow::into_owned)
}

/// The `ops` array, each op built as soon as it is read. Past a problem, ops are
/// still read: a value of the wrong type later on sends the batch to `explain`,
/// which answers as it would have.
fn read_ops(
    scan: &mut Scanner<'_>,
    document: &Bytes,
) -> Scan<Result<Vec<Operation>, Box<Problem>>> {
    let mut ops = Ok(Vec::with_capacity(1));
    let mut index = 0;
    // One typed op for them all: building an op takes every field out of it, which
    // leaves it as a default one for the next (one made and dropped per op cost
    // more). Once an op could not be built, nothing more is built from it.
    let mut op = TypedOp::default();
    // Where an op is read once one could not be built.
    let mut aside = None;
    let mut headers = Vec::new();
    scan.items(|scan| {
        let start = scan.offset();
        // Made in its place in the list and read into there: a pushed op is made
        // aside and copied in (248 bytes).
        let slot = match &mut ops {
            Ok(built) => {
                built.extend(std::iter::once_with(Operation::default));
                built.last_mut()
            }
            Err(_) => None,
        };
        let into = match slot {
            Some(slot) => slot,
            None => aside.insert(Operation::default()),
        };
        read_op(scan, &mut op, into, &mut headers, document)?;
        if let Ok(built) = &mut ops {
            if index == 0 {
                // The list is sized once, for as many ops as the rest of the document
                // holds (see `more`). Until then it holds the first op alone, which
                // is moved into the list made for them all (the one op a batch of
                // one has stays).
                let more = more(scan, start);
                if more > 0 {
                    let mut list = Vec::with_capacity(1 + more);
                    list.append(built);
                    *built = list;
                }
            }
            if let Some(slot) = built.last_mut()
                && let Err(problem) = build_op(index, &mut op, document, slot)
            {
                ops = Err(Box::new(problem));
            }
        }
        index += 1;
        Ok(())
    })?;
    Ok(ops)
}

/// Ops read one by one into one operation, each handed to `each` once built.
fn read_each(scan: &mut Scanner<'_>, document: &Bytes, each: &mut impl Each) -> Scan<()> {
    let mut index = 0;
    // As in `read_ops`, one typed op for them all, and one operation: what `each`
    // leaves in it is dropped before the next op is read into it.
    let mut op = TypedOp::default();
    let mut built = Operation::default();
    let mut headers = Vec::new();
    scan.items(|scan| {
        let start = scan.offset();
        read_op(scan, &mut op, &mut built, &mut headers, document)?;
        // An op with other fields may leave any of them set; the others only
        // those `read_op` sets, which it only sets when the op gives them: its id
        // and method (an op that gives no url is refused, so every op sets one).
        let others = op.others;
        if build_op(index, &mut op, document, &mut built).is_err() {
            return Err(Refused);
        }
        if index == 0 {
            each.reserve(1 + more(scan, start));
        }
        each.take(index, &mut built).map_err(|()| Refused)?;
        if others {
            built = Operation::default();
        } else {
            (built.id, built.method) = (None, None);
        }
        index += 1;
        Ok(())
    })?;
    if index == 0 {
        return Err(Refused);
    }
    Ok(())
}

/// How many ops are likely to follow the first, read from `start` to where `scan`
/// is: as many as the rest of the document holds if they are about the size of
/// the first (growing a list copies every op built so far), never more than it
/// could hold, and never more than `MOST_RESERVED`: a tiny first op before a long
/// string would otherwise reserve an op per 11 bytes of it.
fn more(scan: &Scanner<'_>, start: usize) -> usize {
    let size = (scan.offset() - start).max(SMALLEST_OP.len());
    (scan.remaining() / size).min(MOST_RESERVED - 1)
}

/// The shortest op that builds, with the comma before the next.
const SMALLEST_OP: &str = r#"{"url":""},"#;

/// The most ops the list is sized for up front; a longer batch grows it.
const MOST_RESERVED: usize = 1024;

/// An op's fields. [`IN_ORDER`] is the order the explaining pass's serde-derived
/// `RawOp` declares them in, which is the order it takes them from an array (an op
/// written as a list of its values): the two passes must agree on it.
#[derive(Clone, Copy)]
enum Name {
    Id,
    Method,
    Url,
    Headers,
    Body,
    BodyBase64,
    Params,
    DependsOn,
    Silent,
    TimeoutMs,
    Condition,
}

const IN_ORDER: [Name; 11] = [
    Name::Id,
    Name::Method,
    Name::Url,
    Name::Headers,
    Name::Body,
    Name::BodyBase64,
    Name::Params,
    Name::DependsOn,
    Name::Silent,
    Name::TimeoutMs,
    Name::Condition,
];

/// The members nearly every op gives, strings, as a compact writer writes them:
/// found with a word's compare each ([`Scanner::known_string`]), the others read as
/// any member is.
const COMPACT: [(Literal, Name); 2] = [
    (Literal::string("id"), Name::Id),
    (Literal::string("url"), Name::Url),
];

impl Name {
    #[inline(always)]
    fn of(key: &[u8]) -> Option<Self> {
        Some(match key {
            b"id" => Self::Id,
            b"method" => Self::Method,
            b"url" => Self::Url,
            b"headers" => Self::Headers,
            b"body" => Self::Body,
            b"body_base64" => Self::BodyBase64,
            b"params" | b"args" => Self::Params,
            b"depends_on" => Self::DependsOn,
            b"silent" => Self::Silent,
            b"timeout_ms" => Self::TimeoutMs,
            b"if" => Self::Condition,
            _ => return None,
        })
    }
}

/// One op, into `op` (a default one, filled where it lies rather than moved out)
/// and, its url, id and method, into `built`: an object of its fields or, as serde's
/// derive also reads a struct, an array of all of them in order.
/// `headers` is the list every op's headers are read into first (see [`headers`]).
// Always inlined into both readers of ops: with two callers it was left a call.
#[inline(always)]
fn read_op<'a>(
    scan: &mut Scanner<'a>,
    op: &mut TypedOp<'a>,
    built: &mut Operation,
    headers: &mut Vec<(Text, Text)>,
    document: &Bytes,
) -> Scan<()> {
    if scan.peek() == Some(b'[') {
        let mut names = IN_ORDER.iter();
        scan.items(|scan| {
            let name = *names.next().ok_or(Refused)?;
            read_field(scan, op, built, name, headers, document)
        })?;
        return match names.next() {
            None => Ok(()),
            Some(_) => Err(Refused),
        };
    }
    // The object's members read in a loop here, not through `Scanner::fields`,
    // whose closure was left a call per field.
    if !scan.open(b'{', b'}')? {
        return Ok(());
    }
    let mut seen = 0u16;
    let mut see = |name: Name| {
        let bit = 1 << name as u16;
        if seen & bit != 0 {
            return Err(Refused);
        }
        seen |= bit;
        Ok(())
    };
    loop {
        if let Some((name, string)) = scan.known_string(&COMPACT)? {
            see(name)?;
            put_text(op, built, name, text_of(document, string));
        } else {
            let key = scan.field()?;
            match Name::of(key.as_bytes()) {
                Some(name) => {
                    see(name)?;
                    read_field(scan, op, built, name, headers, document)?;
                }
                None => scan.skip()?,
            }
        }
        if !scan.next(b'}')? {
            return Ok(());
        }
    }
}

/// The value of field `name` of `op`.
// Always inlined: an op's url and id then cost no call of their own. The three
// texts share one reading; the other fields, which most ops do not give, are read
// out of line.
#[inline(always)]
fn read_field<'a>(
    scan: &mut Scanner<'a>,
    op: &mut TypedOp<'a>,
    built: &mut Operation,
    name: Name,
    headers: &mut Vec<(Text, Text)>,
    document: &Bytes,
) -> Scan<()> {
    match name {
        Name::Id | Name::Method | Name::Url => {
            if let Some(string) = scan.string_or_null()? {
                put_text(op, built, name, text_of(document, string));
            }
            Ok(())
        }
        _ => read_other(scan, op, name, headers, document),
    }
}

/// The text of field `name`, the url, id or method, into `built` (a field given
/// as `null` is left as it is: unset).
#[inline(always)]
fn put_text(op: &mut TypedOp<'_>, built: &mut Operation, name: Name, text: Text) {
    match name {
        Name::Id => built.id = Some(text),
        Name::Method => built.method = Some(text),
        Name::Url => {
            built.url = text;
            op.url = true;
        }
        // Read by `read_other`.
        _ => {}
    }
}

/// [`read_field`] for a field other than the url, id and method.
fn read_other<'a>(
    scan: &mut Scanner<'a>,
    op: &mut TypedOp<'a>,
    name: Name,
    headers: &mut Vec<(Text, Text)>,
    document: &Bytes,
) -> Scan<()> {
    op.others = true;
    match name {
        // Read by `read_field`.
        Name::Id | Name::Method | Name::Url => {}
        Name::Headers => {
            op.headers = optional(scan, |scan| read_headers(scan, headers, document))?;
        }
        Name::Body => op.body = optional(scan, Scanner::raw)?,
        Name::BodyBase64 => op.body_base64 = optional(scan, owned)?,
        Name::Params => op.params = optional(scan, Scanner::raw)?,
        Name::DependsOn => {
            op.depends_on = optional(scan, |scan| {
                let mut ids = Vec::new();
                one_or_many(scan, |id| ids.push(id.into_owned()))?;
                Ok(ids)
            })?;
        }
        Name::Silent => op.silent = optional(scan, Scanner::bool)?,
        Name::TimeoutMs => op.timeout_ms = optional(scan, Scanner::u64)?,
        Name::Condition => op.condition = optional(scan, owned)?,
    }
    Ok(())
}

/// A string as a text: the document's own bytes, or its text decoded if it has
/// escapes. (`document` is the one `scan` reads.)
#[inline(always)]
fn text(scan: &mut Scanner<'_>, document: &Bytes) -> Scan<Text> {
    scan.string_at().map(|string| text_of(document, string))
}

/// The text of a string read from `document`.
// Always inlined: once the string's scan is, this was left a call (~40 instructions
// a text).
#[inline(always)]
fn text_of(document: &Bytes, string: StringAt) -> Text {
    match string {
        StringAt::Plain(start, end) => Text::within(document, start..end),
        StringAt::Escaped(text) => text.into(),
    }
}

/// A `headers` object: each name with a string or an array of strings, one entry
/// per value, in document order, each the document's own bytes unless it has
/// escapes (as `url`).
///
/// They are read into `read`, a list kept from op to op (empty between them), and
/// moved from it into a list made once for as many as there are: a list grown entry
/// by entry is reallocated, and copied, at 4, 8, 16, … entries.
fn read_headers(
    scan: &mut Scanner<'_>,
    read: &mut Vec<(Text, Text)>,
    document: &Bytes,
) -> Scan<Vec<(Text, Text)>> {
    read.clear();
    scan.members(|scan, name| {
        let name = text_of(document, name);
        if scan.peek() == Some(b'[') {
            scan.items(|scan| {
                read.push((name.clone(), text(scan, document)?));
                Ok(())
            })
        } else {
            read.push((name, text(scan, document)?));
            Ok(())
        }
    })?;
    let mut list = Vec::with_capacity(read.len());
    list.append(read);
    Ok(list)
}

/// A string or an array of strings, each given to `each`.
fn one_or_many<'a>(scan: &mut Scanner<'a>, mut each: impl FnMut(Cow<'a, str>)) -> Scan<()> {
    if scan.peek() == Some(b'[') {
        scan.items(|scan| scan.string().map(&mut each))
    } else {
        scan.string().map(each)
    }
}
