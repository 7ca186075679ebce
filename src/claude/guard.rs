//! The CLI's guardian (Linux): a small process between the runner and the
//! CLI that starts the CLI as its child, passes the CLI's exit on as its
//! own, and, once the runner dies (SIGKILL included), ends everything the
//! CLI started, however it was started.
//!
//! Why a process of its own: Claude Code runs every Bash command in a
//! session of its own (`setsid`), so what a tool starts is in no process
//! group of ours, and a command such as `(server &)` leaves the CLI's
//! process tree at once. As a child subreaper the guardian inherits every
//! orphan of that tree, so all of it stays its descendants until it ends
//! them. It hears of the runner's death as end of file on a pipe whose
//! write end only the runner holds; when the run ends normally it exits
//! with the CLI and kills nothing. The lock file's record of the CLI's
//! process group (`RunLock::end_left_behind`) stays the fallback.
//!
//! The guardian is the runner binary itself, started again as
//! `<runner> --guard-claude FD PROGRAM ARGS...`: a runner binary calls
//! [`dispatch`] first thing in `main`. Elsewhere (another program, another
//! system) the CLI is started directly, set to die with its parent.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::process::Command;

/// The hidden first argument that makes a runner binary a guardian.
pub const GUARD_ARG: &str = "--guard-claude";

/// This very program, even if its file was replaced since it started.
const SELF: &str = "/proc/self/exe";

/// Set once [`dispatch`] has found this process to be a runner, which can
/// start itself again as a guardian.
static CAN_GUARD: AtomicBool = AtomicBool::new(false);

/// First thing in `main` of a runner binary: runs the guardian and answers
/// its exit code when this process was started as one.
pub fn dispatch() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() != Some(std::ffi::OsStr::new(GUARD_ARG)) {
        let can = cfg!(target_os = "linux") && Path::new(SELF).exists();
        CAN_GUARD.store(can, Ordering::Relaxed);
        return None;
    }
    #[cfg(target_os = "linux")]
    return Some(guardian::run(args.collect()));
    #[cfg(not(target_os = "linux"))]
    return Some(ExitCode::from(2));
}

/// The runner's end of a guardian's lifeline: while it is open, the
/// runner lives. Dropping it (or dying) makes the guardian end the CLI and
/// all it started.
#[derive(Debug)]
pub struct Lifeline(#[allow(dead_code)] std::os::fd::OwnedFd);

/// A guardian being started: both ends of its lifeline.
pub struct Pending {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
}

impl Pending {
    /// Once the guardian runs: the runner keeps only the write end.
    pub fn started(self) -> Lifeline {
        drop(self.read);
        Lifeline(self.write)
    }
}

/// The command that starts `program`: under a guardian when this process
/// can start one, else directly, set to die with its parent.
pub fn command(program: &Path) -> std::io::Result<(Command, Option<Pending>)> {
    #[cfg(target_os = "linux")]
    if CAN_GUARD.load(Ordering::Relaxed) {
        use std::os::fd::AsRawFd;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // Past stdin, stdout and stderr, which the child's set-up replaces.
        if read.as_raw_fd() > 2 {
            let mut cmd = Command::new(SELF);
            if let Some(name) = std::env::args_os().next() {
                cmd.arg0(name);
            }
            cmd.arg(GUARD_ARG)
                .arg(read.as_raw_fd().to_string())
                .arg(program);
            inherit(cmd.as_std_mut(), read.as_raw_fd());
            return Ok((cmd, Some(Pending { read, write })));
        }
    }
    let mut cmd = Command::new(program);
    die_with_parent(cmd.as_std_mut());
    Ok((cmd, None))
}

/// Lets the child keep descriptor `fd` across exec.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn inherit(cmd: &mut std::process::Command, fd: std::os::fd::RawFd) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and makes
    // one async-signal-safe system call (fcntl) on a descriptor the parent
    // keeps open until the child has started.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            Ok(())
        });
    }
}

/// Makes the child die with its parent, however the parent dies (SIGKILL
/// included): Linux sends it SIGKILL when its parent thread exits.
/// Elsewhere the next command that takes the session's lock ends the CLI's
/// process group (see `RunLock::end_left_behind`).
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut std::process::Command) {
    signal_parent_death(cmd, nix::sys::signal::Signal::SIGKILL);
}

/// Sends the child `signal` when the thread that started it exits (with
/// its process, SIGKILL included): a host's runners get SIGTERM, end
/// their runs as interrupted and take their CLIs along.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn signal_parent_death(cmd: &mut std::process::Command, signal: nix::sys::signal::Signal) {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes two system calls (prctl, getppid), both async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from)?;
            // The parent may have died before the death signal was armed.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other(
                    "the parent exited before the child started",
                ));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut std::process::Command) {}

#[cfg(not(target_os = "linux"))]
pub fn signal_parent_death(_cmd: &mut std::process::Command, _signal: nix::sys::signal::Signal) {}

#[cfg(target_os = "linux")]
mod guardian {
    use std::ffi::OsString;
    use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use nix::errno::Errno;
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::{SigHandler, SigSet, Signal, kill, raise};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::Pid;

    use super::GUARD_ARG;

