//! The demo's settings: every [`Config`] and [`SocketConfig`] setting, and the demo's
//! own (address, framework, Redis), from flags, environment variables and a TOML
//! file.
//!
//! Each setting has one name, `max_ops` say, and from it its flag (`--max-ops`), its
//! environment variable (`BATCH_MAX_OPS`) and its TOML key (`max_ops`; the socket
//! settings also as keys of a `[socket]` table: `[socket] max_queued` is
//! `socket_max_queued`). For each setting the first of these that is given wins:
//! the flag, the environment variable, the file, the default. A new setting is one
//! row of [`SETTINGS`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use batch_core::{
    Config, ConfigBuilder, ConfigError, Format, HeaderPolicy, SocketConfig, SocketConfigBuilder,
};
use fixture::Framework;
use http::HeaderName;
use thiserror::Error;

/// What the demo runs with.
#[derive(Debug)]
pub struct Settings {
    /// The endpoint's configuration.
    pub config: Config,
    /// The same configuration unbuilt, for what only `main` can add: the Redis
    /// idempotency store, which needs the runtime `main` starts.
    pub builder: ConfigBuilder,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Which framework serves the fixture.
    pub framework: Framework,
    /// The Redis URL change events and idempotency keys are shared through, if any.
    pub redis: Option<String>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Serve with these settings.
    Run(Box<Settings>),
    /// Print the usage and stop.
    Help,
}

