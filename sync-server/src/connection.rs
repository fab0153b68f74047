//! One client's WebSocket session: the Hello/Welcome handshake, authentication, limits, and the
//! routing of each document's frames to that document's actor.
//!
//! One task per connection reads frames, writes what the documents queued for it, pings, and
//! enforces its deadlines. Writes have a timeout, so a client that stops reading is closed
//! instead of holding memory (its bounded queue fills first, and documents flag it as slow).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sync_protocol::{AckStatus, ErrorCode, Frame, Reassembler, WIRE_VERSION, split_encoded};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::auth::{Authenticator, Grant, unix_now};
use crate::config::Limits;
use crate::document::actor::SlowConsumer;
use crate::document::{ConnHandle, ConnId, DocCommand, PresenceFrame, Registry};
use crate::limits::TokenBucket;
use crate::metrics::{Metrics, Reject};
use crate::storage::Storage;

/// Longest document id accepted.
pub const MAX_DOC_ID: usize = 512;

/// Longest a presence entry may live without refresh, whatever the client asks.
const MAX_PRESENCE_TTL_MS: u64 = 5 * 60 * 1000;

/// A write that takes longer than this means the client does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Consecutive rate-limit refusals after which the connection is closed.
const MAX_RATE_VIOLATIONS: u32 = 64;

