//! The paced drain, with real processes: a 2-node cluster, SIGTERM on one node while
//! events are published, clients reconnecting to the other node (the test stands in for
//! the load balancer).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::*;
use common::*;

const DRAIN_FLAGS: &[&str] = &["--pre-drain-delay", "1", "--drain-window", "2", "--drain-timeout", "10"];

#[tokio::test]
async fn sigterm_drains_with_4200_while_events_keep_flowing_then_exits_0() {
    let redis = Redis::start().await;
    let (mut a, b) = joined_pair(&redis, "d", ["node-a", "node-b"], &one_app(""), DRAIN_FLAGS).await;

    const N: usize = 12;
    let mut clients = Vec::new();
    for _ in 0..N {
        let mut c = a.connect().await;
        c.subscribe("feed").await;
        clients.push(c);
    }

    // Publish a numbered event every 20 ms through node B for the whole test.
    let seq = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let api = b.api();
        let seq = seq.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            for _ in 0..3000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let n = seq.fetch_add(1, Ordering::Relaxed);
                api.trigger(&["feed"], "n", &n.to_string()).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    a.signal("-TERM");
    // Readiness flips at once.
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    eventually(Duration::from_secs(1), "readiness 503 within 1 s", || async {
        let r = http.get(format!("http://{}/ready", a.addr)).send().await.ok()?;
        (r.status() == 503).then_some(())
    })
    .await;
    let up = http.get(format!("http://{}/up", a.addr)).send().await.unwrap();
    assert_eq!(up.status(), 503);
    assert_eq!(up.headers()["x-health-check"], "DRAINING");
    // New upgrades are refused with 503, never accepted then closed.
    match tokio_tungstenite::connect_async(a.ws_url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            assert!(resp.headers().contains_key("retry-after"));
        }
        other => panic!("upgrade during drain: {other:?}"),
    }
    let stats = a.stats().await;
    assert_eq!(stats["state"], "draining");

    // Every client: contiguous events while on node A, then 4200, then node B.
    let mut moved = Vec::new();
    for mut c in clients {
        let mut last: Option<u64> = None;
        let code = loop {
            match c.next_within(Duration::from_secs(15)).await {
                Some(Seen::Event(e)) if e["event"] == "n" => {
                    let n: u64 = e["data"].as_str().unwrap().parse().unwrap();
                    if let Some(prev) = last {
                        assert_eq!(n, prev + 1, "an event was lost on a connected socket");
                    }
                    last = Some(n);
                }
                Some(Seen::Event(_)) => {}
                Some(Seen::Closed(code)) => break code,
                None => panic!("no close within the drain"),
            }
        };
        assert_eq!(code, Some(4200));
        let mut again = b.connect().await;
        again.subscribe("feed").await;
        moved.push((again, last));
    }
    for (c, last) in moved.iter_mut() {
        let e = c.expect_event("n").await;
        let n: u64 = e["data"].as_str().unwrap().parse().unwrap();
        assert!(last.is_none_or(|l| n > l));
    }
    // The drained node exits 0 within its drain timeout.
    let status = eventually(Duration::from_secs(12), "node A to exit", || {
        let s = a.child_try_wait();
        async move { s }
    })
    .await;
    assert_eq!(status, Some(0));
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.await;
    let bstats = b.stats().await;
    assert_eq!(bstats["connections"], N as u64);
}

