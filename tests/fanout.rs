//! Fan-out time as the node measures it (issue 14): the histograms in `/metrics` move
//! with real broadcasts from each source, the HTTP API and bus-lag histograms move, a
//! socket that stops reading shows up as backlogged deliveries without stalling the
//! others, and `/admin/stats` carries the window percentiles and the measured line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::cluster::{eventually, joined_pair, Redis};
use common::*;
use serde_json::{json, Value};

async fn get(addr: SocketAddr, path: &str) -> String {
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .timeout(WAIT)
        .send()
        .await
        .expect("admin request")
        .text()
        .await
        .unwrap()
}

async fn metrics(addr: SocketAddr) -> String {
    get(addr, "/metrics").await
}

async fn stats(addr: SocketAddr) -> Value {
    serde_json::from_str(&get(addr, "/admin/stats").await).unwrap()
}

/// The value of one sample line (`name{labels}`), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

fn fanout_count(text: &str, source: &str) -> f64 {
    sample(text, &format!("rtc_fanout_seconds_count{{source=\"{source}\"}}"))
}

#[tokio::test]
async fn api_publishes_move_the_api_fanout_histogram_once_per_broadcast() {
    let s = TestServer::start(&one_app("")).await;
    let mut subs = Vec::new();
    for _ in 0..5 {
        let mut c = s.connect().await;
        c.subscribe("room").await;
        subs.push(c);
    }
    let before = metrics(s.addr).await;
    assert_eq!(fanout_count(&before, "api"), 0.0, "{before}");
    for i in 0..7 {
        let (st, _) = s.api().trigger(&["room"], "tick", &i.to_string()).await;
        assert_eq!(st, 200);
    }
    for c in subs.iter_mut() {
        for i in 0..7 {
            assert_eq!(c.expect_event("tick").await["data"], i.to_string());
        }
    }
    // A publish to a channel nobody here is subscribed to is no fan-out.
    assert_eq!(s.api().trigger(&["empty"], "tick", "x").await.0, 200);
    // A refused request is timed as a 4xx.
    let (st, _) = s.api().with_secret("wrong-secret").trigger(&["room"], "tick", "x").await;
    assert_eq!(st, 401);

    let after = metrics(s.addr).await;
    assert_eq!(fanout_count(&after, "api"), 7.0, "{after}");
    assert_eq!(fanout_count(&after, "client"), 0.0);
    assert_eq!(fanout_count(&after, "bus"), 0.0);
    // 8 successful publishes (7 to "room", 1 to "empty"), 1 refused.
    assert_eq!(sample(&after, "rtc_http_api_request_seconds_count{route=\"events\",status=\"2xx\"}"), 8.0, "{after}");
    assert_eq!(sample(&after, "rtc_http_api_request_seconds_count{route=\"events\",status=\"4xx\"}"), 1.0);
    assert!(sample(&after, "rtc_fanout_seconds_sum{source=\"api\"}") > 0.0);

    // The window figures: 7 broadcasts, not yet enough for the measured line.
    let st = stats(s.addr).await;
    let f = &st["fanout"];
    assert_eq!(f["broadcasts"], 7, "{st}");
    let (p50, p99) = (f["p50_ms"].as_f64().unwrap(), f["p99_ms"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= p99, "{f}");
    assert_eq!(f["budget_ms"], 50.0);
    assert!(st["measured_line"].is_null(), "{st}");

    // 13 more (20 broadcasts to 5 sockets: 100 deliveries) and the line is measured.
    for i in 0..13 {
        assert_eq!(s.api().trigger(&["room"], "more", &i.to_string()).await.0, 200);
    }
    for c in subs.iter_mut() {
        for _ in 0..13 {
            c.expect_event("more").await;
        }
    }
    let st = stats(s.addr).await;
    assert_eq!(st["fanout"]["broadcasts"], 20, "{st}");
    assert!(st["measured_line"].as_u64().unwrap() > 0, "{st}");
    assert!(st["fanout"]["cost_per_delivery_us"].as_f64().unwrap() > 0.0, "{st}");
    s.stop().await;
}

#[tokio::test]
async fn the_fanout_budget_option_reaches_the_stats() {
    let s = TestServer::start(&one_app("").replace("[server]\n", "[server]\nfanout_budget_ms = 8\n")).await;
    let st = stats(s.addr).await;
    assert_eq!(st["fanout"]["budget_ms"], 8.0, "{st}");
    assert!(st["fanout"]["p99_ms"].is_null(), "no broadcast yet: {st}");
    s.stop().await;
}

#[test]
fn an_out_of_range_fanout_budget_exits_2_naming_the_field() {
    let rtc = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rtc"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RTC_") || k.starts_with("REVERB_")) {
            c.env_remove(k);
        }
        c.args(["serve", "--host", "127.0.0.1", "--port", "0"]);
        c
    };
    let out = rtc().args(["--fanout-budget-ms", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fanout_budget_ms") && err.contains("1 to 60000"), "{err}");
    let out = rtc().env("RTC_FANOUT_BUDGET_MS", "soon").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fanout-budget-ms"));
}

#[tokio::test]
async fn a_client_event_moves_the_client_fanout_histogram() {
    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    let mut b = s.connect().await;
    a.subscribe_private("private-chat").await;
    b.subscribe_private("private-chat").await;
    for i in 0..3 {
        a.send_json(json!({"event":"client-typing","channel":"private-chat","data":{"n": i}})).await;
    }
    for _ in 0..3 {
        b.expect_event("client-typing").await;
    }
    let m = metrics(s.addr).await;
    assert_eq!(fanout_count(&m, "client"), 3.0, "{m}");
    assert_eq!(fanout_count(&m, "api"), 0.0);
    s.stop().await;
}

#[tokio::test]
async fn a_socket_that_stops_reading_shows_up_as_backlogged_and_the_others_still_get_everything() {
    let toml = one_app("max_event_data_size = 10240").replace("[server]\n", "[server]\noutbound_queue_bytes = 65536\n");
    let s = TestServer::start(&toml).await;
    let mut good = s.connect().await;
    good.subscribe("busy").await;
    let mut slow = s.connect().await;
    slow.subscribe("busy").await;
    // `slow` never reads again; publish until its queue holds a backlog.
    let payload = "x".repeat(10_000);
    let mut backlogged = 0.0;
    let mut sent = 0;
    for _ in 0..2000 {
        assert_eq!(s.api().trigger(&["busy"], "e", &payload).await.0, 200);
        sent += 1;
        // Every event reaches the reading socket, in order, whatever the slow one does.
        let e = good.expect_event("e").await;
        assert_eq!(e["data"].as_str().map(str::len), Some(10_000));
        backlogged = sample(&metrics(s.addr).await, "rtc_fanout_backlogged_total");
        if backlogged > 0.0 {
            break;
        }
    }
    assert!(backlogged > 0.0, "no backlogged delivery after {sent} publishes");
    // Each broadcast is still timed once, the slow socket notwithstanding.
    let m = metrics(s.addr).await;
    assert_eq!(fanout_count(&m, "api"), f64::from(sent), "{m}");
    let st = stats(s.addr).await;
    assert!(st["fanout"]["backlogged"].as_u64().unwrap() > 0, "{st}");
    // And the reading socket is still served promptly after the backlog.
    assert_eq!(s.api().trigger(&["busy"], "after", "1").await.0, 200);
    good.expect_event("after").await;
    drop(slow);
    s.stop().await;
}

#[tokio::test]
async fn events_from_another_node_move_the_bus_fanout_and_bus_lag_histograms() {
    let redis = Redis::start().await;
    let (a, b) = joined_pair(&redis, "fan", ["node-a", "node-b"], &one_app(""), &[]).await;
    let mut on_b = b.connect().await;
    on_b.subscribe("news").await;
    for i in 0..4 {
        assert_eq!(a.api().trigger(&["news"], "n", &i.to_string()).await.0, 200);
    }
    for i in 0..4 {
        assert_eq!(on_b.expect_event("n").await["data"], i.to_string());
    }
    let mb = metrics(b.addr).await;
    assert_eq!(fanout_count(&mb, "bus"), 4.0, "{mb}");
    assert!(sample(&mb, "rtc_bus_lag_seconds_count") >= 4.0, "{mb}");
    // A has no subscriber of "news": its API publishes reached nobody locally.
    let ma = metrics(a.addr).await;
    assert_eq!(fanout_count(&ma, "api"), 0.0, "{ma}");
    assert_eq!(sample(&ma, "rtc_http_api_request_seconds_count{route=\"events\",status=\"2xx\"}"), 4.0, "{ma}");
    // B's window reflects the bus broadcasts (the registry entry carries the same stats).
    let st = eventually(Duration::from_secs(10), "B's stats to show the broadcasts", || async {
        let st = b.stats().await;
        (st["fanout"]["broadcasts"] == 4).then_some(st)
    })
    .await;
    assert!(st["fanout"]["p99_ms"].as_f64().is_some(), "{st}");

    // `rtc status --json` reads B's registry entry (the same NodeStats) and carries it.
    // Each attempt broadcasts once more, so B's 10 s window is never empty.
    let mut node_b = Value::Null;
    for attempt in 0..15 {
        assert_eq!(a.api().trigger(&["news"], "n", "again").await.0, 200);
        assert_eq!(on_b.expect_event("n").await["data"], "again");
        let url = redis.url();
        let doc = tokio::task::spawn_blocking(move || status_json(&url, "fan")).await.unwrap();
        let found = doc["nodes"].as_array().and_then(|n| n.iter().find(|n| n["id"] == "node-b").cloned());
        if let Some(b) = found.filter(|b| b["fanout"]["p99_ms"].as_f64().is_some()) {
            node_b = b;
            break;
        }
        assert!(attempt < 14, "rtc status never showed B's fan-out p99: {doc}");
    }
    assert_eq!(node_b["fanout"]["budget_ms"], 50.0, "{node_b}");
    assert_eq!(node_b["fanout"]["over_budget"], false, "{node_b}");
}

fn status_json(redis_url: &str, cluster: &str) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtc"))
        .env_remove("RTC_CONFIG")
        .env_remove("RTC_ADMIN_TOKEN")
        .args(["status", "--json", "--redis-url", redis_url, "--cluster-name", cluster, "--token", ADMIN_TOKEN])
        .output()
        .expect("rtc status runs");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[tokio::test]
async fn rtc_bench_reports_the_nodes_own_fanout_beside_the_client_side_figures() {
    let server = TestServer::start(&one_app("")).await;
    let url = format!("ws://{}", server.addr);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rtc"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RTC_")) {
        cmd.env_remove(k);
    }
    cmd.args(["bench", "fanout", "-s", "20", "-b", "5", "--hold", "2s", "--duration", "20s", "--url", &url])
        .args(["--app-id", APP_ID, "--key", KEY, "--secret", SECRET, "--stats-token", ADMIN_TOKEN, "--json"])
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("bench in time").unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{}\n{r:#}", String::from_utf8_lossy(&out.stderr));
    let accepted = r["publish"]["accepted"].as_u64().unwrap();
    assert!(accepted >= 5, "{r:#}");
    let f = &r["server_fanout"];
    // Every accepted publish reached the bench's subscribers: one timed broadcast each.
    assert_eq!(f["broadcasts"].as_u64(), Some(accepted), "{r:#}");
    assert!(f["mean_ms"].as_f64().unwrap() > 0.0, "{r:#}");
    assert!(f["p99_le_ms"].as_f64().is_some(), "{r:#}");
    assert_eq!(f["budget_ms"], 50.0, "{r:#}");
    server.stop().await;
}

