//! A `nats-server` with JetStream on a free loopback port for the NATS engine's tests,
//! killed on drop; when the binary cannot be started, the machine's 127.0.0.1:4222.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::cluster::free_port;
use super::WAIT;

/// Where the tests look for the server first (then `nats-server` on the PATH).
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A `nats-server -js` child process (or the machine's own server).
pub struct NatsServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// False when the tests fell back to the machine's server (it cannot be restarted).
    pub owned: bool,
}

impl NatsServer {
    /// Starts a server on a free port (the machine's 4222 if none can be started).
    pub async fn start() -> NatsServer {
        let mut s = NatsServer { port: free_port(), dir: tempfile::tempdir().unwrap(), child: None, owned: true };
        if !s.spawn().await {
            eprintln!("nats-server cannot be started here: using the machine's 127.0.0.1:4222");
            s.port = 4222;
            s.owned = false;
            assert!(s.reachable().await, "no nats-server to test against");
        }
        s
    }

    fn binary() -> &'static str {
        if std::path::Path::new(NATS_SERVER).exists() {
            NATS_SERVER
        } else {
            "nats-server"
        }
    }

    async fn reachable(&self) -> bool {
        tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok()
    }

    /// Starts the child; false if it could not be started.
    async fn spawn(&mut self) -> bool {
        let child = Command::new(Self::binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if self.reachable().await {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The `--bus` URL of this server.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A client connection to it (bounded).
    pub async fn client(&self) -> async_nats::Client {
        tokio::time::timeout(WAIT, async_nats::connect(self.url()))
            .await
            .expect("nats-server answers in time")
            .expect("nats-server accepts a client")
    }

    /// SIGSTOP / SIGCONT.
    pub fn signal(&self, sig: &str) {
        assert!(self.owned, "the machine's nats-server is not signalled by tests");
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }

    /// Kills the server (SIGKILL): the engine's buckets are in memory, so all shared
    /// state is lost, as in a Redis restart without persistence.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        assert!(self.owned, "the machine's nats-server is not restarted by tests");
        self.kill();
        assert!(self.spawn().await, "nats-server did not restart");
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
