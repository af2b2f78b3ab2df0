//! The pull loop of one strategy on one server: ask for as many interactions as the strategy may
//! still work on, let the server hold the request until work appears, hand what comes to the
//! server's worker, and start again — no polling. After errors 42, 83, 107, 108 or 109 it waits
//! `mcr-pull-after-error-timeout` before pulling that strategy from that server again.

use std::sync::Arc;
use std::time::Duration;

use ixn_protocol::{ErrorCode, InteractionView, Pull, Request, ServerMessage};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::link::Link;

/// What a pull loop hands the worker: interactions now in routing, held by this router.
#[derive(Debug)]
pub struct Pulled {
    pub strategy: String,
    pub interactions: Vec<InteractionView>,
}

/// Settings of every pull loop of one server.
#[derive(Clone, Debug)]
pub struct PullSettings {
    pub batch: u32,
    pub after_error: Duration,
}

/// Shortest time between two pulls answered empty: a server that does not hold pulls is not
/// hammered (a holding server answers empty only after its wait).
const MIN_EMPTY_GAP: Duration = Duration::from_millis(500);
/// First wait after an unexpected pull error; doubled up to [`MAX_OTHER_ERROR_WAIT`].
const OTHER_ERROR_WAIT: Duration = Duration::from_secs(1);
const MAX_OTHER_ERROR_WAIT: Duration = Duration::from_secs(30);

/// Whether a pull error means "this strategy cannot be pulled from this server" (the product
/// family's list for `mcr-pull-after-error-timeout`).
pub fn is_strategy_error(code: u32) -> bool {
    [
        ErrorCode::UnknownView,
        ErrorCode::ViewDefinitionInvalid,
        ErrorCode::StrategyDoesNotExist,
        ErrorCode::StrategyHasNoViews,
        ErrorCode::StrategyIsDisabled,
    ]
    .iter()
    .any(|c| c.code() == code)
}

/// Runs until the connection goes. `slots` holds one permit per interaction the strategy may
/// still take; pulled interactions keep theirs until the worker lets them go.
pub async fn pull_loop(
    link: Arc<dyn Link>,
    strategy: String,
    slots: Arc<Semaphore>,
    settings: PullSettings,
    to_worker: mpsc::UnboundedSender<Pulled>,
) {
    let mut other_error_wait = OTHER_ERROR_WAIT;
    loop {
        let Ok(first) = slots.acquire().await else { return };
        first.forget();
        let mut count = 1;
        while count < settings.batch {
            match slots.try_acquire() {
                Ok(p) => {
                    p.forget();
                    count += 1;
                }
                Err(_) => break,
            }
        }
        let sent_at = Instant::now();
        let request = Request::Pull(Pull {
            view: None,
            count,
            interaction_ids: Vec::new(),
            strategy: Some(strategy.clone()),
            max_wait_ms: None,
        });
        let Ok(answer) = link.send(request) else { return };
        let Ok(answer) = answer.await else { return };
        match answer {
            ServerMessage::EventPulledInteractions { interactions, .. } => {
                other_error_wait = OTHER_ERROR_WAIT;
                let got = u32::try_from(interactions.len()).unwrap_or(u32::MAX).min(count);
                slots.add_permits((count - got) as usize);
                if interactions.is_empty() {
                    tokio::time::sleep_until(sent_at + MIN_EMPTY_GAP).await;
                    continue;
                }
                tracing::debug!(strategy, count = got, "pulled");
                let pulled = Pulled {
                    strategy: strategy.clone(),
                    interactions,
                };
                if to_worker.send(pulled).is_err() {
                    return;
                }
            }
            ServerMessage::EventError { error, .. } if is_strategy_error(error.code) => {
                slots.add_permits(count as usize);
                tracing::warn!(
                    strategy,
                    code = error.code,
                    error = %error.message,
                    wait_s = settings.after_error.as_secs(),
                    "pull refused; waiting mcr-pull-after-error-timeout"
                );
                tokio::time::sleep(settings.after_error).await;
            }
            other => {
                slots.add_permits(count as usize);
                tracing::warn!(strategy, answer = ?other, "unexpected pull answer");
                tokio::time::sleep(other_error_wait).await;
                other_error_wait = (other_error_wait * 2).min(MAX_OTHER_ERROR_WAIT);
            }
        }
    }
}
