//! Configuration for `rtc serve`: defaults < rtc.toml < environment < flags, resolved
//! into one validated [`ServeConfig`]. Every problem is collected and reported with the
//! field that caused it, before anything listens.

mod app;
mod cluster;
mod drain;
mod edge;
mod file;
pub mod tls;
pub mod webhook;

use std::fmt;
use std::path::Path;

pub use app::{glob_match, AppConfig};
pub use cluster::{redact_url, ClusterConfig, Engine};
pub use drain::DrainConfig;
pub use edge::{EdgeConfig, IpRange};
pub use tls::TlsConfig;

use app::{app_from_section, app_source, apply_env_app_options, check_unique, validate_app};
use cluster::resolve_cluster;
use drain::resolve_drain;
pub use file::{AppSection, ClusterSection, DrainSection, FileConfig, ServerSection, WebhookSection};
use tls::resolve_tls;

use crate::cli::ServeArgs;
use crate::logging::LogFormat;
use crate::secret::{random_token, Secret};

/// The server pings a silent socket this long after the activity timeout the clients
/// were given: clients ping first (pusher-js pings after `activity_timeout` without a
/// message), so a healthy socket is pinged once per period, not by both sides.
pub const PING_GRACE_SECS: u64 = 30;

/// Development app id, used when no app is configured.
pub const DEV_APP_ID: &str = "100001";
/// Development app key.
pub const DEV_APP_KEY: &str = "rtc-dev-key";
/// Development app secret.
pub const DEV_APP_SECRET: &str = "rtc-dev-secret";

/// One configuration problem, naming its source and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the bad value came from and which field, e.g. `rtc.toml: apps[0].key`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All problems found in one pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

/// The resolved configuration of `rtc serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub host: String,
    /// Listen port (0 = any free port).
    pub port: u16,
    /// Route prefix: empty or `/something` without a trailing slash.
    pub path: String,
    /// Largest HTTP API body.
    pub max_request_size: usize,
    /// Admin token.
    pub admin_token: Secret,
    /// True when the token was generated because none was configured.
    pub admin_token_generated: bool,
    /// Node id.
    pub node_id: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Per-socket outbound queue limit in bytes.
    pub outbound_queue_bytes: usize,
    /// New connections per second this node admits (0 = no limit).
    pub max_new_connections_per_sec: u32,
    /// Fan-out budget: the console alerts above it; the measured line is computed against it.
    pub fanout_budget: std::time::Duration,
    /// Apps served.
    pub apps: Vec<AppConfig>,
    /// True when `apps` is the built-in development app.
    pub dev_app: bool,
    /// Cluster membership, when cluster mode is on.
    pub cluster: Option<ClusterConfig>,
    /// Drain behaviour.
    pub drain: DrainConfig,
    /// TLS on the listener (`None`: plain TCP).
    pub tls: Option<TlsConfig>,
    /// Timeouts and connection caps on the listener.
    pub edge: EdgeConfig,
}

/// Looks up environment variables (injected so tests need not touch the process env).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, ignoring empty values.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

struct Resolver<'a> {
    env: EnvLookup<'a>,
    errors: Vec<ConfigError>,
}

impl Resolver<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError { field: field.into(), message: message.into() });
    }

    /// [`Resolver::err`] against the layer that set the value (see [`source`]).
    fn err_from(&mut self, args: &ServeArgs, set: bool, id: &str, names: [&str; 4], message: impl Into<String>) {
        let at = source(args, self.env, set, id, names);
        self.err(at, message);
    }

    /// A value from a Reverb environment name, parsed.
    fn reverb<T: std::str::FromStr>(&mut self, name: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        let raw = (self.env)(name)?;
        match raw.trim().parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(format!("env {name}"), format!("'{raw}' is not valid: {e}"));
                None
            }
        }
    }
}

/// Names the layer that set a value: the flag or its `RTC_*` variable (`set` says the
/// flags/`RTC_*` layer has it), else the Reverb variable when it is set, else the file
/// key, e.g. `--port`, `RTC_PORT`, `REVERB_SERVER_PORT` or `config server.port`.
fn source(args: &ServeArgs, env: EnvLookup<'_>, set: bool, id: &str, names: [&str; 4]) -> String {
    let [flag, rtc, reverb, key] = names;
    if set {
        if args.from_env.contains(id) { rtc } else { flag }.to_string()
    } else if !reverb.is_empty() && env(reverb).is_some() {
        reverb.to_string()
    } else {
        format!("config {key}")
    }
}

/// Reads and parses a TOML config file.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigErrors> {
    let field = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors(vec![ConfigError { field: field.clone(), message: format!("cannot read: {e}") }]))?;
    parse_file(&text, &field)
}

