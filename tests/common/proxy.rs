//! A TCP proxy in front of an engine's port that slows down or holds back one node's
//! traffic while every other connection through it flows: the cluster suite's way to
//! open a race window every time. The node is picked by its process id (the owner of the
//! connection's client socket, read from /proc), so the same proxy works for one Redis,
//! a node of a Redis Cluster (which announces the proxy's port, so every client goes
//! through it) and NATS.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The pid that stands for every process ([`Target::every`]).
const EVERY: u32 = u32::MAX;

/// What the proxy does to the target node's connections.
#[derive(Clone)]
pub enum Mode {
    /// Delays what the node sends to the engine by this much (in order).
    Delay(Duration),
    /// Delays each chunk the node sends that holds this command (and, to keep the
    /// order, what follows it on that connection), e.g. `SSUBSCRIBE`.
    DelayCommand(Duration, &'static [u8]),
    /// Delays what the engine sends the node by this much (in order): a node whose
    /// subscription reads the bus late.
    DelayReceive(Duration),
    /// While the switch is on, holds back the engine's replies to the node's commands:
    /// on Redis every connection of the node except its subscriber (the one that sent a
    /// `SUBSCRIBE`/`SSUBSCRIBE`); on NATS, whose one connection carries the bus too, only
    /// the replies (messages to `_INBOX.` subjects), so bus messages overtake them.
    Hold(watch::Receiver<bool>),
}

/// The process whose connections the proxy acts on (0: none yet; set it once the node
/// has started).
#[derive(Clone, Default)]
pub struct Target(Arc<AtomicU32>);

impl Target {
    /// Acts on every connection through the proxy, whoever opens it: for a node that
    /// must be slowed from its very first connection, before its pid is known.
    pub fn every() -> Target {
        Target(Arc::new(AtomicU32::new(EVERY)))
    }

    /// Acts on the connections of process `pid` from now on.
    pub fn set(&self, pid: u32) {
        self.0.store(pid, Ordering::Release);
    }

    fn pid(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
}

/// Whether the client socket `127.0.0.1:client_port` → `127.0.0.1:proxy_port` belongs
/// to process `pid`: its inode from /proc/net/tcp among the process's descriptors.
fn owned_by(pid: u32, client_port: u16, proxy_port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else { return false };
    let local = format!("0100007F:{client_port:04X}");
    let remote = format!("0100007F:{proxy_port:04X}");
    let Some(inode) = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 9 && f[1] == local && f[2] == remote).then(|| f[9].to_string())
    }) else {
        return false;
    };
    let want = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == want))
}

/// Whether a connection is the target's, decided once the target is known.
struct Owner {
    target: Target,
    client_port: u16,
    proxy_port: u16,
    decided: Option<bool>,
}

impl Owner {
    fn is_target(&mut self) -> bool {
        if let Some(d) = self.decided {
            return d;
        }
        let pid = self.target.pid();
        if pid == 0 {
            return false;
        }
        if pid == EVERY {
            return true;
        }
        let d = owned_by(pid, self.client_port, self.proxy_port);
        self.decided = Some(d);
        d
    }
}

/// Serves `listener`, forwarding each connection to `127.0.0.1:upstream` and applying
/// `mode` to the target's; `nats`: the engine speaks the NATS protocol.
/// The proxy runs on a thread of its own: a test's runtime blocks at times (a child's
/// banner read, `redis-cli --cluster create`), and the proxy must keep forwarding then.
/// It lives as long as the test process.
pub fn spawn(listener: std::net::TcpListener, upstream: u16, mode: Mode, target: Target, nats: bool) {
    listener.set_nonblocking(true).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    std::thread::spawn(move || rt.block_on(serve(listener, upstream, mode, target, nats)));
}

async fn serve(listener: std::net::TcpListener, upstream: u16, mode: Mode, target: Target, nats: bool) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    {
        while let Ok((client, peer)) = listener.accept().await {
            let owner = Owner { target: target.clone(), client_port: peer.port(), proxy_port, decided: None };
            let mode = mode.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                match mode {
                    Mode::Delay(d) => delay(client, server, owner, (d, None), Duration::ZERO).await,
                    Mode::DelayCommand(d, command) => {
                        delay(client, server, owner, (d, Some(command)), Duration::ZERO).await
                    }
                    Mode::DelayReceive(d) => delay(client, server, owner, (Duration::ZERO, None), d).await,
                    Mode::Hold(h) if nats => hold_nats(client, server, owner, h).await,
                    Mode::Hold(h) => hold_redis(client, server, owner, h).await,
                }
            });
        }
    }
}

