//! The module layering of the root crate: which top-level module may import which.
//!
//! Every `crate::<module>` path in every file under `src/` (in `use` lines, grouped
//! `use crate::{a, b}` lists and inline paths; comments and string literals are skipped)
//! is an edge from the file's top-level module to `<module>`. An edge must be in
//! [`ALLOWED`] (the layering the code keeps). [`KNOWN_CYCLE`] listed the import cycle
//! among server, cluster, http_api, admin and webhooks until the port (issue 15) removed
//! it; it is empty and may only stay so: an edge listed there that the code no longer
//! has must be deleted from the table, so it cannot come back unnoticed.
//!
//! The server and a cluster engine meet only in `port`: `cluster` implements its
//! traits and never imports `server`; `server` uses them and never imports `cluster`;
//! `serve` (the composition root) picks the engine and assembles the routes.
//!
//! `rtc-model` and `rtc-console` are crates of their own and cannot import the server at
//! all (Cargo enforces that).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layering: each top-level module and the modules it may import. [`ALLOWED`] is
/// acyclic (checked below), so once [`KNOWN_CYCLE`] is empty the crate has no module
/// cycle.
const ALLOWED: &[(&str, &[&str])] = &[
    // The wire protocol and small leaves: nothing above them.
    ("protocol", &[]),
    ("secret", &[]),
    ("procfs", &[]),
    ("logging", &[]),
    // `rtc bench` is a client: the protocol, never server internals.
    ("bench", &["procfs", "protocol"]),
    // The command line, and the man page generated from it.
    ("cli", &["bench", "logging", "protocol"]),
    ("manpage", &["cli"]),
    // Configuration reads `ServeArgs` (the CLI layer feeding config) and domain types.
    ("config", &["cli", "logging", "protocol", "secret"]),
    ("metrics", &["logging"]),
    // The port between the server and a cluster engine: traits and plain data.
    ("port", &["protocol"]),
    ("webhooks", &["config", "logging", "metrics", "port", "protocol", "secret"]),
    // An engine: below the server, which it reaches only through the port's `Inbox`.
    ("cluster", &["config", "logging", "metrics", "port", "protocol", "secret"]),
    // The NATS engine: reuses the Redis engine's bus envelope, MAC and queue budget.
    ("nats", &["cluster", "config", "logging", "metrics", "port", "protocol", "secret"]),
    ("server", &["config", "logging", "metrics", "port", "procfs", "protocol", "secret", "webhooks"]),
    ("http_api", &["config", "logging", "metrics", "protocol", "secret", "server", "webhooks"]),
    ("admin", &["config", "logging", "metrics", "procfs", "protocol", "secret", "server"]),
    // The composition root of `rtc serve`.
    (
        "serve",
        &[
            "admin", "cli", "cluster", "config", "http_api", "logging", "metrics", "nats", "port", "procfs",
            "protocol", "secret", "server", "webhooks",
        ],
    ),
    // Fuzz harnesses drive the real parsers and validators of any layer below `serve`.
    (
        "fuzzing",
        &[
            "admin", "cli", "cluster", "config", "http_api", "logging", "metrics", "port", "procfs", "protocol",
            "secret", "server", "webhooks",
        ],
    ),
];

/// Edges that break the layering. Empty since the port (issue 15); never add one.
const KNOWN_CYCLE: &[(&str, &str)] = &[];

