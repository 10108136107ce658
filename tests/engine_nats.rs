//! The NATS engine (`--bus nats://…`) with real processes: a `nats-server -js` on a free
//! port (tests/common/nats.rs) and rtc nodes as child processes. The same behaviour the
//! cluster suite asks of one Redis: cross-node delivery, one presence list with exactly
//! one `member_added`/`member_removed`, counts through the HTTP API, the app quota,
//! `sendToUser` and terminate, dead-node reaping, and recovery after the engine restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::*;
use common::nats::NatsServer;
use common::*;
use serde_json::json;

async fn three(toml: &str) -> (NatsServer, Node, Node, Node) {
    let nats = NatsServer::start().await;
    // A cluster name per test: the machine's shared server (the fallback) keeps them apart.
    let cluster = format!("t{}", nats.port);
    let a = Node::start(&nats.url(), &cluster, "node-a", toml);
    let b = Node::start(&nats.url(), &cluster, "node-b", toml);
    let c = Node::start(&nats.url(), &cluster, "node-c", toml);
    wait_joined(&[&a, &b, &c]).await;
    (nats, a, b, c)
}

#[tokio::test]
async fn publishes_presence_and_counts_are_one_server_across_three_nodes() {
    let (_nats, a, b, c) = three(&one_app("")).await;
    // Cross-node delivery, exactly once, in order.
    let mut clients = [a.connect().await, b.connect().await, c.connect().await, c.connect().await];
    for cl in clients.iter_mut() {
        cl.subscribe("news").await;
    }
    for i in 0..5 {
        let (st, _) = a.api().trigger(&["news"], "tick", &i.to_string()).await;
        assert_eq!(st, 200);
    }
    for cl in clients.iter_mut() {
        for i in 0..5 {
            assert_eq!(cl.expect_event("tick").await["data"], i.to_string());
        }
    }
    b.api().trigger(&["news"], "marker", "m").await;
    for cl in clients.iter_mut() {
        assert_eq!(cl.next_event().await["event"], "marker");
    }

    // Presence: one list, exactly one member_added when a user joins on two nodes.
    let ch = "presence-lobby";
    let mut alice = a.connect().await;
    alice.subscribe_presence(ch, "alice").await;
    let mut bob1 = b.connect().await;
    let ok = bob1.subscribe_presence(ch, "bob").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2, "{ok}");
    assert_eq!(data_of(&alice.expect_event("pusher_internal:member_added").await)["user_id"], "bob");
    let mut bob2 = c.connect().await;
    let ok = bob2.subscribe_presence(ch, "bob").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    alice.assert_quiet().await;
    bob1.assert_quiet().await;
    let (_, users) = c.api().call("GET", &format!("/channels/{ch}/users"), None, &[]).await;
    assert_eq!(users["users"], json!([{"id":"alice"},{"id":"bob"}]));

    // Counts and channel lists through the HTTP API of a node that holds none of them.
    let info = eventually(Duration::from_secs(5), "4 subscribers of news seen from B", || async {
        let (_, v) = b.api().call("GET", "/channels/news", None, &[("info", "subscription_count")]).await;
        (v["subscription_count"] == 4).then_some(v)
    })
    .await;
    assert_eq!(info["occupied"], true);
    let (_, v) =
        b.api().call("GET", "/channels", None, &[("filter_by_prefix", "presence-"), ("info", "user_count")]).await;
    assert_eq!(v, json!({"channels": {"presence-lobby": {"user_count": 2}}}));
    let (_, v) = a.api().call("GET", "/channels", None, &[]).await;
    assert_eq!(v, json!({"channels": {"news": {}, "presence-lobby": {}}}));

    // One of bob's sockets goes: still a member; the last one: exactly one removal.
    drop(bob1);
    eventually(Duration::from_secs(5), "subscription count 2", || async {
        let (_, v) = a.api().call("GET", &format!("/channels/{ch}"), None, &[("info", "subscription_count")]).await;
        (v["subscription_count"] == 2).then_some(())
    })
    .await;
    alice.assert_quiet().await;
    drop(bob2);
    assert_eq!(data_of(&alice.expect_event("pusher_internal:member_removed").await)["user_id"], "bob");
    alice.assert_quiet().await;
    let s = a.stats().await;
    assert!(s["pubsub"]["published"].as_u64().unwrap() >= 5, "{s}");
}

