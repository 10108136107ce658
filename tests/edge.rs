//! Hostile load at the edge: slow and silent connections, floods with a bogus key,
//! sockets that flood frames or subscriptions, and the safe defaults (loopback for the
//! development app, origin patterns without a port).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Config with `server` lines in `[server]` and `app` lines in the one `[[apps]]`.
fn config(server: &str, app: &str) -> String {
    one_app(app).replace("[server]\n", &format!("[server]\n{server}\n"))
}

/// Reads until the peer closes (EOF or reset); false if it is still open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// The test process holds a thousand sockets plus the node's: raise its own soft limit.
fn raise_own_file_limit() {
    let n = rlimit::increase_nofile_limit(8192).unwrap();
    assert!(n >= 4096, "the test needs 4096 open files, the hard limit allows {n}");
}

/// Opens `n` TCP connections that never send a byte (each connect bounded).
async fn silent_connections(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await {
            held.push(s);
        }
    }
    held
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed_after_the_header_timeout() {
    let s = TestServer::start(&config("header_timeout = 1", "")).await;
    let mut partial = TcpStream::connect(s.addr).await.unwrap();
    partial.write_all(b"GET /up HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    // Generous bound: the timeout is 1 s; without one the sockets stay open forever.
    assert!(closed_within(&mut partial, Duration::from_secs(15)).await, "a half-sent head was not cut off");
    assert!(closed_within(&mut silent, Duration::from_secs(15)).await, "a silent connection was not cut off");
    // A keep-alive connection idle past the timeout is closed too, after its response.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET /up HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(15)).await, "an idle keep-alive was not closed");
    // Real clients are unaffected.
    let (st, _) = s.api().call("GET", "/channels", None, &[]).await;
    assert_eq!(st, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_request_body_that_trickles_is_cut_off_after_the_body_timeout() {
    let s = TestServer::start(&config("body_timeout = 1", "")).await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /apps/{APP_ID}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(15)).await, "a trickling body was not cut off");
    s.stop().await;
}

/// `GET /up` over a fresh connection, bounded by [`WAIT`].
async fn up(url: &str) -> u16 {
    let http = reqwest::Client::builder().timeout(WAIT).no_proxy().build().unwrap();
    http.get(format!("{url}/up")).send().await.expect("GET /up answered").status().as_u16()
}

#[tokio::test]
async fn silent_connections_past_the_file_limit_do_not_lock_out_health_checks_or_websockets() {
    raise_own_file_limit();
    // 1,024 files for the node: 1,040 silent connections used to exhaust them.
    let mut node = LimitedNode::start(&one_app(""), 1024);
    let addr = node.addr();
    let held = silent_connections(addr, 1040).await;
    assert!(held.len() >= 1000, "only {} silent connections were opened", held.len());
    assert_eq!(up(&node.url).await, 200);
    let mut c = Client::connect(&format!("ws://{addr}/app/{KEY}?protocol=7")).await;
    c.subscribe("news").await;
    // A second wave while the first is still held: still served.
    let more = silent_connections(addr, 200).await;
    assert_eq!(up(&node.url).await, 200);
    c.assert_quiet().await;
    assert!(node.running());
    drop((held, more));
}

#[tokio::test]
async fn silent_tls_connections_past_the_file_limit_do_not_lock_out_health_checks() {
    raise_own_file_limit();
    let certs = TestCerts::generate();
    let mut node = LimitedNode::start(&one_app_tls(&certs, ""), 1024);
    let addr = node.addr();
    // Connections that never start their handshake.
    let held = silent_connections(addr, 1040).await;
    assert!(held.len() >= 1000, "only {} silent connections were opened", held.len());
    let (st, v) = Api::new_tls(addr, &certs.ca_pem()).call("GET", "/channels", None, &[]).await;
    assert_eq!(st, 200, "{v}");
    let mut c = TlsClient::connect(addr, &tls_connector(&certs.ca_pem())).await;
    c.subscribe("news").await;
    assert!(node.running());
    drop(held);
}

#[tokio::test]
async fn a_connection_cap_of_its_own_keeps_the_newest_clients_served() {
    let s = TestServer::start(&config("connection_limit = 20", "")).await;
    assert_eq!(s.node.connections.cap(), Some(20));
    let held = silent_connections(s.addr, 60).await;
    assert_eq!(up(&format!("http://{}", s.addr)).await, 200);
    let mut c = s.connect().await;
    c.subscribe("news").await;
    assert!(s.node.connections.len() <= 20, "{} connections open", s.node.connections.len());
    assert!(s.node.connections.evicted() >= 40);
    drop(held);
    s.stop().await;
}

#[tokio::test]
async fn websockets_leave_part_of_the_cap_to_plain_http() {
    // A cap of 8 keeps 4 connections for plain HTTP: the fifth WebSocket gets 503.
    let s = TestServer::start(&config("connection_limit = 8", "")).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(s.connect().await);
    }
    match tokio_tungstenite::connect_async(s.ws_url(KEY)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    assert_eq!(up(&format!("http://{}", s.addr)).await, 200);
    held.pop();
    // Once a WebSocket closes, a new one is taken again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(s.ws_url(KEY)).await {
            let mut c = Client { ws, socket_id: String::new() };
            c.expect_event("pusher:connection_established").await;
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no WebSocket taken after one closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_at_once() {
    let s = TestServer::start(&config("max_connections_per_address = 5", "")).await;
    let mut held = silent_connections(s.addr, 5).await;
    // Wait until the node holds all five, so the next one is the sixth.
    let deadline = tokio::time::Instant::now() + WAIT;
    while s.node.connections.len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "the node did not take 5 connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut sixth = TcpStream::connect(s.addr).await.unwrap();
    assert!(closed_within(&mut sixth, Duration::from_secs(10)).await, "the sixth connection was kept");
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    while s.node.connections.len() >= 5 {
        assert!(tokio::time::Instant::now() < deadline, "the closed connection was not freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(up(&format!("http://{}", s.addr)).await, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_bogus_key_flood_does_not_use_up_the_new_connection_budget() {
    let s = TestServer::start(&config("max_new_connections_per_sec = 20", "")).await;
    let bogus = s.ws_url("bogus-key");
    let stop = tokio_util::sync::CancellationToken::new();
    // ~10 workers upgrading to /app/bogus-key back to back (a few hundred per second),
    // bounded in count and time.
    let mut flood = Vec::new();
    for _ in 0..10 {
        let (bogus, stop) = (bogus.clone(), stop.clone());
        flood.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.is_cancelled() && n < 2_000 {
                if let Ok(Ok((mut ws, _))) =
                    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(bogus.as_str())).await
                {
                    let _ = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut ws)).await;
                }
                n += 1;
            }
            n
        }));
    }
    // Real clients connect meanwhile, one after another (well inside 20 per second).
    for _ in 0..20 {
        let mut c = s.connect().await;
        c.subscribe("news").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let mut sent = 0;
    for f in flood {
        sent += f.await.unwrap();
    }
    assert!(sent >= 40, "the flood sent only {sent} upgrades");
    s.stop().await;
}

