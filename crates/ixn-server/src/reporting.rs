//! Reporting delivery inside the server: starts the configured event loggers at start, feeds
//! them the events of every committed batch, and serves their status
//! (`GET /v1/reporting/status`, admin applications only).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ixn_config::ClientKind;
use ixn_protocol::{ErrorCode, ProtocolError};

use crate::startup::Shared;

/// Path of the status endpoint.
pub(crate) const STATUS_PATH: &str = "/v1/reporting/status";

/// Routes of this module, merged into the server's router.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route(STATUS_PATH, get(status))
}

/// Only an admin application's bearer key may read the status.
fn authorize_admin(shared: &Shared, headers: &HeaderMap) -> Result<(), ProtocolError> {
    let ctx = crate::rest::authenticate(shared, headers)?;
    if ctx.kind != ClientKind::Admin {
        return Err(ProtocolError::new(
            ErrorCode::RequestNotAllowed,
            "the reporting status is for admin applications",
        ));
    }
    Ok(())
}

async fn status(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize_admin(&shared, &headers) {
        return crate::rest::error_response(&e);
    }
    axum::Json(shared.reporting.status()).into_response()
}
