//! One routed lifecycle through `Engine::handle`: a media server submits to `inbound`, the
//! router pulls it by strategy, routes it to the best agent (longest idle), the agent accepts
//! and stops it, the batch is taken. Measured with 10 and with 1,000 logged-in agents (every
//! agent of the tenant is a candidate), to show what agent selection costs as the floor grows.
//!
//! Run: `cargo bench -p ixn-engine --bench route -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ixn_config::Config;
use ixn_engine::{ClientCtx, Engine, Output};
use ixn_model::{ClientKind, Name, Timestamp};
use ixn_protocol::{
    Accept, AgentLogin, Pull, Request, RouteInteraction, RouteTarget, ServerMessage, StopProcessing, Submit,
};

const T0: Timestamp = Timestamp(1_767_225_600_000);

fn ctx(id: u64, application: &str, kind: ClientKind, agent: Option<&str>) -> ClientCtx {
    ClientCtx {
        client_id: id,
        application: Name::new(application),
        kind,
        tenant: Name::new("default"),
        agent: agent.map(Name::new),
    }
}

struct Floor {
    eng: Engine,
    media: ClientCtx,
    router: ClientCtx,
    agents: Vec<ClientCtx>,
    now: Timestamp,
    rid: u64,
}

impl Floor {
    fn new(agents: usize) -> Floor {
        let config = Config::builtin_default();
        let mut f = Floor {
            eng: Engine::new(&config.process, config.settings, 1, 0),
            media: ctx(1, "chat-server", ClientKind::MediaServer, None),
            router: ctx(2, "router", ClientKind::Router, None),
            agents: Vec::new(),
            now: T0,
            rid: 0,
        };
        for i in 0..agents {
            let name = format!("agent{i:05}");
            let c = ctx(100 + i as u64, "desktop", ClientKind::AgentDesktop, Some(&name));
            f.call(&c.clone(), Request::AgentLogin(AgentLogin::ready_for(["chat"])));
            f.agents.push(c);
        }
        f
    }

    fn call(&mut self, client: &ClientCtx, request: Request) -> ServerMessage {
        self.rid += 1;
        let mut out = Output::default();
        match self.eng.handle(client, self.rid, request, self.now, &mut out) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    fn lifecycle(&mut self) {
        self.now = self.now.plus_millis(1);
        let submitted = self.call(
            &self.media.clone(),
            Request::Submit(Submit::to_queue("inbound", "chat")),
        );
        let ServerMessage::EventAck {
            interaction_id: Some(id),
            ..
        } = submitted
        else {
            panic!("{submitted:?}")
        };
        let router = self.router.clone();
        self.call(&router, Request::Pull(Pull::for_strategy("default", 1, Some(0))));
        let routed = self.call(
            &router,
            Request::RouteInteraction(RouteInteraction {
                interaction_id: id.clone(),
                target: RouteTarget::default(),
                added_properties: Default::default(),
            }),
        );
        let ServerMessage::EventAck {
            interaction: Some(ix),
            ..
        } = routed
        else {
            panic!("{routed:?}")
        };
        let agent = ix.assigned_to.unwrap_or_default();
        let desk = ctx(9, "desktop", ClientKind::AgentDesktop, Some(&agent));
        self.call(
            &desk,
            Request::Accept(Accept {
                interaction_id: id.clone(),
            }),
        );
        self.call(
            &desk,
            Request::StopProcessing(StopProcessing {
                interaction_id: id,
                reason: None,
            }),
        );
        black_box(self.eng.take_batch());
    }
}

fn bench(c: &mut Criterion) {
    for agents in [10, 1000] {
        let mut floor = Floor::new(agents);
        floor.eng.take_batch();
        c.bench_function(&format!("routed lifecycle, {agents} agents"), |b| {
            b.iter(|| floor.lifecycle())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
