//! `rtc drain NODE`: asks one node to drain (the same paced drain as SIGTERM) and shows
//! its progress until it has shed every socket and exited.
//!
//! NODE is a node id from the cluster registry (`--cluster NAME` from rtc.toml, or
//! `--bus URL` on any engine, or `--redis-url`), or a node's base URL for a standalone
//! node. The request carries the
//! admin token; nodes refuse control without it.
//!
//! Before asking, it checks capacity as `rtc roll` does (see [`crate::capacity`]): it
//! shows the arithmetic and refuses a drain that would push the survivors over the
//! planning line, or that would drain the last serving node, unless `--force`.
//! `--dry-run` shows the check and stops.
//!
//! Exit codes: 0 drained (or, with `--no-wait`, started; with `--dry-run`, it would go
//! ahead); 1 the drain did not finish within `--timeout`; 2 usage (bad flags, unknown
//! node); 3 refused by the capacity gate, by the node (already draining, bad token, bad
//! override) or by the console (the node's registry entry is untrusted: see
//! [`crate::client::verify_entry`]); 69 the node or the registry is unreachable.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use rtc_model::{NodeState, NodeStats};

use crate::cli::SourceArgs;
use crate::client::{printable, redact_url, AdminClient};
use crate::collect::Source;
use crate::exit::Exit;
use crate::registry::Registry;
use crate::snapshot::NodeProblem;

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

    /// Drain even when the capacity check fails (survivors over the planning line, or
    /// the last serving node).
    #[arg(long)]
    pub force: bool,

    /// Show the capacity check and stop (exit 0 when the drain would go ahead, 3 when it
    /// would be refused).
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `rtc drain`.
pub fn run_drain(args: DrainArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtc drain: cannot start the runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let (code, message) = rt.block_on(drain(args));
    if let Some(m) = message {
        eprintln!("rtc drain: {m}");
    }
    code.into()
}

/// Finds a node's base URL in the registry (on the engine `url` names); the entry must
/// pass the trust check ([`crate::client::verify_entry`], its signature against `token`
/// when there is one).
async fn lookup(url: &str, cluster: &str, node: &str, token: Option<&str>) -> Result<String, (Exit, String)> {
    let mut registry = Registry::connect(url).await.map_err(|e| {
        if e.bad_url {
            (Exit::Usage, e.text)
        } else {
            (Exit::Unavailable, format!("cannot reach the registry ({}): {e}", redact_url(url)))
        }
    })?;
    let entries = registry
        .entries(cluster, token)
        .await
        .map_err(|e| (Exit::Unavailable, format!("cannot read the registry: {e}")))?;
    match entries.iter().find(|(id, _)| id == node).map(|(_, e)| e) {
        Some(Ok(s)) => Ok(s.advertise_url.clone()),
        Some(Err(NodeProblem::Untrusted(why))) => Err((
            Exit::Refused,
            format!(
                "the registry entry of '{}' is untrusted: {why}; not draining it \
                 (pass the node's URL to drain it anyway)",
                printable(node)
            ),
        )),
        _ => {
            let ids: Vec<String> = entries.iter().map(|(id, _)| printable(id)).collect();
            let known = if ids.is_empty() {
                let clusters = registry.find_clusters().await.unwrap_or_default();
                format!(
                    "no node is registered in cluster '{cluster}'; clusters on this {} engine: {}",
                    registry.engine().as_str(),
                    if clusters.is_empty() { "none".to_string() } else { clusters.join(", ") }
                )
            } else {
                format!("registered: {}", ids.join(", "))
            };
            Err((Exit::Usage, format!("unknown node '{}' in cluster '{cluster}' ({known})", printable(node))))
        }
    }
}

/// The capacity check's outcome, for the operator.
struct Gate {
    /// The arithmetic, one or two lines.
    text: String,
    /// Whether the drain may go ahead.
    ok: bool,
    /// Why not, when not.
    reason: String,
}

