//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and every crash input
//! kept as a regression (`fuzz/regressions/<target>/`) through the same harnesses the
//! `cargo fuzz` targets run (`rtc::fuzzing`), on the stable toolchain, so CI checks
//! them without libFuzzer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 3] = [
    ("client_frame", rtc::fuzzing::client_frame),
    ("http_signature", rtc::fuzzing::http_signature),
    ("bus_decode", rtc::fuzzing::bus_decode),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

/// Runs every input of `fuzz/<kind>/<target>/`; returns how many ran and the inputs
/// on which the harness panicked.
fn replay(kind: &str, target: &str, harness: Harness) -> (usize, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let inputs = files(&dir);
    let mut failed = Vec::new();
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| harness(&data)).is_err() {
            failed.push(format!("fuzz/{kind}/{target}/{}", path.file_name().unwrap().to_string_lossy()));
        }
    }
    (inputs.len(), failed)
}

#[test]
fn corpus_replays_cleanly() {
    let mut failed = Vec::new();
    for (target, harness) in TARGETS {
        let (n, f) = replay("corpus", target, harness);
        assert!(n > 0, "fuzz/corpus/{target}/ is empty");
        failed.extend(f);
    }
    assert!(failed.is_empty(), "harness panicked on: {failed:#?}");
}

#[test]
fn crash_regressions_stay_fixed() {
    let mut failed = Vec::new();
    for (target, harness) in TARGETS {
        failed.extend(replay("regressions", target, harness).1);
    }
    assert!(failed.is_empty(), "harness panicked on: {failed:#?}");
}

#[test]
fn every_target_has_a_harness_here() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("fuzz_targets");
    let mut names: Vec<String> =
        files(&dir).iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut ours: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    ours.sort();
    assert_eq!(names, ours, "a target in fuzz/fuzz_targets/ is not replayed by tests/fuzz_corpus.rs");
}
