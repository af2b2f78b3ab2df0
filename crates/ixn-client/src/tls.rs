//! TLS settings for `https://` and `wss://` servers.

use std::sync::Arc;

use crate::ClientError;

/// Which certificates to trust: the system's roots, plus an extra CA (PEM), e.g. the
/// self-signed certificate of a test or private deployment.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    pub extra_ca_pem: Option<Vec<u8>>,
}

impl TlsOptions {
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if let Some(pem) = &self.extra_ca_pem {
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| ClientError::Connection(format!("reading CA certificate: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| ClientError::Connection(format!("adding CA certificate: {e}")))?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Connection(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
