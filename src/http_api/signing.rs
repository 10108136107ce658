//! Verification of signed HTTP API requests.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::{Method, StatusCode, Uri};

use super::ApiError;
use crate::protocol::auth;
use crate::server::{App, Node};

/// A signed HTTP API request that verified ([`verify_request`]): every handler of the API
/// takes one, so none can forget the check. It reads the whole body (within
/// `max_request_size`), so it must be a handler's last argument.
pub struct Signed {
    /// The app the request is for (`{app_id}` in the path).
    pub app: Arc<App>,
    /// The body (empty for `GET`).
    pub body: Bytes,
    /// The query parameters (the last value of a repeated name).
    pub query: HashMap<String, String>,
}

impl FromRequest<Arc<Node>> for Signed {
    type Rejection = ApiError;

    async fn from_request(req: Request, node: &Arc<Node>) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let path = RawPathParams::from_request_parts(&mut parts, node)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let app_id = path.iter().find(|(k, _)| *k == "app_id").map(|(_, v)| v.to_string()).unwrap_or_default();
        let (method, uri) = (parts.method.clone(), parts.uri.clone());
        let limit = node.config.max_request_size;
        let body = Bytes::from_request(Request::from_parts(parts, body), node).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(format!("Request body over the limit of {limit} bytes"))
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        let app = verify_request(node, &app_id, &method, &uri, &body)?;
        let query = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
        Ok(Signed { app, body, query })
    }
}

/// `auth_timestamp` may differ from the server clock by at most this much (Pusher's
/// rule; Reverb and Soketi skip the check, so their signed requests can be replayed).
pub const MAX_CLOCK_SKEW_SECS: i64 = 600;

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Finds the app and checks the request's signature; returns the app.
///
/// # Errors
/// 404 unknown app, 403 disabled app, 401 for a missing or wrong key, signature,
/// `body_md5` or a stale `auth_timestamp`, 400 for a bad `auth_version`.
pub fn verify_request(
    node: &Arc<Node>,
    app_id: &str,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Result<Arc<App>, ApiError> {
    let app = node
        .app_by_id(app_id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("Unknown app '{}'", app_id.chars().take(64).collect::<String>())))?;
    if !app.config.enabled {
        return Err(ApiError::Forbidden("App is disabled".into()));
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let fail = |why: &str| {
        node.metrics.auth_failure("http");
        Err(ApiError::Unauthorized(why.to_string()))
    };
    let Some(key) = get("auth_key") else {
        return fail("Missing auth_key");
    };
    if key != app.config.key {
        return fail("Invalid auth_key");
    }
    let Some(ts) = get("auth_timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return fail("Missing or invalid auth_timestamp");
    };
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    // Saturating: a timestamp near i64::MIN must not overflow (found by fuzzing).
    let skew = now.saturating_sub(ts);
    if skew.unsigned_abs() > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return fail(&format!(
            "Timestamp expired: auth_timestamp is {skew}s from server time; the limit is {MAX_CLOCK_SKEW_SECS}s"
        ));
    }
    match get("auth_version") {
        None | Some("1.0") => {}
        Some(_) => return Err(ApiError::BadRequest("Unsupported auth_version; expected 1.0".into())),
    }
    if !body.is_empty() {
        match get("body_md5") {
            Some(md5) if md5.eq_ignore_ascii_case(&auth::body_md5(body)) => {}
            Some(_) => return fail("body_md5 does not match the body"),
            None => return fail("Missing body_md5 for a request with a body"),
        }
    }
    let Some(signature) = get("auth_signature") else {
        return fail("Missing auth_signature");
    };
    let secret = app.config.secret.expose();
    let raw_path = uri.path();
    let prefix = node.config.path.as_str();
    let mut candidates = vec![raw_path.to_string(), percent_decode(raw_path)];
    if !prefix.is_empty() {
        if let Some(stripped) = raw_path.strip_prefix(prefix) {
            candidates.push(stripped.to_string());
            candidates.push(percent_decode(stripped));
        }
    }
    let ok = candidates.iter().any(|path| {
        let to_sign = auth::request_string_to_sign(method.as_str(), path, &params);
        auth::verify_hex(secret, to_sign.as_bytes(), signature)
    });
    if !ok {
        return fail("Invalid signature");
    }
    if app.api_rate.as_ref().is_some_and(|r| !r.try_take()) {
        node.metrics.limit_hit("max_api_requests_per_sec");
        return Err(ApiError::TooManyRequests(format!(
            "Over the app's HTTP API rate of {} requests per second",
            app.config.max_api_requests_per_sec
        )));
    }
    Ok(app)
}
