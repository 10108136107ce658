//! The machine the generator runs on: its file limit and ephemeral ports; the CPU and
//! memory figures of a process (the generator's own or the server's) come from
//! [`crate::procfs`].

pub(crate) use crate::procfs::{
    cores_used, count_cpus, cpus_allowed_list, machine_cores_used, MachineReader, MachineSample, ProcReader, ProcSample,
};

/// The open-file limit before and after raising it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct FileLimit {
    /// Soft limit found at start.
    pub soft_before: u64,
    /// Soft limit in force (raised to the hard limit when allowed).
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
    /// Why raising failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raise_error: Option<String>,
}

/// Raises the soft open-file limit to the hard limit, as `rtc serve` does.
pub(crate) fn raise_file_limit() -> FileLimit {
    let (soft_before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((0, 0));
    // `increase_nofile_limit` caps an unlimited hard limit at what the kernel accepts.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => FileLimit { soft_before, soft, hard, raise_error: None },
        Err(e) => FileLimit { soft_before, soft: soft_before, hard, raise_error: Some(e.to_string()) },
    }
}

/// The local port range for outgoing connections (`ip_local_port_range`), as a count.
pub(crate) fn ephemeral_ports() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<u32>().ok());
    let (low, high) = (it.next()??, it.next()??);
    Some(high.saturating_sub(low) + 1)
}
