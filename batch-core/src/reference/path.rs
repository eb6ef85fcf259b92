//! The JSONPath subset a reference may use, and where it leads in a JSON document.
//!
//! `$` then any of `.name`, `['name']`, `[n]`, `[*]` and `.*`: no filters, no
//! recursive descent, no slices, so a path visits each node of the document at most
//! once and its cost is linear in the document.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// An object's member (`.name`, `['name']`).
    Member(String),
    /// An array's element (`[n]`).
    Index(usize),
    /// Every element of an array or member of an object (`[*]`, `.*`).
    Every,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    steps: Vec<Step>,
}

/// Why a path is not one of the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathError;

/// What a path selects in a document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selected<'a> {
    /// The one value a path without `*` leads to.
    One(&'a Value),
    /// The values a path with `*` leads to, in document order (maybe none).
    Many(Vec<&'a Value>),
}

impl Path {
    /// Parses the path at the start of `text`, up to the first byte that cannot
    /// continue it; returns it and the rest of `text`.
    pub(crate) fn parse(text: &str) -> Result<(Self, &str), PathError> {
        let mut rest = text.strip_prefix('$').ok_or(PathError)?;
        let mut steps = Vec::new();
        loop {
            if let Some(after) = rest.strip_prefix(".*") {
                steps.push(Step::Every);
                rest = after;
            } else if let Some(after) = rest.strip_prefix('.') {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(after.len());
                if end == 0 {
                    return Err(PathError);
                }
                steps.push(Step::Member(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix("[*]") {
                steps.push(Step::Every);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("['") {
                let end = after.find('\'').ok_or(PathError)?;
                let after_quote = after[end + 1..].strip_prefix(']').ok_or(PathError)?;
                steps.push(Step::Member(after[..end].to_owned()));
                rest = after_quote;
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                let index = after[..end].parse().map_err(|_| PathError)?;
                rest = after[end..].strip_prefix(']').ok_or(PathError)?;
                steps.push(Step::Index(index));
            } else {
                return Ok((Self { steps }, rest));
            }
        }
    }

    /// What the path selects in `document`; `None` when a member or an element it
    /// names is not there, or a `*` meets a value that is neither array nor object.
    pub(crate) fn select<'a>(&self, document: &'a Value) -> Option<Selected<'a>> {
        if !self.steps.contains(&Step::Every) {
            let mut at = document;
            for step in &self.steps {
                at = child(at, step)?;
            }
            return Some(Selected::One(at));
        }
        let mut nodes = vec![document];
        for step in &self.steps {
            let mut next = Vec::with_capacity(nodes.len());
            for node in nodes {
                match (step, node) {
                    (Step::Every, Value::Array(items)) => next.extend(items),
                    (Step::Every, Value::Object(members)) => next.extend(members.values()),
                    (Step::Every, _) => return None,
                    (step, node) => next.push(child(node, step)?),
                }
            }
            nodes = next;
        }
        Some(Selected::Many(nodes))
    }
}

/// The member or element `step` names in `node`.
fn child<'a>(node: &'a Value, step: &Step) -> Option<&'a Value> {
    match (step, node) {
        (Step::Member(name), Value::Object(members)) => members.get(name),
        (Step::Index(index), Value::Array(items)) => items.get(*index),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> Path {
        let (path, rest) = Path::parse(text).unwrap();
        assert_eq!(rest, "", "{text}");
        path
    }

    #[test]
    fn parses_the_subset_and_stops_at_what_follows() {
        assert_eq!(path("$").steps, []);
        assert_eq!(
            path("$.data[0]['odd name'].*[*].x-y_1").steps,
            [
                Step::Member("data".into()),
                Step::Index(0),
                Step::Member("odd name".into()),
                Step::Every,
                Step::Every,
                Step::Member("x-y_1".into()),
            ]
        );
        let (parsed, rest) = Path::parse("$.id}/tags").unwrap();
        assert_eq!((parsed.steps.len(), rest), (1, "}/tags"));
    }

    #[test]
    fn refuses_everything_else() {
        for text in [
            "",
            "id",
            "$.",
            "$..id",
            "$[-1]",
            "$[1:2]",
            "$[?(@.a)]",
            "$['a",
            "$['a'",
            "$[",
            "$[]",
            "$[99999999999999999999999]",
            "$[a]",
        ] {
            let refused = Path::parse(text).map_or(true, |(_, rest)| !rest.is_empty());
            assert!(refused, "{text:?}");
        }
    }

    #[test]
    fn selects_one_value_or_every_value() {
        let doc = json!({"id": 7, "tags": [{"n": "a"}, {"n": "b"}], "empty": []});
        assert_eq!(path("$.id").select(&doc), Some(Selected::One(&json!(7))));
        assert_eq!(path("$").select(&doc), Some(Selected::One(&doc)));
        assert_eq!(
            path("$.tags[*].n").select(&doc),
            Some(Selected::Many(vec![&json!("a"), &json!("b")]))
        );
        assert_eq!(
            path("$.empty[*]").select(&doc),
            Some(Selected::Many(vec![]))
        );
        assert_eq!(path("$.tags[2]").select(&doc), None);
        assert_eq!(path("$.nope").select(&doc), None);
        assert_eq!(path("$.id[*]").select(&doc), None);
        assert_eq!(
            path("$.tags.*.m").select(&doc),
            None,
            "a member missing under *"
        );
    }
}
