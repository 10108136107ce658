//! Micro-benchmarks of the per-frame protocol work: encoding the frames fan-out shares,
//! parsing client frames, and checking signatures (channel auth and the HTTP API's).
//!
//! `cargo bench --bench protocol` (divan; figures per operation in README "Performance").

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use divan::{black_box, Bencher};
use rtc::protocol::auth;
use rtc::protocol::frame;

fn main() {
    divan::main();
}

/// A typical Laravel broadcast payload (~200 bytes of JSON).
const DATA: &str = r#"{"order":{"id":48213,"status":"shipped","carrier":"DHL","eta":"2026-11-30T10:00:00Z","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}]},"socket":null}"#;
const KEY: &str = "app-key";
const SECRET: &str = "app-secret-0123456789";
const SOCKET_ID: &str = "123456.7890123";

/// One event frame, encoded once per publish whatever the subscriber count.
#[divan::bench]
fn encode_event_frame() -> String {
    frame::event_frame(
        black_box("App\\Events\\OrderShipped"),
        Some(black_box("private-orders.48213")),
        Some(black_box(DATA)),
        None,
    )
}

/// `subscription_succeeded` for a presence channel of `n` members.
#[divan::bench(args = [10, 100, 1000])]
fn encode_presence_succeeded(bencher: Bencher<'_, '_>, n: usize) {
    let members: Vec<(String, String)> =
        (0..n).map(|i| (format!("user-{i}"), format!(r#"{{"name":"User {i}","avatar":null}}"#))).collect();
    bencher.bench(|| {
        frame::presence_subscription_succeeded(
            black_box("presence-room.1"),
            members.iter().map(|(id, info)| (id.as_str(), info.as_str())),
        )
    });
}

/// What every idle pusher-js socket sends every `activity_timeout`, through the parser
/// (the server answers this exact text without parsing; see `frame::PUSHER_JS_PING`).
#[divan::bench]
fn parse_ping() -> frame::ClientFrame {
    frame::parse_client_frame(black_box(frame::PUSHER_JS_PING)).unwrap()
}

/// A private-channel subscribe with its auth.
#[divan::bench]
fn parse_subscribe_private(bencher: Bencher<'_, '_>) {
    let to_sign = auth::channel_string_to_sign(SOCKET_ID, "private-orders.48213", None);
    let text = serde_json::json!({
        "event": "pusher:subscribe",
        "data": {"channel": "private-orders.48213", "auth": auth::auth_for(KEY, SECRET, &to_sign)}
    })
    .to_string();
    bencher.bench(|| frame::parse_client_frame(black_box(&text)).unwrap());
}

/// A client event (whisper) with a small payload.
#[divan::bench]
fn parse_client_event() -> frame::ClientFrame {
    frame::parse_client_frame(black_box(
        r#"{"event":"client-typing","channel":"private-chat.7","data":{"user":"ada","typing":true}}"#,
    ))
    .unwrap()
}

/// Verifying a private channel's auth (HMAC-SHA256, constant-time compare).
#[divan::bench]
fn verify_channel_auth(bencher: Bencher<'_, '_>) {
    let to_sign = auth::channel_string_to_sign(SOCKET_ID, "private-orders.48213", None);
    let good = auth::auth_for(KEY, SECRET, &to_sign);
    bencher.bench(|| auth::verify_auth(KEY, SECRET, black_box(&good), black_box(&to_sign)).unwrap());
}

/// Verifying a presence channel's auth, channel_data included in what is signed.
#[divan::bench]
fn verify_presence_auth(bencher: Bencher<'_, '_>) {
    let data = r#"{"user_id":"42","user_info":{"name":"Ada Lovelace"}}"#;
    let to_sign = auth::channel_string_to_sign(SOCKET_ID, "presence-room.1", Some(data));
    let good = auth::auth_for(KEY, SECRET, &to_sign);
    bencher.bench(|| auth::verify_auth(KEY, SECRET, black_box(&good), black_box(&to_sign)).unwrap());
}

/// An HTTP API publish's signature: body MD5, the sorted string to sign, HMAC, compare.
#[divan::bench]
fn verify_http_publish(bencher: Bencher<'_, '_>) {
    let body =
        serde_json::json!({"name": "App\\Events\\OrderShipped", "channels": ["private-orders.48213"], "data": DATA})
            .to_string();
    let path = "/apps/100001/events";
    let query = auth::sign_request(KEY, SECRET, "POST", path, body.as_bytes(), 1_764_000_000, &[]);
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    bencher.bench(|| {
        let params = black_box(&params);
        let sig = &params.iter().find(|(k, _)| k == "auth_signature").unwrap().1;
        let md5 = &params.iter().find(|(k, _)| k == "body_md5").unwrap().1;
        assert_eq!(&auth::body_md5(black_box(body.as_bytes())), md5);
        let to_sign = auth::request_string_to_sign("POST", path, params);
        assert!(auth::verify_hex(SECRET, to_sign.as_bytes(), sig));
    });
}
