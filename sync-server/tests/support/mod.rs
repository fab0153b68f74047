//! Helpers shared by the server tests: in-process servers on loopback ports, raw WebSocket
//! connections that speak the frames directly, and waiting with timeouts.

// Test helpers: a failure here is a failed test, so unwrap is the right tool.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sync_protocol::{Frame, WIRE_VERSION};
use sync_server::Config;
use sync_server::server::Server;
use sync_server::storage::SqliteStorage;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Raw = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const SECRET: &str = "test secret, long enough for HS256";

/// A server on a free loopback port storing in `dir`, with `tweak` applied to the defaults.
pub async fn start_server(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Server<SqliteStorage> {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    tweak(&mut config);
    config.validate().unwrap();
    let storage = Arc::new(SqliteStorage::open(dir).unwrap());
    Server::bind(config, storage).await.unwrap()
}

/// The same server again on a given address (after a restart).
pub async fn restart_server(
    dir: &Path,
    addr: SocketAddr,
    tweak: impl FnOnce(&mut Config),
) -> Server<SqliteStorage> {
    start_server(dir, |config| {
        config.listen = addr;
        tweak(config);
    })
    .await
}

pub fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/sync")
}

/// A raw WebSocket connection, no Hello yet.
pub async fn raw_connect(addr: SocketAddr) -> Raw {
    let (socket, _) = tokio_tungstenite::connect_async(url(addr)).await.unwrap();
    socket
}

/// A raw connection past the handshake (panics unless welcomed).
pub async fn raw_session(addr: SocketAddr, token: Option<String>) -> Raw {
    let mut socket = raw_connect(addr).await;
    send(
        &mut socket,
        &Frame::Hello {
            min_version: WIRE_VERSION,
            max_version: WIRE_VERSION,
            token,
            agent: "test".into(),
        },
    )
    .await;
    match next_frame(&mut socket).await {
        Some(Frame::Welcome { .. }) => socket,
        other => panic!("expected Welcome, got {other:?}"),
    }
}

pub async fn send(socket: &mut Raw, frame: &Frame) {
    socket
        .send(Message::Binary(frame.encode().into()))
        .await
        .unwrap();
}

/// The next frame, skipping control messages; `None` when the connection closed or nothing
/// came within 5 s.
pub async fn next_frame(socket: &mut Raw) -> Option<Frame> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .ok()??;
        match message {
            Ok(Message::Binary(bytes)) => return Some(Frame::decode(&bytes).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Frames until one matches `pick` (or `None` after a close or 5 s of silence).
pub async fn frame_where(socket: &mut Raw, mut pick: impl FnMut(&Frame) -> bool) -> Option<Frame> {
    loop {
        let frame = next_frame(socket).await?;
        if pick(&frame) {
            return Some(frame);
        }
    }
}

/// Whether the server closed the connection within 5 s (frames before the close are ignored).
pub async fn closed(socket: &mut Raw) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Plain HTTP GET over a fresh TCP connection; returns the status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    parse_http_response(&response)
}

/// The status code and body of a raw HTTP response (status 0 if there is none).
pub fn parse_http_response(response: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}
