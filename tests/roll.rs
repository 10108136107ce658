//! `rtc roll` against a real 3-node cluster whose nodes are restarted by a supervisor
//! script, with clients that reconnect like pusher-js and events published throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::*;
use common::*;

/// The drain flags of the supervised nodes.
const DRAIN: &str = "--pre-drain-delay 0.5 --drain-window 1 --drain-timeout 8";

async fn boots(redis: &Redis, cluster: &str) -> Vec<(String, String, u64)> {
    let mut con = redis.con().await;
    let ids: Vec<String> =
        redis::cmd("SMEMBERS").arg(format!("rtc:{cluster}:nodes")).query_async(&mut con).await.unwrap();
    let mut out = Vec::new();
    for id in ids {
        let raw: Option<String> =
            redis::cmd("GET").arg(format!("rtc:{cluster}:node:{id}")).query_async(&mut con).await.unwrap();
        if let Some(v) = raw.and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok()) {
            out.push((id, v["boot_id"].as_str().unwrap().to_string(), v["live_nodes"].as_u64().unwrap_or(0)));
        }
    }
    out.sort();
    out
}

fn rtc(args: &[String]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtc"));
    cmd.env_remove("RTC_CONFIG").env_remove("RTC_ADMIN_TOKEN");
    cmd.args(args).arg("--token").arg(ADMIN_TOKEN).output().unwrap()
}

