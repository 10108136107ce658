//! Micro-benchmark of local fan-out: one encoded event queued to N subscribers of a
//! channel (a reference-count increment and a bounded-queue push per subscriber, no
//! copy), then taken off each socket's queue as its connection task would.
//!
//! `cargo bench --bench fanout` (divan; the time per delivery is the total divided by N,
//! shown as items/s).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use rtc::protocol::{frame, ChannelName, SocketId};
use rtc::server::channel::{Channel, Subscriber};
use rtc::server::conn_handle::ConnHandle;
use rtc::server::Frame;

fn main() {
    divan::main();
}

const DATA: &str = r#"{"order":{"id":48213,"status":"shipped","carrier":"DHL","eta":"2026-11-30T10:00:00Z"}}"#;

fn channel_with(n: usize) -> (Channel, Vec<Arc<ConnHandle>>) {
    let channel = Channel::new(ChannelName::parse("private-orders").unwrap());
    let mut conns = Vec::with_capacity(n);
    {
        let mut subs = channel.subs.write();
        for _ in 0..n {
            let conn = Arc::new(ConnHandle::new(SocketId::random(), 1 << 20));
            subs.insert(conn.socket_id, Subscriber::new(conn.clone(), None, false));
            conns.push(conn);
        }
    }
    (channel, conns)
}

/// Queue one event to every subscriber (what a publish costs the publishing thread).
#[divan::bench(args = [100, 1_000, 10_000])]
fn queue_to_subscribers(bencher: Bencher<'_, '_>, n: usize) {
    let (channel, conns) = channel_with(n);
    let f = Frame::from(frame::event_frame("order.shipped", Some("private-orders"), Some(DATA), None));
    let mut batch = Vec::new();
    bencher.counter(ItemsCount::new(n)).bench_local(|| {
        black_box(channel.fan_out(black_box(&f), None));
        // Keep the queues from filling: what each socket's task does next.
        for c in &conns {
            c.outbox.take(&mut batch, 64);
            batch.clear();
        }
    });
}

/// Encode once and queue to every subscriber: the whole local cost of one publish.
#[divan::bench(args = [100, 1_000, 10_000])]
fn encode_and_queue(bencher: Bencher<'_, '_>, n: usize) {
    let (channel, conns) = channel_with(n);
    let mut batch = Vec::new();
    bencher.counter(ItemsCount::new(n)).bench_local(|| {
        let f = Frame::from(frame::event_frame("order.shipped", Some("private-orders"), Some(black_box(DATA)), None));
        black_box(channel.fan_out(&f, None));
        for c in &conns {
            c.outbox.take(&mut batch, 64);
            batch.clear();
        }
    });
}
