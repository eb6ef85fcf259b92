//! `cargo run -p conformance -- --url http://127.0.0.1:8080`: runs every scenario
//! (the socket ones over `ws://` at the same host and port) against a server and
//! exits non-zero when any failed.

use std::process::ExitCode;

use conformance::{Requirement, Selection};

const HELP: &str = "\
Runs the batch conformance scenarios against a server over HTTP and WebSocket.

The server must serve the fixture API (docs/fixture-api.md) with a batch
endpoint at /batch and its default configuration, and sockets at /socket with
the default socket configuration: the socket scenarios connect to
ws://HOST:PORT/socket, HOST:PORT being the url's. For a server without sockets,
--skip sockets leaves them out. The revocation scenarios need subscriptions
checked before every event (the demo's --socket-recheck 0); --skip recheck
leaves them out for a server with the default interval. The scenarios that need the
Facebook format, which that configuration switches off, are not run here; in a
checkout, `CONFORMANCE_URL=<URL> CONFORMANCE_FACEBOOK_URL=<URL2> cargo test -p
conformance` runs them too, against a second server that enables it.

Usage: conformance --url <URL> [--name <NAME>] [--only <TEXT>] [--skip <WHAT>]

Options:
  --url <URL>    base url of the server, such as http://127.0.0.1:8080
  --name <NAME>  name printed in the summary line (default: the url)
  --only <TEXT>  run only the scenarios whose name contains TEXT (such as headers.)
  --skip <WHAT>  leave out the scenarios that need WHAT, which the server does not
                 serve: sockets, recheck (may be given more than once)
  -h, --help     print this help

Exit status: 0 when every scenario passed, 1 when any failed, 2 on a usage error.";

struct Args {
    url: String,
    name: Option<String>,
    selection: Selection,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut url, mut name, mut selection) = (None, None, Selection::new());
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--url" => url = Some(value("--url")?),
            "--name" => name = Some(value("--name")?),
            "--only" => selection = selection.only(value("--only")?),
            "--skip" => {
                let requirement: Requirement = value("--skip")?
                    .parse()
                    .map_err(|err| format!("--skip: {err}"))?;
                selection = selection.skip(requirement);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    Ok(Some(Args {
        url,
        name,
        selection,
    }))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let name = args.name.as_deref().unwrap_or(&args.url);
    match conformance::run_selected(&args.url, name, &args.selection) {
        Ok(report) => {
            println!("{report}");
            if report.failed() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
