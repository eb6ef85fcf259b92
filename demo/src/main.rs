//! The demo server: the fixture API (`docs/fixture-api.md`) with the batch endpoint
//! at `/batch`, real-time sockets at `/socket` and a live page of the items at `/`,
//! over HTTP/1.1 and HTTP/2 (h2c) on one port.
//!
//! ```text
//! cargo run -p demo                                   # axum on 127.0.0.1:3000
//! cargo run -p demo -- --framework actix --addr 127.0.0.1:8080
//! cargo run -p demo -- --redis redis://127.0.0.1:6379 # change events and idempotency keys shared by replicas
//! ```
//!
//! Set `RUST_LOG` to change what is logged (default: one line per batch).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use batch_core::{BatchEndpoint, Config, SocketConfig};
use batch_redis::{RedisHub, RedisStore};
use fixture::Framework;

const USAGE: &str = "\
usage: demo [--addr HOST:PORT] [--framework NAME] [--redis URL] [--idempotency-ttl SECS]

  --addr HOST:PORT   where to listen (default 127.0.0.1:3000)
  --framework NAME   axum (default), actix, warp or tower (BatchLayer on hyper)
  --redis URL        share change events and idempotency keys with other replicas
                     through Redis, such as redis://127.0.0.1:6379 (default: the
                     BATCH_REDIS environment variable, else both stay in this process)
  --idempotency-ttl SECS
                     how long a keyed batch's answer is kept for retries (default
                     86400)
  -h, --help         this text";

#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    framework: Framework,
    redis: Option<String>,
    idempotency_ttl: Option<Duration>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        framework: Framework::Axum,
        redis: None,
        idempotency_ttl: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--addr" => {
                let text = value("--addr")?;
                parsed.addr = text.parse().map_err(|_| {
                    format!("--addr wants HOST:PORT, such as 127.0.0.1:3000; got {text:?}")
                })?;
            }
            "--framework" => {
                let name = value("--framework")?;
                parsed.framework = Framework::from_name(&name).ok_or_else(|| {
                    format!("--framework wants axum, actix, warp or tower; got {name:?}")
                })?;
            }
            "--redis" => parsed.redis = Some(value("--redis")?),
            "--idempotency-ttl" => {
                let text = value("--idempotency-ttl")?;
                let secs = text.parse::<u64>().ok().filter(|&secs| secs > 0);
                parsed.idempotency_ttl = Some(Duration::from_secs(secs.ok_or_else(|| {
                    format!(
                        "--idempotency-ttl wants a whole number of seconds above 0; got {text:?}"
                    )
                })?));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("demo: {message}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let redis = args
        .redis
        .or_else(|| std::env::var("BATCH_REDIS").ok())
        .filter(|url| !url.is_empty());
    // The hub's tasks and the store's connection run on a small runtime of their
    // own: the fixture servers each bring theirs, and this one outlives them all.
    let links = match redis.as_deref().map(redis_links).transpose() {
        Ok(links) => links,
        Err(message) => {
            eprintln!("demo: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = Config::builder().sockets(SocketConfig::default());
    if let Some(ttl) = args.idempotency_ttl {
        config = config.idempotency_ttl(ttl);
    }
    if let Some((_, store, _)) = &links {
        config = config.idempotency_store(store.clone());
    }
    let config = match config.build() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("demo: {err}");
            return ExitCode::FAILURE;
        }
    };
    let (endpoint, events, _runtime) = match links {
        None => (
            BatchEndpoint::new(config),
            "in this process".to_owned(),
            None,
        ),
        Some((hub, _, runtime)) => {
            let events = format!(
                "shared through Redis pub/sub (replica {}), idempotency keys in Redis",
                hub.replica_id()
            );
            (BatchEndpoint::with_hub(config, hub), events, Some(runtime))
        }
    };
    let server = match args.framework.start(args.addr, endpoint) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("demo: cannot listen on {}: {err}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let url = server.url();
    let socket = format!("ws://{}/socket", server.addr());
    println!(
        "batch demo ({framework}) listening on {url} (HTTP/1.1 and h2c)\n\
live page: open {url}/ in a browser\n\
sockets on {socket}, change events {events}\n\
  websocat {socket}   then send {{\"type\": \"subscribe\", \"uri\": \"/items/\"}}   (JS: new WebSocket(\"{socket}\"))\n\ntry:\n\n\
curl -s {url}/batch -H 'content-type: application/json' -H 'authorization: Bearer ada' -d '{{\"ops\": [
  {{\"id\": \"new\", \"method\": \"POST\", \"url\": \"/items\", \"body\": {{\"name\": \"pen\"}}}},
  {{\"id\": \"me\", \"url\": \"/whoami\"}},
  {{\"url\": \"/items\", \"params\": {{\"limit\": 2}}}},
  {{\"id\": \"gone\", \"url\": \"/items/999999\"}},
  {{\"url\": \"/health\", \"depends_on\": \"gone\"}}
]}}'\n",
        framework = args.framework.name()
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

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_to_axum_on_port_3000() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(args.framework, Framework::Axum);
        assert_eq!(args.redis, None);
        let args = parse(&["--framework", "warp"]).unwrap();
        assert_eq!(args.framework, Framework::Warp);
    }

    #[test]
    fn redis_takes_a_url() {
        let args = parse(&["--redis", "redis://127.0.0.1:6379"]).unwrap();
        assert_eq!(args.redis.as_deref(), Some("redis://127.0.0.1:6379"));
        assert!(parse(&["--redis"]).unwrap_err().contains("needs a value"));
        let refused = redis_links("http://nope").unwrap_err();
        assert!(refused.contains("not a usable Redis URL"), "{refused}");
    }

    #[test]
    fn idempotency_ttl_takes_whole_seconds() {
        let args = parse(&["--idempotency-ttl", "60"]).unwrap();
        assert_eq!(args.idempotency_ttl, Some(Duration::from_secs(60)));
        assert_eq!(parse(&[]).unwrap().idempotency_ttl, None);
        for bad in ["0", "1.5", "soon"] {
            let refused = parse(&["--idempotency-ttl", bad]).unwrap_err();
            assert!(refused.contains("whole number of seconds"), "{refused}");
        }
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert!(
            parse(&["--addr", "nope"])
                .unwrap_err()
                .contains("HOST:PORT")
        );
        assert!(parse(&["--addr"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--frob"]).unwrap_err().contains("unknown argument"));
        assert!(
            parse(&["--framework", "rocket"])
                .unwrap_err()
                .contains("axum, actix, warp or tower")
        );
    }

    #[test]
    fn usage_lists_every_flag() {
        for flag in [
            "--addr",
            "--framework",
            "--redis",
            "--idempotency-ttl",
            "--help",
        ] {
            assert!(USAGE.contains(flag), "{flag}");
        }
    }
}
