//! What the process benchmarks share: a session manager of their own, and
//! the way figures are printed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `ao-session-manager` on a free port with the database `db` (and
/// its local token beside it, see [`local_token_file`]); answers the
/// process and its URL.
pub fn start_server(db: &Path) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ao-session-manager"));
    cmd.args(["--port", "0", "--db"]).arg(db).env(
        agent_orchestrator::token::ENV_LOCAL_TOKEN_FILE,
        local_token_file(db),
    );
    let (child, line) = start_reading(cmd);
    let url = line
        .strip_prefix("listening on ")
        .expect("listening on")
        .to_owned();
    (child, url)
}

/// Starts `cmd` (stdin closed, stderr dropped) and answers it with its
/// first line on stdout, trimmed.
pub fn start_reading(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("its first line");
    (child, line.trim().to_owned())
}

/// The local token of the session manager on database `db`: beside it,
/// not in the user's data folder.
pub fn local_token_file(db: &Path) -> std::path::PathBuf {
    db.with_extension("local-token")
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile (0 to 1) of `times`.
pub fn percentile(times: &[Duration], q: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// One table row: the median, p90 and max of `times`.
pub fn row(label: &str, width: usize, times: &[Duration]) {
    println!(
        "{label:<width$} {:>7.2} ms {:>7.2} ms {:>7.2} ms",
        ms(percentile(times, 0.5)),
        ms(percentile(times, 0.9)),
        ms(percentile(times, 1.0))
    );
}
