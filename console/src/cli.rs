//! Command-line arguments of `rtc top` and `rtc status` (clap derive: the doc comments
//! are the `--help` text and the man page), and their resolution against `rtc.toml`.
//!
//! Two stages, as in ripgrep: the raw flags ([`SourceArgs`]) are resolved once into a
//! validated [`Resolved`] (a [`Source`], a token, an interval, a planning line).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::collect::Source;

/// Shortest poll interval accepted: faster adds load on every node for no new signal
/// (nodes refresh their registry entry once a second).
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// Longest poll interval accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Where the console reads figures from, shared by `top` and `status`.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// The cluster's name, as `rtc serve --cluster NAME`. Its engine is --bus (or
    /// --redis-url), else the [clusters.NAME] table of the config file (keys: bus or
    /// redis_url, admin_token, planning_line, nodes). With neither flag, a config file
    /// with exactly one [clusters.*] table picks that one. [default with --bus or
    /// --redis-url: local]
    #[arg(long, value_name = "NAME", alias = "cluster-name")]
    pub cluster: Option<String>,

    /// Config file holding the [clusters.NAME] tables.
    #[arg(long, value_name = "PATH", env = "RTC_CONFIG", default_value = "rtc.toml")]
    pub config: PathBuf,

    /// Read the node registry straight from the cluster's engine, the URL the nodes were
    /// given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…]
    /// (a Redis Cluster) or nats://HOST:PORT (NATS JetStream).
    #[arg(long, value_name = "URL", env = "RTC_BUS_URL", hide_env_values = true)]
    pub bus: Option<String>,

    /// Read the node registry straight from this Redis (the cluster's pub/sub Redis), e.g.
    /// redis://127.0.0.1:6379: the same as --bus with a redis:// URL.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,

    /// A standalone node's base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for
    /// several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while
    /// the registry does not answer, besides those it listed.
    #[arg(long = "node", value_name = "URL")]
    pub nodes: Vec<String>,

    /// Admin token sent as 'Authorization: Bearer' to nodes' /admin endpoints (overrides
    /// the cluster's admin_token).
    #[arg(long, value_name = "TOKEN", env = "RTC_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// Connections per node to plan for (default: the cluster's planning_line, else the
    /// node's own, else 12000).
    #[arg(long, value_name = "CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub planning_line: Option<u64>,
}

/// `rtc top`: the live dashboard.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// Where to read figures from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// Allow actions that change the cluster (d: drain the selected node, after a
    /// confirmation showing the capacity check). Read-only without it.
    #[arg(long)]
    pub write: bool,

    /// No colour (also when NO_COLOR is set). States keep their glyphs.
    #[arg(long)]
    pub no_color: bool,
}

/// `rtc status`: the same figures once, for scripts and monitoring checks.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Where to read figures from.
    #[command(flatten)]
    pub source: SourceArgs,

    /// Print JSON (stable snake_case keys) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where figures come from.
    pub source: Source,
    /// Admin token for nodes' endpoints.
    pub token: Option<String>,
    /// Poll interval.
    pub interval: Duration,
    /// Planning line override (flag, else the cluster's config).
    pub planning_line: Option<u64>,
    /// Admin URLs to poll directly while the registry cannot be read (cluster mode):
    /// `--node` with a cluster, and the cluster table's `nodes`.
    pub seeds: Vec<String>,
}

/// The part of `rtc.toml` the console reads; other tables belong to `rtc serve`.
#[derive(Debug, Default, Deserialize)]
struct ConsoleFile {
    #[serde(default)]
    clusters: BTreeMap<String, ClusterEntry>,
}

/// One `[clusters.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterEntry {
    /// The engine URL, as `rtc serve --bus`.
    bus: Option<String>,
    /// One Redis (the same as a `redis://` bus).
    redis_url: Option<String>,
    admin_token: Option<String>,
    planning_line: Option<u64>,
    /// Nodes' admin URLs, polled directly while Redis does not answer.
    #[serde(default)]
    nodes: Vec<String>,
}

