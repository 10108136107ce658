//! Rates, trends, totals and alerts derived from snapshots.

use rtc_console::alerts::{AlertKind, Severity};
use rtc_console::capacity::drain_headroom;
use rtc_console::figures::{ClusterFigures, Health, Thresholds, Tracker, Trend};
use rtc_console::model::NodeState;
use rtc_console::snapshot::{ClusterSnapshot, RedisSample};
use rtc_console::status::{exit_for, Exit};

use crate::fixtures::{self, poll, stats, T0};

fn run(polls: &[ClusterSnapshot]) -> ClusterFigures {
    let mut t = Tracker::new(Thresholds::default());
    let mut last = ClusterFigures::default();
    for p in polls {
        last = t.ingest(p);
    }
    last
}

fn kinds(f: &ClusterFigures, node: &str) -> Vec<AlertKind> {
    f.alerts.iter().filter(|a| a.node.as_deref() == Some(node)).map(|a| a.kind).collect()
}

#[test]
fn rates_come_from_counter_deltas_over_the_nodes_own_clock() {
    let f = run(&[poll(0, false), poll(1, false)]);
    let n = f.node("node-1").unwrap();
    assert_eq!(n.connects_per_s, Some(20.0));
    assert_eq!(n.disconnects_per_s, Some(15.0));
    assert_eq!(n.frames_out_per_s, Some(12_000.0));
    assert_eq!(n.broadcasts_per_s, Some(200.0));
    assert_eq!(n.presence_frames_per_s, Some(3_500.0));
    assert_eq!(n.presence_share, Some(3_500.0 / 12_000.0));
    assert_eq!(n.auth_requests_per_s, Some(40.0));
    assert_eq!(n.auth_failures_per_s, Some(1.0));
    assert_eq!(n.pongs_per_s, Some(330.0));
    // Totals over the five live nodes.
    assert_eq!(f.totals.nodes_up, 5);
    assert_eq!(f.totals.frames_out_per_s, Some(60_000.0));
    let ch = &f.channels[0];
    assert_eq!((ch.name.as_str(), ch.frames_out_per_s, ch.nodes), ("prices", Some(30_000.0), 5));
}

#[test]
fn first_poll_has_no_rates() {
    let f = run(&[poll(0, false)]);
    let n = f.node("node-1").unwrap();
    assert_eq!(n.connects_per_s, None);
    assert_eq!(n.presence_share, None);
    assert_eq!(f.totals.frames_out_per_s, None);
}

#[test]
fn rates_survive_a_repeated_report_and_reset_on_restart() {
    let mut t = Tracker::new(Thresholds::default());
    t.ingest(&poll(0, false));
    t.ingest(&poll(1, false));
    // The console polled faster than the node writes: the same report again.
    let mut again = poll(1, false);
    again.taken_ms += 500;
    let f = t.ingest(&again);
    assert_eq!(f.node("node-1").unwrap().frames_out_per_s, Some(12_000.0));
    // A restart (new boot id, counters from zero): no rate until the next report.
    let mut restarted = poll(2, false);
    let s = restarted.nodes[0].stats.as_mut().unwrap();
    s.boot_id = "node-1-boot-2".into();
    s.counters = Default::default();
    let f = t.ingest(&restarted);
    assert_eq!(f.node("node-1").unwrap().frames_out_per_s, None);
}

#[test]
fn planning_line_alerts() {
    let f = run(&fixtures::cluster(false));
    assert!(kinds(&f, "node-1").is_empty(), "{:?}", f.alerts);
    assert_eq!(kinds(&f, "node-2"), [AlertKind::OverPlanningLine, AlertKind::LoopLagHigh, AlertKind::FanoutOverBudget]);
    // node-3's buffer is past half of Redis's soft limit (8 MiB) and still growing.
    assert_eq!(
        kinds(&f, "node-3"),
        [AlertKind::PubsubBufferHigh, AlertKind::NearPlanningLine, AlertKind::PubsubBufferGrowing]
    );
    let over = f.alerts.iter().find(|a| a.kind == AlertKind::OverPlanningLine).unwrap();
    assert_eq!(over.severity, Severity::Critical);
    assert_eq!(over.message, "node-2: 12,480 connections, over the planning line of 12,000 by 480");
}

