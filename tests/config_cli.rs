//! The binary's command line and configuration handling, run as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn rtc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rtc"));
    // Keep the test independent of the developer's environment.
    for (k, _) in std::env::vars() {
        if k.starts_with("RTC_") || k.starts_with("REVERB_") || k.starts_with("REDIS_") {
            c.env_remove(k);
        }
    }
    c
}

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    f
}

#[test]
fn the_example_config_parses_and_resolves() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rtc.example.toml")).unwrap();
    let file = rtc::config::parse_file(&text, "rtc.example.toml").unwrap();
    let cfg = rtc::config::resolve(&rtc::cli::ServeArgs::default(), file, &|_| None).unwrap();
    assert_eq!(cfg.apps.len(), 1);
    assert_eq!(cfg.apps[0].key, "my-app-key");
}

#[test]
fn a_bad_config_file_exits_2_naming_the_fields() {
    let f = write_temp("[server]\nport = \"eighty\"\n");
    let out = rtc().args(["serve", "--config"]).arg(f.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("port"), "{err}");

    let f = write_temp("[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s3kr1t\"\nactivity_timeout = 0\n");
    let out = rtc().args(["serve", "--config"]).arg(f.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apps[0].secret") && err.contains("apps[0].activity_timeout"), "{err}");
    assert!(!err.contains("s3kr1t"), "the secret value must not be echoed: {err}");

    let out = rtc().args(["serve", "--config", "/nonexistent/rtc.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_flags_and_env_exit_2() {
    let out = rtc().args(["serve", "--port", "http"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = rtc().args(["serve"]).env("REVERB_SERVER_PORT", "nope").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REVERB_SERVER_PORT"));
    let out = rtc().args(["serve", "--app-id", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing app key, app secret"));
}

/// Starts `rtc serve` and returns the child and the "listening" line.
// The caller owns the child and waits for it.
#[allow(clippy::zombie_processes)]
fn start(cmd: &mut Command) -> (std::process::Child, String, Vec<String>) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).expect("rtc printed its banner");
        lines.push(line.clone());
        if line.starts_with("open-file limit") {
            let listen = lines.iter().find(|l| l.starts_with("rtc listening on ")).cloned().unwrap();
            return (child, listen, lines);
        }
    }
}

#[test]
fn defaults_print_the_dev_app_and_reverb_env_replaces_it() {
    let (mut child, listen, lines) = start(rtc().args(["serve", "--host", "127.0.0.1", "--port", "0"]));
    assert!(listen.starts_with("rtc listening on http://127.0.0.1:"));
    let banner = lines.join("\n");
    assert!(banner.contains("DEVELOPMENT app") && banner.contains("rtc-dev-key"), "{banner}");
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, _, lines) = start(
        rtc()
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .env("REVERB_APP_ID", "4242")
            .env("REVERB_APP_KEY", "laravel-key")
            .env("REVERB_APP_SECRET", "laravel-secret"),
    );
    let banner = lines.join("\n");
    assert!(!banner.contains("DEVELOPMENT"), "{banner}");
    assert!(!banner.contains("laravel-secret"));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let (child, _, _) = start(rtc().args(["serve", "--host", "127.0.0.1", "--port", "0"]));
    let pid = child.id();
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let mut child = child;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert_eq!(s.code(), Some(0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rtc did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_help_documents_every_flag() {
    let out = rtc().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--host",
        "--port",
        "--path",
        "--admin-token",
        "--app-id",
        "--app-key",
        "--app-secret",
        "--activity-timeout",
        "--max-connections",
        "--client-events",
        "--allowed-origins",
    ] {
        assert!(help.contains(flag), "{flag} missing");
    }
    for env in ["RTC_HOST", "REVERB_SERVER_PORT", "REVERB_APP_KEY"] {
        assert!(help.contains(env), "{env} missing");
    }
}

#[test]
fn serve_help_documents_the_tls_flags() {
    let out = rtc().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["--tls-cert", "--tls-key", "RTC_TLS_CERT", "RTC_TLS_KEY"] {
        assert!(help.contains(needle), "{needle} missing");
    }
}
