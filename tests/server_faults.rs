//! Faults on one node: running out of file descriptors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn out_of_file_descriptors_refuses_cleanly_and_recovers() {
    // A hard limit of 64 files: the node cannot raise it, so sockets run out fast.
    let mut node = LimitedNode::start(&one_app(""), 64);
    let addr = node.addr();
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
    assert!(node.running(), "the node must not crash");
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
    assert!(node.running());
}
