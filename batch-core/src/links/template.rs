//! An op's links to other ops' results: its references and the templates of the
//! parts of its request they are written in.

use http::HeaderName;
use serde_json::Value;

use crate::reference::Path;

/// Where a reference's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The value at a path in the op's JSON response body.
    Body(Path),
    /// The path of the op's `Location` header.
    Location,
    /// The op's `ETag` header.
    ETag,
}

/// One reference of an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// The op referred to, as written, then its index once resolved.
    pub(crate) id: String,
    pub(crate) op: usize,
    pub(crate) source: Source,
    /// As written, for the answer that says which reference failed.
    pub(crate) text: String,
}

/// Text with references in it: literal pieces and indexes into [`Links`]' references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Text(String),
    Reference(usize),
    /// A `params` value of the query that is exactly one reference, with its key
    /// (percent-encoded): written as `key=value` pairs by the `params` rules.
    Param {
        key: String,
        reference: usize,
    },
}

pub(crate) type Template = Vec<Part>;

/// A request body with references in it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// A JSON document, and the template of each of its strings that holds a
    /// reference, in the order [`substitute`] walks the document.
    Json(Value, Vec<Template>),
    /// A form (`application/x-www-form-urlencoded`), values inserted form-encoded.
    Form(Template),
}

/// What of an op's request is filled in from other ops' results.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Links {
    pub(crate) references: Vec<Reference>,
    pub(crate) url: Option<Template>,
    /// Each header with a reference in a value, with all of its values in order.
    pub(crate) headers: Vec<(HeaderName, Vec<Template>)>,
    pub(crate) body: Option<Body>,
}

impl Links {
    /// The ops these links read from, each once per reference.
    pub(crate) fn ops(&self) -> impl Iterator<Item = usize> + '_ {
        self.references.iter().map(|reference| reference.op)
    }

    /// The ids these links read from, as written, each once per reference.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.references
            .iter()
            .map(|reference| reference.id.as_str())
    }
}

/// Calls `visit` on every value of `document`, depth first, members in the
/// document's order: the order extracting and applying share.
pub(crate) fn each_value(document: &mut Value, visit: &mut impl FnMut(&mut Value)) {
    let mut stack = vec![document];
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items.iter_mut().rev()),
            Value::Object(members) => stack.extend(members.values_mut().rev()),
            other => visit(other),
        }
    }
}

/// Calls `visit` on every string of `document`, in the order of [`each_value`].
pub(crate) fn each_string(document: &mut Value, visit: &mut impl FnMut(&mut String)) {
    each_value(document, &mut |value| {
        if let Value::String(text) = value {
            visit(text);
        }
    });
}
