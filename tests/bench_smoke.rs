//! `rtc bench` end to end, small and fast: the generator runs as a subprocess against a
//! real node and its JSON report is checked. A fanout on an in-process node, and a drain
//! of one node of a 2-node cluster (real processes) whose sockets must all come back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::{joined_pair, Redis};
use common::{one_app, TestServer, ADMIN_TOKEN, APP_ID, KEY, SECRET};
use serde_json::Value;

/// Bound on one bench run, above its own `--duration`.
const BENCH_LIMIT: Duration = Duration::from_secs(60);

/// Runs `rtc bench ARGS --json` against the test app; returns its exit code and report.
async fn bench(args: &[&str]) -> (Option<i32>, Value, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rtc"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RTC_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("bench")
        .args(args)
        .args(["--app-id", APP_ID, "--key", KEY, "--secret", SECRET, "--json"])
        .kill_on_drop(true);
    let out = tokio::time::timeout(BENCH_LIMIT, cmd.output()).await.expect("rtc bench stops by itself").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report, stderr)
}

#[tokio::test]
async fn fanout_delivers_every_event_to_every_subscriber() {
    let server = TestServer::start(&one_app("")).await;
    let url = format!("ws://{}", server.addr);
    let (code, r, stderr) =
        bench(&["fanout", "-s", "50", "-b", "5", "--hold", "2s", "--duration", "20s", "--url", &url]).await;
    assert_eq!(code, Some(0), "{stderr}\n{r:#}");
    assert_eq!(r["scenario"], "fanout");
    let c = &r["connections"];
    assert_eq!((c["requested"].as_u64(), c["ready"].as_u64(), c["failed"].as_u64()), (Some(50), Some(50), Some(0)));
    let d = &r["deliveries"];
    assert_eq!(d["lost"], 0, "{r:#}");
    assert!(d["events_published"].as_u64().unwrap() >= 5, "{r:#}");
    assert_eq!(d["received"], d["expected"]);
    assert_eq!(d["received"].as_u64(), d["events_published"].as_u64().map(|e| e * 50));
    server.stop().await;
}

#[tokio::test]
async fn drained_sockets_all_come_back_on_the_survivor() {
    let redis = Redis::start().await;
    let (a, b) = joined_pair(&redis, "bench", ["node-a", "node-b"], &one_app(""), &[]).await;
    let (url_a, url_b) = (format!("ws://{}", a.addr), format!("ws://{}", b.addr));
    let pid = a.pid().to_string();
    let (code, r, stderr) = bench(&[
        "drain",
        "-n",
        "200",
        "--rate",
        "1000",
        "--url",
        &url_a,
        "--survivor",
        &url_b,
        "--drain-with",
        "admin",
        "--admin-token",
        ADMIN_TOKEN,
        "--window",
        "1s",
        "--pre-delay",
        "0",
        "--server-pid",
        &pid,
        "--duration",
        "30s",
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}\n{r:#}");
    assert_eq!(r["connections"]["ready"], 200, "{r:#}");
    let d = &r["drain"];
    assert_eq!(d["sockets_on_a"], 200, "{d:#}");
    assert_eq!(d["node_answer"]["window_secs"], 1.0);
    // Every socket got a 4200 hint within the window, came back on B and resubscribed.
    assert_eq!((d["closes"]["hinted"].as_u64(), d["closes"]["forced"].as_u64()), (Some(200), Some(0)), "{d:#}");
    assert!(d["closes"]["last_s"].as_f64().unwrap() < 1.5, "{d:#}");
    assert_eq!(d["survivors"][0]["total"], 200, "{d:#}");
    assert_eq!(d["back"], 200, "{d:#}");
    assert_eq!(d["lost"]["total"], 0, "{d:#}");
    assert!(d["all_back_s"].as_f64().is_some(), "{d:#}");
    // Two private channels per socket, signed again after the reconnect.
    assert_eq!(d["auth_requests"]["total"], 400, "{d:#}");
    assert!(d["cluster"]["peak"]["per_second"].as_u64().unwrap() > 0);
    assert!(d["node_a_exit_s"].as_f64().is_some(), "node A exits after its drain: {d:#}");
}

#[tokio::test]
async fn drain_flags_that_cannot_work_are_usage_errors() {
    let survivor = ["--survivor", "ws://127.0.0.1:9"];
    let (code, _, stderr) = bench(&[&["drain", "--drain-with", "signal"][..], &survivor].concat()).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--server-pid"), "{stderr}");
    let (code, _, stderr) = bench(&[&["drain", "--drain-with", "admin"][..], &survivor].concat()).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--admin-token"), "{stderr}");
    // A pid above any pid_max: nothing can be signalled even if the check were missing.
    let args = ["drain", "--drain-with", "kill", "--server-pid", "4000000000", "--window", "3s"];
    let (code, _, stderr) = bench(&[&args[..], &survivor].concat()).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--window"), "{stderr}");
}

#[tokio::test]
async fn a_drain_node_a_refuses_fails_with_its_reason() {
    let server = TestServer::start(&one_app("")).await;
    let url = format!("ws://{}", server.addr);
    let args = ["drain", "-n", "20", "--url", &url, "--survivor", "ws://127.0.0.1:9", "--duration", "20s"];
    let (code, r, stderr) = bench(&[&args[..], &["--admin-token", "not-the-token-0123456789"]].concat()).await;
    assert_eq!(code, Some(1), "{stderr}\n{r:#}");
    assert!(stderr.contains("refused the admin token (HTTP 401)"), "{stderr}");
    // Nothing was drained.
    assert_eq!(server.node.health.state().as_str(), "serving");
    server.stop().await;
}
