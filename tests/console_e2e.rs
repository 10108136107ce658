//! `rtc status --json` against a real Redis and two real nodes: the figures per node,
//! a stopped node turning stale, and a paused subscriber's pub/sub buffer rising.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::*;
use common::*;
use serde_json::Value;

fn status(redis_url: &str, cluster: &str) -> (Option<i32>, Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtc"))
        .env_remove("RTC_CONFIG")
        .env_remove("RTC_ADMIN_TOKEN")
        .args(["status", "--json", "--redis-url", redis_url, "--cluster-name", cluster, "--token", ADMIN_TOKEN])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), v)
}

fn node<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["nodes"].as_array().and_then(|ns| ns.iter().find(|n| n["id"] == id)).unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_reports_each_node_and_notices_a_dead_one_and_a_growing_buffer() {
    let redis = Redis::start().await;
    let toml = one_app("");
    let a = Node::start(&redis.url(), "con", "node-a", &toml);
    let mut b = Node::start(&redis.url(), "con", "node-b", &toml);
    wait_joined(&[&a, &b]).await;

    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = a.connect().await;
        c.subscribe_presence("presence-room", &format!("a{}", held.len())).await;
        held.push(c);
    }
    for i in 0..2 {
        let mut c = b.connect().await;
        c.subscribe_presence("presence-room", &format!("b{i}")).await;
        held.push(c);
    }
    let url = redis.url();
    let doc = eventually(Duration::from_secs(10), "status to report 3 + 2 sockets", || {
        let url = url.clone();
        async move {
            let (_, doc) = tokio::task::spawn_blocking(move || status(&url, "con")).await.unwrap();
            (node(&doc, "node-a")["connections"] == 3 && node(&doc, "node-b")["connections"] == 2).then_some(doc)
        }
    })
    .await;
    assert_eq!(node(&doc, "node-a")["presence_members"], 3, "{doc:#}");
    assert_eq!(node(&doc, "node-b")["presence_members"], 2);
    // The figures agree with the node's own stats endpoint.
    let own = a.stats().await;
    assert_eq!(node(&doc, "node-a")["connections"], own["connections"]);
    assert_eq!(node(&doc, "node-a")["presence_members"], own["presence_members"]);
    assert_eq!(node(&doc, "node-a")["version"], own["version"]);

    // Pause node B: its subscriber stops reading, so its output buffer grows in Redis.
    b.signal("-STOP");
    // Quickly (in batches of 10): node B's registry entry, which `rtc status` reads, expires
    // a TTL (5 s) after the pause, and one-at-a-time publishes took longer than that on a
    // slow machine.
    let payload = "x".repeat(9_000);
    let batch: Vec<serde_json::Value> =
        (0..10).map(|_| serde_json::json!({"channel": "presence-room", "name": "big", "data": payload})).collect();
    let api = a.api();
    for _ in 0..150 {
        let (st, body) = api.call("POST", "/batch_events", Some(serde_json::json!({ "batch": batch })), &[]).await;
        assert_eq!(st, 200, "{body}");
    }
    let mut con = redis.con().await;
    let omem = eventually(Duration::from_secs(10), "node B's pub/sub buffer to grow", || {
        let mut con = con.clone();
        async move {
            let list: String =
                redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub").query_async(&mut con).await.ok()?;
            let line = list.lines().find(|l| l.contains("name=rtc:con:node-b:sub"))?;
            let omem: u64 = line.split_whitespace().find_map(|kv| kv.strip_prefix("omem="))?.parse().ok()?;
            (omem > 1_000_000).then_some(omem)
        }
    })
    .await;
    assert!(omem > 1_000_000);
    // rtc status reads the same buffer figure for node B from Redis.
    let reported = eventually(Duration::from_secs(10), "status to report node B's buffer", || {
        let url = url.clone();
        async move {
            let (_, doc) = tokio::task::spawn_blocking(move || status(&url, "con")).await.unwrap();
            let bytes = node(&doc, "node-b")["pubsub"]["buffer_bytes"].as_u64()?;
            (bytes > 1_000_000).then_some(bytes)
        }
    })
    .await;
    assert!(reported > 1_000_000);
    let _ = redis::cmd("PING").query_async::<String>(&mut con).await;

    // Kill node B: it turns stale within the registry TTL and status exits non-zero.
    b.signal("-CONT");
    b.kill();
    let url = redis.url();
    let (code, doc) = eventually(Duration::from_secs(15), "node B to show as stale", || {
        let url = url.clone();
        async move {
            let (code, doc) = tokio::task::spawn_blocking(move || status(&url, "con")).await.unwrap();
            let n = node(&doc, "node-b");
            (n["health"] == "stale" || n["health"] == "down").then_some((code, doc))
        }
    })
    .await;
    assert_eq!(code, Some(1), "an alert fires: {doc:#}");
    drop(held);
}
