//! Alerts: the failure signals an on-call operator watches for, judged from figures. Each has a stable
//! code (the `code` key in `rtc status --json`) and a sentence for the operator.
//!
//! `Warning` and `Critical` alerts make `rtc status` exit 1; `Info` ones (a Redis shared
//! with other work) are shown but do not fail a monitoring check.

use serde::Serialize;

use crate::figures::{Health, NodeFigures, Thresholds};
use crate::snapshot::ClusterSnapshot;
use crate::units;

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; does not fail `rtc status`.
    Info,
    /// Act soon.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// A glyph that tells severities apart without colour.
    pub fn glyph(self) -> &'static str {
        match self {
            Severity::Info => "i",
            Severity::Warning => "!",
            Severity::Critical => "✖",
        }
    }
}

/// What an alert is about. The serialized names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Connections above the planning line.
    OverPlanningLine,
    /// The net connect rate crosses the line within the projection window.
    ProjectedOverPlanningLine,
    /// Connections at or above the near fraction of the line.
    NearPlanningLine,
    /// Pub/sub output buffer above the fraction of Redis's limit.
    PubsubBufferHigh,
    /// Pub/sub output buffer growing for longer than the threshold.
    PubsubBufferGrowing,
    /// Bus lag above the threshold.
    PubsubLagHigh,
    /// Event-loop lag above the threshold.
    LoopLagHigh,
    /// Fan-out p99 above the node's fan-out budget.
    FanoutOverBudget,
    /// Registered node no longer heartbeating.
    NodeStale,
    /// `--node` that does not answer.
    NodeUnreachable,
    /// Node cut off from the cluster bus.
    NodeDegraded,
    /// Drain closed sockets at its deadline instead of pacing them.
    DrainForced,
    /// Redis cannot be read.
    RedisUnreachable,
    /// Redis holds keys that are not rtc's.
    RedisShared,
    /// No node registered in the cluster.
    NoNodes,
    /// A registry entry failed the trust check (possibly forged).
    NodeUntrusted,
    /// A node's process restarted (new boot id or uptime reset).
    NodeRestarted,
    /// A node drained and exited.
    NodeDrained,
    /// Requests refused by a limit, rising.
    LimitHits,
    /// Sockets closed as slow consumers (4100), rising.
    SlowConsumers,
    /// Upgrades refused by a serving node, rising.
    UpgradesRefused,
    /// Bus messages dropped before publishing, rising.
    PublishDropped,
    /// Webhook events dropped (queue full, retries exhausted, shutdown), rising.
    WebhookDropped,
    /// A pub/sub subscriber in Redis matches no registered node.
    UnknownSubscriber,
}

impl AlertKind {
    /// The stable code, as in JSON.
    pub fn code(self) -> &'static str {
        match self {
            AlertKind::OverPlanningLine => "over_planning_line",
            AlertKind::ProjectedOverPlanningLine => "projected_over_planning_line",
            AlertKind::NearPlanningLine => "near_planning_line",
            AlertKind::PubsubBufferHigh => "pubsub_buffer_high",
            AlertKind::PubsubBufferGrowing => "pubsub_buffer_growing",
            AlertKind::PubsubLagHigh => "pubsub_lag_high",
            AlertKind::LoopLagHigh => "loop_lag_high",
            AlertKind::FanoutOverBudget => "fanout_over_budget",
            AlertKind::NodeStale => "node_stale",
            AlertKind::NodeUnreachable => "node_unreachable",
            AlertKind::NodeDegraded => "node_degraded",
            AlertKind::DrainForced => "drain_forced",
            AlertKind::RedisUnreachable => "redis_unreachable",
            AlertKind::RedisShared => "redis_shared",
            AlertKind::NoNodes => "no_nodes",
            AlertKind::NodeUntrusted => "node_untrusted",
            AlertKind::NodeRestarted => "node_restarted",
            AlertKind::NodeDrained => "node_drained",
            AlertKind::LimitHits => "limit_hits",
            AlertKind::SlowConsumers => "slow_consumers",
            AlertKind::UpgradesRefused => "upgrades_refused",
            AlertKind::PublishDropped => "publish_dropped",
            AlertKind::WebhookDropped => "webhook_dropped",
            AlertKind::UnknownSubscriber => "unknown_subscriber",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// What it is about.
    #[serde(rename = "code")]
    pub kind: AlertKind,
    /// How bad.
    pub severity: Severity,
    /// The node concerned; `None` for cluster-wide alerts.
    pub node: Option<String>,
    /// A sentence for the operator.
    pub message: String,
}

fn alert(kind: AlertKind, severity: Severity, node: Option<&str>, message: String) -> Alert {
    Alert { kind, severity, node: node.map(str::to_string), message }
}

/// The engine holding the registry, in a sentence: `Redis`, `Redis Cluster`, `NATS`.
fn engine_noun(r: &crate::snapshot::RedisSample) -> &'static str {
    match r.engine {
        crate::model::Engine::Redis => "Redis",
        crate::model::Engine::RedisCluster => "Redis Cluster",
        crate::model::Engine::Nats => "NATS",
    }
}

