//! The wire, on loopback only: a fake node's admin API on `127.0.0.1:0`, and the real
//! Redis on this machine (skipped, loudly, when there is none).

use std::io::{Read, Write};
use std::time::Duration;

use rtc_console::collect::{Collector, Source};
use rtc_console::model::{self, NodeStats, PubSubStats};
use rtc_console::snapshot::NodeProblem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::fixtures;

const TOKEN: &str = "admin-secret";

/// Serves `/admin/stats` (bearer-checked) and `/admin/drain` until the test ends.
/// Reports each request line on `seen`.
async fn fake_node(stats: NodeStats) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let body = serde_json::to_string(&stats).unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).to_string();
            let line = head.lines().next().unwrap_or_default().to_string();
            let authorized = head.lines().any(|l| l.eq_ignore_ascii_case(&format!("authorization: Bearer {TOKEN}")));
            let _ = tx.send(line.clone());
            let (status, payload) = match (authorized, line.as_str()) {
                (false, _) => ("401 Unauthorized", "{\"error\":\"Admin token required\"}".to_string()),
                (true, l) if l.starts_with("GET /admin/stats ") => ("200 OK", body.clone()),
                (true, l) if l.starts_with("POST /admin/drain ") => ("202 Accepted", "{\"draining\":true}".into()),
                _ => ("404 Not Found", "{}".into()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                payload.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    (url, rx)
}

/// A loopback port with nothing listening.
async fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

#[tokio::test]
async fn node_mode_reads_stats_with_the_bearer_token() {
    let (url, mut seen) = fake_node(fixtures::stats("edge-a", 7, 3, 4_200)).await;
    let down = closed_port().await;
    let source = Source::Nodes { urls: vec![url.clone(), down.clone()] };
    let mut c = Collector::new(&source, Some(TOKEN.into())).unwrap();
    let snap = tokio::time::timeout(Duration::from_secs(10), c.collect_once()).await.unwrap();
    assert!(snap.source_reachable());
    let a = snap.nodes.iter().find(|n| n.id == "edge-a").expect("named by its node_id");
    assert_eq!(a.stats.as_ref().unwrap().connections, 4_200);
    assert_eq!(a.url.as_deref(), Some(url.as_str()));
    let d = snap.nodes.iter().find(|n| n.id != "edge-a").unwrap();
    assert_eq!(d.problem, Some(NodeProblem::Unreachable("cannot connect".into())));
    assert_eq!(seen.recv().await.unwrap(), "GET /admin/stats HTTP/1.1");

    // The drain request goes to the same node with the same token.
    let answer = c.admin().request_drain(&url).await.unwrap();
    assert_eq!(answer, "{\"draining\":true}");
    assert_eq!(seen.recv().await.unwrap(), "POST /admin/drain HTTP/1.1");
}

#[tokio::test]
async fn wrong_token_is_reported_as_such() {
    let (url, _seen) = fake_node(fixtures::stats("edge-a", 7, 3, 4_200)).await;
    let mut c = Collector::new(&Source::Nodes { urls: vec![url] }, Some("wrong".into())).unwrap();
    let snap = tokio::time::timeout(Duration::from_secs(10), c.collect_once()).await.unwrap();
    assert!(!snap.source_reachable());
    let p = snap.nodes[0].problem.clone().unwrap();
    assert_eq!(p, NodeProblem::Unreachable("401: admin token refused (set --token or RTC_ADMIN_TOKEN)".into()));
}

#[tokio::test]
async fn the_admin_token_is_not_carried_through_a_redirect() {
    let (elsewhere, mut seen) = fake_node(fixtures::stats("edge-b", 8, 3, 1)).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut chunk = [0u8; 4096];
            let _ = sock.read(&mut chunk).await;
            let resp = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/admin/drain\r\ncontent-length: 0\r\n\r\n"
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    let c = Collector::new(&Source::Nodes { urls: vec![url.clone()] }, Some(TOKEN.into())).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), c.admin().request_drain(&url)).await.unwrap();
    assert!(answer.is_err_and(|e| e.starts_with("HTTP 307")));
    assert!(seen.try_recv().is_err(), "the redirect target was not contacted");
}

