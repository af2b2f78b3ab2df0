//! `ixn agents`: state, load and reasons of the logged-in agents of a running server.

use std::process::ExitCode;

use ixn_protocol::{AgentView, GetAgents, Request, ServerMessage};

use crate::cli::Connection;
use crate::client_cmds::{client, print_json};

fn reason_text(r: &Option<ixn_protocol::Reason>) -> String {
    r.as_ref()
        .map(|r| match (&r.description, r.code) {
            (Some(d), _) => d.clone(),
            (None, Some(c)) => c.to_string(),
            (None, None) => String::new(),
        })
        .unwrap_or_default()
}

/// One line per agent and media: `chat ready 1/3`, `email not-ready(Lunch) 0/1`.
fn media_summary(a: &AgentView) -> String {
    a.media
        .iter()
        .map(|m| {
            let state = if m.ready {
                "ready".to_owned()
            } else {
                match reason_text(&m.reason) {
                    r if r.is_empty() => "not-ready".to_owned(),
                    r => format!("not-ready({r})"),
                }
            };
            format!("{} {state} {}/{}", m.media_type, m.load, m.load + m.free)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn agents(conn: &Connection, agent: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let answer = client(conn)?
        .request(Request::GetAgents(GetAgents { agent_id: agent }))
        .await?;
    let ServerMessage::EventAgents { agents, .. } = answer else {
        anyhow::bail!("unexpected answer: {answer:?}");
    };
    if json {
        print_json(&agents)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = agents.iter().map(|a| a.agent_id.len()).max().unwrap_or(5).max(5);
    println!(
        "{:<width$}  {:<9}  {:<5}  {:<12}  MEDIA (load/max now)",
        "AGENT", "PRESENCE", "DND", "PLACE"
    );
    for a in &agents {
        let presence = if a.connected { "connected" } else { "away" };
        let dnd = if a.do_not_disturb { "on" } else { "off" };
        println!(
            "{:<width$}  {presence:<9}  {dnd:<5}  {:<12}  {}{}",
            a.agent_id,
            a.place.as_deref().unwrap_or("-"),
            media_summary(a),
            match reason_text(&a.reason) {
                r if r.is_empty() => String::new(),
                r => format!("  [{r}]"),
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
