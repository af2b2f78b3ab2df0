//! The HTTP surface: routes of the REST facade, the WebSocket endpoint, health, metrics and the
//! OpenAPI document, plus configuration apply (shared by REST and WebSocket).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ixn_protocol::{ErrorCode, ProtocolError};
use serde_json::json;
use tokio::sync::oneshot;

use crate::core::CoreMsg;
use crate::rest;
use crate::startup::Shared;

/// Paths served, for the OpenAPI document and its test.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const PATHS: &[(&str, &str)] = &[
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/v1/ws"),
    ("post", "/v1/interactions"),
    ("get", "/v1/interactions/{id}"),
    ("post", "/v1/interactions/{id}/stop"),
    ("get", "/v1/queues"),
    ("post", "/v1/requests"),
];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/ws", get(websocket))
        .route("/v1/interactions", post(rest::submit))
        .route("/v1/interactions/{id}", get(rest::get_interaction))
        .route("/v1/interactions/{id}/stop", post(rest::stop))
        .route("/v1/queues", get(rest::queues))
        .route("/v1/requests", post(rest::request))
        .merge(crate::reporting::routes())
        // Bodies are limited by the handlers themselves, so the error is the protocol's.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

/// Bytes read from a WebSocket at a time (larger messages take several reads).
const WS_READ_BUFFER: usize = 8 * 1024;

async fn websocket(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    // Messages up to max-frame-size are answered; past twice that (abuse) the socket closes.
    let hard_limit = shared.max_frame_size.saturating_mul(2).max(64 * 1024);
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        // The WebSocket layer zeroes its whole read buffer before every read (128 KiB by
        // default); protocol messages are small, so 8 KiB reads cost far less per message.
        .read_buffer_size(WS_READ_BUFFER)
        .on_upgrade(move |socket| crate::session::run(socket, shared))
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let ready = shared.ready.load(Ordering::Relaxed);
    let store_ok = shared.store_ok.load(Ordering::Relaxed);
    let last_error = shared.last_store_error.lock().ok().and_then(|e| e.clone());
    let body = json!({
        "status": if ready && store_ok { "ready" } else { "not_ready" },
        "store": { "engine": shared.store.engine(), "writable": store_ok, "last_error": last_error },
        "loaded_interactions": shared.live_at_start.load(Ordering::Relaxed),
    });
    let status = if ready && store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics() -> Response {
    match crate::metrics_export::handle() {
        Some(h) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable").into_response(),
    }
}

async fn openapi() -> Response {
    axum::Json(rest::openapi_document()).into_response()
}

/// Validates a whole configuration and, unless `dry_run`, applies its business process and
/// settings atomically. The `[server]` section of the running server is kept.
pub(crate) async fn apply_config(
    shared: &Arc<Shared>,
    text: &str,
    dry_run: bool,
) -> Result<(), ProtocolError> {
    let file = shared
        .config_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "request".to_owned());
    let mut config = ixn_config::parse(text, &file)
        .map_err(|e| ProtocolError::new(ErrorCode::InvalidConfiguration, e.to_string()))?;
    if let Some(check) = shared.config_check.get() {
        check(&config)
            .map_err(|e| ProtocolError::new(ErrorCode::InvalidConfiguration, format!("{file}: {e}")))?;
    }
    if dry_run {
        return Ok(());
    }
    let running = shared.config();
    config.server = running.server.clone();
    for app in &shared.extra_applications {
        config = config.with_application(app.clone());
    }
    shared
        .store
        .ensure_custom_properties(&config.process.custom_properties)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "custom-property columns could not be prepared");
            ProtocolError::of(ErrorCode::StoreUnavailable)
        })?;
    let (tx, rx) = oneshot::channel();
    let msg = CoreMsg::ApplyProcess {
        process: Box::new(config.process.clone()),
        settings: Box::new(config.settings.clone()),
        reply: tx,
    };
    shared
        .core
        .send(msg)
        .await
        .map_err(|_| ProtocolError::of(ErrorCode::ShuttingDown))?;
    rx.await.map_err(|_| ProtocolError::of(ErrorCode::ShuttingDown))?;
    shared.kpi.configure(&config.settings);
    shared.set_config(config);
    if let Some(path) = &shared.config_path {
        let tmp = path.with_extension("toml.tmp");
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::error!(error = %e, path = %path.display(), "applied configuration could not be saved");
        }
    }
    tracing::info!("configuration applied");
    Ok(())
}
