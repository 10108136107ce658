//! TLS on the listener (issue 7): wss:// and https:// on the one port, handshakes that
//! cannot stall each other, and config errors that exit 2 naming the field and path.
//! Certificates are made per test with the openssl CLI (a CA and a leaf it signs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use axum::serve::Listener;
use common::*;
use rtc::server::tls::{server_config, TlsListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------
// serving

#[tokio::test]
async fn wss_client_gets_connection_established_and_an_event_published_over_https() {
    let certs = TestCerts::generate();
    let server = TestServer::start(&one_app_tls(&certs, "")).await;
    let connector = tls_connector(&certs.ca_pem());

    let mut client = TlsClient::connect(server.addr, &connector).await;
    assert!(!client.socket_id.is_empty());
    let (_, conn) = client.ws.get_ref().get_ref();
    assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]), "ALPN http/1.1");
    client.subscribe("orders").await;

    let api = Api::new_tls(server.addr, &certs.ca_pem());
    let (status, body) = api.trigger(&["orders"], "shipped", "{\"id\":7}").await;
    assert_eq!(status, 200, "{body}");
    let ev = client.expect_event("shipped").await;
    assert_eq!(ev["channel"], "orders");
    assert_eq!(ev["data"], "{\"id\":7}");

    let (status, body) = api.call("GET", "/channels", None, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["channels"].get("orders").is_some(), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_fails_cleanly_and_the_server_keeps_serving() {
    let certs = TestCerts::generate();
    let server = TestServer::start(&one_app_tls(&certs, "")).await;

    // A plain HTTP request: the server must close the connection, never answer in HTTP.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /up HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server did not close a plain-HTTP connection within {WAIT:?}");
    assert!(!got.starts_with(b"HTTP/"), "answered plain HTTP on the TLS port: {:?}", String::from_utf8_lossy(&got));

    // A plain ws:// client fails too, and quickly.
    let plain = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(server.ws_url(KEY))).await;
    assert!(matches!(plain, Ok(Err(_))), "plain ws:// to the TLS port must fail, got {:?}", plain.map(|r| r.is_ok()));

    // The node still serves TLS clients.
    let connector = tls_connector(&certs.ca_pem());
    let mut client = TlsClient::connect(server.addr, &connector).await;
    client.subscribe("still-up").await;
    let (status, _) = Api::new_tls(server.addr, &certs.ca_pem()).trigger(&["still-up"], "ping", "{}").await;
    assert_eq!(status, 200);
    client.expect_event("ping").await;

    // The failed handshakes are counted in the metrics, beside the completed ones.
    let http = reqwest::Client::builder()
        .timeout(WAIT)
        .add_root_certificate(reqwest::Certificate::from_pem(&certs.ca_pem()).unwrap())
        .build()
        .unwrap();
    let metrics = process::metrics_text(&http, &format!("https://127.0.0.1:{}", server.addr.port())).await;
    let count = |kind: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("rtc_tls_handshakes_total{{kind=\"{kind}\"}} ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(count("failed") >= 2, "plain HTTP and plain ws:// are failed handshakes:\n{metrics}");
    assert!(count("completed") >= 2, "the wss:// client and the https API calls:\n{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn silent_and_stalled_clients_do_not_block_another_clients_handshake() {
    let certs = TestCerts::generate();
    let server = TestServer::start(&one_app_tls(&certs, "")).await;
    // Clients that connect and never finish a handshake. The handshake timeout is 10 s;
    // if handshakes ran one after another inside accept(), the client below would wait
    // that long and miss its 5 s bound.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // One that starts a TLS record (ClientHello header, 200 bytes announced) and stops.
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01]).await.unwrap();
    stalled.push(partial);

    let connector = tls_connector(&certs.ca_pem());
    let started = tokio::time::Instant::now();
    let mut client = TlsClient::connect(server.addr, &connector).await;
    assert!(started.elapsed() < WAIT, "took {:?}", started.elapsed());
    client.subscribe("fine").await;
    drop(stalled);
    server.stop().await;
}

