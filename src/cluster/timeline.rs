//! The incident timeline: what happens to the cluster, written by the nodes to a capped
//! Redis stream (`rtc:NAME:timeline`, on a Redis Cluster `rtc:{NAME}:timeline` like
//! every other key; `XADD ... MAXLEN ~ N`) for `rtc top` and
//! `rtc status --json` to show. Also the exit marker a node leaves when it stops
//! cleanly, so the console tells a drained node from a dead one.
//!
//! Best effort: a failed write is dropped (the timeline is for people, not for state).

use std::sync::Arc;

use super::conn::Con;
use rtc_model::{ExitMarker, NodeStats};

use super::Cluster;

/// Entries kept (approximately: `MAXLEN ~`).
const TIMELINE_MAXLEN: usize = 2_000;
/// How long an exit marker is kept: longer than a dead node stays listed.
const EXIT_MARKER_SECS: u64 = 7_200;

/// Appends one entry about `node`.
pub(super) async fn record(cluster: &Cluster, con: &mut Con, node: &str, kind: &str, detail: &str) {
    let _: Result<String, _> = redis::cmd("XADD")
        .arg(cluster.keys.timeline())
        .arg("MAXLEN")
        .arg("~")
        .arg(TIMELINE_MAXLEN)
        .arg("*")
        .arg("node")
        .arg(node)
        .arg("kind")
        .arg(kind)
        .arg("detail")
        .arg(detail)
        .query_async(con)
        .await;
}

/// This process joined: `started`, or `restarted` when the id's previous process left
/// an entry (`previous`), saying whether that one exited cleanly.
pub(super) async fn record_start(cluster: &Cluster, con: &mut Con, previous: Option<&NodeStats>) {
    let version = env!("CARGO_PKG_VERSION");
    let marker: Option<String> =
        redis::cmd("GET").arg(cluster.keys.exit_marker(&cluster.node_id)).query_async(con).await.unwrap_or(None);
    let marker: Option<ExitMarker> = marker.and_then(|m| serde_json::from_str(&m).ok());
    let (kind, detail) = match (previous, marker) {
        (Some(prev), m) => {
            let clean = m.is_some_and(|m| m.boot_id == prev.boot_id);
            let how = if clean { "clean exit" } else { "no clean exit (crashed or killed)" };
            ("restarted", format!("boot {} (was {}, {how}), version {version}", cluster.boot_id, prev.boot_id))
        }
        (None, Some(m)) => {
            let how = if m.drained { "drained" } else { "stopped cleanly" };
            ("restarted", format!("boot {} (was {}, {how}), version {version}", cluster.boot_id, m.boot_id))
        }
        (None, None) => ("started", format!("boot {}, version {version}", cluster.boot_id)),
    };
    record(cluster, con, &cluster.node_id, kind, &detail).await;
}

/// Records an event about this node (`drain_begun`, `cordoned`, `uncordoned`) in the
/// background; never blocks the caller. Dropped when Redis is not connected.
pub(super) fn record_event(cluster: Arc<Cluster>, kind: &'static str, detail: String) {
    tokio::spawn(async move {
        let Some(mut con) = cluster.cmd.read().clone() else { return };
        record(&cluster, &mut con, &cluster.node_id, kind, &detail).await;
    });
}

/// This process is stopping cleanly: the exit marker, and `drain_finished` (with what
/// the drain did, `detail`) or `stopped`.
pub(super) async fn record_exit(cluster: &Cluster, drained: bool, detail: Option<String>) {
    let Some(mut con) = cluster.cmd.read().clone() else {
        return;
    };
    let marker = ExitMarker { boot_id: cluster.boot_id.clone(), drained, at_ms: rtc_model::unix_ms() };
    if let Ok(json) = serde_json::to_string(&marker) {
        let _: Result<(), _> = redis::cmd("SET")
            .arg(cluster.keys.exit_marker(&cluster.node_id))
            .arg(json)
            .arg("EX")
            .arg(EXIT_MARKER_SECS)
            .query_async(&mut con)
            .await;
    }
    let (kind, detail) = if drained {
        ("drain_finished", format!("drained; exiting{}", detail.map(|d| format!(": {d}")).unwrap_or_default()))
    } else {
        ("stopped", "stopped cleanly without a drain".to_string())
    };
    record(cluster, &mut con, &cluster.node_id, kind, &detail).await;
}
