//! `webhook`: each batch as one HTTP POST of a JSON array of envelopes, signed with
//! `X-Ixn-Signature: sha256=<hex HMAC-SHA256 of the body>` when a secret is set. A batch is
//! delivered when the receiver answers 2xx; other answers and network errors are retried with
//! doubling waits (`max-retries`, `retry-backoff`), then the logger's own retry takes over.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use ixn_config::WebhookOptions;
use ixn_protocol::ReportingEvent;

use crate::sink::{Sink, SinkError};

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-ixn-signature";

#[derive(Debug)]
pub struct WebhookSink {
    opts: WebhookOptions,
    client: Option<reqwest::Client>,
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

impl WebhookSink {
    pub fn new(opts: &WebhookOptions) -> WebhookSink {
        WebhookSink {
            opts: opts.clone(),
            client: None,
        }
    }

    fn client(&mut self) -> Result<reqwest::Client, SinkError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        // The TLS stack needs a process-wide crypto provider (the server installs the same one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(u64::from(self.opts.timeout_ms)))
            .build()
            .map_err(|e| SinkError::new(format!("webhook client: {e}")))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn post_once(&mut self, body: &[u8], first: u64, last: u64) -> Result<(), String> {
        let client = self.client().map_err(|e| e.message)?;
        let mut req = client
            .post(&self.opts.url)
            .header("content-type", "application/json")
            .header("x-ixn-first-seq", first.to_string())
            .header("x-ixn-last-seq", last.to_string())
            .body(body.to_vec());
        if let Some(secret) = &self.opts.secret {
            req = req.header(SIGNATURE_HEADER, signature(secret, body));
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!("webhook answered {}", resp.status())),
            Err(e) => Err(format!("webhook request failed: {e}")),
        }
    }
}

#[async_trait::async_trait]
impl Sink for WebhookSink {
    async fn deliver(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        let body = serde_json::to_vec(events).map_err(|e| SinkError::new(format!("encoding: {e}")))?;
        let first = events.first().map_or(0, |e| e.seq);
        let last = events.last().map_or(0, |e| e.seq);
        let mut delay = Duration::from_millis(u64::from(self.opts.retry_backoff_ms));
        let mut attempt = 0;
        loop {
            match self.post_once(&body, first, last).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= self.opts.max_retries => return Err(SinkError::new(e)),
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "webhook delivery failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                    attempt += 1;
                }
            }
        }
    }

    async fn reset(&mut self) {
        self.client = None;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // HMAC-SHA256, key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
