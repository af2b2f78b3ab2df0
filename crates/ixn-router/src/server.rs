//! One interaction server as the router sees it over time: connect, run a pull loop per
//! strategy and the worker, and when the connection goes, reconnect with a bounded backoff —
//! while the router's other servers keep routing. What the router remembers about this server's
//! interactions survives reconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};

use crate::link::Connector;
use crate::memory::Memory;
use crate::plan::Plan;
use crate::pull::{PullSettings, pull_loop};
use crate::worker::Worker;

/// First wait before reconnecting; doubled after each failure up to [`MAX_RECONNECT_WAIT`].
const MIN_RECONNECT_WAIT: Duration = Duration::from_millis(200);
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(30);

/// Everything one server's supervisor needs.
#[derive(Debug)]
pub struct ServerTask {
    pub connector: Arc<dyn Connector>,
    pub plans: Vec<Arc<Plan>>,
    pub settings: PullSettings,
    pub node: String,
}

impl ServerTask {
    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let server = self.connector.describe();
        let mut memory = Memory::default();
        let mut wait = MIN_RECONNECT_WAIT;
        while !*shutdown.borrow() {
            let connected = tokio::select! {
                c = self.connector.connect() => c,
                _ = shutdown.changed() => return,
            };
            let connected = match connected {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(%server, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot connect");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return,
                    }
                    wait = (wait * 2).min(MAX_RECONNECT_WAIT);
                    continue;
                }
            };
            wait = MIN_RECONNECT_WAIT;
            tracing::info!(%server, strategies = self.plans.len(), "connected");
            let (pulled_tx, pulled_rx) = mpsc::unbounded_channel();
            let mut slots = HashMap::new();
            let mut loops = Vec::new();
            for plan in &self.plans {
                let sem = Arc::new(Semaphore::new(self.settings.batch as usize));
                slots.insert(plan.name().to_owned(), sem.clone());
                loops.push(tokio::spawn(pull_loop(
                    connected.link.clone(),
                    plan.name().to_owned(),
                    sem,
                    self.settings.clone(),
                    pulled_tx.clone(),
                )));
            }
            drop(pulled_tx);
            let worker = Worker::new(connected.link, self.node.clone(), &self.plans, slots, memory);
            let ended = tokio::select! {
                m = worker.run(connected.events, pulled_rx) => Some(m),
                _ = shutdown.changed() => None,
            };
            // The worker's link went with it; the pull loops hold the others. Waiting for them
            // to end means the connection is closed when this returns (the server hears the
            // router leave and takes back what it held), not whenever the runtime drops them.
            for l in &loops {
                l.abort();
            }
            for l in loops {
                let _ = l.await;
            }
            match ended {
                Some(m) => {
                    memory = m;
                    tracing::warn!(%server, "connection lost; reconnecting");
                }
                None => return,
            }
        }
    }
}
