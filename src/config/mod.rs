//! Configuration for `rtc serve`: defaults < rtc.toml < environment < flags, resolved
//! into one validated [`ServeConfig`]. Every problem is collected and reported with the
//! field that caused it, before anything listens.

mod edge;
mod file;
pub mod tls;
pub mod webhook;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use edge::{EdgeConfig, IpRange};
pub use file::{AppSection, ClusterSection, DrainSection, FileConfig, ServerSection, WebhookSection};

use crate::cli::ServeArgs;
use crate::logging::LogFormat;
use crate::protocol::webhook::KindSet;
use crate::protocol::ClientEvents;
use crate::secret::{random_token, Secret};
use webhook::WebhookTarget;

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

/// A validated app.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// App id.
    pub id: String,
    /// App key.
    pub key: String,
    /// App secret.
    pub secret: Secret,
    /// Accepts connections and API calls.
    pub enabled: bool,
    /// Allowed `Origin` patterns.
    pub allowed_origins: Vec<String>,
    /// Who may send client events.
    pub client_events: ClientEvents,
    /// Connection quota, 0 = unlimited.
    pub max_connections: u64,
    /// Advertised `activity_timeout` (s).
    pub activity_timeout: u64,
    /// Server pings a socket silent this long (s).
    pub ping_interval: u64,
    /// Seconds to wait for the pong.
    pub pong_timeout: u64,
    /// Sign-in deadline (s), 0 = off.
    pub require_signin_within: u64,
    /// Send `pusher_internal:subscription_count`.
    pub subscription_count: bool,
    /// Largest client WebSocket message.
    pub max_message_size: usize,
    /// Largest event data.
    pub max_event_data_size: usize,
    /// Client events per socket per second.
    pub client_event_rate: u32,
    /// Distinct users per presence channel, cluster-wide (0 = no limit, as Reverb).
    pub max_presence_members: usize,
    /// Bytes of presence user_info.
    pub max_presence_user_info: usize,
    /// Characters of a user id.
    pub max_user_id_length: usize,
    /// Channels per socket.
    pub max_channels_per_socket: usize,
    /// Channels per HTTP publish.
    pub max_channels_per_publish: usize,
    /// Events per batch.
    pub max_batch_size: usize,
    /// Watchlist events.
    pub watchlist: bool,
    /// Ids per watchlist.
    pub max_watchlist_size: usize,
    /// Cache channel TTL (s).
    pub cache_ttl: u64,
    /// HTTP API requests per second (0 = no limit).
    pub max_api_requests_per_sec: u32,
    /// Subscribe + unsubscribe frames per socket per second, bursts up to twice that
    /// (0 = no limit).
    pub subscribe_rate: u32,
    /// Incoming frames per socket per second, bursts up to twice that (0 = no limit).
    pub frame_rate: u32,
    /// Webhook endpoints (none = webhooks off).
    pub webhooks: Vec<WebhookTarget>,
    /// Batch webhook events (up to 50 per POST within 50 ms); else one per POST.
    pub webhook_batch: bool,
    /// Seconds a failed webhook POST is retried with backoff (0 = never).
    pub webhook_retry_for: u64,
}

impl AppConfig {
    /// An app with every limit at its default.
    pub fn with_credentials(id: &str, key: &str, secret: &str) -> Self {
        AppConfig {
            id: id.into(),
            key: key.into(),
            secret: Secret::new(secret),
            enabled: true,
            allowed_origins: vec!["*".into()],
            client_events: ClientEvents::Members,
            max_connections: 0,
            activity_timeout: 120,
            ping_interval: 120 + PING_GRACE_SECS,
            pong_timeout: 30,
            require_signin_within: 0,
            subscription_count: false,
            max_message_size: 10_000,
            max_event_data_size: 10_240,
            client_event_rate: 10,
            max_presence_members: 0,
            max_presence_user_info: 1_024,
            max_user_id_length: 128,
            max_channels_per_socket: 100,
            max_channels_per_publish: 100,
            max_batch_size: 10,
            watchlist: true,
            max_watchlist_size: 100,
            cache_ttl: 1_800,
            max_api_requests_per_sec: 0,
            subscribe_rate: 100,
            frame_rate: 200,
            webhooks: Vec::new(),
            webhook_batch: true,
            webhook_retry_for: webhook::DEFAULT_RETRY_FOR.as_secs(),
        }
    }

    /// Whether an `Origin` header value is allowed.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        if self.allowed_origins.iter().any(|p| p == "*") {
            return true;
        }
        let Some(origin) = origin else {
            // Non-browser clients send no Origin; only browsers are policed by it.
            return true;
        };
        let origin = OriginParts::parse(origin);
        self.allowed_origins.iter().any(|p| origin_matches(p, &origin))
    }
}

