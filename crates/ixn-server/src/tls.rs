//! The listener: plain HTTP, or HTTPS when `tls-cert` and `tls-key` are configured. The same
//! listener serves the REST facade and the WebSocket protocol (`wss://` under TLS).

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use ixn_config::ServerConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Binds and starts serving; returns the bound address, whether TLS is on, and the task.
pub(crate) async fn serve(
    cfg: &ServerConfig,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, bool, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            let handle = axum_server::Handle::new();
            let std_listener = listener.into_std()?;
            let server = axum_server::from_tcp_rustls(std_listener, tls).handle(handle.clone());
            let task = tokio::spawn(async move {
                let stopper = handle.clone();
                tokio::spawn(async move {
                    let _ = shutdown.changed().await;
                    stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                });
                if let Err(e) = server.serve(app.into_make_service()).await {
                    tracing::error!(error = %e, "TLS listener failed");
                }
            });
            Ok((addr, true, task))
        }
        _ => {
            // Answers and events are small frames written as they are ready; without
            // TCP_NODELAY a frame that follows another still unacknowledged waits for the
            // peer's delayed ACK (up to 40 ms on Linux).
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let task = tokio::spawn(async move {
                let stop = async move {
                    let _ = shutdown.changed().await;
                };
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                    tracing::error!(error = %e, "listener failed");
                }
            });
            Ok((addr, false, task))
        }
    }
}
