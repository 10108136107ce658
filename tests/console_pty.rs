//! `rtc top` in a pseudo-terminal (util-linux `script` provides it): the dashboard
//! starts, draws, quits on `q`, and leaves the terminal as it found it: main screen,
//! cursor shown, cooked mode (checked with `stty -a` after it exits).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Longest wait for each step; the whole test is bounded by three of these.
const STEP: Duration = Duration::from_secs(20);

/// Reads the child's output until `needle` shows up, the output ends, or [`STEP`] passes.
fn wait_for(rx: &mpsc::Receiver<Vec<u8>>, seen: &mut Vec<u8>, needle: &str) -> bool {
    let deadline = std::time::SystemTime::now() + STEP;
    loop {
        if String::from_utf8_lossy(seen).contains(needle) {
            return true;
        }
        let left = deadline.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO);
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend_from_slice(&chunk),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                return String::from_utf8_lossy(seen).contains(needle)
            }
        }
    }
}

#[test]
fn top_starts_draws_quits_on_q_and_restores_the_terminal() {
    let rtc = env!("CARGO_BIN_EXE_rtc");
    let wired = Command::new(rtc).args(["top", "--help"]).output().is_ok_and(|o| o.status.success());
    if !wired {
        eprintln!("SKIPPED: this rtc has no `top` subcommand yet");
        return;
    }
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: script(1) from util-linux is not installed");
        return;
    }
    // A loopback port with nothing listening: the dashboard runs and shows the node down.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let inner = format!(
        "stty rows 24 cols 80; TERM=xterm-256color NO_COLOR=1 '{rtc}' top --node http://127.0.0.1:{port} \
         --token t; echo \"rtc-exit=$?\"; stty -a"
    );
    let mut child = Command::new("script")
        .args(["-qfec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });

    let mut seen = Vec::new();
    let drawn = wait_for(&rx, &mut seen, "rtc top") && wait_for(&rx, &mut seen, "down");
    if !drawn {
        let _ = child.kill();
    }
    assert!(drawn, "no frame drawn: {}", String::from_utf8_lossy(&seen));
    stdin.write_all(b"q").expect("send q");
    stdin.flush().expect("flush");
    let exited = wait_for(&rx, &mut seen, "rtc-exit=") && wait_for(&rx, &mut seen, "icanon");
    if !exited {
        let _ = child.kill();
    }
    drop(stdin);
    let _ = child.wait();
    let text = String::from_utf8_lossy(&seen);
    assert!(exited, "rtc top did not quit on q: {text}");
    assert!(text.contains("\x1b[?1049h"), "never entered the alternate screen");
    assert!(text.contains("\x1b[?1049l"), "did not leave the alternate screen: {text}");
    assert!(text.contains("\x1b[?25h"), "did not show the cursor again");
    assert!(text.contains("rtc-exit=0"), "exit code: {text}");
    let after = &text[text.find("rtc-exit=").unwrap_or(0)..];
    assert!(!after.contains("-icanon") && !after.contains("-echo "), "terminal left in raw mode: {after}");
}
