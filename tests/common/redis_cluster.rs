//! A real Redis Cluster for tests: `redis-server --cluster-enabled yes` processes on
//! free loopback ports (masters, each with replicas) in a temp dir, joined with
//! `redis-cli --cluster create`. A small `cluster-node-timeout` makes a replica take
//! over a killed master within seconds. Every process is killed on drop.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::cluster::eventually;

/// How long the cluster may take to form or fail over.
const FORM: Duration = Duration::from_secs(30);

/// A Redis Cluster of child processes.
pub struct RedisCluster {
    /// Ports of every node (the first `masters` were created as masters).
    pub ports: Vec<u16>,
    /// The port each node announces to clients instead of its own (a proxy in front of
    /// it), if any.
    announce: Vec<Option<u16>>,
    children: Vec<Option<Child>>,
    dir: tempfile::TempDir,
}

/// A free port for a cluster-enabled redis-server, with its cluster bus port (10,000
/// higher; redis-server refuses a port above 55,535) free too. Both lie below the
/// kernel's ephemeral range, so no outgoing connection or port-0 listener (the tests'
/// proxies, nodes, clients) can take either between this pick and redis-server's bind:
/// a node that loses that race exits at once and the cluster never forms. Ports are
/// handed out in turn from a per-process random start, so concurrent tests in one
/// binary never pick the same one.
fn cluster_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let (low, high) = cluster_port_range();
    let span = u32::from(high - low);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let port = low + (NEXT.fetch_add(1, Ordering::SeqCst) % span) as u16;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
    panic!("no free port pair (P, P + 10000) below the ephemeral range for a Redis Cluster node");
}

