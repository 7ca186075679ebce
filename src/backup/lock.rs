//! `<name>.lock`: an exclusive `flock` the runner holds for the whole run.
//! The kernel drops it when the runner dies, however it dies, so "locked"
//! means exactly "a runner is alive"; the pid inside is for people.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};

use nix::fcntl::{Flock, FlockArg};

use super::{BackupError, SessionFiles};

/// Held while a run is in progress; released on drop (or process death).
pub struct RunLock {
    _lock: Flock<File>,
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
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(err)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                lock.set_len(0).map_err(err)?;
                lock.rewind().map_err(err)?;
                writeln!(lock, "{}", std::process::id()).map_err(err)?;
                Ok(Ok(RunLock { _lock: lock }))
            }
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                Ok(Err(LockState::Held(read_pid(&mut file))))
            }
            Err((_, errno)) => Err(err(std::io::Error::from(errno))),
        }
    }

    /// Looks without taking: is a runner alive for this session?
    pub fn lock_state(&self) -> Result<LockState, BackupError> {
        let path = self.lock_path();
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
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
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
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
}
