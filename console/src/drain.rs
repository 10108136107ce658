//! `rtc drain NODE`: asks one node to drain (the same paced drain as SIGTERM) and shows
//! its progress until it has shed every socket and exited.
//!
//! NODE is a node id from the cluster registry (`--cluster NAME` from rtc.toml, or
//! `--redis-url`), or a node's base URL for a standalone node. The request carries the
//! admin token; nodes refuse control without it.
//!
//! Exit codes: 0 drained (or, with `--no-wait`, started); 1 the drain did not finish
//! within `--timeout`; 2 usage (bad flags, unknown node); 3 refused by the node
//! (already draining, bad token, bad override) or by the console (the node's registry
//! entry is untrusted: see [`crate::client::verify_entry`]); 69 the node or Redis is
//! unreachable.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use rtc_model::{NodeState, NodeStats};

use crate::cli::SourceArgs;
use crate::client::{printable, verify_entry, AdminClient};
use crate::collect::Source;

/// `rtc drain`.
#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// The node: its id in the cluster registry, or its base URL (http://host:port).
    #[arg(value_name = "NODE")]
    pub node: String,

    /// Where to find the node (cluster registry) and the admin token.
    #[command(flatten)]
    pub source: SourceArgs,

    /// Start the drain and return at once.
    #[arg(long)]
    pub no_wait: bool,

    /// Give up waiting after this many seconds (exit 1); the drain itself goes on
    /// [default: the node's drain timeout plus 15 s].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// Spread the reconnect hints over this many seconds (overrides the node's window).
    #[arg(long, value_name = "SECS")]
    pub window: Option<f64>,

    /// At most this many reconnect hints per second (overrides the node's rate).
    #[arg(long, value_name = "PER_SEC")]
    pub rate: Option<u64>,
}

/// Exit codes of `rtc drain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainExit {
    /// Drained (or started, with `--no-wait`).
    Done = 0,
    /// Did not finish in time.
    Failed = 1,
    /// Bad flags or unknown node.
    Usage = 2,
    /// The node refused (already draining, bad token, bad override), or its registry
    /// entry is untrusted.
    Refused = 3,
    /// Unreachable node or Redis.
    Unreachable = 69,
}

impl From<DrainExit> for ExitCode {
    fn from(e: DrainExit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Runs `rtc drain`.
pub fn run_drain(args: DrainArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtc drain: cannot start the runtime: {e}");
            return DrainExit::Failed.into();
        }
    };
    let (code, message) = rt.block_on(drain(args));
    if let Some(m) = message {
        eprintln!("rtc drain: {m}");
    }
    code.into()
}

/// Finds a node's base URL in the registry; the entry must pass the trust check
/// ([`verify_entry`], its signature against `token` when there is one).
async fn lookup(
    redis_url: &str,
    cluster: &str,
    node: &str,
    token: Option<&str>,
) -> Result<String, (DrainExit, String)> {
    let client = redis::Client::open(redis_url).map_err(|e| (DrainExit::Usage, format!("bad Redis URL: {e}")))?;
    let mut con = tokio::time::timeout(Duration::from_secs(5), client.get_multiplexed_async_connection())
        .await
        .map_err(|_| (DrainExit::Unreachable, "Redis did not answer".to_string()))?
        .map_err(|e| (DrainExit::Unreachable, format!("cannot reach Redis: {e}")))?;
    let raw: Option<String> = redis::cmd("GET")
        .arg(rtc_model::registry_key(cluster, node))
        .query_async(&mut con)
        .await
        .map_err(|e| (DrainExit::Unreachable, format!("cannot read the registry: {e}")))?;
    match raw.and_then(|r| serde_json::from_str::<NodeStats>(&r).ok()) {
        Some(s) => match verify_entry(cluster, node, &s, token) {
            Ok(()) => Ok(s.advertise_url),
            Err(why) => Err((
                DrainExit::Refused,
                format!(
                    "the registry entry of '{}' is untrusted: {why}; not draining it \
                     (pass the node's URL to drain it anyway)",
                    printable(node)
                ),
            )),
        },
        None => {
            let ids: Vec<String> = redis::cmd("SMEMBERS")
                .arg(rtc_model::registry_set_key(cluster))
                .query_async(&mut con)
                .await
                .unwrap_or_default();
            let ids: Vec<String> = ids.iter().map(|id| printable(id)).collect();
            Err((
                DrainExit::Usage,
                format!("unknown node '{}' in cluster '{cluster}' (registered: {})", printable(node), ids.join(", ")),
            ))
        }
    }
}

