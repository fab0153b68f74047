//! The background task: connect (TLS for `wss://`), handshake, subscribe, exchange changes; on
//! a failure wait (backoff with full jitter) and start over, except after a failure retrying
//! cannot fix (an untrusted certificate, an invalid URL: [`ConnectError::is_permanent`]),
//! which stops the task until [`Client::reconnect`](crate::Client::reconnect). Every reconnect re-announces each document's
//! version, so the sync sessions recompute exactly what each side lacks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sync_protocol::client::{DocUpdate, PRESENCE_TTL_MS};
use sync_protocol::{ErrorCode, Frame, Reassembler, WIRE_VERSION, split_into_fragments};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::backoff::Backoff;
use crate::client::{ConnectError, Shared, Status};
use crate::document::DocEntry;
use crate::error::DocSyncError;
use crate::events::DocEvent;
use crate::tls::{self, Stream};

type Socket = WebSocketStream<Stream>;

/// Time for TCP, TLS, the upgrade and the Welcome.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest frame after reassembling fragments taken from the server, and the most bytes of
/// unfinished fragmented frames held at once.
const MAX_MESSAGE: usize = 256 << 20;

/// Time for the close frame on [`Client::close`](crate::Client::close).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(shared.config.backoff_base, shared.config.backoff_max);
    let mut closing = shared.closing.subscribe();
    // Built at the first `wss://` attempt (reading the system roots takes a while), kept.
    let mut tls = None;
    loop {
        if *closing.borrow() {
            break;
        }
        let outcome = tokio::select! {
            outcome = connect(&shared, &mut tls) => outcome,
            _ = closing.changed() => break,
        };
        match outcome {
            Ok((socket, max_frame)) => {
                backoff.reset();
                *shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let _ = shared.status.send_replace(Status::Connected);
                let mut connection = Connection {
                    shared: Arc::clone(&shared),
                    socket,
                    max_frame,
                    next_batch: 1,
                    next_fragment: 0,
                    // Unfinished frames hold at most MAX_MESSAGE bytes together; a server that
                    // sends more is refused, not buffered.
                    reassembler: Reassembler::new(MAX_MESSAGE, 4, 60_000),
                    sent_token: shared
                        .token
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone(),
                };
                let end = connection.serve().await;
                tracing::info!(reason = %end, "disconnected");
                for entry in shared.entries() {
                    entry.lock().sync.disconnected();
                }
                if end == "closing" {
                    break;
                }
                let _ = shared.status.send_replace(Status::Disconnected);
            }
            Err(error) => {
                *shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.clone());
                match error {
                    ConnectError::Unauthorized(why) => {
                        tracing::warn!(%why, "the server refused the token");
                        let _ = shared.status.send_replace(Status::Unauthorized(why));
                    }
                    error if error.is_permanent() => {
                        // Retrying cannot fix these; stop, say so, and wait to be told.
                        tracing::error!(%error, url = %shared.config.url, "cannot connect; not retrying until Client::reconnect");
                        let _ = shared.status.send_replace(Status::Failed(error));
                        tokio::select! {
                            _ = shared.retry.notified() => {}
                            _ = closing.changed() => break,
                        }
                        // Trust may have changed (new system roots): rebuild it.
                        tls = None;
                        backoff.reset();
                        continue;
                    }
                    error => {
                        tracing::debug!(%error, "connecting failed");
                        let _ = shared.status.send_replace(Status::Disconnected);
                    }
                }
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = closing.changed() => break,
        }
    }
}

/// Where a `ws://` or `wss://` URL points.
struct Target {
    request: Request,
    /// Host as written in the URL (IPv6 in brackets).
    host: String,
    port: u16,
    secure: bool,
}

fn target(url: &str) -> Result<Target, ConnectError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectError::InvalidUrl(format!("{url}: {e}")))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(sync_protocol::SUBPROTOCOL),
    );
    let uri = request.uri();
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => {
            return Err(ConnectError::InvalidUrl(format!(
                "{url}: the scheme must be ws:// or wss://"
            )));
        }
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ConnectError::InvalidUrl(format!("{url}: no host")))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    Ok(Target {
        request,
        host,
        port,
        secure,
    })
}

