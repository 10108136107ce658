//! `rtc status --json` against a real Redis and two real nodes: the figures per node,
//! a stopped node turning stale, and a paused subscriber's pub/sub buffer rising.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::*;
use common::*;
use serde_json::Value;

fn status(redis_url: &str, cluster: &str) -> (Option<i32>, Value) {
    let cache = std::env::temp_dir().join(format!("rtc-console-e2e-cache-{}", std::process::id()));
    status_cached(redis_url, cluster, &cache)
}

/// `rtc status --json` keeping its cache of known nodes in `cache` (XDG_CACHE_HOME).
fn status_cached(redis_url: &str, cluster: &str, cache: &std::path::Path) -> (Option<i32>, Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtc"))
        .env_remove("RTC_CONFIG")
        .env_remove("RTC_ADMIN_TOKEN")
        .env("XDG_CACHE_HOME", cache)
        .args(["status", "--json", "--redis-url", redis_url, "--cluster-name", cluster, "--token", ADMIN_TOKEN])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), v)
}

/// [`status_cached`] off the async runtime.
async fn status_in(redis_url: &str, cluster: &str, cache: &std::path::Path) -> (Option<i32>, Value) {
    let (url, cluster, cache) = (redis_url.to_string(), cluster.to_string(), cache.to_path_buf());
    tokio::task::spawn_blocking(move || status_cached(&url, &cluster, &cache)).await.unwrap()
}

fn alerts_for<'a>(doc: &'a Value, code: &str, node: &str) -> Vec<&'a Value> {
    doc["alerts"]
        .as_array()
        .map_or(Vec::new(), |v| v.iter().filter(|a| a["code"] == code && a["node"] == node).collect())
}

fn node<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["nodes"].as_array().and_then(|ns| ns.iter().find(|n| n["id"] == id)).unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_reports_each_node_and_notices_a_dead_one_and_a_growing_buffer() {
    let redis = Redis::start().await;
    let (a, mut b) = joined_pair(&redis, "con", ["node-a", "node-b"], &one_app(""), &[]).await;

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

/// Redis paused (SIGSTOP): `rtc status` still lists every node an earlier run saw, with
/// the figures each node gives directly, and exits 1 (an alert), not 69. With no earlier
/// run to remember, nothing is reachable: 69.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_during_a_redis_pause_polls_the_known_nodes_directly() {
    let redis = Redis::start().await;
    let (a, b) = joined_pair(&redis, "blip", ["node-a", "node-b"], &one_app(""), &[]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(a.connect().await);
    }
    held.push(b.connect().await);
    let cache = tempfile::tempdir().unwrap();
    let url = redis.url();
    let cache_path = cache.path().to_path_buf();
    eventually(Duration::from_secs(10), "status to report 2 + 1 sockets", || {
        let (url, cache_path) = (url.clone(), cache_path.clone());
        async move {
            let (code, doc) = status_in(&url, "blip", &cache_path).await;
            (code == Some(0) && node(&doc, "node-a")["connections"] == 2 && node(&doc, "node-b")["connections"] == 1)
                .then_some(())
        }
    })
    .await;

    redis.signal("-STOP");
    let (code, doc) = status_in(&url, "blip", cache.path()).await;
    let empty = tempfile::tempdir().unwrap();
    let (code_unknown, doc_unknown) = status_in(&url, "blip", empty.path()).await;
    // No earlier run, but a --node to poll while Redis does not answer.
    let seeded = {
        let (url, cache, node) = (url.clone(), empty.path().to_path_buf(), format!("http://{}", a.addr));
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtc"))
                .env_remove("RTC_CONFIG")
                .env_remove("RTC_ADMIN_TOKEN")
                .env("XDG_CACHE_HOME", &cache)
                .args(["status", "--json", "--redis-url", &url, "--cluster", "blip", "--node", &node])
                .args(["--token", ADMIN_TOKEN])
                .output()
                .unwrap();
            (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
        })
        .await
        .unwrap()
    };
    redis.signal("-CONT");

    assert_eq!(code, Some(1), "an alert, not 'unavailable': {doc:#}");
    assert_eq!(doc["source_reachable"], true, "{doc:#}");
    assert!(doc["redis"]["error"].is_string(), "{doc:#}");
    assert_eq!(node(&doc, "node-a")["connections"], 2, "{doc:#}");
    assert_eq!(node(&doc, "node-b")["connections"], 1, "{doc:#}");
    // The nodes answer; they say themselves that they are cut off from the bus.
    assert_eq!(node(&doc, "node-a")["health"], "degraded", "{doc:#}");
    assert_eq!(node(&doc, "node-b")["health"], "degraded", "{doc:#}");
    assert_eq!(node(&doc, "node-a")["direct"], true, "{doc:#}");
    assert!(doc["alerts"].as_array().unwrap().iter().any(|a| a["code"] == "redis_unreachable"), "{doc:#}");
    assert!(doc["redis_down_secs"].is_number(), "{doc:#}");
    // No earlier run, no nodes to poll: nothing is reachable.
    assert_eq!(code_unknown, Some(69), "{doc_unknown:#}");
    let (code_seeded, doc_seeded) = seeded;
    assert_eq!(code_seeded, Some(1), "{doc_seeded:#}");
    assert_eq!(node(&doc_seeded, "node-a")["connections"], 2, "{doc_seeded:#}");
    drop(held);
}

