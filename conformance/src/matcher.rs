//! The matcher language of scenario expectations (documented in
//! `scenarios/README.md`): JSON that matches JSON, with a few `$` operators and
//! captures.
//!
//! - an object matches an object that has every expected key with a matching
//!   value; extra keys are allowed;
//! - an array matches an array of the same length, element by element;
//! - a string is a template (`${name}` is replaced by a captured value) that must
//!   equal the actual string; numbers, booleans and `null` must be equal;
//! - an object whose keys all start with `$` is a set of operators, all of which
//!   must hold.
//!
//! ```
//! use conformance::matcher::{Captures, check, collect_captures};
//! use serde_json::json;
//!
//! let actual = json!({"results": [{"id": "a", "status": 201, "body": {"id": 1001}}]});
//! let expected = json!({"results": [{"status": 201, "body": {"id": {"$capture": "new"}}}]});
//! let mut captures = Captures::default();
//! collect_captures(&expected, Some(&actual), &mut captures);
//! assert!(check(&expected, Some(&actual), &captures).is_empty());
//!
//! let next = json!({"id": {"$eq": "${new} + 1", "$lt": 2000}, "missing": {"$absent": true}});
//! assert!(check(&next, Some(&json!({"id": 1002})), &captures).is_empty());
//! assert_eq!(check(&next, Some(&json!({"id": 7})), &captures).len(), 1);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};
use thiserror::Error;

/// Values captured by `{"$capture": "name"}`, visible to later matchers and to the
/// requests of later steps as `${name}`.
#[derive(Debug, Clone, Default)]
pub struct Captures(BTreeMap<String, Value>);

/// A matcher that misuses the language; found when the scenarios are loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// An operator the language does not have.
    #[error("unknown operator {0:?}")]
    UnknownOperator(String),
    /// An object mixing `$` operators and ordinary keys.
    #[error("an object mixes operators and keys: {0}")]
    MixedObject(String),
    /// An operator with an operand of the wrong kind.
    #[error("{operator} needs {expected}")]
    Operand {
        /// The operator.
        operator: &'static str,
        /// What its operand must be.
        expected: &'static str,
    },
}

/// Where and how an actual value differs from its matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Where, as slash-separated keys and indexes (`results/1/status`).
    pub path: String,
    /// What was expected.
    pub expected: String,
    /// What was there (`(missing)` for an absent key).
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        };
        write!(f, "{path}: expected {}, got {}", self.expected, self.actual)
    }
}

const TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "null", "array", "object",
];

/// Checks that `matcher` uses only the operators of the language, with operands of
/// the right kind.
pub fn validate(matcher: &Value) -> Result<(), MatcherError> {
    match matcher {
        Value::Array(items) => items.iter().try_for_each(validate),
        Value::Object(map) if is_operator_set(map) => {
            if let Some(key) = map.keys().find(|k| !k.starts_with('$')) {
                return Err(MatcherError::MixedObject(key.clone()));
            }
            map.iter()
                .try_for_each(|(op, operand)| validate_operator(op, operand))
        }
        Value::Object(map) => map.values().try_for_each(validate),
        _ => Ok(()),
    }
}

fn validate_operator(op: &str, operand: &Value) -> Result<(), MatcherError> {
    let wrong = |operator, expected| Err(MatcherError::Operand { operator, expected });
    match op {
        "$absent" if operand != &Value::Bool(true) => wrong("$absent", "true"),
        "$present" if operand != &Value::Bool(true) => wrong("$present", "true"),
        "$type" if !operand.as_str().is_some_and(|t| TYPES.contains(&t)) => wrong(
            "$type",
            "one of string, number, integer, boolean, null, array, object",
        ),
        "$len" if operand.as_u64().is_none() => wrong("$len", "a non-negative integer"),
        "$capture" if !operand.is_string() => wrong("$capture", "a capture name"),
        "$lt" | "$lte" | "$gt" | "$gte" if !(operand.is_number() || operand.is_string()) => {
            wrong("a comparison", "a number or an expression string")
        }
        "$contains" => validate(operand),
        "$excludes" if !operand.is_string() => wrong("$excludes", "a string"),
        "$absent" | "$present" | "$type" | "$len" | "$capture" | "$eq" | "$lt" | "$lte" | "$gt"
        | "$gte" | "$excludes" => Ok(()),
        _ => Err(MatcherError::UnknownOperator(op.to_owned())),
    }
}

