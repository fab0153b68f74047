//! The HTTP side of a connection: reading the request head (bounded in size; the caller bounds
//! the time), the plain endpoints (`/`, `/healthz`, `/readyz`, `/metrics`), and the WebSocket
//! upgrade on `/sync`.
//!
//! Hand-rolled on `httparse` rather than a full HTTP stack: the server answers five GET routes
//! and one upgrade, and owning the read loop is what lets it enforce head-size and time limits
//! before any other work.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The path clients open WebSocket connections on.
pub const SYNC_PATH: &str = "/sync";

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A WebSocket upgrade on [`SYNC_PATH`].
    Upgrade {
        /// `Sec-WebSocket-Key`, for the accept hash.
        key: String,
        /// Whether the client offered [`sync_protocol::SUBPROTOCOL`].
        offers_subprotocol: bool,
    },
    /// A plain GET of a path.
    Get(String),
    /// Anything else (answered 405 or 400).
    Other {
        /// The method.
        method: String,
    },
}

/// Reads and parses one request head. Returns the request and any bytes read past the head
/// (the start of the WebSocket stream, if the client sent it early).
pub async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    max_head: usize,
) -> Result<(Request, Vec<u8>), HttpError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|_| HttpError::Closed)?;
        if read == 0 {
            return Err(HttpError::Closed);
        }
        buffer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buffer) {
            Ok(httparse::Status::Complete(head_len)) => {
                let parsed = interpret(&request)?;
                return Ok((parsed, buffer.split_off(head_len)));
            }
            Ok(httparse::Status::Partial) => {
                if buffer.len() > max_head {
                    return Err(HttpError::HeadTooLarge);
                }
            }
            Err(_) => return Err(HttpError::Malformed),
        }
    }
}

fn interpret(request: &httparse::Request<'_, '_>) -> Result<Request, HttpError> {
    let method = request.method.unwrap_or_default();
    let path = request.path.unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    if method != "GET" {
        return Ok(Request::Other {
            method: method.to_owned(),
        });
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let wants_upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if path != SYNC_PATH || !wants_upgrade {
        return Ok(Request::Get(path.to_owned()));
    }
    if header("sec-websocket-version") != Some("13") {
        return Err(HttpError::BadUpgrade("Sec-WebSocket-Version must be 13"));
    }
    let key = header("sec-websocket-key")
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .ok_or(HttpError::BadUpgrade("missing Sec-WebSocket-Key"))?;
    let offers_subprotocol = header("sec-websocket-protocol")
        .is_some_and(|v| v.split(',').any(|p| p.trim() == sync_protocol::SUBPROTOCOL));
    Ok(Request::Upgrade {
        key: key.to_owned(),
        offers_subprotocol,
    })
}

/// Writes the `101 Switching Protocols` answer to an upgrade.
pub async fn accept_upgrade<S: AsyncWrite + Unpin>(
    stream: &mut S,
    key: &str,
    offers_subprotocol: bool,
) -> std::io::Result<()> {
    let accept = derive_accept_key(key.as_bytes());
    let protocol = if offers_subprotocol {
        format!("Sec-WebSocket-Protocol: {}\r\n", sync_protocol::SUBPROTOCOL)
    } else {
        String::new()
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{protocol}\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await
}

/// Writes a complete response and leaves the connection to be closed.
pub async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await
}

/// Why a request head was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The client closed the connection or it failed mid-head.
    Closed,
    /// The head exceeded the limit.
    HeadTooLarge,
    /// Not HTTP.
    Malformed,
    /// A WebSocket upgrade missing what RFC 6455 requires.
    BadUpgrade(&'static str),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Closed => f.write_str("connection closed during the request head"),
            HttpError::HeadTooLarge => f.write_str("request head too large"),
            HttpError::Malformed => f.write_str("malformed HTTP request"),
            HttpError::BadUpgrade(why) => write!(f, "bad WebSocket upgrade: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<(Request, Vec<u8>), HttpError> {
        let mut reader = bytes;
        read_request(&mut reader, 4096).await
    }

    #[tokio::test]
    async fn routes_and_upgrades_are_recognised() {
        let (request, rest) = parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nextra")
            .await
            .unwrap();
        assert_eq!(request, Request::Get("/metrics".into()));
        assert_eq!(rest, b"extra");
        let upgrade = b"GET /sync?x=1 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: other, crdt-sync.v1\r\n\r\n";
        let (request, _) = parse(upgrade).await.unwrap();
        assert_eq!(
            request,
            Request::Upgrade {
                key: "dGhlIHNhbXBsZSBub25jZQ==".into(),
                offers_subprotocol: true
            }
        );
    }

    #[tokio::test]
    async fn bad_heads_are_refused() {
        assert_eq!(
            parse(b"\x00\x01garbage\r\n\r\n").await.unwrap_err(),
            HttpError::Malformed
        );
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(10_000));
        assert_eq!(
            parse(huge.as_bytes()).await.unwrap_err(),
            HttpError::HeadTooLarge
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n").await.unwrap_err(),
            HttpError::Closed
        );
        let no_key =
            b"GET /sync HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert!(matches!(
            parse(no_key).await.unwrap_err(),
            HttpError::BadUpgrade(_)
        ));
    }
}
