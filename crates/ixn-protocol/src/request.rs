//! Requests: what clients send. Parsing is strict: an unknown request name, an unknown field,
//! a missing field or a wrong type is an error naming the field, and the `reference_id` is
//! still read when possible so the error answer can carry it.

use ixn_model::{ClientKind, Timestamp, UserData};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::{ErrorCode, MediaLogin, ProtocolError, RouteTarget, Visibility};

/// A reason attached to a request (the product family's ReasonInfo).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A workbin instance named in a request.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkbinTarget {
    pub name: String,
    /// Owner id (agent, group, place or place group); for an agent workbin it defaults to the
    /// requesting agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

fn one() -> u32 {
    1
}

macro_rules! requests {
    ($( $(#[$doc:meta])* $variant:ident ( $payload:ident ) = $name:literal, kinds: [$($kind:ident),*] { $( $(#[$fdoc:meta])* $field:ident : $fty:ty ),* $(,)? } )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $payload { $( $(#[$fdoc])* pub $field: $fty, )* }
        )*

        /// Every request a client can send.
        #[derive(Clone, PartialEq, Debug)]
        pub enum Request { $( $variant($payload), )* }

        impl Request {
            /// All request names, for documentation and KPI counters.
            pub const NAMES: &'static [&'static str] = &[ $( $name, )* ];

            /// The wire name, e.g. `RequestSubmit`.
            pub fn name(&self) -> &'static str {
                match self { $( Request::$variant(_) => $name, )* }
            }

            /// Whether a client of `kind` may send this request (admin may send all).
            pub fn allowed_for(&self, kind: ClientKind) -> bool {
                if kind == ClientKind::Admin {
                    return true;
                }
                match self { $( Request::$variant(_) => false $( || kind == ClientKind::$kind )*, )* }
            }

            fn from_parts(name: &str, body: Map<String, Json>) -> Result<Request, ProtocolError> {
                match name {
                    $( $name => serde_path_to_error::deserialize::<_, $payload>(Json::Object(body))
                        .map(Request::$variant)
                        .map_err(|e| field_error(name, e)), )*
                    other => Err(ProtocolError::new(
                        ErrorCode::UnknownRequest,
                        format!("unknown request {other:?}; see docs/protocol.md for the list"),
                    )),
                }
            }

            fn payload_json(&self) -> Json {
                match self { $( Request::$variant(p) => serde_json::to_value(p).unwrap_or(Json::Null), )* }
            }
        }
    };
}

