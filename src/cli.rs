//! The command line: every subcommand and flag, defined once with clap. The man page and
//! shell completions are generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::logging::LogFormat;
pub use crate::protocol::ClientEvents;

/// rtc: a clustered Pusher-protocol WebSocket server and the console that operates it.
#[derive(Debug, Parser)]
#[command(name = "rtc", version = crate::VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a Pusher Channels (protocol 7) WebSocket server and the Pusher HTTP API on one port.
    ///
    /// With no flags: listens on 0.0.0.0:8080 with one development app (its id, key and
    /// secret are printed at start-up) and no Redis. Settings come from flags, then RTC_*
    /// environment variables (and Laravel Reverb's REVERB_* names), then the --config file
    /// (./rtc.toml when it exists and --config is not given), then defaults.
    Serve(Box<ServeArgs>),
    /// Live dashboard of every node: connections against the planning line, pub/sub
    /// buffer, presence cost, auth rate, CPU, lag, drain state.
    #[command(after_long_help = rtc_console::top::keys::MANUAL)]
    Top(rtc_console::TopArgs),
    /// The same figures once, as a table or --json; exits 1 when an alert fires.
    #[command(after_help = "Exit codes: 0 no warning or critical alert; 1 an alert fired (also: Redis \
        unreachable while nodes still answer directly); 2 usage; 69 nothing could be read (Redis \
        down and no known node answers, or no --node answers). JSON fields: console/STATUS-JSON.md.")]
    Status(rtc_console::StatusArgs),
    /// Drain one node (paced 4200 reconnect hints, then exit) and show its progress.
    Drain(rtc_console::DrainArgs),
    /// Rolling restart of a cluster, one node at a time: capacity gate, drain, wait for
    /// it to come back serving, next.
    Roll(rtc_console::RollArgs),
    /// Measure a Pusher-compatible server: connections, fan-out, presence, the mix.
    Bench(crate::bench::BenchArgs),
    /// Print shell completions for rtc to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) for rtc or one of its subcommands to stdout.
    Man {
        /// A subcommand's page instead of rtc(1).
        subcommand: Option<String>,
    },
}