#[tokio::test]
async fn send_to_user_terminate_and_the_quota_reach_across_nodes() {
    let (_nats, a, b, c) = three(&one_app("max_connections = 4")).await;
    let mut u = b.connect().await;
    u.signin(r#"{"id":"u9"}"#).await;
    u.subscribe("#server-to-user-u9").await;
    let (st, _) = a.api().trigger(&["#server-to-user-u9"], "dm", "hello").await;
    assert_eq!(st, 200);
    assert_eq!(u.expect_event("dm").await["data"], "hello");
    let (st, _) = a.api().call("POST", "/users/u9/terminate_connections", Some(json!({})), &[]).await;
    assert_eq!(st, 200);
    assert_eq!(u.expect_close().await, Some(4009));
    // The app quota counts every node.
    let _x = a.connect().await;
    let _y = a.connect().await;
    let _z = b.connect().await;
    let _w = c.connect().await;
    eventually(Duration::from_secs(5), "a 4004 on node C", || async {
        let mut w = Client::connect_raw(&c.ws_url()).await;
        match w.next_event().await["event"].as_str() {
            Some("pusher:error") => Some(()),
            _ => None,
        }
    })
    .await;
}

#[tokio::test]
async fn a_killed_node_s_members_are_removed_once() {
    let (_nats, a, mut b, c) = three(&one_app("")).await;
    let mut watcher = a.connect().await;
    watcher.subscribe_presence("presence-k", "watcher").await;
    let mut doomed = b.connect().await;
    doomed.subscribe_presence("presence-k", "doomed").await;
    watcher.expect_event("pusher_internal:member_added").await;
    let mut other = c.connect().await;
    other.subscribe_presence("presence-k", "other").await;
    watcher.expect_event("pusher_internal:member_added").await;

    b.kill();
    let deadline = Duration::from_secs(15);
    let removed = match watcher.next_within(deadline).await {
        Some(Seen::Event(e)) => e,
        other => panic!("no member_removed within {deadline:?}: {other:?}"),
    };
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    assert_eq!(data_of(&removed)["user_id"], "doomed");
    assert_eq!(data_of(&other.expect_event("pusher_internal:member_removed").await)["user_id"], "doomed");
    watcher.assert_quiet().await;
    other.assert_quiet().await;
    let (_, users) = a.api().call("GET", "/channels/presence-k/users", None, &[]).await;
    assert_eq!(users["users"], json!([{"id":"other"},{"id":"watcher"}]));
}

#[tokio::test]
async fn delivery_and_shared_state_recover_after_nats_server_restarts() {
    let (mut nats, a, b, c) = three(&one_app("")).await;
    if !nats.owned {
        eprintln!("skipped: the machine's nats-server is not restarted by tests");
        return;
    }
    let mut x = b.connect().await;
    x.subscribe("live").await;
    let mut local = a.connect().await;
    local.subscribe("live").await;
    let mut p1 = a.connect().await;
    p1.subscribe_presence("presence-r", "u1").await;
    let mut p2 = c.connect().await;
    p2.subscribe_presence("presence-r", "u2").await;
    p1.expect_event("pusher_internal:member_added").await;

    nats.kill();
    let (st, _) = a.api().trigger(&["live"], "during", "1").await;
    assert_eq!(st, 200);
    assert_eq!(local.expect_event("during").await["data"], "1");
    eventually(Duration::from_secs(10), "node A to report degraded", || async {
        (a.stats().await["state"] == "degraded").then_some(())
    })
    .await;

    nats.restart().await;
    wait_joined(&[&a, &b, &c]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        a.api().trigger(&["live"], "after", "2").await;
        if let Some(Seen::Event(e)) = x.next_within(Duration::from_millis(300)).await {
            if e["event"] == "after" {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no event across nodes after the restart");
    }
    // The buckets were lost with the server: every node rewrote its share.
    eventually(Duration::from_secs(10), "counts after the restart", || async {
        let (_, v) = a.api().call("GET", "/channels/live", None, &[("info", "subscription_count")]).await;
        (v["subscription_count"] == 2).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "presence after the restart", || async {
        let (_, v) = b.api().call("GET", "/channels/presence-r/users", None, &[]).await;
        (v["users"] == json!([{"id":"u1"},{"id":"u2"}])).then_some(())
    })
    .await;
    // No member flapped: the rewrite announced nothing to the members.
    p1.assert_quiet().await;
    p2.assert_quiet().await;
}

#[tokio::test]
async fn a_node_id_used_by_a_live_node_is_refused_but_a_restart_takes_it_back() {
    let nats = NatsServer::start().await;
    let cluster = format!("ids{}", nats.port);
    let toml = one_app("");
    let mut a = Node::start(&nats.url(), &cluster, "same", &toml);
    wait_joined(&[&a]).await;
    // A second live process with the same id on this host: refused, exit 1.
    let mut dup = Node::start(&nats.url(), &cluster, "same", &toml);
    let status = eventually(Duration::from_secs(10), "the clashing node to exit", || {
        let s = dup.child_try_wait();
        async move { s }
    })
    .await;
    assert_eq!(status, Some(1));
    // The first one is killed and restarted at once: it takes its id back.
    a.kill();
    let a2 = Node::start(&nats.url(), &cluster, "same", &toml);
    wait_joined(&[&a2]).await;
}

#[tokio::test]
async fn the_member_cap_holds_across_nodes() {
    let nats = NatsServer::start().await;
    let cluster = format!("cap{}", nats.port);
    let toml = one_app("max_presence_members = 2");
    let a = Node::start(&nats.url(), &cluster, "node-a", &toml);
    let b = Node::start(&nats.url(), &cluster, "node-b", &toml);
    wait_joined(&[&a, &b]).await;
    let ch = "presence-small";
    let mut u1 = a.connect().await;
    u1.subscribe_presence(ch, "u1").await;
    let mut u2 = b.connect().await;
    u2.subscribe_presence(ch, "u2").await;
    u1.expect_event("pusher_internal:member_added").await;
    // A third distinct user is refused on either node, and never announced.
    for node in [&a, &b] {
        let mut c = node.connect().await;
        let data = json!({"user_id": "u3", "user_info": {"name": "user u3"}}).to_string();
        let auth = rtc::protocol::auth::auth_for(
            KEY,
            SECRET,
            &rtc::protocol::auth::channel_string_to_sign(&c.socket_id, ch, Some(&data)),
        );
        c.subscribe_with(ch, Some(auth), Some(data)).await;
        let ev = c.next_event().await;
        assert_eq!(ev["event"], "pusher:error", "{ev}");
    }
    // An existing member's second socket on the other node is let in.
    let mut again = b.connect().await;
    let ok = again.subscribe_presence(ch, "u1").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    u1.assert_quiet().await;
    u2.assert_quiet().await;
}

#[tokio::test]
async fn a_channel_that_comes_and_goes_leaves_no_key_behind() {
    let nats = NatsServer::start().await;
    let cluster = format!("gone{}", nats.port);
    let a = Node::start(&nats.url(), &cluster, "node-a", &one_app(""));
    wait_joined(&[&a]).await;
    for i in 0..3 {
        let mut c = a.connect().await;
        c.subscribe_presence(&format!("presence-gone-{i}"), "u1").await;
        c.subscribe(&format!("gone-{i}")).await;
    }
    // Every socket closed: the presence and count keys are deleted, and their delete
    // markers purged (the server keeps nothing per channel that came and went).
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let bucket = format!("KV_rtc_{}_state", hex::encode(&cluster));
    let filter = format!("$KV.rtc_{}_state.>", hex::encode(&cluster));
    eventually(Duration::from_secs(10), "no presence or count subjects left", || {
        let (js, bucket, filter) = (js.clone(), bucket.clone(), filter.clone());
        async move {
            use futures_util::StreamExt;
            let mut stream = js.get_stream(&bucket).await.ok()?;
            let messages = stream.info().await.ok()?.state.messages;
            let subjects = stream.info_with_subjects(filter).await.ok()?;
            let left: Vec<String> = subjects.filter_map(|s| async move { s.ok().map(|(s, _)| s) }).collect().await;
            let channel_keys = left.iter().filter(|s| s.contains(".p.") || s.contains(".s.")).count();
            // The node's own entry (`k.`) is still there: the listing works.
            (channel_keys == 0 && messages > 0).then_some(())
        }
    })
    .await;
}
