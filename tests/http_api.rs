//! The signed HTTP API: verification, errors and channel queries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn signatures_timestamps_and_body_md5_are_checked() {
    let s = TestServer::start(&one_app("")).await;
    let api = s.api();
    let body = json!({"name":"e","channel":"c","data":"1"}).to_string();

    let (st, v) = api.call_at("POST", "/events", Some(body.clone()), &[], now_secs()).await;
    assert_eq!(st, 200, "{v}");

    // Stale and future timestamps (replays) are refused.
    for ts in [now_secs() - 601, now_secs() + 601] {
        let (st, v) = api.call_at("POST", "/events", Some(body.clone()), &[], ts).await;
        assert_eq!(st, 401, "{v}");
        assert!(v["error"].as_str().unwrap().contains("Timestamp expired"));
    }
    // Wrong secret.
    let (st, v) = s.api().with_secret("not-the-secret").trigger(&["c"], "e", "1").await;
    assert_eq!((st, v["error"].as_str().unwrap()), (401, "Invalid signature"));

    // Tampered body: body_md5 no longer matches.
    let qs = rtc::protocol::auth::sign_request(
        KEY,
        SECRET,
        "POST",
        &format!("/apps/{APP_ID}/events"),
        body.as_bytes(),
        now_secs(),
        &[],
    );
    let tampered = body.replace("\"1\"", "\"2\"");
    let (st, v) = api.raw("POST", &format!("/apps/{APP_ID}/events?{qs}"), tampered).await;
    assert_eq!(st, 401);
    assert!(v["error"].as_str().unwrap().contains("body_md5"));

    // No signature at all.
    let (st, _) = api.raw("GET", &format!("/apps/{APP_ID}/channels"), String::new()).await;
    assert_eq!(st, 401);
    s.stop().await;
}

#[tokio::test]
async fn errors_have_status_and_json_message() {
    let s = TestServer::start(&one_app("")).await;
    let api = s.api();
    let (st, v) = Api::new(s.addr, "999", KEY, SECRET).trigger(&["c"], "e", "1").await;
    assert_eq!(st, 404);
    assert!(v["error"].as_str().unwrap().contains("Unknown app"));

    let (st, v) = api.call_at("POST", "/events", Some("{not json".into()), &[], now_secs()).await;
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("not valid JSON"));

    let (st, _) = api.trigger(&["c"], "e", &"x".repeat(10_241)).await;
    assert_eq!(st, 413);
    let (st, _) = api.trigger(&["c"], "e", &"x".repeat(10_240)).await;
    assert_eq!(st, 200);

    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let (st, v) = api.trigger(&many, "e", "1").await;
    assert_eq!(st, 400, "{v}");

    let (st, _) = api.trigger(&["bad channel"], "e", "1").await;
    assert_eq!(st, 400);
    let (st, _) =
        api.call("POST", "/events", Some(json!({"name":"e","channel":"c","data":"1","socket_id":"x"})), &[]).await;
    assert_eq!(st, 400);
    let (st, _) = api.call("POST", "/events", Some(json!({"channel":"c","data":"1"})), &[]).await;
    assert_eq!(st, 400);
    let (st, _) = api
        .call("POST", "/events", Some(json!({"name":"e","channels":["private-encrypted-a","b"],"data":"1"})), &[])
        .await;
    assert_eq!(st, 400);

    let batch: Vec<_> = (0..11).map(|i| json!({"name":"e","channel":format!("c{i}"),"data":"1"})).collect();
    let (st, _) = api.call("POST", "/batch_events", Some(json!({ "batch": batch })), &[]).await;
    assert_eq!(st, 400);
    s.stop().await;
}

