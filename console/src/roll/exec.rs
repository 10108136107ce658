//! Runs a roll: the registry reads, the lock, the steps and their events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc_model::{NodeState, NodeStats};
use serde_json::json;

use super::plan::{self, NodeLoad};
use super::{Exit, RollArgs};
use crate::client::{printable, valid_node_id, AdminClient};
use crate::collect::Source;
use crate::registry::{Registry, RegistryError};
use crate::snapshot::NodeProblem;

const POLL: Duration = Duration::from_millis(250);
/// How long the roll lock lives without a refresh (a crashed roll frees it).
const LOCK_TTL: Duration = Duration::from_secs(60);

/// Prints events: NDJSON with `--json`, readable lines otherwise.
struct Out {
    json: bool,
}

impl Out {
    fn event(&self, event: &str, fields: serde_json::Value, line: &str) {
        if self.json {
            let mut v = json!({"v": 1, "ts": rtc_model::unix_ms(), "event": event});
            if let (Some(obj), serde_json::Value::Object(f)) = (v.as_object_mut(), fields) {
                obj.extend(f);
            }
            println!("{v}");
        } else {
            println!("{line}");
        }
    }
}

/// The registry as a roll sees it.
struct Nodes {
    /// Trusted live entries (see [`crate::client::verify_entry`]), by id.
    nodes: Vec<NodeStats>,
    /// Entries that failed the trust check: printable id and reason. Never acted on.
    untrusted: Vec<(String, String)>,
}

/// Every registered node's latest stats (absent when its entry has expired), checked
/// against the admin token.
async fn read_nodes(registry: &mut Registry, cluster: &str, token: &str) -> Result<Nodes, RegistryError> {
    let mut reg = Nodes { nodes: Vec::new(), untrusted: Vec::new() };
    for (id, entry) in registry.entries(cluster, Some(token)).await? {
        match entry {
            Ok(stats) => reg.nodes.push(stats),
            Err(NodeProblem::Untrusted(why)) => reg.untrusted.push((printable(&id), why)),
            // Expired (stopped heartbeating) or undecodable: not a node to roll.
            Err(_) => {}
        }
    }
    reg.nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    reg.untrusted.sort();
    Ok(reg)
}

/// Splits an `--exec` template into argv once, as a POSIX shell would split words
/// (quotes and backslashes), before any substitution: a node id can never add words,
/// quotes or commands.
///
/// # Errors
/// Unbalanced quotes or an empty template.
pub fn exec_argv(template: &str) -> Result<Vec<String>, String> {
    match shlex::split(template) {
        Some(argv) if !argv.is_empty() => Ok(argv),
        Some(_) => Err("--exec is empty".to_string()),
        None => Err(format!("--exec '{template}': unbalanced quotes or a trailing backslash")),
    }
}

/// The command for one node: `{node}` replaced inside each argument.
pub fn exec_command(argv: &[String], node: &str) -> Vec<String> {
    argv.iter().map(|a| a.replace("{node}", node)).collect()
}

fn loads(nodes: &[NodeStats]) -> Vec<NodeLoad> {
    nodes
        .iter()
        .filter(|n| n.state != Some(NodeState::Draining))
        .map(|n| NodeLoad { id: n.node_id.clone(), connections: n.connections, line: n.planning_line.max(1) })
        .collect()
}

struct Ctx {
    args: RollArgs,
    cluster: String,
    registry: Registry,
    admin: AdminClient,
    out: Out,
    owner: String,
    line: Option<u64>,
    cordoned: Vec<(String, String)>,
    /// The admin token, which also verifies registry entries.
    token: String,
    /// `--exec` split into argv.
    exec: Option<Vec<String>>,
}

