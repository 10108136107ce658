//! `rtc status` output: golden table and JSON from the fixture cluster.

use rtc_console::collect::Source;
use rtc_console::figures::{ClusterFigures, Thresholds, Tracker};
use rtc_console::status::{render_json, render_table};

use crate::fixtures;

fn figures(shared: bool) -> ClusterFigures {
    let polls = fixtures::cluster(shared);
    let mut t = Tracker::new(Thresholds::default());
    let mut f = ClusterFigures::default();
    for p in &polls {
        f = t.ingest(p);
    }
    f
}

fn source() -> Source {
    Source::Cluster { url: "redis://:hunter2@10.0.0.9:6379".into(), cluster: "prod".into() }
}

#[test]
fn table_golden() {
    insta::assert_snapshot!("status_table", render_table(&figures(false), &source()));
}

#[test]
fn json_golden() {
    let json = render_json(&figures(false), &source());
    assert!(!json.contains("hunter2"), "the Redis password must not leak");
    insta::assert_snapshot!("status_json", json);
}

#[test]
fn json_keys_are_stable_snake_case() {
    let v: serde_json::Value = serde_json::from_str(&render_json(&figures(true), &source())).unwrap();
    for key in [
        "schema",
        "source",
        "taken_ms",
        "source_reachable",
        "ok",
        "worst",
        "alerts",
        "totals",
        "nodes",
        "channels",
        "redis",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let node = &v["nodes"][2];
    assert_eq!(node["id"], "node-3");
    assert_eq!(node["health"], "serving");
    assert_eq!(node["pubsub"]["trend"], "rising");
    // Judged against Redis's soft limit, which disconnects first; both are listed.
    assert_eq!(node["pubsub"]["limit_bytes"], 8_388_608);
    assert_eq!(node["pubsub"]["hard_limit_bytes"], 33_554_432);
    assert_eq!(node["pubsub"]["soft_limit_secs"], 60);
    assert_eq!(v["nodes"][4]["health"], "down");
    // A node that is not live has no current CPU, memory or lag reading: null, not 0.
    assert!(v["nodes"][4]["cpu_percent"].is_null() && v["nodes"][4]["loop_lag_ms"].is_null());
    assert!(v["nodes"][0]["cpu_percent"].is_number());
    assert_eq!(v["nodes"][1]["fanout"]["p99_ms"], 80.0);
    assert_eq!(v["nodes"][1]["fanout"]["measured_line"], 8_900);
    assert_eq!(v["nodes"][1]["fanout"]["over_budget"], true);
    assert_eq!(v["alerts"][0]["code"], "over_planning_line");
    assert_eq!(v["alerts"][0]["severity"], "critical");
    assert_eq!(v["worst"], "critical");
    assert_eq!(v["ok"], false);
    assert!(v["alerts"].as_array().unwrap().iter().any(|a| a["code"] == "redis_shared"));
    fn walk(v: &serde_json::Value, path: &str) {
        if let Some(m) = v.as_object() {
            for (k, child) in m {
                assert!(
                    k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "{path}.{k} is not snake_case"
                );
                walk(child, &format!("{path}.{k}"));
            }
        } else if let Some(a) = v.as_array() {
            for child in a {
                walk(child, path);
            }
        }
    }
    walk(&v, "");
}

#[test]
fn standalone_table() {
    let mut t = Tracker::new(Thresholds::default());
    t.ingest(&fixtures::standalone(0));
    let f = t.ingest(&fixtures::standalone(1));
    let src = Source::Nodes { urls: vec!["http://127.0.0.1:6001".into(), "http://127.0.0.1:6002".into()] };
    insta::assert_snapshot!("status_standalone", render_table(&f, &src));
}
