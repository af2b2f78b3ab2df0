//! `ixn server --config FILE` with `[server] route-in-process = true`: the real binary runs a
//! router inside its own process for the tenants with strategies that submitters serve, and
//! refuses the option when there is nothing to route.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ixn_client::{Client, Registration, RestClient, TlsOptions};
use ixn_model::{ClientKind, InteractionState};
use ixn_protocol::{AgentLogin, ApplyConfig, GetInteraction, Request, ServerMessage, Submit};
use tokio::process::{Child, Command};

/// Upper bound on every wait; reached only when something is broken.
const DEADLINE: Duration = Duration::from_secs(30);

const MEDIA_KEY: &str = "route-in-process-media-key-0123";
const DESKTOP_KEY: &str = "route-in-process-desktop-key-0123";
const ADMIN_KEY: &str = "route-in-process-admin-key-0123";

fn config(data_dir: &Path, process: &str) -> String {
    let mut t = format!(
        "[server]\ndata-dir = {:?}\nroute-in-process = true\n\n{process}\n",
        data_dir.display().to_string()
    );
    for (name, kind, key) in [
        ("media", "media-server", MEDIA_KEY),
        ("desktop", "agent-desktop", DESKTOP_KEY),
        ("admin", "admin", ADMIN_KEY),
    ] {
        t.push_str(&format!(
            "[[applications]]\nname = \"{name}\"\nkind = \"{kind}\"\napi-key = \"{key}\"\n\n"
        ));
    }
    t
}

fn command(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ixn"));
    cmd.arg("server")
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("IXN_STORE")
        .env_remove("IXN_DATA_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Starts the server and returns it with its base URL once it is ready.
async fn start(config: &Path) -> (Child, String) {
    let mut child = command(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning ixn");
    let base = support::listening_address(&mut child, DEADLINE)
        .await
        .expect("ixn printed its address");
    let rest = RestClient::new(&base, ADMIN_KEY, &TlsOptions::default()).expect("REST client");
    let deadline = Instant::now() + DEADLINE;
    while !rest.ready().await {
        assert!(Instant::now() < deadline, "not ready in time");
        tokio::time::sleep(Duration::from_millis(20)).await; // polling interval
    }
    (child, base)
}

/// Agent `ann`, logged in ready for chat.
async fn login_ann(base: &str) -> Client {
    let mut reg = Registration::new("desktop", ClientKind::AgentDesktop, DESKTOP_KEY);
    reg.agent_id = Some("ann".into());
    let ann = Client::connect(base, reg, &TlsOptions::default())
        .await
        .expect("desktop connects");
    ann.call(Request::AgentLogin(AgentLogin::ready_for(["chat"])))
        .await
        .expect("login");
    ann
}

async fn media_server(base: &str) -> Client {
    let reg = Registration::new("media", ClientKind::MediaServer, MEDIA_KEY);
    Client::connect(base, reg, &TlsOptions::default())
        .await
        .expect("media server connects")
}

/// Submits a chat to `inbound`; its id.
async fn submit_chat(media: &Client) -> String {
    let submitted = media
        .call(Request::Submit(Submit::to_queue("inbound", "chat")))
        .await
        .expect("submit");
    match submitted {
        ServerMessage::EventAck {
            interaction_id: Some(id),
            ..
        } => id,
        other => panic!("submit answered {other:?}"),
    }
}

#[tokio::test]
async fn the_server_routes_with_a_router_in_its_own_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ixn.toml");
    let text = config(&dir.path().join("data"), ixn_config::DEFAULT_PROCESS_TOML);
    std::fs::write(&path, text).expect("writing the configuration");
    let (mut child, base) = start(&path).await;

    let ann = login_ann(&base).await;
    let media = media_server(&base).await;
    let id = submit_chat(&media).await;
    // No `ixn router` runs: the invite comes from the router inside the server.
    match ann.next_event(DEADLINE).await {
        Some(ServerMessage::EventInvite {
            interaction, from, ..
        }) => {
            assert_eq!(interaction.id, id);
            assert_eq!(from.name, "ixn-router-default");
        }
        other => panic!("expected an invite, got {other:?}"),
    }
    child.start_kill().expect("stopping the server");
    let _ = child.wait().await;
}

#[tokio::test]
async fn route_in_process_without_a_strategy_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ixn.toml");
    let process = "[[tenants]]\nname = \"default\"\n\n[[media-types]]\nname = \"chat\"\n\n\
                   [[queues]]\nname = \"inbound\"\ntenant = \"default\"\n";
    std::fs::write(&path, config(&dir.path().join("data"), process)).expect("writing");
    let out = tokio::time::timeout(DEADLINE, command(&path).output())
        .await
        .expect("exits in time")
        .expect("runs");
    assert!(!out.status.success(), "started without a strategy");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("route-in-process = true, but no enabled [[strategies]] that a [[submitters]]"),
        "{stderr}"
    );
}

/// A configuration applied to the running server reaches the router inside it: a chat the
/// router holds for an agent who is not there (`bob`) goes to `ann` once the applied strategy
/// names her, without a restart.
#[tokio::test]
async fn applied_strategies_reach_the_router_inside() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ixn.toml");
    let data = dir.path().join("data");
    let text = |agent: &str| {
        let strategy =
            format!("[[strategies]]\nname = \"default\"\n\n[[strategies.steps]]\nagents = [\"{agent}\"]\n");
        config(
            &data,
            &format!("{}\n{strategy}", ixn_config::DEFAULT_PROCESS_TOML),
        )
    };
    std::fs::write(&path, text("bob")).expect("writing the configuration");
    let (mut child, base) = start(&path).await;
    let ann = login_ann(&base).await;
    let media = media_server(&base).await;
    let id = submit_chat(&media).await;

    // The router takes it and waits for bob.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let get = Request::GetInteraction(GetInteraction {
            interaction_id: id.clone(),
        });
        match media.call(get).await.expect("get") {
            ServerMessage::EventInteractionProperties { interaction, .. }
                if interaction.state == InteractionState::Routing =>
            {
                break;
            }
            ServerMessage::EventInteractionProperties { .. } => {}
            other => panic!("get answered {other:?}"),
        }
        assert!(Instant::now() < deadline, "the router never took {id}");
        tokio::time::sleep(Duration::from_millis(20)).await; // polling interval
    }

    let admin = RestClient::new(&base, ADMIN_KEY, &TlsOptions::default()).expect("REST client");
    // Strategies the router inside could not run are refused, and change nothing.
    let missing = dir.path().join("missing.rhai");
    let unrunnable = format!(
        "{}\n[[strategies]]\nname = \"default\"\nscript-file = {:?}\n",
        ixn_config::DEFAULT_PROCESS_TOML,
        missing.display().to_string()
    );
    let refused = admin
        .request(Request::ApplyConfig(ApplyConfig {
            config: config(&data, &unrunnable),
            dry_run: false,
        }))
        .await;
    match refused {
        Err(e) => assert!(e.to_string().contains("cannot read"), "{e}"),
        Ok(answer) => panic!("a strategy with a missing script file was applied: {answer:?}"),
    }
    let applied = admin
        .request(Request::ApplyConfig(ApplyConfig {
            config: text("ann"),
            dry_run: false,
        }))
        .await
        .expect("apply");
    assert!(matches!(applied, ServerMessage::EventAck { .. }), "{applied:?}");
    match ann.next_event(DEADLINE).await {
        Some(ServerMessage::EventInvite { interaction, .. }) => assert_eq!(interaction.id, id),
        other => panic!("expected an invite, got {other:?}"),
    }
    child.start_kill().expect("stopping the server");
    let _ = child.wait().await;
}