    /// The signals a runner sends the CLI's process group (to the CLI,
    /// not to its guardian), and SIGCHLD, which is read from a descriptor.
    const BLOCKED: [Signal; 12] = [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPIPE,
        Signal::SIGALRM,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGCHLD,
    ];
    /// How long the guardian keeps ending what is left, at most.
    const END_WAIT: Duration = Duration::from_secs(5);

    /// The guardian: `args` are `FD PROGRAM ARGS...`.
    pub fn run(args: Vec<OsString>) -> ExitCode {
        let mut args = args.into_iter();
        let fd = args
            .next()
            .and_then(|fd| fd.to_str()?.parse::<RawFd>().ok())
            .filter(|fd| *fd > 2);
        let (Some(fd), Some(program)) = (fd, args.next()) else {
            eprintln!(
                "{GUARD_ARG} needs FD PROGRAM [ARGS...] (it is started by ao-new and ao-resume)"
            );
            return ExitCode::from(2);
        };
        let Some(lifeline) = adopt(fd) else {
            eprintln!("{GUARD_ARG}: descriptor {fd} is not open");
            return ExitCode::from(2);
        };
        // Without these the guardian still passes the exit on; it only
        // cannot end what outlives the runner.
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let mut blocked = SigSet::empty();
        for signal in BLOCKED {
            blocked.add(signal);
        }
        let _ = blocked.thread_block();
        let children = SignalFd::with_flags(
            &SigSet::from(Signal::SIGCHLD),
            SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
        );
        let mut cmd = std::process::Command::new(&program);
        cmd.args(args);
        // The child starts with an empty signal mask (std resets it).
        super::die_with_parent(&mut cmd);
        let cli = match cmd.spawn() {
            Ok(child) => Pid::from_raw(child.id() as i32),
            Err(e) => {
                eprintln!("cannot start {}: {e}", program.to_string_lossy());
                let code = if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                return ExitCode::from(code);
            }
        };
        let Ok(children) = children else {
            return pass_on(waitpid(cli, None));
        };
        loop {
            let mut fds = [
                PollFd::new(lifeline.as_fd(), PollFlags::POLLIN),
                PollFd::new(children.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return pass_on(waitpid(cli, None)),
            }
            // The runner never writes: readable means it is gone, or
            // wants the CLI killed.
            if fds[0].any().unwrap_or(false) {
                end_all();
                return ExitCode::from(128 + Signal::SIGKILL as u8);
            }
            while let Ok(Some(_)) = children.read_signal() {}
            // Reap every child: the CLI, and the orphans handed to us.
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(status @ (WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, ..)))
                        if pid == cli =>
                    {
                        return pass_on(Ok(status));
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }

    /// Takes descriptor `fd`, which the runner passed to this process
    /// alone, if it is open; it is not passed on to the CLI.
    #[allow(unsafe_code)]
    fn adopt(fd: RawFd) -> Option<OwnedFd> {
        // SAFETY: only queries and sets the descriptor's flags.
        let open = unsafe {
            fcntl(
                std::os::fd::BorrowedFd::borrow_raw(fd),
                FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC),
            )
        };
        // SAFETY: the descriptor is open, and nothing else in this process
        // knows of it: it was inherited for this use only.
        open.ok().map(|_| unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Ends as the CLI ended: its exit code, or death by its signal.
    fn pass_on(status: nix::Result<WaitStatus>) -> ExitCode {
        match status {
            Ok(WaitStatus::Exited(_, code)) => ExitCode::from(code as u8),
            Ok(WaitStatus::Signaled(_, signal, _)) => die_by(signal),
            _ => ExitCode::FAILURE,
        }
    }

    /// Dies by `signal`, without a core dump.
    #[allow(unsafe_code)]
    fn die_by(signal: Signal) -> ExitCode {
        use nix::sys::resource::{Resource, setrlimit};
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
        // SAFETY: restores the default action of one signal; no handler is
        // installed.
        let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
        let _ = raise(signal);
        let _ = SigSet::from(signal).thread_unblock();
        ExitCode::from(128 + signal as u8)
    }

    /// Kills every descendant until none is left: as each dies, its
    /// children come to us (we are their subreaper), so the loop ends when
    /// we have no child at all.
    fn end_all() {
        let me = std::process::id() as i32;
        let deadline = Instant::now() + END_WAIT;
        loop {
            for pid in descendants(me) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => break,
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
            if Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The live descendants of `root`, from /proc.
    fn descendants(root: i32) -> Vec<i32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let parents: Vec<(i32, i32)> = dir
            .filter_map(|entry| {
                let pid = entry.ok()?.file_name().to_str()?.parse::<i32>().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
                let state = fields.next()?;
                let ppid = fields.next()?.parse().ok()?;
                (state != "Z").then_some((pid, ppid))
            })
            .collect();
        let mut found = vec![root];
        let mut next = 0;
        while next < found.len() {
            let parent = found[next];
            found.extend(
                parents
                    .iter()
                    .filter(|(_, p)| *p == parent)
                    .map(|(pid, _)| *pid),
            );
            next += 1;
        }
        found.remove(0);
        found
    }
}
