//! The console on every engine: `rtc status`, `rtc drain` and `rtc roll --dry-run` given
//! `--bus redis-cluster://…` or `--bus nats://…` read the registry where those engines
//! keep it, against a real Redis Cluster (tests/common/redis_cluster.rs) or a real
//! `nats-server -js` (tests/common/nats.rs) and two real `rtc serve --bus` nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cluster::eventually;
use common::nats::NatsServer;
use common::redis_cluster::RedisCluster;
use common::*;
use serde_json::Value;

/// The drain flags of tests/drain.rs: a short, paced drain.
const DRAIN_FLAGS: &[&str] = &["--pre-drain-delay", "1", "--drain-window", "2", "--drain-timeout", "10"];

/// One `rtc serve --bus URL` child, killed on drop.
struct BusNode {
    addr: String,
    child: Child,
    _config: tempfile::NamedTempFile,
}

impl BusNode {
    fn start(bus: &str, cluster: &str, id: &str) -> BusNode {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(&mut file, one_app("").as_bytes()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtc"));
        common::process::scrub_env(&mut cmd)
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--bus", bus, "--cluster", cluster])
            .args(["--node-id", id, "--config"])
            .arg(file.path())
            .args(DRAIN_FLAGS)
            .env("RUST_LOG", "rtc=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let addr = common::process::http_addr(&mut child);
        BusNode { addr, child, _config: file }
    }

    async fn stats(&self) -> Value {
        common::process::admin_stats(&reqwest::Client::new(), &format!("http://{}", self.addr)).await
    }

    async fn connect(&self) -> Client {
        Client::connect(&format!("ws://{}/app/{KEY}?protocol=7&client=js&version=8.4.0", self.addr)).await
    }
}

impl Drop for BusNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until both nodes see each other on the bus and serve.
async fn joined(nodes: &[&BusNode]) {
    for n in nodes {
        eventually(Duration::from_secs(20), "the nodes to see each other", || async {
            let s = n.stats().await;
            (s["live_nodes"] == nodes.len() as u64 && s["pubsub"]["connected"] == true && s["state"] == "serving")
                .then_some(())
        })
        .await;
    }
}

/// Runs `rtc ARGS --token T` with a clean environment and its own cache directory, off
/// the async runtime: (exit code, stdout, stderr).
async fn rtc(args: Vec<String>, cache: &std::path::Path) -> (Option<i32>, String, String) {
    let cache = cache.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtc"));
        common::process::scrub_env(&mut cmd);
        let out = cmd.env("XDG_CACHE_HOME", &cache).args(&args).arg("--token").arg(ADMIN_TOKEN).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn node<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["nodes"].as_array().and_then(|ns| ns.iter().find(|n| n["id"] == id)).unwrap_or(&Value::Null)
}

/// `rtc status --json --bus URL --cluster NAME`.
async fn status(bus: &str, cluster: &str, cache: &std::path::Path) -> Value {
    let (_, out, _) =
        rtc(args(&["status", "--json", "--interval", "250ms", "--bus", bus, "--cluster", cluster]), cache).await;
    serde_json::from_str(&out).unwrap_or(Value::Null)
}

/// The scenario on one engine: status lists both nodes with their figures, a dry-run
/// roll plans both, an unknown node names the clusters the engine has, and `rtc drain`
/// finds node A in the registry and drains it until it exits.
async fn status_roll_and_drain(bus: &str, cluster: &str, engine: &str) {
    let a = BusNode::start(bus, cluster, "node-a");
    let b = BusNode::start(bus, cluster, "node-b");
    joined(&[&a, &b]).await;
    let cache = tempfile::tempdir().unwrap();

    // Two sockets on A, one on B; the same user in a presence channel on both nodes.
    let mut on_a = a.connect().await;
    on_a.subscribe_presence("presence-room", "u1").await;
    let mut on_a2 = a.connect().await;
    on_a2.subscribe_presence("presence-room", "u2").await;
    let mut on_b = b.connect().await;
    on_b.subscribe_presence("presence-room", "u1").await;

    let doc = eventually(Duration::from_secs(20), "status to list both nodes with their sockets", || async {
        let doc = status(bus, cluster, cache.path()).await;
        let ch = doc["channels"].as_array()?.iter().find(|c| c["name"] == "presence-room")?.clone();
        (node(&doc, "node-a")["connections"] == 2 && node(&doc, "node-b")["connections"] == 1 && ch["nodes"] == 2)
            .then_some(doc)
    })
    .await;
    assert_eq!(doc["source_reachable"], true, "{doc:#}");
    assert_eq!(doc["redis"]["engine"], engine, "{doc:#}");
    assert_eq!(doc["redis"]["error"], Value::Null, "{doc:#}");
    assert!(doc["redis"]["not_available"].as_array().unwrap().contains(&"redis_figures".into()), "{doc:#}");
    for id in ["node-a", "node-b"] {
        assert_eq!(node(&doc, id)["health"], "serving", "{doc:#}");
    }
    assert_eq!(node(&doc, "node-a")["presence_members"], 2, "{doc:#}");
    // The figures are the node's own.
    let own = a.stats().await;
    assert_eq!(node(&doc, "node-a")["version"], own["version"]);
    assert_eq!(node(&doc, "node-a")["url"], format!("http://{}", a.addr), "{doc:#}");
    // u1 on both nodes is one member, counted over the engine's presence state.
    let ch = doc["channels"].as_array().unwrap().iter().find(|c| c["name"] == "presence-room").unwrap();
    assert_eq!(ch["members"], 2, "{doc:#}");

    // A dry-run roll plans both nodes over the same registry.
    let (code, out, err) =
        rtc(args(&["roll", "--bus", bus, "--cluster", cluster, "--dry-run", "--json"]), cache.path()).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let steps: Vec<String> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "plan_step")
        .map(|v| v["node"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps, ["node-a", "node-b"], "{out}");

    // A node of no cluster: a usage error naming the clusters this engine has.
    let (code, _, err) = rtc(args(&["drain", "nobody", "--bus", bus, "--cluster", "nope"]), cache.path()).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("clusters on this {engine} engine: {cluster}")), "{err}");

