//! The Redis Cluster engine's subscription window, with real processes: a node that gets
//! its first local subscriber in a channel `SSUBSCRIBE`s to the channel's shard one round
//! trip later. A client that saw `subscription_succeeded` must still get every event
//! published after that on any node, so the node holds the new subscriber's frames until
//! its shard subscription is acknowledged.
//!
//! To open the window every time, each Redis Cluster master announces a proxy in front of
//! it (tests/common/proxy.rs), so the nodes reach the masters through the proxies, and
//! the proxies delay whatever node B sends that holds an `SSUBSCRIBE`: by 1.5 s (past
//! the 1 s the hold once lasted, within its 5 s bound now), and by 8 s (past the bound:
//! the subscription is refused, never confirmed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::*;
use common::proxy::{self, Mode, Target};
use common::redis_cluster::RedisCluster;
use common::*;

/// A 3-master Redis Cluster whose masters are reached through proxies that delay, by
/// `delay`, what the target sends that holds an `SSUBSCRIBE`; two joined nodes A and B,
/// B the target from now on.
async fn cluster_with_late_ssubscribes(delay: Duration) -> (RedisCluster, Node, Node) {
    let target = Target::default();
    // The proxies' ports first, so the cluster's (and their bus ports) avoid them.
    let listeners: Vec<_> = (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let ports = RedisCluster::free_ports(3);
    let mut announce = Vec::new();
    for (listener, &port) in listeners.into_iter().zip(&ports) {
        announce.push(listener.local_addr().unwrap().port());
        proxy::spawn(listener, port, Mode::DelayCommand(delay, b"SSUBSCRIBE"), target.clone(), false);
    }
    let redis = RedisCluster::start_announcing(3, 0, ports, announce).await;
    let url = redis.url();
    let a = Node::start(&url, "w", "node-a", &one_app(""));
    let b = Node::start(&url, "w", "node-b", &one_app(""));
    wait_joined(&[&a, &b]).await;
    target.set(b.pid());
    (redis, a, b)
}

#[tokio::test]
async fn an_event_published_right_after_subscription_succeeded_reaches_a_node_s_first_subscriber() {
    // Node B's SSUBSCRIBEs are acknowledged 1.5 s late (a loaded machine's worst seen).
    let (_redis, a, b) = cluster_with_late_ssubscribes(Duration::from_millis(1500)).await;
    // Several channels, each the first on node B: each one's SSUBSCRIBE is delayed.
    for i in 0..3 {
        let channel = format!("window-{i}");
        let mut client = b.connect().await;
        // subscription_succeeded is the first frame of the channel the client gets.
        client.subscribe_with(&channel, None, None).await;
        let first = client.next_event().await;
        assert_eq!(first["event"], "pusher_internal:subscription_succeeded", "{first}");
        // Published on the other node the moment the client knows it is subscribed.
        let (status, _) = a.api().trigger(&[&channel], "right-after", &i.to_string()).await;
        assert_eq!(status, 200);
        let got = client.expect_event("right-after").await;
        assert_eq!(got["channel"], channel.as_str());
        assert_eq!(got["data"], i.to_string());
    }
    // A presence channel's member list (read from the shared state over another
    // connection, not delayed) is held the same way.
    for i in 0..2 {
        let channel = format!("presence-window-{i}");
        let mut client = b.connect().await;
        let ok = client.subscribe_presence(&channel, "u1").await;
        assert_eq!(ok["channel"], channel.as_str());
        let (status, _) = a.api().trigger(&[&channel], "right-after", &i.to_string()).await;
        assert_eq!(status, 200);
        assert_eq!(client.expect_event("right-after").await["data"], i.to_string());
    }
}

#[tokio::test]
async fn a_subscription_the_cluster_never_starts_sending_is_refused_not_confirmed() {
    // Node B's SSUBSCRIBEs are acknowledged only after 8 s, past the node's 5 s bound.
    let (_redis, a, b) = cluster_with_late_ssubscribes(Duration::from_secs(8)).await;
    let mut client = b.connect().await;
    client.subscribe_with("never-sent", None, None).await;
    // Published meanwhile on the other node: this socket would never get it.
    let (status, _) = a.api().trigger(&["never-sent"], "missed", "1").await;
    assert_eq!(status, 200);
    // The first and only frame of the channel: a subscription error, no success.
    match client.next_within(Duration::from_secs(10)).await {
        Some(Seen::Event(e)) => {
            assert_eq!(e["event"], "pusher:subscription_error", "{e}");
            assert_eq!(e["channel"], "never-sent", "{e}");
            let data: serde_json::Value = serde_json::from_str(e["data"].as_str().unwrap()).unwrap();
            assert_eq!(data["status"], 503, "{e}");
        }
        other => panic!("expected pusher:subscription_error, got {other:?}"),
    }
    // The socket stays open and answered. (B reports itself degraded meanwhile: its
    // subscriber connection times out on the SSUBSCRIBE and is rebuilt.)
    client.send_json(serde_json::json!({"event": "pusher:ping", "data": {}})).await;
    client.expect_event("pusher:pong").await;
    assert_ne!(b.stats().await["state"], "serving");
}