#[tokio::test]
async fn new_connections_over_the_per_address_rate_get_503_and_forwarded_clients_get_their_own() {
    let s = TestServer::start(&config("max_new_connections_per_address_per_sec = 3\ntrusted_proxies = []", "")).await;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        match tokio_tungstenite::connect_async(s.ws_url(KEY)).await {
            Ok((ws, _)) => held.push(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 503);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused >= 4, "refused {refused}");
    s.stop().await;

    // Behind a trusted proxy (this test is the proxy), X-Forwarded-For names the client.
    let s = TestServer::start(&config(
        "max_new_connections_per_address_per_sec = 3\ntrusted_proxies = [\"127.0.0.1\"]",
        "",
    ))
    .await;
    for i in 0..8 {
        let mut req = s.ws_url(KEY).into_client_request().unwrap();
        req.headers_mut().insert("x-forwarded-for", format!("198.51.100.{i}").parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("each forwarded client has its own budget");
        held.push(ws);
    }
    s.stop().await;
}

/// Sends `frames` as fast as the socket takes them, then reads until the close; returns
/// the `pusher:error` codes seen and the close code.
async fn flood_until_closed(c: &mut Client, frames: impl Iterator<Item = String>) -> (Vec<Option<u64>>, Option<u16>) {
    use futures_util::SinkExt;
    for f in frames {
        // The server may close mid-flood; stop sending then.
        if c.ws.feed(tokio_tungstenite::tungstenite::Message::Text(f.into())).await.is_err() {
            break;
        }
    }
    let _ = c.ws.flush().await;
    let mut errors = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next_within(left).await {
            Some(Seen::Event(v)) if v["event"] == "pusher:error" => errors.push(data_of(&v)["code"].as_u64()),
            Some(Seen::Event(_)) => {}
            Some(Seen::Closed(code)) => return (errors, code),
            None => panic!("not closed within 20 s; errors so far {errors:?}"),
        }
    }
}

#[tokio::test]
async fn a_socket_churning_subscriptions_gets_4301_then_a_4100_close() {
    let s = TestServer::start(&one_app("")).await;
    let mut c = s.connect().await;
    let frames = (0..3_000).map(|i| {
        let ev = if i % 2 == 0 { "pusher:subscribe" } else { "pusher:unsubscribe" };
        json!({"event": ev, "data": {"channel": format!("churn-{}", i % 50)}}).to_string()
    });
    let (errors, close) = flood_until_closed(&mut c, frames).await;
    assert!(errors.contains(&Some(4301)), "{errors:?}");
    let rate_errors = errors.iter().filter(|e| **e == Some(4301)).count();
    assert!(rate_errors < 50, "4301 is sent at most once a second, got {rate_errors}");
    assert_eq!(close, Some(4100));
    // Others on the node are unaffected.
    let mut other = s.connect().await;
    other.subscribe("news").await;
    s.stop().await;
}

