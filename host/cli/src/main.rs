//! `weir`: run pipelines, validate configuration, inspect plugins and checkpoints.

mod cluster;
mod commands;
mod output;
mod remote;
mod scaffold;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// weir — sandboxed, exactly-once data synchronization with WebAssembly plugins.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration file.
    #[arg(
        short,
        long,
        global = true,
        default_value = "weir.toml",
        env = "WEIR_CONFIG"
    )]
    config: PathBuf,
    /// Log more (-v: debug, -vv: trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run pipelines once in the foreground (several run at the same time). Ctrl-C stops at
    /// the next batch boundary.
    Run {
        /// Pipeline names from the config file.
        #[arg(required = true)]
        pipelines: Vec<String>,
        /// Also write every event as a JSON line to this file.
        #[arg(long)]
        events: Option<PathBuf>,
        /// If another process is running one of the pipelines, wait for it to finish instead
        /// of refusing.
        #[arg(long)]
        wait: bool,
    },
    /// Run the pipelines on their schedules and serve the HTTP API (and its event stream) until
    /// SIGINT or SIGTERM, which stop runs at their next batch boundary.
    Serve {
        /// Only check: print each pipeline's schedule, in words, with its next 3 fire times.
        #[arg(long)]
        check: bool,
        /// Listen on this address instead of engine.listen (e.g. 127.0.0.1:0 for any free port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Check the config, the plugins and the grants; say what each pipeline guarantees.
    Validate,
    /// Plugins in the plugins folder.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Checkpoints kept by the pipelines' history stores.
    Checkpoints {
        #[command(subcommand)]
        command: CheckpointsCommand,
    },
    /// The hosts sharing engine.cluster's database.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// The hosts (heartbeats, state, leases held, version, plugins) and the leases held or
    /// queued. Exits 1 when a host that has not stopped misses its heartbeats.
    Status,
    /// Ask a host to take no new runs (fires go to the other hosts, triggers there are
    /// refused); its runs in progress finish. It sees the request at its next heartbeat.
    Drain {
        /// The host's engine.cluster.host_id.
        host: String,
        /// Let the host take runs again.
        #[arg(long)]
        undo: bool,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// List the plugins in the plugins folder (loading them), or those a running `weir serve`
    /// has in service (`--server`), with the pipelines using each, and rejected files.
    List {
        /// Ask the `weir serve` at this address (like http://127.0.0.1:7878) instead; also shows
        /// when each plugin was loaded. Sends $WEIR_TOKEN if set.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// Show one component file: kind, world, imports.
    Inspect {
        /// A `.wasm` file.
        file: PathBuf,
    },
    /// Create a plugin project (in ./NAME) that builds and passes its own tests as generated.
    New {
        /// What the plugin does.
        #[arg(long, value_enum)]
        kind: scaffold::Kind,
        /// Its language (python and js: transformer only).
        #[arg(long, value_enum, default_value = "rust")]
        lang: scaffold::Lang,
        /// The plugin's name, like `my-transform`.
        name: String,
        /// Create the project in this folder instead of ./NAME.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The weir Rust SDK: its folder (plugins/sdk of a weir checkout, or the checkout) or a
        /// git URL of a weir repository (URL#REV pins a commit); default: the SDK of the
        /// checkout this weir binary came from.
        #[arg(long, value_name = "PATH|GIT_URL")]
        sdk: Option<String>,
    },
}

#[derive(Subcommand)]
enum CheckpointsCommand {
    /// Show the checkpoints of every pipeline (or one).
    List { pipeline: Option<String> },
    /// Forget checkpoints, so the next run starts from the beginning.
    Reset {
        pipeline: String,
        /// Only this partition (e.g. one file).
        partition: Option<String>,
    },
}

/// Let a closed stdout end the process quietly, as it does any Unix tool (`weir … | head`),
/// instead of a panic in `println!`. Rust ignores SIGPIPE for every program; only the
/// one-shot commands get the default back: `serve` writes to sockets, where a peer that went
/// away must be an error to handle, not the end of the service.
#[allow(
    unsafe_code,
    reason = "one libc call; no Rust API restores a signal disposition"
)]
fn restore_default_sigpipe() {
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { check: false, .. }) {
        restore_default_sigpipe();
    }
    output::init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run {
                pipelines,
                events,
                wait,
            } => commands::run(&cli.config, &pipelines, events.as_deref(), wait).await,
            Command::Serve { check: true, .. } => serve::check(&cli.config).await,
            Command::Serve {
                check: false,
                listen,
            } => serve::serve(&cli.config, listen.as_deref()).await,
            Command::Validate => commands::validate(&cli.config).await,
            Command::Plugins {
                command: PluginsCommand::List { server: None },
            } => commands::plugins_list(&cli.config).await,
            Command::Plugins {
                command:
                    PluginsCommand::List {
                        server: Some(server),
                    },
            } => remote::plugins_list(&server).await,
            Command::Plugins {
                command: PluginsCommand::Inspect { file },
            } => commands::plugins_inspect(&cli.config, &file).await,
            Command::Plugins {
                command:
                    PluginsCommand::New {
                        kind,
                        lang,
                        name,
                        dir,
                        sdk,
                    },
            } => scaffold::new_plugin(&scaffold::NewPlugin {
                kind,
                lang,
                name,
                dir,
                sdk,
            }),
            Command::Checkpoints {
                command: CheckpointsCommand::List { pipeline },
            } => commands::checkpoints_list(&cli.config, pipeline.as_deref()).await,
            Command::Checkpoints {
                command:
                    CheckpointsCommand::Reset {
                        pipeline,
                        partition,
                    },
            } => commands::checkpoints_reset(&cli.config, &pipeline, partition.as_deref()).await,
            Command::Cluster {
                command: ClusterCommand::Status,
            } => cluster::status(&cli.config).await,
            Command::Cluster {
                command: ClusterCommand::Drain { host, undo },
            } => cluster::drain(&cli.config, &host, !undo).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // Several problems (a config file's) are one per line, each marked as an error.
            for line in format!("{e:#}").lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}