    // Drain node A by its id: its socket gets the reconnect hint, it exits 0.
    let drain = {
        let (bus, cluster, cache) = (bus.to_string(), cluster.to_string(), cache.path().to_path_buf());
        tokio::spawn(async move {
            rtc(args(&["drain", "node-a", "--bus", &bus, "--cluster", &cluster, "--timeout", "30"]), &cache).await
        })
    };
    assert_eq!(on_a.expect_close().await, Some(4200));
    let (code, out, err) = drain.await.unwrap();
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("capacity check"), "{out}");
    assert!(out.contains("node-a drained"), "{out}");
    let mut a = a;
    assert_eq!(common::process::exit_within(&mut a.child, Duration::from_secs(10)).await, Some(Some(0)));
    assert_eq!(b.stats().await["state"], "serving");
    drop(on_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_a_redis_cluster_registry() {
    let redis = RedisCluster::start(3, 0).await;
    let url = redis.url();
    status_roll_and_drain(&url, "con", "redis-cluster").await;
    // The nodes wrote the exit marker and the timeline: A is drained, not down.
    let cache = tempfile::tempdir().unwrap();
    let doc = eventually(Duration::from_secs(20), "node A drained in status", || async {
        let doc = status(&url, "con", cache.path()).await;
        (node(&doc, "node-a")["health"] == "drained").then_some(doc)
    })
    .await;
    let timeline = doc["timeline"].as_array().unwrap();
    assert!(timeline.iter().any(|e| e["node"] == "node-a" && e["kind"] == "drain_finished"), "{doc:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_a_nats_registry() {
    let nats = NatsServer::start().await;
    // A cluster name per test: the machine's shared server (the fallback) keeps them apart.
    let cluster = format!("t{}", nats.port);
    status_roll_and_drain(&nats.url(), &cluster, "nats").await;
    // NATS keeps no timeline and no exit marker: said so, and A is no longer up.
    let cache = tempfile::tempdir().unwrap();
    let doc = eventually(Duration::from_secs(20), "node A no longer up in status", || async {
        let doc = status(&nats.url(), &cluster, cache.path()).await;
        (doc["totals"]["nodes_up"] == 1 && node(&doc, "node-b")["health"] == "serving").then_some(doc)
    })
    .await;
    assert!(doc["redis"]["not_available"].as_array().unwrap().contains(&"timeline".into()), "{doc:#}");
    assert_eq!(doc["timeline"], serde_json::json!([]), "{doc:#}");
}

/// `--bus` and `--redis-url` name one engine: the same URL twice is fine, two different
/// ones are a usage error (exit 2) that says so.
#[tokio::test]
async fn bus_and_redis_url_must_agree() {
    let cache = tempfile::tempdir().unwrap();
    let (code, _, err) = rtc(
        args(&["status", "--bus", "nats://127.0.0.1:1", "--redis-url", "redis://127.0.0.1:1", "--cluster", "x"]),
        cache.path(),
    )
    .await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("are both set and differ; give one (--bus replaces --redis-url)"), "{err}");
    let (code, _, err) = rtc(args(&["drain", "n1", "--bus", "redis-cluster://127.0.0.1"]), cache.path()).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("must name HOST:PORT"), "{err}");
}

