//! `POST /apps/{id}/events` and `POST /apps/{id}/batch_events`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Extension, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, ApiResult, Arrival, Signed};
use crate::protocol::channel::ChannelKind;
use crate::protocol::frame::MAX_EVENT_NAME_LEN;
use crate::protocol::{ChannelName, SocketId};
use crate::server::app::Origin;
use crate::server::{App, Node};

/// One event as the HTTP API receives it.
#[derive(Debug, Deserialize)]
struct EventBody {
    name: Option<String>,
    data: Option<Value>,
    channels: Option<Vec<String>>,
    channel: Option<String>,
    socket_id: Option<String>,
    info: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    batch: Option<Vec<EventBody>>,
}

/// A validated event, ready to publish.
struct Event {
    name: String,
    data: String,
    channels: Vec<ChannelName>,
    except: Option<SocketId>,
    info: Vec<String>,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("Request body is not valid JSON: {e}")))
}

fn validate(app: &App, e: EventBody, allow_many: bool) -> Result<Event, ApiError> {
    let name = e.name.ok_or_else(|| ApiError::BadRequest("Missing 'name'".into()))?;
    if name.is_empty() || name.chars().count() > MAX_EVENT_NAME_LEN {
        return Err(ApiError::BadRequest(format!("Event name must be 1-{MAX_EVENT_NAME_LEN} characters")));
    }
    let data = match e.data {
        Some(Value::String(s)) => s,
        Some(v) => v.to_string(),
        None => return Err(ApiError::BadRequest("Missing 'data'".into())),
    };
    let limit = app.config.max_event_data_size;
    if data.len() > limit {
        return Err(ApiError::TooLarge(format!("Event data is {} bytes; the limit is {limit}", data.len())));
    }
    let names: Vec<String> = match (e.channels, e.channel) {
        (Some(list), None) => list,
        (None, Some(one)) => vec![one],
        (Some(_), Some(_)) => return Err(ApiError::BadRequest("Give 'channels' or 'channel', not both".into())),
        (None, None) => return Err(ApiError::BadRequest("Missing 'channels'".into())),
    };
    if names.is_empty() {
        return Err(ApiError::BadRequest("'channels' is empty".into()));
    }
    if !allow_many && names.len() > 1 {
        return Err(ApiError::BadRequest("A batch event takes one 'channel'".into()));
    }
    let max = app.config.max_channels_per_publish;
    if names.len() > max {
        return Err(ApiError::BadRequest(format!("{} channels given; the limit is {max} per event", names.len())));
    }
    let mut channels = Vec::with_capacity(names.len());
    for n in &names {
        let c = ChannelName::parse(n).map_err(|err| {
            ApiError::BadRequest(format!("Invalid channel name '{}': {err}", n.chars().take(64).collect::<String>()))
        })?;
        channels.push(c);
    }
    let encrypted = channels.iter().filter(|c| c.kind() == ChannelKind::PrivateEncrypted).count();
    if encrypted > 0 && channels.len() > 1 {
        return Err(ApiError::BadRequest("An event for an encrypted channel must name only that channel".into()));
    }
    let except = match e.socket_id {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s.parse::<SocketId>().map_err(|err| ApiError::BadRequest(err.to_string()))?),
    };
    let info: Vec<String> =
        e.info.unwrap_or_default().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    for i in &info {
        if i != "user_count" && i != "subscription_count" {
            return Err(ApiError::BadRequest(format!(
                "Unknown info attribute '{}'",
                i.chars().take(32).collect::<String>()
            )));
        }
    }
    Ok(Event { name, data, channels, except, info })
}

/// The `info` attributes of each channel of an event, after publishing.
async fn info_for(node: &Node, app: &App, ev: &Event) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for c in &ev.channels {
        let counts = super::channels::counts_of(node, app, c).await;
        let mut attrs = serde_json::Map::new();
        if ev.info.iter().any(|i| i == "user_count") && c.kind() == ChannelKind::Presence {
            attrs.insert("user_count".into(), counts.users.into());
        }
        if ev.info.iter().any(|i| i == "subscription_count") {
            attrs.insert("subscription_count".into(), counts.subscriptions.into());
        }
        out.insert(c.to_string(), Value::Object(attrs));
    }
    out
}

/// Publishes an event to each of its channels; returns once the other nodes' copies are
/// on the bus (bounded by [`BUS_WAIT`]), so a client that publishes its next event after
/// this answer cannot overtake it through another node.
async fn publish(app: &Arc<App>, ev: &Event, arrival: Instant) {
    let sent: Vec<_> = ev
        .channels
        .iter()
        .filter_map(|c| app.publish(c, &ev.name, &ev.data, ev.except, Origin::Server, arrival).sent)
        .collect();
    if !sent.is_empty() {
        // A paused broker must not hold the API: its publish is dropped and counted.
        let _ = tokio::time::timeout(BUS_WAIT, futures_util::future::join_all(sent)).await;
    }
}

/// The longest an HTTP API publish waits for the cluster bus (a healthy one answers in
/// well under a millisecond; a stuck one marks the node degraded, and then nobody waits).
const BUS_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The request's arrival (the timing layer's), or now.
fn arrival_of(a: Option<Extension<Arrival>>) -> Instant {
    a.map_or_else(Instant::now, |Extension(Arrival(t))| t)
}

/// `POST /apps/{app_id}/events`.
pub async fn trigger(
    State(node): State<Arc<Node>>,
    arrival: Option<Extension<Arrival>>,
    Signed { app, body, .. }: Signed,
) -> ApiResult {
    let arrival = arrival_of(arrival);
    let ev = validate(&app, parse_json::<EventBody>(&body)?, true)?;
    publish(&app, &ev, arrival).await;
    if ev.info.is_empty() {
        Ok(Json(serde_json::json!({})))
    } else {
        Ok(Json(serde_json::json!({"channels": info_for(&node, &app, &ev).await})))
    }
}

/// `POST /apps/{app_id}/batch_events`.
pub async fn trigger_batch(
    State(node): State<Arc<Node>>,
    arrival: Option<Extension<Arrival>>,
    Signed { app, body, .. }: Signed,
) -> ApiResult {
    let arrival = arrival_of(arrival);
    let batch = parse_json::<BatchBody>(&body)?.batch.ok_or_else(|| ApiError::BadRequest("Missing 'batch'".into()))?;
    let max = app.config.max_batch_size;
    if batch.len() > max {
        return Err(ApiError::BadRequest(format!("Batch of {} events; the limit is {max}", batch.len())));
    }
    // Validate everything before publishing anything.
    let events = batch.into_iter().map(|e| validate(&app, e, false)).collect::<Result<Vec<_>, _>>()?;
    for ev in &events {
        publish(&app, ev, arrival).await;
    }
    if events.iter().all(|e| e.info.is_empty()) {
        Ok(Json(serde_json::json!({})))
    } else {
        let mut items: Vec<Value> = Vec::new();
        for ev in &events {
            let info = info_for(&node, &app, ev).await;
            items.push(info.into_iter().next().map(|(_, v)| v).unwrap_or_else(|| serde_json::json!({})));
        }
        Ok(Json(serde_json::json!({"batch": items})))
    }
}