/// Flags of `rtc serve`. Every one is optional here: the config layer fills in the file
/// values and defaults, so precedence is flags > env > file > defaults.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML config file (see rtc.example.toml) [default: ./rtc.toml when it exists].
    #[arg(long, short = 'c', env = "RTC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ids of the arguments whose value came from their `RTC_*` environment variable
    /// rather than the command line (filled in by the binary; errors name the source).
    #[arg(skip)]
    pub from_env: std::collections::BTreeSet<String>,
    /// Address to listen on [default: 0.0.0.0, or 127.0.0.1 while the development app is
    /// served; Reverb: REVERB_SERVER_HOST].
    #[arg(long, env = "RTC_HOST")]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 8080; Reverb: REVERB_SERVER_PORT].
    #[arg(long, env = "RTC_PORT")]
    pub port: Option<u16>,
    /// Path prefix of the WebSocket and HTTP API routes, e.g. /ws; health, /metrics and
    /// /admin stay at the root [default: none; Reverb: REVERB_SERVER_PATH].
    #[arg(long, env = "RTC_PATH", value_name = "PREFIX")]
    pub path: Option<String>,
    /// Largest HTTP API request body in bytes [default: 262144; Reverb: REVERB_MAX_REQUEST_SIZE].
    #[arg(long, env = "RTC_MAX_REQUEST_SIZE", value_name = "BYTES")]
    pub max_request_size: Option<usize>,
    /// Token that admin endpoints (/admin/*, /metrics) require as `Authorization: Bearer`.
    /// When unset, a random one is generated and printed at start-up.
    #[arg(long, env = "RTC_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// This node's id [default: derived from the hostname].
    #[arg(long, env = "RTC_NODE_ID")]
    pub node_id: Option<String>,
    /// Log format [default: text]. Filter with RUST_LOG (e.g. RUST_LOG=rtc=debug).
    #[arg(long, env = "RTC_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Bytes queued for one socket before it is closed as a slow consumer (4100)
    /// [default: 1048576].
    #[arg(long, env = "RTC_OUTBOUND_QUEUE_BYTES", value_name = "BYTES")]
    pub outbound_queue_bytes: Option<usize>,
    /// New WebSocket connections this node accepts per second; above it upgrades get 503
    /// with Retry-After, so a reconnect storm cannot take the node down; 0 = no limit
    /// [default: 5000].
    #[arg(long, env = "RTC_MAX_NEW_CONNECTIONS_PER_SEC", value_name = "PER_SEC")]
    pub max_new_connections_per_sec: Option<u32>,
    /// Fan-out budget in milliseconds: a broadcast's fan-out time above it alerts in the
    /// console, and the measured line is the socket count a broadcast reaches within it
    /// [default: 50].
    #[arg(long, env = "RTC_FANOUT_BUDGET_MS", value_name = "MS")]
    pub fanout_budget_ms: Option<u64>,
    /// PEM certificate chain (leaf first): serve wss:// and https:// on the port; needs
    /// --tls-key [default: none, plain ws:// and http://].
    #[arg(long, env = "RTC_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert; needs --tls-cert.
    #[arg(long, env = "RTC_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Seconds a client has to send a complete request head after connecting or after
    /// its previous response (so also the keep-alive idle timeout) [default: 10].
    #[arg(long, env = "RTC_HEADER_TIMEOUT", value_name = "SECS", help_heading = "Connections")]
    pub header_timeout: Option<f64>,
    /// Seconds a client has to send a whole request body after its head [default: 30].
    #[arg(long, env = "RTC_BODY_TIMEOUT", value_name = "SECS", help_heading = "Connections")]
    pub body_timeout: Option<f64>,
    /// Open connections (HTTP, WebSocket, TLS handshakes) this node holds; at the cap the
    /// oldest connection that has not sent a request is closed to make room, else the new
    /// one is; 0 = no cap [default: the open-file limit minus a reserve for health checks,
    /// admin and Redis].
    #[arg(long, env = "RTC_CONNECTION_LIMIT", value_name = "CONNECTIONS", help_heading = "Connections")]
    pub connection_limit: Option<usize>,
    /// Open connections per client address (the TCP peer; trusted proxies are exempt);
    /// 0 = no cap [default: 0].
    #[arg(long, env = "RTC_MAX_CONNECTIONS_PER_ADDRESS", value_name = "CONNECTIONS", help_heading = "Connections")]
    pub max_connections_per_address: Option<usize>,
    /// New WebSocket connections per client address per second (behind a trusted proxy
    /// the address comes from X-Forwarded-For); 0 = no limit [default: 0].
    #[arg(
        long,
        env = "RTC_MAX_NEW_CONNECTIONS_PER_ADDRESS_PER_SEC",
        value_name = "PER_SEC",
        help_heading = "Connections"
    )]
    pub max_new_connections_per_address_per_sec: Option<u32>,
    /// Proxies (IP addresses or CIDR ranges, comma-separated) whose X-Forwarded-For is
    /// believed [default: none].
    #[arg(
        long,
        env = "RTC_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "ADDRS",
        help_heading = "Connections"
    )]
    pub trusted_proxies: Option<Vec<String>>,

    /// Redis URL of the cluster's pub/sub Redis; setting it switches cluster mode on
    /// [Reverb: REVERB_SCALING_ENABLED with REDIS_URL or REDIS_HOST/PORT/USERNAME/PASSWORD/DB].
    #[arg(long, env = "RTC_REDIS_URL", value_name = "URL", hide_env_values = true, help_heading = "Cluster")]
    pub redis_url: Option<String>,
    /// The cluster's engine, by URL; setting it switches cluster mode on:
    /// `redis://HOST:PORT` (one Redis, as --redis-url), `redis-cluster://HOST:PORT[,HOST:PORT…]`
    /// (a Redis Cluster: sharded pub/sub) or `nats://HOST:PORT` (NATS with JetStream).
    #[arg(long, env = "RTC_BUS_URL", value_name = "URL", hide_env_values = true, help_heading = "Cluster")]
    pub bus: Option<String>,
    /// Cluster name: prefixes every Redis key and channel, so clusters can share a Redis
    /// [default: local; Reverb: REVERB_SCALING_CHANNEL].
    #[arg(long = "cluster", env = "RTC_CLUSTER", value_name = "NAME", help_heading = "Cluster")]
    pub cluster_name: Option<String>,
    /// URL at which the console and other nodes reach this node [default: http://HOST:PORT,
    /// with 127.0.0.1 for 0.0.0.0].
    #[arg(long, env = "RTC_ADVERTISE_URL", value_name = "URL", help_heading = "Cluster")]
    pub advertise_url: Option<String>,
    /// Shared secret of the cluster: every bus message carries an HMAC-SHA256 keyed by it,
    /// and messages without a valid one are dropped (counted as `unauthenticated`). Give
    /// every node the same value (at least 16 characters) [default: none: the bus trusts
    /// anyone who can publish to the cluster's Redis].
    #[arg(long, env = "RTC_CLUSTER_SECRET", value_name = "SECRET", hide_env_values = true, help_heading = "Cluster")]
    pub cluster_secret: Option<String>,
    /// Connections per node the cluster is planned for; the console and `rtc roll` warn
    /// and refuse against it [default: 12000].
    #[arg(long, env = "RTC_PLANNING_LINE", value_name = "CONNECTIONS", help_heading = "Cluster")]
    pub planning_line: Option<u64>,

    /// Seconds between the health flip and the first reconnect hint, so the load
    /// balancer stops routing here first [default: 5].
    #[arg(long, env = "RTC_PRE_DRAIN_DELAY", value_name = "SECS", help_heading = "Drain")]
    pub pre_drain_delay: Option<f64>,
    /// Seconds over which reconnect hints (close 4200) are spread, in shuffled order
    /// [default: 15].
    #[arg(long, env = "RTC_DRAIN_WINDOW", value_name = "SECS", help_heading = "Drain")]
    pub drain_window: Option<f64>,
    /// Most reconnect hints per second; 0 = only the window paces them [default: 0].
    #[arg(long, env = "RTC_DRAIN_RATE", value_name = "PER_SEC", help_heading = "Drain")]
    pub drain_rate: Option<u64>,
    /// Seconds from the drain's start after which whatever is left is closed and the
    /// process exits; keep it below the orchestrator's kill timeout [default: 25].
    #[arg(long, env = "RTC_DRAIN_TIMEOUT", value_name = "SECS", help_heading = "Drain")]
    pub drain_timeout: Option<f64>,
    /// Seconds a presence member who left a draining node is kept, so a client that
    /// reconnects to another node within it causes no member_removed/member_added flap
    /// [default: 10].
    #[arg(long, env = "RTC_DRAIN_PRESENCE_GRACE", value_name = "SECS", help_heading = "Drain")]
    pub drain_presence_grace: Option<f64>,

    /// Id of the app defined by flags/env; with --app-key and --app-secret it replaces
    /// the development app [Reverb: REVERB_APP_ID].
    #[arg(long, env = "RTC_APP_ID", help_heading = "App (flags/env)")]
    pub app_id: Option<String>,
    /// Key of the flags/env app [Reverb: REVERB_APP_KEY].
    #[arg(long, env = "RTC_APP_KEY", help_heading = "App (flags/env)")]
    pub app_key: Option<String>,
    /// Secret of the flags/env app [Reverb: REVERB_APP_SECRET].
    #[arg(long, env = "RTC_APP_SECRET", hide_env_values = true, help_heading = "App (flags/env)")]
    pub app_secret: Option<String>,
    /// Seconds of silence after which clients ping [default: 120; Reverb: REVERB_APP_ACTIVITY_TIMEOUT].
    #[arg(long, env = "RTC_APP_ACTIVITY_TIMEOUT", value_name = "SECS", help_heading = "App (flags/env)")]
    pub activity_timeout: Option<u64>,
    /// Seconds of silence after which the server pings a socket [default: the activity
    /// timeout + 30, so clients ping first; Reverb: REVERB_APP_PING_INTERVAL].
    #[arg(long, env = "RTC_APP_PING_INTERVAL", value_name = "SECS", help_heading = "App (flags/env)")]
    pub ping_interval: Option<u64>,
    /// Connection quota for the app, 0 = unlimited [Reverb: REVERB_APP_MAX_CONNECTIONS].
    #[arg(long, env = "RTC_APP_MAX_CONNECTIONS", help_heading = "App (flags/env)")]
    pub max_connections: Option<u64>,
    /// Largest WebSocket message from a client in bytes [default: 10000; Reverb: REVERB_APP_MAX_MESSAGE_SIZE].
    #[arg(long, env = "RTC_APP_MAX_MESSAGE_SIZE", value_name = "BYTES", help_heading = "App (flags/env)")]
    pub max_message_size: Option<usize>,
    /// Who may send client events [default: members; Reverb: REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM].
    #[arg(long, env = "RTC_APP_CLIENT_EVENTS", value_enum, help_heading = "App (flags/env)")]
    pub client_events: Option<ClientEvents>,
    /// Allowed Origin headers, comma-separated; `*` wildcards [default: *].
    #[arg(long, env = "RTC_APP_ALLOWED_ORIGINS", value_delimiter = ',', help_heading = "App (flags/env)")]
    pub allowed_origins: Option<Vec<String>>,
    /// Send pusher_internal:subscription_count to subscribers [default: false].
    #[arg(long, env = "RTC_APP_SUBSCRIPTION_COUNT", help_heading = "App (flags/env)")]
    pub subscription_count: Option<bool>,
    /// Close sockets (4009) that have not signed in or joined a private/presence channel
    /// within this many seconds; 0 = off [default: 0].
    #[arg(long, env = "RTC_APP_REQUIRE_SIGNIN_WITHIN", value_name = "SECS", help_heading = "App (flags/env)")]
    pub require_signin_within: Option<u64>,
}
