//! The engine the cluster suite runs on, picked by `RTC_TEST_ENGINE`: unset or `redis`
//! (one `redis-server`), `redis-cluster` (a 3-master Redis Cluster) or `nats` (a
//! `nats-server -js`), each started by the test on free loopback ports and killed on
//! drop. [`Engine::url`] is the nodes' `--bus` URL; `kill`, `restart` (same ports) and
//! `signal` act on every process of it.

#![allow(dead_code)]

use std::time::Duration;

use super::cluster::Redis;
use super::nats::NatsServer;
use super::redis_cluster::RedisCluster;
use super::APP_ID;

/// Which engine (`RTC_TEST_ENGINE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One Redis (`redis://`).
    Redis,
    /// A 3-master Redis Cluster (`redis-cluster://`).
    RedisCluster,
    /// NATS with JetStream (`nats://`).
    Nats,
}

impl Kind {
    /// The engine `RTC_TEST_ENGINE` names (unset: one Redis).
    pub fn from_env() -> Kind {
        match std::env::var("RTC_TEST_ENGINE").as_deref() {
            Err(_) | Ok("" | "redis") => Kind::Redis,
            Ok("redis-cluster") => Kind::RedisCluster,
            Ok("nats") => Kind::Nats,
            Ok(other) => panic!("RTC_TEST_ENGINE={other}: use redis, redis-cluster or nats"),
        }
    }

    /// Its name, as in `RTC_TEST_ENGINE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::RedisCluster => "redis-cluster",
            Kind::Nats => "nats",
        }
    }
}

/// Whether this run's engine is `kind`; if so, prints that the calling test is skipped
/// and why (`why`: what keeps it from passing there).
pub fn skip_on(kind: Kind, test: &str, why: &str) -> bool {
    let on = Kind::from_env();
    if on == kind {
        // Straight to stderr, past the test harness's capture of `eprintln!`.
        let line = format!("SKIPPED {test} on the {} engine: {why}\n", on.as_str());
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }
    on == kind
}

enum Inner {
    Redis(Redis),
    RedisCluster(RedisCluster),
    Nats(NatsServer),
}

/// A running engine.
pub struct Engine {
    /// Which one.
    pub kind: Kind,
    /// Its port (one Redis, NATS), or the first node's (Redis Cluster).
    pub port: u16,
    inner: Inner,
}

impl Engine {
    /// Starts the engine `RTC_TEST_ENGINE` names.
    pub async fn start() -> Engine {
        Engine::start_kind(Kind::from_env()).await
    }

    /// Starts `kind`.
    pub async fn start_kind(kind: Kind) -> Engine {
        let inner = match kind {
            Kind::Redis => Inner::Redis(Redis::start().await),
            Kind::RedisCluster => Inner::RedisCluster(RedisCluster::start(3, 0).await),
            Kind::Nats => Inner::Nats(NatsServer::start().await),
        };
        let port = match &inner {
            Inner::Redis(r) => r.port,
            Inner::RedisCluster(c) => c.ports[0],
            Inner::Nats(n) => n.port,
        };
        Engine { kind, port, inner }
    }

    /// Starts the engine `RTC_TEST_ENGINE` names with a [`proxy`](super::proxy) in
    /// front of it that applies `mode` to `target`'s connections; returns it and the
    /// `--bus` URL through the proxy. One Redis and NATS: only the nodes given that URL
    /// go through it. A Redis Cluster announces the proxies' ports, so every client
    /// does, and the target is picked out by its process.
    pub async fn start_proxied(mode: super::proxy::Mode, target: super::proxy::Target) -> (Engine, String) {
        use super::proxy;
        let kind = Kind::from_env();
        let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        if kind == Kind::RedisCluster {
            // The proxies' ports are taken first, so the cluster's ports (and their bus
            // ports, 10,000 higher) are picked among the ones still free.
            let listeners: Vec<_> = (0..3).map(|_| bind()).collect();
            let ports = RedisCluster::free_ports(3);
            let mut announce = Vec::new();
            for (l, port) in listeners.into_iter().zip(&ports) {
                announce.push(l.local_addr().unwrap().port());
                proxy::spawn(l, *port, mode.clone(), target.clone(), false);
            }
            let cluster = RedisCluster::start_announcing(3, 0, ports, announce).await;
            let url = cluster.url();
            return (Engine { kind, port: cluster.ports[0], inner: Inner::RedisCluster(cluster) }, url);
        }
        let engine = Engine::start_kind(kind).await;
        let l = bind();
        let port = l.local_addr().unwrap().port();
        proxy::spawn(l, engine.port, mode, target, kind == Kind::Nats);
        let scheme = if kind == Kind::Nats { "nats" } else { "redis" };
        (engine, format!("{scheme}://127.0.0.1:{port}"))
    }

    /// The nodes' `--bus` URL.
    pub fn url(&self) -> String {
        match &self.inner {
            Inner::Redis(r) => r.url(),
            Inner::RedisCluster(c) => c.url(),
            Inner::Nats(n) => n.url(),
        }
    }