#[test]
fn fanout_over_the_budget_alerts_and_carries_the_measured_line() {
    let f = run(&fixtures::cluster(false));
    let n2 = f.node("node-2").unwrap().fanout.clone().unwrap();
    assert_eq!((n2.p99_ms, n2.p50_ms, n2.budget_ms), (Some(80.0), Some(21.0), 50.0));
    assert!(n2.over_budget);
    assert_eq!(n2.measured_line, Some(8_900));
    // The backlogged counter advances 6 per second on node-2's own clock.
    assert_eq!(n2.backlogged_per_s, Some(6.0));
    let a = f.alerts.iter().find(|a| a.kind == AlertKind::FanoutOverBudget).unwrap();
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.node.as_deref(), Some("node-2"));
    assert_eq!(a.message, "node-2: fan-out p99 80ms over the 50ms budget; measured line 8,900 sockets");
    let n1 = f.node("node-1").unwrap().fanout.clone().unwrap();
    assert!(!n1.over_budget);
    assert_eq!(n1.backlogged_per_s, Some(0.0));

    // Four times the budget is critical; a node that does not report fan-out has no figure.
    let mut polls = fixtures::cluster(false);
    for p in &mut polls {
        let s = p.nodes[1].stats.as_mut().unwrap();
        s.fanout.as_mut().unwrap().p99_ms = Some(200.0);
        p.nodes[0].stats.as_mut().unwrap().fanout = None;
    }
    let f = run(&polls);
    let a = f.alerts.iter().find(|a| a.kind == AlertKind::FanoutOverBudget).unwrap();
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(f.node("node-1").unwrap().fanout, None);
}

#[test]
fn projection_warns_before_the_line_is_crossed() {
    // 11,040 connections gaining 40 net per second: the line is 24 s away.
    let mk = |i: u64| {
        let mut s = stats("node-1", 1, i, 11_000 + 40 * i);
        s.counters.connections_opened = 100 + 40 * i;
        s.counters.connections_closed = 0;
        ClusterSnapshot {
            taken_ms: T0 + i * 1000,
            nodes: vec![rtc_console::snapshot::NodeSample {
                id: "node-1".into(),
                url: None,
                stats: Some(s),
                problem: None,
                pubsub_omem: None,
                ..rtc_console::snapshot::NodeSample::default()
            }],
            redis: None,
        }
    };
    let f = run(&[mk(0), mk(1)]);
    let a = &f.alerts[0];
    assert_eq!(a.kind, AlertKind::ProjectedOverPlanningLine);
    assert_eq!(a.message, "node-1: at 40/s net, crosses the planning line of 12,000 in ~24s");
    // A flag overrides every node's own line.
    let mut t = Tracker::new(Thresholds { planning_line: Some(20_000), ..Thresholds::default() });
    t.ingest(&mk(0));
    let f = t.ingest(&mk(1));
    assert_eq!(f.nodes[0].planning_line, 20_000);
    assert!(f.alerts.is_empty());
}

#[test]
fn growing_buffer_alert_needs_more_than_ten_seconds_of_growth() {
    let polls = fixtures::cluster(false);
    let f = run(&polls[..11]);
    let p = f.node("node-3").unwrap().pubsub.clone().unwrap();
    assert_eq!((p.trend, p.growing_secs), (Trend::Rising, 10.0));
    assert!(!kinds(&f, "node-3").contains(&AlertKind::PubsubBufferGrowing));
    let f = run(&polls[..12]);
    assert!(kinds(&f, "node-3").contains(&AlertKind::PubsubBufferGrowing));
    // One shrinking poll resets the clock.
    let mut shrink = poll(12, false);
    shrink.nodes[2].pubsub_omem = Some(1024);
    let mut t = Tracker::new(Thresholds::default());
    for p in &polls[..12] {
        t.ingest(p);
    }
    let f = t.ingest(&shrink);
    let p = f.node("node-3").unwrap().pubsub.clone().unwrap();
    assert_eq!((p.trend, p.growing_secs), (Trend::Falling, 0.0));
}