/// Settings that cannot be used: the demo says which and exits with code 2.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// An argument that is no flag of the demo's.
    #[error("unknown argument {0:?}")]
    UnknownArgument(String),
    /// A flag given without its value.
    #[error("{0} needs a value")]
    MissingValue(String),
    /// A value that is not one the setting takes.
    #[error("{origin}: {problem}")]
    BadValue {
        /// Where the value came from: the flag, the variable or the file's key.
        origin: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The configuration file cannot be read or is not TOML.
    #[error("--config {path}: {problem}")]
    File {
        /// The file's path.
        path: String,
        /// Why it cannot be used.
        problem: String,
    },
    /// The settings, each fine alone, make no configuration together.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What every setting is applied to, in [`SETTINGS`] order.
struct Draft {
    config: ConfigBuilder,
    policy: HeaderPolicy,
    sockets: bool,
    socket: SocketConfigBuilder,
    addr: SocketAddr,
    framework: Framework,
    redis: Option<String>,
}

/// One setting: its name, the shape of its value, its default as the usage prints
/// it (and as it parses: a test checks that the two agree), what it does, and how
/// its value is applied.
struct Setting {
    name: &'static str,
    value: &'static str,
    default: &'static str,
    help: &'static str,
    apply: fn(&mut Draft, &str) -> Result<(), String>,
}

impl Setting {
    fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    fn env(&self) -> String {
        format!("BATCH_{}", self.name.to_ascii_uppercase())
    }

    fn is_switch(&self) -> bool {
        self.value == "BOOL"
    }
}

/// Replaces a by-value builder in place.
fn edit<B>(builder: &mut B, change: impl FnOnce(B) -> B)
where
    B: Clone,
{
    *builder = change(builder.clone());
}

/// Every setting, in the order the usage lists them and they are applied.
const SETTINGS: &[Setting] = &[
    Setting {
        name: "addr",
        value: "HOST:PORT",
        default: "127.0.0.1:3000",
        help: "where to listen",
        apply: |d, v| {
            d.addr = v
                .parse()
                .map_err(|_| format!("wants HOST:PORT, such as 127.0.0.1:3000; got {v:?}"))?;
            Ok(())
        },
    },
    Setting {
        name: "framework",
        value: "NAME",
        default: "axum",
        help: "axum, actix, warp or tower (BatchLayer on hyper)",
        apply: |d, v| {
            d.framework = Framework::from_name(v)
                .ok_or_else(|| format!("wants axum, actix, warp or tower; got {v:?}"))?;
            Ok(())
        },
    },
    Setting {
        name: "redis",
        value: "URL",
        default: "none",
        help: "share change events (and their history) and idempotency keys with other replicas \
               through Redis, such as redis://127.0.0.1:6379 (none: both stay in this process)",
        apply: |d, v| {
            d.redis = Some(v.to_owned()).filter(|url| !url.is_empty() && url != "none");
            Ok(())
        },
    },
    Setting {
        name: "path",
        value: "PATH",
        default: "/batch",
        help: "the batch endpoint's path",
        apply: |d, v| {
            edit(&mut d.config, |c| c.path(v));
            Ok(())
        },
    },
    Setting {
        name: "max_ops",
        value: "N",
        default: "50",
        help: "most ops in one batch (more: 413)",
        apply: |d, v| {
            let n = count(v)?;
            edit(&mut d.config, |c| c.max_ops(n));
            Ok(())
        },
    },
    Setting {
        name: "max_body",
        value: "BYTES",
        default: "1MiB",
        help: "largest batch body (larger: 413)",
        apply: |d, v| {
            let n = bytes(v)?;
            edit(&mut d.config, |c| c.max_body(n));
            Ok(())
        },
    },
    Setting {
        name: "max_concurrency",
        value: "N",
        default: "16",
        help: "ops of one batch running at once",
        apply: |d, v| {
            let n = count(v)?;
            edit(&mut d.config, |c| c.max_concurrency(n));
            Ok(())
        },
    },
    Setting {
        name: "op_timeout",
        value: "DURATION",
        default: "30s",
        help: "longest an op runs (then 504)",
        apply: |d, v| {
            let t = duration(v)?;
            edit(&mut d.config, |c| c.op_timeout(t));
            Ok(())
        },
    },
    Setting {
        name: "batch_deadline",
        value: "DURATION",
        default: "60s",
        help: "longest a whole batch runs (ops unfinished then: 504)",
        apply: |d, v| {
            let t = duration(v)?;
            edit(&mut d.config, |c| c.batch_deadline(t));
            Ok(())
        },
    },
    Setting {
        name: "max_response_body",
        value: "BYTES",
        default: "8MiB",
        help: "largest response body of one op (larger: 502)",
        apply: |d, v| {
            let n = bytes(v)?;
            edit(&mut d.config, |c| c.max_response_body(n));
            Ok(())
        },
    },
    Setting {
        name: "max_batch_response",
        value: "BYTES",
        default: "16MiB",
        help: "results one buffered answer holds (past it: 507; streamed answers: no cap)",
        apply: |d, v| {
            let n = bytes(v)?;
            edit(&mut d.config, |c| c.max_batch_response(n));
            Ok(())
        },
    },
    Setting {
        name: "max_in_flight",
        value: "N",
        default: "1024",
        help: "ops running at once across all batches (beyond: 503)",
        apply: |d, v| {
            let n = count(v)?;
            edit(&mut d.config, |c| c.max_in_flight(n));
            Ok(())
        },
    },
    Setting {
        name: "formats",
        value: "LIST",
        default: "native,graph,aggregate,multipart",
        help: "the wire formats accepted: native, graph, facebook, aggregate, multipart",
        apply: |d, v| {
            let on = list(v)
                .map(|name| {
                    FORMATS
                        .into_iter()
                        .find(|f| f.name() == name)
                        .ok_or_else(|| {
                            format!("{name:?} is no format; the formats are {}", format_names())
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            edit(&mut d.config, |mut c| {
                for format in FORMATS {
                    c = c.format(format, on.contains(&format));
                }
                c
            });
            Ok(())
        },
    },
    Setting {
        name: "facebook",
        value: "BOOL",
        default: "false",
        help: "accept the Facebook Graph format too (form bodies: see the README's CSRF note)",
        apply: |d, v| {
            let on = switch(v)?;
            edit(&mut d.config, |c| c.format(Format::Facebook, on));
            Ok(())
        },
    },
    Setting {
        name: "idempotency",
        value: "BOOL",
        default: "true",
        help: "run a batch sent with an Idempotency-Key at most once per key and caller",
        apply: |d, v| {
            let on = switch(v)?;
            edit(&mut d.config, |c| c.idempotency(on));
            Ok(())
        },
    },
    Setting {
        name: "idempotency_ttl",
        value: "DURATION",
        default: "24h",
        help: "how long a keyed batch's answer is kept for its retries",
        apply: |d, v| {
            let t = duration(v)?;
            edit(&mut d.config, |c| c.idempotency_ttl(t));
            Ok(())
        },
    },
    Setting {
        name: "allow_routes",
        value: "LIST",
        default: "none",
        help: "refuse (403) batches with an op outside these paths (/items, /items/*)",
        apply: |d, v| {
            let patterns: Vec<&str> = list(v).collect();
            if !patterns.is_empty() {
                edit(&mut d.config, |c| c.allow_routes(patterns));
            }
            Ok(())
        },
    },
    Setting {
        name: "deny_routes",
        value: "LIST",
        default: "none",
        help: "refuse (403) batches with an op on one of these paths",
        apply: |d, v| {
            let patterns: Vec<&str> = list(v).collect();
            if !patterns.is_empty() {
                edit(&mut d.config, |c| c.deny_routes(patterns));
            }
            Ok(())
        },
    },
    Setting {
        name: "not_inherited_headers",
        value: "LIST",
        default: "none",
        help: "outer headers ops do not inherit, beyond the defaults",
        apply: |d, v| {
            for name in header_names(v)? {
                edit(&mut d.policy, |p| p.not_inherited(name));
            }
            Ok(())
        },
    },
    Setting {
        name: "forbidden_headers",
        value: "LIST",
        default: "none",
        help: "headers ops may not set (422), beyond the defaults",
        apply: |d, v| {
            for name in header_names(v)? {
                edit(&mut d.policy, |p| p.forbid(name));
            }
            Ok(())
        },
    },
    Setting {
        name: "allowed_headers",
        value: "LIST",
        default: "none",
        help: "headers ops may set although the defaults forbid them",
        apply: |d, v| {
            for name in header_names(v)? {
                edit(&mut d.policy, |p| p.allow(name));
            }
            Ok(())
        },
    },
    Setting {
        name: "sockets",
        value: "BOOL",
        default: "true",
        help: "serve real-time sockets (and the live page's updates)",
        apply: |d, v| {
            d.sockets = switch(v)?;
            Ok(())
        },
    },
    Setting {
        name: "socket_path",
        value: "PATH",
        default: "/socket",
        help: "the socket endpoint's path",
        apply: |d, v| {
            edit(&mut d.socket, |s| s.path(v));
            Ok(())
        },
    },
    Setting {
        name: "socket_allow_origins",
        value: "LIST",
        default: "none",
        help: "browser origins that may open a socket (none: the request's own host)",
        apply: |d, v| {
            let origins: Vec<&str> = list(v).collect();
            if !origins.is_empty() {
                edit(&mut d.socket, |s| s.allow_origins(origins));
            }
            Ok(())
        },
    },
    Setting {
        name: "socket_max_message",
        value: "BYTES",
        default: "64KiB",
        help: "largest socket message (larger: close 1009)",
        apply: |d, v| {
            let n = bytes(v)?;
            edit(&mut d.socket, |s| s.max_message(n));
            Ok(())
        },
    },
    Setting {
        name: "socket_max_subscriptions",
        value: "N",
        default: "100",
        help: "subscriptions per socket (more: error 429)",
        apply: |d, v| {
            let n = count(v)?;
            edit(&mut d.socket, |s| s.max_subscriptions(n));
            Ok(())
        },
    },
    Setting {
        name: "socket_max_queued",
        value: "N",
        default: "256",
        help: "messages waiting to be written to one socket (more: close 1013)",
        apply: |d, v| {
            let n = count(v)?;
            edit(&mut d.socket, |s| s.max_queued(n));
            Ok(())
        },
    },
    Setting {
        name: "socket_max_sockets",
        value: "N",
        default: "10000",
        help: "sockets open at once (more: 503)",
        apply: |d, v| {
            let n = count(v)?;
            edit(&mut d.socket, |s| s.max_sockets(n));
            Ok(())
        },
    },
    Setting {
        name: "socket_max_in_flight",
        value: "N",
        default: "16",
        help: "messages of one socket running at once",
        apply: |d, v| {
            let n = count(v)?;
            edit(&mut d.socket, |s| s.max_in_flight(n));
            Ok(())
        },
    },
    Setting {
        name: "socket_ping_interval",
        value: "DURATION",
        default: "25s",
        help: "how often an idle socket is pinged",
        apply: |d, v| {
            let t = duration(v)?;
            edit(&mut d.socket, |s| s.ping_interval(t));
            Ok(())
        },
    },
    Setting {
        name: "socket_idle_timeout",
        value: "DURATION",
        default: "60s",
        help: "a socket silent this long is closed (1001)",
        apply: |d, v| {
            let t = duration(v)?;
            edit(&mut d.socket, |s| s.idle_timeout(t));
            Ok(())
        },
    },
    Setting {
        name: "socket_close_grace",
        value: "DURATION",
        default: "5s",
        help: "wait for the client's close frame",
        apply: |d, v| {
            let t = duration(v)?;
            edit(&mut d.socket, |s| s.close_grace(t));
            Ok(())
        },
    },
    Setting {
        name: "socket_slow_reader_grace",
        value: "DURATION",
        default: "60s",
        help: "keep a socket closed for reading slowly until its reader sees the close",
        apply: |d, v| {
            let t = duration(v)?;
            edit(&mut d.socket, |s| s.slow_reader_grace(t));
            Ok(())
        },
    },
    Setting {
        name: "socket_history_events",
        value: "N",
        default: "1000",
        help: "latest events kept per URI for clients that resume",
        apply: |d, v| {
            let n = count(v)?;
            edit(&mut d.socket, |s| s.history_events(n));
            Ok(())
        },
    },
    Setting {
        name: "socket_recheck",
        value: "SECS",
        default: "60",
        help: "run a subscription's GET again before an event once its last check is this old; 0 before every event, off never",
        apply: |d, v| {
            let interval = recheck(v)?;
            edit(&mut d.socket, |s| s.recheck(interval));
            Ok(())
        },
    },
    Setting {
        name: "socket_history_age",
        value: "DURATION",
        default: "5m",
        help: "how long events are kept for clients that resume",
        apply: |d, v| {
            let t = duration(v)?;
            edit(&mut d.socket, |s| s.history_age(t));
            Ok(())
        },
    },
];

/// Every format, as `--formats` names them.
const FORMATS: [Format; 5] = [
    Format::Native,
    Format::Graph,
    Format::Facebook,
    Format::Aggregate,
    Format::Multipart,
];

fn format_names() -> String {
    FORMATS.map(Format::name).join(", ")
}

/// Reads the command line `args`, the environment (through `env`) and the file
/// `--config` names (or `BATCH_CONFIG`).
pub fn load(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, SettingsError> {
    let mut flags = HashMap::new();
    let mut config_file = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        if flag == "--config" {
            let path = inline.or_else(|| args.next());
            config_file = Some(path.ok_or(SettingsError::MissingValue(flag))?);
            continue;
        }
        let setting = SETTINGS
            .iter()
            .find(|s| s.flag() == flag)
            .ok_or_else(|| SettingsError::UnknownArgument(flag.clone()))?;
        // A switch alone turns its setting on; `--facebook=false` turns it off.
        let value = match inline {
            Some(value) => value,
            None if setting.is_switch() => "true".to_owned(),
            None => args
                .next()
                .ok_or_else(|| SettingsError::MissingValue(flag.clone()))?,
        };
        flags.insert(setting.name, (flag, value));
    }
    let file = match config_file.or_else(|| env("BATCH_CONFIG")) {
        Some(path) => read_file(&path)?,
        None => HashMap::new(),
    };
    let mut draft = Draft {
        config: Config::builder(),
        policy: HeaderPolicy::default(),
        sockets: true,
        socket: SocketConfig::builder(),
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        framework: Framework::Axum,
        redis: None,
    };
    for setting in SETTINGS {
        let given = flags.remove(setting.name).or_else(|| {
            let name = setting.env();
            env(&name).map(|value| (name, value))
        });
        let given = given.or_else(|| file.get(setting.name).cloned());
        if let Some((origin, value)) = given {
            (setting.apply)(&mut draft, value.trim())
                .map_err(|problem| SettingsError::BadValue { origin, problem })?;
        }
    }
    let mut config = draft.config.header_policy(draft.policy);
    if draft.sockets {
        config = config.sockets(draft.socket.build()?);
    }
    Ok(Command::Run(Box::new(Settings {
        config: config.clone().build()?,
        builder: config,
        addr: draft.addr,
        framework: draft.framework,
        redis: draft.redis,
    })))
}

/// The values of a TOML file by setting name, each with where it came from.
fn read_file(path: &str) -> Result<HashMap<&'static str, (String, String)>, SettingsError> {
    let fail = |problem: String| SettingsError::File {
        path: path.to_owned(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|err| fail(err.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|err: toml::de::Error| fail(err.to_string().trim_end().to_owned()))?;
    let mut values = HashMap::new();
    let mut entries: Vec<(String, toml::Value)> = Vec::new();
    for (key, value) in table {
        match value {
            // One level of tables: `[socket] max_queued` is `socket_max_queued`.
            toml::Value::Table(inner) => {
                entries.extend(inner.into_iter().map(|(k, v)| (format!("{key}_{k}"), v)));
            }
            value => entries.push((key, value)),
        }
    }
    for (key, value) in entries {
        let setting = SETTINGS
            .iter()
            .find(|s| s.name == key)
            .ok_or_else(|| fail(format!("{key:?} is no setting (see --help)")))?;
        let text = toml_text(&value).ok_or_else(|| {
            fail(format!(
                "{key}: wants a string, a number, a boolean or a list"
            ))
        })?;
        values.insert(setting.name, (format!("{path}: {key}"), text));
    }
    Ok(values)
}

/// A TOML value as the text a flag would carry; lists are comma-separated.
fn toml_text(value: &toml::Value) -> Option<String> {
    Some(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Array(_) | toml::Value::Table(_) => None,
                item => toml_text(item),
            })
            .collect::<Option<Vec<_>>>()?
            .join(","),
        _ => return None,
    })
}

/// The usage: every flag with its variable, default and meaning.
pub fn usage() -> String {
    let mut text = String::from(
        "usage: demo [--config FILE] [--FLAG VALUE]...\n\n\
         Each setting is a flag, an environment variable and a key of the TOML file\n\
         --config FILE (or BATCH_CONFIG) names; the first given wins, in that order,\n\
         then the default. Sizes take KiB, MiB or GiB; durations ms, s, m or h;\n\
         lists are comma-separated; a BOOL flag alone means true.\n\n",
    );
    for setting in SETTINGS {
        let _ = writeln!(
            text,
            "  {} {}\n      {} (env {}; default {})",
            setting.flag(),
            setting.value,
            setting.help,
            setting.env(),
            setting.default
        );
    }
    text.push_str("  --config FILE\n      read settings from this TOML file (env BATCH_CONFIG)\n");
    text.push_str("  -h, --help\n      this text");
    text
}

fn count(v: &str) -> Result<usize, String> {
    v.parse()
        .map_err(|_| format!("wants a whole number, such as 10; got {v:?}"))
}

/// A size in bytes: a whole number, with `KiB`, `MiB` or `GiB` after it or not.
fn bytes(v: &str) -> Result<usize, String> {
    let wrong = || format!("wants a size in bytes, such as 65536 or 64KiB; got {v:?}");
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: usize = number.parse().map_err(|_| wrong())?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(wrong()),
    };
    number.checked_mul(scale).ok_or_else(wrong)
}

/// A duration: a whole number followed by `ms`, `s`, `m` or `h`.
fn duration(v: &str) -> Result<Duration, String> {
    let wrong = || format!("wants a duration such as 500ms, 30s or 2m; got {v:?}");
    let split = v.find(|c: char| !c.is_ascii_digit()).ok_or_else(wrong)?;
    let (number, unit) = v.split_at(split);
    let number: u64 = number.parse().map_err(|_| wrong())?;
    let millis = match unit.trim() {
        "ms" => Some(number),
        "s" => number.checked_mul(1_000),
        "m" => number.checked_mul(60_000),
        "h" => number.checked_mul(3_600_000),
        _ => None,
    };
    millis.map(Duration::from_millis).ok_or_else(wrong)
}

/// A recheck interval: whole seconds, or a duration (`500ms`), or `off`.
fn recheck(v: &str) -> Result<Option<Duration>, String> {
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match v.parse::<u64>() {
        Ok(seconds) => Ok(Some(Duration::from_secs(seconds))),
        Err(_) => duration(v).map(Some).map_err(|_| {
            format!(
                "wants seconds (0 before every event), a duration such as 500ms, or off; got {v:?}"
            )
        }),
    }
}

fn switch(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("wants true or false; got {v:?}")),
    }
}