/// An `Origin` header or an allowed-origins pattern split into its parts.
#[derive(Debug, PartialEq, Eq)]
struct OriginParts<'a> {
    scheme: Option<&'a str>,
    host: &'a str,
    port: Option<&'a str>,
}

impl<'a> OriginParts<'a> {
    /// `scheme://host:port`, each part but the host optional; IPv6 hosts in brackets.
    fn parse(s: &'a str) -> Self {
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, s),
        };
        let rest = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let (host, port) = if let Some(end) = rest.strip_prefix('[').and_then(|r| r.find(']')) {
            let host = &rest[..end + 2];
            (host, rest[end + 2..].strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        OriginParts { scheme, host, port }
    }

    /// The port, or the scheme's default one.
    fn effective_port(&self) -> Option<&'a str> {
        self.port.or(match self.scheme.map(str::to_ascii_lowercase).as_deref() {
            Some("http") | Some("ws") => Some("80"),
            Some("https") | Some("wss") => Some("443"),
            _ => None,
        })
    }
}

/// Reverb's rule, extended: the host is matched with `*` wildcards; a pattern without a
/// port matches any port, one with a port (or `*`) matches it exactly; a pattern with a
/// scheme also needs that scheme.
fn origin_matches(pattern: &str, origin: &OriginParts<'_>) -> bool {
    let p = OriginParts::parse(pattern.trim());
    if let Some(scheme) = p.scheme {
        if !origin.scheme.is_some_and(|s| glob_match(scheme, s)) {
            return false;
        }
    }
    if !glob_match(p.host, origin.host) {
        return false;
    }
    match p.port {
        None | Some("*") => true,
        Some(port) => origin.effective_port() == Some(port),
    }
}

/// `*` matches any run of characters; everything else literally (case-insensitive).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let t = text.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// Cluster membership of a node (cluster mode is on when this is present).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Cluster name (prefix of every Redis key and channel).
    pub name: String,
    /// Redis URL (may hold a password: never printed).
    pub redis_url: Secret,
    /// Where the console and other nodes reach this node.
    pub advertise_url: String,
    /// Planning line: connections per node.
    pub planning_line: u64,
    /// A node silent this long is dead: its sockets stop counting, its presence
    /// members are removed.
    pub node_ttl: std::time::Duration,
    /// Key of the bus messages' MAC; `None`: the bus is unauthenticated.
    pub secret: Option<Secret>,
}

impl ClusterConfig {
    /// The Redis URL with any password replaced, for logs.
    pub fn redis_url_redacted(&self) -> String {
        redact_url(self.redis_url.expose())
    }
}

/// Replaces the password of a URL (`redis://user:pass@host`) with `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***@{}", &url[..s + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// How a node drains (SIGTERM, SIGINT, `rtc drain`).
#[derive(Debug, Clone, PartialEq)]
pub struct DrainConfig {
    /// Between the health flip and the first hint.
    pub pre_delay: std::time::Duration,
    /// Hints are spread over this window.
    pub window: std::time::Duration,
    /// At most this many hints per second (0 = no cap).
    pub rate: u64,
    /// From the start of the drain to the forced close and exit.
    pub timeout: std::time::Duration,
    /// How long a drained presence member is kept for a migrating client.
    pub presence_grace: std::time::Duration,
    /// Send `pusher:error` 4200 before the close frame.
    pub send_error: bool,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            pre_delay: std::time::Duration::from_secs(5),
            window: std::time::Duration::from_secs(15),
            rate: 0,
            timeout: std::time::Duration::from_secs(25),
            presence_grace: std::time::Duration::from_secs(10),
            send_error: false,
        }
    }
}