impl SourceArgs {
    /// Resolves the flags (and the config file when needed) into settings.
    ///
    /// # Errors
    /// A message for the operator naming the flag, file or key at fault.
    pub fn resolve(&self) -> Result<Resolved, String> {
        for url in &self.nodes {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("--node '{url}': expected a base URL such as http://127.0.0.1:6001"));
            }
        }
        let seeds: Vec<String> = self.nodes.iter().map(|u| u.trim_end_matches('/').to_string()).collect();
        let flag_url = engine_url(self.bus.as_deref(), self.redis_url.as_deref(), "--bus", "--redis-url")?;
        if !self.nodes.is_empty() && flag_url.is_none() && self.cluster.is_none() {
            for url in &self.nodes {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("--node '{url}': expected a base URL such as http://127.0.0.1:6001"));
                }
            }
            return Ok(Resolved {
                source: Source::Nodes {
                    urls: self.nodes.iter().map(|u| u.trim_end_matches('/').to_string()).collect(),
                },
                token: self.token.clone(),
                interval: self.interval,
                planning_line: self.planning_line,
                seeds: Vec::new(),
            });
        }
        if let Some((url, what)) = flag_url {
            check_engine_url(url, what)?;
            return Ok(Resolved {
                source: Source::Cluster {
                    url: url.to_string(),
                    cluster: self.cluster.clone().unwrap_or_else(|| "local".to_string()),
                },
                token: self.token.clone(),
                interval: self.interval,
                planning_line: self.planning_line,
                seeds,
            });
        }
        // A missing file is no error: the message below says what to pass instead.
        let file = read_config(&self.config, false)?;
        let (name, entry) = match &self.cluster {
            Some(name) => {
                let entry = file.clusters.get(name).ok_or_else(|| {
                    let known: Vec<&str> = file.clusters.keys().map(String::as_str).collect();
                    format!(
                        "no engine URL for cluster '{name}': pass --bus URL, or add a [clusters.{name}] \
                         table to {} (tables there: {})",
                        self.config.display(),
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    )
                })?;
                (name.clone(), entry)
            }
            None if file.clusters.len() == 1 => {
                let (name, entry) = file.clusters.iter().next().ok_or("unreachable")?;
                (name.clone(), entry)
            }
            None => {
                return Err("no source: pass --bus URL (and --cluster NAME), --cluster NAME with a \
                     [clusters.NAME] table in rtc.toml, or --node URL"
                    .to_string())
            }
        };
        let at = |key: &str| format!("{}: 'clusters.{name}.{key}'", self.config.display());
        let (bus_key, redis_key) = (at("bus"), at("redis_url"));
        let (url, what) = engine_url(entry.bus.as_deref(), entry.redis_url.as_deref(), &bus_key, &redis_key)?
            .ok_or_else(|| format!("{}: [clusters.{name}] needs bus (or redis_url)", self.config.display()))?;
        check_engine_url(url, what)?;
        if entry.planning_line == Some(0) {
            return Err(format!("{}: 'clusters.{name}.planning_line' = 0: must be at least 1", self.config.display()));
        }
        Ok(Resolved {
            source: Source::Cluster { url: url.to_string(), cluster: name },
            token: self.token.clone().or_else(|| entry.admin_token.clone()),
            interval: self.interval,
            planning_line: self.planning_line.or(entry.planning_line),
            seeds: seeds.into_iter().chain(entry.nodes.iter().map(|u| u.trim_end_matches('/').to_string())).collect(),
        })
    }
}

/// The engine URL of `--bus` and `--redis-url` (or a table's `bus` and `redis_url`),
/// with the name it was given under: one of them, or both when they are the same URL
/// (a `redis://` bus is `--redis-url`), as `rtc serve` takes them.
///
/// # Errors
/// Both are given and differ.
fn engine_url<'a>(
    bus: Option<&'a str>,
    redis_url: Option<&'a str>,
    bus_name: &'a str,
    redis_name: &'a str,
) -> Result<Option<(&'a str, &'a str)>, String> {
    match (bus, redis_url) {
        (Some(b), Some(r)) if b != r => Err(format!(
            "{bus_name} = '{}' and {redis_name} = '{}' are both set and differ; give one ({bus_name} replaces \
             {redis_name})",
            crate::client::redact_url(b),
            crate::client::redact_url(r)
        )),
        (Some(b), _) => Ok(Some((b, bus_name))),
        (None, Some(r)) => Ok(Some((r, redis_name))),
        (None, None) => Ok(None),
    }
}

/// An engine URL must say its scheme (`127.0.0.1:6379` gets a `redis://` hint) and be
/// one `rtc serve --bus` takes (the scheme names the engine; a Redis Cluster's or NATS's
/// URL names HOST:PORT).
fn check_engine_url(url: &str, what: &str) -> Result<(), String> {
    if url.contains("://") {
        return rtc_model::bus::check_url(url).map(|_| ()).map_err(|e| format!("{what} = {e}"));
    }
    Err(format!(
        "{what} = '{}': no scheme; write redis://{} (or rediss:// for TLS)",
        crate::client::redact_url(url),
        crate::client::redact_url(url)
    ))
}