/// The items of a comma-separated list; `none` or nothing is the empty list.
fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty() && *item != "none")
}

fn header_names(v: &str) -> Result<Vec<HeaderName>, String> {
    list(v)
        .map(|name| HeaderName::try_from(name).map_err(|_| format!("{name:?} is no header name")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ways a setting can be given.
    #[derive(Debug, Clone, Copy)]
    enum Source {
        Flag,
        Env,
        File,
    }

    const SOURCES: [Source; 3] = [Source::Flag, Source::Env, Source::File];

    /// Loads `values` (setting name, value) given all through `source`.
    fn given(source: Source, values: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let setting = |name: &str| SETTINGS.iter().find(|s| s.name == name).unwrap();
        let mut args = Vec::new();
        let mut env = HashMap::new();
        match source {
            Source::Flag => {
                // `--flag=value`: the one form every flag takes, switches included.
                for (name, value) in values {
                    args.push(format!("{}={value}", setting(name).flag()));
                }
            }
            Source::Env => {
                for (name, value) in values {
                    env.insert(setting(name).env(), value.to_string());
                }
            }
            Source::File => {
                let toml: String = values
                    .iter()
                    .map(|(name, value)| format!("{name} = {value:?}\n"))
                    .collect();
                env.insert("BATCH_CONFIG".to_owned(), write_file(&toml));
            }
        }
        run(load(args, |name| env.get(name).cloned()))
    }

    fn run(command: Result<Command, SettingsError>) -> Result<Settings, SettingsError> {
        command.map(|command| match command {
            Command::Run(settings) => *settings,
            Command::Help => panic!("help"),
        })
    }

    /// Writes `text` to a file of its own and returns its path.
    fn write_file(text: &str) -> String {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "demo-settings-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn the_demos_own_settings_arrive_from_every_source() {
        for source in SOURCES {
            let settings = given(
                source,
                &[
                    ("addr", "127.0.0.1:0"),
                    ("framework", "warp"),
                    ("redis", "redis://127.0.0.1:1"),
                ],
            )
            .unwrap();
            assert_eq!(settings.addr.to_string(), "127.0.0.1:0", "{source:?}");
            assert_eq!(settings.framework, Framework::Warp, "{source:?}");
            assert_eq!(settings.redis.as_deref(), Some("redis://127.0.0.1:1"));
        }
    }

    #[test]
    fn limits_arrive_from_every_source() {
        for source in SOURCES {
            let config = given(
                source,
                &[
                    ("path", "/api/batch"),
                    ("max_ops", "7"),
                    ("max_body", "2MiB"),
                    ("max_concurrency", "3"),
                    ("max_response_body", "1024"),
                    ("max_batch_response", "3MiB"),
                    ("max_in_flight", "99"),
                ],
            )
            .unwrap()
            .config;
            assert_eq!(config.path(), "/api/batch", "{source:?}");
            assert_eq!(config.max_ops(), 7, "{source:?}");
            assert_eq!(config.max_body(), 2 << 20, "{source:?}");
            assert_eq!(config.max_concurrency(), 3, "{source:?}");
            assert_eq!(config.max_response_body(), 1024, "{source:?}");
            assert_eq!(config.max_batch_response(), 3 << 20, "{source:?}");
            assert_eq!(config.max_in_flight(), 99, "{source:?}");
        }
    }

    #[test]
    fn timeouts_arrive_from_every_source() {
        for source in SOURCES {
            let config = given(
                source,
                &[("op_timeout", "1500ms"), ("batch_deadline", "2m")],
            )
            .unwrap()
            .config;
            assert_eq!(
                config.op_timeout(),
                Duration::from_millis(1500),
                "{source:?}"
            );
            assert_eq!(
                config.batch_deadline(),
                Duration::from_secs(120),
                "{source:?}"
            );
        }
    }

    #[test]
    fn idempotency_arrives_from_every_source() {
        for source in SOURCES {
            let config = given(source, &[("idempotency_ttl", "2h")]).unwrap().config;
            assert!(config.is_idempotent(), "{source:?}");
            assert_eq!(
                config.idempotency_ttl(),
                Duration::from_secs(7200),
                "{source:?}"
            );
            let off = given(source, &[("idempotency", "false")]).unwrap().config;
            assert!(!off.is_idempotent(), "{source:?}");
        }
    }

    #[test]
    fn formats_arrive_from_every_source() {
        for source in SOURCES {
            let config = given(source, &[("formats", "native, multipart")])
                .unwrap()
                .config;
            let on: Vec<_> = FORMATS.into_iter().filter(|f| config.accepts(*f)).collect();
            assert_eq!(on, [Format::Native, Format::Multipart], "{source:?}");
            let config = given(source, &[("facebook", "true")]).unwrap().config;
            assert!(config.accepts(Format::Facebook), "{source:?}");
            assert!(config.accepts(Format::Graph), "{source:?}");
        }
        let alone = run(load(["--facebook".to_owned()], |_| None)).unwrap();
        assert!(
            alone.config.accepts(Format::Facebook),
            "a switch alone is on"
        );
    }

    #[test]
    fn the_header_policy_arrives_from_every_source() {
        for source in SOURCES {
            let config = given(
                source,
                &[
                    ("not_inherited_headers", "x-tenant"),
                    ("forbidden_headers", "x-request-id,x-debug"),
                    ("allowed_headers", "x-forwarded-proto"),
                ],
            )
            .unwrap()
            .config;
            let policy = config.header_policy();
            let name = HeaderName::from_static;
            assert!(policy.is_forbidden(&name("x-request-id")), "{source:?}");
            assert!(policy.is_forbidden(&name("x-debug")), "{source:?}");
            assert!(
                !policy.is_forbidden(&name("x-forwarded-proto")),
                "{source:?}"
            );
            // Which headers are inherited is the engine's to apply; the policy's
            // own list says what it was told.
            let listed = format!("{policy:?}");
            assert!(listed.contains("not_inherited: [\"x-tenant\"]"), "{listed}");
        }
    }

    #[test]
    fn route_rules_arrive_from_every_source() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let status = |config: &Config, url: &str| {
            let endpoint = batch_core::BatchEndpoint::new(config.clone());
            let (outer, ()) = http::Request::post("/batch").body(()).unwrap().into_parts();
            let batch = batch_core::BatchRequest::new(vec![batch_core::Operation::new("GET", url)]);
            match runtime.block_on(endpoint.run(&NoContent, &outer, batch)) {
                Ok(response) => response.results[0].status.as_u16(),
                Err(problem) => problem.status().as_u16(),
            }
        };
        for source in SOURCES {
            let config = given(source, &[("allow_routes", "/items,/items/*")])
                .unwrap()
                .config;
            assert_eq!(status(&config, "/items/1"), 204, "{source:?}");
            assert_eq!(status(&config, "/health"), 403, "{source:?}");
            let config = given(source, &[("deny_routes", "/login")]).unwrap().config;
            assert_eq!(status(&config, "/login"), 403, "{source:?}");
            assert_eq!(status(&config, "/health"), 204, "{source:?}");
        }
    }

    /// Answers every op 204.
    struct NoContent;

    impl batch_core::Executor for NoContent {
        async fn execute(
            &self,
            _: http::Request<bytes::Bytes>,
            _: usize,
        ) -> Result<http::Response<bytes::Bytes>, batch_core::ExecuteError> {
            let mut response = http::Response::new(bytes::Bytes::new());
            *response.status_mut() = http::StatusCode::NO_CONTENT;
            Ok(response)
        }
    }

    #[test]
    fn socket_settings_arrive_from_every_source() {
        for source in SOURCES {
            let config = given(
                source,
                &[
                    ("socket_path", "/live"),
                    ("socket_allow_origins", "https://app.example.com"),
                    ("socket_max_message", "1KiB"),
                    ("socket_max_subscriptions", "5"),
                    ("socket_max_queued", "6"),
                    ("socket_max_sockets", "7"),
                    ("socket_max_in_flight", "8"),
                    ("socket_ping_interval", "9s"),
                    ("socket_idle_timeout", "10s"),
                    ("socket_close_grace", "11s"),
                    ("socket_slow_reader_grace", "12s"),
                    ("socket_history_events", "13"),
                    ("socket_history_age", "14s"),
                    ("socket_recheck", "15"),
                ],
            )
            .unwrap()
            .config;
            let sockets = config.sockets().unwrap();
            assert_eq!(sockets.path(), "/live", "{source:?}");
            assert!(sockets.allows_origin("https://app.example.com", Some("x")));
            assert!(!sockets.allows_origin("http://x", Some("x")), "{source:?}");
            assert_eq!(sockets.max_message(), 1024, "{source:?}");
            assert_eq!(sockets.max_subscriptions(), 5, "{source:?}");
            assert_eq!(sockets.max_queued(), 6, "{source:?}");
            assert_eq!(sockets.max_sockets(), 7, "{source:?}");
            assert_eq!(sockets.max_in_flight(), 8, "{source:?}");
            assert_eq!(sockets.ping_interval(), Duration::from_secs(9));
            assert_eq!(sockets.idle_timeout(), Duration::from_secs(10));
            assert_eq!(sockets.close_grace(), Duration::from_secs(11));
            assert_eq!(sockets.slow_reader_grace(), Duration::from_secs(12));
            assert_eq!(sockets.history_events(), 13, "{source:?}");
            assert_eq!(sockets.history_age(), Duration::from_secs(14));
            assert_eq!(sockets.recheck(), Some(Duration::from_secs(15)));
            let off = given(source, &[("sockets", "false")]).unwrap().config;
            assert!(off.sockets().is_none(), "{source:?}");
        }
    }

    #[test]
    fn a_toml_file_takes_native_values_and_a_socket_table() {
        let file = write_file(
            "max_ops = 9\nfacebook = true\nformats = [\"native\", \"graph\"]\n\
             [socket]\nmax_queued = 4\nping_interval = \"3s\"\n",
        );
        let settings = run(load(["--config".to_owned(), file], |_| None)).unwrap();
        let config = settings.config;
        assert_eq!(config.max_ops(), 9);
        assert!(config.accepts(Format::Facebook) && config.accepts(Format::Graph));
        assert!(!config.accepts(Format::Multipart));
        let sockets = config.sockets().unwrap();
        assert_eq!(sockets.max_queued(), 4);
        assert_eq!(sockets.ping_interval(), Duration::from_secs(3));
    }

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file() {
        let file = write_file("max_ops = 1\nmax_concurrency = 2\nmax_in_flight = 3\n");
        let env: HashMap<&str, &str> = [
            ("BATCH_CONFIG", file.as_str()),
            ("BATCH_MAX_OPS", "10"),
            ("BATCH_MAX_CONCURRENCY", "20"),
        ]
        .into();
        let args = ["--max-ops", "100"].map(str::to_owned);
        let config = run(load(args, |name| env.get(name).map(|v| v.to_string())))
            .unwrap()
            .config;
        assert_eq!(config.max_ops(), 100, "the flag");
        assert_eq!(config.max_concurrency(), 20, "the environment");
        assert_eq!(config.max_in_flight(), 3, "the file");
        assert_eq!(config.max_body(), 1 << 20, "the default");
    }

    #[test]
    fn the_defaults_the_usage_prints_are_the_defaults() {
        let mut draft = Draft {
            config: Config::builder(),
            policy: HeaderPolicy::default(),
            sockets: true,
            socket: SocketConfig::builder(),
            addr: SocketAddr::from(([0, 0, 0, 0], 1)),
            framework: Framework::Tower,
            redis: Some("x".to_owned()),
        };
        for setting in SETTINGS {
            (setting.apply)(&mut draft, setting.default).unwrap();
        }
        let printed = draft
            .config
            .header_policy(draft.policy)
            .sockets(draft.socket.build().unwrap())
            .build()
            .unwrap();
        let default = Config::builder()
            .sockets(SocketConfig::default())
            .build()
            .unwrap();
        assert_eq!(format!("{printed:?}"), format!("{default:?}"));
        let defaults = run(load([], |_| None)).unwrap();
        assert_eq!(
            (draft.addr, draft.framework, draft.redis),
            (defaults.addr, defaults.framework, defaults.redis)
        );
    }

    #[test]
    fn bad_values_name_where_they_came_from() {
        let flag = given(Source::Flag, &[("max_ops", "many")]).unwrap_err();
        assert_eq!(
            flag.to_string(),
            "--max-ops: wants a whole number, such as 10; got \"many\""
        );
        let env = given(Source::Env, &[("op_timeout", "30")]).unwrap_err();
        assert!(
            env.to_string()
                .starts_with("BATCH_OP_TIMEOUT: wants a duration"),
            "{env}"
        );
        let file = given(Source::File, &[("formats", "native,xml")]).unwrap_err();
        assert!(
            file.to_string().contains(": formats: \"xml\" is no format"),
            "{file}"
        );
        let zero = given(Source::Flag, &[("max_ops", "0")]).unwrap_err();
        assert_eq!(zero.to_string(), "max_ops must be at least 1");
        let unknown = run(load(["--frob".to_owned()], |_| None)).unwrap_err();
        assert_eq!(unknown.to_string(), "unknown argument \"--frob\"");
        let missing = run(load(["--addr".to_owned()], |_| None)).unwrap_err();
        assert_eq!(missing.to_string(), "--addr needs a value");
        let key = write_file("max_opz = 3\n");
        let typo = run(load(["--config".to_owned(), key], |_| None)).unwrap_err();
        assert!(
            typo.to_string().contains("\"max_opz\" is no setting"),
            "{typo}"
        );
        let absent = run(load(["--config=/nonexistent/demo.toml".to_owned()], |_| {
            None
        }));
        assert!(
            absent
                .unwrap_err()
                .to_string()
                .starts_with("--config /nonexistent")
        );
    }

    #[test]
    fn the_usage_lists_every_flag_and_variable_with_its_default() {
        let usage = usage();
        for setting in SETTINGS {
            let line = format!("  {} {}\n", setting.flag(), setting.value);
            assert!(usage.contains(&line), "{line}");
            let env = format!("(env {}; default {})", setting.env(), setting.default);
            assert!(usage.contains(&env), "{env}");
        }
        for other in ["--config FILE", "BATCH_CONFIG", "--help"] {
            assert!(usage.contains(other), "{other}");
        }
        assert!(matches!(
            load(["-h".to_owned()], |_| None),
            Ok(Command::Help)
        ));
    }
}