/// TLS on the listener: both PEM files, loaded and checked before anything listens.
#[derive(Clone)]
pub struct TlsConfig {
    /// The certificate chain file (leaf first).
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
    /// The rustls server config built from them (ring provider, ALPN `http/1.1`).
    pub server_config: Arc<tokio_rustls::rustls::ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    // The paths only: the server config holds the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
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

/// `server.tls_cert` and `server.tls_key`: both or neither; both files loaded now, so a
/// bad one is a config error (exit 2) rather than a failure at the first handshake.
fn resolve_tls(r: &mut Resolver<'_>, args: &ServeArgs, s: &ServerSection) -> Option<TlsConfig> {
    let cert = args.tls_cert.clone().or_else(|| s.tls_cert.clone());
    let key = args.tls_key.clone().or_else(|| s.tls_key.clone());
    match (cert, key) {
        (None, None) => None,
        (Some(_), None) => {
            r.err(
                "server.tls_key",
                "is required when server.tls_cert is set (--tls-key, RTC_TLS_KEY); set both or neither",
            );
            None
        }
        (None, Some(_)) => {
            r.err(
                "server.tls_cert",
                "is required when server.tls_key is set (--tls-cert, RTC_TLS_CERT); set both or neither",
            );
            None
        }
        (Some(cert), Some(key)) => match tls::server_config(&cert, &key) {
            Ok(server_config) => Some(TlsConfig { cert, key, server_config }),
            Err(e) => {
                r.err(e.field, e.message);
                None
            }
        },
    }
}

fn resolve_drain(r: &mut Resolver<'_>, args: &ServeArgs, file: &DrainSection) -> DrainConfig {
    let d = DrainConfig::default();
    let mut secs = |name: &str, id: &str, flag: Option<f64>, file: Option<f64>, default: std::time::Duration| {
        let v = flag.or(file).unwrap_or(default.as_secs_f64());
        if !(0.0..=3600.0).contains(&v) || v.is_nan() {
            let long = format!("--{}", id.replace('_', "-"));
            let rtc = format!("RTC_{}", id.to_ascii_uppercase());
            let names = [&long, &rtc, "", &format!("drain.{name}")];
            r.err_from(args, flag.is_some(), id, names, format!("{v} is out of range 0..=3600 seconds"));
            return default;
        }
        std::time::Duration::from_secs_f64(v)
    };
    let pre_delay = secs("pre_drain_delay", "pre_drain_delay", args.pre_drain_delay, file.pre_drain_delay, d.pre_delay);
    let window = secs("window", "drain_window", args.drain_window, file.window, d.window);
    let timeout = secs("timeout", "drain_timeout", args.drain_timeout, file.timeout, d.timeout);
    let presence_grace = secs(
        "presence_grace",
        "drain_presence_grace",
        args.drain_presence_grace,
        file.presence_grace,
        d.presence_grace,
    );
    if pre_delay + window > timeout {
        r.err(
            "drain.timeout",
            format!(
                "{}s is shorter than pre_drain_delay + window ({}s): the hints would not finish before the forced close",
                timeout.as_secs_f64(),
                (pre_delay + window).as_secs_f64()
            ),
        );
    }
    DrainConfig {
        pre_delay,
        window,
        rate: args.drain_rate.or(file.rate).unwrap_or(0),
        timeout,
        presence_grace,
        send_error: file.send_error.unwrap_or(false),
    }
}

fn resolve_cluster(
    r: &mut Resolver<'_>,
    args: &ServeArgs,
    file: &ClusterSection,
    host: &str,
    port: u16,
    tls: bool,
) -> Option<ClusterConfig> {
    let reverb_enabled = (r.env)("REVERB_SCALING_ENABLED").is_some_and(|v| matches!(v.trim(), "true" | "1" | "yes"));
    let reverb_url = if reverb_enabled {
        (r.env)("REDIS_URL").or_else(|| {
            let host = (r.env)("REDIS_HOST").unwrap_or_else(|| "127.0.0.1".into());
            let port = (r.env)("REDIS_PORT").unwrap_or_else(|| "6379".into());
            let db = (r.env)("REDIS_DB").unwrap_or_else(|| "0".into());
            let auth = match ((r.env)("REDIS_USERNAME"), (r.env)("REDIS_PASSWORD")) {
                (Some(u), Some(p)) => format!("{u}:{p}@"),
                (None, Some(p)) => format!(":{p}@"),
                (Some(u), None) => format!("{u}@"),
                (None, None) => String::new(),
            };
            Some(format!("redis://{auth}{host}:{port}/{db}"))
        })
    } else {
        None
    };
    let url = args.redis_url.clone().or(reverb_url).or_else(|| file.redis_url.clone())?;
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")) {
        r.err("cluster.redis_url", format!("'{}' must start with redis://, rediss:// or unix://", redact_url(&url)));
    } else if redis::Client::open(url.as_str()).is_err() {
        r.err("cluster.redis_url", format!("'{}' is not a valid Redis URL", redact_url(&url)));
    }
    let name = args
        .cluster_name
        .clone()
        .or_else(|| if reverb_enabled { (r.env)("REVERB_SCALING_CHANNEL") } else { None })
        .or_else(|| file.name.clone())
        .unwrap_or_else(|| "local".into());
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        r.err("cluster.name", format!("'{name}' must be 1-64 characters of A-Z a-z 0-9 - _ ."));
    }
    let advertise_url = args.advertise_url.clone().or_else(|| file.advertise_url.clone()).unwrap_or_else(|| {
        let h = if host == "0.0.0.0" || host == "::" { "127.0.0.1" } else { host };
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{h}:{port}")
    });
    let planning_line = args.planning_line.or(file.planning_line).unwrap_or(rtc_model::DEFAULT_PLANNING_LINE);
    if planning_line == 0 {
        r.err("cluster.planning_line", "must be at least 1");
    }
    let ttl = file.node_ttl.unwrap_or(5);
    if !(2..=60).contains(&ttl) {
        r.err("cluster.node_ttl", format!("{ttl} is out of range 2..=60 seconds"));
    }
    let secret = args.cluster_secret.clone().or_else(|| file.secret.clone()).filter(|s| !s.is_empty());
    if secret.as_ref().is_some_and(|s| s.len() < 16) {
        r.err("cluster.secret", "is shorter than 16 characters; use a long random secret");
    }
    Some(ClusterConfig {
        secret: secret.map(Secret::new),
        name,
        redis_url: Secret::new(url),
        advertise_url: advertise_url.trim_end_matches('/').to_string(),
        planning_line,
        node_ttl: std::time::Duration::from_secs(ttl),
    })
}

