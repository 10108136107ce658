//! The roll plan and its capacity gate: pure functions over the nodes' figures.
//!
//! Draining a node moves its sockets to the survivors (pusher-js reconnects at once;
//! the load balancer spreads them). The gate projects an even spread and refuses the
//! step when any survivor would pass its planning line. The plan simulates the whole
//! roll: each drained node comes back empty and its sockets stay where they landed.

use serde::Serialize;

/// What the plan needs to know about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoad {
    /// Node id.
    pub id: String,
    /// Open sockets.
    pub connections: u64,
    /// Its planning line.
    pub line: u64,
}

/// One step: draining `node` with the cluster as projected before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The node to drain.
    pub node: String,
    /// Its sockets, which move.
    pub moving: u64,
    /// Survivors and their projected sockets before the step.
    pub survivors: Vec<(String, u64)>,
    /// Sockets each survivor takes (even spread, rounded up).
    pub share: u64,
    /// The busiest survivor after the step.
    pub busiest: Option<(String, u64)>,
    /// The planning line it is checked against.
    pub line: u64,
    /// Whether every survivor stays at or below the line.
    pub ok: bool,
}

impl Step {
    /// The headroom arithmetic in one line.
    pub fn arithmetic(&self) -> String {
        if self.moving == 0 {
            return format!("{}: no sockets to move", self.node);
        }
        if self.survivors.is_empty() {
            return format!("{}: {} sockets and no other node to take them", self.node, self.moving);
        }
        let before: Vec<String> = self.survivors.iter().map(|(id, c)| format!("{id} {c}")).collect();
        let (bid, b) = self.busiest.clone().unwrap_or_default();
        format!(
            "{}: {} sockets over {} survivors ({}) = +{} each; busiest {bid} {} → {b} vs line {}: {}",
            self.node,
            self.moving,
            self.survivors.len(),
            before.join(", "),
            self.share,
            b - self.share,
            self.line,
            if self.ok { "fits" } else { "OVER the line" }
        )
    }
}

/// The gate for draining `node` now, its sockets spread over every other node, or only
/// over `takers` when the others are cordoned. `line` overrides the nodes' own lines.
pub fn gate(nodes: &[NodeLoad], node: &str, line: Option<u64>, takers: Option<&[String]>) -> Option<Step> {
    let target = nodes.iter().find(|n| n.id == node)?;
    let survivors: Vec<&NodeLoad> =
        nodes.iter().filter(|n| n.id != node && takers.is_none_or(|t| t.contains(&n.id))).collect();
    let moving = target.connections;
    let share = if survivors.is_empty() { 0 } else { moving.div_ceil(survivors.len() as u64) };
    let line_of = |n: &NodeLoad| line.unwrap_or(n.line).max(1);
    let busiest = survivors
        .iter()
        .max_by(|a, b| {
            let fa = (a.connections + share) as f64 / line_of(a) as f64;
            let fb = (b.connections + share) as f64 / line_of(b) as f64;
            fa.total_cmp(&fb)
        })
        .map(|n| (n.id.clone(), n.connections + share, line_of(n)));
    let ok = moving == 0 || (!survivors.is_empty() && survivors.iter().all(|n| n.connections + share <= line_of(n)));
    Some(Step {
        node: node.to_string(),
        moving,
        survivors: survivors.iter().map(|n| (n.id.clone(), n.connections)).collect(),
        share,
        busiest: busiest.as_ref().map(|(id, c, _)| (id.clone(), *c)),
        line: busiest.map(|(_, _, l)| l).unwrap_or_else(|| line.unwrap_or(target.line)),
        ok,
    })
}

/// A planned step: the gate, and whether the not-yet-rolled nodes are cordoned during
/// it (so the moving sockets land only on nodes already rolled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    /// The gate.
    pub step: Step,
    /// Cordon the nodes not yet rolled while this one drains.
    pub cordon: bool,
    /// When some nodes are cordoned: the nodes that take the sockets.
    pub takers: Option<Vec<String>>,
}

/// Which survivors take `node`'s sockets, and the gate for it. Prefers the nodes already
/// rolled (the others are cordoned, so clients are not moved twice); otherwise all
/// survivors, cordoning the busiest ones while the rest can still take everything within
/// the line. `None` takers means every survivor (nothing cordoned).
pub fn choose(
    loads: &[NodeLoad],
    node: &str,
    rolled: &[String],
    line: Option<u64>,
    allow_cordon: bool,
) -> Option<(Option<Vec<String>>, Step)> {
    if allow_cordon && can_cordon_others(loads, node, rolled, line) {
        let takers: Vec<String> = rolled.iter().filter(|id| id.as_str() != node).cloned().collect();
        let step = gate(loads, node, line, Some(&takers))?;
        return Some((Some(takers), step));
    }
    let all = gate(loads, node, line, None)?;
    if all.ok || !allow_cordon {
        return Some((None, all));
    }
    let mut takers: Vec<&NodeLoad> = loads.iter().filter(|n| n.id != node).collect();
    takers.sort_by_key(|n| n.connections);
    while takers.len() > 1 {
        takers.pop(); // cordon the busiest
        let ids: Vec<String> = takers.iter().map(|n| n.id.clone()).collect();
        let step = gate(loads, node, line, Some(&ids))?;
        if step.ok {
            return Some((Some(ids), step));
        }
    }
    Some((None, all))
}

/// Simulates the roll in `order` from the current loads; every step is gated on the
/// projected loads, with cordons chosen by [`choose`].
pub fn plan(nodes: &[NodeLoad], order: &[String], line: Option<u64>) -> Vec<PlannedStep> {
    plan_with(nodes, order, line, true)
}