/// The sequence number at the start of a test event's data.
fn seq_of(e: &Value) -> u64 {
    e["data"]
        .as_str()
        .and_then(|d| d.get(..6))
        .and_then(|d| d.parse().ok())
        .expect("data starts with a sequence number")
}

fn numbered(seq: u64, padding: &str) -> String {
    format!("{seq:06}{padding}")
}

/// Frames written straight from the fan-out must never overtake frames queued behind a
/// socket that stopped reading: a reader that pauses long enough to build a backlog,
/// then resumes, gets every event exactly once and in order, and after it has caught up
/// (its queue empty, so writes are direct again) still in order. The socket that kept
/// reading got each event as it was published.
#[tokio::test]
async fn a_reader_that_pauses_then_resumes_gets_every_frame_once_in_order() {
    let toml =
        one_app("max_event_data_size = 10240").replace("[server]\n", "[server]\noutbound_queue_bytes = 4194304\n");
    let s = TestServer::start(&toml).await;
    let mut good = s.connect().await;
    good.subscribe("busy").await;
    let mut paused = s.connect().await;
    paused.subscribe("busy").await;
    let padding = "x".repeat(9_000);
    let mut seq = 0;
    let mut backlogged = false;
    // `paused` does not read: publish until its queue holds a backlog (a quarter of the
    // bound, past what the kernel buffers took).
    while seq < 3000 {
        assert_eq!(s.api().trigger(&["busy"], "e", &numbered(seq, &padding)).await.0, 200);
        assert_eq!(seq_of(&good.expect_event("e").await), seq);
        seq += 1;
        if seq % 10 == 0 && sample(&metrics(s.addr).await, "rtc_fanout_backlogged_total") > 0.0 {
            backlogged = true;
            break;
        }
    }
    assert!(backlogged, "no backlog after {seq} publishes");
    // A few more behind the backlog.
    for _ in 0..20 {
        assert_eq!(s.api().trigger(&["busy"], "e", &numbered(seq, &padding)).await.0, 200);
        assert_eq!(seq_of(&good.expect_event("e").await), seq);
        seq += 1;
    }
    // Resume: everything, once, in order.
    for want in 0..seq {
        // Read raw: a broken frame must fail here, not pass as a close.
        let e = match tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut paused.ws)).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                serde_json::from_str::<Value>(t.as_str()).expect("whole JSON frames")
            }
            other => panic!("frame {want}: {other:?}"),
        };
        assert_eq!(seq_of(&e), want);
    }
    // Caught up: new events (direct writes again) still arrive in order, nothing extra.
    for _ in 0..20 {
        assert_eq!(s.api().trigger(&["busy"], "e", &numbered(seq, "")).await.0, 200);
        assert_eq!(seq_of(&paused.expect_event("e").await), seq);
        assert_eq!(seq_of(&good.expect_event("e").await), seq);
        seq += 1;
    }
    assert!(paused.roundtrip().await.is_empty());
    assert!(good.roundtrip().await.is_empty());
    assert_eq!(s.node.metrics.slow_consumers.get(), 0);
    s.stop().await;
}