/// Forwards both ways: what the node sends by `send.0` late (only chunks holding
/// `send.1`, if set, and what follows them), what the engine sends by `receive` late.
/// Ends when the engine closes the connection (after the delayed bytes are written).
async fn delay(
    client: TcpStream,
    server: TcpStream,
    owner: Owner,
    send: (Duration, Option<&'static [u8]>),
    receive: Duration,
) {
    let owner = Arc::new(std::sync::Mutex::new(owner));
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = tokio::spawn(delayed(cr, sw, owner.clone(), send.0, send.1));
    delayed(sr, cw, owner, receive, None).await;
    up.abort();
}

/// Copies `r` to `w`, each chunk `delay` late if the connection is the target's (and
/// holds `only`, if set), in order.
async fn delayed(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    owner: Arc<std::sync::Mutex<Owner>>,
    delay: Duration,
    only: Option<&'static [u8]>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if w.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 16 << 10];
    while let Ok(n @ 1..) = r.read(&mut buf).await {
        let chunk = &buf[..n];
        let matches = !delay.is_zero() && only.is_none_or(|c| chunk.windows(c.len()).any(|w| w == c));
        let late = matches && owner.lock().unwrap().is_target();
        let due = tokio::time::Instant::now() + if late { delay } else { Duration::ZERO };
        if tx.send((due, chunk.to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Whether `bytes` (what a node sent Redis) hold a `SUBSCRIBE` or `SSUBSCRIBE` command:
/// the verb as a RESP bulk string, between line ends. A bare word match also took the
/// node's registry heartbeat (its stats JSON says `"subscribers"`) for a subscription
/// and stopped holding that connection's replies.
fn is_subscribe_command(bytes: &[u8]) -> bool {
    let verb = |v: &[u8]| bytes.windows(v.len()).any(|w| w.eq_ignore_ascii_case(v));
    verb(b"\r\nSUBSCRIBE\r\n") || verb(b"\r\nSSUBSCRIBE\r\n")
}

async fn hold_redis(client: TcpStream, server: TcpStream, mut owner: Owner, mut hold: watch::Receiver<bool>) {
    use std::sync::atomic::AtomicBool;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let subscriber = Arc::new(AtomicBool::new(false));
    let seen = subscriber.clone();
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n @ 1..) = cr.read(&mut buf).await {
            if is_subscribe_command(&buf[..n]) {
                seen.store(true, Ordering::Relaxed);
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 16 << 10];
    while let Ok(n @ 1..) = sr.read(&mut buf).await {
        if owner.is_target() && !subscriber.load(Ordering::Relaxed) && hold.wait_for(|h| !*h).await.is_err() {
            break;
        }
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    up.abort();
}

/// The next complete frame the NATS server sent (`MSG`/`HMSG` with its payload, or a
/// control line) off the front of `pending`, and whether it is a reply (to `_INBOX.`).
fn next_nats_frame(pending: &mut Vec<u8>) -> Option<(Vec<u8>, bool)> {
    let eol = pending.windows(2).position(|w| w == b"\r\n")?;
    let line = String::from_utf8_lossy(&pending[..eol]).to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (len, reply) = match fields.first().copied() {
        Some("MSG" | "HMSG") => {
            let size: usize = fields.last().and_then(|s| s.parse().ok()).expect("a NATS message size");
            (eol + 2 + size + 2, fields.get(1).is_some_and(|s| s.starts_with("_INBOX.")))
        }
        _ => (eol + 2, false),
    };
    if pending.len() < len {
        return None;
    }
    Some((pending.drain(..len).collect(), reply))
}

async fn hold_nats(client: TcpStream, server: TcpStream, mut owner: Owner, mut hold: watch::Receiver<bool>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
    });
    let mut pending = Vec::new();
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        if !held.is_empty() && !*hold.borrow() {
            for frame in held.drain(..) {
                if cw.write_all(&frame).await.is_err() {
                    break;
                }
            }
        }
        tokio::select! {
            r = sr.read(&mut buf) => {
                let n = match r {
                    Ok(n @ 1..) => n,
                    _ => break,
                };
                pending.extend_from_slice(&buf[..n]);
                while let Some((frame, reply)) = next_nats_frame(&mut pending) {
                    if reply && (!held.is_empty() || (*hold.borrow() && owner.is_target())) {
                        held.push(frame);
                    } else if cw.write_all(&frame).await.is_err() {
                        break;
                    }
                }
            }
            r = hold.changed() => if r.is_err() { break },
        }
    }
    up.abort();
}
