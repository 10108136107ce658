//! The capacity gate: can the other nodes take a node's connections without going past
//! their planning lines? A pure function over figures, shared by the drain confirmation
//! in `rtc top` (and later by `rtc roll`).

use serde::Serialize;

use crate::figures::{ClusterFigures, Health};

/// The result of the headroom check for draining one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headroom {
    /// The node to drain.
    pub node: String,
    /// Its admin URL (where the drain request goes).
    pub url: Option<String>,
    /// Its connections, which will move to the survivors.
    pub moving: u64,
    /// Nodes that would take them (live, not draining).
    pub survivors: u64,
    /// Survivors' connections now.
    pub survivors_connections: u64,
    /// The busiest survivor's connections after an even spread.
    pub busiest_after: u64,
    /// That survivor's planning line.
    pub line: u64,
    /// Whether every survivor stays at or below its line.
    pub ok: bool,
}

/// Checks whether `node` can be drained. `None` when the node is unknown.
pub fn drain_headroom(figures: &ClusterFigures, node: &str) -> Option<Headroom> {
    let target = figures.node(node)?;
    let survivors: Vec<_> =
        figures.nodes.iter().filter(|n| n.id != node && n.health.is_live() && n.health != Health::Draining).collect();
    let moving = target.connections;
    let share = if survivors.is_empty() { 0 } else { moving.div_ceil(survivors.len() as u64) };
    // The survivor closest to its own line decides.
    let worst = survivors.iter().map(|n| (n.connections + share, n.planning_line)).max_by(|a, b| {
        let fa = a.0 as f64 / a.1.max(1) as f64;
        let fb = b.0 as f64 / b.1.max(1) as f64;
        fa.total_cmp(&fb)
    });
    let (busiest_after, line) = worst.unwrap_or((0, target.planning_line));
    Some(Headroom {
        node: node.to_string(),
        url: target.url.clone(),
        moving,
        survivors: survivors.len() as u64,
        survivors_connections: survivors.iter().map(|n| n.connections).sum(),
        busiest_after,
        line,
        // Nothing to move always fits; otherwise someone must take it, within their line.
        ok: moving == 0
            || (!survivors.is_empty() && survivors.iter().all(|n| n.connections + share <= n.planning_line)),
    })
}

impl Headroom {
    /// One sentence stating the check and its result.
    pub fn summary(&self) -> String {
        use crate::units::count;
        if self.moving == 0 {
            return format!("{} holds no connections: nothing moves", self.node);
        }
        if self.survivors == 0 {
            return format!("no other live node would take {}'s {} connections", self.node, count(self.moving));
        }
        format!(
            "{} survivors hold {}; + {} from {} → busiest {} vs line {}: {}",
            self.survivors,
            count(self.survivors_connections),
            count(self.moving),
            self.node,
            count(self.busiest_after),
            count(self.line),
            if self.ok { "fits" } else { "OVER the line" }
        )
    }
}
