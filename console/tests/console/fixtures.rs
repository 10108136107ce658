//! Fixed snapshots built from `NodeStats` values: a 5-node cluster with one node over the
//! planning line, one near it with a growing pub/sub buffer, one draining and one that
//! stopped heartbeating.

use rtc_console::model::{ChannelStats, Counters, DrainStats, FanoutStats, NodeState, NodeStats, PubSubStats};
use rtc_console::snapshot::{BufferLimit, ClusterSnapshot, KeySample, NodeProblem, NodeSample, RedisSample};

/// First poll, unix ms.
pub const T0: u64 = 1_800_000_000_000;
/// Polls in [`cluster`].
pub const POLLS: u64 = 15;
/// Redis's pub/sub hard limit in the fixture (Redis's default, 32 MiB).
pub const LIMIT: u64 = 32 * 1024 * 1024;

/// A serving node at poll `i` with counters advancing at fixed rates per second.
pub fn stats(id: &str, host: u8, i: u64, connections: u64) -> NodeStats {
    let secs = 10_000 + i;
    NodeStats {
        schema: 1,
        ts_ms: T0 + i * 1000 - 40,
        node_id: id.to_string(),
        boot_id: format!("{id}-boot"),
        version: "0.1.0".to_string(),
        cluster: "prod".to_string(),
        advertise_url: format!("http://10.0.0.{host}:6001"),
        hostname: format!("host-{host}"),
        pid: 1000 + u32::from(host),
        state: Some(NodeState::Serving),
        uptime_secs: 3 * 3600 + 720 + i,
        live_nodes: 5,
        connections,
        planning_line: 12_000,
        measured_line: Some(18_500),
        open_files_limit: 1_048_576,
        channels: 1_204,
        subscriptions: connections * 3,
        presence_channels: 3,
        presence_members: 1_250,
        cpu_percent: 41.0,
        rss_bytes: 512 * 1024 * 1024,
        loop_lag_ms: 2.0,
        counters: Counters {
            connections_opened: 50_000 + 20 * secs,
            connections_closed: 40_000 + 15 * secs,
            frames_out: 12_000 * secs,
            broadcasts: 200 * secs,
            presence_frames: 3_500 * secs,
            auth_requests: 40 * secs,
            auth_failures: secs,
            pongs: 330 * secs,
            ..Counters::default()
        },
        pubsub: Some(PubSubStats {
            connected: true,
            lag_ms: 1.2,
            lag_max_ms: 4.0,
            client_name: format!("rtc:prod:{id}:sub"),
            ..PubSubStats::default()
        }),
        drain: None,
        top_channels: vec![
            ChannelStats {
                app: "app-1".into(),
                name: "prices".into(),
                kind: "public".into(),
                subscribers: 6_000,
                members: 0,
                frames_out: 6_000 * secs,
            },
            ChannelStats {
                app: "app-1".into(),
                name: "presence-lobby".into(),
                kind: "presence".into(),
                subscribers: 1_250,
                members: 1_250,
                frames_out: 3_500 * secs,
            },
            ChannelStats {
                app: "app-1".into(),
                name: "private-orders.42".into(),
                kind: "private".into(),
                subscribers: 250,
                members: 0,
                frames_out: 1_000 * secs,
            },
        ],
        apps: Vec::new(),
        registry_sig: String::new(),
        fanout: Some(FanoutStats {
            p50_ms: Some(0.8),
            p99_ms: Some(3.2),
            broadcasts: 2_000,
            window_secs: 10.0,
            budget_ms: 50.0,
            cost_per_delivery_us: Some(2.7),
            backlogged: 0,
        }),
    }
}

fn sample(id: &str, stats: Option<NodeStats>, omem: Option<u64>) -> NodeSample {
    NodeSample {
        id: id.to_string(),
        url: stats.as_ref().map(|s| s.advertise_url.clone()),
        problem: if stats.is_some() { None } else { Some(NodeProblem::Expired) },
        stats,
        pubsub_omem: omem,
        ..NodeSample::default()
    }
}

/// Redis's figures; `shared` adds keys outside `rtc:`.
pub fn redis(shared: bool) -> RedisSample {
    RedisSample {
        error: None,
        version: "7.0.15".into(),
        used_memory: 48 * 1024 * 1024,
        pubsub_clients: 4,
        pubsub_limit: Some(BufferLimit { hard_bytes: LIMIT, soft_bytes: 8 * 1024 * 1024, soft_secs: 60 }),
        keyspace: KeySample {
            scanned: if shared { 412 } else { 10 },
            foreign: if shared { 402 } else { 0 },
            examples: if shared { vec!["laravel_cache:user:17".into(), "queues:default".into()] } else { Vec::new() },
            complete: true,
        },
        ..RedisSample::default()
    }
}