#[test]
fn buffer_near_the_redis_limit_is_critical() {
    let mut s = poll(1, false);
    s.nodes[0].pubsub_omem = Some(fixtures::LIMIT * 9 / 10);
    let f = run(&[poll(0, false), s]);
    let a = f.alerts.iter().find(|a| a.kind == AlertKind::PubsubBufferHigh).unwrap();
    assert_eq!(a.severity, Severity::Critical);
    // Judged against the soft limit (8 MiB for 60 s), with the time left before the
    // hard limit (32 MiB) at the growth seen between the two polls.
    assert_eq!(
        a.message,
        "node-1: pub/sub buffer 29M of the 8.0M soft limit (360%); Redis cuts it in ~1s at this rate"
    );
    let p = f.node("node-1").unwrap().pubsub.clone().unwrap();
    assert_eq!((p.soft_limit_bytes, p.soft_limit_secs, p.hard_limit_bytes), (Some(8 << 20), Some(60), Some(32 << 20)));
}

#[test]
fn time_to_cut_counts_the_soft_limit_hold_and_the_hard_limit() {
    use rtc_console::figures::secs_to_cut;
    use rtc_console::snapshot::BufferLimit;
    let l = BufferLimit { hard_bytes: 32 << 20, soft_bytes: 8 << 20, soft_secs: 60 };
    // 6 MiB growing 0.1 MiB/s: 20 s to the soft limit, then 60 s held above it.
    assert_eq!(secs_to_cut(6 << 20, Some(104_857.6), l, None), Some(80.0));
    // 4 MiB growing 1 MiB/s: the hard limit is 28 s away, before the soft one's 4 + 60 s.
    assert_eq!(secs_to_cut(4 << 20, Some(1_048_576.0), l, None), Some(28.0));
    // Above the soft limit for 20 s already: 40 s left unless the hard limit comes first.
    assert_eq!(secs_to_cut(10 << 20, Some(1.0), l, Some(20.0)), Some(40.0));
    // Fast growth: the hard limit (22 MiB away at 2 MiB/s) comes first.
    assert_eq!(secs_to_cut(10 << 20, Some(2_097_152.0), l, Some(0.0)), Some(11.0));
    // Not growing and under the soft limit: no cut in sight.
    assert_eq!(secs_to_cut(1 << 20, Some(0.0), l, None), None);
}

#[test]
fn stale_node_keeps_last_figures_and_alerts() {
    let f = run(&fixtures::cluster(false));
    let n = f.node("node-5").unwrap();
    assert_eq!(n.health, Health::Stale);
    assert_eq!(n.connections, 8_000);
    assert_eq!(n.age_secs, 10.0);
    assert_eq!(n.connects_per_s, None);
    assert_eq!(kinds(&f, "node-5"), [AlertKind::NodeStale]);
    assert_eq!(f.totals.nodes_up, 4);
    assert_eq!(f.totals.nodes_total, 5);
    assert_eq!(exit_for(&f), Exit::Failed);
}

#[test]
fn draining_node_progress_and_forced_closes() {
    let f = run(&fixtures::cluster(false));
    let n = f.node("node-4").unwrap();
    assert_eq!(n.health, Health::Draining);
    let d = n.drain.clone().unwrap();
    assert_eq!(d.sockets_left, 11_000 - 330 * 14);
    assert!((d.progress - 0.42).abs() < 1e-9, "{}", d.progress);
    assert!(kinds(&f, "node-4").is_empty());
    let mut forced = poll(14, false);
    forced.nodes[3].stats.as_mut().unwrap().drain.as_mut().unwrap().forced = 1_200;
    let f = run(&[poll(13, false), forced]);
    assert_eq!(kinds(&f, "node-4"), [AlertKind::DrainForced]);
}

