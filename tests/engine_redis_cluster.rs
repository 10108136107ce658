//! The Redis Cluster engine (`redis-cluster://`) with real processes: a Redis Cluster
//! started on free ports (tests/common/redis_cluster.rs) and rtc nodes as child
//! processes. Sharded pub/sub: a node receives only the channels it has subscribers in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::*;
use common::redis_cluster::RedisCluster;
use common::*;
use serde_json::json;

/// The shard channel of the test app's `channel` in cluster `t`.
fn shard(channel: &str) -> String {
    format!("rtc:bus:t:{{{APP_ID}:{channel}}}")
}

/// Waits until `n` nodes have subscribed to the shard channel of `channel` (a node
/// subscribes one round trip after its first local subscriber).
async fn subscribed(redis: &RedisCluster, channel: &str, n: u64) {
    let name = shard(channel);
    eventually(Duration::from_secs(10), "the nodes' shard subscriptions", || async {
        (redis.shard_subscribers(&name).await == n).then_some(())
    })
    .await;
}

/// Publishes from `from` until `to` gets the event (events published while the
/// engine recovers may be lost, as with one Redis).
async fn until_delivered(from: &Node, to: &mut Client, channel: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        from.api().trigger(&[channel], "after", "x").await;
        if let Some(Seen::Event(e)) = to.next_within(Duration::from_millis(300)).await {
            if e["event"] == "after" {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no event across nodes after {what}");
    }
}

async fn subscription_count(node: &Node, channel: &str, n: u64) {
    eventually(Duration::from_secs(15), "the cluster-wide subscription count", || async {
        let (_, v) =
            node.api().call("GET", &format!("/channels/{channel}"), None, &[("info", "subscription_count")]).await;
        (v["subscription_count"] == n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn three_nodes_on_a_redis_cluster_behave_as_one_server() {
    let redis = RedisCluster::start(3, 0).await;
    let url = redis.url();
    let a = Node::start(&url, "t", "node-a", &one_app(""));
    let b = Node::start(&url, "t", "node-b", &one_app(""));
    let mut c = Node::start(&url, "t", "node-c", &one_app(""));
    wait_joined(&[&a, &b, &c]).await;

    // Cross-node delivery, exactly once; node C has no subscriber and receives nothing.
    let mut clients = [a.connect().await, b.connect().await, b.connect().await];
    for cl in clients.iter_mut() {
        cl.subscribe("news").await;
    }
    subscribed(&redis, "news", 2).await;
    for i in 0..5 {
        let (st, _) = c.api().trigger(&["news"], "tick", &i.to_string()).await;
        assert_eq!(st, 200);
    }
    for cl in clients.iter_mut() {
        for i in 0..5 {
            assert_eq!(cl.expect_event("tick").await["data"], i.to_string());
        }
    }
    a.api().trigger(&["news"], "marker", "m").await;
    for cl in clients.iter_mut() {
        assert_eq!(cl.next_event().await["event"], "marker");
    }
    let s = c.stats().await;
    assert_eq!(s["pubsub"]["received"], 0, "node C has no subscriber of news: {s}");
    assert!(s["pubsub"]["published"].as_u64().unwrap() >= 5, "{s}");

    // Counts through the HTTP API, from a node with no subscriber.
    subscription_count(&c, "news", 3).await;

    // Presence: one list, exactly one member_added for a user on two nodes.
    let ch = "presence-lobby";
    let mut alice = a.connect().await;
    alice.subscribe_presence(ch, "alice").await;
    subscribed(&redis, ch, 1).await;
    let mut bob1 = b.connect().await;
    let ok = bob1.subscribe_presence(ch, "bob").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    assert_eq!(data_of(&alice.expect_event("pusher_internal:member_added").await)["user_id"], "bob");
    subscribed(&redis, ch, 2).await;
    let mut bob2 = c.connect().await;
    let ok = bob2.subscribe_presence(ch, "bob").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    alice.assert_quiet().await;
    bob1.assert_quiet().await;
    let (_, users) = a.api().call("GET", &format!("/channels/{ch}/users"), None, &[]).await;
    assert_eq!(users["users"], json!([{"id":"alice"},{"id":"bob"}]));

    // sendToUser and terminate reach the user's node (over the control channel).
    let mut u = b.connect().await;
    u.signin(r#"{"id":"u9"}"#).await;
    u.subscribe("#server-to-user-u9").await;
    let (st, _) = a.api().trigger(&["#server-to-user-u9"], "dm", "hello").await;
    assert_eq!(st, 200);
    assert_eq!(u.expect_event("dm").await["data"], "hello");
    let (st, _) = a.api().call("POST", "/users/u9/terminate_connections", Some(json!({})), &[]).await;
    assert_eq!(st, 200);
    assert_eq!(u.expect_close().await, Some(4009));

    // A killed node is reaped: bob's socket there goes, he stays (bob1 on B); then
    // B's goes too and alice sees exactly one member_removed.
    c.kill();
    drop(bob2);
    subscription_count(&a, ch, 2).await;
    alice.assert_quiet().await;
    drop(bob1);
    let removed = alice.expect_event("pusher_internal:member_removed").await;
    assert_eq!(data_of(&removed)["user_id"], "bob");
    alice.assert_quiet().await;
    subscription_count(&a, "news", 3).await;
}

#[tokio::test]
async fn a_master_failover_and_a_restart_of_the_redis_cluster_are_recovered() {
    let mut redis = RedisCluster::start(3, 1).await;
    let url = redis.url();
    let a = Node::start(&url, "t", "node-a", &one_app(""));
    let b = Node::start(&url, "t", "node-b", &one_app(""));
    wait_joined(&[&a, &b]).await;
    let mut x = b.connect().await;
    x.subscribe("live").await;
    let mut local = a.connect().await;
    local.subscribe("live").await;
    subscribed(&redis, "live", 2).await;
    a.api().trigger(&["live"], "before", "0").await;
    assert_eq!(x.expect_event("before").await["data"], "0");
    subscription_count(&a, "live", 2).await;

    // Fail over the master of the channel's shard, then the one holding the shared
    // state and the control channel (the cluster's hash tag).
    for key in [shard("live"), "rtc:{t}:nodes".to_string()] {
        let master = redis.master_of(&key).await;
        redis.kill_port(master);
        redis.wait_ok().await;
        assert_ne!(redis.master_of(&key).await, master, "a replica took over");
        wait_joined(&[&a, &b]).await;
        until_delivered(&a, &mut x, "live", "a failover").await;
        until_delivered(&b, &mut local, "live", "a failover").await;
        subscription_count(&b, "live", 2).await;
        // The old master comes back as a replica, so the next failover has one.
        redis.restart_all().await;
    }

    // Every Redis restarts empty: the nodes resubscribe and rewrite their state.
    redis.kill_all();
    eventually(Duration::from_secs(15), "node A to report degraded", || async {
        (a.stats().await["state"] == "degraded").then_some(())
    })
    .await;
    redis.restart_all().await;
    wait_joined(&[&a, &b]).await;
    until_delivered(&a, &mut x, "live", "the restart").await;
    subscription_count(&b, "live", 2).await;
}
