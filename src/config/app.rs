//! One app's configuration: the validated [`AppConfig`], its origin check, and how it
//! is read from `[[apps]]` sections and from flags and environment.

use super::webhook::{self, WebhookTarget};
use super::{AppSection, EnvLookup, Resolver, PING_GRACE_SECS};
use crate::cli::ServeArgs;
use crate::protocol::webhook::KindSet;
use crate::protocol::ClientEvents;
use crate::secret::Secret;

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

/// Where a flags/env app option came from: the flag, its `RTC_*` variable or the Reverb
/// name (`reverb`, read only when neither of the others is set).
pub(super) fn app_source(
    args: &ServeArgs,
    id: &str,
    flag: &str,
    rtc: &str,
    env: EnvLookup<'_>,
    reverb: &str,
) -> String {
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
pub(super) fn apply_env_app_options(
    r: &mut Resolver<'_>,
    args: &ServeArgs,
    app: &mut AppConfig,
) -> Vec<(String, String)> {
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

pub(super) fn app_from_section(r: &mut Resolver<'_>, i: usize, a: &AppSection) -> Option<AppConfig> {
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

pub(super) fn validate_app(r: &mut Resolver<'_>, at: &str, app: &AppConfig) {
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

pub(super) fn check_unique(r: &mut Resolver<'_>, apps: &[AppConfig]) {
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