/// Poll `i` of the scenario.
pub fn poll(i: u64, shared: bool) -> ClusterSnapshot {
    let n1 = stats("node-1", 1, i, 9_800);
    let mut n2 = stats("node-2", 2, i, 12_480);
    n2.cpu_percent = 88.0;
    n2.loop_lag_ms = 64.0;
    // node-2's fan-out is over its 50 ms budget, and a few sockets fall behind.
    if let Some(f) = n2.fanout.as_mut() {
        f.p50_ms = Some(21.0);
        f.p99_ms = Some(80.0);
        f.cost_per_delivery_us = Some(5.6);
        f.backlogged = 6 * (10_000 + i);
    }
    n2.measured_line = Some(8_900);
    let n3 = stats("node-3", 3, i, 10_900);
    let mut n4 = stats("node-4", 4, i, 11_000 - 330 * i);
    n4.state = Some(NodeState::Draining);
    n4.drain = Some(DrainStats {
        sockets_at_start: 11_000,
        sockets_left: 11_000 - 330 * i,
        hints_sent: 330 * i,
        elapsed_secs: i as f64,
        window_secs: 25.0,
        deadline_secs: 28.0 - i as f64,
        forced: 0,
    });
    // node-5 stopped heartbeating after poll 4: its key expired, its id stays registered.
    let n5 = (i <= 4).then(|| stats("node-5", 5, i, 8_000));
    // node-3's subscriber falls behind: Redis's buffer for it grows 0.5 MiB per second.
    let omem3 = 2 * 1024 * 1024 + i * 512 * 1024;
    ClusterSnapshot {
        taken_ms: T0 + i * 1000,
        nodes: vec![
            sample("node-1", Some(n1), Some(0)),
            sample("node-2", Some(n2), Some(16_384)),
            sample("node-3", Some(n3), Some(omem3)),
            sample("node-4", Some(n4), Some(0)),
            sample("node-5", n5, None),
        ],
        redis: Some(redis(shared)),
    }
}

/// Every poll of the scenario.
pub fn cluster(shared: bool) -> Vec<ClusterSnapshot> {
    (0..POLLS).map(|i| poll(i, shared)).collect()
}

/// Two standalone nodes (`--node` mode, no Redis): the second does not answer.
pub fn standalone(i: u64) -> ClusterSnapshot {
    let mut a = stats("edge-a", 7, i, 4_200);
    a.cluster = String::new();
    a.pubsub = None;
    ClusterSnapshot {
        taken_ms: T0 + i * 1000,
        nodes: vec![
            NodeSample {
                id: "edge-a".into(),
                url: Some("http://127.0.0.1:6001".into()),
                stats: Some(a),
                problem: None,
                pubsub_omem: None,
                ..NodeSample::default()
            },
            NodeSample {
                id: "127.0.0.1:6002".into(),
                url: Some("http://127.0.0.1:6002".into()),
                stats: None,
                problem: Some(NodeProblem::Unreachable("cannot connect".into())),
                pubsub_omem: None,
                ..NodeSample::default()
            },
        ],
        redis: None,
    }
}

/// Redis paused from poll 10 on (SIGSTOP): the console polls the nodes it knows
/// directly; they say they are cut off from the bus; node-5 (gone before) does not answer.
pub fn redis_paused() -> Vec<ClusterSnapshot> {
    (0..POLLS)
        .map(|i| {
            let mut s = poll(i, false);
            if i >= 10 {
                s.redis = Some(RedisSample {
                    error: Some("no answer within 2s".into()),
                    down_since_ms: Some(T0 + 10_000),
                    ..RedisSample::default()
                });
                for n in &mut s.nodes {
                    n.direct = true;
                    n.pubsub_omem = None;
                    match n.stats.as_mut() {
                        Some(st) => {
                            if let Some(p) = st.pubsub.as_mut() {
                                p.connected = false;
                            }
                        }
                        None => {
                            n.problem = Some(NodeProblem::Unreachable("http://10.0.0.5:6001: cannot connect".into()))
                        }
                    }
                }
            }
            s
        })
        .collect()
}

/// node-3 hung (SIGSTOP) at poll 6: its registry entry expired, while Redis's buffer
/// for its subscriber grows 0.5 MiB a second (read from CLIENT LIST).
pub fn hung_node() -> Vec<ClusterSnapshot> {
    (0..POLLS)
        .map(|i| {
            let mut s = poll(i, false);
            if i >= 6 {
                let n3 = &mut s.nodes[2];
                n3.stats = None;
                n3.problem = Some(NodeProblem::Expired);
            }
            s
        })
        .collect()
}

/// node-2 killed and restarted between polls 8 and 9 (new boot id, uptime 1 s), node-4
/// drained and exited; the timeline the nodes wrote says so.
pub fn restarted() -> Vec<ClusterSnapshot> {
    use rtc_console::model::TimelineEntry;
    use rtc_console::snapshot::RestartMark;
    (0..POLLS)
        .map(|i| {
            let mut s = poll(i, false);
            if i >= 9 {
                let n2 = &mut s.nodes[1];
                if let Some(st) = n2.stats.as_mut() {
                    st.boot_id = "node-2-boot-2".into();
                    st.uptime_secs = i - 8;
                    st.connections = 1_200 * (i - 8);
                    st.counters = Counters::default();
                }
                n2.restart = Some(RestartMark { noticed_ms: T0 + 9_000, previous_boot_id: "node-2-boot".into() });
            }
            let entry = |at: u64, node: &str, kind: &str, detail: &str| TimelineEntry {
                ts_ms: T0 + at,
                node: node.into(),
                kind: kind.into(),
                detail: detail.into(),
            };
            let mut timeline = vec![
                entry(0, "node-5", "node_reaped", "reaped by node-1: 41 presence members removed"),
                entry(2_000, "node-4", "drain_finished", "drained; exiting"),
            ];
            if i >= 9 {
                timeline.push(entry(
                    8_600,
                    "node-2",
                    "restarted",
                    "boot node-2-boot-2 (was node-2-boot, no clean exit (crashed or killed)), version 0.1.0",
                ));
            }
            timeline.push(entry(3_000, "node-1", "redis_restored", "registry link restored after 8.2s"));
            timeline.sort_by_key(|e| std::cmp::Reverse(e.ts_ms));
            if let Some(r) = s.redis.as_mut() {
                r.timeline = timeline;
            }
            s
        })
        .collect()
}
