//! The server against a second engine: two in-process nodes joined by an in-memory
//! engine (written here against `rtc::port`, sharing one hub), real sockets on each.
//! The outcome handler must give every socket exactly one `member_added` and one
//! `member_removed` when the same user comes and goes on both nodes, whichever node the
//! engine finds first or last, and the webhooks of those edges and of a channel's
//! cluster-wide occupancy once each: the server relies on the port's decisions only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{Client, KEY};
use rtc::cli::ServeArgs;
use rtc::config;
use rtc::metrics::Metrics;
use rtc::port::{
    Answer, BoxFuture, BusMessage, Claims, ClusterPort, Inbox, LiveView, Outcome, Query, StateOp, Unreachable,
};
use rtc::server::Node;
use rtc_model::PubSubStats;
use tokio::sync::mpsc;

/// A presence channel's members: user → (info, the nodes that have the user).
type Members = HashMap<String, (String, HashSet<usize>)>;

/// Shared state of every node of the in-memory cluster.
#[derive(Default)]
struct Hub {
    /// (app, channel) → members.
    presence: HashMap<(String, String), Members>,
    /// (app, channel) → node → local subscribers.
    subs: HashMap<(String, String), HashMap<usize, usize>>,
    /// The inboxes of the started nodes, by node index.
    inboxes: HashMap<usize, Arc<dyn Inbox>>,
}

/// One node's in-memory engine: operations are applied in order on one task.
struct Memory {
    me: usize,
    hub: Arc<Mutex<Hub>>,
    ops: mpsc::UnboundedSender<StateOp>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<StateOp>>>,
    inbox: OnceLock<Arc<dyn Inbox>>,
}

impl Memory {
    fn new(me: usize, hub: Arc<Mutex<Hub>>) -> Arc<Memory> {
        let (ops, rx) = mpsc::unbounded_channel();
        Arc::new(Memory { me, hub, ops, rx: Mutex::new(Some(rx)), inbox: OnceLock::new() })
    }