/// A node SIGSTOPped while events are published: its subscriber's output buffer, read
/// from Redis's CLIENT LIST, grows between two `rtc status` runs although the node no
/// longer answers, and an alert names it against Redis's soft limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_a_hung_nodes_buffer_from_redis_and_alerts_against_the_soft_limit() {
    let redis = Redis::start().await;
    let mut con = redis.con().await;
    // A low soft limit (4 MiB for 60 s): the buffer crosses half of it quickly.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 256mb 4mb 60")
        .query_async(&mut con)
        .await
        .unwrap();
    let (a, b) = joined_pair(&redis, "hung", ["node-a", "node-b"], &one_app(""), &[]).await;
    let mut held = Vec::new();
    let mut c = b.connect().await;
    c.subscribe("prices").await;
    held.push(c);
    let cache = tempfile::tempdir().unwrap();
    let url = redis.url();
    let (_, before) = status_in(&url, "hung", cache.path()).await;
    assert_eq!(node(&before, "node-b")["health"], "serving", "{before:#}");

    b.signal("-STOP");
    let payload = "x".repeat(9_000);
    let batch: Vec<serde_json::Value> =
        (0..10).map(|_| serde_json::json!({"channel": "prices", "name": "tick", "data": payload})).collect();
    let api = a.api();
    let omem = |min: u64| {
        let con = con.clone();
        move || {
            let mut con = con.clone();
            async move {
                let list: String =
                    redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub").query_async(&mut con).await.ok()?;
                let line = list.lines().find(|l| l.contains("name=rtc:hung:node-b:sub"))?;
                let omem: u64 = line.split_whitespace().find_map(|kv| kv.strip_prefix("omem="))?.parse().ok()?;
                (omem > min).then_some(omem)
            }
        }
    };
    // The kernel's socket buffers take the first megabytes; then Redis's buffer grows.
    for _ in 0..150 {
        let (st, body) = api.call("POST", "/batch_events", Some(serde_json::json!({ "batch": batch })), &[]).await;
        assert_eq!(st, 200, "{body}");
    }
    eventually(Duration::from_secs(10), "node B's buffer to pass 500 KB", omem(500_000)).await;
    let (_, first) = status_in(&url, "hung", cache.path()).await;
    let b1 = node(&first, "node-b")["pubsub"]["buffer_bytes"].as_u64().unwrap_or(0);
    assert!(b1 > 500_000, "{first:#}");
    for _ in 0..100 {
        let (st, body) = api.call("POST", "/batch_events", Some(serde_json::json!({ "batch": batch })), &[]).await;
        assert_eq!(st, 200, "{body}");
    }
    eventually(Duration::from_secs(10), "node B's buffer to pass 2.2 MB", omem(b1.max(2_200_000))).await;
    let (code, second) = status_in(&url, "hung", cache.path()).await;
    b.signal("-CONT");

    let nb = node(&second, "node-b");
    let b2 = nb["pubsub"]["buffer_bytes"].as_u64().unwrap_or(0);
    assert!(b2 > b1, "the buffer grows in status --json: {b1} then {b2}: {second:#}");
    assert_eq!(nb["pubsub"]["soft_limit_bytes"], 4 * 1024 * 1024, "{second:#}");
    assert_eq!(nb["pubsub"]["trend"], "rising", "{second:#}");
    let high = alerts_for(&second, "pubsub_buffer_high", "node-b");
    assert_eq!(high.len(), 1, "an alert names node-b: {second:#}");
    let msg = high[0]["message"].as_str().unwrap();
    assert!(msg.contains("soft limit") && msg.contains("Redis cuts it in"), "{msg}");
    assert_eq!(code, Some(1));
    drop(held);
}

