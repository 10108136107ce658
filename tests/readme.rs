//! The README is a contract, checked against the binary:
//!
//! * every fenced block marked runnable (an HTML comment `<!-- runnable -->` on the line
//!   before a ```` ```sh ```` fence) runs with bash against a real node on loopback, with
//!   `rtc` on the `PATH`, `RTC_ADMIN_TOKEN` set and `127.0.0.1:8080` pointing at the node;
//!   it must exit 0 within a bounded time;
//! * every row of the configuration table: each backticked flag is in `rtc serve --help`,
//!   each `RTC_*`/`REVERB_*` name is in the help or is named by the binary's error when
//!   set to a bad value, and each file key is accepted by the config file parser;
//! * every row of the limits table: its key is set in `rtc.example.toml`, with the
//!   default the README gives;
//! * every `rtc_*` metric the README names is in a live node's `/metrics`;
//! * every test the tested-faults table names exists in the test file it names.
//!
//! Rows other changes add in the same format (flag, variable and key in backticks) are
//! checked the same way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const README: &str = include_str!("../README.md");
const EXAMPLE: &str = include_str!("../rtc.example.toml");
const BIN: &str = env!("CARGO_BIN_EXE_rtc");

/// The address runnable blocks use for "the node" (a user's default port).
const README_ADDR: &str = "127.0.0.1:8080";

/// `rtc` with none of the developer's RTC_*/REVERB_*/REDIS_* variables, in an empty
/// working directory (serve reads ./rtc.toml).
fn rtc(cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    common::process::scrub_env(&mut c);
    c.current_dir(cwd);
    c
}

/// Runs `cmd` to completion, killing it after `within`; `None` when it had to be killed.
fn run_within(cmd: &mut Command, within: Duration) -> Option<std::process::Output> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + within;
    let mut killed = false;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (!killed).then_some(out)
}

/// The lines of the first Markdown table under the heading `heading` whose header row
/// starts with `header`, without the header and separator rows.
fn table<'a>(heading: &str, header: &str) -> Vec<&'a str> {
    let start = README.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("README has no '{heading}'"));
    let rest = &README[start..];
    let at = rest.find(&format!("\n{header}")).unwrap_or_else(|| panic!("no table '{header}' under '{heading}'"));
    let rows: Vec<&str> = rest[at + 1..].lines().take_while(|l| l.starts_with('|')).skip(2).collect();
    assert!(!rows.is_empty(), "the table under '{heading}' is empty");
    rows
}

/// The cells of a table row.
fn cells(row: &str) -> Vec<&str> {
    row.trim().trim_matches('|').split('|').map(str::trim).collect()
}

/// The backticked spans of a cell.
fn ticks(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// Identifiers (`a-z0-9_`) in `s`.
fn idents(s: &str) -> Vec<&str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect()
}

fn serve_help() -> String {
    let out = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the config file parser knows `key` at this place: a value of the wrong type
/// gives "invalid type", an unknown key "unknown field".
fn file_key_known(toml: &str) -> Result<(), String> {
    match rtc::config::parse_file(toml, "probe") {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("unknown field") => Err(e.to_string()),
        Err(_) => Ok(()),
    }
}

/// The checks of one file-column span: `section.key`, `key = [{ inner = … }]`, or app
/// keys (`[[apps]] id, key, secret`, `activity_timeout`); `webhook` keys when the cell
/// speaks of an endpoint.
fn check_file_span(span: &str, cell: &str, problems: &mut Vec<String>) {
    let mut probe = |toml: String, what: &str| {
        if let Err(e) = file_key_known(&toml) {
            problems.push(format!("file key {what} (`{span}`) is not accepted: {e}"));
        }
    };
    if let Some((section, key)) = span.split_once('.').filter(|(s, k)| idents(s) == [*s] && idents(k) == [*k]) {
        probe(format!("[{section}]\n{key} = {{}}\n"), &format!("{section}.{key}"));
    } else if let Some((outer, inner)) = span.split_once("= [{") {
        let outer = idents(outer).last().copied().unwrap_or_default();
        probe(format!("[[apps]]\n{outer} = {{}}\n"), outer);
        for part in inner.split(',') {
            if let Some(key) = part.split_once('=').map(|(k, _)| k.trim()) {
                probe(format!("[[apps]]\n{outer} = [{{ {key} = {{}} }}]\n"), &format!("{outer}.{key}"));
            }
        }
    } else {
        for key in idents(span).into_iter().filter(|k| *k != "apps") {
            if cell.contains("endpoint") {
                probe(format!("[[apps]]\nwebhooks = [{{ {key} = {{}} }}]\n"), &format!("webhooks.{key}"));
            } else {
                probe(format!("[[apps]]\n{key} = {{}}\n"), key);
            }
        }
    }
}

/// A variable the binary does not list in `--help` must still be read: set to a bad
/// value, `rtc serve` refuses it (exit 2) naming it.
fn env_is_read(var: &str, cwd: &Path) -> Result<(), String> {
    let mut cmd = rtc(cwd);
    cmd.args(["serve", "--host", "127.0.0.1", "--port", "0"]).env(var, "\u{7f}not valid");
    match run_within(&mut cmd, Duration::from_secs(20)) {
        // A free-form variable (any string is valid) must at least be read by the code.
        None if source_reads(var) => Ok(()),
        None => Err(format!("{var}: with a bad value rtc serve started anyway (the variable is not read)")),
        Some(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.code() == Some(2) && err.contains(var) {
                Ok(())
            } else {
                Err(format!("{var}: a bad value is not reported under its name (exit {:?}): {err}", out.status.code()))
            }
        }
    }
}

/// Whether the server's source reads `var` by name (`"VAR"` in src/).
fn source_reads(var: &str) -> bool {
    fn walk(dir: &Path, needle: &str) -> bool {
        std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p, needle)
            } else {
                p.extension().is_some_and(|x| x == "rs")
                    && std::fs::read_to_string(&p).is_ok_and(|t| t.contains(needle))
            }
        })
    }
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &format!("\"{var}\""))
}

