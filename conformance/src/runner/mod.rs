//! Runs scenarios over real HTTP and WebSocket and reports which failed and why.

mod http_step;
mod socket_step;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use crate::client::Client;
use crate::matcher::Captures;
use crate::scenario::{self, Requirement, Scenario, ScenarioError, Step};

/// How long the sockets a scenario leaves open get to start their closing handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Why the suite could not run at all (a failing scenario is not an error: see
/// [`Report`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The embedded scenarios are unusable.
    #[error("the scenarios cannot be loaded: {0}")]
    Scenarios(#[from] ScenarioError),
    /// The base URL is not `http://host:port`.
    #[error("the base url must look like http://127.0.0.1:8080, got {0:?}")]
    BaseUrl(String),
    /// The runtime for the client could not start.
    #[error("the client runtime could not start: {0}")]
    Runtime(#[from] std::io::Error),
}

/// What happened to one scenario.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// The file it comes from.
    pub file: &'static str,
    /// Why it failed, on one line; `None` when it passed.
    pub failure: Option<String>,
}

/// The outcome of every scenario run against one adapter.
///
/// Its `Display` prints one line per failing scenario, then
/// `{adapter}: N passed, M failed`.
#[derive(Debug, Clone)]
pub struct Report {
    adapter: String,
    outcomes: Vec<Outcome>,
}

impl Report {
    /// How many scenarios passed.
    pub fn passed(&self) -> usize {
        self.outcomes.len() - self.failed()
    }

    /// How many scenarios failed.
    pub fn failed(&self) -> usize {
        self.failures().count()
    }

    /// The scenarios that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.failure.is_some())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for outcome in self.failures() {
            let failure = outcome.failure.as_deref().unwrap_or_default();
            writeln!(f, "FAIL {} [{}]: {failure}", outcome.scenario, outcome.file)?;
        }
        write!(
            f,
            "{}: {} passed, {} failed",
            self.adapter,
            self.passed(),
            self.failed()
        )
    }
}

/// Which of the scenarios the default configuration serves a run checks: all of
/// them unless narrowed by name or told what the server does not serve.
///
/// ```
/// use conformance::{Requirement, Selection};
///
/// // The header scenarios, for a server without sockets.
/// let selection = Selection::new().only("headers.").skip(Requirement::Sockets);
/// # let _ = selection;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Selection {
    name_contains: String,
    skipped: Vec<Requirement>,
}

impl Selection {
    /// Every scenario the default configuration serves.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only the scenarios whose name contains `text`.
    pub fn only(mut self, text: impl Into<String>) -> Self {
        self.name_contains = text.into();
        self
    }

    /// Leaves out the scenarios that need `requirement`, for a server that does
    /// not serve it (such as [`Requirement::Sockets`] for one without sockets).
    pub fn skip(mut self, requirement: Requirement) -> Self {
        self.skipped.push(requirement);
        self
    }

    /// Whether it leaves out the scenarios that need `requirement`.
    pub fn skips(&self, requirement: Requirement) -> bool {
        self.skipped.contains(&requirement)
            || (requirement == Requirement::Recheck && self.skipped.contains(&Requirement::Sockets))
    }

    fn keeps(&self, scenario: &Scenario) -> bool {
        scenario.requires_format.is_none()
            && scenario
                .requires
                .is_none_or(|requirement| !self.skips(requirement))
            && scenario.name.contains(&self.name_contains)
    }
}

/// Runs every scenario against the server at `base_url` (such as
/// `http://127.0.0.1:8080`), one after another, and reports under the name `adapter`.
///
/// The socket scenarios are among them; [`run_selected`] leaves them out for a
/// server without sockets. Blocks on a runtime of its own: call it from synchronous
/// code.
pub fn run(base_url: &str, adapter: &str) -> Result<Report, RunError> {
    run_selected(base_url, adapter, &Selection::new())
}

/// Like [`run`], for the scenarios whose name contains `name_contains`.
///
/// Scenarios that need a format the default configuration switches off are left
/// out; [`run_requiring`] runs them.
pub fn run_only(base_url: &str, adapter: &str, name_contains: &str) -> Result<Report, RunError> {
    run_selected(base_url, adapter, &Selection::new().only(name_contains))
}

/// Like [`run`], for the scenarios `selection` keeps.
pub fn run_selected(
    base_url: &str,
    adapter: &str,
    selection: &Selection,
) -> Result<Report, RunError> {
    run_filtered(base_url, adapter, |s| selection.keeps(s))
}

/// Runs the scenarios that need `format` enabled (`"facebook"`), against a server
/// whose configuration enables it.
pub fn run_requiring(base_url: &str, adapter: &str, format: &str) -> Result<Report, RunError> {
    run_filtered(base_url, adapter, |s| {
        s.requires_format.as_deref() == Some(format)
    })
}

/// Runs only the scenarios that need `requirement`, against a server that serves
/// it ([`Requirement::Recheck`]: one that checks subscriptions before every event).
pub fn run_requiring_only(
    base_url: &str,
    adapter: &str,
    requirement: Requirement,
) -> Result<Report, RunError> {
    run_filtered(base_url, adapter, |s| s.requires == Some(requirement))
}

fn run_filtered(
    base_url: &str,
    adapter: &str,
    keep: impl Fn(&Scenario) -> bool,
) -> Result<Report, RunError> {
    let uri = base_url.parse::<http::Uri>().ok();
    let Some(authority) = uri
        .filter(|uri| uri.scheme_str() == Some("http"))
        .and_then(|uri| uri.authority().cloned())
    else {
        return Err(RunError::BaseUrl(base_url.to_owned()));
    };
    let scenarios: Vec<Scenario> = scenario::load()?.into_iter().filter(|s| keep(s)).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = Client::new(base_url);
    let mut outcomes = Vec::with_capacity(scenarios.len());
    // One at a time: scenarios share the server's state (the request counter).
    for scenario in scenarios {
        let mut run = ScenarioRun::new(&client, authority.as_str());
        let failure = runtime.block_on(run.all(&scenario)).err();
        runtime.block_on(run.close_sockets());
        outcomes.push(Outcome {
            scenario: scenario.name,
            file: scenario.file,
            failure,
        });
    }
    Ok(Report {
        adapter: adapter.to_owned(),
        outcomes,
    })
}

/// What one scenario's steps share: the captures, and the sockets open by name.
struct ScenarioRun<'a> {
    client: &'a Client,
    captures: Captures,
    sockets: HashMap<String, crate::socket::Socket>,
}

impl<'a> ScenarioRun<'a> {
    /// A run whose captures start with `authority`, the server's `host:port`, so
    /// that a step can name the server's own origin.
    fn new(client: &'a Client, authority: &str) -> Self {
        let mut captures = Captures::default();
        captures.insert("authority", Value::String(authority.to_owned()));
        Self {
            client,
            captures,
            sockets: HashMap::new(),
        }
    }

    async fn all(&mut self, scenario: &Scenario) -> Result<(), String> {
        for (index, step) in scenario.steps.iter().enumerate() {
            let done = match step {
                Step::Http(step) => http_step::run(self.client, step, &mut self.captures).await,
                Step::Socket(step) => socket_step::run(self, step).await,
            };
            done.map_err(|why| format!("step {} ({step}): {why}", index + 1))?;
        }
        Ok(())
    }

    /// Closes what the scenario left open, so the server frees it before the next.
    async fn close_sockets(self) {
        for (_, socket) in self.sockets {
            let _ = tokio::time::timeout(CLOSE_WAIT, socket.close()).await;
        }
    }
}