/// Judges one snapshot's figures. Worst first, then by node id.
pub fn evaluate(nodes: &[NodeFigures], snap: &ClusterSnapshot, t: &Thresholds) -> Vec<Alert> {
    let mut out = Vec::new();
    if let Some(redis) = &snap.redis {
        if let Some(e) = &redis.error {
            let secs = redis.down_since_ms.map_or(0, |since| snap.taken_ms.saturating_sub(since) / 1000);
            let direct = nodes.iter().filter(|n| n.direct && n.health.is_live()).count();
            out.push(alert(
                AlertKind::RedisUnreachable,
                Severity::Critical,
                None,
                format!(
                    "{} unreachable for {}: {e}; {direct} of {} known nodes answer directly",
                    redis.engine.as_str(),
                    units::duration(secs),
                    nodes.len()
                ),
            ));
        } else {
            if nodes.is_empty() {
                out.push(alert(
                    AlertKind::NoNodes,
                    Severity::Warning,
                    None,
                    if redis.other_clusters.is_empty() {
                        format!("no node registered in this cluster, nor in any other in this {}", engine_noun(redis))
                    } else {
                        format!(
                            "no node registered in this cluster; clusters in this {}: {} (pass --cluster NAME)",
                            engine_noun(redis),
                            redis.other_clusters.join(", ")
                        )
                    },
                ));
            }
            for sub in &redis.other_subscribers {
                let name =
                    if sub.name.is_empty() { "an unnamed client".to_string() } else { format!("'{}'", sub.name) };
                out.push(alert(
                    AlertKind::UnknownSubscriber,
                    Severity::Info,
                    None,
                    format!(
                        "pub/sub subscriber {name} at {} matches no registered node (buffer {})",
                        sub.addr,
                        units::bytes(sub.omem)
                    ),
                ));
            }
            if redis.keyspace.foreign > 0 {
                out.push(alert(
                    AlertKind::RedisShared,
                    Severity::Info,
                    None,
                    format!(
                        "redis shared with other work: {} of {} sampled keys are outside 'rtc:'; \
                         use a dedicated pub/sub Redis",
                        redis.keyspace.foreign, redis.keyspace.scanned
                    ),
                ));
            }
        }
    }
    for n in nodes {
        node_alerts(n, t, &mut out);
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.node.cmp(&b.node)).then_with(|| a.kind.cmp(&b.kind)));
    out
}

/// When Redis would cut the subscriber, for alert texts: `; Redis cuts it in ~40s at
/// this rate`.
fn cut_clause(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s <= 0.0 => "; Redis is about to cut it".to_string(),
        Some(s) => format!("; Redis cuts it in ~{} at this rate", units::duration(s.ceil() as u64)),
        None => String::new(),
    }
}

