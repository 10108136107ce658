//! `rtc bench connections`: how many sockets, how fast, at what memory and idle CPU.

use tokio::time::sleep_until;

use crate::bench::args::{CommonArgs, ConnectionsArgs};
use crate::bench::report::Report;
use crate::bench::runner::Run;
use crate::bench::swarm::{channel_name, ChannelPlan, SocketPlan};
use crate::bench::BenchError;

/// Ramps the sockets, holds them idle for `--hold`, reports.
///
/// # Errors
/// See [`Run::start`].
pub(crate) async fn run(common: &CommonArgs, args: &ConnectionsArgs) -> Result<Report, BenchError> {
    let parameters = serde_json::json!({
        "sockets": args.sockets,
        "channels": args.channels,
        "channel_kind": args.channel_kind,
        "activity_timeout_s": args.activity_timeout.as_secs_f64(),
        "rate": common.rate,
        "hold_s": common.hold.as_secs_f64(),
    });
    let mut run = Run::start(common, "connections", parameters, args.sockets as usize, None, None).await?;
    let (kind, channels) = (args.channel_kind, args.channels as usize);
    let activity_timeout = (!args.activity_timeout.is_zero()).then_some(args.activity_timeout);
    run.ramp(|index| SocketPlan {
        index,
        channel: (channels > 0).then(|| ChannelPlan {
            name: channel_name(kind, "conn", index % channels),
            kind,
            tracked: None,
        }),
        presence: None,
        activity_timeout,
    })
    .await;
    if run.nobody_ready() {
        return run.finish(None, None).await;
    }
    let until = run.begin_steady("hold").await;
    tokio::select! {
        () = run.shared.cancel.cancelled() => {}
        () = sleep_until(until) => {}
    }
    run.end_steady();
    run.finish(None, None).await
}
