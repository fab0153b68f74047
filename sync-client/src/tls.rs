//! `wss://`: TCP, then TLS (rustls with the `ring` provider), then the WebSocket handshake.
//!
//! The client opens the TCP connection and runs the TLS handshake itself rather than through
//! tokio-tungstenite's TLS features, so that a handshake failure arrives as a rustls error it
//! can classify (a certificate the client does not trust is not worth retrying; a reset is)
//! and the crypto provider is chosen here, not by whichever crate enables a default first.
//!
//! Trust: the operating system's roots (through `rustls-native-certs`, read once per client)
//! unless [`ClientConfig::tls_system_roots`](crate::ClientConfig::tls_system_roots) is off,
//! plus the certificates of
//! [`ClientConfig::tls_roots_pem`](crate::ClientConfig::tls_roots_pem) (a private CA, or a
//! self-signed server certificate in development).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::client::{ClientConfig, ConnectError};

/// The byte stream under the WebSocket: plain TCP (`ws://`) or TLS over TCP (`wss://`).
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The rustls configuration for `config`: system roots (unless turned off) plus the extra PEM
/// roots. Fails if the extra roots do not parse or no root is left to trust.
pub(crate) fn client_config(
    config: &ClientConfig,
) -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    let mut roots = RootCertStore::empty();
    if config.tls_system_roots {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(%error, "a system root certificate store could not be read");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "system root certificates");
    }
    if let Some(pem) = &config.tls_roots_pem {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConnectError::RootCertificates(e.to_string()))?;
        if certs.is_empty() {
            return Err(ConnectError::RootCertificates(
                "tls_roots_pem holds no CERTIFICATE block".into(),
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ConnectError::RootCertificates(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(ConnectError::RootCertificates(
            "no root certificate to trust: the system has none readable and tls_roots_pem is empty"
                .into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// Runs the TLS handshake over `tcp` for `host`.
pub(crate) async fn handshake(
    tcp: TcpStream,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Stream, ConnectError> {
    // `[::1]` in a URL is `::1` to the name check.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_owned())
        .map_err(|e| ConnectError::InvalidUrl(format!("{host} is not a TLS server name: {e}")))?;
    match TlsConnector::from(config).connect(name, tcp).await {
        Ok(stream) => Ok(Stream::Tls(Box::new(stream))),
        Err(error) => Err(classify(error)),
    }
}

/// A rustls error inside the I/O error is the server's certificate or its TLS refused; any
/// other I/O error is the network's.
fn classify(error: io::Error) -> ConnectError {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return ConnectError::Network(format!("TLS handshake: {error}"));
    };
    match tls {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            ConnectError::Certificate(tls.to_string())
        }
        other => ConnectError::Tls(other.to_string()),
    }
}