#[test]
fn degraded_and_redis_alerts_and_exit_codes() {
    let mut s = poll(0, false);
    s.nodes.truncate(1);
    s.nodes[0].stats.as_mut().unwrap().pubsub.as_mut().unwrap().connected = false;
    let f = run(&[s.clone()]);
    assert_eq!(f.nodes[0].health, Health::Degraded);
    assert_eq!(kinds(&f, "node-1"), [AlertKind::NodeDegraded]);

    s.nodes[0].stats.as_mut().unwrap().pubsub.as_mut().unwrap().connected = true;
    s.nodes[0].stats.as_mut().unwrap().state = Some(NodeState::Serving);
    let f = run(&[s.clone()]);
    assert_eq!(exit_for(&f), Exit::Ok);

    // Shared Redis: an Info alert that does not fail the check.
    s.redis = Some(fixtures::redis(true));
    let f = run(&[s.clone()]);
    assert_eq!(f.alerts[0].kind, AlertKind::RedisShared);
    assert_eq!(f.alerts[0].severity, Severity::Info);
    assert_eq!(exit_for(&f), Exit::Ok);

    let down = ClusterSnapshot {
        taken_ms: T0,
        nodes: Vec::new(),
        redis: Some(RedisSample { error: Some("cannot connect".into()), ..RedisSample::default() }),
    };
    let f = run(&[down]);
    assert_eq!(f.alerts[0].kind, AlertKind::RedisUnreachable);
    assert_eq!(exit_for(&f), Exit::Unavailable);

    let f = run(&[fixtures::standalone(0)]);
    assert_eq!(f.node("127.0.0.1:6002").unwrap().health, Health::Unreachable);
    assert_eq!(kinds(&f, "127.0.0.1:6002"), [AlertKind::NodeUnreachable]);
    assert_eq!(exit_for(&f), Exit::Failed);
}

#[test]
fn headroom_check_spreads_the_node_over_live_survivors() {
    let f = run(&fixtures::cluster(false));
    // node-1 (9,800) onto node-2 (12,480) and node-3 (10,900); node-4 drains, node-5 is stale.
    let h = drain_headroom(&f, "node-1").unwrap();
    assert_eq!((h.survivors, h.moving, h.survivors_connections), (2, 9_800, 23_380));
    assert_eq!((h.busiest_after, h.line, h.ok), (17_380, 12_000, false));
    assert_eq!(h.url.as_deref(), Some("http://10.0.0.1:6001"));
    assert_eq!(
        h.summary(),
        "2 survivors hold 23,380; + 9,800 from node-1 → busiest 17,380 vs line 12,000: OVER the line"
    );

    let mut small = poll(0, false);
    small.nodes.truncate(3);
    small.nodes[0].stats.as_mut().unwrap().connections = 1_000;
    small.nodes[1].stats.as_mut().unwrap().connections = 5_000;
    small.nodes[2].stats.as_mut().unwrap().connections = 5_000;
    let f = run(&[small]);
    let h = drain_headroom(&f, "node-1").unwrap();
    assert_eq!((h.busiest_after, h.ok), (5_500, true));
    assert!(drain_headroom(&f, "nope").is_none());
}

