//! Client commands: they use the public protocol through `ixn-client`, like any client.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ixn_client::{RestClient, TlsOptions};
use ixn_model::{Timestamp, UserData, Value};
use ixn_protocol::{
    ApplyConfig, GetSnapshotInteractions, InteractionView, Reason, ReleaseSnapshot, Request, ServerMessage,
    Submit, TakeSnapshot,
};

use crate::cli::Connection;

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Queue to submit to.
    #[arg(long, default_value = "inbound")]
    pub queue: String,
    /// Media type (chat, email, …).
    #[arg(long, default_value = "chat")]
    pub media_type: String,
    /// Interaction type.
    #[arg(long = "type")]
    pub interaction_type: Option<String>,
    #[arg(long)]
    pub subtype: Option<String>,
    #[arg(long)]
    pub priority: Option<i64>,
    #[arg(long)]
    pub external_id: Option<String>,
    /// When the interaction becomes visible to views (RFC 3339).
    #[arg(long)]
    pub scheduled_at: Option<String>,
    /// User data as KEY=VALUE (integers stay integers); repeatable.
    #[arg(long = "data", short = 'd', value_name = "KEY=VALUE")]
    pub data: Vec<String>,
    /// User data as a JSON object (merged before --data).
    #[arg(long)]
    pub user_data: Option<String>,
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Condition, e.g. "priority > 3 AND media_type = 'chat'".
    #[arg(long)]
    pub condition: Option<String>,
    /// Order, e.g. "priority desc, submitted_at asc".
    #[arg(long)]
    pub order: Option<String>,
    /// Only this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub max: u32,
    #[command(flatten)]
    pub conn: Connection,
}

pub(crate) fn client(conn: &Connection) -> anyhow::Result<RestClient> {
    rest_client(conn)
}

/// A REST client authenticated with the connection's API key.
pub(crate) fn rest_client(conn: &Connection) -> anyhow::Result<RestClient> {
    let key = match &conn.api_key {
        Some(k) => k.clone(),
        None => std::fs::read_to_string(&conn.api_key_file)
            .with_context(|| {
                format!(
                    "no --api-key given and {} cannot be read (ixn serve writes it)",
                    conn.api_key_file.display()
                )
            })?
            .trim()
            .to_owned(),
    };
    let tls = TlsOptions {
        extra_ca_pem: match &conn.ca_cert {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        },
    };
    Ok(RestClient::new(&conn.server, &key, &tls)?)
}

/// Prints pretty JSON; a closed pipe (`ixn get … | head`) ends quietly instead of panicking.
pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(v)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn parse_data(args: &SubmitArgs) -> anyhow::Result<Option<UserData>> {
    let mut ud = match &args.user_data {
        Some(json) => serde_json::from_str::<UserData>(json).context("--user-data must be a JSON object")?,
        None => UserData::new(),
    };
    for pair in &args.data {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--data {pair:?}: expected KEY=VALUE"))?;
        let value = v
            .parse::<i64>()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Str(v.to_owned()));
        ud.push(k, value);
    }
    Ok((!ud.is_empty()).then_some(ud))
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let c = client(&args.conn)?;
    let scheduled_at = args
        .scheduled_at
        .as_deref()
        .map(Timestamp::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--scheduled-at: {e}"))?;
    let submit = Submit {
        interaction_type: args.interaction_type.clone(),
        subtype: args.subtype.clone(),
        priority: args.priority,
        user_data: parse_data(&args)?,
        external_id: args.external_id.clone(),
        scheduled_at,
        ..Submit::to_queue(args.queue.clone(), args.media_type.clone())
    };
    let ix = c.submit(&submit).await?;
    print_json(&ix)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn get(conn: &Connection, id: &str) -> anyhow::Result<ExitCode> {
    print_json(&client(conn)?.get(id).await?)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn stop(conn: &Connection, id: &str, reason: Option<String>) -> anyhow::Result<ExitCode> {
    let reason = reason.map(|d| Reason {
        code: None,
        description: Some(d),
    });
    print_json(&client(conn)?.stop(id, reason).await?)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn queues(conn: &Connection, json: bool) -> anyhow::Result<ExitCode> {
    let queues = client(conn)?.queues().await?;
    if json {
        print_json(&queues)?;
    } else {
        let width = queues.iter().map(|q| q.name.len()).max().unwrap_or(5).max(5);
        println!("{:<width$}  {:>10}  {:>11}", "QUEUE", "DEPTH", "IN PROGRESS");
        for q in &queues {
            println!("{:<width$}  {:>10}  {:>11}", q.name, q.depth, q.in_progress);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn snapshot(args: SnapshotArgs) -> anyhow::Result<ExitCode> {
    let c = client(&args.conn)?;
    let taken = c
        .request(Request::TakeSnapshot(TakeSnapshot {
            condition: args.condition.clone(),
            order: args.order.clone(),
            queue: args.queue.clone(),
            max: Some(args.max),
        }))
        .await?;
    let ServerMessage::EventSnapshotTaken {
        snapshot_id, count, ..
    } = taken
    else {
        anyhow::bail!("unexpected answer: {taken:?}");
    };
    let mut all: Vec<InteractionView> = Vec::with_capacity(count as usize);
    let mut offset = 0u32;
    while u64::from(offset) < count {
        let page = c
            .request(Request::GetSnapshotInteractions(GetSnapshotInteractions {
                snapshot_id,
                offset,
                count: 100,
            }))
            .await?;
        let ServerMessage::EventSnapshotInteractions { interactions, .. } = page else {
            anyhow::bail!("unexpected answer: {page:?}");
        };
        offset += 100;
        all.extend(interactions);
    }
    c.request(Request::ReleaseSnapshot(ReleaseSnapshot { snapshot_id }))
        .await?;
    print_json(&all)?;
    Ok(ExitCode::SUCCESS)
}

pub fn validate(file: &Path) -> anyhow::Result<ExitCode> {
    match ixn_config::load_file(file) {
        Ok(c) => {
            println!(
                "{}: valid ({} tenants, {} queues, {} views, {} submitters, {} applications)",
                file.display(),
                c.process.tenants.len(),
                c.process.queues.len(),
                c.process.views.len(),
                c.process.submitters.len(),
                c.process.applications.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::from(2))
        }
    }
}

pub async fn apply(conn: &Connection, file: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match client(conn)?
        .request(Request::ApplyConfig(ApplyConfig {
            config: text,
            dry_run,
        }))
        .await
    {
        Ok(_) => {
            println!(
                "{}: {}",
                file.display(),
                if dry_run { "valid" } else { "applied" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ixn_client::ClientError::Server(e)) => {
            eprintln!("{}: rejected, nothing changed\n{}", file.display(), e.message);
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}
