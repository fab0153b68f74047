//! TLS: the server's certificate, loaded from PEM files and swapped without a restart.
//!
//! Built on rustls with the `ring` provider (pure Rust and assembly, no cmake; `aws-lc-rs`, the
//! rustls default, needs cmake and a C toolchain and builds several times slower). The TLS
//! handshake itself happens in [`server`](crate::server) before any HTTP parsing, bounded by the
//! handshake timeout, and a connection only counts against `max_connections` once upgraded, so
//! failed or slow handshakes take no slot.
//!
//! # Reloading
//!
//! The rustls configuration never changes; its certificate comes from a [`CertResolver`]
//! holding the current certified key, which [`CertReloader::reload`] replaces. The server's
//! reload task calls it on SIGHUP and when either file's modification time or length changes
//! (polled every `tls_reload_interval`: renewal tools such as certbot replace files without
//! signalling anyone). A pair that does not load (half-written, key not matching the
//! certificate) is logged and the old key stays: a bad renewal never takes the server off the
//! air, and handshakes in progress keep the key they started with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The crypto provider every TLS configuration of the server uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads a certificate chain and its private key from PEM files, checking that they match.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let invalid = |path: &Path, why: String| TlsError::Invalid {
        path: path.to_path_buf(),
        why,
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(invalid(cert, "no CERTIFICATE block".into()));
    }
    let private_key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| invalid(key, e.to_string()))?;
    CertifiedKey::from_der(chain, private_key, provider).map_err(|e| {
        invalid(
            key,
            format!("does not load or does not match the certificate: {e}"),
        )
    })
}

/// Hands rustls the current certificate; [`CertReloader`] replaces it.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a complete key (replacing it is one assignment).
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// What identifies a version of the files without reading them.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The certificate files, the resolver serving them, and what was last loaded.
#[derive(Debug)]
pub struct CertReloader {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    loaded: Mutex<(Stamp, Stamp)>,
}

impl CertReloader {
    /// Loads the files once (failing if they do not load: a server never starts without a
    /// certificate) and returns the reloader with the rustls server configuration using it.
    pub fn new(
        cert: &Path,
        key: &Path,
    ) -> Result<(Arc<CertReloader>, Arc<rustls::ServerConfig>), TlsError> {
        let provider = provider();
        let stamps = (stamp(cert), stamp(key));
        let first = load_certified_key(cert, key, &provider)?;
        let resolver = Arc::new(CertResolver {
            current: RwLock::new(Arc::new(first)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
        // WebSocket and the plain endpoints are HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let reloader = Arc::new(CertReloader {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            resolver,
            loaded: Mutex::new(stamps),
        });
        Ok((reloader, Arc::new(config)))
    }

    /// Loads the files again and, if they load, serves them to new handshakes. On error the
    /// previous certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamps = (stamp(&self.cert), stamp(&self.key));
        // Remember the attempt either way, so that a broken pair is reported once, not at
        // every poll; the next change of either file tries again.
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = stamps;
        let key = load_certified_key(&self.cert, &self.key, &self.provider)?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(())
    }

    /// Whether either file changed (modification time or length) since the last load attempt.
    pub fn changed(&self) -> bool {
        let now = (stamp(&self.cert), stamp(&self.key));
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) != now
    }

    /// Reloads and logs the outcome (`why`: what triggered it).
    pub fn reload_and_log(&self, why: &str) {
        match self.reload() {
            Ok(()) => {
                tracing::info!(cert = %self.cert.display(), trigger = why, "TLS certificate reloaded")
            }
            Err(error) => tracing::error!(
                %error,
                trigger = why,
                "TLS certificate reload failed; still serving the previous certificate"
            ),
        }
    }
}

/// Why TLS could not be set up or a certificate not loaded.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not valid PEM of the expected kind, or the key does not fit the certificate.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the configuration.
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TlsError::Invalid { path, why } => write!(f, "{}: {why}", path.display()),
            TlsError::Config(error) => write!(f, "TLS configuration refused: {error}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { source, .. } => Some(source),
            TlsError::Config(error) => Some(error),
            TlsError::Invalid { .. } => None,
        }
    }
}
