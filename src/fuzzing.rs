//! Fuzz harnesses, shared by the `cargo fuzz` targets under `fuzz/` (nightly,
//! libFuzzer) and by `tests/fuzz_corpus.rs`, which replays the committed corpus and
//! every crash input through the same functions on the stable toolchain.
//!
//! Each harness takes arbitrary bytes, must never panic on them, and panics (an
//! assertion) when a property of the code under test does not hold:
//! * [`client_frame`]: the client-frame parser and what the server does with a parsed
//!   frame (channel names, channel/user signatures, presence `channel_data`, the frames
//!   built from client input).
//! * [`http_signature`]: signed HTTP API requests through [`crate::http_api::verify_request`]
//!   on a real [`Node`], and the query parsing the handlers do.
//! * [`bus_decode`]: the inter-node message decoder and the encode/decode round trip.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::Query;
use axum::http::{Method, Uri};
use serde_json::Value;

use crate::cluster::bus::{self, BusError, BUS_VERSION};
use crate::http_api::{verify_request, ApiError};
use crate::protocol::auth;
use crate::protocol::channel::{ChannelKind, MAX_CHANNEL_NAME_LEN};
use crate::protocol::frame::{self, ClientFrame, FrameError, MAX_EVENT_NAME_LEN};
use crate::protocol::{ChannelName, SocketId};
use crate::server::Node;

/// App id of the node the HTTP harness verifies against.
pub const APP_ID: &str = "100001";
/// App key used by the harnesses.
pub const KEY: &str = "fuzz-key";
/// App secret used by the harnesses.
pub const SECRET: &str = "fuzz-secret";
/// Route prefix of the second node (exercises prefix stripping in verification).
pub const PATH_PREFIX: &str = "/pfx";
/// The socket id the client-frame harness signs for.
const SOCKET_ID: &str = "1234.5678";

/// Asserts that a frame the server builds is one JSON object, and returns it.
fn json_object(what: &str, text: &str) -> serde_json::Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        other => panic!("{what} built a frame that is not a JSON object: {text:?} ({other:?})"),
    }
}

/// The `data` string of a server frame.
fn frame_data(what: &str, text: &str) -> String {
    match json_object(what, text).remove("data") {
        Some(Value::String(s)) => s,
        other => panic!("{what}: data is not a string: {other:?}"),
    }
}