requests! {
    /// First message on a connection: who the client is and its API key.
    RegisterClient(RegisterClient) = "RequestRegisterClient",
        kinds: [MediaServer, AgentDesktop, Router, Reporting, EspServer, Proxy] {
        application: String,
        kind: ClientKind,
        api_key: String,
        /// Agent id of a desktop (defaults to the application name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
        /// A media server asks to receive EventPropertiesChanged for interactions it submitted.
        #[serde(default)]
        notify_properties_changed: bool,
        /// EventAck answers to this connection carry the interaction id only, not the whole
        /// interaction (less to encode, send and parse for clients that do not need it).
        #[serde(default)]
        brief_acks: bool,
        /// ESP servers: the application type they serve requests for by type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app_type: Option<String>,
        /// ESP servers: the services they offer (empty: any).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        services: Vec<String>,
    }
    /// Keep-alive; answered with EventPing carrying the KPI counters when they are collected.
    Ping(Ping) = "RequestPing",
        kinds: [MediaServer, AgentDesktop, Router, Reporting, EspServer, Proxy] {}
    /// Creates an interaction: queued when a media server submits, handling when an agent does.
    Submit(Submit) = "RequestSubmit", kinds: [MediaServer, AgentDesktop, Router, Proxy] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interaction_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        media_type: String,
        #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
        interaction_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subtype: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_objective: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_data: Option<UserData>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        received_at: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_at: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_online: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workbin: Option<WorkbinTarget>,
    }
    /// Reads one interaction (live or stopped).
    GetInteraction(GetInteraction) = "RequestGetInteraction",
        kinds: [MediaServer, AgentDesktop, Router, Reporting, Proxy] {
        interaction_id: String,
    }
    /// Changes user data and updatable properties.
    ChangeProperties(ChangeProperties) = "RequestChangeProperties",
        kinds: [MediaServer, AgentDesktop, Router, Proxy] {
        interaction_id: String,
        #[serde(default)]
        changed_properties: UserData,
        #[serde(default)]
        added_properties: UserData,
        #[serde(default)]
        deleted_properties: Vec<String>,
    }
    PlaceInQueue(PlaceInQueue) = "RequestPlaceInQueue", kinds: [MediaServer, AgentDesktop, Router, Proxy] {
        interaction_id: String,
        queue: String,
        #[serde(default)]
        added_properties: UserData,
    }
    PlaceInWorkbin(PlaceInWorkbin) = "RequestPlaceInWorkbin", kinds: [AgentDesktop, Router, Proxy] {
        interaction_id: String,
        workbin: WorkbinTarget,
    }
    StopProcessing(StopProcessing) = "RequestStopProcessing",
        kinds: [MediaServer, AgentDesktop, Router, Proxy] {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    Hold(Hold) = "RequestHold", kinds: [MediaServer, AgentDesktop, Proxy] {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    Resume(Resume) = "RequestResume", kinds: [MediaServer, AgentDesktop, Proxy] {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    /// Hides an interaction from views and pulls until unlocked.
    LockInteraction(LockInteraction) = "RequestLockInteraction", kinds: [AgentDesktop, Proxy] {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    UnlockInteraction(UnlockInteraction) = "RequestUnlockInteraction", kinds: [AgentDesktop, Proxy] {
        interaction_id: String,
    }
    /// Takes up to `count` interactions from a view, in the view's order, or the named
    /// interactions (from a queue or a workbin) when `interaction_ids` is given.
    Pull(Pull) = "RequestPull", kinds: [AgentDesktop, Router, Proxy] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<String>,
        #[serde(default = "one")]
        count: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        interaction_ids: Vec<String>,
        /// Routers: pull through every enabled submitter of this strategy instead of one view.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strategy: Option<String>,
        /// With `strategy`: how long the server may hold the pull while nothing is available
        /// (capped by `max-pull-wait`; default that option; 0 answers at once).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_wait_ms: Option<u32>,
    }
    /// A consistent, ordered listing of matching live interactions, read page by page.
    TakeSnapshot(TakeSnapshot) = "RequestTakeSnapshot", kinds: [AgentDesktop, Reporting, Proxy] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// At most this many (capped by max-interactions-per-snapshot).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u32>,
    }
    GetSnapshotInteractions(GetSnapshotInteractions) = "RequestGetSnapshotInteractions",
        kinds: [AgentDesktop, Reporting, Proxy] {
        snapshot_id: u64,
        #[serde(default)]
        offset: u32,
        #[serde(default = "one")]
        count: u32,
    }
    ReleaseSnapshot(ReleaseSnapshot) = "RequestReleaseSnapshot", kinds: [AgentDesktop, Reporting, Proxy] {
        snapshot_id: u64,
    }
    /// Finds interactions by condition; `include_stopped` also searches the history in the store.
    FindInteractions(FindInteractions) = "RequestFindInteractions",
        kinds: [MediaServer, AgentDesktop, Router, Reporting, Proxy] {
        condition: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        #[serde(default)]
        offset: u32,
        #[serde(default)]
        include_stopped: bool,
    }
    GetWorkbinContent(GetWorkbinContent) = "RequestGetWorkbinContent",
        kinds: [AgentDesktop, Reporting, Proxy] {
        workbin: WorkbinTarget,
    }
    /// Moves every still-queued, unlocked interaction of a snapshot to a queue.
    MoveInteractions(MoveInteractions) = "RequestMoveInteractions", kinds: [AgentDesktop, Proxy] {
        snapshot_id: u64,
        queue: String,
    }
    /// Queues of the tenant with their depth.
    GetQueues(GetQueues) = "RequestGetQueues",
        kinds: [MediaServer, AgentDesktop, Router, Reporting, Proxy] {}
    /// Receive reporting events live (EventReporting) from now on.
    Subscribe(Subscribe) = "RequestSubscribe", kinds: [Reporting, Proxy] {}
    Unsubscribe(Unsubscribe) = "RequestUnsubscribe", kinds: [Reporting, Proxy] {}
    /// Validates a whole configuration (TOML text) and, unless `dry_run`, applies its business
    /// process atomically.
    ApplyConfig(ApplyConfig) = "RequestApplyConfig", kinds: [] {
        config: String,
        #[serde(default)]
        dry_run: bool,
    }
    /// Logs the desktop's agent in, at a place, with its media and their initial ready state.
    AgentLogin(AgentLogin) = "RequestAgentLogin", kinds: [AgentDesktop] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        place: Option<String>,
        #[serde(default)]
        media: Vec<MediaLogin>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    /// Logs the agent out; its pending invites are revoked (interactions it handles stay).
    AgentLogout(AgentLogout) = "RequestAgentLogout", kinds: [AgentDesktop] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    AddMedia(AddMedia) = "RequestAddMedia", kinds: [AgentDesktop] {
        media_type: String,
        #[serde(default)]
        ready: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    RemoveMedia(RemoveMedia) = "RequestRemoveMedia", kinds: [AgentDesktop] {
        media_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    NotReadyForMedia(NotReadyForMedia) = "RequestNotReadyForMedia", kinds: [AgentDesktop] {
        media_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    CancelNotReadyForMedia(CancelNotReadyForMedia) = "RequestCancelNotReadyForMedia", kinds: [AgentDesktop] {
        media_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    ChangeMediaStateReason(ChangeMediaStateReason) = "RequestChangeMediaStateReason", kinds: [AgentDesktop] {
        media_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    ChangeAgentStateReason(ChangeAgentStateReason) = "RequestChangeAgentStateReason", kinds: [AgentDesktop] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    DoNotDisturbOn(DoNotDisturbOn) = "RequestDoNotDisturbOn", kinds: [AgentDesktop] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    DoNotDisturbOff(DoNotDisturbOff) = "RequestDoNotDisturbOff", kinds: [AgentDesktop] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    /// State, load and reasons of logged-in agents (one agent when `agent_id` is given).
    GetAgents(GetAgents) = "RequestGetAgents", kinds: [AgentDesktop, Router, Reporting, Proxy] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
    }
    /// A router offers an interaction it holds (routing) to the best agent of `target` that can
    /// take it now; the chosen agent gets EventInvite. `added_properties` are merged into the
    /// user data in the same change (virtual-queue reporting keys).
    RouteInteraction(RouteInteraction) = "RequestRouteInteraction", kinds: [Router, Proxy] {
        interaction_id: String,
        #[serde(default)]
        target: RouteTarget,
        #[serde(default)]
        added_properties: UserData,
    }
    /// The invited agent takes the interaction.
    Accept(Accept) = "RequestAccept", kinds: [AgentDesktop, Proxy] {
        interaction_id: String,
    }
    /// The invited agent declines; a routed interaction returns to its queue.
    Reject(Reject) = "RequestReject", kinds: [AgentDesktop, Proxy] {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    /// Hands a handled interaction to an agent or place (invite; the sender leaves when it is
    /// accepted) or to a queue (at once).
    Transfer(Transfer) = "RequestTransfer", kinds: [AgentDesktop, Proxy] {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        place: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    /// Invites another agent or place to join a handled interaction.
    Conference(Conference) = "RequestConference", kinds: [AgentDesktop, Proxy] {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        place: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    /// A supervisor joins a handled interaction at once, with the given visibility.
    Intrude(Intrude) = "RequestIntrude", kinds: [AgentDesktop, Proxy] {
        interaction_id: String,
        #[serde(default)]
        visibility: Visibility,
    }
    /// A party leaves; when the last one leaves, the interaction returns to its queue.
    LeaveInteraction(LeaveInteraction) = "RequestLeaveInteraction", kinds: [AgentDesktop, Proxy] {
        interaction_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
    }
    /// Calls a service of an ESP server, chosen by application name or by type (load-balanced
    /// among the connected servers of that type).
    ThirdServer(ThirdServer) = "Request3rdServer", kinds: [MediaServer, AgentDesktop, Router, Proxy] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app_type: Option<String>,
        service: String,
        method: String,
        #[serde(default)]
        parameters: Map<String, Json>,
        /// Seconds to wait for the answer (default 30, 1–600).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_s: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interaction_id: Option<String>,
    }
    /// An ESP server answers a relayed EventExternalServiceRequest: a result or a fault.
    ExternalServiceResponse(ExternalServiceResponse) = "RequestExternalServiceResponse", kinds: [EspServer] {
        request_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Map<String, Json>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault_code: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault_string: Option<String>,
    }
    /// A client's own reporting event (EventCustomReporting), written to the outbox.
    CustomReporting(CustomReporting) = "RequestCustomReporting",
        kinds: [MediaServer, AgentDesktop, Router, EspServer, Proxy] {
        /// Custom event id (mapped to a table by the event logger's `custom-events`).
        custom_event_id: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interaction_id: Option<String>,
        #[serde(default)]
        user_data: UserData,
    }
}

impl Pull {
    /// Up to `count` interactions from a view.
    pub fn from_view(view: impl Into<String>, count: u32) -> Pull {
        Pull {
            view: Some(view.into()),
            count,
            interaction_ids: Vec::new(),
            strategy: None,
            max_wait_ms: None,
        }
    }

    /// Up to `count` interactions for a strategy, held by the server up to `max_wait_ms` (the
    /// server's `max-pull-wait` when `None`) while nothing is available.
    pub fn for_strategy(strategy: impl Into<String>, count: u32, max_wait_ms: Option<u32>) -> Pull {
        Pull {
            view: None,
            count,
            interaction_ids: Vec::new(),
            strategy: Some(strategy.into()),
            max_wait_ms,
        }
    }
}

impl AgentLogin {
    /// A login with no place, ready at once for each of `media_types`.
    pub fn ready_for<M: Into<String>>(media_types: impl IntoIterator<Item = M>) -> AgentLogin {
        AgentLogin {
            place: None,
            media: media_types
                .into_iter()
                .map(|m| MediaLogin {
                    media_type: m.into(),
                    ready: true,
                    reason: None,
                })
                .collect(),
            reason: None,
        }
    }
}

impl Submit {
    /// A submit to `queue` with every optional field unset.
    pub fn to_queue(queue: impl Into<String>, media_type: impl Into<String>) -> Submit {
        Submit {
            queue: Some(queue.into()),
            ..Submit::new(media_type)
        }
    }

    /// A submit of `media_type` with every optional field unset (no queue either).
    pub fn new(media_type: impl Into<String>) -> Submit {
        Submit {
            interaction_id: None,
            queue: None,
            media_type: media_type.into(),
            interaction_type: None,
            subtype: None,
            priority: None,
            service_objective: None,
            user_data: None,
            external_id: None,
            parent_id: None,
            received_at: None,
            scheduled_at: None,
            is_online: None,
            workbin: None,
        }
    }
}

fn field_error(request: &str, e: serde_path_to_error::Error<serde_json::Error>) -> ProtocolError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let message = if path.is_empty() || path == "." {
        format!("{request}: {inner}")
    } else {
        format!("{request}: field `{path}`: {inner}")
    };
    ProtocolError::new(ErrorCode::InvalidField, message)
}

/// A request with its reference id, as read from one message.
#[derive(Clone, PartialEq, Debug)]
pub struct Envelope {
    pub reference_id: u64,
    pub request: Request,
}

/// A message that could not be read; `reference_id` is set when it could be found.
#[derive(Clone, PartialEq, Debug)]
pub struct ParseFailure {
    pub reference_id: Option<u64>,
    pub error: ProtocolError,
}

impl Envelope {
    /// Reads one client message.
    pub fn parse(text: &str) -> Result<Envelope, ParseFailure> {
        let json: Json = serde_json::from_str(text).map_err(|e| ParseFailure {
            reference_id: None,
            error: ProtocolError::new(ErrorCode::MalformedMessage, format!("invalid JSON: {e}")),
        })?;
        Self::from_json(json)
    }

    pub fn from_json(json: Json) -> Result<Envelope, ParseFailure> {
        let Json::Object(mut map) = json else {
            return Err(ParseFailure {
                reference_id: None,
                error: ProtocolError::of(ErrorCode::MalformedMessage),
            });
        };
        let reference_id = match map.remove("reference_id") {
            Some(Json::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(_) => {
                return Err(ParseFailure {
                    reference_id: None,
                    error: ProtocolError::new(
                        ErrorCode::InvalidField,
                        "reference_id must be a non-negative integer",
                    ),
                });
            }
            None => None,
        };
        let fail = |error| ParseFailure { reference_id, error };
        let Some(reference_id) = reference_id else {
            return Err(fail(ProtocolError::new(
                ErrorCode::InvalidField,
                "missing field `reference_id`",
            )));
        };
        let name = match map.remove("request") {
            Some(Json::String(s)) => s,
            _ => {
                return Err(fail(ProtocolError::new(
                    ErrorCode::InvalidField,
                    "missing field `request`",
                )));
            }
        };
        let request = Request::from_parts(&name, map).map_err(fail)?;
        Ok(Envelope {
            reference_id,
            request,
        })
    }

    /// The message as JSON (what a client sends).
    pub fn to_json(&self) -> Json {
        let mut map = match self.request.payload_json() {
            Json::Object(m) => m,
            _ => Map::new(),
        };
        map.insert("request".into(), Json::String(self.request.name().into()));
        map.insert("reference_id".into(), Json::from(self.reference_id));
        Json::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Envelope, ParseFailure> {
        Envelope::parse(text)
    }

    #[test]
    fn parses_a_submit() {
        let env = parse(
            r#"{"request":"RequestSubmit","reference_id":7,"queue":"inbound","media_type":"chat","type":"Inbound","user_data":{"Subject":"hi"}}"#,
        )
        .unwrap();
        assert_eq!(env.reference_id, 7);
        let Request::Submit(s) = env.request else {
            panic!("not a submit")
        };
        assert_eq!(s.queue.as_deref(), Some("inbound"));
        assert_eq!(s.interaction_type.as_deref(), Some("Inbound"));
    }

    #[test]
    fn errors_are_precise_and_keep_the_reference() {
        let cases: &[(&str, Option<u64>, ErrorCode, &str)] = &[
            ("not json", None, ErrorCode::MalformedMessage, "invalid JSON"),
            ("[1,2]", None, ErrorCode::MalformedMessage, "not a JSON object"),
            (
                r#"{"request":"RequestPing"}"#,
                None,
                ErrorCode::InvalidField,
                "reference_id",
            ),
            (
                r#"{"reference_id":3}"#,
                Some(3),
                ErrorCode::InvalidField,
                "request",
            ),
            (
                r#"{"request":"RequestNope","reference_id":4}"#,
                Some(4),
                ErrorCode::UnknownRequest,
                "RequestNope",
            ),
            (
                r#"{"request":"RequestPull","reference_id":5,"view":"v","bogus":1}"#,
                Some(5),
                ErrorCode::InvalidField,
                "unknown field `bogus`",
            ),
            (
                r#"{"request":"RequestStopProcessing","reference_id":6}"#,
                Some(6),
                ErrorCode::InvalidField,
                "missing field `interaction_id`",
            ),
            (
                r#"{"request":"RequestPull","reference_id":8,"view":"v","count":"x"}"#,
                Some(8),
                ErrorCode::InvalidField,
                "field `count`: invalid type",
            ),
        ];
        for (text, reference, code, needle) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.reference_id, *reference, "{text}");
            assert_eq!(err.error.code, *code, "{text}");
            assert!(
                err.error.message.contains(needle),
                "{text}: {}",
                err.error.message
            );
        }
    }

    #[test]
    fn permissions() {
        let pull = Request::Pull(Pull::from_view("v", 1));
        assert!(pull.allowed_for(ClientKind::Router));
        assert!(pull.allowed_for(ClientKind::AgentDesktop));
        assert!(!pull.allowed_for(ClientKind::MediaServer));
        assert!(pull.allowed_for(ClientKind::Admin));
        let apply = Request::ApplyConfig(ApplyConfig {
            config: String::new(),
            dry_run: false,
        });
        for k in ClientKind::ALL {
            assert_eq!(apply.allowed_for(k), k == ClientKind::Admin);
        }
    }

    #[test]
    fn to_json_round_trips() {
        let env = Envelope {
            reference_id: 9,
            request: Request::StopProcessing(StopProcessing {
                interaction_id: "abc".into(),
                reason: Some(Reason {
                    code: Some(1),
                    description: Some("done".into()),
                }),
            }),
        };
        assert_eq!(Envelope::from_json(env.to_json()).unwrap(), env);
    }
}
