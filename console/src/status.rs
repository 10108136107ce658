//! `rtc status`: the figures of `rtc top`, once, as a table or `--json`. The exit code
//! makes it a monitoring check: see [`Exit`].
//!
//! It polls twice, `--interval` apart, because rates need two readings.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::alerts::{Alert, Severity};
use crate::cli::StatusArgs;
use crate::collect::{Collector, Source};
use crate::figures::{ChannelFigures, ClusterFigures, NodeFigures, Thresholds, Totals, Tracker};
use crate::snapshot::RedisSample;
use crate::units;

pub use crate::exit::Exit;

/// The version of the `--json` document; bumped on incompatible changes.
pub const STATUS_SCHEMA: u32 = 1;
/// Channels listed in the table (all of them, up to 20 per node, go to JSON).
const TABLE_CHANNELS: usize = 5;

/// The exit code for figures: 69 when the source is unreachable, 1 on a warning or
/// critical alert, else 0.
pub fn exit_for(f: &ClusterFigures) -> Exit {
    if !f.source_reachable {
        Exit::Unavailable
    } else if f.worst().is_some_and(|s| s >= Severity::Warning) {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

/// Runs `rtc status`.
pub fn run_status(args: StatusArgs) -> ExitCode {
    let resolved = match args.source.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rtc status: {e}");
            return Exit::Usage.into();
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtc status: cannot start the runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let thresholds = Thresholds { planning_line: resolved.planning_line, ..Thresholds::default() };
    let figures = rt.block_on(async {
        let mut collector = Collector::new(&resolved.source, resolved.token.clone())?
            .with_cache(&resolved.source)
            .with_seeds(&resolved.seeds);
        let mut tracker = Tracker::new(thresholds);
        let first = collector.collect_once().await;
        let mut figures = tracker.ingest(&first);
        if first.source_reachable() {
            tokio::time::sleep(resolved.interval).await;
            figures = tracker.ingest(&collector.collect_once().await);
        }
        Ok::<_, String>(figures)
    });
    let figures = match figures {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rtc status: {e}");
            return Exit::Usage.into();
        }
    };
    let text =
        if args.json { render_json(&figures, &resolved.source) } else { render_table(&figures, &resolved.source) };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`rtc status | head`) is not a failure; the exit code still reports.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if !figures.source_reachable && !args.json {
        eprintln!("rtc status: cannot read {}", source_label(&resolved.source));
    }
    exit_for(&figures).into()
}

/// A node problem in a sentence.
pub fn problem_text(p: &crate::snapshot::NodeProblem) -> String {
    match p {
        crate::snapshot::NodeProblem::Expired => "registry key expired".to_string(),
        crate::snapshot::NodeProblem::Unreachable(e)
        | crate::snapshot::NodeProblem::Undecodable(e)
        | crate::snapshot::NodeProblem::Untrusted(e) => e.clone(),
    }
}

fn source_label(source: &Source) -> String {
    match source {
        Source::Cluster { url, cluster } => {
            format!("cluster {cluster} at {}", crate::client::redact_url(url))
        }
        Source::Nodes { urls } => urls.join(", "),
    }
}

/// The `--json` document.
#[derive(Serialize)]
struct StatusJson<'a> {
    schema: u32,
    source: String,
    taken_ms: u64,
    source_reachable: bool,
    ok: bool,
    worst: Option<Severity>,
    alerts: &'a [Alert],
    totals: &'a Totals,
    nodes: &'a [NodeFigures],
    channels: &'a [ChannelFigures],
    redis: Option<&'a RedisSample>,
    redis_down_secs: Option<f64>,
    timeline: &'a [crate::model::TimelineEntry],
}

