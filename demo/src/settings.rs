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
    /// Where to listen.
    pub addr: SocketAddr,
    /// Which framework serves the fixture.
    pub framework: Framework,
    /// The Redis URL change events are shared through, if any.
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
        help: "share change events with other replicas through Redis pub/sub, such as \
               redis://127.0.0.1:6379 (none: events stay in this process)",
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
        config: config.build()?,
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
