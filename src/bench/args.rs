//! The flags of `rtc bench`: the ones every scenario shares and one struct per scenario.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

/// Flags shared by every scenario. They are global, so they may follow the scenario name.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Common options")]
pub struct CommonArgs {
    /// Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is
    /// reached at the same host, port and prefix. Use a loopback address or a server you own.
    #[arg(long, global = true, env = "RTC_BENCH_URL", default_value = "ws://127.0.0.1:8080")]
    pub url: String,
    /// App id, for the HTTP API (`/apps/{id}/events`).
    #[arg(long, global = true, env = "RTC_BENCH_APP_ID", default_value = "100001")]
    pub app_id: String,
    /// App key, for WebSocket URLs and signatures.
    #[arg(long, global = true, env = "RTC_BENCH_KEY", default_value = "rtc-dev-key")]
    pub key: String,
    /// App secret: signs private/presence subscriptions and HTTP API requests, as the app's
    /// backend would. Never printed.
    #[arg(
        long,
        global = true,
        env = "RTC_BENCH_SECRET",
        hide_env_values = true,
        default_value = "rtc-dev-secret",
        hide_default_value = true
    )]
    pub secret: String,
    /// Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by
    /// itself by then. Units: ms, s (default), m.
    #[arg(long, global = true, default_value = "120s", value_parser = parse_duration, value_name = "TIME")]
    pub duration: Duration,
    /// Length of the steady phase after the ramp: idle hold for `connections`,
    /// publishing/churn for the others (`drain` follows the drain instead). Cut short
    /// when --duration would be passed.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub hold: Duration,
    /// Connection ramp: new sockets per second.
    #[arg(long, global = true, default_value_t = 1000.0, value_parser = parse_rate, value_name = "PER_SEC")]
    pub rate: f64,
    /// Give up on one socket's connect + handshake + subscriptions after this long.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub connect_timeout: Duration,
    /// The server's process id: report its RSS per socket (/proc/PID/status VmRSS before
    /// the ramp and at the end of the steady phase) and its CPU during the steady phase.
    /// For `drain`: node A's process, signalled by --drain-with signal|kill, whose exit
    /// time is reported.
    #[arg(long, global = true, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral
    /// ports of one address; 0 = enough for the socket count (loopback targets only).
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub source_addrs: u8,
    /// The server's admin token: read its own fan-out figures (`/metrics` at both ends of
    /// the measured phase, `/admin/stats` at the end) and report them beside the
    /// generator's. Without it the report has the client-side figures only.
    #[arg(long, global = true, env = "RTC_ADMIN_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub stats_token: Option<String>,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub save: Option<std::path::PathBuf>,
}

/// A benchmark scenario.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them
    /// idle (answering pings, pinging as pusher-js does) and report connect success,
    /// connect latency and the server's RSS per socket and idle CPU.
    Connections(ConnectionsArgs),
    /// S subscribers on one channel; B events per second through the signed HTTP API, each
    /// carrying its send time. Reports per-delivery latency, time to the last subscriber
    /// of each event and deliveries lost.
    Fanout(FanoutArgs),
    /// One presence channel of M members with J joins and J leaves per second. Reports
    /// member_added/member_removed frames per second and their latency.
    Presence(PresenceArgs),
    /// The production mix: N sockets on private channels of ~G subscribers, E events per
    /// second spread over them, and one presence channel of M members with J joins and J
    /// leaves per second. Reports every figure of the other scenarios.
    Mixed(MixedArgs),
    /// N sockets on node A (--url) are drained or killed; they reconnect to the --survivor
    /// nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no
    /// jitter; round-robin over the survivors, as a load balancer would) and resubscribe
    /// their signed private channels. Reports arrivals per survivor per 100 ms, the peak
    /// reconnect and auth rates (busiest 1 s), how the closes spread, the time until every
    /// socket is back, and sockets lost or forced.
    Drain(DrainArgs),
}

/// Channel types a socket can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// `bench-*`: no signature.
    Public,
    /// `private-bench-*`: signed with the app secret.
    Private,
    /// `presence-bench-*`: signed, with one user per socket.
    Presence,
}

/// Flags of `rtc bench connections`.
#[derive(Debug, Clone, Args)]
pub struct ConnectionsArgs {
    /// Sockets to open (the file limit here allows ~19,000).
    #[arg(long, short = 'n', default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sockets: u32,
    /// Channels to spread the sockets over (socket i joins channel i mod C); 0 = none.
    #[arg(long, short = 'c', default_value_t = 0)]
    pub channels: u32,
    /// Type of those channels.
    #[arg(long, value_enum, default_value_t = ChannelKind::Public)]
    pub channel_kind: ChannelKind,
    /// The client's own activity timeout (pusher-js `activityTimeout`): after the smaller
    /// of this and the server's advertised one without a message, a socket sends
    /// `pusher:ping`. 0 = never ping. Units: ms, s (default), m.
    #[arg(long, default_value = "120s", value_parser = parse_duration, value_name = "TIME")]
    pub activity_timeout: Duration,
}

