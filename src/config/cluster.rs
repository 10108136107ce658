//! Cluster membership: the validated [`ClusterConfig`] and how it is resolved (flags,
//! `rtc.toml`, Reverb's `REVERB_SCALING_ENABLED` + `REDIS_*`).

use super::{ClusterSection, Resolver};
use crate::cli::ServeArgs;
use crate::secret::Secret;

/// Cluster membership of a node (cluster mode is on when this is present).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Cluster name (prefix of every Redis key and channel).
    pub name: String,
    /// The engine.
    pub engine: Engine,
    /// The engine's URL (may hold a password: never printed). For
    /// [`Engine::RedisCluster`] the seed nodes, comma-separated after the scheme.
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

/// Which engine joins the nodes of a cluster (`--bus URL`, by its scheme): the pure URL
/// parsing lives in `rtc-model`, shared with the console's `--bus`.
pub use rtc_model::Engine;

/// The engines this build can run.
const AVAILABLE: &[Engine] = &[Engine::Redis, Engine::RedisCluster, Engine::Nats];

/// Replaces the password of a URL (`redis://user:pass@host`) with `***`.
pub use rtc_model::bus::redact_url;

pub(super) fn resolve_cluster(
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
    let bus = args.bus.clone().or_else(|| file.bus.clone());
    let legacy = args.redis_url.clone().or(reverb_url).or_else(|| file.redis_url.clone());
    if let (Some(b), Some(l)) = (&bus, &legacy) {
        if b != l {
            r.err(
                "cluster.bus",
                format!(
                    "'{}' and the Redis URL '{}' are both set; give one (--bus replaces --redis-url)",
                    redact_url(b),
                    redact_url(l)
                ),
            );
        }
    }
    let field = if bus.is_some() { "cluster.bus" } else { "cluster.redis_url" };
    let url = bus.or(legacy)?;
    let engine = Engine::of_url(&url);
    match rtc_model::bus::check_url(&url) {
        Err(e) => r.err(field, e),
        Ok(Engine::Redis) if redis::Client::open(url.as_str()).is_err() => {
            r.err(field, format!("'{}' is not a valid Redis URL", redact_url(&url)))
        }
        Ok(e) if !AVAILABLE.contains(&e) => {
            r.err(field, format!("the {} engine is not available in this version of rtc", e.as_str()))
        }
        Ok(_) => {}
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
        engine: engine.unwrap_or(Engine::Redis),
        redis_url: Secret::new(url),
        advertise_url: advertise_url.trim_end_matches('/').to_string(),
        planning_line,
        node_ttl: std::time::Duration::from_secs(ttl),
    })
}