/// Where a flags/env app option came from: the flag, its `RTC_*` variable or the Reverb
/// name (`reverb`, read only when neither of the others is set).
fn app_source(args: &ServeArgs, id: &str, flag: &str, rtc: &str, env: EnvLookup<'_>, reverb: &str) -> String {
    if args.from_env.contains(id) {
        rtc.to_string()
    } else if !reverb.is_empty() && env(reverb).is_some() && !args_has(args, id) {
        reverb.to_string()
    } else {
        flag.to_string()
    }
}

/// Whether the flags/`RTC_*` layer set the app option `id`.
fn args_has(args: &ServeArgs, id: &str) -> bool {
    match id {
        "app_id" => args.app_id.is_some(),
        "app_key" => args.app_key.is_some(),
        "app_secret" => args.app_secret.is_some(),
        "activity_timeout" => args.activity_timeout.is_some(),
        "ping_interval" => args.ping_interval.is_some(),
        "max_connections" => args.max_connections.is_some(),
        "max_message_size" => args.max_message_size.is_some(),
        "client_events" => args.client_events.is_some(),
        _ => false,
    }
}

/// Applies the app options given by flags/env to `app`, field by field; returns where
/// each applied option came from (flag, `RTC_*` or `REVERB_*` name).
fn apply_env_app_options(r: &mut Resolver<'_>, args: &ServeArgs, app: &mut AppConfig) -> Vec<(String, String)> {
    let mut given = Vec::new();
    let env = r.env;
    let mut note = |id: &str, flag: &str, rtc: &str, reverb: &str| {
        given.push((id.to_string(), app_source(args, id, flag, rtc, env, reverb)))
    };
    if let Some(v) = args.activity_timeout.or_else(|| r.reverb("REVERB_APP_ACTIVITY_TIMEOUT")) {
        note("activity_timeout", "--activity-timeout", "RTC_APP_ACTIVITY_TIMEOUT", "REVERB_APP_ACTIVITY_TIMEOUT");
        // A ping interval set explicitly (file) stays; the derived one follows.
        if app.ping_interval == app.activity_timeout + PING_GRACE_SECS {
            app.ping_interval = v + PING_GRACE_SECS;
        }
        app.activity_timeout = v;
    }
    if let Some(v) = args.ping_interval.or_else(|| r.reverb("REVERB_APP_PING_INTERVAL")) {
        note("ping_interval", "--ping-interval", "RTC_APP_PING_INTERVAL", "REVERB_APP_PING_INTERVAL");
        app.ping_interval = v;
    }
    if let Some(v) = args.max_connections.or_else(|| r.reverb("REVERB_APP_MAX_CONNECTIONS")) {
        note("max_connections", "--max-connections", "RTC_APP_MAX_CONNECTIONS", "REVERB_APP_MAX_CONNECTIONS");
        app.max_connections = v;
    }
    if let Some(v) = args.max_message_size.or_else(|| r.reverb("REVERB_APP_MAX_MESSAGE_SIZE")) {
        note("max_message_size", "--max-message-size", "RTC_APP_MAX_MESSAGE_SIZE", "REVERB_APP_MAX_MESSAGE_SIZE");
        app.max_message_size = v;
    }
    let reverb_ce = (r.env)("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM");
    let ce = args.client_events.or_else(|| match reverb_ce.as_deref().map(str::trim) {
        None => None,
        Some("members") => Some(ClientEvents::Members),
        Some("all") => Some(ClientEvents::All),
        Some("none") | Some("off") => Some(ClientEvents::Off),
        Some(other) => {
            r.err("env REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", format!("'{other}' is not one of members, all, none"));
            None
        }
    });
    if let Some(v) = ce {
        note("client_events", "--client-events", "RTC_APP_CLIENT_EVENTS", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM");
        app.client_events = v;
    }
    if let Some(v) = &args.allowed_origins {
        note("allowed_origins", "--allowed-origins", "RTC_APP_ALLOWED_ORIGINS", "");
        app.allowed_origins = v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    }
    if let Some(v) = args.subscription_count {
        note("subscription_count", "--subscription-count", "RTC_APP_SUBSCRIPTION_COUNT", "");
        app.subscription_count = v;
    }
    if let Some(v) = args.require_signin_within {
        note("require_signin_within", "--require-signin-within", "RTC_APP_REQUIRE_SIGNIN_WITHIN", "");
        app.require_signin_within = v;
    }
    let hook_url = (r.env)("RTC_APP_WEBHOOK_URL");
    let hook_events = (r.env)("RTC_APP_WEBHOOK_EVENTS");
    match (hook_url, hook_events) {
        (Some(url), events) => {
            given.push(("webhooks".into(), "RTC_APP_WEBHOOK_URL".into()));
            let target = webhook_target(
                r,
                "env RTC_APP_WEBHOOK_URL",
                "env RTC_APP_WEBHOOK_EVENTS",
                Some(&url),
                events.map(|e| e.split(',').map(str::to_string).collect::<Vec<_>>()).as_deref(),
            );
            app.webhooks = target.into_iter().collect();
        }
        (None, Some(_)) => r.err("env RTC_APP_WEBHOOK_EVENTS", "is set but RTC_APP_WEBHOOK_URL is not"),
        (None, None) => {}
    }
    given
}

fn app_from_section(r: &mut Resolver<'_>, i: usize, a: &AppSection) -> Option<AppConfig> {
    let field = |name: &str| format!("config apps[{i}].{name}");
    let mut missing = false;
    for (name, v) in [("id", &a.id), ("key", &a.key), ("secret", &a.secret)] {
        if v.as_deref().map(str::trim).unwrap_or("").is_empty() {
            r.err(field(name), "is required");
            missing = true;
        }
    }
    if missing {
        return None;
    }
    let mut app = AppConfig::with_credentials(
        a.id.as_deref().unwrap_or_default(),
        a.key.as_deref().unwrap_or_default(),
        a.secret.as_deref().unwrap_or_default(),
    );
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f.clone() { app.$f = v; } )* };
    }
    set!(
        enabled,
        allowed_origins,
        client_events,
        max_connections,
        activity_timeout,
        pong_timeout,
        require_signin_within,
        subscription_count,
        max_message_size,
        max_event_data_size,
        client_event_rate,
        max_presence_members,
        max_presence_user_info,
        max_user_id_length,
        max_channels_per_socket,
        max_channels_per_publish,
        max_batch_size,
        watchlist,
        max_watchlist_size,
        cache_ttl,
        max_api_requests_per_sec,
        subscribe_rate,
        frame_rate
    );
    app.ping_interval = a.ping_interval.unwrap_or(app.activity_timeout + PING_GRACE_SECS);
    if let Some(v) = a.webhook_batch {
        app.webhook_batch = v;
    }
    if let Some(v) = a.webhook_retry_for {
        app.webhook_retry_for = v;
    }
    for (j, w) in a.webhooks.iter().flatten().enumerate() {
        let at = |name: &str| format!("config apps[{i}].webhooks[{j}].{name}");
        if let Some(t) = webhook_target(r, &at("url"), &at("events"), w.url.as_deref(), w.events.as_deref()) {
            app.webhooks.push(t);
        }
    }
    validate_app(r, &format!("config apps[{i}]"), &app);
    Some(app)
}

