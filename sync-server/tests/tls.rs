//! TLS: clients over `wss://` with a certificate the test generates (rcgen), the plain
//! endpoints over HTTPS on the same port, certificate reload without restart, typed client
//! errors instead of silent retries, and handshakes that fail without costing a slot.

// Test helpers: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crdt_core::MapId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::{parse_http_response, start_server};
use sync_client::{Client, ClientConfig, ConnectError, Status};
use sync_server::TlsFiles;
use sync_server::metrics::Reject;
use sync_server::server::Server;
use sync_server::storage::SqliteStorage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// A test certificate authority.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// Writes a server certificate for `names` signed by `ca` to `dir`; returns the files.
fn server_cert(ca: &Ca, names: &[&str], dir: &Path) -> TlsFiles {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    // Key first: a poll between the two writes sees a mismatch, which must be harmless.
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    files
}

async fn tls_server(dir: &Path, files: TlsFiles) -> Server<SqliteStorage> {
    start_server(dir, |config| {
        config.tls = Some(files);
        config.tls_reload_interval = Duration::from_millis(100);
    })
    .await
}

fn wss(addr: SocketAddr) -> String {
    format!("wss://{addr}/sync")
}

fn client_trusting(addr: SocketAddr, ca: Option<&Ca>) -> Client {
    Client::start(ClientConfig {
        tls_roots_pem: ca.map(|ca| ca.pem.clone()),
        backoff_base: Duration::from_millis(20),
        ..ClientConfig::new(wss(addr))
    })
}