pub(super) async fn run(args: RollArgs) -> Exit {
    let out = Out { json: args.json };
    let fail = |code: Exit, msg: String| {
        eprintln!("rtc roll: {msg}");
        code
    };
    let resolved = match args.source.resolve() {
        Ok(r) => r,
        Err(e) => return fail(Exit::Usage, e),
    };
    let Source::Cluster { url, cluster } = resolved.source.clone() else {
        return fail(Exit::Usage, "rtc roll needs a cluster: --cluster NAME (rtc.toml), --bus or --redis-url".into());
    };
    let registry = match Registry::connect(&url).await {
        Ok(r) => r,
        Err(e) if e.bad_url => return fail(Exit::Usage, e.text),
        Err(e) => return fail(Exit::Unavailable, format!("cannot reach the cluster's registry: {e}")),
    };
    let Some(token) = args.source.token.clone().or(resolved.token.clone()) else {
        return fail(
            Exit::Usage,
            "rtc roll needs the admin token (--token, RTC_ADMIN_TOKEN or the cluster's admin_token): \
             it verifies the registry's entries and cordons and drains the nodes"
                .into(),
        );
    };
    let exec = match args.exec.as_deref().map(exec_argv).transpose() {
        Ok(e) => e,
        Err(e) => return fail(Exit::Usage, e),
    };
    let admin = match AdminClient::new(Some(token.clone())) {
        Ok(a) => a,
        Err(e) => return fail(Exit::Failed, e),
    };
    let owner = format!(
        "{}@{} pid {}",
        std::env::var("USER").unwrap_or_else(|_| "someone".into()),
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
        std::process::id()
    );
    let line = args.source.planning_line.or(resolved.planning_line);
    let mut ctx = Ctx { args, cluster, registry, admin, out, owner, line, cordoned: Vec::new(), token, exec };
    let code = roll(&mut ctx).await;
    uncordon_all(&mut ctx).await;
    code
}

