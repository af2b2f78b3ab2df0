//! Held pulls: a router's `RequestPull { strategy }` that finds nothing waits here, up to its
//! `max_wait_ms` (capped by `max-pull-wait`), instead of being answered empty at once. It is
//! retried when the engine's work epoch moves (an interaction became pullable) and answered
//! empty at its deadline, so routers never poll.

use std::time::Duration;

use ixn_engine::{ClientCtx, Output};
use ixn_protocol::{Pull, Request, ServerMessage};
use tokio::time::Instant;

use crate::core::{Core, Reply, now};
use crate::writer::WsOut;

#[derive(Debug)]
pub(crate) struct HeldPull {
    ctx: ClientCtx,
    rid: u64,
    pull: Pull,
    reply: Reply,
    deadline: Instant,
}

/// Held pulls in arrival order, and the work epoch they last saw.
#[derive(Debug, Default)]
pub(crate) struct HeldPulls {
    list: Vec<HeldPull>,
    epoch: u64,
}

fn is_empty_pull(m: &ServerMessage) -> bool {
    matches!(m, ServerMessage::EventPulledInteractions { interactions, .. } if interactions.is_empty())
}

impl HeldPulls {
    pub fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().map(|h| h.deadline).min()
    }

    pub fn drop_client(&mut self, client_id: u64) {
        self.list.retain(|h| h.ctx.client_id != client_id);
    }
}

impl Core {
    /// Handles a strategy pull; `Some(reply)` is handed back when the pull is not held.
    pub(crate) fn try_hold(&mut self, ctx: &ClientCtx, rid: u64, pull: &Pull, reply: Reply) -> Option<Reply> {
        let wait_ms = match pull.max_wait_ms {
            Some(0) => return Some(reply),
            Some(ms) => u64::from(ms),
            None => u64::MAX,
        }
        .min(u64::from(self.engine.settings().max_pull_wait_s) * 1000);
        if pull.strategy.is_none() || wait_ms == 0 {
            return Some(reply);
        }
        let mut out = Output::default();
        let result = self
            .engine
            .handle(ctx, rid, Request::Pull(pull.clone()), now(), &mut out);
        let after = self.after_for(ctx);
        self.route_after(out, after);
        match result {
            Ok(m) if is_empty_pull(&m) => {
                self.held.list.push(HeldPull {
                    ctx: ctx.clone(),
                    rid,
                    pull: pull.clone(),
                    reply,
                    deadline: Instant::now() + Duration::from_millis(wait_ms),
                });
                None
            }
            Ok(m) => {
                self.release(reply.into_dest(), WsOut::Message(m), after);
                None
            }
            Err(e) => {
                self.shared.kpi.error(e.code);
                self.queue(
                    reply.into_dest(),
                    WsOut::Message(ServerMessage::error(Some(rid), &e)),
                );
                None
            }
        }
    }

    /// Retries held pulls when work appeared, and answers those whose wait is over.
    pub(crate) fn service_held(&mut self) {
        if self.held.list.is_empty() {
            self.held.epoch = self.engine.work_epoch();
            return;
        }
        let epoch = self.engine.work_epoch();
        let retry = epoch != self.held.epoch;
        self.held.epoch = epoch;
        let at = Instant::now();
        let mut keep = Vec::with_capacity(self.held.list.len());
        for h in std::mem::take(&mut self.held.list) {
            let answer = if retry {
                let mut out = Output::default();
                let result =
                    self.engine
                        .handle(&h.ctx, h.rid, Request::Pull(h.pull.clone()), now(), &mut out);
                let after = self.after_for(&h.ctx);
                self.route_after(out, after);
                match result {
                    Ok(m) if is_empty_pull(&m) => None,
                    Ok(m) => Some((m, after)),
                    Err(e) => Some((ServerMessage::error(Some(h.rid), &e), None)),
                }
            } else {
                None
            };
            match answer {
                Some((m, after)) => self.release(h.reply.into_dest(), WsOut::Message(m), after),
                None if h.deadline <= at => {
                    let empty = ServerMessage::EventPulledInteractions {
                        reference_id: h.rid,
                        interactions: Vec::new(),
                    };
                    self.queue(h.reply.into_dest(), WsOut::Message(empty));
                }
                None => keep.push(h),
            }
        }
        self.held.list = keep;
    }
}
