//! What the suite's tests share: the server named from outside, if any, and what
//! it does not serve.

use std::env::{self, VarError};

use conformance::Requirement;

/// The base url in the environment variable `var`: `None` when it is unset, an error
/// that names the variable when it is set but not a base url such as
/// `http://127.0.0.1:8080` (an empty value included, so a script's unset variable
/// does not quietly fall back to the local servers).
pub fn url_from_env(var: &str) -> Result<Option<String>, String> {
    let url = match env::var(var) {
        Ok(url) => url,
        Err(VarError::NotPresent) => return Ok(None),
        Err(VarError::NotUnicode(raw)) => return Err(format!("{var} is not UTF-8: {raw:?}")),
    };
    // The runner's own rule, checked here so the message names the variable.
    let valid = url
        .parse::<http::Uri>()
        .is_ok_and(|uri| uri.scheme_str() == Some("http") && uri.authority().is_some());
    if valid {
        Ok(Some(url))
    } else {
        Err(format!(
            "{var} must be the base url of a server, such as http://127.0.0.1:8080; got {url:?}"
        ))
    }
}

/// The requirements `CONFORMANCE_SKIP` names, comma-separated (such as `sockets`):
/// what the `CONFORMANCE_URL` server does not serve. An error names the variable
/// when a name is no requirement, so a typo does not quietly run everything.
pub fn skipped_from_env() -> Result<Vec<Requirement>, String> {
    let names = match env::var("CONFORMANCE_SKIP") {
        Ok(names) => names,
        Err(VarError::NotPresent) => return Ok(Vec::new()),
        Err(VarError::NotUnicode(raw)) => {
            return Err(format!("CONFORMANCE_SKIP is not UTF-8: {raw:?}"));
        }
    };
    names
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            name.parse()
                .map_err(|err| format!("CONFORMANCE_SKIP: {err}"))
        })
        .collect()
}