/// The listener on its own: a short handshake timeout, counters, the peer address, and
/// accept() carrying on after failures.
#[tokio::test]
async fn the_listener_times_out_silent_clients_counts_failures_and_keeps_accepting() {
    let certs = TestCerts::generate();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let config = server_config(&certs.cert, &certs.key).unwrap();
    let mut listener = TlsListener::new(tcp, config).with_handshake_timeout(Duration::from_millis(300));
    assert_eq!(Listener::local_addr(&listener).unwrap(), addr);
    let stats = listener.stats();
    let (tx, mut accepted) = tokio::sync::mpsc::channel(4);
    let serving = tokio::spawn(async move {
        loop {
            let (io, peer) = listener.accept().await;
            if tx.send((io, peer)).await.is_err() {
                return;
            }
        }
    });

    // Silent: dropped by the server after the timeout (EOF here), counted as timed out.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, silent.read(&mut buf)).await.expect("the server drops a silent client");
    assert!(matches!(n, Ok(0) | Err(_)), "expected EOF, got {n:?}");
    // Not TLS: counted as failed.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, garbage.read_to_end(&mut rest)).await.expect("closed").ok();

    // A real client is still accepted, with its own address as the peer.
    let connector = tls_connector(&certs.ca_pem());
    let client = tls_connect(addr, &connector).await.expect("handshake");
    let client_addr = client.get_ref().0.local_addr().unwrap();
    let (io, peer) = tokio::time::timeout(WAIT, accepted.recv()).await.expect("accepted in time").unwrap();
    assert_eq!(peer, client_addr);
    assert_eq!(io.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    // The counters are bumped by the handshake tasks; poll them (bounded).
    let deadline = tokio::time::Instant::now() + WAIT;
    while (stats.timed_out(), stats.failed(), stats.completed()) != (1, 1, 1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed_out {} failed {} completed {}",
            stats.timed_out(),
            stats.failed(),
            stats.completed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    serving.abort();
}

/// As tests/server_faults.rs, over TLS: with 64 files, accept errors (EMFILE) are logged
/// and backed off from, the node does not crash and takes clients again afterwards.
#[tokio::test]
async fn out_of_file_descriptors_over_tls_refuses_cleanly_and_recovers() {
    let certs = TestCerts::generate();
    let mut node = LimitedNode::start(&one_app_tls(&certs, ""), 64);
    assert!(node.url.starts_with("https://"), "{}", node.url);
    let addr = node.addr();
    let connector = tls_connector(&certs.ca_pem());
    let mut attempts = Vec::new();
    for _ in 0..120 {
        let connector = connector.clone();
        attempts.push(tokio::spawn(async move {
            let tls = tokio::time::timeout(Duration::from_secs(3), tls_connect(addr, &connector)).await.ok()?.ok()?;
            let url = format!("wss://localhost:{}/app/{KEY}?protocol=7", addr.port());
            let r = tokio::time::timeout(Duration::from_secs(3), tokio_tungstenite::client_async(url, tls)).await;
            r.ok()?.ok().map(|(ws, _)| ws)
        }));
    }
    let mut held = Vec::new();
    for a in attempts {
        if let Some(ws) = a.await.unwrap() {
            held.push(ws);
        }
    }
    assert!(!held.is_empty(), "some sockets got through");
    assert!(held.len() < 120, "the limit was not reached ({} sockets)", held.len());
    assert!(node.running(), "the node must not crash");
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(3), async {
            let tls = tls_connect(addr, &connector).await.ok()?;
            let url = format!("wss://localhost:{}/app/{KEY}?protocol=7", addr.port());
            tokio_tungstenite::client_async(url, tls).await.ok()
        })
        .await;
        if let Ok(Some((ws, _))) = attempt {
            let mut c = TlsClient { ws, socket_id: String::new() };
            c.expect_event("pusher:connection_established").await;
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the node did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(node.running());
}

// ---------------------------------------------------------------------------
// configuration, through the binary as a user runs it

fn rtc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rtc"));
    process::scrub_env(&mut c);
    // `rtc serve` reads ./rtc.toml when present: keep a stray one out of the test.
    c.current_dir(std::env::temp_dir());
    c.args(["serve", "--host", "127.0.0.1", "--port", "0"]);
    c
}

/// Runs `rtc serve` expecting a config error: exit code 2; returns stderr.
fn config_error(cmd: &mut Command) -> String {
    let out = cmd.stdout(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "expected exit 2, stderr:\n{err}");
    err
}

/// Starts `rtc serve`, returns the child and its "rtc listening on" line (bounded).
// The caller owns the child and waits for it.
#[allow(clippy::zombie_processes)]
fn start(cmd: &mut Command) -> (std::process::Child, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let rx = process::lines_of(child.stdout.take().unwrap());
    let line = process::wait_line(&rx, process::BANNER_WAIT, "banner", |line| {
        line.starts_with("rtc listening on ").then(|| line.to_string())
    });
    (child, line)
}

#[test]
fn cert_without_key_and_key_without_cert_exit_2_naming_the_missing_field() {
    let certs = TestCerts::generate();
    let err = config_error(rtc().arg("--tls-cert").arg(&certs.cert));
    assert!(err.contains("server.tls_key: is required when server.tls_cert is set"), "{err}");

    let err = config_error(rtc().env("RTC_TLS_KEY", &certs.key));
    assert!(err.contains("server.tls_cert: is required when server.tls_key is set"), "{err}");

    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    let toml = format!("[server]\ntls_cert = \"{}\"\n", certs.cert.display());
    std::io::Write::write_all(&mut f, toml.as_bytes()).unwrap();
    let err = config_error(rtc().arg("--config").arg(f.path()));
    assert!(err.contains("server.tls_key"), "{err}");
}

#[test]
fn unreadable_and_garbage_pem_files_exit_2_naming_the_path_without_echoing_the_key() {
    let certs = TestCerts::generate();
    let d = certs.dir.path();

    let err = config_error(rtc().args(["--tls-cert", "/nonexistent/cert.pem"]).arg("--tls-key").arg(&certs.key));
    assert!(err.contains("server.tls_cert: cannot read '/nonexistent/cert.pem'"), "{err}");
    let err = config_error(rtc().arg("--tls-cert").arg(&certs.cert).args(["--tls-key", "/nonexistent/key.pem"]));
    assert!(err.contains("server.tls_key: cannot read '/nonexistent/key.pem'"), "{err}");

    // No certificate in the cert file (here: the key).
    let err = config_error(rtc().arg("--tls-cert").arg(&certs.key).arg("--tls-key").arg(&certs.key));
    assert!(err.contains(&format!("server.tls_cert: '{}' holds no PEM certificate", certs.key.display())), "{err}");

    // No private key in the key file (here: the certificate).
    let err = config_error(rtc().arg("--tls-cert").arg(&certs.cert).arg("--tls-key").arg(&certs.cert));
    assert!(err.contains(&format!("server.tls_key: '{}' holds no PEM private key", certs.cert.display())), "{err}");

    // A key section that is not base64: reported, its contents never printed.
    let bad_key = d.join("bad.key");
    std::fs::write(&bad_key, "-----BEGIN PRIVATE KEY-----\nSEKRIT*key*material\n-----END PRIVATE KEY-----\n").unwrap();
    let err = config_error(rtc().arg("--tls-cert").arg(&certs.cert).arg("--tls-key").arg(&bad_key));
    assert!(err.contains(&format!("server.tls_key: '{}'", bad_key.display())), "{err}");
    assert!(!err.contains("SEKRIT"), "key contents must not be printed: {err}");

    // A well-formed key that is not the certificate's.
    let other = TestCerts::generate();
    let err = config_error(rtc().arg("--tls-cert").arg(&certs.cert).arg("--tls-key").arg(&other.key));
    assert!(err.contains("server.tls_key") && err.contains("does not match the certificate"), "{err}");
    let key_body = std::fs::read_to_string(&other.key).unwrap();
    let key_line = key_body.lines().nth(1).unwrap();
    assert!(!err.contains(key_line), "key contents must not be printed: {err}");

    // A garbage file through the config file is named the same way.
    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    let toml = format!("[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n", garbage.display(), certs.key.display());
    std::io::Write::write_all(&mut f, toml.as_bytes()).unwrap();
    let err = config_error(rtc().arg("--config").arg(f.path()));
    assert!(err.contains(&format!("server.tls_cert: '{}' holds no PEM certificate", garbage.display())), "{err}");
}

#[test]
fn flags_beat_rtc_env_beat_the_file_and_the_banner_says_https() {
    let certs = TestCerts::generate();
    // The file's paths are bad, RTC_TLS_* are good: the environment wins.
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(
        &mut f,
        b"[server]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n",
    )
    .unwrap();
    let (mut child, listen) =
        start(rtc().arg("--config").arg(f.path()).env("RTC_TLS_CERT", &certs.cert).env("RTC_TLS_KEY", &certs.key));
    assert!(listen.starts_with("rtc listening on https://127.0.0.1:"), "{listen}");
    child.kill().unwrap();
    child.wait().unwrap();

    // RTC_TLS_* bad, flags good: the flags win.
    let (mut child, listen) = start(
        rtc()
            .env("RTC_TLS_CERT", "/nonexistent/c.pem")
            .env("RTC_TLS_KEY", "/nonexistent/k.pem")
            .arg("--tls-cert")
            .arg(&certs.cert)
            .arg("--tls-key")
            .arg(&certs.key),
    );
    assert!(listen.starts_with("rtc listening on https://127.0.0.1:"), "{listen}");
    let port: u16 = listen["rtc listening on https://127.0.0.1:".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // And it really serves TLS there.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let connector = tls_connector(&certs.ca_pem());
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut tls = tls_connect(addr, &connector).await.expect("TLS handshake");
        tls.write_all(b"GET /up HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(WAIT, tls.read_to_end(&mut got)).await.expect("response in time").ok();
        assert!(got.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&got));
    });
    child.kill().unwrap();
    child.wait().unwrap();

    // Without TLS the banner stays http://.
    let (mut child, listen) = start(&mut rtc());
    assert!(listen.starts_with("rtc listening on http://127.0.0.1:"), "{listen}");
    child.kill().unwrap();
    child.wait().unwrap();
}
