//! The server's own fan-out figures, read from its `/metrics` (`rtc_fanout_seconds`,
//! all sources) at the start and the end of the measured phase, and from its
//! `/admin/stats` at the end: what the node measured beside what the generator saw, so
//! the generator's own cost stops hiding the server's.

use std::time::Duration;

use serde::Serialize;

use super::target::Target;

/// Bound on one read of the server's figures.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The histogram's series name.
const SERIES: &str = "rtc_fanout_seconds";

/// The fan-out histogram summed over sources: cumulative counts per upper bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FanoutHistogram {
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum: f64,
}

impl FanoutHistogram {
    /// Parses the Prometheus text exposition; `None` when the series is absent (a server
    /// that does not measure fan-out).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut h = FanoutHistogram::default();
        let mut seen = false;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(SERIES) else { continue };
            let Some((name_labels, value)) = rest.rsplit_once(' ') else { continue };
            let (kind, labels) = name_labels.split_once('{').unwrap_or((name_labels, ""));
            match kind {
                "_bucket" => {
                    let Some(le) = label(labels, "le") else { continue };
                    let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                    let n: u64 = value.trim().parse().ok()?;
                    match h.buckets.iter_mut().find(|(b, _)| *b == le) {
                        Some((_, c)) => *c += n,
                        None => h.buckets.push((le, n)),
                    }
                }
                "_count" => h.count += value.trim().parse::<u64>().ok()?,
                "_sum" => h.sum += value.trim().parse::<f64>().ok()?,
                _ => continue,
            }
            seen = true;
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        seen.then_some(h)
    }

    /// What was observed after `before`.
    pub(crate) fn since(&self, before: &FanoutHistogram) -> FanoutHistogram {
        let at = |le: f64| before.buckets.iter().find(|(b, _)| *b == le).map_or(0, |(_, c)| *c);
        FanoutHistogram {
            buckets: self.buckets.iter().map(|&(le, c)| (le, c.saturating_sub(at(le)))).collect(),
            count: self.count.saturating_sub(before.count),
            sum: (self.sum - before.sum).max(0.0),
        }
    }

    /// The upper bound (seconds) of the bucket holding quantile `q`; `None` when empty or
    /// past the largest finite bound.
    pub(crate) fn quantile_le(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * self.count as f64).ceil().max(1.0) as u64;
        self.buckets.iter().find(|(_, c)| *c >= rank).map(|(le, _)| *le).filter(|le| le.is_finite())
    }
}

/// The value of label `name` in `a="x",b="y"}`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[start..].find('"')? + start;
    Some(&labels[start..end])
}

/// The node's fan-out over the measured phase, for the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerFanout {
    /// Broadcasts the node timed during the phase (all sources, all channels).
    pub broadcasts: u64,
    /// Their mean fan-out time, ms.
    pub mean_ms: Option<f64>,
    /// Upper bound of the histogram bucket holding the median, ms.
    pub p50_le_ms: Option<f64>,
    /// Upper bound of the bucket holding the 99th percentile, ms.
    pub p99_le_ms: Option<f64>,
    /// The node's own window figures at the end (last 10 s): median, ms.
    pub window_p50_ms: Option<f64>,
    /// The same, 99th percentile, ms.
    pub window_p99_ms: Option<f64>,
    /// The node's measured line at the end.
    pub measured_line: Option<u64>,
    /// The node's fan-out budget, ms.
    pub budget_ms: Option<f64>,
}

impl ServerFanout {
    /// From the histograms at both ends and the stats at the end.
    pub(crate) fn new(before: &FanoutHistogram, after: &FanoutHistogram, stats: Option<&serde_json::Value>) -> Self {
        let d = after.since(before);
        let ms = |s: f64| s * 1_000.0;
        let f = stats.map(|s| &s["fanout"]);
        ServerFanout {
            broadcasts: d.count,
            mean_ms: (d.count > 0).then(|| ms(d.sum / d.count as f64)),
            p50_le_ms: d.quantile_le(0.50).map(ms),
            p99_le_ms: d.quantile_le(0.99).map(ms),
            window_p50_ms: f.and_then(|f| f["p50_ms"].as_f64()),
            window_p99_ms: f.and_then(|f| f["p99_ms"].as_f64()),
            measured_line: stats.and_then(|s| s["measured_line"].as_u64()),
            budget_ms: f.and_then(|f| f["budget_ms"].as_f64()),
        }
    }
}

async fn get(target: &Target, token: &str, path: &str) -> Option<reqwest::Response> {
    let url = format!("{}{}{path}", target.http_base, target.prefix);
    let client = reqwest::Client::builder().timeout(READ_TIMEOUT).build().ok()?;
    let r = client.get(url).bearer_auth(token).send().await.ok()?;
    r.status().is_success().then_some(r)
}

/// The server's fan-out histogram now.
pub(crate) async fn read_histogram(target: &Target, token: &str) -> Option<FanoutHistogram> {
    FanoutHistogram::parse(&get(target, token, "/metrics").await?.text().await.ok()?)
}

/// The server's `/admin/stats` now.
pub(crate) async fn read_stats(target: &Target, token: &str) -> Option<serde_json::Value> {
    get(target, token, "/admin/stats").await?.json().await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# TYPE rtc_fanout_seconds histogram\n\
        rtc_fanout_seconds_sum{source=\"api\"} 0.002\n\
        rtc_fanout_seconds_count{source=\"api\"} 2\n\
        rtc_fanout_seconds_bucket{le=\"0.001\",source=\"api\"} 2\n\
        rtc_fanout_seconds_bucket{le=\"0.002\",source=\"api\"} 2\n\
        rtc_fanout_seconds_bucket{le=\"+Inf\",source=\"api\"} 2\n\
        rtc_fanout_seconds_sum{source=\"bus\"} 0.0\n\
        rtc_fanout_seconds_count{source=\"bus\"} 0\n\
        rtc_fanout_seconds_bucket{le=\"0.001\",source=\"bus\"} 0\n\
        rtc_fanout_seconds_bucket{le=\"0.002\",source=\"bus\"} 0\n\
        rtc_fanout_seconds_bucket{le=\"+Inf\",source=\"bus\"} 0\n\
        rtc_fanout_backlogged_total 0\n";

    #[test]
    fn sums_sources_and_takes_the_difference() {
        let before = FanoutHistogram::parse(BEFORE).unwrap();
        let after = FanoutHistogram::parse(
            &BEFORE
                .replace("seconds_count{source=\"bus\"} 0", "seconds_count{source=\"bus\"} 100")
                .replace("seconds_sum{source=\"bus\"} 0.0", "seconds_sum{source=\"bus\"} 0.12")
                .replace("le=\"0.001\",source=\"bus\"} 0", "le=\"0.001\",source=\"bus\"} 98")
                .replace("le=\"0.002\",source=\"bus\"} 0", "le=\"0.002\",source=\"bus\"} 100")
                .replace("le=\"+Inf\",source=\"bus\"} 0", "le=\"+Inf\",source=\"bus\"} 100"),
        )
        .unwrap();
        let f = ServerFanout::new(&before, &after, None);
        assert_eq!(f.broadcasts, 100);
        assert!((f.mean_ms.unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(f.p50_le_ms, Some(1.0));
        assert_eq!(f.p99_le_ms, Some(2.0));
        assert_eq!(FanoutHistogram::parse("rtc_other 1\n"), None);
    }
}
