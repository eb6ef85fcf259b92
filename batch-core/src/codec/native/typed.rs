//! The typed pass: a valid native batch parsed once, straight into operations.
//!
//! Ops are built as the parser reaches them, into a list sized beforehand, so no op
//! is held twice. The pass only ever answers for a batch whose every value has its
//! type; any other batch is left to `explain`, which says which value is
//! wrong and where.

use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::op::{TypedOp, build_op};
use crate::model::Operation;
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
    /// if the batch has no `ops` (or a null one).
    pub(super) ops: Option<Result<Vec<Operation>, Problem>>,
    pub(super) options: Options,
}

/// Parses `document`, a batch of about `ops` ops whose depth has been checked.
pub(super) fn parse(document: &Bytes, ops: usize) -> serde_json::Result<Typed> {
    let mut deserializer = serde_json::Deserializer::from_slice(document);
    deserializer.disable_recursion_limit();
    let typed = deserializer.deserialize_map(Batch { document, ops })?;
    deserializer.end()?;
    Ok(typed)
}

/// The batch object's keys; the derive reads a key borrowed or escaped alike.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Ops,
    Sequential,
    OnError,
    IncludeHeaders,
    #[serde(other)]
    Other,
}

struct Batch<'d> {
    document: &'d Bytes,
    ops: usize,
}

impl<'de> Visitor<'de> for Batch<'de> {
    type Value = Typed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Typed, A::Error> {
        let mut ops = None;
        let (mut sequential, mut on_error, mut include_headers) = (None, None, None);
        while let Some(key) = map.next_key()? {
            match key {
                Key::Ops => {
                    let list = map.next_value_seed(Ops {
                        document: self.document,
                        capacity: self.ops,
                    })?;
                    once(&mut ops, "ops", list)?;
                }
                Key::Sequential => once(&mut sequential, "sequential", map.next_value()?)?,
                Key::OnError => once(&mut on_error, "on_error", map.next_value()?)?,
                Key::IncludeHeaders => {
                    once(&mut include_headers, "include_headers", map.next_value()?)?;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Typed {
            ops: ops.flatten(),
            options: Options {
                sequential: sequential.flatten(),
                on_error: on_error.flatten(),
                include_headers: include_headers.flatten(),
            },
        })
    }
}

/// Fills `slot`, refusing a key the object has already given, as the derived
/// parsers of `explain` do.
fn once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

/// The `ops` array (or null), each op built as soon as it is parsed.
struct Ops<'d> {
    document: &'d Bytes,
    capacity: usize,
}

impl<'de> DeserializeSeed<'de> for Ops<'de> {
    type Value = Option<Result<Vec<Operation>, Problem>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Ops<'de> {
    type Value = Option<Result<Vec<Operation>, Problem>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of operations")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ops = Ok(Vec::with_capacity(self.capacity));
        let mut index = 0;
        while let Some(op) = seq.next_element::<TypedOp<'de>>()? {
            // Past a problem, ops are still parsed: a value of the wrong type later
            // on sends the batch to `explain`, which answers as it would have.
            if let Ok(built) = &mut ops {
                match build_op(index, op, self.document) {
                    Ok(op) => built.push(op),
                    Err(problem) => ops = Err(problem),
                }
            }
            index += 1;
        }
        Ok(Some(ops))
    }
}
