//! A process's resident memory, from `/proc` (Linux only). The
//! session-manager benchmark includes this file too (`#[path]`).

/// `(peak, current)` resident set size of process `pid` in bytes
/// (`VmHWM`, `VmRSS` in `/proc/PID/status`).
pub fn resident(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read /proc/PID/status (Linux only)");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}
