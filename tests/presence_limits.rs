//! Presence member limits in a cluster (issue 13): the default lets a big presence
//! channel through across nodes, and a configured cap counts distinct users across the
//! nodes. Real redis-server and `rtc serve` child processes on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::*;
use common::*;
use serde_json::json;

async fn two(toml: &str) -> (Redis, Node, Node) {
    let redis = Redis::start().await;
    let (a, b) = joined_pair(&redis, "pl", ["node-a", "node-b"], toml, &[]).await;
    (redis, a, b)
}

/// The users of a presence channel as a node's HTTP API reports them (cluster-wide).
async fn users(node: &Node, ch: &str) -> Vec<String> {
    let (st, v) = node.api().call("GET", &format!("/channels/{ch}/users"), None, &[]).await;
    assert_eq!(st, 200, "{v}");
    let mut ids: Vec<String> =
        v["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

/// Subscribes and expects the presence-full refusal: `pusher:error` and
/// `pusher:subscription_error` with status 4100, and no `subscription_succeeded`.
async fn expect_refused(c: &mut Client, ch: &str, user: &str) {
    let data = json!({"user_id": user, "user_info": {"name": format!("user {user}")}}).to_string();
    let a = rtc::protocol::auth::auth_for(
        KEY,
        SECRET,
        &rtc::protocol::auth::channel_string_to_sign(&c.socket_id, ch, Some(&data)),
    );
    c.subscribe_with(ch, Some(a), Some(data)).await;
    let mut saw_error = false;
    loop {
        let ev = c.next_event().await;
        match ev["event"].as_str().unwrap() {
            "pusher:error" => {
                let d = data_of(&ev);
                assert_eq!(d["message"], "Presence channel is full (5 members)", "{d}");
                saw_error = true;
            }
            "pusher:subscription_error" => {
                assert_eq!(ev["channel"], ch);
                assert_eq!(data_of(&ev)["status"], 4100, "{ev}");
                break;
            }
            other => panic!("{user}: expected the presence-full refusal, got {other}: {ev}"),
        }
    }
    assert!(saw_error, "pusher:error came before the subscription_error");
}

#[tokio::test]
async fn a_150_member_presence_channel_works_on_default_settings_across_two_nodes() {
    let (_redis, a, b) = two(&cluster_toml("")).await;
    let ch = "presence-town-hall";
    // Unevenly split: more than Pusher's 100 on one node, 150 in all.
    let mut sockets = Vec::new();
    for i in 0..150 {
        let node = if i % 4 == 3 { &b } else { &a };
        let mut c = node.connect().await;
        let ok = c.subscribe_presence(ch, &format!("user-{i:03}")).await;
        assert_eq!(ok["channel"], ch);
        sockets.push(c);
    }
    for node in [&a, &b] {
        eventually(Duration::from_secs(15), "150 users on both nodes", || async {
            (users(node, ch).await.len() == 150).then_some(())
        })
        .await;
    }
    // One more socket sees all 150 in its subscription_succeeded.
    let mut late = b.connect().await;
    let ok = late.subscribe_presence(ch, "user-000").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 150);
}

#[tokio::test]
async fn a_configured_member_cap_holds_across_nodes() {
    // One channel per socket: a refused subscription must not keep taking that place.
    let (_redis, a, b) = two(&cluster_toml("max_presence_members = 5\nmax_channels_per_socket = 1")).await;
    let ch = "presence-small";
    // Five users, split 3 + 2 over the nodes: each node alone is under the cap.
    let mut in_a = Vec::new();
    for u in ["u1", "u2", "u3"] {
        let mut c = a.connect().await;
        c.subscribe_presence(ch, u).await;
        in_a.push(c);
    }
    let mut in_b = Vec::new();
    for u in ["u4", "u5"] {
        let mut c = b.connect().await;
        c.subscribe_presence(ch, u).await;
        in_b.push(c);
    }
    let five: Vec<String> = ["u1", "u2", "u3", "u4", "u5"].map(String::from).to_vec();
    eventually(Duration::from_secs(10), "5 users", || async { (users(&a, ch).await == five).then_some(()) }).await;

    // A sixth distinct user is refused on either node.
    let mut six_a = a.connect().await;
    expect_refused(&mut six_a, ch, "u6").await;
    let mut six_b = b.connect().await;
    expect_refused(&mut six_b, ch, "u6").await;
    assert_eq!(users(&a, ch).await, five);
    assert_eq!(users(&b, ch).await, five);

    // A socket refused after the fact cannot speak on the channel: its client event is
    // rejected, and a member's event sent after it reaches node A with nothing before it.
    six_b.send_json(json!({"event": "client-from-refused", "channel": ch, "data": "{}"})).await;
    let seen = six_b.roundtrip().await;
    assert!(
        seen.iter().any(|e| e["event"] == "pusher:error" && e["data"].to_string().contains("not subscribed")),
        "the refused socket's client event is rejected: {seen:?}"
    );
    in_b[0].send_json(json!({"event": "client-from-member", "channel": ch, "data": "{}"})).await;
    let mut heard = Vec::new();
    loop {
        let e = in_a[0].next_event().await;
        if e["event"] == "client-from-member" {
            break;
        }
        heard.push(e);
    }
    assert!(!heard.iter().any(|e| e["event"] == "client-from-refused"), "{heard:?}");

    // An existing user's second socket, on the other node, is still let in.
    let mut u1_again = b.connect().await;
    let ok = u1_again.subscribe_presence(ch, "u1").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 5);

    // The refusals were never announced: the members heard of nobody new.
    for c in in_a.iter_mut().chain(in_b.iter_mut()) {
        let seen = c.roundtrip().await;
        let u6_added =
            seen.iter().any(|e| e["event"] == "pusher_internal:member_added" && data_of(e)["user_id"] == "u6");
        assert!(!u6_added, "no member_added for a refused user: {seen:?}");
    }

    // The refused subscription does not count against the socket's channel limit (1):
    // the socket may subscribe to another channel.
    six_a.subscribe_with("after-refusal", None, None).await;
    let ok = six_a.next_event().await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded", "{ok}");
    assert_eq!(ok["channel"], "after-refusal", "{ok}");

    // A place frees up: the refused socket may subscribe again and gets in.
    let mut u5 = in_b.pop().unwrap();
    u5.send_json(json!({"event":"pusher:unsubscribe","data":{"channel": ch}})).await;
    u5.roundtrip().await;
    let ok = six_b.subscribe_presence(ch, "u6").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 5);
    let added = in_a[0].expect_event("pusher_internal:member_added").await;
    assert_eq!(data_of(&added)["user_id"], "u6");
}
