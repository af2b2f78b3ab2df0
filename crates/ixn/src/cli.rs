//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::{client_cmds, serve};

/// ixn — multimedia interaction server for contact centers.
#[derive(Debug, Parser)]
#[command(name = "ixn", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// All-in-one server on the embedded store with a built-in business process.
    Serve(serve::ServeArgs),
    /// Interaction server from a configuration file.
    Server(serve::ServerArgs),
    /// Router: runs the strategies of a configuration file against its [router] servers.
    Router(crate::router::RouterArgs),
    /// Submit an interaction.
    Submit(client_cmds::SubmitArgs),
    /// Show one interaction (live or history).
    Get {
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Stop processing an interaction.
    Stop {
        id: String,
        /// Reason description.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Queues of the tenant with their depth.
    Queues {
        #[command(flatten)]
        conn: Connection,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Logged-in agents: presence, do-not-disturb, place, and per media the state, load and
    /// capacity left.
    Agents {
        /// Only this agent.
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        conn: Connection,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A terminal agent desktop: logs an agent in, accepts (or rejects) offers and finishes
    /// them after a handling time, printing what happens.
    Desktop(crate::desktop_cmd::DesktopArgs),
    /// List live interactions matching a condition, in order.
    Snapshot(client_cmds::SnapshotArgs),
    /// Validate or apply a configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Event loggers of a running server.
    #[command(subcommand)]
    Reporting(ReportingCommand),
    /// Load generator: run a benchmark scenario against its own server or a running one.
    Bench(ixn_bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum ReportingCommand {
    /// Backlog, delivery rate and errors of every event logger (exit status 1 while any is in
    /// alarm).
    Status {
        #[command(flatten)]
        conn: Connection,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file locally; prints every error with file, line and column.
    Validate { file: PathBuf },
    /// Apply a configuration file's business process to a running server (atomically; an
    /// invalid file changes nothing).
    Apply {
        file: PathBuf,
        /// Only validate on the server.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        conn: Connection,
    },
}

/// How client commands reach the server.
#[derive(Debug, Args, Clone)]
pub struct Connection {
    /// Server URL.
    #[arg(long, env = "IXN_SERVER", default_value = "http://127.0.0.1:7070")]
    pub server: String,
    /// API key (default: read from --api-key-file).
    #[arg(long, env = "IXN_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// File holding the API key (`ixn serve` writes DATA_DIR/admin.key).
    #[arg(long, env = "IXN_API_KEY_FILE", default_value = "ixn-data/admin.key")]
    pub api_key_file: PathBuf,
    /// Extra CA certificate (PEM) to trust for https servers.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Server(args) => serve::server(args).await,
        Command::Router(args) => crate::router::router(args).await,
        Command::Submit(args) => client_cmds::submit(args).await,
        Command::Get { id, conn } => client_cmds::get(&conn, &id).await,
        Command::Stop { id, reason, conn } => client_cmds::stop(&conn, &id, reason).await,
        Command::Queues { conn, json } => client_cmds::queues(&conn, json).await,
        Command::Snapshot(args) => client_cmds::snapshot(args).await,
        Command::Desktop(args) => crate::desktop_cmd::desktop(args).await,
        Command::Agents { agent, conn, json } => crate::agent_cmds::agents(&conn, agent, json).await,
        Command::Config(ConfigCommand::Validate { file }) => client_cmds::validate(&file),
        Command::Config(ConfigCommand::Apply { file, dry_run, conn }) => {
            client_cmds::apply(&conn, &file, dry_run).await
        }
        Command::Reporting(ReportingCommand::Status { conn, json }) => {
            crate::reporting_cmds::status(&conn, json).await
        }
        Command::Bench(args) => ixn_bench::main(args).await,
    }
}
