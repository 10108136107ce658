//! `rtc roll --dry-run` against a real two-node cluster: `--no-cordon` plans without
//! cordons, as the roll itself would run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::cluster::*;
use common::*;

fn rtc_roll(args: Vec<String>) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rtc"));
    cmd.env_remove("RTC_CONFIG").env_remove("RTC_ADMIN_TOKEN");
    cmd.args(args).arg("--token").arg(ADMIN_TOKEN).output().unwrap()
}

#[tokio::test]
async fn dry_run_with_no_cordon_plans_no_cordons() {
    let redis = Redis::start().await;
    let (a, b) = joined_pair(&redis, "nc", ["n1", "n2"], &one_app(""), &[]).await;
    let url = redis.url();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["roll", "--redis-url", &url, "--cluster-name", "nc", "--dry-run", "--json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cordons = |out: &std::process::Output| -> Vec<bool> {
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "plan_step")
            .map(|v| v["cordon"].as_bool().unwrap_or_else(|| panic!("cordon in {v}")))
            .collect()
    };
    let with = tokio::task::spawn_blocking({
        let a = args(&[]);
        move || rtc_roll(a)
    })
    .await
    .unwrap();
    let with = cordons(&with);
    assert_eq!(with.len(), 2);
    assert!(with.contains(&true), "the default plan cordons the second step: {with:?}");
    let without = tokio::task::spawn_blocking({
        let a = args(&["--no-cordon"]);
        move || rtc_roll(a)
    })
    .await
    .unwrap();
    assert_eq!(cordons(&without), vec![false, false], "--no-cordon: no cordon in the plan");
    // A dry run changes nothing.
    assert_eq!(a.stats().await["state"], "serving");
    assert_eq!(b.stats().await["state"], "serving");
}