/// What every connection shares.
pub struct ServerContext<S> {
    /// The live documents.
    pub registry: Registry<S>,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Token verification.
    pub auth: Authenticator,
    /// Becomes `true` when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// Why a connection ended, for the log line.
#[derive(Debug)]
enum End {
    ClientClosed,
    Error(ErrorCode, String),
    Slow,
    Idle,
    ShuttingDown,
    Transport(String),
}

struct Subscription {
    sender: mpsc::Sender<DocCommand>,
    access: sync_protocol::Access,
}

struct Session<S, T> {
    id: ConnId,
    context: Arc<ServerContext<S>>,
    socket: WebSocketStream<T>,
    grant: Grant,
    subscriptions: HashMap<String, Subscription>,
    handle: ConnHandle,
    reassembler: Reassembler,
    next_fragment_id: u32,
    messages: TokenBucket,
    bytes: TokenBucket,
    rate_violations: u32,
    last_seen: Instant,
    started: Instant,
}

/// Runs a connection whose WebSocket upgrade is done, until it ends. `deadline` bounds the
/// Hello handshake.
pub async fn serve<S: Storage, T: AsyncRead + AsyncWrite + Unpin>(
    mut socket: WebSocketStream<T>,
    context: Arc<ServerContext<S>>,
    id: ConnId,
    deadline: Instant,
) {
    let metrics = Arc::clone(&context.metrics);
    let grant =
        match tokio::time::timeout_at(deadline.into(), handshake(&mut socket, &context)).await {
            Ok(Ok(grant)) => grant,
            Ok(Err((code, message))) => {
                close_with_error(&mut socket, code, message, &metrics).await;
                return;
            }
            Err(_) => {
                metrics.rejected(Reject::BadHandshake);
                close_with_error(
                    &mut socket,
                    ErrorCode::Invalid,
                    "no Hello frame within the handshake timeout".into(),
                    &metrics,
                )
                .await;
                return;
            }
        };
    tracing::Span::current().record("subject", grant.subject.as_str());
    tracing::info!("connection authenticated");
    let limits = &context.limits;
    let (outbox, mut inbox) = mpsc::channel::<Bytes>(limits.outgoing_queue);
    let slow = Arc::new(SlowConsumer::default());
    let now = Instant::now();
    let mut session = Session {
        id,
        handle: ConnHandle::new(id, outbox, Arc::clone(&slow), Arc::clone(&metrics)),
        socket,
        grant,
        subscriptions: HashMap::new(),
        reassembler: Reassembler::new(limits.max_message, 4, 30_000),
        next_fragment_id: 0,
        messages: TokenBucket::new(
            f64::from(limits.messages_per_second),
            2.0 * f64::from(limits.messages_per_second),
            now,
        ),
        bytes: TokenBucket::new(
            limits.bytes_per_second as f64,
            2.0 * limits.bytes_per_second as f64,
            now,
        ),
        rate_violations: 0,
        last_seen: now,
        started: now,
        context: Arc::clone(&context),
    };
    let end = session.run(&mut inbox, &slow).await;
    // Queued frames will never be written; keep the gauge honest.
    inbox.close();
    let mut dropped = 0;
    while inbox.try_recv().is_ok() {
        dropped += 1;
    }
    metrics.outgoing_queue_depth.fetch_sub(dropped, Relaxed);
    session.leave_all().await;
    match &end {
        End::ClientClosed => tracing::info!("connection closed by the client"),
        End::Error(code, message) => tracing::info!(%code, message, "connection closed"),
        other => tracing::info!(reason = ?other, "connection closed"),
    }
    session.close(end).await;
}

/// Reads the Hello, negotiates the version, verifies the token, answers Welcome.
async fn handshake<S: Storage, T: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<T>,
    context: &ServerContext<S>,
) -> Result<Grant, (ErrorCode, String)> {
    let metrics = &context.metrics;
    let bytes = loop {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => break bytes,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(_)) => {
                metrics.rejected(Reject::Invalid);
                return Err((ErrorCode::Invalid, "expected a binary Hello frame".into()));
            }
            Some(Err(error)) => {
                metrics.rejected(Reject::Invalid);
                return Err((ErrorCode::Invalid, format!("transport error: {error}")));
            }
            None => return Err((ErrorCode::Invalid, "closed before Hello".into())),
        }
    };
    metrics.messages_in.fetch_add(1, Relaxed);
    metrics.bytes_in.fetch_add(bytes.len() as u64, Relaxed);
    let frame = Frame::decode(&bytes).map_err(|error| {
        let code = match error {
            sync_protocol::FrameError::UnsupportedVersion { .. } => {
                metrics.rejected(Reject::UnsupportedVersion);
                ErrorCode::UnsupportedVersion
            }
            _ => {
                metrics.rejected(Reject::Invalid);
                ErrorCode::Invalid
            }
        };
        (code, format!("the first frame does not decode: {error}"))
    })?;
    let Frame::Hello {
        min_version,
        max_version,
        token,
        agent,
    } = frame
    else {
        metrics.rejected(Reject::Invalid);
        return Err((ErrorCode::Invalid, "the first frame must be Hello".into()));
    };
    if !(min_version..=max_version).contains(&WIRE_VERSION) {
        metrics.rejected(Reject::UnsupportedVersion);
        return Err((
            ErrorCode::UnsupportedVersion,
            format!(
                "the client speaks wire versions {min_version}..={max_version}; this server speaks {WIRE_VERSION}"
            ),
        ));
    }
    let grant = context.auth.verify(token.as_deref()).map_err(|error| {
        metrics.rejected(Reject::Unauthorized);
        (ErrorCode::Unauthorized, error.to_string())
    })?;
    tracing::debug!(agent = %agent.chars().take(128).collect::<String>(), "hello");
    let limits = &context.limits;
    let welcome = Frame::Welcome {
        version: WIRE_VERSION,
        server: concat!("sync-server/", env!("CARGO_PKG_VERSION")).into(),
        max_frame: limits.max_frame.min(u32::MAX as usize) as u32,
        max_message: limits.max_message.min(u32::MAX as usize) as u32,
        max_documents: limits.max_documents_per_connection.min(u32::MAX as usize) as u32,
    };
    let bytes = welcome.encode();
    metrics.messages_out.fetch_add(1, Relaxed);
    metrics.bytes_out.fetch_add(bytes.len() as u64, Relaxed);
    socket
        .send(Message::Binary(bytes.into()))
        .await
        .map_err(|e| (ErrorCode::Invalid, format!("transport error: {e}")))?;
    Ok(grant)
}

/// Sends an Error frame and a close frame, best effort.
async fn close_with_error<T: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<T>,
    code: ErrorCode,
    message: String,
    metrics: &Metrics,
) {
    let frame = Frame::Error {
        code,
        doc: None,
        message: message.clone(),
    }
    .encode();
    metrics.messages_out.fetch_add(1, Relaxed);
    metrics.bytes_out.fetch_add(frame.len() as u64, Relaxed);
    let close = CloseFrame {
        code: close_code(code),
        reason: message.chars().take(100).collect::<String>().into(),
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = socket.send(Message::Binary(frame.into())).await;
        let _ = socket.close(Some(close)).await;
    })
    .await;
}

