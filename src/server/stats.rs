//! What a node reports about itself ([`NodeStats`], served at `/admin/stats` and written
//! to the cluster registry), and the samplers behind the figures the metrics cannot
//! give: process CPU and RSS (`/proc/self`, see [`crate::procfs`]) and event-loop lag (a timer's drift).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rtc_model::{AppStats, ChannelStats, Counters, FanoutStats, NodeState as WireState, NodeStats, STATS_SCHEMA};

use super::{Node, NodeState};

/// How often CPU and RSS are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// The lag probe's timer period.
const LAG_PROBE: Duration = Duration::from_millis(100);
/// Channels listed in `top_channels`.
const TOP_CHANNELS: usize = 20;

/// Latest process figures, written by the samplers.
#[derive(Default)]
pub struct ProcessFigures {
    cpu_percent_x100: AtomicU64,
    rss_bytes: AtomicU64,
    /// Largest timer overshoot in the last second, microseconds.
    loop_lag_us: AtomicU64,
}

impl ProcessFigures {
    /// CPU, percent of one core.
    pub fn cpu_percent(&self) -> f64 {
        self.cpu_percent_x100.load(Ordering::Relaxed) as f64 / 100.0
    }

    /// Resident set size, bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.rss_bytes.load(Ordering::Relaxed)
    }

    /// Event-loop lag, milliseconds.
    pub fn loop_lag_ms(&self) -> f64 {
        self.loop_lag_us.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// Starts the CPU/RSS sampler and the loop-lag probe; both stop with the node.
pub fn spawn_samplers(node: &Arc<Node>) {
    let n = node.clone();
    node.tasks.spawn(async move {
        let me = match crate::procfs::ProcReader::open(None) {
            Ok(me) => me,
            Err(e) => {
                tracing::warn!(error = %e, "No /proc/self: CPU and RSS figures stay at 0.");
                return;
            }
        };
        let mut last = me.sample().ok();
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = n.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Ok(now) = me.sample() else { continue };
            if let Some(prev) = &last {
                let cpu = crate::procfs::cores_used(prev, &now) * 100.0;
                n.process.cpu_percent_x100.store((cpu * 100.0) as u64, Ordering::Relaxed);
            }
            n.process.rss_bytes.store(now.rss_kib * 1024, Ordering::Relaxed);
            last = Some(now);
        }
    });
    let n = node.clone();
    node.tasks.spawn(async move {
        let mut worst = 0u64;
        let mut window = tokio::time::Instant::now();
        loop {
            let start = tokio::time::Instant::now();
            tokio::select! {
                () = n.shutdown.cancelled() => break,
                () = tokio::time::sleep(LAG_PROBE) => {}
            }
            let late = start.elapsed().saturating_sub(LAG_PROBE).as_micros() as u64;
            worst = worst.max(late);
            if window.elapsed() >= Duration::from_secs(1) {
                n.process.loop_lag_us.store(worst, Ordering::Relaxed);
                worst = 0;
                window = tokio::time::Instant::now();
            }
        }
    });
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// A snapshot of the node's figures.
pub fn snapshot(node: &Node) -> NodeStats {
    let m = &node.metrics;
    let mut apps = Vec::new();
    let mut channels = 0u64;
    let mut subscriptions = 0u64;
    let mut presence_channels = 0u64;
    let mut top: Vec<ChannelStats> = Vec::new();
    for app in node.apps() {
        let sizes = app.channel_stats();
        channels += sizes.len() as u64;
        for c in sizes {
            subscriptions += c.subscribers;
            if c.kind == "presence" {
                presence_channels += 1;
            }
            top.push(c);
        }
        apps.push(AppStats {
            id: app.config.id.clone(),
            connections: app.connection_count(),
            channels: app.channel_count() as u64,
            max_connections: app.config.max_connections,
        });
    }
    top.sort_by(|a, b| b.frames_out.cmp(&a.frames_out).then_with(|| b.subscribers.cmp(&a.subscribers)));
    top.truncate(TOP_CHANNELS);
    apps.sort_by(|a, b| a.id.cmp(&b.id));
    let state = match node.health.state() {
        NodeState::Serving if node.is_degraded() => WireState::Degraded,
        NodeState::Serving => WireState::Serving,
        NodeState::Draining => WireState::Draining,
        NodeState::Cordoned => WireState::Cordoned,
    };
    let cluster = node.config.cluster.as_ref();
    let budget = node.config.fanout_budget;
    let fan = m.timing.window.figures(std::time::Instant::now());
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    NodeStats {
        schema: STATS_SCHEMA,
        ts_ms: rtc_model::unix_ms(),
        node_id: node.config.node_id.clone(),
        boot_id: node.boot_id.clone(),
        version: crate::VERSION.to_string(),
        cluster: cluster.map(|c| c.name.clone()).unwrap_or_default(),
        advertise_url: node.advertise_url(),
        hostname: hostname(),
        pid: std::process::id(),
        state: Some(state),
        uptime_secs: node.started.elapsed().as_secs(),
        live_nodes: 1 + node.cluster.as_ref().map_or(0, |c| c.live().others.len() as u64),
        connections: node.connection_count(),
        planning_line: cluster.map(|c| c.planning_line).unwrap_or(rtc_model::DEFAULT_PLANNING_LINE),
        measured_line: fan.measured_line(budget),
        open_files_limit: m.open_files_limit.get().max(0) as u64,
        channels,
        subscriptions,
        presence_channels,
        presence_members: m.presence_members.get().max(0) as u64,
        cpu_percent: node.process.cpu_percent(),
        rss_bytes: node.process.rss_bytes(),
        loop_lag_ms: node.process.loop_lag_ms(),
        counters: Counters {
            connections_opened: node.apps().map(|a| a.opened()).sum(),
            connections_closed: node.apps().map(|a| a.closed()).sum(),
            upgrades_refused: m.totals.upgrades_refused.get(),
            frames_in: m.frames_in.get(),
            frames_out: m.frames_out.get(),
            bytes_out: m.bytes_out.get(),
            broadcasts: m.broadcasts.get(),
            presence_frames: m.presence_frames.get(),
            auth_requests: m.auth_requests.get(),
            auth_failures: m.totals.auth_failures.get(),
            pongs: m.pongs.get(),
            client_events: m.client_events.get(),
            slow_consumers: m.slow_consumers.get(),
            http_requests: m.totals.http_requests.get(),
            limit_hits: m.totals.limit_hits.get(),
            webhook_dropped: m.totals.webhook_events_dropped.get(),
        },
        pubsub: node.pubsub_stats(),
        drain: node.drain_stats(),
        top_channels: top,
        apps,
        registry_sig: String::new(),
        fanout: Some(FanoutStats {
            p50_ms: fan.p50.map(ms),
            p99_ms: fan.p99.map(ms),
            broadcasts: fan.broadcasts,
            window_secs: super::fanout::WINDOW.as_secs_f64(),
            budget_ms: ms(budget),
            cost_per_delivery_us: fan.cost_per_delivery.map(|d| d.as_secs_f64() * 1e6),
            backlogged: m.timing.fanout_backlogged.get(),
        }),
    }
}