/// Removes comments and the contents of string and char literals, keeping line breaks.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'"' | b'#')) && !prev_is_ident(b, i) {
            // Raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + close.len();
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                } else if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == b'\'' && (b.get(i + 1) == Some(&b'\\') || b.get(i + 2) == Some(&b'\'')) {
            // A char literal ('x', '\n', '\u{..}'); a lone ' is a lifetime.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push_str("' '");
            i += 1;
        } else {
            // Multi-byte UTF-8 is copied byte-wise through a char boundary check.
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn prev_is_ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// The top-level modules named by `crate::` paths in `code`, including every entry of
/// a grouped `crate::{a::X, b}` list (nested groups included).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let boundary = at == 0 || !prev_is_ident(rest.as_bytes(), at);
        rest = &rest[at + "crate::".len()..];
        if !boundary {
            continue;
        }
        let rest_trim = rest.trim_start();
        if let Some(group) = rest_trim.strip_prefix('{') {
            // Top-level entries of the group: split on commas at depth 0.
            let mut depth = 0;
            let mut entry = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => {
                        depth += 1;
                        entry.push(ch);
                    }
                    '}' if depth == 0 => break,
                    '}' => {
                        depth -= 1;
                        entry.push(ch);
                    }
                    ',' if depth == 0 => {
                        found.insert(first_segment(&entry));
                        entry.clear();
                    }
                    _ => entry.push(ch),
                }
            }
            found.insert(first_segment(&entry));
        } else {
            found.insert(first_segment(rest_trim));
        }
    }
    found.remove("");
    found
}

fn first_segment(path: &str) -> String {
    path.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules of the crate (`src/x.rs` or `src/x/`), without `lib` and `main`.
fn top_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if p.is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs").map(str::to_string)
            }
        })
        .filter(|m| m != "lib" && m != "main")
        .collect()
}

/// Every import edge between distinct top-level modules, with one file that makes it.
fn edges(src: &Path) -> BTreeMap<(String, String), String> {
    let modules = top_modules(src);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("non-empty").as_os_str().to_string_lossy().to_string();
        let from = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        for to in crate_paths(&code_only(&text)) {
            if to != from && modules.contains(&to) {
                edges.entry((from.clone(), to)).or_insert_with(|| rel.display().to_string());
            }
        }
    }
    edges
}

/// The layering problems of `edges` against the tables: new edges, known-cycle edges
/// that are gone, modules missing from [`ALLOWED`].
fn violations(
    modules: &BTreeSet<String>,
    edges: &BTreeMap<(String, String), String>,
    allowed: &[(&str, &[&str])],
    known: &[(&str, &str)],
) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = allowed.iter().copied().collect();
    let mut problems = Vec::new();
    for m in modules {
        if !allowed.contains_key(m.as_str()) {
            problems.push(format!("module '{m}' is not in ALLOWED: place it in the layering"));
        }
    }
    for ((from, to), file) in edges {
        let ok = allowed.get(from.as_str()).is_some_and(|deps| deps.contains(&to.as_str()));
        if !ok && !known.contains(&(from.as_str(), to.as_str())) {
            problems.push(format!("new import {from} -> {to} (src/{file}): not allowed by the layering"));
        }
    }
    for (from, to) in known {
        if !edges.contains_key(&(from.to_string(), to.to_string())) {
            problems.push(format!("KNOWN_CYCLE edge {from} -> {to} is gone: delete it from the table"));
        }
        if allowed.get(from).is_some_and(|deps| deps.contains(to)) {
            problems.push(format!("{from} -> {to} is in both ALLOWED and KNOWN_CYCLE"));
        }
    }
    problems
}

