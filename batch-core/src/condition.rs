//! Conditions: `"if": "$a/$succeeded and not ($b/$succeeded or $c/$succeeded)"`, an
//! op that runs only when earlier ops ended a certain way (OData 4.01's `if`).
//!
//! `$ID/$succeeded` holds when op `ID` ran and answered 2xx; `not`, `and` and `or`
//! combine terms, `and` binding tighter than `or`, and parentheses group. Ids are
//! resolved to op indexes once, when the batch is planned, so evaluating a
//! condition costs one look at each of its terms.

use thiserror::Error;

/// How deep parentheses and `not`s may nest: the parser recurses once per level.
const MAX_NESTING: usize = 32;

/// The term every condition is made of: `$ID` then this.
const SUCCEEDED: &str = "/$succeeded";

/// A parsed condition over op indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// Op `index` ran and answered 2xx.
    Succeeded(usize),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

/// Why a condition cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ConditionError {
    #[error("is not a condition of `$ID/$succeeded` terms with not, and, or and parentheses")]
    Malformed,
    #[error("nests parentheses and `not` more than {MAX_NESTING} deep")]
    TooDeep,
    #[error("names {0:?}, which is no operation of this batch")]
    Unknown(String),
    #[error("names an operation that does not come earlier in a sequential batch")]
    Forward,
}

impl Condition {
    /// Parses `text`, resolving each `$ID` with `resolve` (an unknown id is an error).
    pub(crate) fn parse(
        text: &str,
        resolve: impl FnMut(&str) -> Option<usize>,
    ) -> Result<Self, ConditionError> {
        let mut parser = Parser {
            tokens: tokens(text),
            at: 0,
            resolve,
        };
        let condition = parser.or(0)?;
        match parser.tokens.get(parser.at) {
            None => Ok(condition),
            Some(_) => Err(ConditionError::Malformed),
        }
    }

    /// Whether the condition holds, given which ops succeeded.
    pub(crate) fn holds(&self, succeeded: &impl Fn(usize) -> bool) -> bool {
        match self {
            Self::Succeeded(index) => succeeded(*index),
            Self::Not(inner) => !inner.holds(succeeded),
            Self::And(all) => all.iter().all(|c| c.holds(succeeded)),
            Self::Or(any) => any.iter().any(|c| c.holds(succeeded)),
        }
    }

    /// Every op the condition names, each once per mention.
    pub(crate) fn ops(&self, out: &mut Vec<usize>) {
        match self {
            Self::Succeeded(index) => out.push(*index),
            Self::Not(inner) => inner.ops(out),
            Self::And(all) | Self::Or(all) => all.iter().for_each(|c| c.ops(out)),
        }
    }
}

/// The words and parentheses of a condition.
fn tokens(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while let Some(first) = rest.chars().next() {
        let length = if first == '(' || first == ')' {
            1
        } else {
            rest.find(|c: char| c.is_whitespace() || c == '(' || c == ')')
                .unwrap_or(rest.len())
        };
        tokens.push(&rest[..length]);
        rest = rest[length..].trim_start();
    }
    tokens
}

struct Parser<'a, R> {
    tokens: Vec<&'a str>,
    at: usize,
    resolve: R,
}

impl<R: FnMut(&str) -> Option<usize>> Parser<'_, R> {
    fn next_is(&mut self, token: &str) -> bool {
        let found = self.tokens.get(self.at) == Some(&token);
        if found {
            self.at += 1;
        }
        found
    }

    fn or(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        let mut any = vec![self.and(depth)?];
        while self.next_is("or") {
            any.push(self.and(depth)?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Condition::Or(any)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        let mut all = vec![self.unary(depth)?];
        while self.next_is("and") {
            all.push(self.unary(depth)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Condition::And(all)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        if depth >= MAX_NESTING {
            return Err(ConditionError::TooDeep);
        }
        if self.next_is("not") {
            return Ok(Condition::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.next_is("(") {
            let inner = self.or(depth + 1)?;
            return match self.next_is(")") {
                true => Ok(inner),
                false => Err(ConditionError::Malformed),
            };
        }
        let token = self.tokens.get(self.at).ok_or(ConditionError::Malformed)?;
        let id = token
            .strip_prefix('$')
            .and_then(|term| term.strip_suffix(SUCCEEDED))
            .filter(|id| !id.is_empty())
            .ok_or(ConditionError::Malformed)?;
        self.at += 1;
        (self.resolve)(id)
            .map(Condition::Succeeded)
            .ok_or_else(|| ConditionError::Unknown(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Condition, ConditionError> {
        Condition::parse(text, |id| {
            ["a", "b", "c"].iter().position(|&known| known == id)
        })
    }

    fn holds(text: &str, succeeded: [bool; 3]) -> bool {
        parse(text).unwrap().holds(&|i| succeeded[i])
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let text = "$a/$succeeded or $b/$succeeded and $c/$succeeded";
        assert!(holds(text, [true, false, false]));
        assert!(!holds(text, [false, true, false]));
        let grouped = "($a/$succeeded or $b/$succeeded) and $c/$succeeded";
        assert!(!holds(grouped, [true, false, false]));
        assert!(holds(grouped, [false, true, true]));
        assert!(holds("not $a/$succeeded", [false, true, true]));
        assert!(holds("not not($a/$succeeded)", [true, false, false]));
        assert!(holds(" ( $a/$succeeded ) ", [true, false, false]));
    }

    #[test]
    fn names_every_op_it_mentions() {
        let mut ops = Vec::new();
        parse("$c/$succeeded and not ($a/$succeeded or $c/$succeeded)")
            .unwrap()
            .ops(&mut ops);
        assert_eq!(ops, [2, 0, 2]);
    }

    #[test]
    fn malformed_and_unknown_are_refused() {
        for text in [
            "",
            "$a",
            "a/$succeeded",
            "$/$succeeded",
            "$a/$failed",
            "$a/$succeeded and",
            "($a/$succeeded",
            "$a/$succeeded)",
            "$a/$succeeded $b/$succeeded",
            "not",
            "or $a/$succeeded",
            "$a/$succeeded AND $b/$succeeded",
        ] {
            assert_eq!(parse(text), Err(ConditionError::Malformed), "{text:?}");
        }
        assert_eq!(
            parse("$zz/$succeeded"),
            Err(ConditionError::Unknown("zz".into()))
        );
        let deep = format!("{}$a/$succeeded{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(parse(&deep), Err(ConditionError::TooDeep));
        let nots = format!("{}$a/$succeeded", "not ".repeat(100_000));
        assert_eq!(parse(&nots), Err(ConditionError::TooDeep));
    }
}