#[test]
fn every_row_of_the_configuration_table_is_true_of_the_binary() {
    let help = serve_help();
    let cwd = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for row in table("## Configuration", "| what | flag |") {
        let c = cells(row);
        assert!(c.len() >= 5, "a configuration row has too few cells: {row}");
        for flag in ticks(c[1]) {
            checked += 1;
            let found = help.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-')).any(|w| w == flag);
            if !flag.starts_with("--") || !found {
                problems.push(format!("flag `{flag}` ({}) is not in rtc serve --help", c[0]));
            }
        }
        for span in ticks(c[2]).into_iter().chain(ticks(c[3])) {
            for var in idents(span).into_iter().filter(|v| v.starts_with("RTC_") || v.starts_with("REVERB_")) {
                checked += 1;
                if !help.contains(var) {
                    if let Err(e) = env_is_read(var, cwd.path()) {
                        problems.push(format!("{} row: {e}", c[0]));
                    }
                }
            }
        }
        for span in ticks(c[4]) {
            checked += 1;
            check_file_span(span, c[4], &mut problems);
        }
    }
    assert!(checked > 40, "the configuration table was not parsed ({checked} names checked)");
    assert!(problems.is_empty(), "README configuration table vs the binary:\n  {}", problems.join("\n  "));
}

/// The first number of a README default (`10,000 B`, `1 MiB`, `0 = none`), in the
/// example file's unit; `None` when the default is not a number.
fn readme_number(default: &str) -> Option<i64> {
    let d = default.trim();
    let digits: String = d.chars().take_while(|c| c.is_ascii_digit() || *c == ',').filter(|c| *c != ',').collect();
    let n: i64 = digits.parse().ok()?;
    let unit = d[d.find(|c: char| !(c.is_ascii_digit() || c == ',')).unwrap_or(d.len())..].trim_start();
    Some(match unit.split_whitespace().next() {
        Some("KiB") => n * 1024,
        Some("MiB") => n * 1024 * 1024,
        _ => n,
    })
}

#[test]
fn every_limits_table_key_is_in_the_example_config_with_the_readme_default() {
    let example: toml::Value = toml::from_str(EXAMPLE).unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for row in table("## Limits", "| limit | key |") {
        let c = cells(row);
        assert!(c.len() >= 4, "a limits row has too few cells: {row}");
        for key in ticks(c[1]) {
            checked += 1;
            let value = match key.split_once('.') {
                Some((section, k)) => example.get(section).and_then(|s| s.get(k)),
                None => example.get("apps").and_then(|a| a.get(0)).and_then(|a| a.get(key)),
            };
            let Some(value) = value else {
                // A default computed at start-up (say, from the open-file limit) is shown
                // commented out: `# key = example`.
                let bare = key.rsplit('.').next().unwrap_or(key);
                let commented = EXAMPLE.lines().any(|l| {
                    l.trim_start().strip_prefix('#').is_some_and(|l| l.trim_start().starts_with(&format!("{bare} =")))
                });
                if !commented {
                    problems.push(format!("limits row '{}': `{key}` is not set in rtc.example.toml", c[0]));
                }
                continue;
            };
            if let (Some(want), Some(have)) = (readme_number(c[2]), value.as_integer()) {
                if want != have {
                    problems.push(format!(
                        "limits row '{}': README default {} but rtc.example.toml has {key} = {have}",
                        c[0], c[2]
                    ));
                }
            }
        }
    }
    assert!(checked > 10, "the limits table was not parsed ({checked} keys checked)");
    // The example's values are the binary's defaults: it resolves like no file at all.
    let file = rtc::config::parse_file(EXAMPLE, "rtc.example.toml").unwrap();
    let from_example = rtc::config::resolve(&rtc::cli::ServeArgs::default(), file, &|_| None).unwrap();
    let defaults = rtc::config::resolve(&rtc::cli::ServeArgs::default(), Default::default(), &|_| None).unwrap();
    let strip = |a: &rtc::config::AppConfig| {
        let mut a = a.clone();
        (a.id, a.key, a.secret) = (String::new(), String::new(), rtc::secret::Secret::new(""));
        format!("{a:?}")
    };
    assert_eq!(
        strip(&from_example.apps[0]),
        strip(&defaults.apps[0]),
        "rtc.example.toml's app differs from the defaults"
    );
    assert!(problems.is_empty(), "README limits table vs rtc.example.toml:\n  {}", problems.join("\n  "));
}