/// Renders `--json`: one pretty-printed object with stable snake_case keys.
pub fn render_json(f: &ClusterFigures, source: &Source) -> String {
    let doc = StatusJson {
        schema: STATUS_SCHEMA,
        source: source_label(source),
        taken_ms: f.taken_ms,
        source_reachable: f.source_reachable,
        ok: exit_for(f) == Exit::Ok,
        worst: f.worst(),
        alerts: &f.alerts,
        totals: &f.totals,
        nodes: &f.nodes,
        channels: &f.channels,
        redis: f.redis.as_ref(),
        redis_down_secs: f.redis_down_secs,
        timeline: f.redis.as_ref().map_or(&[], |r| r.timeline.as_slice()),
    };
    let mut v = serde_json::to_value(&doc).unwrap_or_default();
    null_unknown_gauges(&mut v);
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// Gauges that are not a current reading are unknown, so `null` (never a 0 that reads
/// as a measurement): CPU, memory and loop lag of a node that is not live, and the
/// totals' when no node is live.
fn null_unknown_gauges(doc: &mut serde_json::Value) {
    const GAUGES: [&str; 3] = ["cpu_percent", "rss_bytes", "loop_lag_ms"];
    if let Some(nodes) = doc.get_mut("nodes").and_then(|n| n.as_array_mut()) {
        for n in nodes {
            let live = !matches!(n["health"].as_str(), Some("down" | "unreachable" | "drained"));
            if !live {
                for g in GAUGES {
                    if let Some(x) = n.get_mut(g) {
                        *x = serde_json::Value::Null;
                    }
                }
            }
        }
    }
    if doc["totals"]["nodes_up"] == 0 {
        for g in GAUGES {
            if let Some(x) = doc["totals"].get_mut(g) {
                *x = serde_json::Value::Null;
            }
        }
    }
}

/// The one-line link summary shared with `rtc top`'s header: `3/4 nodes · redis ok`
/// (the engine's name: `redis`, `redis-cluster`, `nats`).
pub fn link_summary(f: &ClusterFigures) -> String {
    let mut s = format!("{}/{} nodes", f.totals.nodes_up, f.totals.nodes_total);
    if let Some(r) = &f.redis {
        let engine = r.engine.as_str();
        match &r.error {
            Some(_) => {
                let secs = f.redis_down_secs.unwrap_or(0.0) as u64;
                s.push_str(&format!(" · {engine} DOWN {}", units::duration(secs)));
                let direct = f.nodes.iter().filter(|n| n.direct && n.health.is_live()).count();
                s.push_str(&format!(" · {direct} polled directly"));
            }
            None => s.push_str(&format!(" · {engine} ok")),
        }
    }
    s
}

/// The state cell: glyph, word, and drain progress.
pub fn state_cell(n: &NodeFigures) -> String {
    match (&n.drain, n.health) {
        (Some(d), crate::figures::Health::Draining) => {
            format!("{} drain {}", n.health.glyph(), units::percent(d.progress))
        }
        _ if n.restart.is_some() && n.health.is_live() => {
            format!("{} {} ↻", n.health.glyph(), n.health.label())
        }
        _ => format!("{} {}", n.health.glyph(), n.health.label()),
    }
}

/// The pub/sub buffer cell: `1.2M/32M↑`; `?` when Redis does not list the subscriber,
/// `n/a` on an engine that has no such figure (Redis Cluster, NATS).
pub fn buffer_cell(n: &NodeFigures) -> String {
    match &n.pubsub {
        None => "–".to_string(),
        Some(p) if !p.buffer_known => "n/a".to_string(),
        // Redis's figure is shown for a node that does not answer too: that is when it grows.
        Some(p) if (!n.health.is_live() || n.direct) && p.buffer_bytes.is_none() => "–".to_string(),
        Some(p) => match (p.buffer_bytes, p.limit_bytes) {
            (Some(b), Some(l)) => format!("{}/{}{}", units::bytes(b), units::bytes(l), p.trend.arrow()),
            (Some(b), None) => format!("{}{}", units::bytes(b), p.trend.arrow()),
            // Redis's view is unknown (no CLIENT LIST entry for the subscriber).
            _ => format!("?{}", p.trend.arrow()),
        },
    }
}

/// Renders the table.
pub fn render_table(f: &ClusterFigures, source: &Source) -> String {
    let mut out = String::new();
    let mut head = format!("rtc status · {} · {}", source.label(), link_summary(f));
    if let Some(r) = f.redis.as_ref().filter(|r| r.error.is_none() && r.has("redis_figures")) {
        let limit = r.pubsub_limit.and_then(|l| l.effective()).map_or("unknown".to_string(), units::bytes);
        head.push_str(&format!(
            " (v{}, {} used, {} pub/sub clients, buffer limit {})",
            r.version,
            units::bytes(r.used_memory),
            r.pubsub_clients,
            limit
        ));
    }
    out.push_str(&head);
    out.push_str("\n\n");

    let header = [
        "NODE",
        "STATE",
        "CONNS",
        "LINE",
        "CONN/S",
        "DISC/S",
        "CPU%",
        "RSS",
        "OUT/S",
        "BCAST/S",
        "PRES%",
        "AUTH/S",
        "FAIL/S",
        "PONG/S",
        "LIMIT/S",
        "SLOW/S",
        "REFUSE/S",
        "DROP/S",
        "HOOKDROP/S",
        "LOOP",
        "FAN99",
        "MEASURED",
        "PUBSUB BUF",
        "BUS LAG",
        "UPTIME",
        "VERSION",
    ];
    let mut rows: Vec<Vec<String>> = f.nodes.iter().map(node_row).collect();
    rows.push(totals_row(&f.totals));
    out.push_str(&columns(&header, &rows, 2));
    out.push_str("(TOTAL: sums over live nodes; CPU% is the mean; LOOP and PUBSUB BUF the max; FAN99 fan-out p99 over 10 s, ! over budget; MEASURED the sockets one broadcast reaches within the budget; – unknown)\n");

    out.push('\n');
    if f.alerts.is_empty() {
        out.push_str("no alerts\n");
    } else {
        out.push_str("ALERTS\n");
        for a in &f.alerts {
            let sev = format!("{:?}", a.severity).to_lowercase();
            out.push_str(&format!("  {} {sev:<8} {}\n", a.severity.glyph(), a.message));
        }
    }
    if !f.channels.is_empty() {
        out.push_str("\nTOP CHANNELS (by frames out/s)\n");
        let header = ["CHANNEL", "APP", "TYPE", "SUBS", "MEMBERS", "OUT/S"];
        let rows: Vec<Vec<String>> = f
            .channels
            .iter()
            .take(TABLE_CHANNELS)
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.app.clone(),
                    c.kind.clone(),
                    units::count(c.subscribers),
                    units::count(c.members),
                    units::rate(c.frames_out_per_s),
                ]
            })
            .collect();
        out.push_str(&columns(&header, &rows, 3));
    }
    out
}

