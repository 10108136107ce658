//! `rtc bench fanout`: one channel, many subscribers, events through the HTTP API.

use crate::bench::args::{CommonArgs, FanoutArgs};
use crate::bench::book::EventBook;
use crate::bench::publish::{publish, PublishPlan};
use crate::bench::report::Report;
use crate::bench::runner::Run;
use crate::bench::swarm::{channel_name, ChannelPlan, SocketPlan, PUSHER_JS_ACTIVITY_TIMEOUT};
use crate::bench::BenchError;

/// Subscribes `--subscribers` sockets, publishes for `--hold`, settles, reports.
///
/// # Errors
/// See [`Run::start`]; the HTTP client cannot be built.
pub(crate) async fn run(common: &CommonArgs, args: &FanoutArgs) -> Result<Report, BenchError> {
    let count = super::event_count(args.events_per_sec, common.hold);
    let parameters = serde_json::json!({
        "subscribers": args.subscribers,
        "events_per_sec": args.events_per_sec,
        "channel_kind": args.channel_kind,
        "payload_bytes": args.payload,
        "rate": common.rate,
        "hold_s": common.hold.as_secs_f64(),
    });
    let book = EventBook::new(count, 1);
    let mut run = Run::start(common, "fanout", parameters, args.subscribers as usize, Some(book), None).await?;
    let channel = channel_name(args.channel_kind, "fanout", 0);
    let kind = args.channel_kind;
    run.ramp(|index| SocketPlan {
        index,
        channel: Some(ChannelPlan { name: channel.clone(), kind, tracked: Some(0) }),
        presence: None,
        activity_timeout: Some(PUSHER_JS_ACTIVITY_TIMEOUT),
    })
    .await;
    if run.nobody_ready() {
        return run.finish(None, None).await;
    }
    let until = run.begin_steady("publish").await;
    let plan = PublishPlan {
        rate: args.events_per_sec,
        count,
        channels: vec![channel.clone()],
        payload: args.payload as usize,
    };
    let outcome = publish(&run.shared, &run.target, plan, until).await?;
    run.settle().await;
    run.end_steady();
    run.finish(Some(outcome), None).await
}
