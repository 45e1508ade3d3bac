//! One writer per workflow state.
//!
//! An advisory lock (`flock`) on `<state>/locks/<workflow>.lock` held for the life of the process.
//! The kernel drops it when the process dies, however it dies, so a SIGKILLed run never leaves a
//! lock that blocks the next one; the pid written inside only makes the refusal message useful.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug)]
pub struct WorkflowLock {
    _file: File,
    pub path: PathBuf,
}

impl WorkflowLock {
    pub fn acquire(state_dir: &Path, workflow: &str) -> Result<WorkflowLock> {
        let dir = state_dir.join("locks");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::state(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(format!("{workflow}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::state(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::held(format!(
                    "workflow `{workflow}` is already running ({}); wait for it to finish or stop it first \
                     (lock: {})",
                    if holder.is_empty() {
                        "another process"
                    } else {
                        holder
                    },
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::state(format!("cannot lock {}: {e}", path.display())));
            }
        }
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(
            file,
            "pid {} since {}",
            std::process::id(),
            crate::store::now()
        );
        let _ = file.flush();
        Ok(WorkflowLock { _file: file, path })
    }

    /// Whether some live process holds the workflow's lock (for `dag status`).
    pub fn held_by_other(state_dir: &Path, workflow: &str) -> Option<String> {
        let path = state_dir.join("locks").join(format!("{workflow}.lock"));
        let mut file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
        match file.try_lock() {
            Ok(()) => None,
            Err(_) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                Some(s.trim().to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkflowLock::acquire(dir.path(), "demo").unwrap();
        let err = WorkflowLock::acquire(dir.path(), "demo").unwrap_err();
        assert!(err.to_string().contains("already running"), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id()))
        );
        assert!(WorkflowLock::held_by_other(dir.path(), "demo").is_some());
        // Another workflow is independent.
        let _other = WorkflowLock::acquire(dir.path(), "nightly").unwrap();
        drop(first);
        assert!(WorkflowLock::held_by_other(dir.path(), "demo").is_none());
        WorkflowLock::acquire(dir.path(), "demo").unwrap();
    }
}