/// Parses TOML text (named `source` in errors).
pub fn parse_file(text: &str, source: &str) -> Result<FileConfig, ConfigErrors> {
    toml::from_str(text).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            field: source.to_string(),
            message: e.to_string().trim().replace('\n', "\n    "),
        }])
    })
}

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".into());
    host.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
        .take(64)
        .collect()
}

fn normalise_path(p: &str) -> String {
    let t = p.trim().trim_end_matches('/');
    if t.is_empty() {
        String::new()
    } else if t.starts_with('/') {
        t.to_string()
    } else {
        format!("/{t}")
    }
}

/// Resolves flags, environment and file into a validated config.
pub fn resolve(args: &ServeArgs, file: FileConfig, env: EnvLookup<'_>) -> Result<ServeConfig, ConfigErrors> {
    let mut r = Resolver { env, errors: Vec::new() };
    let s = &file.server;

    // Without a configured app the development app (whose secret is public) is served:
    // then the default address is loopback only.
    let host_given = args.host.clone().or_else(|| (r.env)("REVERB_SERVER_HOST")).or_else(|| s.host.clone());
    let reverb_port = r.reverb::<u16>("REVERB_SERVER_PORT");
    let port = args.port.or(reverb_port).or(s.port).unwrap_or(8080);
    let path = normalise_path(
        &args.path.clone().or_else(|| (r.env)("REVERB_SERVER_PATH")).or_else(|| s.path.clone()).unwrap_or_default(),
    );
    let root_routes = ["/up", "/ready", "/live", "/metrics", "/admin"];
    let bad_path = if root_routes.iter().any(|r| path == *r || path.starts_with(&format!("{r}/"))) {
        Some(format!("'{path}' would shadow {}, which stay at the root", root_routes.join(", ")))
    } else if path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
        Some(format!("'{path}' is not a valid path prefix"))
    } else {
        None
    };
    if let Some(problem) = bad_path {
        r.err_from(
            args,
            args.path.is_some(),
            "path",
            ["--path", "RTC_PATH", "REVERB_SERVER_PATH", "server.path"],
            problem,
        );
    }
    let reverb_size = r.reverb::<usize>("REVERB_MAX_REQUEST_SIZE");
    let max_request_size = args.max_request_size.or(reverb_size).or(s.max_request_size).unwrap_or(256 * 1024);
    if max_request_size < 1024 {
        r.err_from(
            args,
            args.max_request_size.is_some(),
            "max_request_size",
            ["--max-request-size", "RTC_MAX_REQUEST_SIZE", "REVERB_MAX_REQUEST_SIZE", "server.max_request_size"],
            format!("{max_request_size} is too small; use at least 1024 bytes"),
        );
    }
    let outbound_queue_bytes = args.outbound_queue_bytes.or(s.outbound_queue_bytes).unwrap_or(1024 * 1024);
    let max_new_connections_per_sec =
        args.max_new_connections_per_sec.or(s.max_new_connections_per_sec).unwrap_or(5_000);
    let fanout_budget_ms = args.fanout_budget_ms.or(s.fanout_budget_ms).unwrap_or(50);
    if !(1..=60_000).contains(&fanout_budget_ms) {
        r.err("server.fanout_budget_ms", format!("{fanout_budget_ms} is out of range; use 1 to 60000 ms"));
    }
    if outbound_queue_bytes < 16 * 1024 {
        r.err_from(
            args,
            args.outbound_queue_bytes.is_some(),
            "outbound_queue_bytes",
            ["--outbound-queue-bytes", "RTC_OUTBOUND_QUEUE_BYTES", "", "server.outbound_queue_bytes"],
            format!("{outbound_queue_bytes} is too small; use at least 16384"),
        );
    }
    let (admin_token, admin_token_generated) = match args.admin_token.clone().or_else(|| s.admin_token.clone()) {
        Some(t) if t.len() < 16 => {
            r.err_from(
                args,
                args.admin_token.is_some(),
                "admin_token",
                ["--admin-token", "RTC_ADMIN_TOKEN", "", "server.admin_token"],
                "is shorter than 16 characters; use a long random token",
            );
            (Secret::new(t), false)
        }
        Some(t) => (Secret::new(t), false),
        None => (Secret::new(random_token(32)), true),
    };
    let node_id = args.node_id.clone().or_else(|| s.node_id.clone()).unwrap_or_else(default_node_id);
    if node_id.is_empty()
        || node_id.len() > 64
        || !node_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        r.err_from(
            args,
            args.node_id.is_some(),
            "node_id",
            ["--node-id", "RTC_NODE_ID", "", "server.node_id"],
            format!("'{node_id}' must be 1-64 characters of A-Z a-z 0-9 - _ ."),
        );
    }
    let log_format = args.log_format.or(s.log_format).unwrap_or(LogFormat::Text);
    let tls = resolve_tls(&mut r, args, s);
    let edge = edge::resolve_edge(&mut r, args, s);

    // Apps: the file's, then the one named by flags/env (RTC_APP_* or REVERB_APP_*).
    // The merge rule (README "Configuration"): an id that names a file app selects it and
    // the key/secret given with it override that app's, field by field; any other id
    // defines a new app (id, key and secret together). App options from flags/env apply
    // to the app the id names, else to the only app; with several apps and no id they
    // are refused.
    let mut apps = Vec::new();
    for (i, a) in file.apps.iter().enumerate() {
        if let Some(app) = app_from_section(&mut r, i, a) {
            apps.push(app);
        }
    }
    let env_id = args.app_id.clone().or_else(|| (r.env)("REVERB_APP_ID"));
    let env_key = args.app_key.clone().or_else(|| (r.env)("REVERB_APP_KEY"));
    let env_secret = args.app_secret.clone().or_else(|| (r.env)("REVERB_APP_SECRET"));
    let mut dev_app = false;
    let named = env_id.as_ref().and_then(|id| apps.iter().position(|a| &a.id == id));
    let env_app_index = match (named, env_id, env_key, env_secret) {
        (Some(pos), _, key, secret) => {
            if let Some(key) = key {
                apps[pos].key = key;
            }
            if let Some(secret) = secret {
                apps[pos].secret = Secret::new(secret);
            }
            Some(pos)
        }
        (None, Some(id), Some(key), Some(secret)) => {
            apps.push(AppConfig::with_credentials(&id, &key, &secret));
            Some(apps.len() - 1)
        }
        (None, None, None, None) => None,
        (None, id, key, secret) => {
            let missing: Vec<&str> =
                [("app id", id.is_none()), ("app key", key.is_none()), ("app secret", secret.is_none())]
                    .iter()
                    .filter(|(_, m)| *m)
                    .map(|(n, _)| *n)
                    .collect();
            let field = app_source(args, "app_id", "--app-id", "RTC_APP_ID", r.env, "REVERB_APP_ID");
            r.err(
                "env RTC_APP_* / REVERB_APP_*",
                format!(
                    "an app needs id, key and secret together; missing {}{}",
                    missing.join(", "),
                    if id.is_some() && !file.apps.is_empty() {
                        format!(" ({field} names no app of the config file, so it defines a new one)")
                    } else {
                        String::new()
                    }
                ),
            );
            None
        }
    };
    if apps.is_empty() && r.errors.is_empty() {
        apps.push(AppConfig::with_credentials(DEV_APP_ID, DEV_APP_KEY, DEV_APP_SECRET));
        dev_app = true;
    }
    let target = env_app_index.or((apps.len() == 1).then_some(0));
    match target {
        Some(i) => {
            let new_app = named.is_none() && env_app_index == Some(i);
            let given = apply_env_app_options(&mut r, args, &mut apps[i]);
            if new_app || !given.is_empty() {
                let at = if new_app || dev_app { "app (flags/env)".to_string() } else { format!("app {}", apps[i].id) };
                let app = apps[i].clone();
                let first = r.errors.len();
                validate_app(&mut r, &at, &app);
                // A bad value given by a flag or variable is reported under that name.
                for e in &mut r.errors[first..] {
                    if let Some((_, label)) = given.iter().find(|(id, _)| e.field == format!("{at}.{id}")) {
                        e.field = format!("{label} ({})", e.field);
                    }
                }
            }
        }
        None => {
            let mut scratch = AppConfig::with_credentials("scratch", "scratch", "scratch-secret");
            let given = apply_env_app_options(&mut r, args, &mut scratch);
            if !given.is_empty() {
                r.err(
                    given.iter().map(|(_, label)| label.as_str()).collect::<Vec<_>>().join(", "),
                    format!(
                        "app options from flags/environment apply to one app, but the config file defines {} apps \
                         and no app id names one; add --app-id (RTC_APP_ID, REVERB_APP_ID) or set the option in \
                         that app's [[apps]] table",
                        apps.len()
                    ),
                );
            }
        }
    }
    check_unique(&mut r, &apps);
    let host = host_given.unwrap_or_else(|| if dev_app { "127.0.0.1".into() } else { "0.0.0.0".into() });

    let cluster = resolve_cluster(&mut r, args, &file.cluster, &host, port, tls.is_some());
    let drain = resolve_drain(&mut r, args, &file.drain);

    if r.errors.is_empty() {
        Ok(ServeConfig {
            host,
            port,
            path,
            max_request_size,
            admin_token,
            admin_token_generated,
            node_id,
            log_format,
            outbound_queue_bytes,
            max_new_connections_per_sec,
            fanout_budget: std::time::Duration::from_millis(fanout_budget_ms),
            apps,
            dev_app,
            cluster,
            drain,
            tls,
            edge,
        })
    } else {
        Err(ConfigErrors(r.errors))
    }
}

#[cfg(test)]
mod tests;
