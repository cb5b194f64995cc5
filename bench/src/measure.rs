//! Run a child process and take its own resource usage from `wait4(2)`: wall time, user and
//! system CPU, peak RSS, blocks read from disk. Output goes to files, read back afterwards.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// What one child run cost.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub wall: Duration,
    pub user: Duration,
    pub sys: Duration,
    /// Peak resident set size.
    pub max_rss_kib: u64,
    /// Bytes read from the block device (page-cache misses), from `ru_inblock` × 512.
    pub disk_read_bytes: u64,
    pub stdout: String,
    pub stderr: String,
}

impl Measured {
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }

    pub fn rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }
}

/// Run `cmd` to completion; its stdout and stderr go to `scratch`.{out,err}. A non-zero exit is
/// an error carrying the output.
pub fn run(cmd: &mut Command, scratch: &Path) -> anyhow::Result<Measured> {
    let out_path = scratch.with_extension("out");
    let err_path = scratch.with_extension("err");
    let out = std::fs::File::create(&out_path)?;
    let err = std::fs::File::create(&err_path)?;
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let (status, usage) = wait4(child.id())?;
    let wall = started.elapsed();
    let measured = Measured {
        wall,
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
        disk_read_bytes: usage.ru_inblock.max(0) as u64 * 512,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    };
    if status != 0 {
        bail!(
            "{cmd:?} failed (wait status {status:#x})\nstdout:\n{}\nstderr:\n{}",
            measured.stdout,
            measured.stderr
        );
    }
    Ok(measured)
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Wait for `pid` and return its wait status and resource usage.
#[allow(
    unsafe_code,
    reason = "wait4(2) is the only way to get one child's own rusage; see the safety comment"
)]
fn wait4(pid: u32) -> anyhow::Result<(i32, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, exclusively borrowed out-pointers for the
        // duration of the call; `pid` is our own child, which nothing else waits for (the
        // `Child` handle is dropped without waiting).
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if rc == pid as libc::pid_t {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4 failed");
        }
    }
}

/// Drop `path`'s pages from the page cache (after syncing it), so the next reader's disk reads
/// show how much of it was really read.
#[allow(
    unsafe_code,
    reason = "posix_fadvise(2) has no safe wrapper in std; see the safety comment"
)]
pub fn evict_from_page_cache(path: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd as _;
    let file = std::fs::File::open(path)?;
    file.sync_all()?;
    // SAFETY: the descriptor is open for the duration of the call; the advice only affects
    // the kernel's caching of this file.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        bail!(
            "posix_fadvise failed: {}",
            std::io::Error::from_raw_os_error(rc)
        );
    }
    Ok(())
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