#[test]
fn refusal_counters_become_rates_and_alert_while_rising() {
    let mk = |i: u64, draining: bool| {
        let mut s = stats("node-1", 1, i, 100);
        s.counters.slow_consumers = 3 * i;
        s.counters.limit_hits = 0;
        s.counters.upgrades_refused = 50 * i;
        if draining {
            s.state = Some(rtc_console::model::NodeState::Draining);
        }
        ClusterSnapshot {
            taken_ms: T0 + i * 1000,
            nodes: vec![rtc_console::snapshot::NodeSample {
                id: "node-1".into(),
                stats: Some(s),
                ..rtc_console::snapshot::NodeSample::default()
            }],
            redis: None,
        }
    };
    let f = run(&[mk(0, false), mk(1, false)]);
    let n = f.node("node-1").unwrap();
    assert_eq!(
        (n.slow_consumers_per_s, n.limit_hits_per_s, n.upgrades_refused_per_s),
        (Some(3.0), Some(0.0), Some(50.0))
    );
    assert_eq!(f.totals.slow_consumers_per_s, Some(3.0));
    assert_eq!(kinds(&f, "node-1"), [AlertKind::SlowConsumers, AlertKind::UpgradesRefused]);
    let slow = f.alerts.iter().find(|a| a.kind == AlertKind::SlowConsumers).unwrap();
    assert_eq!(slow.message, "node-1: slow consumers closed (4100): 3.0/s");
    // A draining node refuses upgrades on purpose: no alert for that.
    let f = run(&[mk(0, true), mk(1, true)]);
    assert_eq!(kinds(&f, "node-1"), [AlertKind::SlowConsumers]);
}

#[test]
fn webhook_drops_become_a_rate_summed_in_the_totals_shown_in_status_and_alerted_while_rising() {
    use rtc_console::collect::Source;
    use rtc_console::snapshot::NodeSample;
    use rtc_console::status::{render_json, render_table};

    let mk = |i: u64| ClusterSnapshot {
        taken_ms: T0 + i * 1000,
        nodes: [("node-1", 1, 20 * i), ("node-2", 2, 5 * i), ("node-3", 3, 0)]
            .into_iter()
            .map(|(id, host, dropped)| {
                let mut s = stats(id, host, i, 100);
                s.counters.webhook_dropped = dropped;
                NodeSample { id: id.into(), stats: Some(s), ..NodeSample::default() }
            })
            .collect(),
        redis: None,
    };
    assert_eq!(run(&[mk(0)]).node("node-1").unwrap().webhook_dropped_per_s, None, "no rate from one report");
    let f = run(&[mk(0), mk(1)]);
    let rate = |id: &str| f.node(id).unwrap().webhook_dropped_per_s;
    assert_eq!((rate("node-1"), rate("node-2"), rate("node-3")), (Some(20.0), Some(5.0), Some(0.0)));
    assert_eq!(f.totals.webhook_dropped_per_s, Some(25.0));
    assert_eq!(kinds(&f, "node-1"), [AlertKind::WebhookDropped]);
    assert_eq!(kinds(&f, "node-2"), [AlertKind::WebhookDropped]);
    assert!(kinds(&f, "node-3").is_empty(), "{:?}", f.alerts);
    let a = f.alerts.iter().find(|a| a.node.as_deref() == Some("node-1")).unwrap();
    assert_eq!(
        (a.kind.code(), a.severity, a.message.as_str()),
        ("webhook_dropped", Severity::Warning, "node-1: webhook events dropped: 20/s")
    );

    let source = Source::Cluster { url: "redis://127.0.0.1:6379".into(), cluster: "prod".into() };
    let v: serde_json::Value = serde_json::from_str(&render_json(&f, &source)).unwrap();
    assert_eq!(v["totals"]["webhook_dropped_per_s"], 25.0);
    assert_eq!(v["nodes"][0]["webhook_dropped_per_s"], 20.0);
    assert!(v["alerts"].as_array().unwrap().iter().any(|a| a["code"] == "webhook_dropped"));
    let table = render_table(&f, &source);
    let header = table.lines().find(|l| l.starts_with("NODE")).unwrap();
    let col = header.split_whitespace().position(|c| c == "HOOKDROP/S").expect("a HOOKDROP/S column");
    let total = table.lines().find(|l| l.starts_with("TOTAL")).unwrap();
    // "TOTAL" and "3/3 up" hold two header columns' places in three words.
    assert_eq!(total.split_whitespace().nth(col + 1), Some("25"), "{table}");
}