/// A node drained through its admin API exits and is listed `drained` (info), not
/// `down`; the timeline says so. A node SIGKILLed and started again with the same id is
/// `serving` with a restart alert, and the timeline says it did not exit cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drained_node_is_drained_not_down_and_a_killed_and_restarted_node_is_marked() {
    let redis = Redis::start().await;
    let toml = one_app("");
    let a = Node::start(&redis.url(), "life", "node-a", &toml);
    let mut b = Node::start(&redis.url(), "life", "node-b", &toml);
    let mut c = Node::start(&redis.url(), "life", "node-c", &toml);
    wait_joined(&[&a, &b, &c]).await;
    let cache = tempfile::tempdir().unwrap();
    let url = redis.url();
    let (_, before) = status_in(&url, "life", cache.path()).await;
    assert_eq!(node(&before, "node-c")["health"], "serving", "{before:#}");

    // Drain node B (no sockets: it exits at once).
    let resp = reqwest::Client::new()
        .post(format!("http://{}/admin/drain", b.addr))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    eventually(Duration::from_secs(30), "node B to exit after its drain", || {
        let exited = b.child_try_wait().is_some();
        async move { exited.then_some(()) }
    })
    .await;
    // SIGKILL node C and start it again with the same id.
    c.kill();
    let c2 = Node::start(&redis.url(), "life", "node-c", &toml);
    wait_joined(&[&a, &c2]).await;

    let cache_path = cache.path().to_path_buf();
    let (code, doc) = eventually(Duration::from_secs(20), "node B drained and node C restarted", || {
        let (url, cache_path) = (url.clone(), cache_path.clone());
        async move {
            let (code, doc) = status_in(&url, "life", &cache_path).await;
            (node(&doc, "node-b")["health"] == "drained" && node(&doc, "node-c")["health"] == "serving")
                .then_some((code, doc))
        }
    })
    .await;
    let drained = alerts_for(&doc, "node_drained", "node-b");
    assert_eq!(drained.len(), 1, "{doc:#}");
    assert_eq!(drained[0]["severity"], "info");
    assert!(alerts_for(&doc, "node_stale", "node-b").is_empty(), "not down: {doc:#}");
    let restarted = alerts_for(&doc, "node_restarted", "node-c");
    assert_eq!(restarted.len(), 1, "a restart alert: {doc:#}");
    assert!(node(&doc, "node-c")["restart"]["previous_boot_id"].is_string(), "{doc:#}");
    // Drained and restarted nodes are information, not failures (a loaded test machine
    // may add an unrelated loop-lag warning, so the exit code is not asserted).
    let _ = code;
    for a in doc["alerts"].as_array().unwrap() {
        if (a["node"] == "node-b" || a["node"] == "node-c") && a["code"] != "loop_lag_high" {
            assert_eq!(a["severity"], "info", "{a}");
        }
    }
    // The timeline, newest first: node C restarted without a clean exit, node B drained.
    let timeline = doc["timeline"].as_array().unwrap();
    let entry = |node: &str, kind: &str| timeline.iter().find(|e| e["node"] == node && e["kind"] == kind).cloned();
    let restart = entry("node-c", "restarted").unwrap_or_else(|| panic!("{doc:#}"));
    assert!(restart["detail"].as_str().unwrap().contains("no clean exit"), "{restart}");
    let finished = entry("node-b", "drain_finished").unwrap_or_else(|| panic!("{doc:#}"));
    assert!(finished["detail"].as_str().unwrap().contains("0 closed at the deadline"), "{finished}");
    assert!(entry("node-b", "drain_begun").is_some(), "{doc:#}");
    assert!(entry("node-a", "started").is_some(), "{doc:#}");
}