#[tokio::test]
async fn a_socket_flooding_frames_gets_4301_then_a_4100_close() {
    let s = TestServer::start(&one_app("")).await;
    let mut c = s.connect().await;
    let frames = (0..5_000).map(|_| json!({"event":"pusher:ping","data":{}}).to_string());
    let (errors, close) = flood_until_closed(&mut c, frames).await;
    assert!(errors.contains(&Some(4301)), "{errors:?}");
    assert_eq!(close, Some(4100));
    s.stop().await;
}

#[tokio::test]
async fn a_client_subscribing_to_100_channels_at_connect_is_not_limited() {
    let s = TestServer::start(&one_app("")).await;
    let mut c = s.connect().await;
    for i in 0..100 {
        c.subscribe_with(&format!("channel-{i}"), None, None).await;
    }
    let mut ok = 0;
    while ok < 100 {
        let v = c.next_event().await;
        assert_ne!(v["event"], "pusher:error", "{v}");
        if v["event"] == "pusher_internal:subscription_succeeded" {
            ok += 1;
        }
    }
    // It can then reconnect-style unsubscribe and resubscribe a few, and ping.
    for i in 0..10 {
        c.send_json(json!({"event":"pusher:unsubscribe","data":{"channel": format!("channel-{i}")}})).await;
        c.subscribe(&format!("channel-{i}")).await;
    }
    c.assert_quiet().await;
    s.stop().await;
}

/// Connects with an `Origin` header; returns the close code, or `None` when the
/// connection was established.
async fn connect_with_origin(s: &TestServer, origin: &str) -> Option<u16> {
    let mut req = s.ws_url(KEY).into_client_request().unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req)).await.unwrap().unwrap();
    let mut c = Client { ws, socket_id: String::new() };
    match c.next_within(WAIT).await {
        Some(Seen::Event(v)) if v["event"] == "pusher:connection_established" => None,
        Some(Seen::Event(v)) if v["event"] == "pusher:error" => c.expect_close().await,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn an_origin_pattern_without_a_port_matches_any_port_and_one_with_a_port_matches_it_exactly() {
    let s = TestServer::start(&one_app("allowed_origins = [\"127.0.0.1\", \"*.example.com\"]")).await;
    assert_eq!(connect_with_origin(&s, "http://127.0.0.1:8100").await, None);
    assert_eq!(connect_with_origin(&s, "https://app.example.com:8443").await, None);
    assert_eq!(connect_with_origin(&s, "http://evil.test:8100").await, Some(4009));
    s.stop().await;
    let s = TestServer::start(&one_app("allowed_origins = [\"127.0.0.1:9999\"]")).await;
    assert_eq!(connect_with_origin(&s, "http://127.0.0.1:8100").await, Some(4009));
    assert_eq!(connect_with_origin(&s, "http://127.0.0.1:9999").await, None);
    s.stop().await;
}

/// Runs `rtc serve` with `args` and no app (the development app); returns the address
/// from its banner and the banner lines.
fn dev_node(args: &[&str]) -> (std::process::Child, String, Vec<String>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rtc"))
        .arg("serve")
        .args(["--port", "0"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let mut addr = String::new();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.strip_prefix("rtc listening on http://") {
            addr = rest.to_string();
        }
        let done = line.starts_with("open-file limit");
        banner.push(line);
        if done {
            break;
        }
    }
    (child, addr, banner)
}

#[test]
fn the_development_app_listens_on_loopback_unless_a_host_is_given() {
    let (mut child, addr, banner) = dev_node(&[]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(addr.starts_with("127.0.0.1:"), "{banner:?}");
    assert!(banner.iter().any(|l| l.contains("reachable from this machine only")), "{banner:?}");

    let (mut child, addr, banner) = dev_node(&["--host", "0.0.0.0"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(addr.starts_with("0.0.0.0:"), "{banner:?}");
    assert!(!banner.iter().any(|l| l.contains("reachable from this machine only")), "{banner:?}");
}

/// The kernel's cap on any listen backlog.
fn somaxconn() -> usize {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(4096)
}

/// Connections the kernel completes for a node that accepts none (its process stopped):
/// exactly what its accept queue holds. A reconnect wave of 2,000 sockets in a second
/// must fit it, or the overflow's SYNs are dropped and retried a second later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accept_queue_holds_a_reconnect_wave_while_the_node_is_not_accepting() {
    raise_own_file_limit();
    let wave = 2_000.min(somaxconn() - 1);
    let (mut child, addr, banner) = dev_node(&[]);
    assert!(!addr.is_empty(), "{banner:?}");
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill").args([sig, &pid]).status().unwrap().success();
        assert!(ok, "kill {sig} {pid}");
    };
    // Stopped: the node accepts nothing, so every completed handshake sits in its queue.
    signal("-STOP");
    let connects: Vec<_> = (0..wave)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move { tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr)).await })
        })
        .collect();
    let mut held = Vec::new();
    for c in connects {
        if let Ok(Ok(s)) = c.await.unwrap() {
            held.push(s);
        }
    }
    signal("-CONT");
    let _ = child.kill();
    let _ = child.wait();
    // tokio's default backlog (1,024) completes 1,025 of them; the rest wait for a SYN retry.
    assert_eq!(held.len(), wave, "connections completed while the node was not accepting");
}