fn node_row(n: &NodeFigures) -> Vec<String> {
    let live = n.health.is_live();
    let dash = || "–".to_string();
    vec![
        n.id.clone(),
        state_cell(n),
        units::count(n.connections),
        units::percent(n.line_fraction),
        units::rate(n.connects_per_s),
        units::rate(n.disconnects_per_s),
        if live { format!("{:.0}", n.cpu_percent) } else { dash() },
        if live { units::bytes(n.rss_bytes) } else { dash() },
        units::rate(n.frames_out_per_s),
        units::rate(n.broadcasts_per_s),
        n.presence_share.map_or_else(dash, units::percent),
        units::rate(n.auth_requests_per_s),
        units::rate(n.auth_failures_per_s),
        units::rate(n.pongs_per_s),
        units::rate(n.limit_hits_per_s),
        units::rate(n.slow_consumers_per_s),
        units::rate(n.upgrades_refused_per_s),
        units::rate(n.publish_dropped_per_s),
        units::rate(n.webhook_dropped_per_s),
        if live { units::millis(n.loop_lag_ms) } else { dash() },
        fanout_cell(n),
        n.fanout.as_ref().filter(|_| live).and_then(|f| f.measured_line).map_or_else(dash, units::count),
        buffer_cell(n),
        n.pubsub.as_ref().filter(|_| live).map_or_else(dash, |p| units::millis(p.lag_ms)),
        if live { units::duration(n.uptime_secs) } else { dash() },
        if n.version.is_empty() { dash() } else { n.version.clone() },
    ]
}

/// Fan-out p99 over the node's window, `!` when over its budget (as `rtc top`).
fn fanout_cell(n: &NodeFigures) -> String {
    match n.fanout.as_ref().filter(|_| n.health.is_live()) {
        Some(f) => {
            let v = f.p99_ms.map_or_else(|| "–".into(), units::millis);
            if f.over_budget {
                format!("{v}!")
            } else {
                v
            }
        }
        None => "–".to_string(),
    }
}

fn totals_row(t: &Totals) -> Vec<String> {
    vec![
        "TOTAL".to_string(),
        format!("{}/{} up", t.nodes_up, t.nodes_total),
        units::count(t.connections),
        units::percent(t.line_fraction),
        units::rate(t.connects_per_s),
        units::rate(t.disconnects_per_s),
        if t.nodes_up > 0 { format!("{:.0}", t.cpu_percent) } else { "–".to_string() },
        units::bytes(t.rss_bytes),
        units::rate(t.frames_out_per_s),
        units::rate(t.broadcasts_per_s),
        t.presence_share.map_or_else(|| "–".to_string(), units::percent),
        units::rate(t.auth_requests_per_s),
        units::rate(t.auth_failures_per_s),
        units::rate(t.pongs_per_s),
        units::rate(t.limit_hits_per_s),
        units::rate(t.slow_consumers_per_s),
        units::rate(t.upgrades_refused_per_s),
        units::rate(t.publish_dropped_per_s),
        units::rate(t.webhook_dropped_per_s),
        units::millis(t.loop_lag_ms),
        String::new(),
        String::new(),
        t.max_buffer_bytes.map_or_else(|| "–".to_string(), units::bytes),
        String::new(),
        String::new(),
        String::new(),
    ]
}

/// Left-aligns the first `left` columns and right-aligns the rest, two spaces apart.
fn columns(header: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain(std::iter::once(header[i].chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if i < left {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
