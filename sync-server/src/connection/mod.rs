//! One client's WebSocket session: the Hello/Welcome handshake, authentication, limits, and the
//! routing of each document's frames to that document's actor.
//!
//! One task per connection reads frames, writes what the documents queued for it, pings, and
//! enforces its deadlines. Writes have a timeout, so a client that stops reading is closed
//! instead of holding memory (its bounded queue fills first, and documents flag it as slow).
//!
//! - `handshake`: Hello/Welcome and closing with a reason;
//! - `fragments`: reassembly within the connection's and the server's byte budgets;
//! - `presence`: the presence a connection may hold over all its documents.

mod fragments;
mod handshake;
mod presence;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sync_protocol::{AckStatus, ErrorCode, FragmentError, Frame, FrameError, split_encoded};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use self::fragments::{Intake, IntakeError};
use self::handshake::{close_with_error, handshake};
use self::presence::PresenceLedger;
use crate::auth::{Authenticator, Grant, unix_now};
use crate::budget::BytePool;
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
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Bytes of unfinished fragmented frames, over all connections (`reassembly_total`).
    pub reassembly: Arc<BytePool>,
    /// Becomes `true` when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// The cluster this node belongs to, if any (for the status page).
    pub cluster: Option<crate::cluster::Cluster>,
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
    intake: Intake,
    presence: PresenceLedger,
    next_fragment_id: u32,
    messages: TokenBucket,
    bytes: TokenBucket,
    /// Documents this connection may still cause to be loaded (`document_loads_per_second`).
    loads: TokenBucket,
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
        intake: Intake::new(
            limits.max_message,
            limits.reassembly_per_connection,
            Arc::clone(&context.reassembly),
            Arc::clone(&metrics),
        ),
        presence: PresenceLedger::new(
            limits.presence_entries_per_connection,
            limits.presence_bytes_per_connection,
        ),
        next_fragment_id: 0,
        loads: TokenBucket::new(
            f64::from(limits.document_loads_per_second),
            2.0 * f64::from(limits.document_loads_per_second),
            now,
        ),
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
                let (reason, code) = frame_error_code(&error);
                metrics.rejected(reason);
                return Err(End::Error(
                    code,
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
        let now_ms = self.started.elapsed().as_millis() as u64;
        match self.intake.receive(frame, bytes, now_ms) {
            Ok(Some((frame, raw))) => self.on_frame(frame, raw).await,
            Ok(None) => Ok(()),
            Err(error) => {
                let (reason, code) = intake_error_code(&error);
                metrics.rejected(reason);
                let message = match error {
                    IntakeError::Fragment(error) => error.to_string(),
                    IntakeError::ServerFull => {
                        "the server holds its maximum of unfinished fragmented frames; retry later"
                            .into()
                    }
                };
                Err(End::Error(code, message))
            }
        }
    }

    async fn on_frame(&mut self, frame: Frame, raw: Bytes) -> Result<(), End> {
        match frame {
            Frame::Auth { token } => self.refresh(&token).await,
            Frame::Subscribe { doc, version } => {
                // A document drops a subscriber's presence when it subscribes again.
                self.presence.forget_document(&doc);
                self.subscribe(doc, version).await
            }
            Frame::Unsubscribe { doc } => {
                self.presence.forget_document(&doc);
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
                let ttl_ms = ttl_ms.min(MAX_PRESENCE_TTL_MS);
                let leaving = state.is_empty();
                let admitted = self.presence.admit(
                    &doc,
                    replica,
                    raw.len(),
                    Duration::from_millis(ttl_ms),
                    leaving,
                    Instant::now(),
                );
                if let Err(refusal) = admitted {
                    // Presence is ephemeral: a refused update is dropped (and counted), and the
                    // client's later updates are refused until it withdraws or lets some expire.
                    tracing::debug!(?refusal, %doc, "presence refused");
                    self.context.metrics.rejected(Reject::PresenceLimit);
                    return Ok(());
                }
                let command = DocCommand::Presence {
                    conn: self.id,
                    presence: PresenceFrame {
                        frame: raw,
                        replica,
                        clock,
                        ttl_ms,
                        leaving,
                    },
                };
                // Presence is ephemeral: under pressure it is dropped, never queued up.
                if subscription.sender.try_send(command).is_ok() {
                    self.count_queued();
                }
                Ok(())
            }
            Frame::Hello { .. }
            | Frame::Fragment { .. }
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
        // Loading is what costs memory, so only a subscription that loads the document takes
        // from the load budget; one already loaded (by anyone) is free.
        let now = Instant::now();
        let loads = &mut self.loads;
        let Some(first) = self
            .context
            .registry
            .sender_unless(&doc, || !loads.take(1.0, now))
        else {
            self.context.metrics.rejected(Reject::DocumentLoadRate);
            return self
                .error(
                    ErrorCode::RateLimited,
                    Some(doc),
                    "this connection loads documents faster than allowed; subscribe again later",
                )
                .await;
        };
        // An actor may be exiting (idle) just as we ask: then the reply is dropped and a fresh
        // actor is started by asking the registry again.
        let mut first = Some(first);
        for _attempt in 0..3 {
            let sender = match first.take() {
                Some(sender) => sender,
                None => self.context.registry.sender(&doc),
            };
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
                tracing::info!(%error, "refreshed token refused");
                return self
                    .error(ErrorCode::Unauthorized, None, error.client_message())
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
            self.presence.forget_document(&doc);
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
        self.presence.forget_document(&doc);
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

/// The refusal reason and error code of a frame that does not decode: another wire version is
/// `UnsupportedVersion` whenever it is met, not only in the Hello.
fn frame_error_code(error: &FrameError) -> (Reject, ErrorCode) {
    match error {
        FrameError::UnsupportedVersion { .. } => {
            (Reject::UnsupportedVersion, ErrorCode::UnsupportedVersion)
        }
        _ => (Reject::Invalid, ErrorCode::Invalid),
    }
}

/// The refusal reason and error code of a frame the intake refused.
fn intake_error_code(error: &IntakeError) -> (Reject, ErrorCode) {
    match error {
        IntakeError::ServerFull => (Reject::FragmentBudget, ErrorCode::Overloaded),
        IntakeError::Fragment(FragmentError::OverBudget) => {
            (Reject::FragmentBudget, ErrorCode::TooLarge)
        }
        IntakeError::Fragment(FragmentError::TooLarge) => (Reject::TooLarge, ErrorCode::TooLarge),
        IntakeError::Fragment(FragmentError::Frame(error)) => frame_error_code(error),
        IntakeError::Fragment(_) => (Reject::Invalid, ErrorCode::Invalid),
    }
}
