//! `<name>.lock`: an exclusive `flock` the runner holds for the whole run.
//! The kernel drops it when the runner dies, however it dies, so "locked"
//! means exactly "a runner is alive". Inside: the runner's pid (for people
//! and for `ao-stop`), and while the CLI runs, its process group, so that
//! whoever next takes the lock of a runner that died can end what it left.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};

use nix::fcntl::{Flock, FlockArg};

use super::{BackupError, SessionFiles};

/// Held while a run is in progress; released on drop (or process death).
pub struct RunLock {
    lock: Flock<File>,
    /// The CLI process group the previous holder recorded and never
    /// cleared: it died while its CLI ran.
    left_behind: Option<i32>,
}

impl RunLock {
    /// Records the CLI's process group (`None` once it has exited).
    pub fn record_cli(&mut self, group: Option<u32>) -> std::io::Result<()> {
        write_holder(&mut self.lock, group)
    }

    /// Ends the processes a runner that died left behind: its CLI's process
    /// group gets SIGKILL (the CLI itself is usually gone already, through
    /// its parent-death signal, but not the tools it had started).
    pub fn end_left_behind(&mut self) {
        if let Some(group) = self.left_behind.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-group),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Writes `<our pid>\n[<cli process group>\n]` over the file's content.
fn write_holder(file: &mut File, group: Option<u32>) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    let mut text = format!("{}\n", std::process::id());
    if let Some(group) = group {
        text.push_str(&format!("{group}\n"));
    }
    file.write_all(text.as_bytes())
}

/// Whether a live runner holds a session's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    Free,
    /// Held by a live process; its pid if the file says.
    Held(Option<u32>),
}

impl LockState {
    /// The holder's pid for a message ("unknown" when the file does not say).
    pub fn holder(&self) -> String {
        match self {
            LockState::Held(Some(pid)) => pid.to_string(),
            _ => "unknown".to_owned(),
        }
    }
}

impl SessionFiles {
    /// Takes the lock without waiting: `Ok(Err(state))` when another
    /// process holds it.
    pub fn try_lock(&self) -> Result<Result<RunLock, LockState>, BackupError> {
        self.ensure_dir()?;
        let path = self.lock_path();
        let err = |e| BackupError::new(&path, e);
        let file = crate::private::open_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(err)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                let left_behind = read_holder(&mut lock).1.and_then(|g| i32::try_from(g).ok());
                write_holder(&mut lock, None).map_err(err)?;
                Ok(Ok(RunLock {
                    lock,
                    left_behind: left_behind.filter(|g| *g > 1),
                }))
            }
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                Ok(Err(LockState::Held(read_pid(&mut file))))
            }
            Err((_, errno)) => Err(err(std::io::Error::from(errno))),
        }
    }

    /// Blocks until no runner holds the lock (at once when none does). The
    /// kernel wakes us when the holder releases it or dies: no polling.
    pub fn wait_free(&self) -> Result<(), BackupError> {
        let path = self.lock_path();
        let file = match OpenOptions::new().read(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(BackupError::new(&path, e)),
        };
        match Flock::lock(file, FlockArg::LockShared) {
            Ok(_released_at_once) => Ok(()),
            Err((_, errno)) => Err(BackupError::new(&path, std::io::Error::from(errno))),
        }
    }

    /// Looks without taking: is a runner alive for this session? Opens the
    /// file for reading only (`flock` needs no more), so that queries work
    /// on a read-only sessions folder.
    pub fn lock_state(&self) -> Result<LockState, BackupError> {
        let path = self.lock_path();
        let file = match OpenOptions::new().read(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockState::Free),
            Err(e) => return Err(BackupError::new(&path, e)),
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_released_on_drop) => Ok(LockState::Free),
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                Ok(LockState::Held(read_pid(&mut file)))
            }
            Err((_, errno)) => Err(BackupError::new(&path, std::io::Error::from(errno))),
        }
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    read_holder(file).0
}

/// The runner pid and CLI process group a lock file names.
fn read_holder(file: &mut File) -> (Option<u32>, Option<u32>) {
    let mut text = String::new();
    if file.rewind().is_err() || file.read_to_string(&mut text).is_err() {
        return (None, None);
    }
    let mut lines = text.lines().map(|l| l.trim().parse().ok());
    (lines.next().flatten(), lines.next().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::SessionName;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let files = SessionFiles::new(dir.path(), &SessionName::parse("s").unwrap());
        assert_eq!(files.lock_state().unwrap(), LockState::Free);
        let held = files.try_lock().unwrap().ok().unwrap();
        let me = Some(std::process::id());
        assert_eq!(files.lock_state().unwrap(), LockState::Held(me));
        assert!(matches!(files.try_lock().unwrap(), Err(LockState::Held(pid)) if pid == me));
        drop(held);
        assert_eq!(files.lock_state().unwrap(), LockState::Free);
        assert!(files.try_lock().unwrap().is_ok());
    }

    #[test]
    fn a_cli_group_left_behind_is_handed_to_the_next_holder() {
        let dir = tempfile::tempdir().unwrap();
        let files = SessionFiles::new(dir.path(), &SessionName::parse("s").unwrap());
        let mut held = files.try_lock().unwrap().ok().unwrap();
        held.record_cli(Some(4_000_000)).unwrap();
        let me = Some(std::process::id());
        assert_eq!(
            files.lock_state().unwrap(),
            LockState::Held(me),
            "the pid still reads"
        );
        drop(held);
        let next = files.try_lock().unwrap().ok().unwrap();
        assert_eq!(next.left_behind, Some(4_000_000));
        drop(next);
        let mut cleared = files.try_lock().unwrap().ok().unwrap();
        assert_eq!(cleared.left_behind, None, "the next holder wrote its own");
        cleared.record_cli(Some(5)).unwrap();
        cleared.record_cli(None).unwrap();
        drop(cleared);
        assert_eq!(files.try_lock().unwrap().ok().unwrap().left_behind, None);
    }
}