/// Connects to the first node that accepts, trying `urls` from `start` on; the client
/// and the index of its node.
async fn connect_any(urls: &[String], start: usize) -> (Client, usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut i = start;
    loop {
        let url = &urls[i % urls.len()];
        if let Ok(Ok((ws, _))) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url.as_str())).await {
            let mut c = Client { ws, socket_id: String::new() };
            if let Some(Seen::Event(e)) = c.next_within(WAIT).await {
                if e["event"] == "pusher:connection_established" {
                    return (c, i % urls.len());
                }
            }
        }
        i += 1;
        assert!(tokio::time::Instant::now() < deadline, "no node accepted a connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_restarts_every_node_and_no_connected_client_loses_an_event() {
    let redis = Redis::start().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Supervised> =
        ["r1", "r2", "r3"].iter().map(|id| Supervised::start(&redis.url(), "roll", id, DRAIN, dir.path())).collect();
    let before = eventually(Duration::from_secs(20), "3 nodes registered and joined", || async {
        let b = boots(&redis, "roll").await;
        (b.len() == 3 && b.iter().all(|(_, _, live)| *live == 3)).then_some(b)
    })
    .await;
    let urls: Vec<String> = nodes.iter().map(Supervised::url).collect();
    let apis: Vec<Api> =
        nodes.iter().map(|n| Api::new(format!("127.0.0.1:{}", n.port).parse().unwrap(), APP_ID, KEY, SECRET)).collect();

    // `stop` ends the clients (each after one more event, proving it is connected);
    // `pub_stop` ends the publisher once they are done.
    let stop = Arc::new(AtomicBool::new(false));
    let pub_stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let start = std::time::Instant::now();
    let publisher = {
        let stop = pub_stop.clone();
        let published = published.clone();
        // Its own thread and runtime: the publisher must never wait on the test's tasks.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut log = Vec::new();
                let mut i = 0usize;
                for n in 0..10_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // The app publishes through whichever node answers.
                    for _ in 0..apis.len() {
                        let api = &apis[i % apis.len()];
                        i += 1;
                        let t0 = std::time::Instant::now();
                        let r = tokio::time::timeout(
                            Duration::from_secs(1),
                            api.try_trigger(&["feed"], "n", &n.to_string()),
                        )
                        .await
                        .unwrap_or(Some(0));
                        if n % 50 == 0 || r != Some(200) || t0.elapsed() > Duration::from_millis(500) {
                            eprintln!("publish {n} via {}: {r:?} in {:?}", i % 3, t0.elapsed());
                        }
                        log.push(format!("{:?} publish {n} via r{}: {r:?}", start.elapsed(), (i - 1) % 3 + 1));
                        if let Some(200) = r {
                            published.store(n + 1, Ordering::Relaxed);
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                log
            })
        })
    };

    // Nine clients that behave like pusher-js behind a load balancer. Each returns its
    // reconnects and whether it was connected at the end, or what went wrong.
    let mut drivers = Vec::new();
    for k in 0..9usize {
        let urls = urls.clone();
        let stop = stop.clone();
        drivers.push(tokio::spawn(async move {
            let mut reconnects = 0;
            let (mut c, mut on) = connect_any(&urls, k).await;
            let mut since = start.elapsed();
            c.subscribe("feed").await;
            let mut last: Option<u64> = None;
            loop {
                match c.next_within(Duration::from_secs(20)).await {
                    Some(Seen::Event(e)) if e["event"] == "n" => {
                        let n: u64 = e["data"].as_str().unwrap().parse().unwrap();
                        if let Some(prev) = last {
                            if n != prev + 1 {
                                return Err(format!(
                                    "client {k} lost an event while connected: {n} after {prev} at {:?}, on r{} since {since:?}",
                                    start.elapsed(),
                                    on + 1
                                ));
                            }
                        }
                        last = Some(n);
                        if stop.load(Ordering::Relaxed) {
                            return Ok(reconnects);
                        }
                    }
                    Some(Seen::Event(_)) => {}
                    Some(Seen::Closed(code)) => {
                        if !matches!(code, Some(4200)) {
                            return Err(format!("client {k} closed with {code:?}"));
                        }
                        reconnects += 1;
                        (c, on) = connect_any(&urls, k + reconnects).await;
                        since = start.elapsed();
                        c.subscribe("feed").await;
                        last = None;
                    }
                    None => return Err(format!("client {k} heard nothing for 20 s")),
                }
            }
        }));
    }

    let out = tokio::task::spawn_blocking({
        let url = redis.url();
        move || {
            rtc(&[
                "roll".into(),
                "--redis-url".into(),
                url,
                "--cluster-name".into(),
                "roll".into(),
                "--settle".into(),
                "1".into(),
                "--timeout".into(),
                "60".into(),
                "--json".into(),
            ])
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "roll failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l.contains("\"event\":\"summary\"")), "{stdout}");

    let after = boots(&redis, "roll").await;
    assert_eq!(after.len(), 3);
    for ((id, old, _), (id2, new, _)) in before.iter().zip(after.iter()) {
        assert_eq!(id, id2);
        assert_ne!(old, new, "{id} was not restarted");
    }
    stop.store(true, Ordering::Relaxed);
    let mut total_reconnects = 0;
    let mut faults = Vec::new();
    for d in drivers {
        match d.await.unwrap() {
            Ok(reconnects) => total_reconnects += reconnects,
            Err(fault) => faults.push(fault),
        }
    }
    pub_stop.store(true, Ordering::Relaxed);
    let log = publisher.join().unwrap();
    if !faults.is_empty() {
        for (id, node) in ["r1", "r2", "r3"].iter().zip(&nodes) {
            eprintln!("---- {id}'s log\n{}", node.log());
        }
        panic!("{}\npublishes:\n{}", faults.join("\n"), log.join("\n"));
    }
    assert!(total_reconnects >= 9, "every client was moved at least once ({total_reconnects})");
    assert!(published.load(Ordering::Relaxed) > 0);
    drop(nodes);
}

