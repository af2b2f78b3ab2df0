//! A small STOMP 1.2 client connection over TCP, optionally TLS: CONNECT/CONNECTED, writing
//! frames and reading them back. It knows nothing of reporting events; the sink and the tests
//! build on it.
//!
//! Heart-beating is not negotiated (`heart-beat:0,0`): the sink holds a connection only while it
//! delivers, and a connection that died while idle fails the next delivery, which reconnects.

use std::io;
use std::path::Path;
use std::sync::Arc;

use ixn_config::StompOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::frame::{Decoded, Frame, FrameError, decode};

/// Why a STOMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum StompError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("malformed frame from the broker: {0}")]
    Frame(#[from] FrameError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the broker closed the connection")]
    Closed,
    /// An ERROR frame: its `message` header and body.
    #[error("the broker answered ERROR: {message}{}", detail(.body))]
    Broker { message: String, body: String },
    #[error("unexpected {0} frame")]
    Unexpected(String),
}

fn detail(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(" ({body})")
    }
}

impl StompError {
    fn from_error_frame(frame: &Frame) -> StompError {
        StompError::Broker {
            message: frame.header("message").unwrap_or("(no message)").to_owned(),
            body: String::from_utf8_lossy(&frame.body).trim().to_owned(),
        }
    }
}

/// The byte stream under a connection.
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
            Transport::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }

    async fn read_some(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read_buf(buf).await,
            Transport::Tls(stream) => stream.read_buf(buf).await,
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Transport::Plain(stream) => stream.shutdown().await,
            Transport::Tls(stream) => stream.shutdown().await,
        };
    }
}

/// One open STOMP session.
pub struct StompConnection {
    transport: Transport,
    /// Bytes received and not yet decoded.
    received: Vec<u8>,
    /// The CONNECTED frame's `server` header, for logs.
    server: Option<String>,
}

impl std::fmt::Debug for StompConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tls = matches!(self.transport, Transport::Tls(_));
        f.debug_struct("StompConnection")
            .field("tls", &tls)
            .field("server", &self.server)
            .finish()
    }
}

impl StompConnection {
    /// Opens the TCP (and TLS) connection and completes the CONNECT handshake.
    pub async fn connect(opts: &StompOptions) -> Result<StompConnection, StompError> {
        let tcp = TcpStream::connect(&opts.address).await?;
        tcp.set_nodelay(true)?;
        let host = host_part(&opts.address);
        let transport = if opts.tls {
            let server_name = opts.tls_server_name.as_deref().unwrap_or(host);
            Transport::Tls(Box::new(
                tls_handshake(tcp, server_name, opts.tls_ca_file.as_deref()).await?,
            ))
        } else {
            Transport::Plain(tcp)
        };
        let mut connection = StompConnection {
            transport,
            received: Vec::with_capacity(8 * 1024),
            server: None,
        };
        let mut connect = Frame::new("CONNECT")
            .with_header("accept-version", "1.2")
            .with_header("host", host)
            .with_header("heart-beat", "0,0");
        if let Some(login) = &opts.login {
            connect = connect.with_header("login", login.as_str());
        }
        if let Some(passcode) = &opts.passcode {
            connect = connect.with_header("passcode", passcode.as_str());
        }
        connection.send(&[connect]).await?;
        let answer = connection.read_frame().await?;
        match answer.command.as_str() {
            "CONNECTED" => {
                connection.server = answer.header("server").map(str::to_owned);
                Ok(connection)
            }
            "ERROR" => Err(StompError::from_error_frame(&answer)),
            other => Err(StompError::Unexpected(other.to_owned())),
        }
    }

    /// The broker's `server` header (product and version), when it sent one.
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// Writes the frames in one go.
    pub async fn send(&mut self, frames: &[Frame]) -> Result<(), StompError> {
        let mut bytes = Vec::with_capacity(frames.len() * 512);
        for frame in frames {
            frame.encode(&mut bytes);
        }
        self.transport.write_all(&bytes).await?;
        Ok(())
    }

    /// Reads the next frame, skipping heart-beats. An ERROR frame is returned as a frame; the
    /// caller decides (during CONNECT and deliveries it is an error).
    pub async fn read_frame(&mut self) -> Result<Frame, StompError> {
        loop {
            while let Some((decoded, used)) = decode(&self.received)? {
                self.received.drain(..used);
                if let Decoded::Frame(frame) = decoded {
                    return Ok(frame);
                }
            }
            if self.transport.read_some(&mut self.received).await? == 0 {
                return Err(StompError::Closed);
            }
        }
    }

    /// Subscribes to a destination with automatic acknowledgement (used by consumers and tests).
    pub async fn subscribe(&mut self, destination: &str, id: &str) -> Result<(), StompError> {
        let frame = Frame::new("SUBSCRIBE")
            .with_header("id", id)
            .with_header("destination", destination)
            .with_header("ack", "auto");
        self.send(&[frame]).await
    }

    /// Sends DISCONNECT with a receipt, waits for it, and closes the stream.
    pub async fn disconnect(mut self) -> Result<(), StompError> {
        let frame = Frame::new("DISCONNECT").with_header("receipt", "disconnect");
        self.send(&[frame]).await?;
        loop {
            let frame = self.read_frame().await?;
            if frame.command == "RECEIPT" && frame.header("receipt-id") == Some("disconnect") {
                break;
            }
        }
        self.transport.shutdown().await;
        Ok(())
    }
}

impl StompError {
    /// The ERROR frame as an error, for callers that read frames themselves.
    pub fn broker(frame: &Frame) -> StompError {
        StompError::from_error_frame(frame)
    }
}

/// `host` of `host:port` (brackets of an IPv6 literal removed).
fn host_part(address: &str) -> &str {
    let host = match address.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => address,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

async fn tls_handshake(
    tcp: TcpStream,
    server_name: &str,
    ca_file: Option<&Path>,
) -> Result<TlsStream<TcpStream>, StompError> {
    let config = tls_config(ca_file)?;
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
        .map_err(|e| StompError::Tls(format!("server name {server_name:?}: {e}")))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| StompError::Tls(e.to_string()))
}

/// Trusts the CA certificates of `ca_file` (PEM) when given, the system's roots otherwise.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, StompError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| StompError::Tls(format!("reading {}: {e}", path.display())))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| StompError::Tls(format!("reading {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| StompError::Tls(format!("adding {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(StompError::Tls(format!(
                    "{} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StompError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::host_part;

    #[test]
    fn host_of_address() {
        for (address, host) in [
            ("127.0.0.1:61613", "127.0.0.1"),
            ("broker.example:61614", "broker.example"),
            ("[::1]:61613", "::1"),
            ("broker", "broker"),
        ] {
            assert_eq!(host_part(address), host);
        }
    }
}