fn progress_line(node: &str, s: &NodeStats, rate: f64) -> String {
    match &s.drain {
        Some(d) => {
            let eta = if rate > 0.0 { format!("ETA {:.0} s", d.sockets_left as f64 / rate) } else { "ETA –".into() };
            format!(
                "{node} draining: {} of {} sockets left · {} hints · {:.0}/s · {:.1} s elapsed · {eta}",
                d.sockets_left, d.sockets_at_start, d.hints_sent, rate, d.elapsed_secs
            )
        }
        None => format!("{node}: {} sockets, state {:?}", s.connections, s.state),
    }
}

async fn drain(args: DrainArgs) -> (DrainExit, Option<String>) {
    let resolved = match args.source.resolve() {
        Ok(r) => Some(r),
        Err(e) if args.node.starts_with("http://") || args.node.starts_with("https://") => {
            let _ = e;
            None
        }
        Err(e) => return (DrainExit::Usage, Some(e)),
    };
    let token = args.source.token.clone().or_else(|| resolved.as_ref().and_then(|r| r.token.clone()));
    let url = if args.node.starts_with("http://") || args.node.starts_with("https://") {
        args.node.trim_end_matches('/').to_string()
    } else {
        match resolved.as_ref().map(|r| &r.source) {
            Some(Source::Cluster { redis_url, cluster }) => {
                match lookup(redis_url, cluster, &args.node, token.as_deref()).await {
                    Ok(u) => u,
                    Err((code, m)) => return (code, Some(m)),
                }
            }
            _ => {
                return (
                    DrainExit::Usage,
                    Some(format!(
                        "'{}' is not a URL: name the cluster (--cluster or --redis-url) to look up a node id",
                        args.node
                    )),
                )
            }
        }
    };
    let client = match AdminClient::new(token) {
        Ok(c) => c,
        Err(e) => return (DrainExit::Failed, Some(e)),
    };
    let mut body = serde_json::Map::new();
    if let Some(w) = args.window {
        body.insert("window_secs".into(), w.into());
    }
    if let Some(r) = args.rate {
        body.insert("rate".into(), r.into());
    }
    let answer = match client.request_drain_with(&url, &serde_json::Value::Object(body)).await {
        Ok(a) => a,
        Err((status, m)) => {
            let code = match status {
                Some(401 | 409 | 400) => DrainExit::Refused,
                Some(_) => DrainExit::Failed,
                None => DrainExit::Unreachable,
            };
            let m = match status {
                Some(409) => format!("{} is already draining", args.node),
                Some(401) => "the node refused the admin token (set --token or RTC_ADMIN_TOKEN)".to_string(),
                _ => m,
            };
            return (code, Some(m));
        }
    };
    let timeout_secs = answer["timeout_secs"].as_f64().unwrap_or(25.0);
    println!(
        "{} is draining: {} sockets, window {:.0} s, deadline {:.0} s",
        args.node,
        answer["sockets"].as_u64().unwrap_or(0),
        answer["window_secs"].as_f64().unwrap_or(0.0),
        timeout_secs
    );
    if args.no_wait {
        return (DrainExit::Done, None);
    }
    let wait = Duration::from_secs_f64(args.timeout.unwrap_or(timeout_secs + 15.0).max(1.0));
    let start = Instant::now();
    let tty = std::io::stdout().is_terminal();
    let mut last: Option<(Instant, u64)> = None;
    let mut last_print = Instant::now() - Duration::from_secs(10);
    loop {
        if start.elapsed() > wait {
            if tty {
                println!();
            }
            return (DrainExit::Failed, Some(format!("the drain did not finish within {:.0} s", wait.as_secs_f64())));
        }
        match client.fetch_stats(&url).await {
            Ok(s) => {
                let left = s.drain.as_ref().map_or(s.connections, |d| d.sockets_left);
                let rate = match last {
                    Some((t, prev)) if t.elapsed() > Duration::ZERO => {
                        prev.saturating_sub(left) as f64 / t.elapsed().as_secs_f64()
                    }
                    _ => 0.0,
                };
                last = Some((Instant::now(), left));
                if s.state != Some(NodeState::Draining) && s.drain.is_none() {
                    return (DrainExit::Failed, Some(format!("{} is not draining (state {:?})", args.node, s.state)));
                }
                let line = progress_line(&args.node, &s, rate);
                if tty {
                    print!("\r\x1b[2K{line}");
                    let _ = std::io::stdout().flush();
                } else if last_print.elapsed() >= Duration::from_secs(1) {
                    println!("{line}");
                    last_print = Instant::now();
                }
            }
            Err(_) => {
                // The node stopped answering: it finished its drain and exited.
                if tty {
                    println!();
                }
                println!("{} drained and stopped after {:.1} s", args.node, start.elapsed().as_secs_f64());
                return (DrainExit::Done, None);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