/// A node for the README's commands: the development app, a known admin token.
struct Node {
    child: std::process::Child,
    addr: String,
    _cwd: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        let cwd = tempfile::tempdir().unwrap();
        let mut child = rtc(cwd.path())
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--admin-token", common::ADMIN_TOKEN])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = common::process::http_addr(&mut child);
        Node { child, addr, _cwd: cwd }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_metric_the_readme_names_is_in_metrics() {
    // Inline code spans of the prose and tables (not fenced blocks).
    let mut in_fence = false;
    let mut names: Vec<String> = README
        .lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                in_fence = !in_fence;
                return false;
            }
            !in_fence
        })
        .flat_map(|l| l.split('`').skip(1).step_by(2))
        .flat_map(idents)
        .filter(|w| w.starts_with("rtc_") && w.len() > 4 && !matches!(*w, "rtc_model" | "rtc_console"))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    assert!(!names.is_empty(), "the README names no metric");
    let node = Node::start();
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "10", "-H"])
        .arg(format!("Authorization: Bearer {}", common::ADMIN_TOKEN))
        .arg(format!("http://{}/metrics", node.addr))
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "GET /metrics: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // A family without samples yet (a labelled counter nothing has touched) still has its
    // `# TYPE` line, under the name without `_total`.
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            let family = name.strip_suffix("_total").unwrap_or(name);
            !text.lines().any(|l| {
                l.strip_prefix(name.as_str()).is_some_and(|r| r.starts_with([' ', '{']))
                    || l.strip_prefix("# TYPE ").is_some_and(|r| r.split_whitespace().next() == Some(family))
            })
        })
        .collect();
    assert!(missing.is_empty(), "metrics named in the README but not in /metrics: {missing:?}\n{text}");
}

/// The fenced blocks marked runnable.
fn runnable_blocks() -> Vec<(usize, String)> {
    let lines: Vec<&str> = README.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "<!-- runnable -->" {
            let fence = lines.get(i + 1).copied().unwrap_or_default();
            assert!(fence.starts_with("```sh"), "README line {}: a runnable marker must precede a ```sh fence", i + 1);
            let body: Vec<&str> = lines[i + 2..].iter().take_while(|l| !l.starts_with("```")).copied().collect();
            blocks.push((i + 3, body.join("\n")));
            i += body.len() + 2;
        }
        i += 1;
    }
    blocks
}

#[test]
fn the_runnable_readme_commands_run_against_a_real_node() {
    let blocks = runnable_blocks();
    assert!(!blocks.is_empty(), "the README marks no block runnable");
    let node = Node::start();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let work = tempfile::tempdir().unwrap();
    for (line, body) in blocks {
        let script = body.replace(README_ADDR, &node.addr);
        let mut bash = Command::new("bash");
        bash.args(["-e", "-o", "pipefail", "-c", &script])
            .current_dir(work.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", work.path())
            .env("RTC_ADMIN_TOKEN", common::ADMIN_TOKEN)
            .env("NO_COLOR", "1");
        let out = run_within(&mut bash, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("README line {line}: the block did not finish within 60 s:\n{body}"));
        assert!(
            out.status.success(),
            "README line {line}: the block failed ({:?}):\n{body}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_test_the_faults_table_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut problems = Vec::new();
    let mut checked = 0;
    for row in table("## Tests", "| fault |") {
        let c = cells(row);
        let Some(cell) = c.last() else { continue };
        let mut file: Option<String> = None;
        for span in ticks(cell) {
            if let Some(name) = span.strip_suffix(".rs") {
                let path = root.join(format!("{name}.rs"));
                match std::fs::read_to_string(&path) {
                    Ok(text) => file = Some(text),
                    Err(_) => problems.push(format!("'{}': tests/{name}.rs does not exist", c[0])),
                }
            } else if let Some(text) = &file {
                checked += 1;
                if !text.contains(&format!("fn {span}(")) {
                    problems.push(format!("'{}': no test `{span}` in the file named before it", c[0]));
                }
            } else {
                problems.push(format!("'{}': test `{span}` named before its file", c[0]));
            }
        }
    }
    assert!(checked > 5, "the faults table was not parsed ({checked} tests checked)");
    assert!(problems.is_empty(), "README tested-faults table:\n  {}", problems.join("\n  "));
}
