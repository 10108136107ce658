//! Hostile and broken client frames: each gets its documented answer, and the node
//! keeps serving a bystander client throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// A subscribed bystander that must keep getting events.
async fn bystander(s: &TestServer) -> Client {
    let mut c = s.connect().await;
    c.subscribe("bystander").await;
    c
}

async fn bystander_still_served(s: &TestServer, c: &mut Client) {
    let (st, _) = s.api().trigger(&["bystander"], "still-here", "1").await;
    assert_eq!(st, 200);
    c.expect_event("still-here").await;
}

async fn error_message(c: &mut Client) -> String {
    c.expect_error().await["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn malformed_frames_get_pusher_error_and_the_socket_stays() {
    let s = TestServer::start(&one_app("")).await;
    let mut by = bystander(&s).await;
    let mut c = s.connect().await;
    let cases: &[(&str, &str)] = &[
        ("not json at all", "not JSON"),
        ("[1,2,3]", "Invalid message format"),
        ("{}", "missing 'event'"),
        (r#"{"event":42}"#, "missing 'event'"),
        (r#"{"event":"pusher:subscribe"}"#, "'data'"),
        (r#"{"event":"pusher:subscribe","data":{}}"#, "'channel'"),
        (r#"{"event":"pusher:subscribe","data":{"channel":["x"]}}"#, "'channel'"),
        (r#"{"event":"pusher:signin","data":{"auth":"k:s"}}"#, "'user_data'"),
        (r#"{"event":"pusher:bogus","data":{}}"#, "Unsupported event"),
        (r#"{"event":"hello","data":{}}"#, "must start with 'client-'"),
        (r#"{"event":"client-x","data":{}}"#, "'channel'"),
    ];
    for (frame, needle) in cases {
        c.send_text(frame).await;
        let msg = error_message(&mut c).await;
        assert!(msg.contains(needle), "{frame}: {msg}");
    }
    c.roundtrip().await;
    bystander_still_served(&s, &mut by).await;
    s.stop().await;
}

#[tokio::test]
async fn binary_frames_are_refused_with_pusher_error() {
    let s = TestServer::start(&one_app("")).await;
    let mut c = s.connect().await;
    c.send_raw(Message::Binary(vec![1u8, 2, 3].into())).await;
    assert!(error_message(&mut c).await.contains("Binary frames"));
    c.roundtrip().await;
    s.stop().await;
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007_and_others_are_unaffected() {
    let s = TestServer::start(&one_app("")).await;
    let mut by = bystander(&s).await;
    let mut c = s.connect().await;
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    c.send_raw(Message::Frame(bad)).await;
    assert_eq!(c.expect_close().await, Some(1007));
    bystander_still_served(&s, &mut by).await;
    s.stop().await;
}

#[tokio::test]
async fn oversize_messages_are_refused_and_huge_ones_close_1009() {
    let s = TestServer::start(&one_app("max_message_size = 1000")).await;
    let mut by = bystander(&s).await;
    let mut c = s.connect().await;
    let big = json!({"event":"client-x","channel":"private-a","data":"x".repeat(1500)}).to_string();
    c.send_text(&big).await;
    assert!(error_message(&mut c).await.contains("Message too large"));
    c.roundtrip().await;
    let huge = json!({"event":"client-x","channel":"private-a","data":"x".repeat(10_000)}).to_string();
    c.send_text(&huge).await;
    assert_eq!(c.expect_close().await, Some(1009));
    bystander_still_served(&s, &mut by).await;
    s.stop().await;
}

#[tokio::test]
async fn hostile_channel_names_are_refused() {
    let s = TestServer::start(&one_app("")).await;
    let mut c = s.connect().await;
    for name in ["a".repeat(201), "bad name".into(), "semi/colon".into(), "".into(), "#internal".into(), "ü".into()] {
        c.subscribe_with(&name, None, None).await;
        let msg = error_message(&mut c).await;
        assert!(msg.contains("Invalid channel name"), "{name:?}: {msg}");
    }
    c.subscribe(&"a".repeat(200)).await;
    s.stop().await;
}

#[tokio::test]
async fn bad_presence_channel_data_is_refused() {
    let s = TestServer::start(&one_app("")).await;
    let mut c = s.connect().await;
    for data in ["not json", "[1]", r#"{"user_info":{}}"#, r#"{"user_id":""}"#, r#"{"user_id":{"a":1}}"#] {
        let auth = rtc::protocol::auth::auth_for(
            KEY,
            SECRET,
            &rtc::protocol::auth::channel_string_to_sign(&c.socket_id, "presence-x", Some(data)),
        );
        c.subscribe_with("presence-x", Some(auth), Some(data.into())).await;
        let msg = error_message(&mut c).await;
        assert!(msg.contains("channel_data"), "{data}: {msg}");
        c.expect_event("pusher:subscription_error").await;
    }
    // Missing channel_data altogether.
    let auth = rtc::protocol::auth::auth_for(
        KEY,
        SECRET,
        &rtc::protocol::auth::channel_string_to_sign(&c.socket_id, "presence-x", None),
    );
    c.subscribe_with("presence-x", Some(auth), None).await;
    assert!(error_message(&mut c).await.contains("channel_data"));
    // A user_info over 1 KB.
    let data = json!({"user_id":"u","user_info":{"pad":"x".repeat(1100)}}).to_string();
    let auth = rtc::protocol::auth::auth_for(
        KEY,
        SECRET,
        &rtc::protocol::auth::channel_string_to_sign(&c.socket_id, "presence-x", Some(&data)),
    );
    c.subscribe_with("presence-x", Some(auth), Some(data)).await;
    assert!(error_message(&mut c).await.contains("user_info"));
    s.stop().await;
}

#[tokio::test]
async fn duplicate_subscribe_is_an_error_not_a_second_subscription() {
    let s = TestServer::start(&one_app("")).await;
    let mut c = s.connect().await;
    c.subscribe("dup").await;
    c.subscribe_with("dup", None, None).await;
    assert!(error_message(&mut c).await.contains("Existing subscription"));
    s.api().trigger(&["dup"], "once", "1").await;
    c.expect_event("once").await;
    c.assert_quiet().await;
    let (_, info) = s.api().call("GET", "/channels/dup", None, &[("info", "subscription_count")]).await;
    assert_eq!(info["subscription_count"], 1);
    s.stop().await;
}

#[tokio::test]
async fn a_burst_of_thousands_of_subscribes_is_capped_per_socket() {
    // The per-socket budgets are off here so the channel cap alone is tested (with them
    // on, such a burst is refused with 4301 and closed: tests/edge.rs).
    let s = TestServer::start(&one_app("max_channels_per_socket = 50\nsubscribe_rate = 0\nframe_rate = 0")).await;
    let mut by = bystander(&s).await;
    let mut c = s.connect().await;
    for i in 0..3000 {
        c.send_json(json!({"event":"pusher:subscribe","data":{"channel": format!("burst-{i}")}})).await;
    }
    let replies = c.roundtrip().await;
    let ok = replies.iter().filter(|v| v["event"] == "pusher_internal:subscription_succeeded").count();
    let refused = replies
        .iter()
        .filter(|v| v["event"] == "pusher:error" && data_of(v)["message"].as_str().unwrap_or("").contains("limit"))
        .count();
    assert_eq!(ok, 50);
    assert_eq!(refused, 2950);
    bystander_still_served(&s, &mut by).await;
    let (_, list) = s.api().call("GET", "/channels", None, &[("filter_by_prefix", "burst-")]).await;
    assert_eq!(list["channels"].as_object().unwrap().len(), 50);
    s.stop().await;
}

#[tokio::test]
async fn a_slow_reader_is_closed_with_4100_and_the_queue_is_freed() {
    let mut toml = one_app("max_event_data_size = 10240");
    toml = toml.replace("[server]\n", "[server]\noutbound_queue_bytes = 65536\n");
    let s = TestServer::start(&toml).await;
    let mut by = bystander(&s).await;
    let mut slow = s.connect().await;
    slow.subscribe("busy").await;
    // The slow client never reads; publish until its queue overflows.
    let payload = "x".repeat(10_000);
    let mut closed = false;
    for _ in 0..2000 {
        s.api().trigger(&["busy"], "e", &payload).await;
        if s.node.metrics.slow_consumers.get() > 0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow socket was never closed");
    // Reading now shows queued events, then the 4100 close (or a reset if the close
    // frame could not be written to the full socket).
    let code = slow.expect_close().await;
    assert!(matches!(code, Some(4100) | None), "{code:?}");
    bystander_still_served(&s, &mut by).await;
    s.stop().await;
}

/// Found while writing the fuzz targets: serde's error text quotes the input, and cutting
/// it at byte 120 could split a multi-byte character and kill the socket's task (leaving
/// its subscriptions behind).
#[tokio::test]
async fn a_non_json_frame_of_multibyte_text_gets_pusher_error_and_the_socket_stays() {
    let s = TestServer::start(&one_app("")).await;
    let mut by = bystander(&s).await;
    let mut c = s.connect().await;
    c.subscribe("mine").await;
    c.send_text(&format!("\"a{}\"x", "é".repeat(80))).await;
    let msg = error_message(&mut c).await;
    assert!(msg.contains("not JSON"), "{msg}");
    // The socket is still subscribed and served.
    let (st, _) = s.api().trigger(&["mine"], "after", "1").await;
    assert_eq!(st, 200);
    c.expect_event("after").await;
    bystander_still_served(&s, &mut by).await;
}