/// [`plan`], with cordons only when `allow_cordon` (false for `--no-cordon`).
pub fn plan_with(nodes: &[NodeLoad], order: &[String], line: Option<u64>, allow_cordon: bool) -> Vec<PlannedStep> {
    let mut loads: Vec<NodeLoad> = nodes.to_vec();
    let mut rolled: Vec<String> = Vec::new();
    let mut steps = Vec::new();
    for id in order {
        let Some((takers, step)) = choose(&loads, id, &rolled, line, allow_cordon) else { continue };
        spread(&mut loads, id, takers.as_deref());
        rolled.push(id.clone());
        steps.push(PlannedStep { step, cordon: takers.is_some(), takers: takers.clone() });
    }
    steps
}

/// Moves `id`'s sockets evenly onto the takers (all others by default); `id` comes back
/// empty.
fn spread(loads: &mut [NodeLoad], id: &str, takers: Option<&[String]>) {
    let moving = loads.iter().find(|n| n.id == id).map_or(0, |n| n.connections);
    let idx: Vec<usize> =
        (0..loads.len()).filter(|&i| loads[i].id != id && takers.is_none_or(|t| t.contains(&loads[i].id))).collect();
    if !idx.is_empty() {
        let k = idx.len() as u64;
        for (j, &i) in idx.iter().enumerate() {
            loads[i].connections += moving / k + u64::from((j as u64) < moving % k);
        }
    }
    if let Some(n) = loads.iter_mut().find(|n| n.id == id) {
        n.connections = 0;
    }
}

/// Whether the not-yet-rolled nodes can be cordoned while `node` drains: the nodes
/// already rolled (`rolled`, live) must take all of its sockets within their lines.
pub fn can_cordon_others(nodes: &[NodeLoad], node: &str, rolled: &[String], line: Option<u64>) -> bool {
    let Some(target) = nodes.iter().find(|n| n.id == node) else { return false };
    let takers: Vec<&NodeLoad> = nodes.iter().filter(|n| rolled.contains(&n.id) && n.id != node).collect();
    if takers.is_empty() {
        return false;
    }
    let share = target.connections.div_ceil(takers.len() as u64);
    takers.iter().all(|n| n.connections + share <= line.unwrap_or(n.line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: &str, c: u64) -> NodeLoad {
        NodeLoad { id: id.into(), connections: c, line: 12_000 }
    }

    #[test]
    fn gate_spreads_evenly_and_refuses_past_the_line() {
        let nodes = [n("a", 9_000), n("b", 10_000), n("c", 8_000)];
        let s = gate(&nodes, "a", None, None).unwrap();
        assert_eq!(s.share, 4_500);
        assert_eq!(s.busiest, Some(("b".into(), 14_500)));
        assert!(!s.ok);
        assert!(s.arithmetic().contains("OVER the line"), "{}", s.arithmetic());
        let nodes = [n("a", 3_000), n("b", 5_000), n("c", 5_000)];
        let s = gate(&nodes, "a", None, None).unwrap();
        assert!(s.ok);
        assert_eq!(s.busiest.unwrap().1, 6_500);
        assert!(gate(&nodes, "zz", None, None).is_none());
        assert!(gate(&[n("a", 1)], "a", None, None).is_some_and(|s| !s.ok));
        assert!(gate(&[n("a", 0)], "a", None, None).is_some_and(|s| s.ok));
    }

    #[test]
    fn the_plan_carries_each_step_s_sockets_forward_and_cordons_when_it_can() {
        let nodes = [n("a", 6_000), n("b", 6_000), n("c", 6_000)];
        let order: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let steps = plan(&nodes, &order, None);
        assert_eq!(steps.len(), 3);
        // Step a: nothing rolled yet, spread over b and c (9,000 each).
        assert!(!steps[0].cordon);
        assert_eq!(steps[0].step.busiest.as_ref().map(|b| b.1), Some(9_000));
        // Step b: c is cordoned; a (rolled, empty) takes all 9,000.
        assert!(steps[1].cordon);
        assert_eq!(steps[1].step.moving, 9_000);
        assert_eq!(steps[1].step.busiest, Some(("a".into(), 9_000)));
        // Step c: an even spread over a (9,000) and b (0) would put a at 13,500, so a is
        // cordoned and b takes all 9,000.
        assert!(steps[2].cordon && steps[2].step.ok, "{}", steps[2].step.arithmetic());
        assert_eq!(steps[2].step.busiest, Some(("b".into(), 9_000)));
        assert!(steps.iter().all(|s| s.step.ok));
        let tight = plan(&nodes, &order, Some(8_000));
        assert!(!tight[0].step.ok, "{}", tight[0].step.arithmetic());
    }

    #[test]
    fn no_cordon_plans_without_cordons() {
        let nodes = [n("a", 6_000), n("b", 6_000), n("c", 6_000)];
        let order: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert!(plan(&nodes, &order, None).iter().any(|s| s.cordon));
        assert!(plan_with(&nodes, &order, None, false).iter().all(|s| !s.cordon));
    }

    #[test]
    fn cordon_needs_rolled_nodes_with_room() {
        let nodes = [n("a", 0), n("b", 6_000), n("c", 6_000)];
        assert!(can_cordon_others(&nodes, "b", &["a".into()], None));
        assert!(!can_cordon_others(&nodes, "b", &[], None));
        assert!(!can_cordon_others(&nodes, "b", &["a".into()], Some(5_000)));
    }
}