#[tokio::test]
async fn the_capacity_gate_refuses_with_the_arithmetic_and_dry_run_changes_nothing() {
    let redis = Redis::start().await;
    let (a, b) = joined_pair(&redis, "gate", ["g1", "g2"], &one_app(""), &[]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(a.connect().await);
        held.push(b.connect().await);
    }
    eventually(Duration::from_secs(5), "connection counts in the registry", || async {
        let s = a.stats().await;
        (s["connections"] == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // one heartbeat carries the counts
    let url = redis.url();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> =
            ["roll", "--redis-url", &url, "--cluster-name", "gate"].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let dry = tokio::task::spawn_blocking({
        let a = args(&["--dry-run", "--planning-line", "100"]);
        move || rtc(&a)
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(dry.status.code(), Some(0), "{text}");
    assert!(text.contains("step 1: g1") && text.contains("step 2: g2") && text.contains("plan fits"), "{text}");

    let refused = tokio::task::spawn_blocking({
        let a = args(&["--planning-line", "4"]);
        move || rtc(&a)
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    let err = String::from_utf8_lossy(&refused.stdout).to_string() + &String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("capacity gate") && err.contains("vs line 4"), "{err}");
    // Nothing was drained.
    assert_eq!(a.stats().await["state"], "serving");
    assert_eq!(b.stats().await["state"], "serving");
    let dry = tokio::task::spawn_blocking({
        let a = args(&["--dry-run", "--planning-line", "4"]);
        move || rtc(&a)
    })
    .await
    .unwrap();
    assert_eq!(dry.status.code(), Some(3));
}

/// `rtc drain` with the cache of known nodes kept in `cache`; (exit code, stdout + stderr).
fn drain_cmd(cache: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rtc"))
        .env_remove("RTC_CONFIG")
        .env_remove("RTC_ADMIN_TOKEN")
        .env("XDG_CACHE_HOME", cache)
        .arg("drain")
        .args(args)
        .arg("--token")
        .arg(ADMIN_TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// `rtc drain` has roll's gate: it refuses to drain the last serving node, and a drain
/// that would push the survivors over the planning line (exit 3, the arithmetic shown,
/// nothing drained); `--dry-run` shows the check; a drain that fits goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_refuses_the_last_node_and_a_drain_over_the_line() {
    let redis = Redis::start().await;
    let toml = one_app("");
    let a = Node::start(&redis.url(), "dgate", "d1", &toml);
    wait_joined(&[&a]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(a.connect().await);
    }
    let cache = tempfile::tempdir().unwrap();
    let url = redis.url();
    let run = |extra: &[&str]| {
        let mut v: Vec<String> =
            ["d1", "--redis-url", &url, "--cluster-name", "dgate"].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        let cache = cache.path().to_path_buf();
        tokio::task::spawn_blocking(move || drain_cmd(&cache, &v.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    // Once its first heartbeat is in the registry.
    let (code, text) = eventually(Duration::from_secs(10), "d1 in the registry", || async {
        let (code, text) = run(&[]).await.unwrap();
        (!text.contains("unknown node")).then_some((code, text))
    })
    .await;
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("d1 is the last serving node") && text.contains("--force"), "{text}");
    assert_eq!(a.stats().await["state"], "serving", "nothing was drained");
    let (code, text) = run(&["--dry-run"]).await.unwrap();
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("capacity check"), "{text}");

    // A second node: the 3 sockets would move to it, over a planning line of 2.
    let b = Node::start(&redis.url(), "dgate", "d2", &toml);
    wait_joined(&[&a, &b]).await;
    let text = eventually(Duration::from_secs(10), "the registry to carry both nodes and 3 sockets", || async {
        let (code, text) = run(&["--dry-run", "--planning-line", "2"]).await.unwrap();
        (code == Some(3) && text.contains("+ 3 from d1")).then_some(text)
    })
    .await;
    assert!(text.contains("busiest 3 vs line 2: OVER the line"), "{text}");
    let (code, text) = run(&["--planning-line", "2"]).await.unwrap();
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("refused: the busiest survivor would hold 3 against a planning line of 2"), "{text}");
    assert_eq!(a.stats().await["state"], "serving", "nothing was drained");
    let (code, text) = run(&["--dry-run", "--planning-line", "100"]).await.unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("fits") && text.contains("--dry-run: d1 would be asked to drain"), "{text}");
    assert_eq!(a.stats().await["state"], "serving");
    drop(held);
}

/// `--order` must name every live node: one left out is named, exit 2, nothing rolled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_order_that_leaves_out_a_node_is_refused() {
    let redis = Redis::start().await;
    let (a, b) = joined_pair(&redis, "ord", ["o1", "o2"], &one_app(""), &[]).await;
    let url = redis.url();
    let text = eventually(Duration::from_secs(10), "both nodes in the registry", || {
        let url = url.clone();
        async move {
            let args: Vec<String> = ["roll", "--redis-url", &url, "--cluster", "ord", "--order", "o1", "--dry-run"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let out = tokio::task::spawn_blocking(move || rtc(&args)).await.unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
            (out.status.code() == Some(2) && text.contains("leaves out")).then_some(text)
        }
    })
    .await;
    assert!(text.contains("--order leaves out o2"), "{text}");
    assert_eq!(a.stats().await["state"], "serving");
    assert_eq!(b.stats().await["state"], "serving");
}