async fn roll(ctx: &mut Ctx) -> Exit {
    let nodes = match read_nodes(&mut ctx.registry, &ctx.cluster, &ctx.token).await {
        Ok(reg) => {
            for (id, why) in &reg.untrusted {
                ctx.out.event(
                    "untrusted",
                    json!({"node": id, "reason": why}),
                    &format!("ignoring registry entry '{id}': untrusted: {why}"),
                );
            }
            reg.nodes
        }
        Err(e) => {
            eprintln!("rtc roll: cannot read the registry: {e}");
            return Exit::Unavailable;
        }
    };
    if nodes.is_empty() {
        eprintln!("rtc roll: no live node in cluster '{}'", ctx.cluster);
        return Exit::Usage;
    }
    let mut order: Vec<String> = if ctx.args.order.is_empty() {
        nodes.iter().map(|n| n.node_id.clone()).collect()
    } else {
        ctx.args.order.clone()
    };
    for id in &order {
        if !nodes.iter().any(|n| &n.node_id == id) {
            eprintln!(
                "rtc roll: unknown node '{}' (live and trusted: {})",
                printable(id),
                nodes.iter().map(|n| n.node_id.as_str()).collect::<Vec<_>>().join(", ")
            );
            return Exit::Usage;
        }
    }
    // --order must name every live node: a node silently left out is never rolled.
    let left_out: Vec<&str> =
        nodes.iter().map(|n| n.node_id.as_str()).filter(|id| !order.iter().any(|o| o == id)).collect();
    if !left_out.is_empty() {
        eprintln!(
            "rtc roll: --order leaves out {}: list every live node (use --from NODE to start part way)",
            left_out.join(", ")
        );
        return Exit::Usage;
    }
    let mut done: Vec<String> = Vec::new();
    // The lock and the run record; a dry run that does not resume touches neither.
    let store = if ctx.args.dry_run && !ctx.args.resume {
        None
    } else {
        match ctx.registry.roll_store(&ctx.cluster).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("rtc roll: cannot reach the roll's lock: {e}");
                return Exit::Unavailable;
            }
        }
    };
    if let (true, Some(store)) = (ctx.args.resume, &store) {
        let raw = store.run_record().await;
        let Some(run) = raw.and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok()) else {
            eprintln!("rtc roll: no interrupted roll recorded for cluster '{}'", ctx.cluster);
            return Exit::Usage;
        };
        order = run["order"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or(order);
        done = run["done"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        // The record is in the engine too: only node ids are kept (and printed).
        order.retain(|id| valid_node_id(id));
    }
    if let Some(from) = &ctx.args.from {
        match order.iter().position(|id| id == from) {
            Some(i) => done = order[..i].to_vec(),
            None => {
                eprintln!("rtc roll: --from '{from}' is not in the order");
                return Exit::Usage;
            }
        }
    }
    let todo: Vec<String> = order.iter().filter(|id| !done.contains(id)).cloned().collect();

    if ctx.args.dry_run {
        let steps = plan::plan_with(&loads(&nodes), &todo, ctx.line, !ctx.args.no_cordon);
        let mut all_ok = true;
        for (i, s) in steps.iter().enumerate() {
            all_ok &= s.step.ok;
            let cordon = match &s.takers {
                Some(t) if t.is_empty() => String::new(),
                Some(t) => format!(" (the others cordoned: its sockets go to {})", t.join(", ")),
                None => String::new(),
            };
            ctx.out.event(
                "plan_step",
                json!({"step": i + 1, "node": s.step.node, "ok": s.step.ok, "cordon": s.cordon, "moving": s.step.moving,
                       "share": s.step.share, "busiest": s.step.busiest, "line": s.step.line}),
                &format!("step {}: {}{cordon}", i + 1, s.step.arithmetic()),
            );
        }
        let verdict = if all_ok || ctx.args.force {
            "plan fits"
        } else {
            "plan refused by the capacity gate (use --force to roll anyway)"
        };
        ctx.out.event("plan", json!({"ok": all_ok, "steps": steps.len()}), verdict);
        return if all_ok || ctx.args.force { Exit::Ok } else { Exit::Refused };
    }

    let Some(store) = store else { return Exit::Failed };
    // One roll at a time per cluster.
    match store.acquire(&ctx.owner, LOCK_TTL).await {
        Ok(None) => {}
        Ok(Some(holder)) => {
            eprintln!("rtc roll: a roll of '{}' is in progress by {holder}", ctx.cluster);
            return Exit::Refused;
        }
        Err(e) => {
            eprintln!("rtc roll: cannot take the roll's lock: {e}");
            return Exit::Unavailable;
        }
    }
    let refresher = {
        let (store, owner) = (store.clone(), ctx.owner.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_TTL / 4).await;
                store.refresh(&owner, LOCK_TTL).await;
            }
        })
    };
    let abort = Arc::new(AtomicBool::new(false));
    {
        let abort = abort.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nrtc roll: stopping after the current step (Ctrl-C)");
                abort.store(true, Ordering::Release);
            }
        });
    }
    ctx.out.event(
        "start",
        json!({"cluster": ctx.cluster, "order": order, "todo": todo, "owner": ctx.owner}),
        &format!("rolling cluster '{}': {}", ctx.cluster, todo.join(" → ")),
    );
    let started = Instant::now();
    let mut result = Exit::Ok;
    for node in &todo {
        if abort.load(Ordering::Acquire) {
            ctx.out.event(
                "aborted",
                json!({"reason": "aborted", "next": node}),
                &format!("aborted before {node}; resume with --resume"),
            );
            result = Exit::Aborted;
            break;
        }
        match step(ctx, node, &done).await {
            Ok(()) => {
                done.push(node.clone());
                let record =
                    json!({"order": order, "done": done, "owner": ctx.owner, "updated_ms": rtc_model::unix_ms()})
                        .to_string();
                store.set_run_record(&record).await;
            }
            Err((code, reason, msg)) => {
                ctx.out.event(
                    "failed",
                    json!({"node": node, "reason": reason, "message": msg}),
                    &format!("{node}: {msg}"),
                );
                let hint = if reason == "capacity_gate" {
                    "make room (add a node, or raise --planning-line if the line is too cautious), then \
                     resume with --resume, or pass --force"
                } else {
                    "fix it, then resume with --resume"
                };
                eprintln!("rtc roll: stopped at {node}; {hint} (or --from {node})");
                result = code;
                let record =
                    json!({"order": order, "done": done, "owner": ctx.owner, "updated_ms": rtc_model::unix_ms()})
                        .to_string();
                store.set_run_record(&record).await;
                break;
            }
        }
    }
    refresher.abort();
    store.release().await;
    if result == Exit::Ok {
        store.clear_run_record().await;
        ctx.out.event(
            "summary",
            json!({"nodes": done, "elapsed_secs": started.elapsed().as_secs_f64()}),
            &format!("roll done: {} nodes in {:.0} s", todo.len(), started.elapsed().as_secs_f64()),
        );
    }
    result
}

