//! The Pusher protocol over a real socket: one test per feature.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn connection_established_carries_socket_id_and_activity_timeout() {
    let s = TestServer::start(&one_app("activity_timeout = 77")).await;
    let mut c = Client::connect_raw(&s.ws_url(KEY)).await;
    let hello = c.expect_event("pusher:connection_established").await;
    let d = data_of(&hello);
    let id = d["socket_id"].as_str().unwrap();
    assert!(
        id.split('.').count() == 2 && id.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    );
    assert_eq!(d["activity_timeout"], 77);
    s.stop().await;
}

#[tokio::test]
async fn public_channel_receives_http_events_once_encoded() {
    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    let mut b = s.connect().await;
    let ok = a.subscribe("news").await;
    assert_eq!(ok["channel"], "news");
    assert_eq!(ok["data"], "{}");
    b.subscribe("news").await;
    let (status, body) = s.api().trigger(&["news"], "breaking", r#"{"n":1}"#).await;
    assert_eq!(status, 200, "{body}");
    for c in [&mut a, &mut b] {
        let e = c.expect_event("breaking").await;
        assert_eq!(e["channel"], "news");
        assert_eq!(e["data"], r#"{"n":1}"#);
    }
    s.stop().await;
}

#[tokio::test]
async fn private_channel_needs_a_valid_signature_for_this_socket() {
    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    let mut b = s.connect().await;
    // A signature made for b's socket id does not work for a.
    let for_b = rtc::protocol::auth::auth_for(
        KEY,
        SECRET,
        &rtc::protocol::auth::channel_string_to_sign(&b.socket_id, "private-x", None),
    );
    a.subscribe_with("private-x", Some(for_b), None).await;
    let err = a.expect_error().await;
    assert!(err["message"].as_str().unwrap().contains("Invalid signature"), "{err}");
    let sub_err = a.expect_event("pusher:subscription_error").await;
    assert_eq!(sub_err["channel"], "private-x");
    // The socket is kept and can still subscribe properly.
    a.subscribe_private("private-x").await;
    b.subscribe_private("private-x").await;
    s.api().trigger(&["private-x"], "e", "1").await;
    assert_eq!(a.expect_event("e").await["data"], "1");
    assert_eq!(b.expect_event("e").await["data"], "1");
    // Missing auth is refused too.
    a.subscribe_with("private-y", None, None).await;
    a.expect_error().await;
    s.stop().await;
}

#[tokio::test]
async fn presence_members_are_users_not_sockets() {
    let s = TestServer::start(&one_app("")).await;
    let ch = "presence-room";
    let mut a = s.connect().await;
    let ok = a.subscribe_presence(ch, "alice").await;
    let p = data_of(&ok);
    assert_eq!(p["presence"]["count"], 1);
    assert_eq!(p["presence"]["ids"], json!(["alice"]));
    assert_eq!(p["presence"]["hash"]["alice"]["name"], "user alice");

    let mut b1 = s.connect().await;
    let ok = b1.subscribe_presence(ch, "bob").await;
    assert_eq!(data_of(&ok)["presence"]["count"], 2);
    let added = a.expect_event("pusher_internal:member_added").await;
    assert_eq!(data_of(&added)["user_id"], "bob");
    assert_eq!(data_of(&added)["user_info"]["name"], "user bob");

    // A second socket of bob: no member_added for anyone.
    let mut b2 = s.connect().await;
    b2.subscribe_presence(ch, "bob").await;
    a.assert_quiet().await;
    b1.assert_quiet().await;

    // Bob's first socket leaves: still a member, no member_removed.
    b1.send_json(json!({"event":"pusher:unsubscribe","data":{"channel": ch}})).await;
    b1.roundtrip().await;
    a.assert_quiet().await;
    let (_, users) = s.api().call("GET", &format!("/channels/{ch}/users"), None, &[]).await;
    assert_eq!(users["users"], json!([{"id":"alice"},{"id":"bob"}]));

    // His last socket goes away (disconnect): member_removed once.
    drop(b2);
    let removed = a.expect_event("pusher_internal:member_removed").await;
    assert_eq!(data_of(&removed)["user_id"], "bob");
    a.assert_quiet().await;
    let (_, info) = s.api().call("GET", &format!("/channels/{ch}"), None, &[("info", "user_count")]).await;
    assert_eq!(info["user_count"], 1);
    s.stop().await;
}

#[tokio::test]
async fn client_events_reach_others_but_not_the_sender() {
    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    let mut b = s.connect().await;
    a.subscribe_private("private-chat").await;
    b.subscribe_private("private-chat").await;
    a.send_json(json!({"event":"client-typing","channel":"private-chat","data":{"who":"a"}})).await;
    let e = b.expect_event("client-typing").await;
    assert_eq!(e["data"], r#"{"who":"a"}"#);
    assert!(e.get("user_id").is_none());
    a.assert_quiet().await;

    // Presence: user_id comes from the signed channel data.
    a.subscribe_presence("presence-p", "u1").await;
    b.subscribe_presence("presence-p", "u2").await;
    a.send_json(json!({"event":"client-x","channel":"presence-p","data":"hi","user_id":"forged"})).await;
    let e = b.expect_event("client-x").await;
    assert_eq!(e["user_id"], "u1");
    assert_eq!(e["data"], "hi");

    // Public channels and unsubscribed channels refuse client events.
    a.subscribe("pub").await;
    a.send_json(json!({"event":"client-x","channel":"pub","data":"1"})).await;
    assert_eq!(a.expect_error().await["code"], 4301);
    a.send_json(json!({"event":"client-x","channel":"private-other","data":"1"})).await;
    assert_eq!(a.expect_error().await["code"], 4301);
    s.stop().await;
}

#[tokio::test]
async fn client_events_can_be_switched_off() {
    let s = TestServer::start(&one_app("client_events = \"off\"")).await;
    let mut a = s.connect().await;
    let mut b = s.connect().await;
    a.subscribe_private("private-chat").await;
    b.subscribe_private("private-chat").await;
    a.send_json(json!({"event":"client-typing","channel":"private-chat","data":{}})).await;
    let err = a.expect_error().await;
    assert_eq!(err["code"], 4301);
    b.assert_quiet().await;
    s.stop().await;
}

#[tokio::test]
async fn client_events_are_rate_limited_without_closing() {
    let s = TestServer::start(&one_app("client_event_rate = 3")).await;
    let mut a = s.connect().await;
    let mut b = s.connect().await;
    a.subscribe_private("private-r").await;
    b.subscribe_private("private-r").await;
    for i in 0..10 {
        a.send_json(json!({"event":"client-n","channel":"private-r","data": i.to_string()})).await;
    }
    let replies = a.roundtrip().await;
    let limited = replies.iter().filter(|v| v["event"] == "pusher:error" && data_of(v)["code"] == 4301).count();
    assert!(limited >= 5, "expected most of the burst refused, got {replies:?}");
    let got = b.roundtrip().await;
    let delivered = got.iter().filter(|v| v["event"] == "client-n").count();
    assert_eq!(delivered + limited, 10);
    assert!((1..=4).contains(&delivered), "delivered {delivered}");
    s.stop().await;
}

#[tokio::test]
async fn socket_id_exclusion_skips_exactly_that_socket() {
    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    let mut b = s.connect().await;
    a.subscribe("ex").await;
    b.subscribe("ex").await;
    let (st, _) = s
        .api()
        .call("POST", "/events", Some(json!({"name":"e","channel":"ex","data":"x","socket_id": a.socket_id})), &[])
        .await;
    assert_eq!(st, 200);
    s.api().trigger(&["ex"], "marker", "m").await;
    assert_eq!(b.expect_event("e").await["data"], "x");
    let first = a.next_event().await;
    assert_eq!(first["event"], "marker", "the excluded socket saw {first}");
    s.stop().await;
}

#[tokio::test]
async fn signin_server_to_user_and_terminate() {
    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    let mut other = s.connect().await;
    let ok = a.signin(r#"{"id":"u42","user_info":{"n":1}}"#).await;
    assert_eq!(data_of(&ok)["user_data"], r#"{"id":"u42","user_info":{"n":1}}"#);
    other.signin(r#"{"id":"u7"}"#).await;
    // pusher-js subscribes to its user channel without auth after signin.
    a.subscribe("#server-to-user-u42").await;
    // Someone else's user channel is refused.
    other.subscribe_with("#server-to-user-u42", None, None).await;
    other.expect_error().await;
    assert_eq!(other.expect_event("pusher:subscription_error").await["channel"], "#server-to-user-u42");

    let (st, _) = s.api().trigger(&["#server-to-user-u42"], "notice", "hello").await;
    assert_eq!(st, 200);
    let e = a.expect_event("notice").await;
    assert_eq!(e["channel"], "#server-to-user-u42");
    other.assert_quiet().await;

    let (st, _) = s.api().call("POST", "/users/u42/terminate_connections", Some(json!({})), &[]).await;
    assert_eq!(st, 200);
    assert_eq!(a.expect_close().await, Some(4009));
    other.assert_quiet().await;
    s.stop().await;
}

#[tokio::test]
async fn signing_in_as_another_user_on_the_same_socket_is_refused() {
    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    a.signin(r#"{"id":"u1"}"#).await;
    let ud = r#"{"id":"u2"}"#;
    let auth = rtc::protocol::auth::auth_for(KEY, SECRET, &rtc::protocol::auth::user_string_to_sign(&a.socket_id, ud));
    a.send_json(json!({"event":"pusher:signin","data":{"auth": auth, "user_data": ud}})).await;
    a.expect_error().await;
    s.stop().await;
}

#[tokio::test]
async fn watchlist_reports_online_and_offline() {
    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    a.signin(r#"{"id":"a","watchlist":["b","c"]}"#).await;
    let w = a.expect_event("pusher_internal:watchlist_events").await;
    assert_eq!(data_of(&w)["events"], json!([{"name":"offline","user_ids":["b","c"]}]));
    let mut b = s.connect().await;
    b.signin(r#"{"id":"b"}"#).await;
    let w = a.expect_event("pusher_internal:watchlist_events").await;
    assert_eq!(data_of(&w)["events"], json!([{"name":"online","user_ids":["b"]}]));
    drop(b);
    let w = a.expect_event("pusher_internal:watchlist_events").await;
    assert_eq!(data_of(&w)["events"], json!([{"name":"offline","user_ids":["b"]}]));
    s.stop().await;
}

#[tokio::test]
async fn watchlist_over_the_limit_keeps_the_first_ids_with_4302() {
    let s = TestServer::start(&one_app("max_watchlist_size = 2")).await;
    let mut a = s.connect().await;
    a.signin(r#"{"id":"a","watchlist":["b","c","d"]}"#).await;
    let e = a.expect_error().await;
    assert_eq!(e["code"], 4302);
    let w = a.expect_event("pusher_internal:watchlist_events").await;
    assert_eq!(data_of(&w)["events"][0]["user_ids"], json!(["b", "c"]));
    s.stop().await;
}

#[tokio::test]
async fn cache_channels_replay_the_last_event_or_say_cache_miss() {
    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    a.subscribe("cache-prices").await;
    let miss = a.next_event().await;
    assert_eq!(miss["event"], "pusher:cache_miss");
    assert_eq!(miss["channel"], "cache-prices");
    s.api().trigger(&["cache-prices"], "price", "101").await;
    a.expect_event("price").await;
    let mut b = s.connect().await;
    b.subscribe("cache-prices").await;
    let replay = b.next_event().await;
    assert_eq!(replay["event"], "price");
    assert_eq!(replay["data"], "101");
    let (_, info) = s.api().call("GET", "/channels/cache-prices", None, &[("info", "cache")]).await;
    assert_eq!(info["cache"]["data"], "101");
    assert!(info["cache"]["ttl"].as_u64().unwrap() > 1700);
    s.stop().await;
}

#[tokio::test]
async fn subscription_count_follows_subscribers_when_enabled() {
    let s = TestServer::start(&one_app("subscription_count = true")).await;
    let mut a = s.connect().await;
    a.subscribe("counted").await;
    let c = a.expect_event("pusher_internal:subscription_count").await;
    assert_eq!(data_of(&c)["subscription_count"], 1);
    let mut b = s.connect().await;
    b.subscribe("counted").await;
    let c = a.expect_event("pusher_internal:subscription_count").await;
    assert_eq!(data_of(&c)["subscription_count"], 2);
    drop(b);
    let c = a.expect_event("pusher_internal:subscription_count").await;
    assert_eq!(data_of(&c)["subscription_count"], 1);
    s.stop().await;

    let s = TestServer::start(&one_app("")).await;
    let mut a = s.connect().await;
    a.subscribe("counted").await;
    a.assert_quiet().await;
    s.stop().await;
}

#[tokio::test]
async fn server_pings_silent_sockets_and_closes_4201_without_a_pong() {
    let s = TestServer::start(&one_app("activity_timeout = 1\nping_interval = 1\npong_timeout = 1")).await;
    let mut a = s.connect().await;
    let ping = a.expect_event("pusher:ping").await;
    assert_eq!(ping["data"], "{}");
    // Do not answer: the server gives up with 4201.
    assert_eq!(a.expect_close().await, Some(4201));

    // Answering keeps the socket open through another ping.
    let mut b = s.connect().await;
    b.expect_event("pusher:ping").await;
    b.send_json(json!({"event":"pusher:pong","data":{}})).await;
    b.expect_event("pusher:ping").await;
    b.send_json(json!({"event":"pusher:pong","data":{}})).await;
    b.roundtrip().await;
    s.stop().await;
}

#[tokio::test]
async fn require_signin_within_closes_unauthorized_sockets() {
    let s = TestServer::start(&one_app("require_signin_within = 1")).await;
    let mut lazy = s.connect().await;
    let mut good = s.connect().await;
    good.signin(r#"{"id":"x"}"#).await;
    assert_eq!(lazy.expect_close().await, Some(4009));
    good.roundtrip().await;
    s.stop().await;
}

#[tokio::test]
async fn connection_quota_refuses_with_4004() {
    let s = TestServer::start(&one_app("max_connections = 2")).await;
    let _a = s.connect().await;
    let _b = s.connect().await;
    let mut c = Client::connect_raw(&s.ws_url(KEY)).await;
    let e = c.expect_error().await;
    assert_eq!(e["code"], 4004);
    assert_eq!(c.expect_close().await, Some(4004));
    drop(_a);
    // The slot comes back once the socket is gone.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut d = Client::connect_raw(&s.ws_url(KEY)).await;
        match d.next_event().await["event"].as_str() {
            Some("pusher:connection_established") => break,
            _ => assert!(tokio::time::Instant::now() < deadline, "slot never freed"),
        }
        tokio::task::yield_now().await;
    }
    s.stop().await;
}

#[tokio::test]
async fn handshake_refusals_use_their_close_codes() {
    let s = TestServer::start(&one_app("allowed_origins = [\"https://app.example.com\"]")).await;
    let mut c = Client::connect_raw(&s.ws_url("nope")).await;
    assert_eq!(c.expect_error().await["code"], 4001);
    assert_eq!(c.expect_close().await, Some(4001));

    let mut c = Client::connect_raw(&format!("ws://{}/app/{KEY}", s.addr)).await;
    assert_eq!(c.expect_close().await, Some(4008));
    let mut c = Client::connect_raw(&format!("ws://{}/app/{KEY}?protocol=3", s.addr)).await;
    assert_eq!(c.expect_close().await, Some(4007));

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = s.ws_url(KEY).into_client_request().unwrap();
    req.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    use futures_util::StreamExt;
    let mut code = None;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(WAIT, ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Close(f) = m {
            code = f.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(code, Some(4009));

    let mut req = s.ws_url(KEY).into_client_request().unwrap();
    req.headers_mut().insert("origin", "https://app.example.com".parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ok = Client { ws, socket_id: String::new() };
    ok.expect_event("pusher:connection_established").await;
    s.stop().await;
}

#[tokio::test]
async fn disabled_apps_are_refused_on_both_interfaces() {
    let s = TestServer::start(&one_app("enabled = false")).await;
    let mut c = Client::connect_raw(&s.ws_url(KEY)).await;
    assert_eq!(c.expect_close().await, Some(4003));
    let (st, _) = s.api().trigger(&["a"], "e", "1").await;
    assert_eq!(st, 403);
    s.stop().await;
}
