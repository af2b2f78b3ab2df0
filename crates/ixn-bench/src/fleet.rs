//! The simulated clients: media servers that submit, and agent desktops that log in ready for
//! the load's media, accept each invite after the configured delay and stop the interaction after
//! the configured handling time. Everything goes over the real protocol (`ixn-client`); the
//! server's own router does the routing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use ixn_client::{Client, Registration, TlsOptions};
use ixn_model::{ClientKind, UserData};
use ixn_protocol::{Accept, AgentLogin, Request, ServerMessage, StopProcessing, Submit};
use tokio::task::JoinHandle;

use crate::target::{Credentials, Target};
use crate::tracker::{Tracker, external_id};

/// How long a request may wait for its answer before it counts as an error.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle event loops look at the shutdown flag.
const EVENT_POLL: Duration = Duration::from_millis(200);

/// What the simulated desktops do with an invite.
#[derive(Clone, Copy, Debug)]
pub struct AgentBehaviour {
    pub accept_delay: Duration,
    pub handling_time: Duration,
}

/// What each submit carries.
#[derive(Clone, Debug)]
pub struct Payload {
    pub queue: String,
    pub media_type: String,
    pub priority: i64,
    pub user_data: UserData,
}

/// The connected media servers and agent desktops.
#[derive(Debug)]
pub struct Fleet {
    media: Vec<Client>,
    next_media: AtomicUsize,
    tracker: Arc<Tracker>,
    payload: Payload,
    shutdown: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// Connects `media_servers` media servers and `agents` desktops, and logs the agents in.
    pub async fn connect(
        target: &Target,
        media_servers: usize,
        agents: usize,
        behaviour: AgentBehaviour,
        payload: Payload,
    ) -> anyhow::Result<Fleet> {
        let tracker = Arc::new(Tracker::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut media = Vec::new();
        for _ in 0..media_servers.max(1) {
            let c = connect(&target.url, &target.media, ClientKind::MediaServer, None).await?;
            // Stops by agents notify the submitting application; read and drop them.
            tasks.push(tokio::spawn(drain_events(c.clone(), shutdown.clone())));
            media.push(c);
        }
        for n in 0..agents {
            let agent = format!("bench-agent-{n}");
            let c = connect(
                &target.url,
                &target.desktop,
                ClientKind::AgentDesktop,
                Some(agent.clone()),
            )
            .await?;
            let login = AgentLogin::ready_for([payload.media_type.clone()]);
            c.call(Request::AgentLogin(login))
                .await
                .with_context(|| format!("logging in {agent}"))?;
            let desk = Desktop {
                client: c,
                tracker: tracker.clone(),
                behaviour,
            };
            tasks.push(tokio::spawn(desk.run(shutdown.clone())));
        }
        Ok(Fleet {
            media,
            next_media: AtomicUsize::new(0),
            tracker,
            payload,
            shutdown,
            tasks,
        })
    }

    pub fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    /// Submits one lifecycle that counts from `start`, without waiting for anything; `waiter`
    /// is told when the lifecycle ends (closed loop).
    pub fn submit(&self, start: Instant, waiter: Option<tokio::sync::oneshot::Sender<()>>) {
        let seq = self.tracker.begin(start, waiter);
        let i = self.next_media.fetch_add(1, Ordering::Relaxed) % self.media.len();
        let submit = Submit {
            priority: Some(self.payload.priority),
            user_data: Some(self.payload.user_data.clone()),
            external_id: Some(external_id(seq)),
            ..Submit::to_queue(&self.payload.queue, &self.payload.media_type)
        };
        let tracker = self.tracker.clone();
        match self.media[i].send(Request::Submit(submit)) {
            Ok(answer) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
                        Ok(Ok(ServerMessage::EventAck { .. })) => tracker.acked(seq, Instant::now()),
                        Ok(Ok(ServerMessage::EventError { error, .. })) => {
                            tracker.submit_failed(seq, format!("submit: {} ({})", error.name, error.message));
                        }
                        Ok(Ok(other)) => tracker.submit_failed(seq, format!("submit: unexpected {other:?}")),
                        Ok(Err(_)) => tracker.submit_failed(seq, "submit: connection closed".into()),
                        Err(_) => tracker.submit_failed(seq, "submit: no answer within 30 s".into()),
                    }
                });
            }
            Err(e) => tracker.submit_failed(seq, format!("submit: {e}")),
        }
    }

    /// Disconnects every client (the agents' sessions end with their connections).
    pub async fn close(self) {
        self.shutdown.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn connect(
    url: &str,
    app: &Credentials,
    kind: ClientKind,
    agent: Option<String>,
) -> anyhow::Result<Client> {
    let mut reg = Registration::new(&app.application, kind, &app.api_key);
    reg.agent_id = agent;
    // The bench needs the interaction's id from an acknowledgement, never the whole interaction.
    reg.brief_acks = true;
    let mut c = Client::connect(url, reg, &TlsOptions::default())
        .await
        .with_context(|| format!("connecting {} to {url}", app.application))?;
    c.set_timeout(ANSWER_TIMEOUT);
    Ok(c)
}

async fn drain_events(client: Client, shutdown: Arc<AtomicBool>) {
    while !shutdown.load(Ordering::Relaxed) {
        let _ = client.next_event(EVENT_POLL).await;
    }
}

/// One simulated agent desktop.
#[derive(Debug)]
struct Desktop {
    client: Client,
    tracker: Arc<Tracker>,
    behaviour: AgentBehaviour,
}

impl Desktop {
    async fn run(self, shutdown: Arc<AtomicBool>) {
        let me = Arc::new(self);
        while !shutdown.load(Ordering::Relaxed) {
            if let Some(ServerMessage::EventInvite { interaction, .. }) =
                me.client.next_event(EVENT_POLL).await
            {
                me.tracker
                    .invited(interaction.external_id.as_deref(), Instant::now());
                let desk = me.clone();
                tokio::spawn(async move { desk.work(interaction.id, interaction.external_id).await });
            }
        }
    }

    /// Accept after the delay, stop after the handling time; the lifecycle is complete when the
    /// stop is acknowledged.
    async fn work(&self, id: String, external: Option<String>) {
        if !self.behaviour.accept_delay.is_zero() {
            tokio::time::sleep(self.behaviour.accept_delay).await;
        }
        let accept = Request::Accept(Accept {
            interaction_id: id.clone(),
        });
        if let Err(e) = self.client.call(accept).await {
            // The invite was revoked (e.g. timed out); the router offers it again.
            self.tracker.error(format!("accept: {e}"));
            return;
        }
        if !self.behaviour.handling_time.is_zero() {
            tokio::time::sleep(self.behaviour.handling_time).await;
        }
        let stop = Request::StopProcessing(StopProcessing {
            interaction_id: id,
            reason: None,
        });
        match self.client.call(stop).await {
            Ok(_) => self.tracker.completed(external.as_deref(), Instant::now()),
            Err(e) => self.tracker.error(format!("stop: {e}")),
        }
    }
}
