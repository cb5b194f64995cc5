//! Starting and stopping a real osmem-server.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::Client;

/// The osmem-server binary: `$OSMEM_SERVER_BIN`, else the one the Python package bundles (as
/// `python3 -c "import osmem_server; print(osmem_server.resolve_binary())"` says).
pub fn binary() -> anyhow::Result<String> {
    if let Ok(path) = std::env::var("OSMEM_SERVER_BIN") {
        return Ok(path);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import osmem_server; print(osmem_server.resolve_binary())",
        ])
        .output()
        .context("failed to run python3 to find osmem-server")?;
    if !out.status.success() {
        bail!(
            "osmem-server is not installed (python3 -m pip install osmem-server; .ci/run does it): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A running osmem-server; dropping it kills the process.
pub struct Osmem {
    child: Child,
    addr: SocketAddr,
}

impl Osmem {
    /// Start a server on a free loopback port and wait until it says where it listens (its
    /// first stdout line: `{"url": "http://127.0.0.1:PORT", …}`).
    pub fn start() -> anyhow::Result<Self> {
        let bin = binary()?;
        let mut child = Command::new(&bin)
            .args(["-addr", "127.0.0.1:0", "-no-stdin-watch", "-no-ja"])
            .arg("-parent-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("failed to start {bin}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        // The line comes once the socket listens; a server that dies first closes stdout.
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("failed to read osmem-server's first line")?;
        let ready: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("osmem-server did not start: its first line was {line:?}");
            }
        };
        let url = ready["url"].as_str().unwrap_or_default();
        let addr = url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("osmem-server announced {url:?}, not http://ADDR"))?;
        Ok(Self { child, addr })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`: the URL a pipeline grants (with `allow_private = true`: it is loopback).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Its process id (a benchmark reads the server's CPU time from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client for its API.
    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }
}

impl Drop for Osmem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long the client waits for an answer before giving up.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);
