//! Processes as /proc shows them: whether one still runs, its parent, the
//! ones whose command line names something; and a guard that ends, when a
//! test is over (passed or failed), the processes it was watching, so that
//! no test leaves one behind.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The first line `child` prints on stdout (its stdout taken), or what it
/// printed of it within `limit` (empty when it printed nothing).
pub fn first_line(child: &mut Child, limit: Duration) -> String {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(limit).unwrap_or_default()
}

/// Whether process `pid` still runs (a zombie does not).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// The parent of process `pid`, while it runs.
pub fn parent(pid: i32) -> Option<i32> {
    stat(pid).map(|(_, ppid)| ppid)
}

/// State and parent from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The live processes whose command line contains `needle`.
pub fn matching(needle: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(needle))
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// SIGKILLs, when dropped, every process it was given that still runs.
#[derive(Default)]
pub struct Leftovers(Vec<i32>);

impl Leftovers {
    pub fn watch(&mut self, pids: impl IntoIterator<Item = i32>) {
        self.0.extend(pids);
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in &self.0 {
            if alive(*pid) {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
        }
    }
}
