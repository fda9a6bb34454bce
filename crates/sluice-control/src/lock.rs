//! One process per data dir: `sluice run` and `sluice server` take an exclusive
//! lock on `<data-dir>/sluice.lock` for their whole life, so that two processes
//! never run the same pipe twice (two replicas with one `server_id` disconnect
//! each other in a loop, and both would write the same catalog).
//!
//! The lock is the operating system's advisory file lock (`flock` on Unix): it
//! is released when the process ends, however it ends (a `kill -9` included),
//! so a stale lock file never blocks a restart. The file holds the pid of the
//! holder, for the message the second process prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the data dir could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data dir {dir} is in use by another sluice process (pid {pid}); stop it, or use another --data-dir")]
    InUse { dir: String, pid: String },
    #[error("cannot lock the data dir {dir} ({path}): {source}")]
    Io { dir: String, path: String, source: std::io::Error },
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates `data_dir` if missing and takes its lock without waiting; refuses
/// with `LockError::InUse` (naming the holder's pid) when another process has it.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, LockError> {
    let path = data_dir.join("sluice.lock");
    let io = |source| LockError::Io { dir: data_dir.display().to_string(), path: path.display().to_string(), source };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(LockError::InUse {
                dir: data_dir.display().to_string(),
                pid: if pid.is_empty() { "unknown".to_string() } else { pid.to_string() },
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(DataDirLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_holders_pid_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_data_dir(dir.path()).unwrap();
        // A second open file description conflicts like a second process would.
        let err = lock_data_dir(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("is in use by another sluice process (pid {})", std::process::id())), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        drop(held);
        lock_data_dir(dir.path()).expect("the lock is free once dropped");
    }
}