fn close_code(code: ErrorCode) -> CloseCode {
    match code {
        ErrorCode::ShuttingDown => CloseCode::Away,
        ErrorCode::TooLarge => CloseCode::Size,
        ErrorCode::Internal => CloseCode::Error,
        ErrorCode::Overloaded => CloseCode::Again,
        _ => CloseCode::Policy,
    }
}

impl<S: Storage, T: AsyncRead + AsyncWrite + Unpin> Session<S, T> {
    async fn run(&mut self, inbox: &mut mpsc::Receiver<Bytes>, slow: &SlowConsumer) -> End {
        let limits = self.context.limits.clone();
        let mut shutdown = self.context.shutdown.clone();
        // A shutdown that began during this connection's handshake counts too.
        if *shutdown.borrow_and_update() {
            return End::ShuttingDown;
        }
        let mut ping = tokio::time::interval_at(
            (Instant::now() + limits.ping_interval).into(),
            limits.ping_interval,
        );
        loop {
            let expiry = self.grant.expires_at.map(|exp| {
                let left = exp.saturating_sub(unix_now());
                Instant::now() + Duration::from_secs(left)
            });
            tokio::select! {
                incoming = self.socket.next() => match incoming {
                    Some(Ok(Message::Binary(bytes))) => {
                        self.last_seen = Instant::now();
                        if let Err(end) = self.on_message(bytes).await {
                            return end;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                        self.last_seen = Instant::now();
                    }
                    Some(Ok(Message::Text(_))) => {
                        self.context.metrics.rejected(Reject::Invalid);
                        return End::Error(ErrorCode::Invalid, "text messages are not part of the protocol".into());
                    }
                    Some(Ok(Message::Close(_))) | None => return End::ClientClosed,
                    Some(Err(error)) => {
                        use tokio_tungstenite::tungstenite::Error as WsError;
                        if let WsError::Capacity(_) = error {
                            self.context.metrics.rejected(Reject::TooLarge);
                            return End::Error(ErrorCode::TooLarge, format!("{error}; fragment larger frames"));
                        }
                        return End::Transport(error.to_string());
                    }
                },
                outgoing = inbox.recv() => {
                    let Some(frame) = outgoing else { return End::Slow };
                    if let Err(end) = self.write_queued(frame, inbox).await {
                        return end;
                    }
                }
                _ = ping.tick() => {
                    if self.last_seen.elapsed() > limits.idle_timeout {
                        self.context.metrics.rejected(Reject::IdleTimeout);
                        return End::Idle;
                    }
                    if let Err(end) = self.ping().await {
                        return end;
                    }
                }
                _ = slow.flagged() => {
                    return End::Slow;
                }
                _ = shutdown.changed() => {
                    return End::ShuttingDown;
                }
                _ = sleep_until_opt(expiry) => {
                    self.context.metrics.rejected(Reject::Unauthorized);
                    return End::Error(ErrorCode::Unauthorized, "the token expired; reconnect with a fresh one".into());
                }
            }
        }
    }

    /// One binary message from the client.
    async fn on_message(&mut self, bytes: Bytes) -> Result<(), End> {
        let metrics = Arc::clone(&self.context.metrics);
        metrics.messages_in.fetch_add(1, Relaxed);
        metrics.bytes_in.fetch_add(bytes.len() as u64, Relaxed);
        let now = Instant::now();
        let within_rate = self.messages.take(1.0, now) && self.bytes.take(bytes.len() as f64, now);
        let frame = match Frame::decode(&bytes) {
            Ok(frame) => frame,
            Err(error) => {
                metrics.rejected(Reject::Invalid);
                return Err(End::Error(
                    ErrorCode::Invalid,
                    format!("a frame does not decode: {error}"),
                ));
            }
        };
        if !within_rate {
            metrics.rejected(Reject::RateLimited);
            self.rate_violations += 1;
            if self.rate_violations > MAX_RATE_VIOLATIONS {
                return Err(End::Error(
                    ErrorCode::RateLimited,
                    "the connection keeps exceeding its rate limit".into(),
                ));
            }
            return match frame {
                Frame::Changes { doc, batch, .. } => {
                    self.ack(doc, batch, AckStatus::RateLimited).await
                }
                other => {
                    self.error(
                        ErrorCode::RateLimited,
                        other.doc().map(str::to_owned),
                        "rate limit exceeded; slow down",
                    )
                    .await
                }
            };
        }
        self.rate_violations = 0;
        self.on_frame(frame, bytes).await
    }

    async fn on_frame(&mut self, frame: Frame, raw: Bytes) -> Result<(), End> {
        match frame {
            Frame::Fragment {
                id,
                index,
                count,
                bytes,
            } => {
                let now_ms = self.started.elapsed().as_millis() as u64;
                match self.reassembler.push(id, index, count, bytes, now_ms) {
                    Ok(None) => Ok(()),
                    Ok(Some(whole)) => match Frame::decode(&whole) {
                        Ok(Frame::Fragment { .. }) | Err(_) => {
                            self.context.metrics.rejected(Reject::Invalid);
                            Err(End::Error(
                                ErrorCode::Invalid,
                                "a reassembled frame does not decode".into(),
                            ))
                        }
                        Ok(frame) => Box::pin(self.on_frame(frame, Bytes::from(whole))).await,
                    },
                    Err(error) => {
                        let (reason, code) = match error {
                            sync_protocol::FragmentError::TooLarge => {
                                (Reject::TooLarge, ErrorCode::TooLarge)
                            }
                            _ => (Reject::Invalid, ErrorCode::Invalid),
                        };
                        self.context.metrics.rejected(reason);
                        Err(End::Error(code, error.to_string()))
                    }
                }
            }
            Frame::Auth { token } => self.refresh(&token).await,
            Frame::Subscribe { doc, version } => self.subscribe(doc, version).await,
            Frame::Unsubscribe { doc } => {
                if let Some(subscription) = self.subscriptions.remove(&doc) {
                    let command = DocCommand::Unsubscribe { conn: self.id };
                    self.tell(&subscription.sender, command).await;
                }
                Ok(())
            }
            Frame::Changes {
                doc,
                batch,
                update,
                version,
            } => {
                let Some(subscription) = self.subscriptions.get(&doc) else {
                    return self.not_subscribed(doc).await;
                };
                if !subscription.access.can_write() {
                    self.context.metrics.rejected(Reject::PermissionDenied);
                    return self.ack(doc, batch, AckStatus::PermissionDenied).await;
                }
                let command = DocCommand::Changes {
                    conn: self.id,
                    batch,
                    update,
                    version,
                    received: Instant::now(),
                };
                match subscription.sender.try_send(command) {
                    Ok(()) => {
                        self.count_queued();
                        Ok(())
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.ack(doc, batch, AckStatus::Overloaded).await
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => self.document_gone(doc).await,
                }
            }
            Frame::Have { doc, version } => {
                let Some(subscription) = self.subscriptions.get(&doc) else {
                    return self.not_subscribed(doc).await;
                };
                let command = DocCommand::Have {
                    conn: self.id,
                    version,
                };
                self.tell(&subscription.sender, command).await;
                Ok(())
            }
            Frame::Presence {
                doc,
                replica,
                clock,
                ttl_ms,
                state,
            } => {
                let Some(subscription) = self.subscriptions.get(&doc) else {
                    return self.not_subscribed(doc).await;
                };
                let command = DocCommand::Presence {
                    conn: self.id,
                    presence: PresenceFrame {
                        frame: raw,
                        replica,
                        clock,
                        ttl_ms: ttl_ms.min(MAX_PRESENCE_TTL_MS),
                        leaving: state.is_empty(),
                    },
                };
                // Presence is ephemeral: under pressure it is dropped, never queued up.
                if subscription.sender.try_send(command).is_ok() {
                    self.count_queued();
                }
                Ok(())
            }
            Frame::Hello { .. }
            | Frame::Welcome { .. }
            | Frame::Authorized { .. }
            | Frame::Subscribed { .. }
            | Frame::Ack { .. }
            | Frame::Error { .. } => {
                self.context.metrics.rejected(Reject::Invalid);
                Err(End::Error(
                    ErrorCode::Invalid,
                    format!("a client may not send a {} frame here", frame.kind()),
                ))
            }
        }
    }

    async fn subscribe(
        &mut self,
        doc: String,
        version: crdt_core::VersionVector,
    ) -> Result<(), End> {
        if doc.is_empty() || doc.len() > MAX_DOC_ID {
            self.context.metrics.rejected(Reject::Invalid);
            return self
                .error(
                    ErrorCode::Invalid,
                    None,
                    "document ids are 1 to 512 bytes long",
                )
                .await;
        }
        let Some(access) = self.grant.access(&doc) else {
            self.context.metrics.rejected(Reject::PermissionDenied);
            return self
                .error(
                    ErrorCode::PermissionDenied,
                    Some(doc),
                    "the token does not grant access to this document",
                )
                .await;
        };
        if !self.subscriptions.contains_key(&doc)
            && self.subscriptions.len() >= self.context.limits.max_documents_per_connection
        {
            self.context.metrics.rejected(Reject::TooManyDocuments);
            return self
                .error(
                    ErrorCode::TooManyDocuments,
                    Some(doc),
                    "this connection subscribes to the maximum number of documents",
                )
                .await;
        }
        // An actor may be exiting (idle) just as we ask: then the reply is dropped and a fresh
        // actor is started by asking the registry again.
        for _attempt in 0..3 {
            let sender = self.context.registry.sender(&doc);
            let (reply, replied) = oneshot::channel();
            let command = DocCommand::Subscribe {
                conn: self.handle.clone(),
                version: version.clone(),
                access,
                reply,
            };
            if sender.send(command).await.is_err() {
                continue;
            }
            self.count_queued();
            if replied.await.is_ok() {
                self.subscriptions
                    .insert(doc, Subscription { sender, access });
                return Ok(());
            }
        }
        self.error(
            ErrorCode::Internal,
            Some(doc),
            "the document could not be loaded; try again later",
        )
        .await
    }

    /// A fresh token: adopt it and adjust every subscription to what it grants.
    async fn refresh(&mut self, token: &str) -> Result<(), End> {
        let grant = match self.context.auth.verify(Some(token)) {
            Ok(grant) => grant,
            Err(error) => {
                self.context.metrics.rejected(Reject::Unauthorized);
                return self
                    .error(ErrorCode::Unauthorized, None, &error.to_string())
                    .await;
            }
        };
        let mut revoked = Vec::new();
        let mut changed = Vec::new();
        for (doc, subscription) in &mut self.subscriptions {
            match grant.access(doc) {
                None => revoked.push(doc.clone()),
                Some(access) if access != subscription.access => {
                    subscription.access = access;
                    changed.push((subscription.sender.clone(), access));
                }
                Some(_) => {}
            }
        }
        for (sender, access) in changed {
            let command = DocCommand::SetAccess {
                conn: self.id,
                access,
            };
            self.tell(&sender, command).await;
        }
        self.grant = grant;
        for doc in revoked {
            if let Some(subscription) = self.subscriptions.remove(&doc) {
                let command = DocCommand::Unsubscribe { conn: self.id };
                self.tell(&subscription.sender, command).await;
            }
            self.error(
                ErrorCode::PermissionDenied,
                Some(doc),
                "the new token does not grant this document; unsubscribed",
            )
            .await?;
        }
        let expires_at = self.grant.expires_at;
        self.send_frame(Frame::Authorized { expires_at }).await
    }

    async fn document_gone(&mut self, doc: String) -> Result<(), End> {
        self.subscriptions.remove(&doc);
        self.error(
            ErrorCode::Internal,
            Some(doc),
            "the document was unloaded; subscribe again",
        )
        .await
    }

    async fn not_subscribed(&mut self, doc: String) -> Result<(), End> {
        self.error(
            ErrorCode::NotSubscribed,
            Some(doc),
            "subscribe to the document first",
        )
        .await
    }

    async fn ack(&mut self, doc: String, batch: u64, status: AckStatus) -> Result<(), End> {
        let version = crdt_core::VersionVector::new();
        self.send_frame(Frame::Ack {
            doc,
            batch,
            status,
            version,
        })
        .await
    }

    async fn error(
        &mut self,
        code: ErrorCode,
        doc: Option<String>,
        message: &str,
    ) -> Result<(), End> {
        self.send_frame(Frame::Error {
            code,
            doc,
            message: message.to_owned(),
        })
        .await
    }

    async fn send_frame(&mut self, frame: Frame) -> Result<(), End> {
        self.write(Bytes::from(frame.encode())).await
    }

    /// Writes an encoded frame, fragmenting it if it exceeds the frame limit.
    async fn write(&mut self, frame: Bytes) -> Result<(), End> {
        let mut messages = Vec::new();
        self.push_pieces(frame, &mut messages);
        self.write_messages(messages).await
    }

    /// Writes `first` and whatever else is queued (up to a bound) with one flush: one system
    /// call for a burst of relayed frames instead of one per frame.
    async fn write_queued(
        &mut self,
        first: Bytes,
        inbox: &mut mpsc::Receiver<Bytes>,
    ) -> Result<(), End> {
        const MAX_BURST: usize = 64;
        let mut messages = Vec::new();
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            self.context
                .metrics
                .outgoing_queue_depth
                .fetch_sub(1, Relaxed);
            self.push_pieces(frame, &mut messages);
            if messages.len() < MAX_BURST {
                next = inbox.try_recv().ok();
            }
        }
        self.write_messages(messages).await
    }

    /// Appends the WebSocket messages that carry `frame`: itself, or its fragments when it
    /// exceeds the frame limit.
    fn push_pieces(&mut self, frame: Bytes, messages: &mut Vec<Bytes>) {
        let max_frame = self.context.limits.max_frame;
        if frame.len() <= max_frame {
            messages.push(frame);
            return;
        }
        self.next_fragment_id = self.next_fragment_id.wrapping_add(1);
        messages.extend(
            split_encoded(frame.to_vec(), max_frame, self.next_fragment_id)
                .into_iter()
                .map(Bytes::from),
        );
    }

    /// Feeds `messages` to the socket and flushes once, within the write timeout.
    async fn write_messages(&mut self, messages: Vec<Bytes>) -> Result<(), End> {
        let metrics = Arc::clone(&self.context.metrics);
        let socket = &mut self.socket;
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            for message in messages {
                let len = message.len() as u64;
                socket.feed(Message::Binary(message)).await?;
                metrics.messages_out.fetch_add(1, Relaxed);
                metrics.bytes_out.fetch_add(len, Relaxed);
            }
            socket.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(End::Transport(error.to_string())),
            Err(_) => Err(End::Slow),
        }
    }