/// A blocking RESP command on a raw socket (for the deliberately slow subscriber).
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

#[tokio::test]
async fn registry_stale_nodes_and_a_filling_pubsub_buffer_against_real_redis() {
    let redis_url = std::env::var("RTC_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = match tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection()).await {
        Ok(Ok(c)) => c,
        _ => {
            eprintln!("SKIPPED: no Redis at {redis_url} (set RTC_TEST_REDIS_URL)");
            return;
        }
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let cluster = format!("console-test-{}-{nanos}", std::process::id());
    let sub_name = format!("rtc:{cluster}:node-a:sub");
    let mut a = fixtures::stats("node-a", 1, 0, 1_234);
    a.cluster = cluster.clone();
    a.pubsub = Some(PubSubStats { connected: true, client_name: sub_name.clone(), ..PubSubStats::default() });
    let set = model::registry_set_key(&cluster);
    let key_a = model::registry_key(&cluster, "node-a");
    let _: () = redis::cmd("SADD").arg(&set).arg("node-a").arg("node-b").query_async(&mut conn).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key_a)
        .arg(serde_json::to_string(&a).unwrap())
        .arg("EX")
        .arg(30)
        .query_async(&mut conn)
        .await
        .unwrap();

    // node-a's subscriber: named as a node names it, subscribed, and never reading.
    let addr = redis_url.trim_start_matches("redis://").trim_end_matches('/').to_string();
    let mut sub = std::net::TcpStream::connect(&addr).unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let channel = format!("rtc:{cluster}:bus");
    sub.write_all(&resp(&["CLIENT", "SETNAME", &sub_name])).unwrap();
    sub.write_all(&resp(&["SUBSCRIBE", &channel])).unwrap();
    let mut ack = [0u8; 5];
    sub.read_exact(&mut ack).unwrap(); // "+OK\r\n" from SETNAME: both commands are in.
    let mut reader =
        Collector::new(&Source::Cluster { url: redis_url.clone(), cluster: cluster.clone() }, None).unwrap();
    // Wait (bounded) for the subscription to register.
    let mut before = None;
    for _ in 0..50 {
        let snap = reader.collect_once().await;
        let n = snap.nodes.iter().find(|n| n.id == "node-a").cloned().unwrap();
        if n.pubsub_omem.is_some() {
            before = n.pubsub_omem;
            break;
        }
        tokio::task::yield_now().await;
    }
    let before = before.expect("the named subscriber shows in CLIENT LIST");

    // 24 MiB published to a reader that never reads: past the kernel's socket buffers,
    // the rest waits in Redis's output buffer for that client (below the 32 MiB limit).
    let payload = "x".repeat(256 * 1024);
    for _ in 0..96 {
        let _: i64 = redis::cmd("PUBLISH").arg(&channel).arg(&payload).query_async(&mut conn).await.unwrap();
    }
    let snap = reader.collect_once().await;
    let redis_sample = snap.redis.clone().unwrap();
    assert_eq!(redis_sample.error, None);
    assert!(redis_sample.pubsub_clients >= 1);
    assert!(redis_sample.used_memory > 0);
    let node_a = snap.nodes.iter().find(|n| n.id == "node-a").unwrap();
    assert_eq!(node_a.stats.as_ref().unwrap().connections, 1_234);
    let after = node_a.pubsub_omem.unwrap();
    assert!(after > before + 1024 * 1024, "omem {before} → {after}");
    // node-b is registered but has no key: stale.
    let node_b = snap.nodes.iter().find(|n| n.id == "node-b").unwrap();
    assert_eq!(node_b.problem, Some(NodeProblem::Expired));

    drop(sub);
    let _: () = redis::cmd("DEL").arg(&set).arg(&key_a).query_async(&mut conn).await.unwrap();
}
