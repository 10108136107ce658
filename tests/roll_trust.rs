//! Issue 13: whoever can write to the cluster's Redis must not get a shell on the
//! operator's machine, the admin token, or a forged event onto a socket.
//!
//! * Forged registry entries (a shell-metacharacter id, a well-formed id with no or a
//!   wrong signature) pointing at a listener the test owns: `rtc status` flags them
//!   untrusted, `rtc drain` refuses them, `rtc roll --exec` runs nothing for them and
//!   rolls the real nodes, and the listener never sees the admin token.
//! * With a cluster secret, a forged or altered bus message is dropped and counted and
//!   legitimate cross-node delivery still works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::*;
use common::*;
use serde_json::{json, Value};

const EVIL_ID: &str = "0;touch${IFS}PWNED;#";

/// The drain flags of the supervised nodes.
const DRAIN: &str = "--pre-drain-delay 0 --drain-window 0.2 --drain-timeout 5";

/// A plain TCP listener standing in for an attacker's endpoint: records every request's
/// bytes and answers 200 `{}`.
struct Trap {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Trap {
    fn start() -> Trap {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = vec![0u8; 16 * 1024];
                let n = s.read(&mut buf).unwrap_or(0);
                log.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).to_string());
                let _ =
                    s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}");
            }
        });
        Trap { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn entry(redis: &Redis, cluster: &str, id: &str) -> Option<Value> {
    let mut con = redis.con().await;
    let raw: Option<String> =
        redis::cmd("GET").arg(format!("rtc:{cluster}:node:{id}")).query_async(&mut con).await.unwrap();
    raw.and_then(|r| serde_json::from_str(&r).ok())
}

async fn forge(redis: &Redis, cluster: &str, id: &str, entry: &Value) {
    let mut con = redis.con().await;
    let _: () = redis::cmd("SADD").arg(format!("rtc:{cluster}:nodes")).arg(id).query_async(&mut con).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("rtc:{cluster}:node:{id}"))
        .arg(entry.to_string())
        .arg("EX")
        .arg(600)
        .query_async(&mut con)
        .await
        .unwrap();
}