    async fn ping(&mut self) -> Result<(), End> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(Message::Ping(Bytes::new())))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(End::Transport(error.to_string())),
            Err(_) => Err(End::Slow),
        }
    }

    /// Sends a command to a document's actor, waiting for room in its queue, and counts it in
    /// the queue-depth gauge if it was taken.
    async fn tell(&self, sender: &mpsc::Sender<DocCommand>, command: DocCommand) {
        if sender.send(command).await.is_ok() {
            self.count_queued();
        }
    }

    fn count_queued(&self) {
        self.context
            .metrics
            .document_queue_depth
            .fetch_add(1, Relaxed);
    }

    /// Unsubscribes from every document (the connection is ending).
    async fn leave_all(&mut self) {
        let subscriptions: Vec<Subscription> = self.subscriptions.drain().map(|(_, s)| s).collect();
        for subscription in subscriptions {
            let command = DocCommand::Unsubscribe { conn: self.id };
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                self.tell(&subscription.sender, command),
            )
            .await;
        }
    }

    async fn close(mut self, end: End) {
        let metrics = Arc::clone(&self.context.metrics);
        match end {
            End::ClientClosed => {}
            End::Transport(why) => tracing::debug!(%why, "transport error"),
            End::Slow => {
                // The client does not read: a close frame would not get through either.
                metrics.rejected(Reject::SlowConsumer);
            }
            End::Idle => {
                close_with_error(
                    &mut self.socket,
                    ErrorCode::Invalid,
                    "idle timeout".into(),
                    &metrics,
                )
                .await
            }
            End::ShuttingDown => {
                close_with_error(
                    &mut self.socket,
                    ErrorCode::ShuttingDown,
                    "the server is shutting down".into(),
                    &metrics,
                )
                .await
            }
            End::Error(code, message) => {
                close_with_error(&mut self.socket, code, message, &metrics).await
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