/// Flags of `rtc bench fanout`.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Subscribers of the channel.
    #[arg(long, short = 's', default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub subscribers: u32,
    /// Events published per second, one HTTP request each.
    #[arg(long, short = 'b', default_value_t = 10.0, value_parser = parse_rate, value_name = "PER_SEC")]
    pub events_per_sec: f64,
    /// Type of the channel (presence: every subscriber is a member, within the server's
    /// member limit).
    #[arg(long, value_enum, default_value_t = ChannelKind::Public)]
    pub channel_kind: ChannelKind,
    /// Bytes of event data (at least the ~20-byte timestamp header).
    #[arg(long, default_value_t = 100, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub payload: u32,
}

/// Flags of `rtc bench presence`.
#[derive(Debug, Clone, Args)]
pub struct PresenceArgs {
    /// Members of the presence channel (the server's `max_presence_members` must allow
    /// them plus the spares, 2 × churn).
    #[arg(long, short = 'm', default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub members: u32,
    /// Joins per second, and as many leaves per second.
    #[arg(long, short = 'j', default_value_t = 5.0, value_parser = parse_rate_or_zero, value_name = "PER_SEC")]
    pub churn: f64,
}

/// Flags of `rtc bench mixed`.
#[derive(Debug, Clone, Args)]
pub struct MixedArgs {
    /// Sockets in all; each joins one private channel.
    #[arg(long, short = 'n', default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sockets: u32,
    /// Subscribers per private channel (channels = sockets / group, rounded up).
    #[arg(long, short = 'g', default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub group: u32,
    /// Events per second, spread round-robin over the private channels.
    #[arg(long, short = 'e', default_value_t = 200.0, value_parser = parse_rate, value_name = "PER_SEC")]
    pub events_per_sec: f64,
    /// Members of the presence channel (taken from the sockets; 0 = no presence channel).
    #[arg(long, short = 'm', default_value_t = 1000)]
    pub members: u32,
    /// Presence joins per second, and as many leaves per second.
    #[arg(long, short = 'j', default_value_t = 15.0, value_parser = parse_rate_or_zero, value_name = "PER_SEC")]
    pub churn: f64,
    /// Bytes of event data (at least the ~20-byte timestamp header).
    #[arg(long, default_value_t = 100, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub payload: u32,
}

/// How `rtc bench drain` makes node A shed its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainWith {
    /// `POST /admin/drain` with the admin token (and --window / --pre-delay, if given).
    Admin,
    /// SIGTERM to --server-pid: the node's own paced drain with its configured settings.
    Signal,
    /// SIGKILL to --server-pid: abrupt death, every socket reset at once.
    Kill,
}

/// Flags of `rtc bench drain`.
#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// Sockets to open on node A (--url) before the drain (≤ ~18,000 per generator
    /// process under a 20,000 open-file limit).
    #[arg(long, short = 'n', default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sockets: u32,
    /// Another node of the cluster (ws://HOST:PORT): drained sockets reconnect to the
    /// survivors round-robin, as a load balancer would. Repeat for each survivor.
    #[arg(long = "survivor", value_name = "URL", required = true)]
    pub survivors: Vec<String>,
    /// How node A is made to shed its sockets.
    #[arg(long, value_enum, default_value_t = DrainWith::Admin)]
    pub drain_with: DrainWith,
    /// Admin token of node A, for --drain-with admin.
    #[arg(long, env = "RTC_ADMIN_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// Window over which node A spreads its reconnect hints (`window_secs` of the drain
    /// request; --drain-with admin only) [default: the node's --drain-window]. Units: ms,
    /// s (default), m.
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub window: Option<Duration>,
    /// Wait between the health flip and the first hint (`pre_delay_secs`; --drain-with
    /// admin only) [default: the node's --pre-drain-delay]. Units: ms, s (default), m.
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub pre_delay: Option<Duration>,
    /// Private channels each socket joins, signed, and joins again after every reconnect
    /// (typical apps use 2–3 per connection): the auth-request rate follows.
    #[arg(long, short = 'c', default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub channels_per_socket: u32,
}

/// A flag value that is not a duration or a rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a number with an optional unit.
    #[error("'{0}' is not a duration; expected e.g. 500ms, 30s, 30 or 2m")]
    Duration(String),
    /// Not a positive number.
    #[error("'{0}' is not a rate; expected a number above 0 and at most 1000000")]
    Rate(String),
}

/// Parses `500ms`, `30s`, `30` (seconds) or `2m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let t = text.trim();
    let bad = || ValueError::Duration(text.to_string());
    let (number, scale_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (t, 1_000.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 || value * scale_ms > 86_400_000.0 {
        return Err(bad());
    }
    Ok(Duration::from_micros((value * scale_ms * 1_000.0).round() as u64))
}

/// Parses a rate above zero.
pub(crate) fn parse_rate(text: &str) -> Result<f64, ValueError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1_000_000.0 => Ok(v),
        _ => Err(ValueError::Rate(text.to_string())),
    }
}

/// Parses a rate, zero allowed (no churn).
pub(crate) fn parse_rate_or_zero(text: &str) -> Result<f64, ValueError> {
    if text.trim().parse::<f64>().is_ok_and(|v| v == 0.0) {
        return Ok(0.0);
    }
    parse_rate(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("NaN").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("200"), Ok(200.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-3").is_err());
        assert!(parse_rate("inf").is_err());
        assert_eq!(parse_rate_or_zero("0"), Ok(0.0));
        assert!(parse_rate_or_zero("x").is_err());
    }
}
