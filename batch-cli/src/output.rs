//! Writing results: JSON Lines (one native result object per line, with `index`),
//! or a table for people.

use std::io::{self, Write};

use batch_client::{OpResponse, ResultBody};

/// One JSON object per line, in input order.
pub fn json_lines(out: &mut impl Write, results: &[OpResponse]) -> io::Result<()> {
    for result in results {
        serde_json::to_writer(&mut *out, result)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The longest body shown in a table cell, in characters.
const BODY_WIDTH: usize = 60;

/// A table of index, id, status and the start of each body, then a summary line.
pub fn table(out: &mut impl Write, results: &[OpResponse]) -> io::Result<()> {
    let index_width = results.len().saturating_sub(1).to_string().len().max(1);
    let id_width = results
        .iter()
        .map(|r| r.id.chars().count())
        .max()
        .unwrap_or(0)
        .max(2);
    writeln!(
        out,
        "{:>index_width$}  {:<id_width$}  status  body",
        "#", "id"
    )?;
    for result in results {
        writeln!(
            out,
            "{:>index_width$}  {:<id_width$}  {:<6}  {}",
            result.index,
            result.id,
            result.status.as_u16(),
            cell(&result.body)
        )?;
    }
    let failed = results.iter().filter(|r| !r.is_success()).count();
    writeln!(out, "{} ops, {} failed", results.len(), failed)
}

fn cell(body: &ResultBody) -> String {
    let text = match body {
        ResultBody::Empty => return String::new(),
        ResultBody::Binary(bytes) => return format!("<{} bytes>", bytes.len()),
        ResultBody::Json(_) | ResultBody::Text(_) => {
            String::from_utf8_lossy(body.as_bytes()).replace(['\n', '\r', '\t'], " ")
        }
    };
    if text.chars().count() <= BODY_WIDTH {
        return text;
    }
    let mut short: String = text.chars().take(BODY_WIDTH - 1).collect();
    short.push('…');
    short
}
