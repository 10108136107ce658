//! CPU time and resident memory of a process, and the machine's CPU time, read from
//! Linux's `/proc`. Used by the node for its own figures (`/admin/stats`, `rtc top`) and
//! by `rtc bench` for the generator's and the server's.
//!
//! The files are opened once and re-read from offset 0 (procfs regenerates the text), so
//! sampling keeps working when the process has used every file descriptor it may open,
//! and costs a seek and a read of each file per sample. (sysinfo's per-process refresh lists every entry of
//! `/proc` and every task directory on each call: several percent of an idle node's CPU.)

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::Duration;

use tokio::time::Instant;

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`): 100 on every Linux ABI that
/// `rtc` builds for; it is fixed by the kernel ABI, not by `CONFIG_HZ`.
const USER_HZ: f64 = 100.0;

/// The cores a process may run on, as `Cpus_allowed_list` writes them (e.g. `0-1`).
pub fn cpus_allowed_list(pid: Option<u32>) -> Option<String> {
    let status = std::fs::read_to_string(proc_path(pid, "status")).ok()?;
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    Some(list.trim().to_string())
}

/// How many cores a `Cpus_allowed_list` names, e.g. 1 under `taskset -c 0`.
pub fn count_cpus(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => b.trim().parse::<usize>().ok()? - a.trim().parse::<usize>().ok()? + 1,
            None => part.trim().parse::<usize>().map(|_| 1).ok()?,
        };
    }
    Some(n)
}

fn proc_path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(p) => format!("/proc/{p}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

/// One reading of a process's CPU time and resident memory.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// When it was read.
    pub at: Instant,
    /// User + system CPU time of every thread so far.
    pub cpu: Duration,
    /// Resident set size (KiB).
    pub rss_kib: u64,
}

/// A `/proc` file kept open for the whole run: once the sockets use every allowed file
/// descriptor, opening it again would fail with EMFILE. procfs regenerates the text
/// when it is read again from offset 0.
#[derive(Debug)]
struct ProcFile(File);

impl ProcFile {
    fn open(path: &str) -> io::Result<Self> {
        File::open(path).map(ProcFile)
    }

    fn read(&self) -> io::Result<String> {
        let mut file = &self.0;
        file.seek(SeekFrom::Start(0))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(text)
    }
}

/// Reads one process's `/proc/PID/stat` and `/proc/PID/status` (`None` = this process).
#[derive(Debug)]
pub struct ProcReader {
    stat: ProcFile,
    status: ProcFile,
}

impl ProcReader {
    /// Opens the process's files.
    ///
    /// # Errors
    /// The process does not exist or `/proc` is not mounted.
    pub fn open(pid: Option<u32>) -> io::Result<Self> {
        Ok(ProcReader {
            stat: ProcFile::open(&proc_path(pid, "stat"))?,
            status: ProcFile::open(&proc_path(pid, "status"))?,
        })
    }

    /// Whether the process still runs: its stat file reads and it is not a zombie.
    pub fn alive(&self) -> bool {
        let Ok(stat) = self.stat.read() else { return false };
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, None | Some("Z" | "X" | "x"))
    }

    /// Reads CPU time and RSS now.
    ///
    /// # Errors
    /// The process is gone.
    pub fn sample(&self) -> io::Result<ProcSample> {
        let at = Instant::now();
        let stat = self.stat.read()?;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/PID/stat layout");
        // The command name (field 2) may hold spaces and parentheses; the rest follows the
        // last ')'. Fields from there: state(3) ... utime(14) stime(15).
        let rest = stat.rsplit_once(')').ok_or_else(bad)?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).ok_or_else(bad);
        let cpu_ticks = ticks(11)? + ticks(12)?;
        let rss_kib = self
            .status
            .read()?
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        Ok(ProcSample { at, cpu: Duration::from_secs_f64(cpu_ticks as f64 / USER_HZ), rss_kib })
    }
}

/// Busy and total CPU time of the whole machine so far (`/proc/stat`), with its core count.
#[derive(Debug, Clone, Copy)]
pub struct MachineSample {
    /// When it was read.
    pub at: Instant,
    /// Ticks spent on anything but idle and iowait, every core.
    pub busy_ticks: u64,
    /// Cores the kernel reports (`cpuN` lines).
    pub cores: usize,
}

/// Reads `/proc/stat`, kept open (see [`ProcFile`]).
#[derive(Debug)]
pub struct MachineReader(ProcFile);

impl MachineReader {
    /// Opens `/proc/stat`.
    ///
    /// # Errors
    /// `/proc` is not mounted.
    pub fn open() -> io::Result<Self> {
        ProcFile::open("/proc/stat").map(MachineReader)
    }

    /// Reads the machine's CPU time now.
    ///
    /// # Errors
    /// An unexpected layout.
    pub fn sample(&self) -> io::Result<MachineSample> {
        let at = Instant::now();
        let stat = self.0.read()?;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/stat layout");
        let total = stat.lines().next().and_then(|l| l.strip_prefix("cpu ")).ok_or_else(bad)?;
        let ticks: Vec<u64> = total.split_whitespace().filter_map(|t| t.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let busy_ticks = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
        let cores = stat.lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count();
        Ok(MachineSample { at, busy_ticks, cores })
    }
}

/// Cores the whole machine kept busy between two samples.
pub fn machine_cores_used(from: &MachineSample, to: &MachineSample) -> f64 {
    let wall = to.at.saturating_duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    to.busy_ticks.saturating_sub(from.busy_ticks) as f64 / USER_HZ / wall
}

/// CPU used between two samples, in cores (1.0 = one core busy all the time).
pub fn cores_used(from: &ProcSample, to: &ProcSample) -> f64 {
    let wall = to.at.saturating_duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    to.cpu.saturating_sub(from.cpu).as_secs_f64() / wall
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cpu_lists() {
        assert_eq!(count_cpus("0"), Some(1));
        assert_eq!(count_cpus("0-3,6,8-9"), Some(7));
        assert_eq!(count_cpus("x"), None);
    }

    #[test]
    fn reads_own_process_again_from_open_files() {
        let me = ProcReader::open(None).expect("own /proc");
        let a = me.sample().expect("own /proc");
        assert!(a.rss_kib > 0);
        let list = cpus_allowed_list(None).expect("own status");
        assert!(count_cpus(&list).is_some_and(|n| n >= 1));
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(60) {
            std::hint::black_box(0u64);
        }
        let b = me.sample().expect("own /proc");
        assert!(me.alive());
        assert!(b.cpu > a.cpu, "a re-read of the open file must show fresh figures");
        assert!(cores_used(&a, &b) > 0.0);
        let machine = MachineReader::open().expect("/proc/stat");
        let (m1, m2) = (machine.sample().expect("/proc/stat"), machine.sample().expect("/proc/stat"));
        assert!(m1.cores >= 1 && m2.busy_ticks >= m1.busy_ticks);
    }
}