    /// Applies one operation to the hub; returns the outcomes for this node.
    fn apply(&self, op: StateOp) -> Vec<Outcome> {
        let mut hub = self.hub.lock().unwrap();
        match op {
            StateOp::PresenceJoin { app, channel, user_id, info, socket, local_first, .. } => {
                let users = hub.presence.entry((app.clone(), channel.to_string())).or_default();
                let entry = users.entry(user_id.to_string()).or_insert_with(|| (info.to_string(), HashSet::new()));
                let here = entry.1.contains(&self.me);
                let elsewhere = entry.1.iter().any(|n| *n != self.me);
                entry.1.insert(self.me);
                let members: Vec<(String, String)> = users.iter().map(|(u, (i, _))| (u.clone(), i.clone())).collect();
                let mut out = vec![Outcome::MemberList {
                    app: app.clone(),
                    channel: channel.clone(),
                    socket,
                    members: Some(members),
                }];
                if !elsewhere && (local_first || !here) {
                    let (user_id, info) = (user_id.to_string(), info.to_string());
                    out.push(Outcome::MemberAdded { app, channel, user_id, info, except: Some(socket) });
                }
                out
            }
            StateOp::PresenceLeave { app, channel, user_id, .. } => {
                let users = hub.presence.entry((app.clone(), channel.to_string())).or_default();
                let Some(entry) = users.get_mut(&*user_id) else { return Vec::new() };
                entry.1.remove(&self.me);
                if !entry.1.is_empty() {
                    return Vec::new();
                }
                users.remove(&*user_id);
                vec![Outcome::MemberRemoved { app, channel, user_id: user_id.to_string() }]
            }
            StateOp::SubsCount { app, channel, local, emit, occupancy } => {
                let counts = hub.subs.entry((app.clone(), channel.to_string())).or_default();
                let before: usize = counts.values().sum();
                counts.insert(self.me, local);
                let after: usize = counts.values().sum();
                let mut out = Vec::new();
                if occupancy && (before == 0) != (after == 0) {
                    out.push(Outcome::Occupancy { app: app.clone(), channel: channel.clone(), occupied: after > 0 });
                }
                if emit {
                    out.push(Outcome::SubscriptionCount { app, channel, total: after as u64 });
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

impl Claims for Memory {
    fn claim(&self, _name: String, _ttl: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async { false })
    }
    fn take(&self, _name: String) -> BoxFuture<'_, Option<bool>> {
        Box::pin(async { None })
    }
}

impl ClusterPort for Memory {
    fn start(self: Arc<Self>, inbox: Arc<dyn Inbox>) {
        let _ = self.inbox.set(inbox.clone());
        self.hub.lock().unwrap().inboxes.insert(self.me, inbox.clone());
        let mut rx = self.rx.lock().unwrap().take().expect("started once");
        tokio::spawn(async move {
            while let Some(op) = rx.recv().await {
                for outcome in self.apply(op) {
                    inbox.outcome(outcome).await;
                }
            }
        });
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    fn publish(&self, app: &str, msg: BusMessage) {
        let others: Vec<Arc<dyn Inbox>> =
            self.hub.lock().unwrap().inboxes.iter().filter(|(n, _)| **n != self.me).map(|(_, i)| i.clone()).collect();
        for inbox in others {
            inbox.deliver(app, msg.clone(), std::time::Instant::now());
        }
    }
    fn submit(&self, op: StateOp) {
        let _ = self.ops.send(op);
    }
    fn query(&self, _query: Query) -> BoxFuture<'_, Result<Answer, Unreachable>> {
        Box::pin(async { Err(Unreachable("not answered by the in-memory test engine".into())) })
    }
    fn is_degraded(&self) -> bool {
        false
    }
    fn pubsub_stats(&self) -> PubSubStats {
        PubSubStats::default()
    }
    fn live(&self) -> LiveView {
        LiveView::default()
    }
    fn record_event(self: Arc<Self>, _kind: &'static str, _detail: String) {}
    fn describe(&self) -> String {
        format!("in-memory test engine, node {}", self.me)
    }
}

/// Starts node `me` of the in-memory cluster on a free loopback port (`extra`: app TOML).
async fn start_node(me: usize, hub: &Arc<Mutex<Hub>>, extra: &str) -> (SocketAddr, Arc<Node>) {
    let file = config::parse_file(&common::one_app(extra), "test.toml").expect("test config parses");
    let args = ServeArgs { host: Some("127.0.0.1".into()), port: Some(0), ..Default::default() };
    let cfg = config::resolve(&args, file, &|_| None).expect("test config resolves");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let engine: Arc<dyn ClusterPort> = Memory::new(me, hub.clone());
    let node = Node::with_cluster(cfg, format!("boot-{me}"), Arc::new(Metrics::new()), Some(engine));
    let shutdown = node.shutdown.clone().cancelled_owned();
    tokio::spawn(rtc::serve::serve_node(listener, node.clone(), shutdown));
    (addr, node)
}

async fn connect(addr: SocketAddr) -> Client {
    Client::connect(&format!("ws://{addr}/app/{KEY}?protocol=7&client=js&version=8.4.0&flash=false")).await
}

/// The user ids of the `member_added`/`member_removed` events `client` gets until it is
/// quiet (bounded by the harness's waits).
async fn member_events(client: &mut Client, kind: &str) -> Vec<String> {
    let mut users = Vec::new();
    while let Some(common::Seen::Event(e)) = client.next_within(Duration::from_millis(700)).await {
        if e["event"] == kind {
            users.push(common::data_of(&e)["user_id"].as_str().unwrap_or_default().to_string());
        }
    }
    users
}

#[tokio::test]
async fn a_user_on_two_nodes_is_added_once_and_removed_once_on_every_node() {
    let hub = Arc::new(Mutex::new(Hub::default()));
    let (addr1, node1) = start_node(1, &hub, "").await;
    let (addr2, node2) = start_node(2, &hub, "").await;
    let mut watch1 = connect(addr1).await;
    watch1.subscribe_presence("presence-room", "watch1").await;
    let mut watch2 = connect(addr2).await;
    watch2.subscribe_presence("presence-room", "watch2").await;
    assert_eq!(member_events(&mut watch1, "pusher_internal:member_added").await, ["watch2"]);
    assert_eq!(member_events(&mut watch2, "pusher_internal:member_added").await, Vec::<String>::new());

    // The same user joins on both nodes at once: one of the two joins is first anywhere.
    let (mut u1, mut u2) = tokio::join!(connect(addr1), connect(addr2));
    tokio::join!(u1.subscribe_presence("presence-room", "u"), u2.subscribe_presence("presence-room", "u"));
    assert_eq!(member_events(&mut watch1, "pusher_internal:member_added").await, ["u"]);
    assert_eq!(member_events(&mut watch2, "pusher_internal:member_added").await, ["u"]);

    // One socket leaves: the user is still present on the other node, nobody is told.
    drop(u1);
    assert_eq!(member_events(&mut watch1, "pusher_internal:member_removed").await, Vec::<String>::new());
    assert_eq!(member_events(&mut watch2, "pusher_internal:member_removed").await, Vec::<String>::new());
    // The last one leaves: every node is told once.
    drop(u2);
    assert_eq!(member_events(&mut watch1, "pusher_internal:member_removed").await, ["u"]);
    assert_eq!(member_events(&mut watch2, "pusher_internal:member_removed").await, ["u"]);
    node1.shutdown.cancel();
    node2.shutdown.cancel();
}

/// A webhook endpoint on a free loopback port: every event it was sent.
#[derive(Default)]
struct Hooks {
    events: Mutex<Vec<serde_json::Value>>,
    changed: tokio::sync::Notify,
}

async fn hook(
    axum::extract::State(hooks): axum::extract::State<Arc<Hooks>>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let v: serde_json::Value = serde_json::from_slice(&body).expect("webhook body is JSON");
    hooks.events.lock().unwrap().extend(v["events"].as_array().cloned().unwrap_or_default());
    hooks.changed.notify_waiters();
    axum::http::StatusCode::OK
}

async fn receiver() -> (String, Arc<Hooks>) {
    let hooks = Arc::new(Hooks::default());
    let app = axum::Router::new().route("/", axum::routing::post(hook)).with_state(hooks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hooks)
}

impl Hooks {
    /// How many `name` events for `channel` arrived.
    fn count(&self, name: &str, channel: &str) -> usize {
        self.events.lock().unwrap().iter().filter(|e| e["name"] == name && e["channel"] == channel).count()
    }

    /// Waits (bounded) until a `name` event for `channel` has arrived.
    async fn wait_for(&self, name: &str, channel: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.count(name, channel) == 0 {
            let changed = self.changed.notified();
            if self.count(name, channel) > 0 {
                break;
            }
            assert!(
                tokio::time::timeout_at(deadline, changed).await.is_ok(),
                "no {name} webhook for {channel}: {:?}",
                self.events.lock().unwrap()
            );
        }
    }
}

#[tokio::test]
async fn cluster_wide_edges_send_each_webhook_once_whichever_node_sees_them() {
    let (url, hooks) = receiver().await;
    let hub = Arc::new(Mutex::new(Hub::default()));
    let extra = format!("webhooks = [{{ url = \"{url}\" }}]");
    let (addr1, node1) = start_node(1, &hub, &extra).await;
    let (addr2, node2) = start_node(2, &hub, &extra).await;
    // A channel occupied on both nodes, and the same presence user on both.
    let (mut a, mut b) = tokio::join!(connect(addr1), connect(addr2));
    tokio::join!(a.subscribe("room"), b.subscribe("room"));
    tokio::join!(a.subscribe_presence("presence-room", "u"), b.subscribe_presence("presence-room", "u"));
    hooks.wait_for("channel_occupied", "room").await;
    hooks.wait_for("member_added", "presence-room").await;
    // Both leave: vacated (after the departure delay) and removed, once each.
    drop(a);
    drop(b);
    hooks.wait_for("channel_vacated", "room").await;
    hooks.wait_for("member_removed", "presence-room").await;
    // A duplicate from the other node would follow within a batch window: let it come.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (name, channel) in [
        ("channel_occupied", "room"),
        ("channel_vacated", "room"),
        ("channel_occupied", "presence-room"),
        ("channel_vacated", "presence-room"),
        ("member_added", "presence-room"),
        ("member_removed", "presence-room"),
    ] {
        hooks.wait_for(name, channel).await;
        assert_eq!(hooks.count(name, channel), 1, "{name} {channel}: {:?}", hooks.events.lock().unwrap());
    }
    node1.shutdown.cancel();
    node2.shutdown.cancel();
}