/// The cluster's figures (one poll) judged by [`crate::capacity::drain_headroom`]; the
/// last serving node is never drained without `--force`.
async fn cluster_gate(
    source: &Source,
    token: Option<String>,
    planning_line: Option<u64>,
    node: &str,
    url: &str,
) -> Result<Gate, String> {
    let mut collector = crate::collect::Collector::new(source, token)?.with_cache(source);
    let snap = collector.collect_once().await;
    let thresholds = crate::figures::Thresholds { planning_line, ..crate::figures::Thresholds::default() };
    let figures = crate::figures::Tracker::new(thresholds).ingest(&snap);
    let id = figures
        .nodes
        .iter()
        .find(|n| n.id == node || n.url.as_deref().map(|u| u.trim_end_matches('/')) == Some(url))
        .map(|n| n.id.clone())
        .ok_or_else(|| format!("'{node}' is not among the nodes read from the registry"))?;
    let h = crate::capacity::drain_headroom(&figures, &id).ok_or("the node vanished")?;
    let text = format!(
        "capacity check: {} (planning line {} per node{})",
        h.summary(),
        crate::units::count(h.line),
        if planning_line.is_some() { ", from --planning-line" } else { "" }
    );
    let (ok, reason) = if h.survivors == 0 {
        (false, format!("{id} is the last serving node: nothing would take its sockets"))
    } else if !h.ok {
        (
            false,
            format!(
                "the busiest survivor would hold {} against a planning line of {}",
                crate::units::count(h.busiest_after),
                crate::units::count(h.line)
            ),
        )
    } else {
        (true, String::new())
    };
    Ok(Gate { text, ok, reason })
}

/// A standalone node (a URL, no cluster): only the last-node rule can be checked, from
/// the node's own count of live nodes.
async fn standalone_gate(client: &AdminClient, url: &str) -> Result<Gate, String> {
    let s = client.fetch_stats(url).await.map_err(|p| format!("{url}: {}", crate::status::problem_text(&p)))?;
    let live = s.live_nodes.max(1);
    let text = format!("capacity check: {} sees {live} live node(s) including itself", url);
    if live <= 1 {
        let who = if s.node_id.is_empty() { url.to_string() } else { s.node_id.clone() };
        Ok(Gate { text, ok: false, reason: format!("{who} is the last serving node: nothing would take its sockets") })
    } else {
        Ok(Gate { text, ok: true, reason: String::new() })
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

async fn drain(args: DrainArgs) -> (Exit, Option<String>) {
    let resolved = match args.source.resolve() {
        Ok(r) => Some(r),
        Err(e) if args.node.starts_with("http://") || args.node.starts_with("https://") => {
            let _ = e;
            None
        }
        Err(e) => return (Exit::Usage, Some(e)),
    };
    let token = args.source.token.clone().or_else(|| resolved.as_ref().and_then(|r| r.token.clone()));
    let url = if args.node.starts_with("http://") || args.node.starts_with("https://") {
        args.node.trim_end_matches('/').to_string()
    } else {
        match resolved.as_ref().map(|r| &r.source) {
            Some(Source::Cluster { url, cluster }) => match lookup(url, cluster, &args.node, token.as_deref()).await {
                Ok(u) => u,
                Err((code, m)) => return (code, Some(m)),
            },
            _ => {
                return (
                    Exit::Usage,
                    Some(format!(
                        "'{}' is not a URL: name the cluster (--cluster, --bus or --redis-url) to look up a node id",
                        args.node
                    )),
                )
            }
        }
    };
    let client = match AdminClient::new(token.clone()) {
        Ok(c) => c,
        Err(e) => return (Exit::Failed, Some(e)),
    };
    let gate = match resolved.as_ref().map(|r| &r.source) {
        Some(source @ Source::Cluster { .. }) => {
            let planning_line = resolved.as_ref().and_then(|r| r.planning_line);
            cluster_gate(source, token, planning_line, &args.node, &url).await
        }
        _ => standalone_gate(&client, &url).await,
    };
    match gate {
        Ok(g) => {
            println!("{}", g.text);
            if !g.ok {
                if args.force && !args.dry_run {
                    println!("--force: draining anyway");
                } else {
                    let hint = if args.dry_run { "" } else { "; --force drains anyway" };
                    return (Exit::Refused, Some(format!("refused: {}{hint}", g.reason)));
                }
            }
        }
        Err(e) => println!("capacity not checked: {e}"),
    }
    if args.dry_run {
        println!("--dry-run: {} would be asked to drain (POST {url}/admin/drain)", args.node);
        return (Exit::Ok, None);
    }
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
                Some(401 | 409 | 400) => Exit::Refused,
                Some(_) => Exit::Failed,
                None => Exit::Unavailable,
            };
            let m = match status {
                Some(409) => format!("{} is already draining", args.node),
                Some(401) => "the node refused the admin token (set --token or RTC_ADMIN_TOKEN)".to_string(),
                None => format!("{url}: {m}"),
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
        return (Exit::Ok, None);
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
            return (Exit::Failed, Some(format!("the drain did not finish within {:.0} s", wait.as_secs_f64())));
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
                    return (Exit::Failed, Some(format!("{} is not draining (state {:?})", args.node, s.state)));
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
                return (Exit::Ok, None);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
