//! The REST facade: request/response operations over HTTP with `Authorization: Bearer <key>`.
//! The stable paths map to protocol requests; `POST /v1/requests` takes any protocol request
//! (the WebSocket message format) and answers with the protocol's answer.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ixn_engine::ClientCtx;
use ixn_protocol::{
    Envelope, ErrorBody, ErrorCode, GetInteraction, GetQueues, ProtocolError, Request, ServerMessage,
    StopProcessing, Submit,
};
use serde_json::{Value as Json, json};
use tokio::sync::oneshot;

use crate::core::Reply;
use crate::startup::Shared;

pub(crate) fn error_response(e: &ProtocolError) -> Response {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(ErrorBody::from(e))).into_response()
}

/// The client behind a bearer key. REST clients of one application share a stable client id,
/// so snapshots taken over REST can be read page by page.
pub(crate) fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<ClientCtx, ProtocolError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::AuthenticationFailed,
                "missing `Authorization: Bearer <api key>`",
            )
        })?;
    let config = shared.config();
    let app = config
        .process
        .application_by_key(key.trim())
        .ok_or_else(|| ProtocolError::of(ErrorCode::AuthenticationFailed))?;
    let mut ctx = crate::session::client_ctx(shared, app, None);
    ctx.client_id = rest_client_id(&app.name);
    Ok(ctx)
}

fn rest_client_id(app: &str) -> u64 {
    // FNV-1a; the top bit keeps these apart from connection ids.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in app.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h | (1 << 63)
}

/// Runs one request to its answer.
async fn call(shared: &Arc<Shared>, ctx: &ClientCtx, request: Request) -> ServerMessage {
    let (tx, rx) = oneshot::channel();
    crate::session::dispatch(shared, ctx, 0, request, Reply::Rest(tx)).await;
    rx.await
        .unwrap_or_else(|_| ServerMessage::error(Some(0), &ProtocolError::of(ErrorCode::ShuttingDown)))
}

