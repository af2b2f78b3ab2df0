//! `ixn server --config FILE` with `[server] route-in-process = true`: the real binary runs a
//! router inside its own process for the tenants with strategies that submitters serve, and
//! refuses the option when there is nothing to route.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ixn_client::{Client, Registration, RestClient, TlsOptions};
use ixn_model::ClientKind;
use ixn_protocol::{AgentLogin, MediaLogin, Request, ServerMessage, Submit};
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

#[tokio::test]
async fn the_server_routes_with_a_router_in_its_own_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ixn.toml");
    let text = config(&dir.path().join("data"), ixn_config::DEFAULT_PROCESS_TOML);
    std::fs::write(&path, text).expect("writing the configuration");
    let (mut child, base) = start(&path).await;

    let mut reg = Registration::new("desktop", ClientKind::AgentDesktop, DESKTOP_KEY);
    reg.agent_id = Some("ann".into());
    let tls = TlsOptions::default();
    let ann = Client::connect(&base, reg, &tls).await.expect("desktop connects");
    ann.call(Request::AgentLogin(AgentLogin {
        place: None,
        media: vec![MediaLogin {
            media_type: "chat".into(),
            ready: true,
            reason: None,
        }],
        reason: None,
    }))
    .await
    .expect("login");
    let media = Client::connect(
        &base,
        Registration::new("media", ClientKind::MediaServer, MEDIA_KEY),
        &tls,
    )
    .await
    .expect("media server connects");
    let submitted = media
        .call(Request::Submit(Submit {
            queue: Some("inbound".into()),
            ..Submit::new("chat")
        }))
        .await
        .expect("submit");
    let ServerMessage::EventAck {
        interaction_id: Some(id),
        ..
    } = submitted
    else {
        panic!("submit answered {submitted:?}")
    };
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