/// A cycle in the allow-table, if any (as a path of module names).
fn cycle(allowed: &[(&str, &[&str])]) -> Option<Vec<String>> {
    let graph: BTreeMap<&str, &[&str]> = allowed.iter().copied().collect();
    fn visit<'a>(
        n: &'a str,
        graph: &BTreeMap<&'a str, &'a [&'a str]>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut c: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                c.push(n.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n, 1);
        path.push(n);
        for next in graph.get(n).copied().unwrap_or(&[]) {
            if let Some(c) = visit(next, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, &graph, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

fn src_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn imports_follow_the_layering() {
    let src = src_dir();
    let edges = edges(&src);
    let problems = violations(&top_modules(&src), &edges, ALLOWED, KNOWN_CYCLE);
    assert!(problems.is_empty(), "layering violations:\n  {}", problems.join("\n  "));
}

#[test]
fn the_allow_table_has_no_cycle() {
    assert_eq!(cycle(ALLOWED), None);
}

#[test]
fn protocol_and_config_import_nothing_above_them() {
    let edges = edges(&src_dir());
    let up: Vec<_> = edges.keys().filter(|(from, _)| from == "protocol").collect();
    assert!(up.is_empty(), "protocol imports {up:?}");
    let config: BTreeSet<&str> = edges.keys().filter(|(from, _)| from == "config").map(|(_, to)| to.as_str()).collect();
    for to in &config {
        assert!(["cli", "logging", "protocol", "secret"].contains(to), "config imports {to}");
    }
}

#[test]
fn the_checker_catches_new_and_vanished_edges() {
    let modules: BTreeSet<String> = ["a", "b", "c"].into_iter().map(String::from).collect();
    let allowed: &[(&str, &[&str])] = &[("a", &[]), ("b", &["a"]), ("c", &["a", "b"])];
    let known: &[(&str, &str)] = &[("a", "c")];
    let edge = |f: &str, t: &str| ((f.to_string(), t.to_string()), format!("{f}.rs"));
    let clean: BTreeMap<_, _> = [edge("b", "a"), edge("a", "c")].into_iter().collect();
    assert!(violations(&modules, &clean, allowed, known).is_empty());
    // A new upward edge.
    let mut new = clean.clone();
    new.extend([edge("a", "b")]);
    let p = violations(&modules, &new, allowed, known);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("new import a -> b"), "{p:?}");
    // A known-cycle edge that disappeared but is still listed.
    let gone: BTreeMap<_, _> = [edge("b", "a")].into_iter().collect();
    let p = violations(&modules, &gone, allowed, known);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("KNOWN_CYCLE edge a -> c is gone"), "{p:?}");
    // A cyclic allow-table.
    assert!(cycle(&[("a", &["b"]), ("b", &["a"])]).is_some());
}

#[test]
fn paths_are_found_in_code_not_in_comments_or_strings() {
    let src = "use crate::{a::X, b::{Y, Z}, c};\n// use crate::d;\nlet s = \"crate::e\";\n\
               let t = r#\"crate::f\"#;\nfn g() { crate::h::go(); }\n/* crate::i */ let c = '\"'; crate::j::k();\n\
               let x = mycrate::l; /// crate::m\n";
    let found = crate_paths(&code_only(src));
    let want: BTreeSet<String> = ["a", "b", "c", "h", "j"].into_iter().map(String::from).collect();
    assert_eq!(found, want);
}

#[test]
fn the_known_cycle_is_gone() {
    assert!(KNOWN_CYCLE.is_empty(), "{KNOWN_CYCLE:?}");
}

/// Writes `files` (path under `src/`, text) into a fresh directory and returns its `src`.
fn synthetic_src(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("rtc-layering-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let src = root.join("src");
    for (path, text) in files {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dir");
        std::fs::write(&path, text).expect("write source");
    }
    src
}

#[test]
fn a_deliberate_violation_over_real_sources_fails_the_check() {
    // The engine reaching up into the server (the edge the port removed), written the
    // way code would: a grouped `use` in a submodule of `cluster`.
    let src = synthetic_src(
        "violation",
        &[
            ("lib.rs", "pub mod cluster;\npub mod port;\npub mod server;\n"),
            ("port.rs", "use crate::protocol::ChannelName;\n"),
            ("cluster/mod.rs", "mod state;\nuse crate::port::Inbox;\n"),
            ("cluster/state.rs", "use crate::{port::Outcome, server::app::App};\n"),
            ("server/mod.rs", "use crate::port::ClusterPort;\n"),
        ],
    );
    let problems = violations(&top_modules(&src), &edges(&src), ALLOWED, KNOWN_CYCLE);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("new import cluster -> server (src/cluster/state.rs)"), "{problems:?}");
    // Without the forbidden import the same tree passes.
    std::fs::write(src.join("cluster/state.rs"), "use crate::port::Outcome;\n").expect("rewrite");
    let problems = violations(&top_modules(&src), &edges(&src), ALLOWED, KNOWN_CYCLE);
    assert!(problems.is_empty(), "{problems:?}");
    let _ = std::fs::remove_dir_all(src.parent().expect("root"));
}