    /// Kills every process of the engine (SIGKILL): all shared state is lost (no
    /// persistence anywhere).
    pub fn kill(&mut self) {
        match &mut self.inner {
            Inner::Redis(r) => r.kill(),
            Inner::RedisCluster(c) => c.kill_all(),
            Inner::Nats(n) => n.kill(),
        }
    }

    /// Starts it again on the same port(s) and waits until it serves.
    pub async fn restart(&mut self) {
        self.kill();
        match &mut self.inner {
            Inner::Redis(r) => r.restart().await,
            Inner::RedisCluster(c) => c.restart_all().await,
            Inner::Nats(n) => n.restart().await,
        }
    }

    /// Sends `sig` (`-STOP`, `-CONT`) to every process of the engine.
    pub fn signal(&self, sig: &str) {
        match &self.inner {
            Inner::Redis(r) => r.signal(sig),
            Inner::RedisCluster(c) => c.signal(sig),
            Inner::Nats(n) => n.signal(sig),
        }
    }

    /// Publishes `msg` of the test app on cluster `cluster`'s bus as node `origin`
    /// would (unsealed: the tests' clusters have no secret), where the engine carries
    /// it: the one bus channel, the channel's shard channel, or its NATS subject.
    /// Returns how many subscribers the engine handed it to, when it tells.
    pub async fn publish_bus(&self, cluster: &str, origin: &str, msg: rtc::cluster::BusMessage) -> Option<u64> {
        use rtc::cluster::BusMessage as M;
        let channel = match &msg {
            M::Event { channel, .. }
            | M::MemberAdded { channel, .. }
            | M::MemberRemoved { channel, .. }
            | M::SubscriptionCount { channel, .. } => Some(channel.clone()),
            M::Terminate { .. } | M::Watchlist { .. } => None,
        };
        let env = rtc::cluster::Envelope {
            v: rtc::cluster::bus::BUS_VERSION,
            origin: origin.into(),
            boot: "forged".into(),
            ts_ms: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64,
            app: APP_ID.into(),
            looped: None,
            msg,
        };
        let payload = rtc::cluster::bus::encode(&env);
        match &self.inner {
            Inner::Redis(r) => {
                let mut con = r.con().await;
                let n: u64 = redis::cmd("PUBLISH")
                    .arg(rtc::cluster::Keys::new(cluster).bus())
                    .arg(payload)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                Some(n)
            }
            Inner::RedisCluster(c) => {
                let keys = rtc::cluster::Keys::hash_tagged(cluster);
                let shard = match channel {
                    Some(ch) if !ch.starts_with("#server-to-user-") => keys.shard_bus(APP_ID, &ch),
                    _ => keys.control_bus(),
                };
                let port = c.master_of(&shard).await;
                let mut con = RedisCluster::con(port).await.expect("the shard's master answers");
                let n: u64 = redis::cmd("SPUBLISH").arg(&shard).arg(payload).query_async(&mut con).await.unwrap();
                Some(n)
            }
            Inner::Nats(n) => {
                let client = n.client().await;
                let subject = rtc::nats::Subjects::new(cluster).of(APP_ID, &env.msg);
                client.publish(subject, payload.into()).await.unwrap();
                tokio::time::timeout(Duration::from_secs(5), client.flush()).await.unwrap().unwrap();
                None
            }
        }
    }

    /// Every name the engine holds for any cluster: keys (one Redis; every node of the
    /// Redis Cluster) or JetStream streams (NATS, one per bucket).
    pub async fn names(&self) -> Vec<String> {
        match &self.inner {
            Inner::Redis(r) => {
                let mut con = r.con().await;
                redis::cmd("KEYS").arg("*").query_async(&mut con).await.unwrap()
            }
            Inner::RedisCluster(c) => {
                let mut all = Vec::new();
                for port in &c.ports {
                    let mut con = RedisCluster::con(*port).await.expect("every cluster node answers");
                    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut con).await.unwrap();
                    all.extend(keys);
                }
                all
            }
            Inner::Nats(n) => {
                use futures_util::StreamExt;
                let js = async_nats::jetstream::new(n.client().await);
                let names: Vec<_> = js.stream_names().collect().await;
                names.into_iter().map(|r| r.unwrap()).collect()
            }
        }
    }

    /// Whether `name` (from [`Engine::names`]) belongs to cluster `cluster`.
    pub fn is_of(&self, cluster: &str, name: &str) -> bool {
        match self.kind {
            Kind::Redis => name.starts_with(&format!("rtc:{cluster}:")),
            Kind::RedisCluster => name.starts_with(&format!("rtc:{{{cluster}}}:")),
            Kind::Nats => {
                let hex: String = cluster.bytes().map(|b| format!("{b:02x}")).collect();
                name.starts_with(&format!("KV_rtc_{hex}_"))
            }
        }
    }
}