fn is_operator_set(map: &Map<String, Value>) -> bool {
    map.keys().any(|k| k.starts_with('$'))
}

/// Records every `$capture` in `expected` from the value at the same place in
/// `actual`. Run before [`check`], so a matcher may refer to a capture taken
/// anywhere in the same step.
pub fn collect_captures(expected: &Value, actual: Option<&Value>, captures: &mut Captures) {
    let Some(actual) = actual else { return };
    match expected {
        Value::Object(map) if is_operator_set(map) => {
            if let Some(Value::String(name)) = map.get("$capture") {
                captures.0.insert(name.clone(), actual.clone());
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                collect_captures(value, actual.get(key), captures);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                collect_captures(value, actual.get(index), captures);
            }
        }
        _ => {}
    }
}

/// Every place where `actual` (`None`: absent) does not match `expected`.
pub fn check(expected: &Value, actual: Option<&Value>, captures: &Captures) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    check_at(expected, actual, captures, "", &mut mismatches);
    mismatches
}

fn check_at(
    expected: &Value,
    actual: Option<&Value>,
    captures: &Captures,
    path: &str,
    out: &mut Vec<Mismatch>,
) {
    let mut fail = |expected: String| {
        out.push(Mismatch {
            path: path.to_owned(),
            expected,
            actual: actual.map_or_else(|| "(missing)".to_owned(), short),
        });
    };
    match expected {
        Value::Object(map) if is_operator_set(map) => {
            for (op, operand) in map {
                if let Err(message) = operator_holds(op, operand, actual, captures) {
                    fail(message);
                }
            }
        }
        Value::Object(map) => match actual {
            Some(Value::Object(_)) => {
                for (key, value) in map {
                    let inner = actual.and_then(|a| a.get(key));
                    check_at(value, inner, captures, &join(path, key), out);
                }
            }
            _ => fail("an object".to_owned()),
        },
        Value::Array(items) => match actual {
            Some(Value::Array(actual_items)) if actual_items.len() == items.len() => {
                for (index, (value, inner)) in items.iter().zip(actual_items).enumerate() {
                    check_at(
                        value,
                        Some(inner),
                        captures,
                        &join(path, &index.to_string()),
                        out,
                    );
                }
            }
            _ => fail(format!("an array of {} items", items.len())),
        },
        Value::String(template) => match captures.interpolate(template) {
            Ok(text) if actual == Some(&Value::String(text.clone())) => {}
            Ok(text) => fail(short(&Value::String(text))),
            Err(err) => fail(err),
        },
        scalar => {
            if !actual.is_some_and(|a| equal(a, scalar)) {
                fail(short(scalar));
            }
        }
    }
}

/// Whether one operator holds; otherwise what it expected.
fn operator_holds(
    op: &str,
    operand: &Value,
    actual: Option<&Value>,
    captures: &Captures,
) -> Result<(), String> {
    if op == "$absent" {
        return actual.map_or(Ok(()), |_| Err("the key to be absent".to_owned()));
    }
    let Some(actual) = actual else {
        return Err(format!("{op} {}", short(operand)));
    };
    let expect = |holds: bool, what: String| if holds { Ok(()) } else { Err(what) };
    match op {
        "$present" | "$capture" => Ok(()),
        "$type" => {
            let name = operand.as_str().unwrap_or_default();
            expect(
                type_name_matches(name, actual),
                format!("a value of type {name}"),
            )
        }
        "$len" => {
            let len = match actual {
                Value::Array(items) => Some(items.len()),
                Value::Object(map) => Some(map.len()),
                Value::String(text) => Some(text.len()),
                _ => None,
            };
            let want = operand.as_u64().and_then(|n| usize::try_from(n).ok());
            expect(len.is_some() && len == want, format!("length {operand}"))
        }
        "$eq" => {
            let want = captures.resolve(operand)?;
            expect(equal(actual, &want), short(&want))
        }
        "$lt" | "$lte" | "$gt" | "$gte" => {
            let want = captures.resolve(operand)?;
            let (Some(a), Some(b)) = (actual.as_f64(), want.as_f64()) else {
                return Err(format!("a number {op} {}", short(&want)));
            };
            let holds = match op {
                "$lt" => a < b,
                "$lte" => a <= b,
                "$gt" => a > b,
                _ => a >= b,
            };
            expect(holds, format!("a number {op} {b}"))
        }
        "$contains" => match actual {
            Value::String(text) => {
                let want = captures.resolve(operand)?;
                let needle = want.as_str().unwrap_or_default();
                expect(
                    want.is_string() && text.contains(needle),
                    format!("a string containing {}", short(&want)),
                )
            }
            Value::Array(items) => expect(
                items
                    .iter()
                    .any(|item| check(operand, Some(item), captures).is_empty()),
                format!("an array with an item matching {}", short(operand)),
            ),
            _ => Err(format!("a string or array containing {}", short(operand))),
        },
        "$excludes" => {
            let unwanted = captures.resolve(operand)?;
            let needle = unwanted.as_str().unwrap_or_default();
            expect(
                actual.as_str().is_some_and(|text| !text.contains(needle)),
                format!("a string without {}", short(&unwanted)),
            )
        }
        _ => Err(format!("a known operator, not {op}")),
    }
}