/// Where [`cluster_port`] picks: from 10,000 up to 10,001 below the start of the
/// kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768 by default), so the
/// bus port stays below it too.
fn cluster_port_range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u16>().ok()))
        .unwrap_or(32_768);
    let high = ephemeral_low.saturating_sub(10_000).min(55_536);
    assert!(high > 10_100, "the ephemeral range starts at {ephemeral_low}: no room below it for Redis Cluster ports");
    (10_000, high)
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each and waits until the
    /// cluster is `ok` on every node and every replica is in sync.
    pub async fn start(masters: usize, replicas: usize) -> RedisCluster {
        let n = masters * (1 + replicas);
        RedisCluster::start_announcing(masters, replicas, RedisCluster::free_ports(n), Vec::new()).await
    }

    /// `n` ports for cluster nodes (see `cluster_port`).
    pub fn free_ports(n: usize) -> Vec<u16> {
        (0..n).map(|_| cluster_port()).collect()
    }

    /// As [`RedisCluster::start`], on `ports` (from [`RedisCluster::free_ports`]), node
    /// `i` announcing port `announce[i]` to clients (in `CLUSTER SLOTS`, `MOVED`…)
    /// instead of its own: every client then goes through whatever serves there (the
    /// tests' proxies, forwarding to `ports[i]`; they must serve before this is called).
    pub async fn start_announcing(
        masters: usize,
        replicas: usize,
        ports: Vec<u16>,
        announce: Vec<u16>,
    ) -> RedisCluster {
        let n = masters * (1 + replicas);
        assert_eq!(ports.len(), n);
        let mut c = RedisCluster {
            announce: (0..n).map(|i| announce.get(i).copied()).collect(),
            ports,
            children: (0..n).map(|_| None).collect(),
            dir: tempfile::tempdir().unwrap(),
        };
        for i in 0..n {
            c.spawn(i);
        }
        for i in 0..n {
            c.wait_up(i).await;
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for p in &c.ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is installed");
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        c.wait_ok().await;
        c
    }

    fn spawn(&mut self, i: usize) {
        let port = self.ports[i].to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(match self.announce[i] {
                Some(a) => vec![
                    "--cluster-announce-port".to_string(),
                    a.to_string(),
                    "--cluster-announce-bus-port".to_string(),
                    (self.ports[i] + 10_000).to_string(),
                ],
                None => Vec::new(),
            })
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.children[i] = Some(child);
    }

    fn client(port: u16) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap()
    }

    /// A plain connection to one node.
    pub async fn con(port: u16) -> Option<redis::aio::MultiplexedConnection> {
        let client = Self::client(port);
        tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection()).await.ok()?.ok()
    }

    async fn info(port: u16, what: &str) -> Option<String> {
        let mut con = Self::con(port).await?;
        let cmd = if what == "cluster" {
            redis::cmd("CLUSTER").arg("INFO").clone()
        } else {
            redis::cmd("INFO").arg(what).clone()
        };
        tokio::time::timeout(Duration::from_secs(2), cmd.query_async::<String>(&mut con)).await.ok()?.ok()
    }

    async fn wait_up(&mut self, i: usize) {
        let port = self.ports[i];
        let deadline = tokio::time::Instant::now() + FORM;
        while Self::info(port, "server").await.is_none() {
            // A node that could not bind (its port or bus port taken) exits at once.
            if let Some(status) = self.children[i].as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("redis-server on port {port} (bus {}) exited at start: {status}", port + 10_000);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for the cluster node on {port} to start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every running node reports `cluster_state:ok` and knows every
    /// running node, and every running replica's link to its master is up.
    pub async fn wait_ok(&self) {
        let running: Vec<u16> =
            self.ports.iter().zip(&self.children).filter(|(_, c)| c.is_some()).map(|(p, _)| *p).collect();
        for &port in &running {
            eventually(FORM, "cluster_state:ok", || async {
                let info = Self::info(port, "cluster").await?;
                info.contains("cluster_state:ok").then_some(())
            })
            .await;
            eventually(FORM, "a replica in sync", || async {
                let info = Self::info(port, "replication").await?;
                (info.contains("role:master") || info.contains("master_link_status:up")).then_some(())
            })
            .await;
        }
    }

    /// The URL rtc is given: every node as a seed (its announced port, if any).
    pub fn url(&self) -> String {
        let hosts: Vec<String> =
            self.ports.iter().zip(&self.announce).map(|(p, a)| format!("127.0.0.1:{}", a.unwrap_or(*p))).collect();
        format!("redis-cluster://{}", hosts.join(","))
    }

    /// The port of the master that serves `key` (asked of any running node).
    pub async fn master_of(&self, key: &str) -> u16 {
        for (i, port) in self.ports.iter().enumerate() {
            if self.children[i].is_none() {
                continue;
            }
            let Some(mut con) = Self::con(*port).await else { continue };
            let Ok(slot) = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async::<u16>(&mut con).await else {
                continue;
            };
            let Ok(nodes) = redis::cmd("CLUSTER").arg("NODES").query_async::<String>(&mut con).await else { continue };
            for line in nodes.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                    continue;
                }
                let owns = f[8..].iter().any(|r| match r.split_once('-') {
                    Some((a, b)) => {
                        a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b)
                    }
                    None => r.parse::<u16>() == Ok(slot),
                });
                if owns {
                    let addr = f[1].split('@').next().unwrap_or("");
                    return addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("a port");
                }
            }
        }
        panic!("no master serves {key}");
    }

    /// Subscribers of a shard channel, summed over the running nodes.
    pub async fn shard_subscribers(&self, channel: &str) -> u64 {
        let mut n = 0;
        for (i, port) in self.ports.iter().enumerate() {
            if self.children[i].is_none() {
                continue;
            }
            let Some(mut con) = Self::con(*port).await else { continue };
            let r: Result<(String, u64), _> =
                redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel).query_async(&mut con).await;
            n += r.map(|(_, k)| k).unwrap_or(0);
        }
        n
    }

    /// Sends `sig` (`-STOP`, `-CONT`) to every running node.
    pub fn signal(&self, sig: &str) {
        for c in self.children.iter().flatten() {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }

    /// Kills (SIGKILL) the node on `port`.
    pub fn kill_port(&mut self, port: u16) {
        if let Some(i) = self.ports.iter().position(|p| *p == port) {
            if let Some(mut c) = self.children[i].take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Kills every node; their keys are lost (no persistence), their cluster
    /// configuration files are kept.
    pub fn kill_all(&mut self) {
        for c in self.children.iter_mut() {
            if let Some(mut c) = c.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Starts every killed node again on its port and waits for the cluster.
    pub async fn restart_all(&mut self) {
        for i in 0..self.ports.len() {
            if self.children[i].is_none() {
                self.spawn(i);
            }
        }
        for i in 0..self.ports.len() {
            self.wait_up(i).await;
        }
        self.wait_ok().await;
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}
