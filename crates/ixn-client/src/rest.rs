//! REST facade client.

use ixn_protocol::{Envelope, ErrorBody, InteractionView, QueueInfo, Reason, Request, ServerMessage, Submit};
use serde::de::DeserializeOwned;

use crate::{ClientError, TlsOptions};

/// A client of the REST facade, authenticated by an API key.
#[derive(Clone, Debug)]
pub struct RestClient {
    base: String,
    api_key: String,
    http: reqwest::Client,
}

impl RestClient {
    pub fn new(base_url: &str, api_key: &str, tls: &TlsOptions) -> Result<RestClient, ClientError> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls.client_config()?).clone())
            .build()
            .map_err(|e| ClientError::Connection(e.to_string()))?;
        Ok(RestClient {
            base: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            http,
        })
    }

    async fn read<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Connection(e.to_string()))?;
        if !status.is_success() {
            return match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => Err(ClientError::Server(e)),
                Err(_) => Err(ClientError::Unexpected(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes)
                ))),
            };
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected(e.to_string()))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        req.bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| ClientError::Connection(e.to_string()))
    }

    /// `GET` of any JSON resource of the server (e.g. `/v1/reporting/status`).
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Self::read(self.send(self.http.get(self.url(path))).await?).await
    }

    /// `POST /v1/interactions`.
    pub async fn submit(&self, submit: &Submit) -> Result<InteractionView, ClientError> {
        Self::read(
            self.send(self.http.post(self.url("/v1/interactions")).json(submit))
                .await?,
        )
        .await
    }

    /// `GET /v1/interactions/{id}`.
    pub async fn get(&self, id: &str) -> Result<InteractionView, ClientError> {
        Self::read(
            self.send(self.http.get(self.url(&format!("/v1/interactions/{id}"))))
                .await?,
        )
        .await
    }

    /// `POST /v1/interactions/{id}/stop`.
    pub async fn stop(&self, id: &str, reason: Option<Reason>) -> Result<InteractionView, ClientError> {
        let body = serde_json::json!({ "reason": reason });
        let req = self
            .http
            .post(self.url(&format!("/v1/interactions/{id}/stop")))
            .json(&body);
        Self::read(self.send(req).await?).await
    }

    /// `GET /v1/queues`.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>, ClientError> {
        Self::read(self.send(self.http.get(self.url("/v1/queues"))).await?).await
    }

    /// `POST /v1/requests`: any protocol request; an EventError becomes [`ClientError::Server`].
    pub async fn request(&self, request: Request) -> Result<ServerMessage, ClientError> {
        let body = Envelope {
            reference_id: 1,
            request,
        }
        .to_json();
        let resp = self
            .send(self.http.post(self.url("/v1/requests")).json(&body))
            .await?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Connection(e.to_string()))?;
        match serde_json::from_slice::<ServerMessage>(&bytes) {
            Ok(ServerMessage::EventError { error, .. }) => Err(ClientError::Server(error)),
            Ok(m) => Ok(m),
            Err(_) => match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => Err(ClientError::Server(e)),
                Err(_) => Err(ClientError::Unexpected(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes)
                ))),
            },
        }
    }

    /// `GET /health/ready` succeeded.
    pub async fn ready(&self) -> bool {
        matches!(self.http.get(self.url("/health/ready")).send().await, Ok(r) if r.status().is_success())
    }
}