fn type_name_matches(name: &str, value: &Value) -> bool {
    match name {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// Deep equality with numbers compared by value (`200` equals `200.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}/{key}")
    }
}

/// A value as compact JSON, cut short so one mismatch stays on one line.
pub(crate) fn short(value: &Value) -> String {
    const MAX: usize = 200;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

impl Captures {
    /// Remembers `value` as `name`, as a `$capture` would.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        self.0.insert(name.into(), value);
    }

    /// Replaces every `${name}` in `template` with the captured value (strings as
    /// they are, anything else as JSON text).
    pub fn interpolate(&self, template: &str) -> Result<String, String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("an unterminated ${{ in {template:?}"))?;
            let name = &after[..end];
            match self.0.get(name) {
                Some(Value::String(text)) => out.push_str(text),
                Some(value) => out.push_str(&value.to_string()),
                None => return Err(format!("a capture named {name:?}, which no step took")),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value an operand stands for: `"${name}"` alone is the captured value
    /// itself; integer arithmetic such as `"${count} + 2"` is evaluated; any other
    /// string is a template; arrays and objects have each string inside them
    /// resolved the same way (so `$eq` can name exactly a document holding captured
    /// values); other JSON is itself.
    fn resolve(&self, operand: &Value) -> Result<Value, String> {
        let text = match operand {
            Value::String(text) => text,
            Value::Array(items) => {
                return items
                    .iter()
                    .map(|item| self.resolve(item))
                    .collect::<Result<_, _>>()
                    .map(Value::Array);
            }
            Value::Object(map) => {
                return map
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), self.resolve(value)?)))
                    .collect::<Result<_, String>>()
                    .map(Value::Object);
            }
            _ => return Ok(operand.clone()),
        };
        if !text.contains("${") {
            return Ok(operand.clone());
        }
        if let Some(name) = text
            .strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .filter(|name| !name.contains(['{', '}', '$']))
        {
            return self
                .0
                .get(name)
                .cloned()
                .ok_or_else(|| format!("a capture named {name:?}, which no step took"));
        }
        match self.arithmetic(text) {
            Some(result) => result.map(Value::from),
            None => self.interpolate(text).map(Value::String),
        }
    }

    /// Evaluates `term (+|- term)*` where a term is an integer or `${name}` of an
    /// integer capture; `None` when `text` is not of that form.
    fn arithmetic(&self, text: &str) -> Option<Result<i64, String>> {
        let mut total = 0i64;
        let mut sign = Some(1i64);
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            let term_sign = sign.take()?;
            let (term, after) = if let Some(after) = rest.strip_prefix("${") {
                let end = after.find('}')?;
                let name = &after[..end];
                let value = match self.0.get(name).map(Value::as_i64) {
                    Some(Some(value)) => value,
                    Some(None) => return Some(Err(format!("an integer capture {name:?}"))),
                    None => {
                        return Some(Err(format!("a capture named {name:?}, which no step took")));
                    }
                };
                (value, &after[end + 1..])
            } else {
                let digits = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                (rest[..digits].parse::<i64>().ok()?, &rest[digits..])
            };
            total = total.checked_add(term_sign * term)?;
            rest = after.trim_start();
            if let Some(after) = rest.strip_prefix('+') {
                sign = Some(1);
                rest = after.trim_start();
            } else if let Some(after) = rest.strip_prefix('-') {
                sign = Some(-1);
                rest = after.trim_start();
            } else if !rest.is_empty() {
                return None;
            }
        }
        sign.is_none().then_some(Ok(total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mismatches(expected: Value, actual: Value) -> Vec<String> {
        let mut captures = Captures::default();
        collect_captures(&expected, Some(&actual), &mut captures);
        check(&expected, Some(&actual), &captures)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn objects_match_as_subsets_and_arrays_exactly() {
        assert!(mismatches(json!({"a": 1}), json!({"a": 1, "b": 2})).is_empty());
        assert_eq!(
            mismatches(json!({"a": 1, "c": 3}), json!({"a": 2})),
            ["a: expected 1, got 2", "c: expected 3, got (missing)"]
        );
        assert!(mismatches(json!([1, 2]), json!([1, 2])).is_empty());
        assert_eq!(
            mismatches(json!([1]), json!([1, 2])),
            ["(root): expected an array of 1 items, got [1,2]"]
        );
        assert!(mismatches(json!({"n": 200}), json!({"n": 200.0})).is_empty());
    }

    #[test]
    fn operators() {
        let ok =
            |m: Value, a: Value| assert!(mismatches(m.clone(), a.clone()).is_empty(), "{m} {a}");
        let bad =
            |m: Value, a: Value| assert!(!mismatches(m.clone(), a.clone()).is_empty(), "{m} {a}");
        ok(json!({"x": {"$absent": true}}), json!({}));
        bad(json!({"x": {"$absent": true}}), json!({"x": null}));
        ok(json!({"x": {"$present": true}}), json!({"x": null}));
        bad(json!({"x": {"$present": true}}), json!({}));
        ok(json!({"$type": "integer"}), json!(3));
        bad(json!({"$type": "integer"}), json!(3.5));
        ok(json!({"$lt": 10, "$gte": 3}), json!(3));
        bad(json!({"$lt": 10}), json!(10));
        bad(json!({"$lt": 10}), json!("5"));
        ok(json!({"$contains": "json"}), json!("application/json"));
        ok(
            json!({"$contains": {"id": "b"}}),
            json!([{"id": "a"}, {"id": "b", "x": 1}]),
        );
        bad(json!({"$contains": "b"}), json!(["a"]));
        ok(json!({"$excludes": "keep-alive"}), json!("HTTP/1.1 200 OK"));
        bad(
            json!({"$excludes": "keep-alive"}),
            json!("connection: keep-alive"),
        );
        bad(json!({"$excludes": "x"}), json!(["y"]));
        ok(json!({"$len": 2}), json!([0, 0]));
        bad(json!({"$len": 2}), json!([0]));
        ok(json!({"$eq": {"a": 1}}), json!({"a": 1}));
        bad(json!({"$eq": {"a": 1}}), json!({"a": 1, "b": 2}));
    }

    #[test]
    fn captures_feed_templates_and_arithmetic() {
        let expected = json!([
            {"$capture": "n"},
            {"$eq": "${n} + 2 - 1"},
            "item-${n}",
            {"$gt": "${n}"}
        ]);
        assert!(mismatches(expected.clone(), json!([5, 6, "item-5", 9])).is_empty());
        assert_eq!(mismatches(expected, json!([5, 7, "item-5", 9])).len(), 1);
        let unknown = json!({"$eq": "${nope} + 1"});
        assert_eq!(
            mismatches(unknown, json!(1)),
            ["(root): expected a capture named \"nope\", which no step took, got 1"]
        );
        let mut captures = Captures::default();
        captures.0.insert("id".into(), json!(1001));
        assert_eq!(captures.interpolate("/items/${id}").unwrap(), "/items/1001");
        assert_eq!(captures.resolve(&json!("${id}")).unwrap(), json!(1001));
        assert_eq!(captures.resolve(&json!("x${id}")).unwrap(), json!("x1001"));
        assert_eq!(
            captures
                .resolve(&json!({"id": "${id}", "next": ["${id} + 1", "/items/${id}", 2]}))
                .unwrap(),
            json!({"id": 1001, "next": [1002, "/items/1001", 2]})
        );
    }

    #[test]
    fn validation_refuses_unknown_operators_and_bad_operands() {
        assert!(validate(&json!({"a": [{"$type": "string"}], "b": {"$len": 1}})).is_ok());
        assert_eq!(
            validate(&json!({"$nope": 1})),
            Err(MatcherError::UnknownOperator("$nope".into()))
        );
        assert_eq!(
            validate(&json!({"$type": "string", "a": 1})),
            Err(MatcherError::MixedObject("a".into()))
        );
        assert!(validate(&json!({"$type": "str"})).is_err());
        assert!(validate(&json!({"$absent": false})).is_err());
    }
}
