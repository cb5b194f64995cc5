//! Asking a running `weir serve` instead of loading the plugins folder here: what the service
//! has in service (which can differ from the folder while a new file settles, or after a file
//! was rejected) and since when.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::output::print_used_by;

/// `GET path` on the server at `base` (`http://127.0.0.1:7878`), as JSON. Sends `WEIR_TOKEN`
/// as the bearer token when it is set (reads need it when the server listens beyond loopback).
async fn get_json(base: &str, path: &str) -> anyhow::Result<Value> {
    if base.starts_with("https://") {
        bail!(
            "--server {base}: weir serve speaks plain HTTP; give its own address (http://HOST:PORT), not a TLS proxy's"
        );
    }
    let authority = base
        .strip_prefix("http://")
        .unwrap_or(base)
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to weir serve at {base}"))?;
    let auth = std::env::var("WEIR_TOKEN")
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("{base}{path}: not an HTTP response"))?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    // The API answers JSON with a length (never chunked); an error body says what is wrong.
    if status != "200" {
        bail!("{base}{path}: HTTP {status}: {}", body.trim());
    }
    serde_json::from_str(body).with_context(|| format!("{base}{path}: not JSON"))
}

/// `weir plugins list --server URL`: the plugins a running service has in service.
pub async fn plugins_list(base: &str) -> anyhow::Result<ExitCode> {
    let data = get_json(base, "/api/plugins").await?;
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!("plugins in service at {base}:");
    for p in data["plugins"].as_array().into_iter().flatten() {
        let users: Vec<String> = p["used_by"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        println!(
            "  {:<16} {:<8} {:<13} {}  sha256:{}  loaded {}",
            text(&p["name"]),
            text(&p["version"]),
            text(&p["kind"]),
            text(&p["file"]),
            text(&p["sha256"]).get(..12).unwrap_or("-"),
            text(&p["loaded_at"]),
        );
        print_used_by(&users);
    }
    for r in data["rejected"].as_array().into_iter().flatten() {
        let kept = match r["kept_version"].as_str() {
            Some(v) => format!(" (version {v} loaded earlier keeps serving)"),
            None => String::new(),
        };
        println!(
            "  rejected {}: {}{kept}",
            text(&r["file"]),
            text(&r["reason"])
        );
    }
    Ok(ExitCode::SUCCESS)
}
