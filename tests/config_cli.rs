//! The binary's command line and configuration handling, run as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

/// An empty working directory: `rtc serve` reads `./rtc.toml` when present, so a stray
/// one in the developer's checkout must not change what these tests see.
fn clean_cwd() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn rtc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rtc"));
    c.current_dir(clean_cwd());
    // Keep the test independent of the developer's environment.
    common::process::scrub_env(&mut c);
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
    let rx = common::process::lines_of(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    common::process::wait_line(&rx, common::process::BANNER_WAIT, "banner", |line| {
        lines.push(line.to_string());
        line.starts_with("open-file limit").then_some(())
    });
    let listen = lines.iter().find(|l| l.starts_with("rtc listening on ")).cloned().unwrap();
    (child, listen, lines)
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

/// Runs `cmd` to completion, killing it after 30 s (a node that should have refused its
/// config and did not must fail the test, not hang it).
fn output_within(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn addr_of(listen: &str) -> String {
    listen.trim_start_matches("rtc listening on http://").trim().to_string()
}

/// The `activity_timeout` a client is given by the app with `key`, and the client.
async fn activity_timeout(addr: &str, key: &str) -> (u64, common::Client) {
    let url = format!("ws://{addr}/app/{key}?protocol=7&client=js&version=8.4.0");
    let mut c = common::Client::connect_raw(&url).await;
    let hello = c.expect_event("pusher:connection_established").await;
    let data = common::data_of(&hello);
    (data["activity_timeout"].as_u64().unwrap(), c)
}

fn stop(mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

const TWO_APPS: &str = "[[apps]]\nid = \"1\"\nkey = \"key-one\"\nsecret = \"secret-one\"\nactivity_timeout = 7\n\
                        [[apps]]\nid = \"2\"\nkey = \"key-two\"\nsecret = \"secret-two\"\n";

#[tokio::test]
async fn an_app_flag_applies_to_the_only_file_app() {
    let f = write_temp("[[apps]]\nid = \"1\"\nkey = \"key-one\"\nsecret = \"secret-one\"\nactivity_timeout = 7\n");
    let (child, listen, _) = start(
        rtc()
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--activity-timeout", "11", "--config"])
            .arg(f.path()),
    );
    let (t, _c) = activity_timeout(&addr_of(&listen), "key-one").await;
    assert_eq!(t, 11, "--activity-timeout must apply to the one file app");
    stop(child);
}

#[tokio::test]
async fn an_app_flag_with_several_file_apps_needs_an_app_id() {
    let f = write_temp(TWO_APPS);
    let out = output_within(
        rtc()
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--activity-timeout", "11", "--config"])
            .arg(f.path()),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--activity-timeout") && err.contains("defines 2 apps") && err.contains("--app-id"), "{err}");

    let out = output_within(
        rtc()
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--config"])
            .arg(f.path())
            .env("RTC_APP_ACTIVITY_TIMEOUT", "11"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RTC_APP_ACTIVITY_TIMEOUT"), "the variable that set it is named: {err}");

    let out = output_within(
        rtc()
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--config"])
            .arg(f.path())
            .env("REVERB_APP_MAX_CONNECTIONS", "3"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REVERB_APP_MAX_CONNECTIONS"));

    // Naming the app by id applies the option to it, and only to it.
    let (child, listen, _) = start(
        rtc()
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--activity-timeout", "11", "--app-id", "2"])
            .arg("--config")
            .arg(f.path()),
    );
    let addr = addr_of(&listen);
    assert_eq!(activity_timeout(&addr, "key-two").await.0, 11);
    assert_eq!(activity_timeout(&addr, "key-one").await.0, 7);
    stop(child);
}

#[tokio::test]
async fn a_reverb_app_with_a_file_app_id_overrides_field_by_field() {
    let f = write_temp(
        "[[apps]]\nid = \"1\"\nkey = \"file-key\"\nsecret = \"file-secret\"\nmax_connections = 1\nactivity_timeout = 7\n",
    );
    let (child, listen, _) = start(
        rtc()
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--config"])
            .arg(f.path())
            .env("REVERB_APP_ID", "1")
            .env("REVERB_APP_KEY", "env-key")
            .env("REVERB_APP_SECRET", "env-secret"),
    );
    let addr = addr_of(&listen);
    // The key comes from the environment, every other option from the file.
    let (t, _first) = activity_timeout(&addr, "env-key").await;
    assert_eq!(t, 7, "activity_timeout from the file app is kept");
    let url = format!("ws://{addr}/app/env-key?protocol=7&client=js&version=8.4.0");
    let mut second = common::Client::connect_raw(&url).await;
    assert_eq!(second.expect_close().await, Some(4004), "max_connections = 1 from the file app is kept");
    let url = format!("ws://{addr}/app/file-key?protocol=7&client=js&version=8.4.0");
    let mut old = common::Client::connect_raw(&url).await;
    assert_eq!(old.expect_close().await, Some(4001), "the key was replaced");
    stop(child);
}

#[test]
fn a_bad_value_names_the_flag_variable_or_key_that_set_it() {
    let out = output_within(rtc().args(["serve", "--host", "127.0.0.1"]).env("RTC_PORT", "abc"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RTC_PORT"), "{err}");
    let out = output_within(rtc().args(["serve", "--port", "abc"]).env("RTC_PORT", "abc"));
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("RTC_PORT"), "the flag set it, not the variable");

    let f = write_temp("[server]\nmax_request_size = 10\n");
    for (env, needle) in [
        (None, "--max-request-size"),
        (Some("RTC_MAX_REQUEST_SIZE"), "RTC_MAX_REQUEST_SIZE"),
        (Some("REVERB_MAX_REQUEST_SIZE"), "REVERB_MAX_REQUEST_SIZE"),
        (Some("file"), "config server.max_request_size"),
    ] {
        let mut cmd = rtc();
        cmd.args(["serve", "--host", "127.0.0.1", "--port", "0"]);
        match env {
            None => {
                cmd.args(["--max-request-size", "10"]);
            }
            Some("file") => {
                cmd.arg("--config").arg(f.path());
            }
            Some(var) => {
                cmd.env(var, "10");
            }
        }
        let out = output_within(&mut cmd);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{needle}: 10 is too small")), "{needle}: {err}");
    }
}

#[tokio::test]
async fn serve_reads_rtc_toml_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rtc.toml"),
        "[[apps]]\nid = \"9\"\nkey = \"cwd-key\"\nsecret = \"cwd-secret\"\nactivity_timeout = 9\n",
    )
    .unwrap();
    let (child, listen, lines) =
        start(rtc().current_dir(dir.path()).args(["serve", "--host", "127.0.0.1", "--port", "0"]));
    assert!(!lines.join("\n").contains("DEVELOPMENT"), "{lines:?}");
    assert_eq!(activity_timeout(&addr_of(&listen), "cwd-key").await.0, 9);
    stop(child);

    std::fs::write(dir.path().join("rtc.toml"), "[server]\nprot = 1\n").unwrap();
    let out = output_within(rtc().current_dir(dir.path()).args(["serve", "--host", "127.0.0.1", "--port", "0"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rtc.toml"));
}

#[tokio::test]
async fn path_prefixes_the_pusher_routes_but_health_metrics_and_admin_stay_at_the_root() {
    let (child, listen, _) = start(rtc().args([
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--path",
        "/a",
        "--admin-token",
        common::ADMIN_TOKEN,
    ]));
    let addr = addr_of(&listen).trim_end_matches("/a").to_string();
    let http = reqwest::Client::builder().timeout(common::WAIT).build().unwrap();
    let get = |path: &str| {
        let req = http.get(format!("http://{addr}{path}")).bearer_auth(common::ADMIN_TOKEN);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // Where deploy/kubernetes.yaml probes, and where the console reads.
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes.yaml")).unwrap();
    let probes: Vec<&str> =
        manifest.split("path: ").skip(1).filter_map(|rest| rest.split([',', ' ', '}', '\n']).next()).collect();
    assert!(probes.contains(&"/ready") && probes.contains(&"/live"), "{probes:?}");
    for path in probes {
        assert_eq!(get(path).await, 200, "the manifest probes {path}; it must answer with --path /a");
    }
    for path in ["/up", "/ready", "/live", "/metrics", "/admin/stats"] {
        assert_eq!(get(path).await, 200, "{path} must answer at the root with --path /a");
        assert_eq!(get(&format!("/a{path}")).await, 404, "/a{path} is not a route");
    }
    // The WebSocket and the HTTP API move under the prefix.
    let url = format!("ws://{addr}/a/app/rtc-dev-key?protocol=7&client=js&version=8.4.0");
    common::Client::connect(&url).await;
    assert_eq!(get("/a/apps/100001/channels").await, 401, "the API is at /a (unsigned: 401)");
    assert_eq!(get("/apps/100001/channels").await, 404);
    stop(child);

    let out = output_within(rtc().args(["serve", "--host", "127.0.0.1", "--port", "0", "--path", "/admin"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--path: '/admin' would shadow"));
}

#[tokio::test]
async fn the_systemd_unit_verifies_and_runs_with_a_credential_config_and_an_instance_port() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rtc@.service")).unwrap();
    for needle in ["DynamicUser=yes", "LoadCredential=rtc.toml:/etc/rtc/rtc.toml", "EnvironmentFile=-/etc/rtc/%i.env"] {
        assert!(unit.contains(needle), "{needle} missing from the unit");
    }
    let bin = env!("CARGO_BIN_EXE_rtc");
    // systemd's own check of the unit (instance node-7, the binary where ExecStart expects it).
    let dir = tempfile::tempdir().unwrap();
    let unit_path = dir.path().join("rtc@node-7.service");
    std::fs::write(&unit_path, unit.replace("/usr/local/bin/rtc", bin)).unwrap();
    match Command::new("systemd-analyze").arg("verify").arg(&unit_path).output() {
        Ok(out) => assert!(
            out.status.success(),
            "systemd-analyze verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("systemd-analyze not installed ({e}); unit syntax not verified"),
    }

    // Run ExecStart as systemd would: %d is the credentials directory holding a private
    // copy of rtc.toml, %i the instance, and the instance's env file sets the port.
    let creds = tempfile::tempdir().unwrap();
    let cfg = creds.path().join("rtc.toml");
    std::fs::write(
        &cfg,
        "[server]\nhost = \"127.0.0.1\"\nport = 1\n[[apps]]\nid = \"1\"\nkey = \"unit-key\"\nsecret = \"unit-secret\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    let argv: Vec<String> = exec
        .split_whitespace()
        .map(|a| a.replace("%d", &creds.path().display().to_string()).replace("%i", "node-7"))
        .collect();
    let port = common::cluster::free_port();
    let (child, listen, _) = start(rtc().args(&argv[1..]).env("RTC_PORT", port.to_string()));
    assert_eq!(
        listen,
        format!("rtc listening on http://127.0.0.1:{port}"),
        "RTC_PORT from the instance beats server.port"
    );
    let (t, _c) = activity_timeout(&addr_of(&listen), "unit-key").await;
    assert_eq!(t, 120);
    stop(child);
}

#[test]
fn logs_to_a_pipe_carry_no_ansi_colour_codes() {
    let mut child = rtc()
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = common::process::lines_of(child.stderr.take().unwrap());
    let line = common::process::wait_line(&rx, Duration::from_secs(10), "log line saying it listens", |line| {
        line.contains("Listening.").then(|| line.to_string())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!line.contains('\u{1b}'), "ANSI escape codes in a log line written to a pipe: {line:?}");
}

/// Help texts cannot name a const, so they spell the default planning line out: every
/// `--planning-line` help of `rtc` (serve, top, status, drain, roll …) must name the one
/// default in `rtc_model::DEFAULT_PLANNING_LINE`.
#[test]
fn planning_line_help_names_the_shared_default() {
    let want = rtc_model::DEFAULT_PLANNING_LINE.to_string();
    let mut seen = 0;
    let mut stack = vec![<rtc::cli::Cli as clap::CommandFactory>::command()];
    while let Some(cmd) = stack.pop() {
        for arg in cmd.get_arguments().filter(|a| a.get_long() == Some("planning-line")) {
            seen += 1;
            let help = format!("{:?} {:?}", arg.get_help(), arg.get_long_help());
            assert!(help.contains(&want), "'rtc {} --planning-line' help does not name {want}: {help}", cmd.get_name());
        }
        stack.extend(cmd.get_subcommands().cloned());
    }
    assert!(seen >= 2, "expected --planning-line on serve and the console commands, found {seen}");
}
