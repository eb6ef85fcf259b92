//! Result references as written: `{result=ID:PATH}`, where `ID` is another op's id
//! and `PATH` a JSONPath subset into its JSON response body.
//!
//! This module reads them (`parse`) and follows a path in a document (`path`); the
//! `links` module turns an op's references into what the engine fills in.

mod parse;
mod path;

pub(crate) use parse::{OPEN, Piece, has_reference, pieces};
pub(crate) use path::{Path, Selected};