/// Reads a request body of at most max-frame-size bytes.
async fn read_body(shared: &Shared, body: Body) -> Result<Bytes, ProtocolError> {
    axum::body::to_bytes(body, shared.max_frame_size)
        .await
        .map_err(|_| {
            ProtocolError::new(
                ErrorCode::FrameTooLarge,
                format!(
                    "request body is larger than max-frame-size ({} bytes)",
                    shared.max_frame_size
                ),
            )
        })
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ProtocolError> {
    if body.is_empty() {
        return serde_json::from_str("{}")
            .map_err(|e| ProtocolError::new(ErrorCode::InvalidField, format!("{what}: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            ErrorCode::MalformedMessage
        } else {
            ErrorCode::InvalidField
        };
        ProtocolError::new(code, format!("{what}: {e}"))
    })
}

/// Maps an answer carrying one interaction to `status` + the interaction.
fn interaction_response(msg: ServerMessage, status: StatusCode) -> Response {
    match msg {
        ServerMessage::EventAck {
            interaction: Some(ix),
            ..
        }
        | ServerMessage::EventInteractionProperties { interaction: ix, .. } => {
            (status, axum::Json(ix)).into_response()
        }
        ServerMessage::EventError { error, .. } => {
            let code = ErrorCode::from_code(error.code).unwrap_or(ErrorCode::Internal);
            error_response(&ProtocolError::new(code, error.message))
        }
        other => (status, axum::Json(other)).into_response(),
    }
}

pub(crate) async fn submit(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let ctx = match authenticate(&shared, &headers) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let body = match read_body(&shared, body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let r: Submit = match parse_body(&body, "RequestSubmit") {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    interaction_response(call(&shared, &ctx, Request::Submit(r)).await, StatusCode::CREATED)
}

pub(crate) async fn get_interaction(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match authenticate(&shared, &headers) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let msg = call(
        &shared,
        &ctx,
        Request::GetInteraction(GetInteraction { interaction_id: id }),
    )
    .await;
    interaction_response(msg, StatusCode::OK)
}

pub(crate) async fn stop(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StopBody {
        #[serde(default)]
        reason: Option<ixn_protocol::Reason>,
    }
    let ctx = match authenticate(&shared, &headers) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let body = match read_body(&shared, body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let b: StopBody = match parse_body(&body, "stop") {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let msg = call(
        &shared,
        &ctx,
        Request::StopProcessing(StopProcessing {
            interaction_id: id,
            reason: b.reason,
        }),
    )
    .await;
    interaction_response(msg, StatusCode::OK)
}

pub(crate) async fn queues(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let ctx = match authenticate(&shared, &headers) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    match call(&shared, &ctx, Request::GetQueues(GetQueues {})).await {
        ServerMessage::EventQueues { queues, .. } => axum::Json(queues).into_response(),
        other => interaction_response(other, StatusCode::OK),
    }
}

/// `POST /v1/requests`: every answer, errors included, is a protocol message (`EventError` with
/// the request's `reference_id` when it could be read), with the error's HTTP status.
pub(crate) async fn request(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let answer = |msg: ServerMessage| {
        let status = match &msg {
            ServerMessage::EventError { error, .. } => ErrorCode::from_code(error.code)
                .and_then(|c| StatusCode::from_u16(c.http_status()).ok())
                .unwrap_or(StatusCode::BAD_REQUEST),
            _ => StatusCode::OK,
        };
        (status, axum::Json(msg)).into_response()
    };
    let ctx = match authenticate(&shared, &headers) {
        Ok(c) => c,
        Err(e) => return answer(ServerMessage::error(None, &e)),
    };
    let body = match read_body(&shared, body).await {
        Ok(b) => b,
        Err(e) => return answer(ServerMessage::error(None, &e)),
    };
    let mut json: Json = match parse_body(&body, "request") {
        Ok(j) => j,
        Err(e) => return answer(ServerMessage::error(None, &e)),
    };
    if let Json::Object(map) = &mut json {
        map.entry("reference_id").or_insert(Json::from(0));
    }
    let env = match Envelope::from_json(json) {
        Ok(env) => env,
        Err(f) => return answer(ServerMessage::error(f.reference_id, &f.error)),
    };
    let (tx, rx) = oneshot::channel();
    crate::session::dispatch(&shared, &ctx, env.reference_id, env.request, Reply::Rest(tx)).await;
    let msg = rx.await.unwrap_or_else(|_| {
        ServerMessage::error(
            Some(env.reference_id),
            &ProtocolError::of(ErrorCode::ShuttingDown),
        )
    });
    answer(msg)
}

/// The OpenAPI 3.1 document of the REST facade.
pub(crate) fn openapi_document() -> Json {
    let error = json!({"$ref": "#/components/schemas/Error"});
    let err_responses = json!({
        "400": {"description": "invalid request", "content": {"application/json": {"schema": error}}},
        "401": {"description": "missing or unknown API key", "content": {"application/json": {"schema": error}}},
        "403": {"description": "this kind of client may not send this request", "content": {"application/json": {"schema": error}}},
        "404": {"description": "unknown interaction, queue, view or workbin", "content": {"application/json": {"schema": error}}},
        "409": {"description": "not allowed in the current state", "content": {"application/json": {"schema": error}}},
        "413": {"description": "body larger than max-frame-size", "content": {"application/json": {"schema": error}}},
        "500": {"description": "internal error", "content": {"application/json": {"schema": error}}},
        "503": {"description": "store unavailable or shutting down", "content": {"application/json": {"schema": error}}}
    });
    let with_errors = |ok: Json| {
        let mut r = err_responses.clone();
        if let (Json::Object(m), Json::Object(okm)) = (&mut r, ok) {
            m.extend(okm);
        }
        r
    };
    let ix = json!({"$ref": "#/components/schemas/Interaction"});
    let id_param = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ixn interaction server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST facade of the ixn protocol. Every request needs `Authorization: Bearer <api key>`; the key's application decides the tenant and which requests are allowed. The WebSocket protocol (GET /v1/ws) carries the same requests plus pushed events; see docs/protocol.md."
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "name", "message"], "properties": {
                    "code": {"type": "integer", "description": "stable numeric code (42, 83, 107-109 as in the product family; 1000+ ixn's own)"},
                    "name": {"type": "string", "description": "stable snake_case name"},
                    "message": {"type": "string"}}},
                "UserData": {"type": "object", "description": "ordered key-value list: strings, integers, nested objects, or {\"$binary\": base64}", "additionalProperties": true},
                "Submit": {"type": "object", "additionalProperties": false, "required": ["media_type"], "properties": {
                    "queue": {"type": "string"}, "media_type": {"type": "string"}, "type": {"type": "string"},
                    "subtype": {"type": "string"}, "priority": {"type": "integer"}, "service_objective": {"type": "integer"},
                    "user_data": {"$ref": "#/components/schemas/UserData"}, "external_id": {"type": "string"},
                    "parent_id": {"type": "string"}, "interaction_id": {"type": "string"},
                    "received_at": {"type": "string", "format": "date-time"}, "scheduled_at": {"type": "string", "format": "date-time"},
                    "is_online": {"type": "boolean"},
                    "workbin": {"type": "object", "properties": {"name": {"type": "string"}, "owner": {"type": "string"}}, "required": ["name"]}}},
                "Interaction": {"type": "object", "required": ["id", "tenant", "media_type", "state", "priority", "submitted_by", "submit_seq", "submitted_at"], "properties": {
                    "id": {"type": "string"}, "tenant": {"type": "string"}, "media_type": {"type": "string"},
                    "type": {"type": "string"}, "subtype": {"type": "string"}, "queue": {"type": "string"},
                    "workbin": {"type": "string"}, "workbin_owner": {"type": "string"},
                    "state": {"type": "string", "enum": ["queued", "routing", "delivering", "handling", "stopped"]},
                    "is_online": {"type": "boolean"}, "is_locked": {"type": "boolean"}, "is_held": {"type": "boolean"},
                    "parent_id": {"type": "string"}, "external_id": {"type": "string"}, "priority": {"type": "integer"},
                    "service_objective": {"type": "integer"}, "submitted_by": {"type": "string"}, "assigned_to": {"type": "string"},
                    "submit_seq": {"type": "integer"},
                    "received_at": {"type": "string", "format": "date-time"}, "submitted_at": {"type": "string", "format": "date-time"},
                    "placed_in_queue_at": {"type": "string", "format": "date-time"}, "moved_to_queue_at": {"type": "string", "format": "date-time"},
                    "delivered_at": {"type": "string", "format": "date-time"}, "assigned_at": {"type": "string", "format": "date-time"},
                    "held_at": {"type": "string", "format": "date-time"}, "scheduled_at": {"type": "string", "format": "date-time"},
                    "completed_at": {"type": "string", "format": "date-time"}, "abandoned_at": {"type": "string", "format": "date-time"},
                    "user_data": {"$ref": "#/components/schemas/UserData"}}},
                "Queue": {"type": "object", "required": ["name", "depth", "in_progress"], "properties": {
                    "name": {"type": "string"}, "depth": {"type": "integer"}, "in_progress": {"type": "integer"}}}
            }
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/health/live": {"get": {"summary": "The process is up", "security": [], "responses": {"200": {"description": "ok"}}}},
            "/health/ready": {"get": {"summary": "Store loaded and writable", "security": [], "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {"200": {"description": "text exposition format"}}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI document"}}}},
            "/v1/ws": {"get": {"summary": "WebSocket protocol (upgrade); register with RequestRegisterClient", "security": [], "responses": {"101": {"description": "switching protocols"}}}},
            "/v1/interactions": {"post": {"summary": "RequestSubmit", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Submit"}}}},
                "responses": with_errors(json!({"201": {"description": "created", "content": {"application/json": {"schema": ix}}}}))}},
            "/v1/interactions/{id}": {"get": {"summary": "The interaction (live or history)", "parameters": id_param,
                "responses": with_errors(json!({"200": {"description": "the interaction", "content": {"application/json": {"schema": ix}}}}))}},
            "/v1/interactions/{id}/stop": {"post": {"summary": "RequestStopProcessing", "parameters": id_param,
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"reason": {"type": "object", "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}}}}}}},
                "responses": with_errors(json!({"200": {"description": "stopped", "content": {"application/json": {"schema": ix}}}}))}},
            "/v1/queues": {"get": {"summary": "Queues of the tenant with their depth",
                "responses": with_errors(json!({"200": {"description": "queues", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Queue"}}}}}}))}},
            "/v1/requests": {"post": {"summary": "Any protocol request (same JSON as over the WebSocket; reference_id optional)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["request"], "properties": {"request": {"type": "string", "enum": Request::NAMES}}}}}},
                "responses": with_errors(json!({"200": {"description": "the protocol answer (EventAck, EventPulledInteractions, …)", "content": {"application/json": {"schema": {"type": "object"}}}}}))}}
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented() {
        let doc = super::openapi_document();
        for (method, path) in crate::http::PATHS {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing from openapi.json"
            );
        }
        assert_eq!(
            doc["paths"].as_object().map(|m| m.len()),
            Some(crate::http::PATHS.len())
        );
    }
}
