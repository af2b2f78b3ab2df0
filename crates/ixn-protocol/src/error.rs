//! The error catalogue: a stable numeric code, a stable snake_case name and a default message.
//! Codes 42, 83, 107, 108 and 109 keep the product family's numbers; ixn's own codes are 1000+,
//! so they never collide with codes a product-family client already knows.

use serde::{Deserialize, Serialize};

macro_rules! catalogue {
    ($( $variant:ident = $code:literal, $name:literal, $client_fault:literal, $msg:literal; )*) => {
        /// Every error the server can answer with.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum ErrorCode { $( $variant, )* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            pub fn code(self) -> u32 {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            pub fn name(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )* }
            }

            /// Whether the client caused it (bad input, wrong state) rather than the server.
            pub fn is_client_fault(self) -> bool {
                match self { $( ErrorCode::$variant => $client_fault, )* }
            }

            pub fn default_message(self) -> &'static str {
                match self { $( ErrorCode::$variant => $msg, )* }
            }
        }
    };
}

catalogue! {
    UnknownView = 42, "unknown_view", true, "the view does not exist";
    ViewDefinitionInvalid = 83, "view_definition_invalid", true, "the view definition is invalid";
    StrategyDoesNotExist = 107, "strategy_does_not_exist", true, "no submitter serves this strategy";
    StrategyHasNoViews = 108, "strategy_has_no_views", true, "the strategy has no enabled views";
    StrategyIsDisabled = 109, "strategy_is_disabled", true, "every submitter of this strategy is disabled";
    MalformedMessage = 1000, "malformed_message", true, "the message is not a JSON object";
    UnknownRequest = 1001, "unknown_request", true, "unknown request name";
    InvalidField = 1002, "invalid_field", true, "a field is missing, unknown or of the wrong type";
    FrameTooLarge = 1003, "frame_too_large", true, "the message is larger than max-frame-size";
    NotRegistered = 1004, "not_registered", true, "send RequestRegisterClient first";
    AlreadyRegistered = 1005, "already_registered", true, "this connection is already registered";
    AuthenticationFailed = 1006, "authentication_failed", true, "unknown API key, or it does not match the application";
    RequestNotAllowed = 1007, "request_not_allowed", true, "this kind of client may not send this request";
    UnknownInteraction = 1010, "unknown_interaction", true, "no such interaction in this tenant";
    UnknownQueue = 1011, "unknown_queue", true, "no such queue in this tenant";
    UnknownWorkbin = 1012, "unknown_workbin", true, "no such workbin in this tenant";
    UnknownSnapshot = 1013, "unknown_snapshot", true, "no such snapshot on this connection";
    UnknownMediaType = 1014, "unknown_media_type", true, "no such media type";
    InvalidState = 1015, "invalid_state", true, "the request is not allowed in the interaction's current state";
    PropertyNotUpdatable = 1016, "property_not_updatable", true, "this property cannot be changed";
    InvalidCondition = 1017, "invalid_condition", true, "the condition or order cannot be parsed";
    InteractionLocked = 1018, "interaction_locked", true, "the interaction is locked";
    DuplicateInteraction = 1019, "duplicate_interaction", true, "an interaction with this id already exists";
    InvalidValue = 1020, "invalid_value", true, "a value is out of range or malformed";
    InvalidConfiguration = 1021, "invalid_configuration", true, "the configuration is invalid; nothing was changed";
    NotAssigned = 1022, "not_assigned", true, "the interaction is not held by this client";
    ViewDisabled = 1023, "view_disabled", true, "the view is disabled";
    AgentNotLoggedIn = 1040, "agent_not_logged_in", true, "the agent is not logged in";
    AgentAlreadyLoggedIn = 1041, "agent_already_logged_in", true, "the agent is logged in on another connection and allow-multiple-agent-connections is false";
    NoAgentAvailable = 1042, "no_agent_available", true, "no agent of the target can take the interaction now";
    AgentNotAvailable = 1043, "agent_not_available", true, "the agent is not ready for this media, in do-not-disturb, or at capacity";
    MediaNotLoggedIn = 1044, "media_not_logged_in", true, "the agent is not logged in for this media";
    NoInvite = 1045, "no_invite", true, "no pending invite for this agent on this interaction";
    UnknownAgent = 1046, "unknown_agent", true, "no such agent or place is logged in";
    EspServerNotFound = 1050, "esp_server_not_found", true, "no ESP server of that name or type is connected (Not found by type)";
    EspTimeout = 1051, "esp_timeout", false, "the ESP server did not answer in time";
    EspServerGone = 1052, "esp_server_gone", false, "the ESP server disconnected before it answered";
    StoreUnavailable = 1030, "store_unavailable", false, "the store cannot be reached; try again";
    Internal = 1031, "internal_error", false, "internal error";
    ShuttingDown = 1032, "shutting_down", false, "the server is shutting down";
}

impl ErrorCode {
    pub fn from_code(code: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.code() == code)
    }

    /// HTTP status for the REST facade.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::AuthenticationFailed | ErrorCode::NotRegistered => 401,
            ErrorCode::RequestNotAllowed => 403,
            ErrorCode::UnknownInteraction
            | ErrorCode::UnknownQueue
            | ErrorCode::UnknownWorkbin
            | ErrorCode::UnknownSnapshot
            | ErrorCode::UnknownView
            | ErrorCode::UnknownAgent
            | ErrorCode::EspServerNotFound => 404,
            ErrorCode::InvalidState
            | ErrorCode::InteractionLocked
            | ErrorCode::DuplicateInteraction
            | ErrorCode::NotAssigned
            | ErrorCode::AgentAlreadyLoggedIn
            | ErrorCode::NoAgentAvailable
            | ErrorCode::AgentNotAvailable
            | ErrorCode::NoInvite => 409,
            ErrorCode::EspTimeout | ErrorCode::EspServerGone => 504,
            ErrorCode::FrameTooLarge => 413,
            ErrorCode::StoreUnavailable | ErrorCode::ShuttingDown => 503,
            ErrorCode::Internal => 500,
            _ => 400,
        }
    }
}

/// An error answer: catalogue entry plus a message saying what exactly was wrong.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{} ({}): {message}", code.name(), code.code())]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
        }
    }

    /// The catalogue's default message.
    pub fn of(code: ErrorCode) -> Self {
        ProtocolError {
            code,
            message: code.default_message().to_owned(),
        }
    }
}

/// The JSON body of an error (`EventError` without the envelope; also the REST error body).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: u32,
    pub name: String,
    pub message: String,
}

impl From<&ProtocolError> for ErrorBody {
    fn from(e: &ProtocolError) -> Self {
        ErrorBody {
            code: e.code.code(),
            name: e.code.name().to_owned(),
            message: e.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_are_kept() {
        assert_eq!(ErrorCode::UnknownView.code(), 42);
        assert_eq!(ErrorCode::ViewDefinitionInvalid.code(), 83);
        assert_eq!(ErrorCode::StrategyDoesNotExist.code(), 107);
        assert_eq!(ErrorCode::StrategyHasNoViews.code(), 108);
        assert_eq!(ErrorCode::StrategyIsDisabled.code(), 109);
    }

    #[test]
    fn codes_and_names_are_unique_and_snake_case() {
        let mut codes = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(codes.insert(c.code()), "{c:?}");
            assert!(names.insert(c.name()), "{c:?}");
            assert!(
                c.name().chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{c:?}"
            );
            assert_eq!(ErrorCode::from_code(c.code()), Some(*c));
        }
    }
}
