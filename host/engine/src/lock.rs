//! One run of a pipeline at a time, across processes: a `weir run` started by hand while
//! `weir serve` runs the same pipeline on schedule (or two `weir run`s) would each resume from
//! the same checkpoint and load every row twice.
//!
//! Each pipeline has a lock file in `engine.lock_dir`; a run holds an OS file lock on it
//! (`flock`, released by the kernel when the process dies, so a crash never leaves a stale
//! lock) and writes who holds it, so the process that is refused can say by whom. The commit
//! protocol checks the checkpoint again inside each batch's transaction (see `commit`), so
//! even two processes with different lock folders cannot both commit the same batch.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

/// The folder of the lock files of one configuration.
#[derive(Debug, Clone)]
pub struct RunLocks {
    dir: PathBuf,
}

/// A held run lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Why a run lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run of the pipeline holds it.
    #[error("pipeline \"{pipeline}\" is already running: {holder}")]
    Held { pipeline: String, holder: String },
    #[error("cannot use the run lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How often a waiting run asks again (OS file locks have no notification to await).
const WAIT_POLL: Duration = Duration::from_millis(200);

impl RunLocks {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, pipeline: &str) -> PathBuf {
        // Pipeline names are letters, digits, '-' and '_' (checked by the config).
        self.dir.join(format!("{pipeline}.lock"))
    }

    /// Take the pipeline's run lock now, or say who holds it.
    pub fn try_lock(&self, pipeline: &str) -> Result<RunLock, LockError> {
        let path = self.path(pipeline);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    pipeline: pipeline.to_owned(),
                    holder: describe_holder(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        write_holder(&mut file).map_err(io)?;
        Ok(RunLock { _file: file })
    }

    /// Take the pipeline's run lock, waiting while another run holds it. `on_wait` is called
    /// once, with the holder, if it has to wait.
    pub async fn lock_waiting(
        &self,
        pipeline: &str,
        on_wait: impl FnOnce(&LockError),
    ) -> Result<RunLock, LockError> {
        let mut on_wait = Some(on_wait);
        loop {
            match self.try_lock(pipeline) {
                Err(held @ LockError::Held { .. }) => {
                    if let Some(f) = on_wait.take() {
                        f(&held);
                    }
                    tokio::time::sleep(WAIT_POLL).await;
                }
                other => return other,
            }
        }
    }
}

/// Record this process as the holder: `pid 123 on host db-1 since 2026-12-06T10:00:00Z`.
fn write_holder(file: &mut File) -> std::io::Result<()> {
    let since: DateTime<Utc> = SystemTime::now().into();
    let text = format!(
        "pid {} on host {} since {}\n",
        std::process::id(),
        host_name(),
        since.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

fn describe_holder(file: &mut File) -> String {
    let mut text = String::new();
    match file.rewind().and_then(|()| file.read_to_string(&mut text)) {
        Ok(_) if !text.trim().is_empty() => format!("run lock held by {}", text.trim()),
        _ => "run lock held by another process".to_owned(),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The lock folder of a config whose `lock_dir` is `dir`.
pub fn lock_dir_of(dir: &Path) -> RunLocks {
    RunLocks::new(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let locks = RunLocks::new(dir.path().join("locks"));
        let first = locks.try_lock("bank").unwrap();
        let err = locks.try_lock("bank").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("pipeline \"bank\" is already running: run lock held by pid "),
            "{text}"
        );
        assert!(
            text.contains(&format!("pid {} on host ", std::process::id())),
            "{text}"
        );
        // Other pipelines are not affected.
        let _other = locks.try_lock("payroll").unwrap();
        drop(first);
        locks.try_lock("bank").unwrap();
    }

    #[tokio::test]
    async fn a_waiting_lock_is_taken_once_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let locks = RunLocks::new(dir.path());
        let first = locks.try_lock("bank").unwrap();
        let (told_tx, told_rx) = tokio::sync::oneshot::channel();
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move {
                locks
                    .lock_waiting("bank", |held| {
                        let _ = told_tx.send(held.to_string());
                    })
                    .await
            })
        };
        let told = told_rx.await.unwrap();
        assert!(told.contains("already running"), "{told}");
        drop(first);
        waiter.await.unwrap().unwrap();
    }
}
