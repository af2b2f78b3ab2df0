//! `ixn desktop`: a terminal agent desktop. It logs an agent in over WebSocket, prints every
//! offer, accepts it (or rejects it) after a delay and finishes it after a handling time — enough
//! to watch routing work against `ixn serve` with no other software.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ixn_client::{Client, Registration, TlsOptions};
use ixn_model::ClientKind;
use ixn_protocol::{Accept, AgentLogin, AgentLogout, Reason, Reject, Request, ServerMessage, StopProcessing};
use tokio::time::Instant;

#[derive(Debug, Args)]
pub struct DesktopArgs {
    /// Agent id to log in as.
    #[arg(long)]
    pub agent: String,
    /// Media types to log in for, ready.
    #[arg(long, value_delimiter = ',', default_value = "chat,email")]
    pub media: Vec<String>,
    /// Place to log in at.
    #[arg(long)]
    pub place: Option<String>,
    /// Seconds before answering an offer.
    #[arg(long, default_value_t = 1)]
    pub accept_after: u64,
    /// Reject offers instead of accepting them.
    #[arg(long)]
    pub reject: bool,
    /// Seconds an accepted interaction is handled before it is stopped.
    #[arg(long, default_value_t = 10)]
    pub handle_for: u64,
    /// Log out and exit after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Server URL.
    #[arg(long, env = "IXN_SERVER", default_value = "http://127.0.0.1:7070")]
    pub server: String,
    /// Application name of the desktop (`ixn serve` configures `desktop`).
    #[arg(long, default_value = "desktop")]
    pub application: String,
    /// API key (default: read from --api-key-file).
    #[arg(long, env = "IXN_DESKTOP_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// File holding the desktop application's key (`ixn serve` writes DATA_DIR/desktop.key).
    #[arg(long, default_value = "ixn-data/desktop.key")]
    pub api_key_file: PathBuf,
}

/// What the desktop will do next, and when.
enum Step {
    Answer(String),
    Finish(String),
}

pub async fn desktop(args: DesktopArgs) -> anyhow::Result<ExitCode> {
    let key = match &args.api_key {
        Some(k) => k.clone(),
        None => std::fs::read_to_string(&args.api_key_file)
            .with_context(|| format!("reading {} (ixn serve writes it)", args.api_key_file.display()))?
            .trim()
            .to_owned(),
    };
    let mut reg = Registration::new(&args.application, ClientKind::AgentDesktop, key);
    reg.agent_id = Some(args.agent.clone());
    let client = Client::connect(&args.server, reg, &TlsOptions::default()).await?;
    let login = Request::AgentLogin(AgentLogin {
        place: args.place.clone(),
        ..AgentLogin::ready_for(args.media.iter().cloned())
    });
    match client.call(login).await? {
        ServerMessage::EventAgentStatus { agent, .. } => {
            let media: Vec<_> = agent
                .media
                .iter()
                .map(|m| format!("{} ({} at once)", m.media_type, m.free))
                .collect();
            eprintln!("{} logged in, ready for {}", agent.agent_id, media.join(", "));
        }
        other => anyhow::bail!("login failed: {other:?}"),
    }
    let end = args.duration.map(|s| Instant::now() + Duration::from_secs(s));
    let mut plan: Vec<(Instant, Step)> = Vec::new();
    loop {
        let now = Instant::now();
        if end.is_some_and(|e| now >= e) {
            break;
        }
        // Due steps first.
        let (due, later): (Vec<_>, Vec<_>) = plan.into_iter().partition(|(at, _)| *at <= now);
        plan = later;
        for (_, step) in due {
            match step {
                Step::Answer(id) if args.reject => {
                    let reason = Some(Reason {
                        code: None,
                        description: Some("declined at the desktop".into()),
                    });
                    let r = client
                        .call(Request::Reject(Reject {
                            interaction_id: id.clone(),
                            reason,
                        }))
                        .await;
                    eprintln!("{id}: rejected ({})", outcome(&r));
                }
                Step::Answer(id) => {
                    let r = client
                        .call(Request::Accept(Accept {
                            interaction_id: id.clone(),
                        }))
                        .await;
                    eprintln!("{id}: accepted ({})", outcome(&r));
                    if matches!(r, Ok(ServerMessage::EventAck { .. })) {
                        plan.push((
                            Instant::now() + Duration::from_secs(args.handle_for),
                            Step::Finish(id),
                        ));
                    }
                }
                Step::Finish(id) => {
                    let r = client
                        .call(Request::StopProcessing(StopProcessing {
                            interaction_id: id.clone(),
                            reason: None,
                        }))
                        .await;
                    eprintln!("{id}: done ({})", outcome(&r));
                }
            }
        }
        let next = plan
            .iter()
            .map(|(at, _)| *at)
            .chain(end)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let wait = next.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = client.next_event(wait) => match event {
                Some(ServerMessage::EventInvite { interaction, from, .. }) => {
                    let subject = interaction
                        .user_data
                        .get("Subject")
                        .map(|v| format!(": {}", serde_json::to_string(&v).unwrap_or_default()))
                        .unwrap_or_default();
                    eprintln!(
                        "{}: offered by {} {} — {} from queue {}{subject}",
                        interaction.id,
                        from.kind,
                        from.name,
                        interaction.media_type,
                        interaction.queue.as_deref().unwrap_or("-"),
                    );
                    plan.push((Instant::now() + Duration::from_secs(args.accept_after), Step::Answer(interaction.id.clone())));
                }
                Some(ServerMessage::EventRevoked { interaction_id, reason }) => {
                    let why = reason.and_then(|r| r.description).unwrap_or_default();
                    eprintln!("{interaction_id}: revoked {why}");
                    plan.retain(|(_, s)| !matches!(s, Step::Answer(id) | Step::Finish(id) if *id == interaction_id));
                }
                Some(_) => {}
                None if client.is_closed() => anyhow::bail!("the server closed the connection"),
                None => {}
            },
        }
    }
    let _ = client
        .call(Request::AgentLogout(AgentLogout { reason: None }))
        .await;
    eprintln!("{} logged out", args.agent);
    Ok(ExitCode::SUCCESS)
}

fn outcome(r: &Result<ServerMessage, ixn_client::ClientError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    }
}