#[tokio::test]
async fn channel_queries_report_occupancy_and_counts() {
    let s = TestServer::start(&one_app("")).await;
    let api = s.api();
    let mut a = s.connect().await;
    let mut b = s.connect().await;
    a.subscribe("room-1").await;
    b.subscribe("room-1").await;
    a.subscribe_presence("presence-lobby", "u1").await;
    b.subscribe_presence("presence-lobby", "u2").await;

    let (st, v) = api.call("GET", "/channels", None, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(v, json!({"channels": {"room-1": {}, "presence-lobby": {}}}));
    let (_, v) = api.call("GET", "/channels", None, &[("filter_by_prefix", "presence-"), ("info", "user_count")]).await;
    assert_eq!(v, json!({"channels": {"presence-lobby": {"user_count": 2}}}));
    let (st, _) = api.call("GET", "/channels", None, &[("info", "user_count")]).await;
    assert_eq!(st, 400);

    let (_, v) = api.call("GET", "/channels/room-1", None, &[("info", "subscription_count")]).await;
    assert_eq!(v, json!({"occupied": true, "subscription_count": 2}));
    let (_, v) = api.call("GET", "/channels/empty-room", None, &[]).await;
    assert_eq!(v, json!({"occupied": false}));
    let (st, _) = api.call("GET", "/channels/room-1", None, &[("info", "user_count")]).await;
    assert_eq!(st, 400);
    let (st, _) = api.call("GET", "/channels/room-1/users", None, &[]).await;
    assert_eq!(st, 400);

    let (_, v) = api
        .call("POST", "/events", Some(json!({"name":"e","channels":["room-1","presence-lobby"],"data":"1","info":"subscription_count,user_count"})), &[])
        .await;
    assert_eq!(
        v,
        json!({"channels": {"room-1": {"subscription_count": 2}, "presence-lobby": {"user_count": 2, "subscription_count": 2}}})
    );
    let (_, v) = api.call("GET", "/connections", None, &[]).await;
    assert_eq!(v["connections"], 2);
    s.stop().await;
}

#[tokio::test]
async fn admin_endpoints_require_the_token() {
    let s = TestServer::start(&one_app("")).await;
    let http = reqwest::Client::new();
    for path in ["/metrics", "/admin/stats"] {
        let r = http.get(format!("http://{}{path}", s.addr)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r =
            http.get(format!("http://{}{path}", s.addr)).bearer_auth("wrong-token-wrong-token").send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = http.get(format!("http://{}{path}", s.addr)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let _c = s.connect().await;
    let text = process::metrics_text(&http, &format!("http://{}", s.addr)).await;
    assert!(text.contains("rtc_connections{app=\"100001\"} 1"), "{text}");
    assert!(!text.contains(SECRET));
    let up = http.get(format!("http://{}/up", s.addr)).send().await.unwrap();
    assert_eq!(up.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn the_app_api_rate_answers_429_with_a_json_error() {
    let s = TestServer::start(&one_app("max_api_requests_per_sec = 5")).await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (st, v) = s.api().trigger(&["c"], "e", "1").await;
        if st == 429 {
            assert!(v["error"].as_str().unwrap().contains("rate"), "{v}");
        }
        statuses.push(st);
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 10, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429));
    s.stop().await;
}

#[tokio::test]
async fn new_connections_over_the_node_rate_get_503_before_the_upgrade() {
    let toml = one_app("").replace("[server]\n", "[server]\nmax_new_connections_per_sec = 3\n");
    let s = TestServer::start(&toml).await;
    let mut refused = 0;
    let mut held = Vec::new();
    for _ in 0..12 {
        match tokio_tungstenite::connect_async(s.ws_url(KEY)).await {
            Ok((ws, _)) => held.push(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 503);
                assert!(resp.headers().contains_key("retry-after"));
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused >= 6, "refused {refused}");
    assert!(held.len() >= 3);
    s.stop().await;
}

/// Every route of the API takes the signed-request extractor: none answers an unsigned
/// request with anything but a JSON 401, and every answer is counted by status.
#[tokio::test]
async fn every_api_route_refuses_an_unsigned_request_and_counts_it() {
    let s = TestServer::start(&one_app("")).await;
    let api = s.api();
    let routes = [
        ("POST", "/events"),
        ("POST", "/batch_events"),
        ("GET", "/channels"),
        ("GET", "/channels/c"),
        ("GET", "/channels/presence-c/users"),
        ("POST", "/users/u1/terminate_connections"),
        ("GET", "/connections"),
    ];
    for (method, path) in routes {
        // An unsigned query string with garbage in it: still a JSON 401, never a plain-text 400.
        let (st, v) = api.raw(method, &format!("/apps/{APP_ID}{path}?auth_key={KEY}&x=%zz&x"), "{}".into()).await;
        assert_eq!(st, 401, "{method} {path}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{method} {path}: {v}");
        // The same route signed: 200.
        let body = if method == "POST" { Some(json!({"name":"e","channel":"c","data":"1","batch":[]})) } else { None };
        let (st, v) = api.call(method, path, body, &[]).await;
        assert_eq!(st, 200, "{method} {path} signed: {v}");
    }
    let metrics = reqwest::Client::new()
        .get(format!("http://{}/metrics", s.addr))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |status: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with("rtc_http_requests_total{") && l.contains(&format!("status=\"{status}\"")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!((count("401"), count("200")), (7, 7), "{metrics}");
    s.stop().await;
}