/// The same user in a presence channel on two nodes is one member, as the HTTP API's
/// `user_count` says (the nodes each count it locally).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_members_are_distinct_users_across_nodes() {
    let redis = Redis::start().await;
    let (a, b) = joined_pair(&redis, "pres", ["node-a", "node-b"], &one_app(""), &[]).await;
    let mut held = Vec::new();
    for (node, user) in [(&a, "u1"), (&a, "u2"), (&b, "u1"), (&b, "u3")] {
        let mut c = node.connect().await;
        c.subscribe_presence("presence-room", user).await;
        held.push(c);
    }
    let (_, api_info) = a.api().call("GET", "/channels/presence-room", None, &[("info", "user_count")]).await;
    assert_eq!(api_info["user_count"], 3, "{api_info}");
    let cache = tempfile::tempdir().unwrap();
    let url = redis.url();
    let cache_path = cache.path().to_path_buf();
    let doc = eventually(Duration::from_secs(10), "status to list presence-room", || {
        let (url, cache_path) = (url.clone(), cache_path.clone());
        async move {
            let (_, doc) = status_in(&url, "pres", &cache_path).await;
            let ch = doc["channels"].as_array()?.iter().find(|c| c["name"] == "presence-room")?.clone();
            (ch["nodes"] == 2 && node(&doc, "node-b")["presence_members"] == 2).then_some(doc)
        }
    })
    .await;
    let ch = doc["channels"].as_array().unwrap().iter().find(|c| c["name"] == "presence-room").unwrap();
    assert_eq!(ch["members"], 3, "u1 on both nodes counts once: {doc:#}");
    drop(held);
}

/// Errors that say what to do: a scheme-less Redis address gets a redis:// hint, a port
/// that speaks HTTP is named as such, and a cluster name with no node lists the
/// clusters that do exist in that Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_redis_address_protocol_and_cluster_name_are_explained() {
    let redis = Redis::start().await;
    let a = Node::start(&redis.url(), "real", "node-a", &one_app(""));
    wait_joined(&[&a]).await;
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtc"))
                .env_remove("RTC_CONFIG")
                .env_remove("RTC_ADMIN_TOKEN")
                .env("XDG_CACHE_HOME", std::env::temp_dir().join(format!("rtc-e2e-{}", std::process::id())))
                .arg("status")
                .args(args)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
            )
        })
    };
    let bare = format!("127.0.0.1:{}", redis.port);
    let (code, text) = run(vec!["--redis-url".into(), bare.clone()]).await.unwrap();
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains(&format!("write redis://{bare}")), "{text}");

    let http = format!("redis://{}", a.addr);
    let (code, text) = run(vec!["--redis-url".into(), http]).await.unwrap();
    assert_eq!(code, Some(69), "{text}");
    assert!(text.contains("does not answer in Redis's protocol"), "{text}");

    let url = redis.url();
    let text = eventually(Duration::from_secs(10), "the registry to list node-a", || {
        let url = url.clone();
        async move {
            let (code, text) = run(vec!["--redis-url".into(), url, "--cluster".into(), "nope".into()]).await.unwrap();
            (code == Some(1) && text.contains("clusters in this Redis: real")).then_some(text)
        }
    })
    .await;
    assert!(text.contains("no node registered in this cluster"), "{text}");
}
