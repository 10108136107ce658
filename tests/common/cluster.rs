//! Real processes for cluster tests: a `redis-server` on a free port and `rtc serve`
//! nodes joined to it. Everything is killed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

/// A free loopback port (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` child process.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub async fn start() -> Redis {
        let mut r = Redis { port: free_port(), child: None };
        r.spawn().await;
        r
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (the README test command installs it)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(mut con) = self.client().get_multiplexed_async_connection().await {
                if redis::cmd("PING").query_async::<String>(&mut con).await.is_ok() {
                    return;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    pub async fn con(&self) -> redis::aio::MultiplexedConnection {
        self.client().get_multiplexed_async_connection().await.unwrap()
    }

    /// Kills the server (SIGKILL): every key is lost, as in a real restart without
    /// persistence.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// SIGSTOP / SIGCONT.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `rtc serve` child process.
pub struct Node {
    pub id: String,
    pub addr: SocketAddr,
    child: Child,
    _config: tempfile::NamedTempFile,
}

/// A cluster config file: one app (extra TOML inside its table).
pub fn cluster_toml(extra_app: &str) -> String {
    one_app(extra_app)
}

impl Node {
    pub fn start(redis_url: &str, cluster: &str, id: &str, toml: &str) -> Node {
        Node::start_with(redis_url, cluster, id, toml, &[])
    }

    pub fn start_with(redis_url: &str, cluster: &str, id: &str, toml: &str, extra: &[&str]) -> Node {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(&mut file, toml.as_bytes()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtc"));
        for (k, _) in std::env::vars() {
            if k.starts_with("RTC_") || k.starts_with("REVERB_") || k.starts_with("REDIS_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(["serve", "--host", "127.0.0.1", "--port", "0", "--redis-url", redis_url, "--cluster", cluster])
            .args(["--node-id", id, "--config"])
            .arg(file.path())
            .args(extra)
            .env("RUST_LOG", "rtc=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = loop {
            let line = rx.recv_timeout(Duration::from_secs(10)).expect("node printed its address");
            if let Some(rest) = line.strip_prefix("rtc listening on http://") {
                break rest.to_string();
            }
        };
        Node { id: id.to_string(), addr: line.trim().parse().unwrap(), child, _config: file }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/app/{KEY}?protocol=7&client=js&version=8.4.0", self.addr)
    }

    pub async fn connect(&self) -> Client {
        Client::connect(&self.ws_url()).await
    }

    pub fn api(&self) -> Api {
        Api::new(self.addr, APP_ID, KEY, SECRET)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's own stats.
    pub async fn stats(&self) -> serde_json::Value {
        let r = reqwest::Client::new()
            .get(format!("http://{}/admin/stats", self.addr))
            .bearer_auth(ADMIN_TOKEN)
            .timeout(WAIT)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([sig, &self.child.id().to_string()]).status();
    }

    /// The exit code once the process has exited.
    pub fn child_try_wait(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().ok().flatten().map(|s| s.code())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns `Some`, at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every node sees all `n` nodes live and connected to the bus.
pub async fn wait_joined(nodes: &[&Node]) {
    let n = nodes.len() as u64;
    for node in nodes {
        eventually(Duration::from_secs(15), "the nodes to see each other", || async {
            let s = node.stats().await;
            (s["live_nodes"] == n && s["pubsub"]["connected"] == true && s["state"] == "serving").then_some(())
        })
        .await;
    }
}