/// One webhook endpoint from its URL and optional event list; errors name the fields.
fn webhook_target(
    r: &mut Resolver<'_>,
    url_field: &str,
    events_field: &str,
    url: Option<&str>,
    events: Option<&[String]>,
) -> Option<WebhookTarget> {
    let url = match url.map(webhook::parse_url) {
        None => {
            r.err(url_field, "is required");
            None
        }
        Some(Err(e)) => {
            r.err(url_field, e.to_string());
            None
        }
        Some(Ok(u)) => Some(u),
    };
    let events = match events {
        None => Some(KindSet::ALL),
        Some(list) => match KindSet::parse(list.iter().map(String::as_str).filter(|s| !s.trim().is_empty())) {
            Ok(set) => Some(set),
            Err(e) => {
                r.err(events_field, e);
                None
            }
        },
    };
    Some(WebhookTarget { url: url?, events: events? })
}

fn validate_app(r: &mut Resolver<'_>, at: &str, app: &AppConfig) {
    let ident = |s: &str| {
        !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !ident(&app.id) {
        r.err(format!("{at}.id"), format!("'{}' must be 1-128 characters of A-Z a-z 0-9 - _ .", app.id));
    }
    if !ident(&app.key) {
        r.err(format!("{at}.key"), format!("'{}' must be 1-128 characters of A-Z a-z 0-9 - _ .", app.key));
    }
    if app.secret.expose().len() < 8 {
        r.err(format!("{at}.secret"), "is shorter than 8 characters");
    }
    let ranges: [(&str, u64, u64, u64); 9] = [
        ("activity_timeout", app.activity_timeout, 1, 3600),
        ("ping_interval", app.ping_interval, 1, 3600),
        ("pong_timeout", app.pong_timeout, 1, 600),
        ("client_event_rate", app.client_event_rate as u64, 1, 100_000),
        ("max_message_size", app.max_message_size as u64, 256, 16 * 1024 * 1024),
        ("max_event_data_size", app.max_event_data_size as u64, 64, 16 * 1024 * 1024),
        ("max_channels_per_socket", app.max_channels_per_socket as u64, 1, 100_000),
        ("cache_ttl", app.cache_ttl, 1, 86_400),
        ("webhook_retry_for", app.webhook_retry_for, 0, 86_400),
    ];
    for (name, v, lo, hi) in ranges {
        if v < lo || v > hi {
            r.err(format!("{at}.{name}"), format!("{v} is out of range {lo}..={hi}"));
        }
    }
    for (name, v) in [
        ("max_presence_user_info", app.max_presence_user_info),
        ("max_user_id_length", app.max_user_id_length),
        ("max_channels_per_publish", app.max_channels_per_publish),
        ("max_batch_size", app.max_batch_size),
        ("max_watchlist_size", app.max_watchlist_size),
    ] {
        if v == 0 {
            r.err(format!("{at}.{name}"), "must be at least 1");
        }
    }
}

fn check_unique(r: &mut Resolver<'_>, apps: &[AppConfig]) {
    for (i, a) in apps.iter().enumerate() {
        for b in &apps[..i] {
            if a.id == b.id {
                r.err(format!("apps[{i}].id"), format!("'{}' is used by two apps", a.id));
            }
            if a.key == b.key {
                r.err(format!("apps[{i}].key"), format!("'{}' is used by two apps", a.key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_give_the_dev_app() {
        let c = resolve(&ServeArgs::default(), FileConfig::default(), &no_env).unwrap();
        // The development app's secret is public: loopback only by default.
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8080));
        assert!(c.dev_app);
        assert_eq!(c.apps[0].key, DEV_APP_KEY);
        assert!(c.admin_token_generated);
        assert_eq!(c.edge, EdgeConfig::default());
        // A configured app listens on every interface unless a host is given.
        let args = ServeArgs {
            app_id: Some("1".into()),
            app_key: Some("k".into()),
            app_secret: Some("secret-123".into()),
            ..Default::default()
        };
        assert_eq!(resolve(&args, FileConfig::default(), &no_env).unwrap().host, "0.0.0.0");
        let args = ServeArgs { host: Some("0.0.0.0".into()), ..Default::default() };
        assert_eq!(resolve(&args, FileConfig::default(), &no_env).unwrap().host, "0.0.0.0");
    }

    #[test]
    fn reverb_env_defines_the_app_and_server() {
        let env = |k: &str| -> Option<String> {
            Some(
                match k {
                    "REVERB_APP_ID" => "42",
                    "REVERB_APP_KEY" => "k",
                    "REVERB_APP_SECRET" => "s3cr3t-value",
                    "REVERB_SERVER_PORT" => "6001",
                    "REVERB_SERVER_PATH" => "ws/",
                    "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM" => "none",
                    "REVERB_APP_MAX_CONNECTIONS" => "7",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let c = resolve(&ServeArgs::default(), FileConfig::default(), &env).unwrap();
        assert!(!c.dev_app);
        assert_eq!(c.apps.len(), 1);
        assert_eq!(c.apps[0].id, "42");
        assert_eq!(c.apps[0].client_events, ClientEvents::Off);
        assert_eq!(c.apps[0].max_connections, 7);
        assert_eq!(c.port, 6001);
        assert_eq!(c.path, "/ws");
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file = parse_file("[server]\nport = 1\nhost = \"1.1.1.1\"\n", "t").unwrap();
        let env = |k: &str| (k == "REVERB_SERVER_PORT").then(|| "2".to_string());
        let args = ServeArgs { host: Some("127.0.0.1".into()), ..Default::default() };
        let c = resolve(&args, file, &env).unwrap();
        assert_eq!(c.port, 2);
        assert_eq!(c.host, "127.0.0.1");
    }

    #[test]
    fn bad_values_are_all_reported_with_their_fields() {
        let file = parse_file(
            "[[apps]]\nid = \"a b\"\nkey = \"k\"\nsecret = \"x\"\nactivity_timeout = 0\n[[apps]]\nkey = \"k2\"\n",
            "rtc.toml",
        )
        .unwrap();
        let env = |k: &str| (k == "REVERB_SERVER_PORT").then(|| "http".to_string());
        let e = resolve(&ServeArgs::default(), file, &env).unwrap_err();
        let text = e.to_string();
        for needle in [
            "apps[0].id",
            "apps[0].secret",
            "apps[0].activity_timeout",
            "apps[1].id",
            "apps[1].secret",
            "REVERB_SERVER_PORT",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }

    #[test]
    fn reverb_scaling_env_switches_cluster_mode_on() {
        let env = |k: &str| -> Option<String> {
            Some(
                match k {
                    "REVERB_SCALING_ENABLED" => "true",
                    "REVERB_SCALING_CHANNEL" => "prod",
                    "REDIS_HOST" => "10.1.2.3",
                    "REDIS_PASSWORD" => "hunter2",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let c = resolve(&ServeArgs::default(), FileConfig::default(), &env).unwrap();
        let cl = c.cluster.expect("cluster mode");
        assert_eq!(cl.name, "prod");
        assert_eq!(cl.redis_url.expose(), "redis://:hunter2@10.1.2.3:6379/0");
        assert_eq!(cl.redis_url_redacted(), "redis://:***@10.1.2.3:6379/0");
        assert!(!format!("{cl:?}").contains("hunter2"));
        let c = resolve(&ServeArgs::default(), FileConfig::default(), &no_env).unwrap();
        assert!(c.cluster.is_none());
    }

    #[test]
    fn webhooks_parse_from_the_file_with_errors_naming_the_field() {
        let file = parse_file(
            "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"secretsecret\"\nwebhook_batch = false\nwebhook_retry_for = 60\n\
             webhooks = [{ url = \"https://hooks.example.com/p?token=sekrit-value\", events = [\"channel_occupied\", \"member_added\"] },\n\
             { url = \"http://127.0.0.1:9/all\" }]\n",
            "rtc.toml",
        )
        .unwrap();
        let c = resolve(&ServeArgs::default(), file, &no_env).unwrap();
        let app = &c.apps[0];
        assert!(!app.webhook_batch);
        assert_eq!(app.webhook_retry_for, 60);
        assert_eq!(app.webhooks.len(), 2);
        assert!(app.webhooks[0].events.contains(crate::protocol::webhook::WebhookKind::MemberAdded));
        assert!(!app.webhooks[0].events.contains(crate::protocol::webhook::WebhookKind::ClientEvent));
        assert_eq!(app.webhooks[1].events, KindSet::ALL);
        assert!(!format!("{c:?}").contains("sekrit"), "webhook URLs print their origin only");

        let file = parse_file(
            "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"secretsecret\"\n\
             webhooks = [{ url = \"ftp://x\" }, { url = \"https://ok.example\", events = [\"channel_exploded\"] }, {}]\n",
            "rtc.toml",
        )
        .unwrap();
        let text = resolve(&ServeArgs::default(), file, &no_env).unwrap_err().to_string();
        for needle in [
            "apps[0].webhooks[0].url: 'ftp://x' must be an http:// or https:// URL",
            "apps[0].webhooks[1].events: 'channel_exploded' is not a webhook event",
            "apps[0].webhooks[2].url: is required",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert!(parse_file("[[apps]]\nwebhooks = [{ uri = \"x\" }]\n", "rtc.toml").is_err());
    }

    #[test]
    fn webhook_env_names_apply_to_the_env_app() {
        let env = |k: &str| -> Option<String> {
            Some(
                match k {
                    "REVERB_APP_ID" => "42",
                    "REVERB_APP_KEY" => "k",
                    "REVERB_APP_SECRET" => "s3cr3t-value",
                    "RTC_APP_WEBHOOK_URL" => "http://127.0.0.1:9000/hooks",
                    "RTC_APP_WEBHOOK_EVENTS" => "channel_occupied, channel_vacated",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let c = resolve(&ServeArgs::default(), FileConfig::default(), &env).unwrap();
        let hooks = &c.apps[0].webhooks;
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].url.as_str(), "http://127.0.0.1:9000/hooks");
        assert_eq!(hooks[0].events.kinds().count(), 2);

        let all = |k: &str| (k == "RTC_APP_WEBHOOK_URL").then(|| "https://h.example/x".to_string());
        let c = resolve(&ServeArgs::default(), FileConfig::default(), &all).unwrap();
        assert_eq!(c.apps[0].webhooks[0].events, KindSet::ALL, "the dev app, every event");

        let bad = |k: &str| -> Option<String> {
            match k {
                "RTC_APP_WEBHOOK_URL" => Some("not a url".into()),
                "RTC_APP_WEBHOOK_EVENTS" => Some("channel_occupied,nope".into()),
                _ => None,
            }
        };
        let text = resolve(&ServeArgs::default(), FileConfig::default(), &bad).unwrap_err().to_string();
        assert!(text.contains("env RTC_APP_WEBHOOK_URL: 'not a url' is not a URL"), "{text}");
        assert!(text.contains("env RTC_APP_WEBHOOK_EVENTS: 'nope' is not a webhook event"), "{text}");
        let orphan = |k: &str| (k == "RTC_APP_WEBHOOK_EVENTS").then(|| "cache_miss".to_string());
        let text = resolve(&ServeArgs::default(), FileConfig::default(), &orphan).unwrap_err().to_string();
        assert!(text.contains("RTC_APP_WEBHOOK_URL is not"), "{text}");
    }

    #[test]
    fn tls_needs_both_files_and_reports_unreadable_ones_by_path() {
        let file = parse_file("[server]\ntls_key = \"k.pem\"\n", "rtc.toml").unwrap();
        let text = resolve(&ServeArgs::default(), file, &no_env).unwrap_err().to_string();
        assert!(text.contains("server.tls_cert: is required when server.tls_key is set"), "{text}");
        let args = ServeArgs {
            tls_cert: Some("/nonexistent/c.pem".into()),
            tls_key: Some("/nonexistent/k.pem".into()),
            ..Default::default()
        };
        let text = resolve(&args, FileConfig::default(), &no_env).unwrap_err().to_string();
        assert!(text.contains("server.tls_cert: cannot read '/nonexistent/c.pem'"), "{text}");
        let c = resolve(&ServeArgs::default(), FileConfig::default(), &no_env).unwrap();
        assert!(c.tls.is_none(), "plain TCP by default");
    }

    #[test]
    fn the_cluster_secret_comes_from_flag_or_file_is_checked_and_never_printed() {
        let file =
            parse_file("[cluster]\nredis_url = \"redis://127.0.0.1:6379\"\nsecret = \"file-secret-0123456789\"\n", "t")
                .unwrap();
        let c = resolve(&ServeArgs::default(), file, &no_env).unwrap();
        let cluster = c.cluster.unwrap();
        assert_eq!(cluster.secret.as_ref().map(Secret::expose), Some("file-secret-0123456789"));
        assert!(!format!("{cluster:?}").contains("file-secret"), "{cluster:?}");
        let args = ServeArgs {
            redis_url: Some("redis://127.0.0.1:6379".into()),
            cluster_secret: Some("short".into()),
            ..ServeArgs::default()
        };
        let e = resolve(&args, FileConfig::default(), &no_env).unwrap_err();
        assert!(e.to_string().contains("cluster.secret"), "{e}");
        let args = ServeArgs { redis_url: Some("redis://127.0.0.1:6379".into()), ..ServeArgs::default() };
        assert_eq!(resolve(&args, FileConfig::default(), &no_env).unwrap().cluster.unwrap().secret, None);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse_file("[server]\nprot = 1\n", "rtc.toml").unwrap_err();
        assert!(e.to_string().contains("prot"), "{e}");
    }

    #[test]
    fn origins_match_exact_and_wildcards() {
        let mut a = AppConfig::with_credentials("1", "k", "secretsecret");
        a.allowed_origins = vec!["https://app.example.com".into(), "*.example.org".into()];
        assert!(a.origin_allowed(Some("https://app.example.com")));
        assert!(a.origin_allowed(Some("https://x.example.org")));
        assert!(!a.origin_allowed(Some("https://evil.com")));
        assert!(!a.origin_allowed(Some("https://example.org.evil.com")));
        assert!(a.origin_allowed(None));
    }

    #[test]
    fn origin_patterns_without_a_port_match_any_port_as_in_reverb() {
        let mut a = AppConfig::with_credentials("1", "k", "s");
        a.allowed_origins = vec!["127.0.0.1".into(), "*.example.com".into(), "localhost:3000".into()];
        assert!(a.origin_allowed(Some("http://127.0.0.1:8100")));
        assert!(a.origin_allowed(Some("http://127.0.0.1")));
        assert!(a.origin_allowed(Some("https://app.example.com:8443")));
        assert!(a.origin_allowed(Some("http://localhost:3000")));
        assert!(!a.origin_allowed(Some("http://localhost:3001")));
        assert!(!a.origin_allowed(Some("http://localhost")));
        assert!(!a.origin_allowed(Some("http://127.0.0.2:8100")));
        assert!(!a.origin_allowed(Some("https://example.com.evil.net")));
        a.allowed_origins = vec!["127.0.0.1:9999".into()];
        assert!(!a.origin_allowed(Some("http://127.0.0.1:8100")));
        assert!(a.origin_allowed(Some("http://127.0.0.1:9999")));
        a.allowed_origins = vec!["https://app.example.com".into(), "http://[::1]".into(), "example.org:443".into()];
        assert!(a.origin_allowed(Some("https://app.example.com:444")));
        assert!(!a.origin_allowed(Some("http://app.example.com")));
        assert!(a.origin_allowed(Some("http://[::1]:8080")));
        assert!(a.origin_allowed(Some("https://example.org")));
        assert!(!a.origin_allowed(Some("http://example.org")));
    }
}
