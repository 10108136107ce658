//! Real processes for cluster tests: a `redis-server` on a free port, or the engine the
//! cluster suite runs on ([`super::engine::Engine`]), and `rtc serve` nodes joined to
//! it. Everything is killed on drop.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

/// A free loopback port (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` child process: one Redis (the one-Redis engine, and what the
/// console, drain and roll tests read directly).
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
        redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).unwrap()
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
        process::scrub_env(&mut cmd)
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--bus", redis_url, "--cluster", cluster])
            .args(["--node-id", id, "--config"])
            .arg(file.path())
            .args(extra)
            .env("RUST_LOG", "rtc=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let line = process::http_addr(&mut child);
        Node { id: id.to_string(), addr: line.parse().unwrap(), child, _config: file }
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
        process::admin_stats(&reqwest::Client::new(), &format!("http://{}", self.addr)).await
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

/// A node under a supervisor loop (restarts it when it exits, at most 4 times), on a
/// fixed port, appending its logs to `{dir}/{id}.log`. The loop records the running node's pid in [`Supervised::pidfile`] so
/// teardown can kill exactly that process (never a process group: a negative pid handed
/// to `kill` is too easy to get wrong).
pub struct Supervised {
    pub port: u16,
    pub pidfile: std::path::PathBuf,
    /// Where every run of the node appends its log.
    pub logfile: std::path::PathBuf,
    child: Child,
    _config: tempfile::NamedTempFile,
}

impl Supervised {
    /// Starts the loop for node `id` with `drain` (the drain flags) appended to
    /// `rtc serve`; the pid file is `{dir}/{id}.pid`.
    pub fn start(redis_url: &str, cluster: &str, id: &str, drain: &str, dir: &std::path::Path) -> Supervised {
        let port = free_port();
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(&mut file, one_app("").as_bytes()).unwrap();
        let pidfile = dir.join(format!("{id}.pid"));
        let logfile = dir.join(format!("{id}.log"));
        let script = format!(
            "for i in 1 2 3 4; do \"$RTC\" serve --host 127.0.0.1 --port {port} --bus {redis_url} --cluster {cluster} \
             --node-id {id} --config {} {drain} >>{} 2>&1 & \
             echo $! > {}; wait $!; done",
            file.path().display(),
            logfile.display(),
            pidfile.display()
        );
        let child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("RTC", env!("CARGO_BIN_EXE_rtc"))
            .env_remove("RTC_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Supervised { port, pidfile, logfile, child, _config: file }
    }

    /// What every run of the node logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.logfile).unwrap_or_default()
    }

    /// The node's WebSocket URL for the test app.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/app/{KEY}?protocol=7", self.port)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // The supervisor first, so it starts nothing new; then the node it ran.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(pid) = std::fs::read_to_string(&self.pidfile) {
            if let Ok(pid) = pid.trim().parse::<u32>() {
                if pid > 1 {
                    let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
                }
            }
        }
    }
}

/// Starts two nodes of `cluster` (ids `ids`) on `redis` with config `toml` and `extra`
/// flags, and waits until they have joined each other.
pub async fn joined_pair(redis: &Redis, cluster: &str, ids: [&str; 2], toml: &str, extra: &[&str]) -> (Node, Node) {
    let a = Node::start_with(&redis.url(), cluster, ids[0], toml, extra);
    let b = Node::start_with(&redis.url(), cluster, ids[1], toml, extra);
    wait_joined(&[&a, &b]).await;
    (a, b)
}