/// A channel name through the validation the server applies to every name a client
/// sends; checks what a valid name promises.
fn channel(name: &str) -> Option<ChannelName> {
    match ChannelName::parse(name) {
        Ok(n) => {
            assert_eq!(n.as_str(), name);
            assert!(!name.is_empty() && name.chars().count() <= MAX_CHANNEL_NAME_LEN);
            assert_eq!(ChannelName::parse(n.as_str()).as_ref(), Ok(&n));
            let _ = (n.kind().as_str(), n.is_cache());
            assert_eq!(n.server_to_user_id().is_some(), n.kind() == ChannelKind::ServerToUser);
            if let Some(user) = n.server_to_user_id() {
                assert!(!user.is_empty());
            }
            // What the server answers on a subscribe is valid JSON naming the channel.
            let ok = frame::subscription_succeeded(n.as_str());
            assert_eq!(json_object("subscription_succeeded", &ok).get("channel"), Some(&Value::from(name)));
            Some(n)
        }
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

/// Checks a `key:signature` value over `to_sign` the way the server does, and that a
/// correct signature is accepted and one for another socket refused.
fn signature(auth_value: &str, to_sign: &str, other_socket_to_sign: &str) {
    if auth::verify_auth(KEY, SECRET, auth_value, to_sign).is_ok() {
        assert!(auth_value.starts_with(KEY) && auth_value[KEY.len()..].starts_with(':'));
    }
    let good = auth::auth_for(KEY, SECRET, to_sign);
    assert_eq!(auth::verify_auth(KEY, SECRET, &good, to_sign), Ok(()));
    assert_eq!(auth::verify_auth("other-key", SECRET, &good, to_sign), Err(auth::AuthError::WrongKey));
    assert!(auth::verify_auth(KEY, SECRET, &good, other_socket_to_sign).is_err());
}

/// Presence `channel_data` through the server's own reader
/// ([`crate::protocol::presence::parse_channel_data`], with the default app limits), and
/// the member frames built from what it accepts.
fn presence_data(channel: &str, data: &str) {
    let Ok(m) = crate::protocol::presence::parse_channel_data(data, 128, 1024) else { return };
    assert!(!m.user_id.is_empty() && m.user_id.chars().count() <= 128);
    assert!(m.info.len() <= 1024);
    let (user_id, info) = (m.user_id, m.info);
    let added = frame_data("member_added", &frame::member_added(channel, &user_id, &info));
    let added = json_object("member_added data", &added);
    assert_eq!(added.get("user_id"), Some(&Value::from(user_id.as_str())));
    let members = [(user_id.as_str(), info.as_str())];
    let ok = frame::presence_subscription_succeeded(channel, members.iter().copied());
    let ok = frame_data("presence_subscription_succeeded", &ok);
    let _ = json_object("presence data", &ok);
    let removed = frame_data("member_removed", &frame::member_removed(channel, &user_id));
    let _ = json_object("member_removed data", &removed);
}

/// Fuzzes one client → server WebSocket text frame: [`frame::parse_client_frame`], then
/// for each frame kind the public steps the server takes with it.
///
/// Asserts: parsing never panics; a not-JSON error quotes at most 120 characters; every frame the server builds from client input is
/// valid JSON; a subscription or sign-in signed with the app's secret verifies and one
/// for another socket does not; a client event re-serialised for fan-out parses back to
/// the same event; an error frame is valid JSON.
pub fn client_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let other_socket = "1234.5679";
    match frame::parse_client_frame(text) {
        Err(e) => {
            if let FrameError::NotJson(detail) = &e {
                assert!(detail.chars().count() <= 120, "{detail}");
            }
            let msg = e.to_string();
            let err = frame_data("error_frame", &frame::error_frame(Some(4009), &msg));
            let _ = json_object("error data", &err);
        }
        Ok(ClientFrame::Ping) => {
            assert_eq!(json_object("pong", frame::PONG).get("event"), Some(&Value::from("pusher:pong")))
        }
        Ok(ClientFrame::Pong) => {}
        Ok(ClientFrame::Subscribe { channel: name, auth, channel_data }) => {
            let Some(n) = channel(&name) else { return };
            if n.kind().requires_auth() {
                let data = if n.kind() == ChannelKind::Presence { channel_data.as_deref() } else { None };
                let to_sign = auth::channel_string_to_sign(SOCKET_ID, n.as_str(), data);
                let other = auth::channel_string_to_sign(other_socket, n.as_str(), data);
                signature(auth.as_deref().unwrap_or(""), &to_sign, &other);
                if let Some(d) = data {
                    presence_data(n.as_str(), d);
                }
            }
            let err = frame::subscription_error(n.as_str(), "refused", 401);
            let _ = json_object("subscription_error data", &frame_data("subscription_error", &err));
        }
        Ok(ClientFrame::Unsubscribe { channel: name }) => {
            let _ = channel(&name);
        }
        Ok(ClientFrame::Signin { auth, user_data }) => {
            let to_sign = auth::user_string_to_sign(SOCKET_ID, &user_data);
            let other = auth::user_string_to_sign(other_socket, &user_data);
            signature(&auth, &to_sign, &other);
            let ok = frame_data("signin_success", &frame::signin_success(&user_data));
            assert_eq!(json_object("signin data", &ok).get("user_data"), Some(&Value::from(user_data.as_str())));
            if let Ok(v) = serde_json::from_str::<Value>(&user_data) {
                let _ = v.get("id").and_then(Value::as_str).map(|id| id.chars().count());
            }
        }
        Ok(ClientFrame::ClientEvent { event, channel: name, data }) => {
            assert!(event.starts_with("client-") && event.chars().count() <= MAX_EVENT_NAME_LEN);
            if let Some(n) = channel(&name) {
                let _ = n.kind().allows_client_events();
            }
            // Fan-out: the frame other sockets receive carries the same event.
            let out = frame::event_frame(&event, Some(&name), Some(&data), Some("u1"));
            let _ = json_object("event_frame", &out);
            let again = frame::parse_client_frame(&out);
            assert_eq!(again, Ok(ClientFrame::ClientEvent { event, channel: name, data }), "{out}");
        }
    }
}

/// Two nodes with one app each: no route prefix, and [`PATH_PREFIX`].
fn nodes() -> &'static [Arc<Node>; 2] {
    static NODES: OnceLock<[Arc<Node>; 2]> = OnceLock::new();
    NODES.get_or_init(|| {
        let build = |prefix: &str| {
            let toml = format!(
                "[server]\npath = \"{prefix}\"\nadmin_token = \"fuzz-admin-token-0123456789\"\n\n\
                 [[apps]]\nid = \"{APP_ID}\"\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\n"
            );
            let file = match crate::config::parse_file(&toml, "fuzz.toml") {
                Ok(f) => f,
                Err(e) => panic!("fuzz config: {e:?}"),
            };
            match crate::config::resolve(&crate::cli::ServeArgs::default(), file, &|_| None) {
                Ok(cfg) => Node::new(cfg),
                Err(e) => panic!("fuzz config: {e:?}"),
            }
        };
        [build(""), build(PATH_PREFIX)]
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The query parsing the HTTP API handlers do besides verification: axum's `Query`
/// into a map, and the handlers' own `info` list reader.
fn handler_query(uri: &Uri) {
    if let Ok(Query(params)) = Query::<HashMap<String, String>>::try_from_uri(uri) {
        for i in crate::http_api::channels::info_list(&params) {
            assert!(!i.is_empty() && i.trim() == i, "{i:?}");
        }
    }
}

/// Fuzzes verification of a signed HTTP API request.
///
/// Input: one flags byte, then `method`, `path`, `query`, `body` and `secret`
/// separated by NUL bytes (missing fields are empty). Flags: bits 0-1 are the mode,
/// bit 2 picks the node with a route prefix.
/// * mode 0: the request as given; mode 1: the same with a fresh `auth_timestamp`
///   put first in the query, so the fuzzer reaches the `body_md5` and signature checks;
/// * mode 2: the harness signs the request with [`auth::sign_request`] (the fuzzed
///   query's pairs as extra parameters, the fuzzed secret or the app's when empty) and
///   asserts it verifies exactly when signed with the app's secret;
/// * mode 3: signed as mode 2 with the app's secret, then the body is altered after
///   signing; asserts it is refused.
///
/// Asserts besides: [`verify_request`] never panics; every refusal is a 400 or 401.
pub fn http_signature(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut fields = rest.splitn(5, |b| *b == 0);
    let mut field = || fields.next().unwrap_or_default();
    let (method, path, query, body, secret) = (field(), field(), field(), field(), field());
    let node = &nodes()[usize::from(flags & 4 != 0)];
    let method = Method::from_bytes(method).unwrap_or(Method::POST);
    let path = String::from_utf8_lossy(path);
    let path = if path.starts_with('/') { path.into_owned() } else { format!("/{path}") };
    let query = String::from_utf8_lossy(query);
    let secret = String::from_utf8_lossy(secret);
    let now = unix_now();
    match flags & 3 {
        0 | 1 => {
            let query = if flags & 3 == 1 { format!("auth_timestamp={now}&{query}") } else { query.into_owned() };
            let Ok(uri) = format!("{path}?{query}").parse::<Uri>() else { return };
            handler_query(&uri);
            if let Err(e) = verify_request(node, APP_ID, &method, &uri, body) {
                assert!(matches!(e, ApiError::Unauthorized(_) | ApiError::BadRequest(_)), "{e:?}");
            }
        }
        mode => {
            let reserved = ["auth_key", "auth_timestamp", "auth_version", "body_md5", "auth_signature"];
            let extra: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .filter(|(k, _)| !reserved.contains(&k.as_str()))
                .collect();
            let secret = if secret.is_empty() || mode == 3 { SECRET } else { &secret };
            let signed = auth::sign_request(KEY, secret, method.as_str(), &path, body, now, &extra);
            let Ok(uri) = format!("{path}?{signed}").parse::<Uri>() else { return };
            handler_query(&uri);
            // A path the URI parser reads differently (`?`, `#`) was not what was signed.
            let as_signed = uri.path() == path && uri.query() == Some(signed.as_str());
            if mode == 2 {
                let result = verify_request(node, APP_ID, &method, &uri, body).map(|_| ());
                if as_signed {
                    // HMAC pads short keys with zero bytes: `SECRET` + NULs is the same key.
                    let same_key = secret.trim_end_matches('\0') == SECRET;
                    assert_eq!(result.is_ok(), same_key, "{method} {uri} {result:?}");
                }
            } else {
                let mut tampered = body.to_vec();
                match tampered.first_mut() {
                    Some(b) => *b ^= 1,
                    None => tampered.push(b'x'),
                }
                let result = verify_request(node, APP_ID, &method, &uri, &tampered).map(|_| ());
                assert!(matches!(result, Err(ApiError::Unauthorized(_))), "{method} {uri} {result:?}");
            }
        }
    }
    // The event body's `socket_id` (excluded from the fan-out) as the handlers read it.
    if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
        if let Some(Value::String(s)) = m.get("socket_id") {
            if let Ok(id) = s.parse::<SocketId>() {
                assert_eq!(id.to_string().parse::<SocketId>(), Ok(id));
            }
        }
    }
}

/// Fuzzes the inter-node message decoder [`bus::decode`].
///
/// Asserts: decoding never panics; a version error names another version; a message
/// that decodes re-encodes to bytes that decode to the same envelope, and encoding
/// that again gives the same bytes (the encoding is stable).
pub fn bus_decode(data: &[u8]) {
    match bus::decode(data) {
        Ok(env) => {
            assert_eq!(env.v, BUS_VERSION);
            let once = bus::encode(&env);
            let again = match bus::decode(once.as_bytes()) {
                Ok(e) => e,
                Err(e) => panic!("re-encoded envelope does not decode: {e} ({once})"),
            };
            assert_eq!(again, env, "{once}");
            assert_eq!(bus::encode(&again), once);
        }
        Err(BusError::Version(v)) => assert_ne!(v, BUS_VERSION),
        Err(BusError::Malformed(m)) => assert!(m.chars().count() <= 120, "{m}"),
        Err(e @ (BusError::Unsigned | BusError::BadMac)) => panic!("decode does not check MACs: {e}"),
    }
    // The seal check never panics; without a secret it only strips a seal.
    let secret = crate::secret::Secret::new("fuzz-cluster-secret-0123");
    if let Ok(payload) = bus::open(data, Some(&secret)) {
        assert!(data.ends_with(payload));
    }
    let stripped = bus::open(data, None).unwrap_or_else(|e| panic!("open without a secret failed: {e}"));
    assert!(data.ends_with(stripped));
}