/// A WebSocket handshake error: HTTP refusals and I/O are the network's (retried), the rest
/// is protocol.
fn handshake_error(error: WsError) -> ConnectError {
    match error {
        WsError::Http(response) => ConnectError::Network(format!(
            "the server answered HTTP {} to the upgrade",
            response.status()
        )),
        WsError::Io(error) => ConnectError::Network(error.to_string()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            ConnectError::Network("closed during the handshake".into())
        }
        other => ConnectError::Protocol(other.to_string()),
    }
}

/// Connects (TCP, TLS for `wss://`, upgrade) and completes the Hello/Welcome handshake;
/// returns the socket and the server's maximum frame size.
async fn connect(
    shared: &Shared,
    tls: &mut Option<Arc<rustls::ClientConfig>>,
) -> Result<(Socket, usize), ConnectError> {
    let Target {
        request,
        host,
        port,
        secure,
    } = target(&shared.config.url)?;
    let tls = match (secure, tls.as_ref()) {
        (false, _) => None,
        (true, Some(config)) => Some(Arc::clone(config)),
        (true, None) => Some(Arc::clone(tls.insert(tls::client_config(&shared.config)?))),
    };
    let attempt = async {
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((bare_host, port))
            .await
            .map_err(|e| ConnectError::Network(format!("{host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let stream = match tls {
            Some(config) => tls::handshake(tcp, &host, config).await?,
            None => Stream::Plain(tcp),
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let (mut socket, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(handshake_error)?;
        let token = shared
            .token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let hello = Frame::Hello {
            min_version: WIRE_VERSION,
            max_version: WIRE_VERSION,
            token,
            agent: shared.config.agent.clone(),
        };
        socket
            .send(Message::Binary(hello.encode().into()))
            .await
            .map_err(|e| ConnectError::Network(e.to_string()))?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    return match Frame::decode(&bytes) {
                        Ok(Frame::Welcome { max_frame, .. }) => Ok((socket, max_frame as usize)),
                        Ok(Frame::Error {
                            code: ErrorCode::Unauthorized,
                            message,
                            ..
                        }) => Err(ConnectError::Unauthorized(message)),
                        Ok(Frame::Error { code, message, .. }) => {
                            Err(ConnectError::Protocol(format!("{code}: {message}")))
                        }
                        Ok(other) => Err(ConnectError::Protocol(format!(
                            "expected Welcome, got {}",
                            other.kind()
                        ))),
                        Err(error) => Err(ConnectError::Protocol(error.to_string())),
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(ConnectError::Network(error.to_string())),
                None => {
                    return Err(ConnectError::Network("closed during the handshake".into()));
                }
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(ConnectError::Network("handshake timed out".into())))
}

struct Connection {
    shared: Arc<Shared>,
    socket: Socket,
    max_frame: usize,
    next_batch: u64,
    next_fragment: u32,
    reassembler: Reassembler,
    sent_token: Option<String>,
}

impl Connection {
    /// Runs until the connection fails or the client closes; returns why.
    async fn serve(&mut self) -> String {
        let mut closing = self.shared.closing.subscribe();
        let mut tick = tokio::time::interval(Duration::from_millis(PRESENCE_TTL_MS / 3));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = Arc::clone(&self.shared);
        loop {
            // Checked here, not only as a change: `close` may have been called between the
            // status turning Connected and the subscription above.
            if *closing.borrow() {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.close(None)).await;
                return "closing".into();
            }
            if let Err(error) = self.push().await {
                return error;
            }
            tokio::select! {
                incoming = self.socket.next() => match incoming {
                    Some(Ok(Message::Binary(bytes))) => {
                        if let Err(error) = self.receive(bytes).await {
                            return error;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return format!("server closed: {}", frame.map(|f| f.reason.to_string()).unwrap_or_default());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return error.to_string(),
                    None => return "connection lost".into(),
                },
                _ = shared.wake.notified() => {}
                _ = tick.tick() => self.refresh_presence(),
                _ = closing.changed() => {}
            }
        }
    }

    /// Sends what is due: subscriptions, local changes, presence, a refreshed token.
    async fn push(&mut self) -> Result<(), String> {
        let token = self
            .shared
            .token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if token != self.sent_token {
            if let Some(token) = token.clone() {
                self.send(&Frame::Auth { token }).await?;
            }
            self.sent_token = token;
        }
        let now = self.shared.now_ms();
        for entry in self.shared.entries() {
            let frames = {
                let mut state = entry.lock();
                let state = &mut *state;
                state.sync.poll(&state.document, now, &mut self.next_batch)
            };
            for frame in frames {
                self.send(&frame).await?;
            }
        }
        Ok(())
    }

    /// Marks live presence for resending before it expires on the other side.
    fn refresh_presence(&mut self) {
        for entry in self.shared.entries() {
            entry.lock().sync.refresh_presence();
        }
    }

    async fn receive(&mut self, bytes: Bytes) -> Result<(), String> {
        let frame = Frame::decode(&bytes).map_err(|e| format!("bad frame from the server: {e}"))?;
        // One path for whole and fragmented frames: what comes back is never a fragment, so a
        // peer cannot make this recurse (a nested fragment is refused as an error). The client
        // relays nothing, so it passes no encoding.
        let now_ms = self.shared.now_ms();
        let frame = match self.reassembler.receive(frame, Vec::new(), now_ms) {
            Ok(Some(whole)) => whole.frame,
            Ok(None) => return Ok(()),
            Err(error) => return Err(format!("bad fragments from the server: {error}")),
        };
        let Some(entry) = frame.doc().and_then(|doc| {
            self.shared
                .docs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(doc)
                .cloned()
        }) else {
            return match frame {
                Frame::Error { code, message, .. } => {
                    Err(format!("server error: {code}: {message}"))
                }
                _ => Ok(()),
            };
        };
        self.apply(&entry, frame);
        entry.notify();
        Ok(())
    }

    /// Applies a document frame (the answers it calls for go out with the next push).
    fn apply(&mut self, entry: &DocEntry, frame: Frame) {
        let mut state = entry.lock();
        let state = &mut *state;
        entry.events.tidy(&mut state.document);
        let now = self.shared.now_ms();
        for update in state.sync.apply(frame, &mut state.document, now) {
            match update {
                DocUpdate::Subscribed(_) => {
                    // A new attempt: what was refused before is sent again.
                    state.refusal = None;
                }
                DocUpdate::Changed => {
                    if let Err(error) = state.save() {
                        tracing::error!(%error, "saving the document locally failed");
                        entry.report(state, error);
                    }
                }
                DocUpdate::Acknowledged { batch, version } => {
                    entry
                        .events
                        .record(DocEvent::Acknowledged { batch, version });
                }
                DocUpdate::Refused { batch, status } => {
                    tracing::warn!(doc = %entry.id, batch, %status, "the server refused a batch");
                    let error = DocSyncError::BatchRefused { batch, status };
                    if !status.is_retryable() {
                        state.refusal = Some(error.clone());
                    }
                    entry.report(state, error);
                }
                DocUpdate::Error { code, message } => {
                    tracing::warn!(doc = %entry.id, %code, %message, "server error");
                    let error = DocSyncError::Server { code, message };
                    if code == ErrorCode::PermissionDenied {
                        state.refusal = Some(error.clone());
                    }
                    entry.report(state, error);
                }
                DocUpdate::BadUpdate(error) => {
                    tracing::warn!(doc = %entry.id, %error, "a server update was refused; resubscribing");
                    entry.report(state, DocSyncError::RemoteUpdate(error));
                }
                DocUpdate::Presence => {}
            }
        }
        entry.check_saved(state);
    }

    async fn send(&mut self, frame: &Frame) -> Result<(), String> {
        self.next_fragment = self.next_fragment.wrapping_add(1);
        for message in split_into_fragments(frame, self.max_frame, self.next_fragment) {
            self.socket
                .send(Message::Binary(message.into()))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