/// The pub/sub buffer Redis holds for a node's subscriber: high against the soft limit,
/// or growing for longer than the threshold.
fn buffer_alerts(n: &NodeFigures, t: &Thresholds, out: &mut Vec<Alert>) {
    let id = Some(n.id.as_str());
    let Some(p) = &n.pubsub else { return };
    let mut high = false;
    if let (Some(f), Some(b), Some(l)) = (p.buffer_fraction, p.buffer_bytes, p.limit_bytes) {
        if f >= t.buffer_fraction {
            high = true;
            let which = if p.soft_limit_bytes == Some(l) { "soft limit" } else { "limit" };
            out.push(alert(
                AlertKind::PubsubBufferHigh,
                if f >= 0.8 { Severity::Critical } else { Severity::Warning },
                id,
                format!(
                    "{}: pub/sub buffer {} of the {} {which} ({}){}",
                    n.id,
                    units::bytes(b),
                    units::bytes(l),
                    units::percent(f),
                    cut_clause(p.secs_to_cut)
                ),
            ));
        }
    }
    if p.growing_secs > t.buffer_growing_secs {
        let size = p.buffer_bytes.map_or_else(|| format!("backlog {}", units::count(p.backlog)), units::bytes);
        let rate = p
            .growth_bytes_per_s
            .filter(|r| *r > 0.0)
            .map_or(String::new(), |r| format!(", +{}/s", units::bytes(r as u64)));
        out.push(alert(
            AlertKind::PubsubBufferGrowing,
            Severity::Warning,
            id,
            format!(
                "{}: pub/sub buffer growing for {} (now {size}{rate}): the node reads slower than Redis sends{}",
                n.id,
                units::duration(p.growing_secs as u64),
                if high { String::new() } else { cut_clause(p.secs_to_cut) }
            ),
        ));
    }
}

/// Counters that only rise when something is refused or lost: a warning while they
/// rise (non-zero rate between two reports).
fn counter_alerts(n: &NodeFigures, out: &mut Vec<Alert>) {
    let id = Some(n.id.as_str());
    // A draining or cordoned node refuses upgrades on purpose.
    let refusing = matches!(n.health, Health::Draining | Health::Cordoned);
    let checks = [
        (AlertKind::LimitHits, n.limit_hits_per_s, "requests refused by a limit", false),
        (AlertKind::SlowConsumers, n.slow_consumers_per_s, "slow consumers closed (4100)", false),
        (AlertKind::UpgradesRefused, n.upgrades_refused_per_s, "WebSocket upgrades refused", refusing),
        (AlertKind::PublishDropped, n.publish_dropped_per_s, "bus messages dropped before publishing", false),
        (AlertKind::WebhookDropped, n.webhook_dropped_per_s, "webhook events dropped", false),
    ];
    for (kind, rate, what, expected) in checks {
        if let Some(r) = rate.filter(|r| *r > 0.0 && !expected) {
            out.push(alert(kind, Severity::Warning, id, format!("{}: {what}: {}/s", n.id, units::short(r))));
        }
    }
}

