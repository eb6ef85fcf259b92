//! The demo server: the fixture API (`docs/fixture-api.md`) with the batch endpoint
//! at `/batch`, real-time sockets at `/socket`, a live page of the items at `/` and
//! its metrics at `/metrics` (Prometheus text), over HTTP/1.1 and HTTP/2 (h2c) on one
//! port.
//!
//! ```text
//! cargo run -p demo                                   # axum on 127.0.0.1:3000
//! cargo run -p demo -- --framework actix --addr 127.0.0.1:8080
//! cargo run -p demo -- --redis redis://127.0.0.1:6379 # change events and idempotency keys shared by replicas
//! cargo run -p demo -- --max-ops 200 --facebook       # other settings: --help lists them
//! ```
//!
//! Every setting is also an environment variable (`BATCH_MAX_OPS`) and a key of a
//! TOML file (`--config FILE`); see `settings.rs`. Set `RUST_LOG` to change what is
//! logged (default: one line per batch; `RUST_LOG=info,batch_core::op=debug` adds a
//! span per op).

mod metrics;
mod settings;

use std::process::ExitCode;

use batch_core::BatchEndpoint;
use batch_redis::{RedisHub, RedisStore};

use crate::settings::{Command, Settings};

fn main() -> ExitCode {
    let settings = match settings::load(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(Command::Run(settings)) => *settings,
        Ok(Command::Help) => {
            println!("{}", settings::usage());
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("demo: {err}\n(demo --help lists every setting)");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let metrics = match metrics::install() {
        Ok(metrics) => metrics,
        Err(err) => {
            eprintln!("demo: {err}");
            return ExitCode::FAILURE;
        }
    };
    let Settings {
        config,
        builder,
        addr,
        framework,
        redis,
    } = settings;
    let batch_path = config.path().to_owned();
    let socket_path = config.sockets().map(|s| s.path().to_owned());
    // The hub's tasks and the store's connection run on a small runtime of their
    // own: the fixture servers each bring theirs, and this one outlives them all.
    let (endpoint, events, _runtime) = match redis {
        None => (
            BatchEndpoint::new(config),
            "in this process".to_owned(),
            None,
        ),
        Some(url) => match redis_links(&url) {
            Ok((hub, store, runtime)) => {
                let config = match builder.idempotency_store(store).build() {
                    Ok(config) => config,
                    Err(err) => {
                        eprintln!("demo: {err}");
                        return ExitCode::from(2);
                    }
                };
                let events = format!(
                    "shared through Redis streams (replica {}), idempotency keys in Redis",
                    hub.replica_id()
                );
                (BatchEndpoint::with_hub(config, hub), events, Some(runtime))
            }
            Err(message) => {
                eprintln!("demo: {message}");
                return ExitCode::FAILURE;
            }
        },
    };
    let server = match framework.start_with_metrics(addr, endpoint, metrics) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("demo: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let url = server.url();
    let sockets = match socket_path {
        Some(path) => {
            let socket = format!("ws://{}{path}", server.addr());
            format!(
                "sockets on {socket}, change events {events}\n  \
websocat {socket}   then send {{\"type\": \"subscribe\", \"uri\": \"/items/\"}}   (JS: new WebSocket(\"{socket}\"))"
            )
        }
        None => "sockets off".to_owned(),
    };
    println!(
        "batch demo ({framework}) listening on {url} (HTTP/1.1 and h2c)\n\
live page: open {url}/ in a browser\n\
metrics: curl {url}/metrics\n\
{sockets}\n\ntry:\n\n\
curl -s {url}{batch_path} -H 'content-type: application/json' -H 'authorization: Bearer ada' -d '{{\"ops\": [
  {{\"id\": \"new\", \"method\": \"POST\", \"url\": \"/items\", \"body\": {{\"name\": \"pen\"}}}},
  {{\"id\": \"me\", \"url\": \"/whoami\"}},
  {{\"url\": \"/items\", \"params\": {{\"limit\": 2}}}},
  {{\"id\": \"gone\", \"url\": \"/items/999999\"}},
  {{\"url\": \"/health\", \"depends_on\": \"gone\"}}
]}}'\n",
        framework = framework.name()
    );
    server.wait();
    ExitCode::SUCCESS
}

/// A Redis hub and an idempotency store on `url`, both on a runtime the caller
/// keeps alive.
fn redis_links(url: &str) -> Result<(RedisHub, RedisStore, tokio::runtime::Runtime), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("redis")
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the Redis runtime: {err}"))?;
    let hub = RedisHub::builder(url)
        .runtime(runtime.handle().clone())
        .build()
        .map_err(|err| format!("--redis: {err}"))?;
    let store = RedisStore::builder(url)
        .runtime(runtime.handle().clone())
        .build()
        .map_err(|err| format!("--redis: {err}"))?;
    Ok((hub, store, runtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_redis_url_is_refused() {
        let Err(refused) = redis_links("http://nope") else {
            panic!("an http URL is no Redis URL");
        };
        assert!(refused.contains("not a usable Redis URL"), "{refused}");
    }
}