type StepError = (Exit, &'static str, String);

async fn step(ctx: &mut Ctx, node: &str, done: &[String]) -> Result<(), StepError> {
    let unreachable = |e: RegistryError| (Exit::Unavailable, "unreachable", format!("registry: {e}"));
    let nodes = read_nodes(&mut ctx.registry, &ctx.cluster, &ctx.token).await.map_err(unreachable)?.nodes;
    // Only trusted entries are in `nodes`, and their ids passed the id grammar.
    let Some(target) = nodes.iter().find(|n| n.node_id == node && valid_node_id(node)).cloned() else {
        let node = printable(node);
        return Err((
            Exit::Failed,
            "node_missing",
            format!("{node} is not in the registry as a trusted entry (not running?)"),
        ));
    };
    let l = loads(&nodes);
    let rolled: Vec<String> = done.iter().filter(|id| nodes.iter().any(|n| &n.node_id == *id)).cloned().collect();
    let Some((takers, gate)) = plan::choose(&l, node, &rolled, ctx.line, !ctx.args.no_cordon) else {
        return Err((Exit::Failed, "node_missing", format!("{node} is draining already")));
    };
    let cordon = takers.is_some();
    if !gate.ok && !ctx.args.force {
        return Err((Exit::Refused, "capacity_gate", format!("refused by the capacity gate: {}", gate.arithmetic())));
    }
    ctx.out.event(
        "step_start",
        json!({"node": node, "connections": target.connections, "cordon": cordon, "gate_ok": gate.ok, "arithmetic": gate.arithmetic()}),
        &format!("{node}: {}{}", gate.arithmetic(), if cordon { " (cordoning the other nodes meanwhile)" } else { "" }),
    );
    if cordon {
        let takers = takers.unwrap_or_default();
        for n in nodes.iter().filter(|n| n.node_id != node && !takers.contains(&n.node_id)) {
            if post(ctx, &n.advertise_url, "cordon", json!({"cordon": true})).await.is_ok() {
                ctx.cordoned.push((n.node_id.clone(), n.advertise_url.clone()));
            }
        }
    }
    let old_boot = target.boot_id.clone();
    let deadline = Instant::now() + Duration::from_secs_f64(ctx.args.timeout.max(1.0));
    let mut child = None;
    match &ctx.exec {
        Some(argv) => {
            // No shell: argv[0] is run directly, the node id is one argument's text.
            let argv = exec_command(argv, node);
            let spawned = match argv.split_first() {
                Some((program, args)) => tokio::process::Command::new(program).args(args).kill_on_drop(true).spawn(),
                None => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command")),
            };
            match spawned {
                Ok(c) => child = Some(c),
                Err(e) => return Err((Exit::Failed, "exec_failed", format!("cannot run {argv:?}: {e}"))),
            }
        }
        None => {
            if let Err((status, msg)) = post(ctx, &target.advertise_url, "drain", json!({})).await {
                if status != Some(409) {
                    return Err((Exit::Unavailable, "drain_refused", format!("drain request failed: {msg}")));
                }
            }
        }
    }
    // Wait for the old process to go (its entry deleted, or a new boot in its place).
    let mut last_print = Instant::now();
    loop {
        if Instant::now() > deadline {
            return Err((Exit::Failed, "drain_timeout", format!("{node} did not finish draining in time")));
        }
        let nodes = read_nodes(&mut ctx.registry, &ctx.cluster, &ctx.token).await.map_err(unreachable)?.nodes;
        match nodes.iter().find(|n| n.node_id == node) {
            None => break,
            Some(n) if n.boot_id != old_boot => break,
            Some(n) => {
                if last_print.elapsed() >= Duration::from_secs(1) {
                    last_print = Instant::now();
                    if let Some(d) = &n.drain {
                        ctx.out.event(
                            "shed_tick",
                            json!({"node": node, "remaining": d.sockets_left, "hints": d.hints_sent, "elapsed_secs": d.elapsed_secs}),
                            &format!("  {node} draining: {} left, {} hints, {:.1} s", d.sockets_left, d.hints_sent, d.elapsed_secs),
                        );
                    }
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
    ctx.out.event("drained", json!({"node": node}), &format!("  {node} drained; waiting for it to come back"));
    // Wait for the new process: serving, new boot id.
    let new_boot = loop {
        if Instant::now() > deadline {
            return Err((Exit::Failed, "health_timeout", format!("{node} did not come back serving in time")));
        }
        let nodes = read_nodes(&mut ctx.registry, &ctx.cluster, &ctx.token).await.map_err(unreachable)?.nodes;
        if let Some(n) = nodes.iter().find(|n| n.node_id == node && n.boot_id != old_boot) {
            if n.state == Some(NodeState::Serving) {
                break n.boot_id.clone();
            }
        }
        tokio::time::sleep(POLL).await;
    };
    uncordon_all(ctx).await;
    // Minimum healthy time: still the same process, still serving.
    tokio::time::sleep(Duration::from_secs_f64(ctx.args.settle.max(0.0))).await;
    let nodes = read_nodes(&mut ctx.registry, &ctx.cluster, &ctx.token).await.map_err(unreachable)?.nodes;
    match nodes.iter().find(|n| n.node_id == node) {
        Some(n) if n.boot_id == new_boot && n.state == Some(NodeState::Serving) => {}
        _ => {
            return Err((Exit::Failed, "not_settled", format!("{node} did not stay serving for {} s", ctx.args.settle)))
        }
    }
    if let Some(mut c) = child {
        match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), c.wait()).await {
            Ok(Ok(s)) if s.success() => {}
            Ok(Ok(s)) => return Err((Exit::Failed, "exec_failed", format!("--exec exited with {s}"))),
            _ => return Err((Exit::Failed, "exec_failed", "--exec did not finish in time".into())),
        }
    }
    let total: u64 = nodes.iter().map(|n| n.connections).sum();
    ctx.out.event(
        "step_done",
        json!({"node": node, "boot_id": new_boot, "cluster_connections": total}),
        &format!("{node}: back (boot {new_boot}); cluster holds {total} sockets"),
    );
    Ok(())
}

async fn post(
    ctx: &Ctx,
    url: &str,
    what: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, (Option<u16>, String)> {
    if what == "drain" {
        ctx.admin.request_drain_with(url, &body).await
    } else {
        ctx.admin.post_admin(url, what, &body).await
    }
}

async fn uncordon_all(ctx: &mut Ctx) {
    let nodes = std::mem::take(&mut ctx.cordoned);
    for (_, url) in nodes {
        let _ = ctx.admin.post_admin(&url, "cordon", &json!({"cordon": false})).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_templates_are_split_once_and_ids_substituted_inside_words() {
        let argv = exec_argv("echo restarting {node}").unwrap();
        assert_eq!(exec_command(&argv, "0;touch${IFS}PWNED;#"), ["echo", "restarting", "0;touch${IFS}PWNED;#"]);
        let argv = exec_argv(r#"ssh deploy@host 'systemctl restart "rtc@{node}"' --label=n-{node}"#).unwrap();
        assert_eq!(
            exec_command(&argv, "node-2"),
            ["ssh", "deploy@host", r#"systemctl restart "rtc@node-2""#, "--label=n-node-2"]
        );
        assert!(exec_argv("echo 'unbalanced").is_err());
        assert!(exec_argv("   ").is_err());
    }
}