fn node_alerts(n: &NodeFigures, t: &Thresholds, out: &mut Vec<Alert>) {
    let id = Some(n.id.as_str());
    // Redis's side of the bus is judged whether or not the node answers.
    buffer_alerts(n, t, out);
    if let Some(r) = &n.restart {
        let prev =
            if r.previous_boot_id.is_empty() { String::new() } else { format!(" (was boot {})", r.previous_boot_id) };
        out.push(alert(
            AlertKind::NodeRestarted,
            Severity::Info,
            id,
            format!("{}: restarted{prev}, up {}", n.id, units::duration(n.uptime_secs)),
        ));
    }
    match n.health {
        Health::Stale => {
            let why = n.problem.as_deref().unwrap_or("registry key expired");
            out.push(alert(
                AlertKind::NodeStale,
                Severity::Critical,
                id,
                format!("{}: down, no heartbeat and no drain ({why})", n.id),
            ));
            return;
        }
        Health::Drained => {
            let what = n.problem.as_deref().unwrap_or("drained and exited");
            out.push(alert(AlertKind::NodeDrained, Severity::Info, id, format!("{}: {what}", n.id)));
            return;
        }
        Health::Unreachable => {
            let why = n.problem.as_deref().unwrap_or("no answer");
            out.push(alert(
                AlertKind::NodeUnreachable,
                Severity::Critical,
                id,
                format!("{}: unreachable: {why}", n.id),
            ));
            return;
        }
        Health::Untrusted => {
            let why = n.problem.as_deref().unwrap_or("failed the trust check");
            out.push(alert(
                AlertKind::NodeUntrusted,
                Severity::Critical,
                id,
                format!("{}: untrusted registry entry, not acted on: {why}", n.id),
            ));
            return;
        }
        Health::Degraded => out.push(alert(
            AlertKind::NodeDegraded,
            Severity::Critical,
            id,
            format!("{}: degraded, cut off from the cluster bus", n.id),
        )),
        _ => {}
    }

    let line = n.planning_line;
    let net = n.connects_per_s.zip(n.disconnects_per_s).map(|(c, d)| c - d);
    if n.connections > line {
        out.push(alert(
            AlertKind::OverPlanningLine,
            Severity::Critical,
            id,
            format!(
                "{}: {} connections, over the planning line of {} by {}",
                n.id,
                units::count(n.connections),
                units::count(line),
                units::count(n.connections - line)
            ),
        ));
    } else if let Some(secs) = net
        .filter(|&r| r > 0.0 && n.health != Health::Draining)
        .map(|r| (line - n.connections) as f64 / r)
        .filter(|&s| s <= t.projection_secs)
    {
        out.push(alert(
            AlertKind::ProjectedOverPlanningLine,
            Severity::Warning,
            id,
            format!(
                "{}: at {}/s net, crosses the planning line of {} in ~{}",
                n.id,
                units::short(net.unwrap_or(0.0)),
                units::count(line),
                units::duration(secs.ceil() as u64)
            ),
        ));
    } else if n.line_fraction >= t.near_fraction {
        out.push(alert(
            AlertKind::NearPlanningLine,
            Severity::Warning,
            id,
            format!(
                "{}: at {} of the planning line ({} of {})",
                n.id,
                units::percent(n.line_fraction),
                units::count(n.connections),
                units::count(line)
            ),
        ));
    }

    if let Some(p) = &n.pubsub {
        if p.lag_ms >= t.pubsub_lag_ms {
            out.push(alert(
                AlertKind::PubsubLagHigh,
                Severity::Warning,
                id,
                format!("{}: pub/sub lag {}", n.id, units::millis(p.lag_ms)),
            ));
        }
    }
    if n.loop_lag_ms >= t.loop_lag_ms {
        out.push(alert(
            AlertKind::LoopLagHigh,
            if n.loop_lag_ms >= 4.0 * t.loop_lag_ms { Severity::Critical } else { Severity::Warning },
            id,
            format!("{}: event loop {} late; pongs and fan-out fall behind", n.id, units::millis(n.loop_lag_ms)),
        ));
    }
    if let Some((f, p99)) = n.fanout.as_ref().and_then(|f| Some((f, f.p99_ms?))).filter(|(f, _)| f.over_budget) {
        let line = f.measured_line.map_or_else(String::new, |l| format!("; measured line {} sockets", units::count(l)));
        out.push(alert(
            AlertKind::FanoutOverBudget,
            if p99 >= 4.0 * f.budget_ms { Severity::Critical } else { Severity::Warning },
            id,
            format!(
                "{}: fan-out p99 {} over the {} budget{line}",
                n.id,
                units::millis(p99),
                units::millis(f.budget_ms)
            ),
        ));
    }
    counter_alerts(n, out);
    if let Some(d) = &n.drain {
        if d.forced > 0 {
            out.push(alert(
                AlertKind::DrainForced,
                Severity::Warning,
                id,
                format!("{}: drain deadline closed {} sockets at once", n.id, units::count(d.forced)),
            ));
        }
    }
}