/// Reads the console's part of the config. A missing file is an error only when a
/// cluster was asked for by name.
fn read_config(path: &Path, required: bool) -> Result<ConsoleFile, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(ConsoleFile::default()),
        Err(e) => return Err(format!("{}: cannot read: {e} (set --config or RTC_CONFIG)", path.display())),
    };
    parse_config(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_config(text: &str) -> Result<ConsoleFile, String> {
    toml::from_str(text).map_err(|e| e.message().to_string())
}

/// Parses `1s`, `500ms`, `2.5s`, `2` (seconds) within [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
///
/// # Errors
/// The reason, for clap to show next to the flag.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("'{s}' is not a duration; use e.g. 1s, 500ms, 2.5s"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("'{s}' is not a duration; use e.g. 1s, 500ms, 2.5s"));
    }
    let d = Duration::from_secs_f64(v * scale);
    if d < MIN_INTERVAL || d > MAX_INTERVAL {
        return Err(format!("'{s}' is out of range: use 250ms to 60s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        s: SourceArgs,
    }

    fn parse(args: &[&str]) -> Result<SourceArgs, clap::Error> {
        let mut v = vec!["t", "--config", "/nonexistent/rtc.toml"];
        v.extend_from_slice(args);
        T::try_parse_from(v).map(|t| t.s)
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_interval("10ms").is_err());
        assert!(parse_interval("fast").is_err());
    }

    #[test]
    fn node_mode_and_conflicts() {
        let r = parse(&["--node", "http://127.0.0.1:6001/", "--token", "t"]).unwrap().resolve().unwrap();
        assert_eq!(r.source, Source::Nodes { urls: vec!["http://127.0.0.1:6001".into()] });
        assert_eq!(r.token.as_deref(), Some("t"));
        let seeded = parse(&["--node", "http://a", "--redis-url", "redis://b"]).unwrap().resolve().unwrap();
        assert_eq!(seeded.seeds, vec!["http://a".to_string()]);
        // --cluster names the cluster, also with --redis-url.
        let r = parse(&["--cluster", "x", "--redis-url", "redis://b"]).unwrap().resolve().unwrap();
        assert_eq!(r.source, Source::Cluster { url: "redis://b".into(), cluster: "x".into() });
        let err = parse(&["--redis-url", "127.0.0.1:6392"]).unwrap().resolve().unwrap_err();
        assert_eq!(
            err,
            "--redis-url = '127.0.0.1:6392': no scheme; write redis://127.0.0.1:6392 (or rediss:// for TLS)"
        );
        // --node with a cluster: polled directly while Redis does not answer.
        let r =
            parse(&["--cluster", "x", "--redis-url", "redis://b", "--node", "http://a/"]).unwrap().resolve().unwrap();
        assert_eq!(r.seeds, vec!["http://a".to_string()]);
        assert!(matches!(r.source, Source::Cluster { .. }));
        let err = parse(&["--node", "127.0.0.1:6001"]).unwrap().resolve().unwrap_err();
        assert!(err.contains("expected a base URL"), "{err}");
        let err = parse(&[]).unwrap().resolve().unwrap_err();
        assert!(err.contains("no source"), "{err}");
    }

    #[test]
    fn redis_mode_uses_cluster_name() {
        let r = parse(&["--redis-url", "redis://127.0.0.1:6379", "--cluster-name", "prod"]).unwrap().resolve().unwrap();
        assert_eq!(r.source, Source::Cluster { url: "redis://127.0.0.1:6379".into(), cluster: "prod".into() });
    }

    #[test]
    fn bus_names_the_engine_and_agrees_with_redis_url() {
        for url in ["redis://127.0.0.1:6379", "redis-cluster://127.0.0.1:7000,127.0.0.1:7001", "nats://127.0.0.1:4222"]
        {
            let r = parse(&["--bus", url, "--cluster", "prod"]).unwrap().resolve().unwrap();
            assert_eq!(r.source, Source::Cluster { url: url.into(), cluster: "prod".into() });
        }
        // A redis:// bus is --redis-url: the same URL twice is no conflict, two differ.
        let same = parse(&["--bus", "redis://a:1", "--redis-url", "redis://a:1"]).unwrap().resolve().unwrap();
        assert_eq!(same.source, Source::Cluster { url: "redis://a:1".into(), cluster: "local".into() });
        let err = parse(&["--bus", "nats://a:4222", "--redis-url", "redis://a:1"]).unwrap().resolve().unwrap_err();
        assert!(err.contains("--bus = 'nats://a:4222' and --redis-url = 'redis://a:1'"), "{err}");
        assert!(err.contains("give one"), "{err}");
        let err = parse(&["--bus", "kafka://a:1"]).unwrap().resolve().unwrap_err();
        assert!(err.starts_with("--bus = 'kafka://a:1' must start with redis://"), "{err}");
        let err = parse(&["--bus", "redis-cluster://a"]).unwrap().resolve().unwrap_err();
        assert!(err.contains("must name HOST:PORT"), "{err}");
        let err = parse(&["--bus", "nats://u:secret@a"]).unwrap().resolve().unwrap_err();
        assert!(!err.contains("secret"), "the password is redacted: {err}");
        // The config file's table takes bus = "…" too, and refuses two different URLs.
        let file = parse_config("[clusters.n]\nbus = \"nats://127.0.0.1:4222\"\n").unwrap();
        assert_eq!(file.clusters["n"].bus.as_deref(), Some("nats://127.0.0.1:4222"));
        let dir = std::env::temp_dir().join(format!("rtc-console-cli-bus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rtc.toml");
        std::fs::write(&path, "[clusters.n]\nbus = \"nats://127.0.0.1:4222\"\nadmin_token = \"t\"\n").unwrap();
        let r = T::try_parse_from(["t", "--config", path.to_str().unwrap()]).unwrap().s.resolve().unwrap();
        assert_eq!(r.source, Source::Cluster { url: "nats://127.0.0.1:4222".into(), cluster: "n".into() });
        std::fs::write(&path, "[clusters.n]\nbus = \"nats://127.0.0.1:4222\"\nredis_url = \"redis://a:1\"\n").unwrap();
        let err = T::try_parse_from(["t", "--config", path.to_str().unwrap()]).unwrap().s.resolve().unwrap_err();
        assert!(err.contains("'clusters.n.bus'") && err.contains("give one"), "{err}");
        std::fs::write(&path, "[clusters.n]\nadmin_token = \"t\"\n").unwrap();
        let err = T::try_parse_from(["t", "--config", path.to_str().unwrap()]).unwrap().s.resolve().unwrap_err();
        assert!(err.contains("needs bus (or redis_url)"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn config_file_clusters() {
        let file = parse_config(
            "[server]\nport = 6001\n\n[clusters.prod]\nredis_url = \"redis://10.0.0.9:6379\"\n\
             admin_token = \"s3cret\"\nplanning_line = 15000\n",
        )
        .unwrap();
        let prod = &file.clusters["prod"];
        assert_eq!(prod.redis_url.as_deref(), Some("redis://10.0.0.9:6379"));
        assert_eq!(prod.admin_token.as_deref(), Some("s3cret"));
        assert_eq!(prod.planning_line, Some(15_000));
        let seeded = parse_config("[clusters.p]\nredis_url = \"redis://a\"\nnodes = [\"http://n1:8080\"]\n").unwrap();
        assert_eq!(seeded.clusters["p"].nodes, vec!["http://n1:8080".to_string()]);
        let err = parse_config("[clusters.prod]\nredis_url = \"x\"\nplanning = 3\n").unwrap_err();
        assert!(err.contains("planning"), "{err}");
    }

    #[test]
    fn cluster_from_file_on_disk() {
        let dir = std::env::temp_dir().join(format!("rtc-console-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rtc.toml");
        std::fs::write(&path, "[clusters.prod]\nredis_url = \"redis://127.0.0.1:6379\"\nadmin_token = \"tok\"\n")
            .unwrap();
        let args = T::try_parse_from(["t", "--config", path.to_str().unwrap(), "--cluster", "prod"]).unwrap().s;
        let r = args.resolve().unwrap();
        assert_eq!(r.token.as_deref(), Some("tok"));
        assert_eq!(r.planning_line, None);
        // Exactly one cluster: used without --cluster.
        let only = T::try_parse_from(["t", "--config", path.to_str().unwrap()]).unwrap().s;
        assert!(matches!(only.resolve().unwrap().source, Source::Cluster { .. }));
        let missing = T::try_parse_from(["t", "--config", path.to_str().unwrap(), "--cluster", "qa"]).unwrap().s;
        let err = missing.resolve().unwrap_err();
        assert!(err.contains("no engine URL for cluster 'qa'") && err.contains("(tables there: prod)"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