/// A TLS handshake with the server trusting only `ca_pem`, as `name`.
async fn handshake(
    addr: SocketAddr,
    name: &str,
    ca_pem: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// GET over HTTPS; returns the status and body.
async fn https_get(addr: SocketAddr, path: &str, ca_pem: &str) -> (u16, String) {
    let mut stream = handshake(addr, "127.0.0.1", ca_pem).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    // Ends with close_notify: a clean end of stream, not a truncation error.
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await;
    assert!(matches!(read, Ok(Ok(_))), "{read:?}");
    parse_http_response(&response)
}

fn cert_dir(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    certs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sync_over_tls_with_a_custom_ca_and_the_endpoints_answer_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    let files = server_cert(&ca, &["127.0.0.1", "localhost"], &cert_dir(dir.path()));
    let server = tls_server(dir.path(), files).await;
    let addr = server.local_addr();

    let writer = client_trusting(addr, Some(&ca));
    let reader = client_trusting(addr, Some(&ca));
    let written = writer.open("notes").unwrap();
    let seen = reader.open("notes").unwrap();
    assert!(
        writer.wait_connected(WAIT).await,
        "{:?}",
        writer.last_error()
    );
    written
        .edit(|d| d.set(MapId::ROOT, "title", "over TLS"))
        .unwrap();
    assert_eq!(written.wait_saved(WAIT).await, Ok(()));
    assert!(
        seen.wait_until(WAIT, |d| d
            .get(MapId::ROOT, "title")
            .is_ok_and(|v| v.is_some()))
            .await
    );
    assert_eq!(writer.last_error(), None);

    // The plain endpoints, over TLS on the same port.
    assert_eq!(
        https_get(addr, "/healthz", &ca.pem).await,
        (200, "ok\n".into())
    );
    let (status, metrics) = https_get(addr, "/metrics", &ca.pem).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("connections"), "{metrics}");
    // The status page shows the cap in force (derived from the descriptor limit).
    let (status, page) = https_get(addr, "/", &ca.pem).await;
    assert_eq!(status, 200);
    assert!(page.contains("(cap "), "{page}");
    // Plain HTTP on the TLS port gets no answer.
    assert_eq!(support::http_get(addr, "/healthz").await.0, 0);

    writer.close().await;
    reader.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_typed_error_not_a_silent_retry() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    // Valid for "localhost" only, while clients connect to 127.0.0.1.
    let files = server_cert(&ca, &["localhost"], &cert_dir(dir.path()));
    let server = tls_server(dir.path(), files).await;
    let addr = server.local_addr();

    for (client, what) in [
        (client_trusting(addr, None), "unknown issuer"),
        (client_trusting(addr, Some(&ca)), "another name"),
    ] {
        let mut status = Status::Disconnected;
        for _ in 0..100 {
            status = client.status();
            if matches!(status, Status::Failed(_)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            matches!(status, Status::Failed(ConnectError::Certificate(_))),
            "{what}: {status:?}"
        );
        let error = client.last_error().unwrap();
        assert!(error.is_permanent() && error.to_string().contains("certificate"));
        println!("{what}: {error}");
        client.close().await;
    }
    // Each client tried once, then stopped: no retry loop hammering the server.
    let failed = server.metrics().rejected_count(Reject::BadHandshake);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.metrics().rejected_count(Reject::BadHandshake),
        failed
    );
    assert!(failed <= 2, "{failed} failed handshakes for two clients");

    // `reconnect` tries again (here failing the same way).
    let client = client_trusting(addr, None);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !matches!(client.status(), Status::Failed(_)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = server.metrics().rejected_count(Reject::BadHandshake);
    client.reconnect();
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.metrics().rejected_count(Reject::BadHandshake) == before
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        server.metrics().rejected_count(Reject::BadHandshake),
        before + 1
    );
    client.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_reloads_when_its_files_change_and_a_bad_pair_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let certs = cert_dir(dir.path());
    let (first, second) = (ca("first CA"), ca("second CA"));
    let files = server_cert(&first, &["127.0.0.1"], &certs);
    let server = tls_server(dir.path(), files.clone()).await;
    let addr = server.local_addr();
    assert!(handshake(addr, "127.0.0.1", &first.pem).await.is_ok());
    assert!(handshake(addr, "127.0.0.1", &second.pem).await.is_err());

    // Renewal: new files, no signal; the poll picks them up.
    server_cert(&second, &["127.0.0.1"], &certs);
    let mut renewed = false;
    for _ in 0..100 {
        if handshake(addr, "127.0.0.1", &second.pem).await.is_ok() {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(renewed, "the new certificate was not served");
    assert!(handshake(addr, "127.0.0.1", &first.pem).await.is_err());
    // A client connected before the renewal would have kept its session; new ones trust it.
    let client = client_trusting(addr, Some(&second));
    let connected = client.wait_connected(WAIT).await;
    assert!(connected);
    client.close().await;
    // A broken renewal (garbage certificate) is refused, and the old key stays in service.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    assert!(server.reload_tls().is_err());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(handshake(addr, "127.0.0.1", &second.pem).await.is_ok());
    // A key that does not match the certificate is refused too.
    let other = server_cert(&first, &["127.0.0.1"], &cert_dir(&dir.path().join("other")));
    std::fs::copy(&other.key, &files.key).unwrap();
    server_cert(
        &second,
        &["127.0.0.1"],
        &cert_dir(&dir.path().join("third")),
    );
    std::fs::copy(dir.path().join("third/certs/cert.pem"), &files.cert).unwrap();
    let error = server.reload_tls().unwrap_err();
    assert!(error.to_string().contains("match"), "{error}");
    assert!(handshake(addr, "127.0.0.1", &second.pem).await.is_ok());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_tls_handshakes_are_bounded_in_time_and_take_no_slot() {
    let dir = tempfile::tempdir().unwrap();
    let stranger = ca("stranger");
    let ca = ca("test CA");
    let files = server_cert(&ca, &["127.0.0.1"], &cert_dir(dir.path()));
    let server = start_server(dir.path(), |config| {
        config.tls = Some(files);
        config.limits.handshake_timeout = Duration::from_secs(1);
        config.limits.max_connections = 2;
    })
    .await;
    let addr = server.local_addr();

    // Silent clients, clients speaking plain HTTP, clients not trusting the server: more of
    // them than there are slots.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    for _ in 0..4 {
        assert_eq!(support::http_get(addr, "/healthz").await.0, 0);
        assert!(handshake(addr, "127.0.0.1", &stranger.pem).await.is_err());
    }
    // The silent ones are closed once the handshake time is over.
    let start = std::time::Instant::now();
    for stream in &mut silent {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.metrics().connections.load(Relaxed), 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.metrics().rejected_count(Reject::BadHandshake) < 12
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.metrics().rejected_count(Reject::BadHandshake), 12);

    // Both slots are still free.
    let a = client_trusting(addr, Some(&ca));
    let b = client_trusting(addr, Some(&ca));
    assert!(a.wait_connected(WAIT).await && b.wait_connected(WAIT).await);
    assert_eq!(server.metrics().connections.load(Relaxed), 2);
    a.close().await;
    b.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_tls_from_its_flags_and_reloads_on_sighup() {
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let certs = cert_dir(dir.path());
    let (first, second) = (ca("first CA"), ca("second CA"));
    let files = server_cert(&first, &["127.0.0.1"], &certs);
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_sync-server"))
        .args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&files.cert)
        .arg("--tls-key")
        .arg(&files.key)
        // Only the signal may trigger the reload here.
        .args(["--tls-reload-secs", "3600"])
        .env("SYNC_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if handshake(addr, "127.0.0.1", &first.pem).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the TLS server did not start");
    assert_eq!(https_get(addr, "/healthz", &first.pem).await.0, 200);

    server_cert(&second, &["127.0.0.1"], &certs);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        handshake(addr, "127.0.0.1", &first.pem).await.is_ok(),
        "reloaded without a signal"
    );
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut reloaded = false;
    for _ in 0..100 {
        if handshake(addr, "127.0.0.1", &second.pem).await.is_ok() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Still running (SIGHUP did not kill it) and serving the new certificate.
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(reloaded, "SIGHUP did not reload the certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_to_a_plain_server_is_a_tls_error_not_a_retry_loop() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let client = client_trusting(server.local_addr(), Some(&ca("unused")));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !matches!(client.status(), Status::Failed(_)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        matches!(client.status(), Status::Failed(ConnectError::Tls(_))),
        "{:?}",
        client.status()
    );
    println!("{}", client.last_error().unwrap());
    client.close().await;
    server.shutdown().await;
}