fn rtc_in(cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtc"));
    cmd.env_remove("RTC_CONFIG").env_remove("RTC_ADMIN_TOKEN").current_dir(cwd);
    cmd.args(args).arg("--token").arg(ADMIN_TOKEN).output().unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_registry_entries_are_flagged_never_executed_and_never_sent_the_token() {
    let redis = Redis::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cluster = "trust";
    let nodes: Vec<Supervised> =
        ["t1", "t2"].iter().map(|id| Supervised::start(&redis.url(), cluster, id, DRAIN, dir.path())).collect();
    let real = eventually(Duration::from_secs(30), "2 nodes registered and joined", || async {
        let a = entry(&redis, cluster, "t1").await?;
        let b = entry(&redis, cluster, "t2").await?;
        (a["live_nodes"] == 2 && b["live_nodes"] == 2 && a["state"] == "serving" && b["state"] == "serving")
            .then_some((a, b))
    })
    .await;
    assert!(!real.0["registry_sig"].as_str().unwrap_or("").is_empty(), "nodes sign their registry entry");

    // Three forgeries pointing at the trap, each copied from a real entry: a shell
    // injection id, a well-formed id without a signature, one with t1's signature.
    let trap = Trap::start();
    let mut evil = real.0.clone();
    evil["node_id"] = json!(EVIL_ID);
    evil["advertise_url"] = json!(trap.url());
    evil["boot_id"] = json!("forged");
    evil["connections"] = json!(0);
    forge(&redis, cluster, EVIL_ID, &evil).await;
    let mut unsigned = evil.clone();
    unsigned["node_id"] = json!("evil-unsigned");
    unsigned["registry_sig"] = json!("");
    forge(&redis, cluster, "evil-unsigned", &unsigned).await;
    let mut wrong = evil.clone();
    wrong["node_id"] = json!("evil-wrongsig");
    forge(&redis, cluster, "evil-wrongsig", &wrong).await;

    // `rtc status`: the real nodes serve, the forged entries are shown untrusted.
    let status = tokio::task::spawn_blocking({
        let (url, cwd) = (redis.url(), dir.path().to_path_buf());
        move || rtc_in(&cwd, &["status", "--redis-url", &url, "--cluster-name", "trust", "--json"])
    })
    .await
    .unwrap();
    let doc: Value = serde_json::from_slice(&status.stdout).unwrap_or_else(|_| panic!("{}", text(&status)));
    let health = |id: &str| -> (String, String) {
        let n =
            doc["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).unwrap_or_else(|| panic!("{id}: {doc}"));
        (n["health"].as_str().unwrap().to_string(), n["problem"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(health("t1").0, "serving");
    assert_eq!(health("t2").0, "serving");
    let (h, why) = health("0;touch${IFS}PWNED;#");
    assert_eq!(h, "untrusted");
    assert!(why.contains("is not a node id"), "{why}");
    let (h, why) = health("evil-unsigned");
    assert_eq!(h, "untrusted");
    assert!(why.contains("unsigned"), "{why}");
    let (h, why) = health("evil-wrongsig");
    assert_eq!(h, "untrusted");
    assert!(why.contains("does not verify"), "{why}");
    assert!(doc["alerts"].as_array().unwrap().iter().any(|a| a["code"] == "node_untrusted"), "{doc}");
    assert_eq!(status.status.code(), Some(1), "an untrusted entry is an alert");
    let table = tokio::task::spawn_blocking({
        let (url, cwd) = (redis.url(), dir.path().to_path_buf());
        move || rtc_in(&cwd, &["status", "--redis-url", &url, "--cluster-name", "trust"])
    })
    .await
    .unwrap();
    let table = text(&table);
    assert!(table.contains("evil-unsigned: untrusted registry entry, not acted on: unsigned entry"), "{table}");

    // `rtc drain` refuses every forged entry by id.
    for id in [EVIL_ID, "evil-unsigned", "evil-wrongsig"] {
        let out = tokio::task::spawn_blocking({
            let (url, cwd, id) = (redis.url(), dir.path().to_path_buf(), id.to_string());
            move || rtc_in(&cwd, &["drain", &id, "--redis-url", &url, "--cluster-name", "trust", "--no-wait"])
        })
        .await
        .unwrap();
        assert_eq!(out.status.code(), Some(3), "{id}: {}", text(&out));
        assert!(text(&out).contains("untrusted"), "{}", text(&out));
    }

    // `rtc roll --exec`: the template is the issue's, in front of a script that
    // restarts a real node (SIGTERM; its supervisor starts it again).
    let script = dir.path().join("restart.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"$1\" >> exec.log\nkill -TERM \"$(cat \"$1.pid\")\"\n").unwrap();
    let exec = format!("{} {{node}}", script.display());
    Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    let roll = tokio::task::spawn_blocking({
        let (url, cwd) = (redis.url(), dir.path().to_path_buf());
        move || {
            rtc_in(
                &cwd,
                &[
                    "roll",
                    "--redis-url",
                    &url,
                    "--cluster-name",
                    "trust",
                    "--exec",
                    &exec,
                    "--settle",
                    "0.5",
                    "--timeout",
                    "60",
                    "--json",
                ],
            )
        }
    })
    .await
    .unwrap();
    let out = text(&roll);
    assert!(!dir.path().join("PWNED").exists(), "the forged id ran a command:\n{out}");
    assert_eq!(roll.status.code(), Some(0), "{out}");
    let untrusted: Vec<&str> = out.lines().filter(|l| l.contains("\"event\":\"untrusted\"")).collect();
    assert_eq!(untrusted.len(), 3, "{out}");
    assert_eq!(std::fs::read_to_string(dir.path().join("exec.log")).unwrap(), "t1\nt2\n", "{out}");
    for (id, before) in [("t1", &real.0), ("t2", &real.1)] {
        let after = entry(&redis, cluster, id).await.unwrap();
        assert_ne!(after["boot_id"], before["boot_id"], "{id} was not restarted:\n{out}");
    }
    assert!(!dir.path().join("PWNED").exists());
    let seen = trap.requests();
    assert!(seen.iter().all(|r| !r.contains(ADMIN_TOKEN)), "the admin token reached a forged entry's URL: {seen:?}");
    assert!(seen.is_empty(), "nothing is sent to an untrusted entry: {seen:?}");
    drop(nodes);
}

async fn counter(node: &Node) -> u64 {
    node.stats().await["pubsub"]["unauthenticated"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_cluster_secret_forged_bus_messages_are_dropped_and_counted() {
    const CLUSTER_SECRET: &str = "bus-secret-0123456789abcdef";
    let redis = Redis::start().await;
    let toml = cluster_toml("");
    let extra = ["--cluster-secret", CLUSTER_SECRET];
    let (a, b) = joined_pair(&redis, "sealed", ["a", "b"], &toml, &extra).await;

    // The victim on node b: signed in, on a private channel.
    let mut victim = b.connect().await;
    victim.signin(r#"{"id":"victim"}"#).await;
    victim.subscribe_private("private-vault").await;

    // A raw subscriber on the bus captures a legitimate message from node a.
    let mut pubsub = redis.client().get_async_pubsub().await.unwrap();
    pubsub.subscribe("rtc:sealed:bus").await.unwrap();
    let mut messages = pubsub.on_message();
    let (status, _) = a.api().trigger(&["private-vault"], "real", "one").await;
    assert_eq!(status, 200);
    let got = victim.expect_event("real").await;
    assert_eq!(got["data"], "one", "legitimate cross-node delivery works");
    let captured: String = loop {
        let msg = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut messages)).await.unwrap().unwrap();
        let payload: String = msg.get_payload().unwrap();
        if payload.contains("\"event\":\"real\"") {
            break payload;
        }
    };
    drop(messages);
    assert!(captured.starts_with("rtc-mac1:"), "{captured}");
    let (_, rest) = captured.split_at("rtc-mac1:".len());
    let (mac, legit_json) = rest.split_at(64);
    let legit_json = &legit_json[1..];
    let mut env: Value = serde_json::from_str(legit_json).unwrap();

    // Forgeries: the captured event re-sent without its MAC with new data; the MAC kept
    // over altered data; a terminate of the victim in the same shape.
    env["data"] = json!("forged");
    env["event"] = json!("forged");
    let unsigned = env.to_string();
    let altered = format!("rtc-mac1:{mac}:{unsigned}");
    let mut terminate = env.clone();
    let obj = terminate.as_object_mut().unwrap();
    for k in ["channel", "event", "data", "except", "user_id"] {
        obj.remove(k);
    }
    obj.insert("kind".into(), json!("terminate"));
    obj.insert("user_id".into(), json!("victim"));
    let before = counter(&b).await;
    let mut con = redis.con().await;
    for forged in [unsigned.clone(), altered, terminate.to_string()] {
        let receivers: i64 =
            redis::cmd("PUBLISH").arg("rtc:sealed:bus").arg(&forged).query_async(&mut con).await.unwrap();
        assert!(receivers >= 2, "both nodes are subscribed");
    }
    eventually(Duration::from_secs(10), "node b to count three unauthenticated messages", || async {
        (counter(&b).await >= before + 3).then_some(())
    })
    .await;

    // The bus is ordered: a legitimate event published now arrives after the forgeries
    // were handled. The victim is still connected and saw none of them.
    let (status, _) = a.api().trigger(&["private-vault"], "real", "two").await;
    assert_eq!(status, 200);
    let next = victim.next_event().await;
    assert_eq!(next["event"], "real", "a forged message reached the victim: {next}");
    assert_eq!(next["data"], "two");

    let metrics = process::metrics_text(&reqwest::Client::new(), &format!("http://{}", b.addr)).await;
    let line =
        metrics.lines().find(|l| l.starts_with("rtc_bus_unauthenticated_total")).unwrap_or_else(|| panic!("{metrics}"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3, "{line}");
    eventually(Duration::from_secs(10), "node a to drop them too", || async { (counter(&a).await >= 3).then_some(()) })
        .await;
}

/// Starts a cluster node with `extra` flags, waits until it listens and has joined the
/// bus, stops it, and returns everything it logged.
async fn node_log(redis: &Redis, extra: &[&str]) -> String {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, one_app("").as_bytes()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtc"));
    let mut child = process::scrub_env(&mut cmd)
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--redis-url", &redis.url(), "--cluster", "logs"])
        .args(["--node-id", "l1", "--config"])
        .arg(file.path())
        .args(extra)
        .env("RUST_LOG", "rtc=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = process::http_addr(&mut child);
    eventually(Duration::from_secs(15), "the node to join the bus", || async {
        let r = reqwest::Client::new()
            .get(format!("http://{addr}/admin/stats"))
            .bearer_auth(ADMIN_TOKEN)
            .timeout(WAIT)
            .send()
            .await
            .ok()?;
        let s: Value = r.json().await.ok()?;
        (s["pubsub"]["connected"] == true).then_some(())
    })
    .await;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test]
async fn an_unauthenticated_bus_is_warned_about_and_the_cluster_secret_is_never_logged() {
    let redis = Redis::start().await;
    let open = node_log(&redis, &[]).await;
    assert!(open.contains("The cluster bus is unauthenticated"), "{open}");
    let secret = "never-log-this-secret-0123456789";
    let sealed = node_log(&redis, &["--cluster-secret", secret]).await;
    assert!(!sealed.contains("The cluster bus is unauthenticated"), "{sealed}");
    assert!(sealed.contains("Connected to the cluster's Redis"), "the log is captured: {sealed}");
    assert!(!sealed.contains(secret), "{sealed}");
}
