//! Faults on one node: running out of file descriptors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[tokio::test]
async fn out_of_file_descriptors_refuses_cleanly_and_recovers() {
    // A hard limit of 64 files: the node cannot raise it, so sockets run out fast.
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, one_app("").as_bytes()).unwrap();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec \"$RTC\" serve --host 127.0.0.1 --port 0 --config {}",
            file.path().display()
        ))
        .env("RTC", env!("CARGO_BIN_EXE_rtc"))
        .env_remove("RTC_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("banner").unwrap();
        if let Some(rest) = line.strip_prefix("rtc listening on http://") {
            break rest.trim().to_string();
        }
    };
    let url = format!("ws://{addr}/app/{KEY}?protocol=7");
    // Ask for far more sockets than the limit allows.
    let mut attempts = Vec::new();
    for _ in 0..120 {
        let url = url.clone();
        attempts.push(tokio::spawn(async move {
            let r = tokio::time::timeout(Duration::from_secs(3), tokio_tungstenite::connect_async(url)).await;
            match r {
                Ok(Ok((ws, _))) => Some(ws),
                _ => None,
            }
        }));
    }
    let mut held = Vec::new();
    for a in attempts {
        if let Some(ws) = a.await.unwrap() {
            held.push(ws);
        }
    }
    assert!(!held.is_empty(), "some sockets got through");
    assert!(held.len() < 120, "the limit was not reached ({} sockets)", held.len());
    assert!(child.try_wait().unwrap().is_none(), "the node must not crash");
    // Once sockets close, the node takes new ones again.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Ok((ws, _))) =
            tokio::time::timeout(Duration::from_secs(2), tokio_tungstenite::connect_async(url.as_str())).await
        {
            let mut c = Client { ws, socket_id: String::new() };
            c.expect_event("pusher:connection_established").await;
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the node did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(child.try_wait().unwrap().is_none());
    let _ = child.kill();
    let _ = child.wait();
}
