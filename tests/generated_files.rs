//! The committed completions/ and man/ files are exactly what the code generates.
//! Regenerate them with `RTC_UPDATE_GENERATED=1 cargo test --test generated_files`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

fn check(path: PathBuf, want: Vec<u8>, stale: &mut Vec<String>) {
    if std::env::var_os("RTC_UPDATE_GENERATED").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    match std::fs::read(&path) {
        Ok(have) if have == want => {}
        _ => stale.push(path.display().to_string()),
    }
}

#[test]
fn completions_and_man_pages_are_current() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "rtc.bash"),
        (Shell::Zsh, "_rtc"),
        (Shell::Fish, "rtc.fish"),
        (Shell::Elvish, "rtc.elv"),
        (Shell::PowerShell, "_rtc.ps1"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut rtc::cli::Cli::command(), "rtc", &mut out);
        check(root.join("completions").join(file), out, &mut stale);
    }
    check(root.join("man/rtc.1"), rtc::manpage::render(None).unwrap(), &mut stale);
    for sub in rtc::manpage::subcommands() {
        check(root.join(format!("man/rtc-{sub}.1")), rtc::manpage::render(Some(&sub)).unwrap(), &mut stale);
    }
    assert!(
        stale.is_empty(),
        "generated files are out of date: {stale:?}\nrun: RTC_UPDATE_GENERATED=1 cargo test --test generated_files"
    );
}