/// The boot id of the supervised node on `port`, once it serves with `n` live nodes.
async fn boot_of(port: u16, n: u64) -> Option<String> {
    let resp = tokio::time::timeout(
        WAIT,
        reqwest::Client::new().get(format!("http://127.0.0.1:{port}/admin/stats")).bearer_auth(ADMIN_TOKEN).send(),
    )
    .await
    .ok()?
    .ok()?;
    let s: Value = resp.json().await.ok()?;
    (s["state"] == "serving" && s["live_nodes"] == n).then(|| s["boot_id"].as_str().map(str::to_string))?
}

/// `rtc roll --bus nats://…` restarts every node one at a time (a supervisor starts each
/// drained node again), holding its lock on NATS meanwhile: a second roll is refused
/// with the holder's name, and the lock is free again once the roll is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_over_nats_restarts_every_node_under_its_lock() {
    let nats = NatsServer::start().await;
    let cluster = format!("r{}", nats.port);
    let dir = tempfile::tempdir().unwrap();
    let drain = "--pre-drain-delay 0.5 --drain-window 1 --drain-timeout 8";
    // The supervisor passes the URL as --redis-url: the same engine choice as --bus.
    let nodes: Vec<common::cluster::Supervised> = ["r1", "r2"]
        .iter()
        .map(|id| common::cluster::Supervised::start(&nats.url(), &cluster, id, drain, dir.path()))
        .collect();
    let mut before = Vec::new();
    for n in &nodes {
        before.push(eventually(Duration::from_secs(30), "both nodes serving", || boot_of(n.port, 2)).await);
    }
    let cache = tempfile::tempdir().unwrap();
    let roll_args =
        ["roll", "--bus", &nats.url(), "--cluster", &cluster, "--settle", "0.5", "--timeout", "60", "--json"];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtc"));
    common::process::scrub_env(&mut cmd);
    let mut first = cmd
        .env("XDG_CACHE_HOME", cache.path())
        .args(roll_args)
        .arg("--token")
        .arg(ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = common::process::lines_of(first.stdout.take().unwrap());
    let mut seen = Vec::new();
    common::process::wait_line(&lines, Duration::from_secs(20), "the roll's start event", |l| {
        seen.push(l.to_string());
        l.contains("\"event\":\"start\"").then_some(())
    });
    // The lock is held: a second roll is refused (exit 3) and names the holder.
    let (code, _, err) = rtc(args(&roll_args), cache.path()).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains(&format!("a roll of '{cluster}' is in progress by")) && err.contains("pid"), "{err}");
    let code = common::process::exit_within(&mut first, Duration::from_secs(120)).await;
    seen.extend(lines.try_iter());
    assert_eq!(code, Some(Some(0)), "{seen:#?}");
    assert!(seen.iter().any(|l| l.contains("\"event\":\"summary\"")), "{seen:#?}");
    for (n, old) in nodes.iter().zip(&before) {
        let new = eventually(Duration::from_secs(30), "the node back", || boot_of(n.port, 2)).await;
        assert_ne!(&new, old, "node on port {} was not restarted", n.port);
    }
    // The finished roll left no record to resume, and released its lock: the next roll
    // takes it and goes through.
    let (code, _, err) =
        rtc(args(&["roll", "--bus", &nats.url(), "--cluster", &cluster, "--resume"]), cache.path()).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no interrupted roll recorded"), "{err}");
    let (code, out, err) = rtc(args(&roll_args), cache.path()).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    drop(nodes);
}