#[tokio::test]
async fn admin_drain_needs_the_token_and_refuses_a_second_drain() {
    let s = TestServer::start(&one_app("")).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/admin/drain", s.addr);
    let r = http.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.post(&url).bearer_auth(ADMIN_TOKEN).body("{\"window_secs\": -3}").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let mut c = s.connect().await;
    let r = http
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .body(r#"{"pre_delay_secs": 0, "window_secs": 0.5, "timeout_secs": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = http.post(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(c.expect_close().await, Some(4200));
    s.stop().await;
}

#[tokio::test]
async fn a_presence_member_moving_off_a_draining_node_does_not_flap() {
    let redis = Redis::start().await;
    let (mut a, b) = joined_pair(&redis, "p", ["node-a", "node-b"], &one_app(""), DRAIN_FLAGS).await;
    let mut watcher = b.connect().await;
    watcher.subscribe_presence("presence-room", "watcher").await;
    let mut mover = a.connect().await;
    mover.subscribe_presence("presence-room", "mover").await;
    let added = watcher.expect_event("pusher_internal:member_added").await;
    assert_eq!(data_of(&added)["user_id"], "mover");

    a.signal("-TERM");
    assert_eq!(mover.expect_close().await, Some(4200));
    // pusher-js reconnects at once; the load balancer sends it to node B.
    let mut moved = b.connect().await;
    let ok = moved.subscribe_presence("presence-room", "mover").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    // Node A finishes its drain and exits (its pending leave is written then)...
    let status = eventually(Duration::from_secs(12), "node A to exit", || {
        let s = a.child_try_wait();
        async move { s }
    })
    .await;
    assert_eq!(status, Some(0));
    // ... and the watcher saw neither member_removed nor member_added for the mover.
    let seen = watcher.roundtrip().await;
    assert!(seen.is_empty(), "presence flapped: {seen:?}");
    let (_, users) = b.api().call("GET", "/channels/presence-room/users", None, &[]).await;
    assert_eq!(users["users"], serde_json::json!([{"id":"mover"},{"id":"watcher"}]));
}

fn rtc_drain(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rtc"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RTC_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("drain").args(args).arg("--token").arg(ADMIN_TOKEN).output().unwrap()
}

#[tokio::test]
async fn rtc_drain_finds_the_node_in_the_registry_and_waits_for_it() {
    let redis = Redis::start().await;
    let (mut a, b) = joined_pair(&redis, "cli", ["node-a", "node-b"], &one_app(""), DRAIN_FLAGS).await;
    let mut c = a.connect().await;
    let url = redis.url();

    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || rtc_drain(&["nobody", "--redis-url", &url, "--cluster-name", "cli"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown node 'nobody'"));

    let drain = tokio::task::spawn_blocking({
        let url = url.clone();
        move || rtc_drain(&["node-a", "--redis-url", &url, "--cluster-name", "cli", "--timeout", "30"])
    });
    assert_eq!(c.expect_close().await, Some(4200));
    let out = drain.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("node-a drained"), "{stdout}");
    assert_eq!(a.child_try_wait(), Some(Some(0)));

    // A second drain of a node that is already draining is refused (exit 3). Node B is
    // the last serving node now: the capacity gate needs --force to let it drain at all.
    let b_url = format!("http://{}", b.addr);
    let out = tokio::task::spawn_blocking({
        let b_url = b_url.clone();
        move || rtc_drain(&[&b_url, "--no-wait", "--force"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tokio::task::spawn_blocking(move || rtc_drain(&[&b_url, "--no-wait", "--force"])).await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already draining"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A standalone `rtc serve` child with one app, its stderr on a pipe the test holds.
struct Standalone {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    stderr: Option<std::process::ChildStderr>,
    _config: tempfile::NamedTempFile,
}

impl Standalone {
    fn start(extra: &[&str]) -> Standalone {
        Standalone::start_logging(extra, "info")
    }

    /// [`Standalone::start`] with this `RUST_LOG`.
    fn start_logging(extra: &[&str], rust_log: &str) -> Standalone {
        use std::process::{Command, Stdio};
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(&mut file, one_app("").as_bytes()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtc"));
        let mut child = process::scrub_env(&mut cmd)
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--config"])
            .arg(file.path())
            .args(extra)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = process::http_addr(&mut child).parse().unwrap();
        let stderr = child.stderr.take();
        Standalone { child, addr, stderr, _config: file }
    }

    /// Closes the read end of the node's stderr: every later log write gets EPIPE.
    fn close_stderr_reader(&mut self) {
        drop(self.stderr.take());
    }

    fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; `None` if it is still running.
    async fn exit_within(&mut self, within: Duration) -> Option<Option<i32>> {
        process::exit_within(&mut self.child, within).await
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sigterm_stops_a_node_whose_stderr_reader_is_gone_within_the_drain_timeout() {
    let mut node = Standalone::start(&["--pre-drain-delay", "1", "--drain-window", "1", "--drain-timeout", "6"]);
    let mut c = Client::connect(&format!("ws://{}/app/{KEY}?protocol=7&client=js&version=8.4.0", node.addr)).await;
    c.subscribe("feed").await;
    node.close_stderr_reader();
    node.signal("-TERM");
    let code = loop {
        match c.next_within(Duration::from_secs(10)).await {
            Some(Seen::Closed(code)) => break code,
            Some(Seen::Event(_)) => continue,
            None => panic!("no 4200 within the drain"),
        }
    };
    assert_eq!(code, Some(4200));
    // Drain timeout 6 s, plus room for a loaded machine.
    let status = node.exit_within(Duration::from_secs(20)).await;
    assert_eq!(status, Some(Some(0)), "the node must exit after its drain even with no one reading its logs");
}

#[tokio::test]
async fn a_second_signal_stops_a_draining_node_at_once_even_with_stderr_gone() {
    // A drain that would last a minute: only the second signal can end it in time.
    let mut node = Standalone::start(&["--pre-drain-delay", "60", "--drain-window", "1", "--drain-timeout", "90"]);
    let _c = Client::connect(&format!("ws://{}/app/{KEY}?protocol=7&client=js&version=8.4.0", node.addr)).await;
    node.close_stderr_reader();
    node.signal("-INT");
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    eventually(Duration::from_secs(10), "the drain to start", || async {
        let r = http.get(format!("http://{}/up", node.addr)).send().await.ok()?;
        (r.status() == 503).then_some(())
    })
    .await;
    node.signal("-TERM");
    let status = node.exit_within(Duration::from_secs(15)).await;
    assert!(status.is_some(), "a second signal must stop the node at once");
}

#[tokio::test]
async fn ctrl_c_with_no_sockets_exits_without_the_pre_drain_delay() {
    let mut node = Standalone::start(&["--pre-drain-delay", "60", "--drain-window", "1", "--drain-timeout", "90"]);
    node.signal("-INT");
    let status = node.exit_within(Duration::from_secs(20)).await;
    assert_eq!(status, Some(Some(0)), "no socket to hand over: exit at once, not after the 60 s pre-drain delay");
}

/// A metric's value in a Prometheus text exposition.
fn metric_value(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok()).map(|v| v as u64)
}

#[tokio::test]
async fn metrics_show_the_drain_counters_moving_during_a_drain() {
    const SOCKETS: usize = 20;
    let s = TestServer::start(&one_app("")).await;
    let mut clients = Vec::new();
    for _ in 0..SOCKETS {
        clients.push(s.connect().await);
    }
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let metrics_url = format!("http://{}/metrics", s.addr);
    let scrape = || {
        let http = http.clone();
        let url = metrics_url.clone();
        async move { http.get(url).bearer_auth(ADMIN_TOKEN).send().await.ok()?.text().await.ok() }
    };
    let text = scrape().await.unwrap();
    assert_eq!(metric_value(&text, "rtc_drain_hints_total"), Some(0), "{text}");
    assert_eq!(metric_value(&text, "rtc_drain_forced_total"), Some(0), "{text}");

    // Two hints a second and a deadline before all twenty are hinted: some are forced.
    let r = http
        .post(format!("http://{}/admin/drain", s.addr))
        .bearer_auth(ADMIN_TOKEN)
        .body(r#"{"pre_delay_secs": 0, "window_secs": 1, "rate": 2, "timeout_secs": 4}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let first = eventually(Duration::from_secs(10), "the first hints in /metrics", || async {
        metric_value(&scrape().await?, "rtc_drain_hints_total").filter(|&n| n >= 1)
    })
    .await;
    eventually(Duration::from_secs(10), "more hints in /metrics while draining", || async {
        metric_value(&scrape().await?, "rtc_drain_hints_total").filter(|&n| n > first)
    })
    .await;
    // At the deadline the rest are closed at once and counted as forced.
    tokio::time::timeout(Duration::from_secs(30), s.node.shutdown.cancelled()).await.expect("the drain ends");
    let text = s.node.metrics.render();
    let forced = metric_value(&text, "rtc_drain_forced_total").unwrap();
    let hints = metric_value(&text, "rtc_drain_hints_total").unwrap();
    assert!(forced >= 1 && hints >= 2 && hints < SOCKETS as u64, "hints {hints}, forced {forced}\n{text}");
    drop(clients);
    s.stop().await;
}

#[tokio::test]
async fn a_stuck_log_reader_never_blocks_the_node() {
    // stderr is a pipe nobody reads: once its buffer (64 KiB) is full every write to it
    // would block. Trace logging writes about 200 bytes per request.
    let mut node =
        Standalone::start_logging(&["--pre-drain-delay", "0", "--drain-window", "1", "--drain-timeout", "10"], "trace");
    // A new connection per request: the I/O driver logs each one at trace.
    let http = reqwest::Client::builder().timeout(WAIT).pool_max_idle_per_host(0).build().unwrap();
    for i in 0..6000 {
        let r = http.get(format!("http://{}/up", node.addr)).send().await;
        assert!(r.is_ok_and(|r| r.status() == 200), "request {i} to /up failed with the log pipe full");
    }
    let text = process::metrics_text(&http, &format!("http://{}", node.addr)).await;
    let dropped = text.lines().find_map(|l| l.strip_prefix("rtc_log_lines_dropped_total ")).unwrap_or("0");
    assert!(dropped.trim().parse::<f64>().unwrap() > 0.0, "lines that could not be written are counted:\n{text}");
    node.signal("-TERM");
    assert_eq!(node.exit_within(Duration::from_secs(20)).await, Some(Some(0)));
    assert!(node.stderr.is_some(), "the reader stayed open (stuck) throughout");
}