/// A socket closed as a slow consumer may be in the middle of a frame when its queue
/// overflows: what it reads after resuming is whole frames, in order with no gap, then
/// the 4100 close (or the end of the stream when the close could not be written in
/// time), never a broken frame.
#[tokio::test]
async fn a_slow_reader_past_the_bound_reads_whole_frames_in_order_then_4100() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let toml = one_app("max_event_data_size = 10240").replace("[server]\n", "[server]\noutbound_queue_bytes = 65536\n");
    let s = TestServer::start(&toml).await;
    let mut good = s.connect().await;
    good.subscribe("busy").await;
    let mut slow = s.connect().await;
    slow.subscribe("busy").await;
    let padding = "x".repeat(9_999);
    let mut seq = 0;
    while seq < 3000 && s.node.metrics.slow_consumers.get() == 0 {
        assert_eq!(s.api().trigger(&["busy"], "e", &numbered(seq, &padding)).await.0, 200);
        // The reading socket gets each event, whatever the slow one does.
        assert_eq!(seq_of(&good.expect_event("e").await), seq);
        seq += 1;
    }
    assert!(s.node.metrics.slow_consumers.get() > 0, "never closed as a slow consumer");
    let mut want = 0;
    let end = loop {
        match tokio::time::timeout(WAIT, slow.ws.next()).await.expect("the slow socket ends in time") {
            Some(Ok(Message::Text(t))) => {
                let e: Value = serde_json::from_str(t.as_str()).expect("whole JSON frames");
                assert_eq!(seq_of(&e), want, "in order, no gap");
                want += 1;
            }
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(
                tokio_tungstenite::tungstenite::Error::Io(_)
                | tokio_tungstenite::tungstenite::Error::Protocol(
                    tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ),
            ))
            | None => break None,
            Some(Err(e)) => panic!("broken stream after {want} frames: {e}"),
        }
    };
    assert!(matches!(end, Some(4100) | None), "{end:?}");
    assert!(want < seq, "some events were dropped with the queue");
    // The reading socket is still served.
    assert_eq!(s.api().trigger(&["busy"], "after", "1").await.0, 200);
    good.expect_event("after").await;
    s.stop().await;
}
