//! Channel queries, presence users, connection count and user termination.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use super::{ApiError, ApiResult, Signed};
use crate::protocol::channel::ChannelKind;
use crate::protocol::ChannelName;
use crate::server::app::{App, ChannelCounts};
use crate::server::Node;

/// Counts of one channel: cluster-wide in a cluster (local if Redis is unreachable).
pub(crate) async fn counts_of(node: &Node, app: &App, name: &ChannelName) -> ChannelCounts {
    node.channel_counts(app, name).await
}

/// The comma-separated `info` attributes asked for, trimmed, empty ones dropped.
pub fn info_list(params: &HashMap<String, String>) -> Vec<String> {
    params
        .get("info")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_default()
}

fn channel_name(raw: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(raw).map_err(|e| ApiError::BadRequest(format!("Invalid channel name: {e}")))
}

/// `GET /apps/{app_id}/channels`.
pub async fn list(State(node): State<Arc<Node>>, Signed { app, query: params, .. }: Signed) -> ApiResult {
    let prefix = params.get("filter_by_prefix").cloned().unwrap_or_default();
    let info = info_list(&params);
    for i in &info {
        match i.as_str() {
            "user_count" if prefix.starts_with("presence-") => {}
            "user_count" => {
                return Err(ApiError::BadRequest(
                    "info=user_count is only valid with filter_by_prefix=presence-".into(),
                ))
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "Unknown info attribute '{}'",
                    other.chars().take(32).collect::<String>()
                )))
            }
        }
    }
    let mut channels = serde_json::Map::new();
    let listed = node.channels(&app, &prefix).await;
    for (name, counts) in listed {
        let mut attrs = serde_json::Map::new();
        if !info.is_empty() && name.kind() == ChannelKind::Presence {
            attrs.insert("user_count".into(), counts.users.into());
        }
        channels.insert(name.to_string(), Value::Object(attrs));
    }
    Ok(Json(serde_json::json!({ "channels": channels })))
}

/// `GET /apps/{app_id}/channels/{channel}`.
pub async fn info(
    State(node): State<Arc<Node>>,
    Path((_, channel)): Path<(String, String)>,
    Signed { app, query: params, .. }: Signed,
) -> ApiResult {
    let name = channel_name(&channel)?;
    let counts = counts_of(&node, &app, &name).await;
    let mut out = serde_json::Map::new();
    out.insert("occupied".into(), (counts.subscriptions > 0).into());
    for i in info_list(&params) {
        match i.as_str() {
            "user_count" if name.kind() == ChannelKind::Presence => {
                out.insert("user_count".into(), counts.users.into());
            }
            "user_count" => {
                return Err(ApiError::BadRequest("info=user_count is only valid for presence channels".into()))
            }
            "subscription_count" => {
                out.insert("subscription_count".into(), counts.subscriptions.into());
            }
            "cache" if name.is_cache() => {
                let cached = node.cached(&app, &name).await;
                if let Some((event, data, ttl)) = cached {
                    out.insert("cache".into(), serde_json::json!({"event": event, "data": data, "ttl": ttl}));
                }
            }
            "cache" => return Err(ApiError::BadRequest("info=cache is only valid for cache channels".into())),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "Unknown info attribute '{}'",
                    other.chars().take(32).collect::<String>()
                )))
            }
        }
    }
    Ok(Json(Value::Object(out)))
}

/// `GET /apps/{app_id}/channels/{channel}/users`.
pub async fn users(
    State(node): State<Arc<Node>>,
    Path((_, channel)): Path<(String, String)>,
    Signed { app, .. }: Signed,
) -> ApiResult {
    let name = channel_name(&channel)?;
    if name.kind() != ChannelKind::Presence {
        return Err(ApiError::BadRequest("Users can only be listed for presence channels".into()));
    }
    let ids = node.presence_users(&app, &name).await;
    let users: Vec<Value> = ids.into_iter().map(|id| serde_json::json!({ "id": id })).collect();
    Ok(Json(serde_json::json!({ "users": users })))
}

/// `POST /apps/{app_id}/users/{user_id}/terminate_connections`.
pub async fn terminate_user(Path((_, user_id)): Path<(String, String)>, Signed { app, .. }: Signed) -> ApiResult {
    if user_id.is_empty() || user_id.chars().count() > app.config.max_user_id_length {
        return Err(ApiError::BadRequest("Invalid user id".into()));
    }
    app.terminate_user(&user_id);
    Ok(Json(serde_json::json!({})))
}

/// `GET /apps/{app_id}/connections` (Reverb's extension): open connections.
pub async fn connections(State(node): State<Arc<Node>>, Signed { app, .. }: Signed) -> ApiResult {
    let n = node.app_connections(&app);
    Ok(Json(serde_json::json!({ "connections": n })))
}
