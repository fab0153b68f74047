//! The task that owns one live document: it takes commands from connections through a bounded
//! channel, persists what they change, and only then acknowledges and relays.
//!
//! It never waits on a connection: frames go out with `try_send`, and a connection whose queue
//! is full is a slow consumer, dropped from the document and told to close. So no connection can
//! stall a document, and no cycle of waits (deadlock) exists between the two kinds of task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crdt_core::VersionVector;
use sync_protocol::{Access, AckStatus};
use tokio::sync::{Notify, mpsc, oneshot};

use super::presence::PresenceFrame;
use super::state::{ConnId, DocumentLimits, DocumentState, Outbox};
use crate::cluster::Cluster;
use crate::metrics::{Metrics, Reject};
use crate::storage::Storage;

/// What a connection asks of a document's actor.
#[derive(Debug)]
pub enum DocCommand {
    /// Start syncing; `reply` fires once the actor has taken the subscriber (if the actor is
    /// gone instead, the sender is dropped and the connection asks the registry again).
    Subscribe {
        /// The subscribing connection.
        conn: ConnHandle,
        /// The client's version.
        version: VersionVector,
        /// What the client may do.
        access: Access,
        /// Fired when subscribed.
        reply: oneshot::Sender<()>,
    },
    /// Stop syncing (also sent when a connection closes).
    Unsubscribe {
        /// The connection.
        conn: ConnId,
    },
    /// A refreshed token changed what the connection may do.
    SetAccess {
        /// The connection.
        conn: ConnId,
        /// Its new access.
        access: Access,
    },
    /// A client's batch of changes.
    Changes {
        /// The sending connection.
        conn: ConnId,
        /// The client's batch number, echoed in the `Ack`.
        batch: u64,
        /// The encoded update.
        update: Vec<u8>,
        /// The client's version after the batch.
        version: VersionVector,
        /// When the frame arrived (persist latency is measured from here).
        received: Instant,
    },
    /// A client's `Have`.
    Have {
        /// The connection.
        conn: ConnId,
        /// Its version.
        version: VersionVector,
    },
    /// A presence frame to relay.
    Presence {
        /// The sending connection.
        conn: ConnId,
        /// The frame.
        presence: PresenceFrame,
    },
    /// Another node appended to the document in the shared storage: catch up (reading what
    /// this node lacks) before the next commands.
    CatchUp,
    /// Changes a cluster member stored (pushed, or answering this node's `Have`).
    FromPeer {
        /// The member's cluster address.
        from: SocketAddr,
        /// The encoded update.
        update: Vec<u8>,
        /// The member's durable version after it.
        version: VersionVector,
    },
    /// Anti-entropy found the document differs from a member's: tell it this node's version
    /// (it answers with what this node lacks and asks back for what it lacks).
    Reconcile {
        /// The member's cluster address.
        with: SocketAddr,
    },
    /// A cluster member loaded the document at `version`: send it what it lacks.
    PeerHave {
        /// The member's cluster address.
        from: SocketAddr,
        /// Its version.
        version: VersionVector,
    },
    /// Memory is short: unload if no connection subscribes.
    Evict,
    /// The server stops: finish what is queued, persist it, and exit.
    Shutdown,
}

/// How a document reaches one connection: its bounded outgoing queue, and a signal to close it
/// when it does not keep up.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    /// The connection's id.
    pub id: ConnId,
    outbox: mpsc::Sender<Bytes>,
    slow: Arc<SlowConsumer>,
    metrics: Arc<Metrics>,
}

/// Set when a document found a connection's queue full; the connection then closes.
#[derive(Debug, Default)]
pub struct SlowConsumer {
    flagged: AtomicBool,
    notify: Notify,
}

impl SlowConsumer {
    /// Marks the connection as too slow and wakes it.
    pub fn flag(&self) {
        self.flagged.store(true, Relaxed);
        self.notify.notify_one();
    }

    /// Whether a document flagged the connection.
    pub fn is_flagged(&self) -> bool {
        self.flagged.load(Relaxed)
    }

    /// Waits until flagged.
    pub async fn flagged(&self) {
        while !self.is_flagged() {
            self.notify.notified().await;
        }
    }
}

impl ConnHandle {
    /// A handle over a connection's outgoing queue. Delivered frames count in the
    /// `outgoing_queue_depth` gauge until the connection takes them out.
    pub fn new(
        id: ConnId,
        outbox: mpsc::Sender<Bytes>,
        slow: Arc<SlowConsumer>,
        metrics: Arc<Metrics>,
    ) -> ConnHandle {
        ConnHandle {
            id,
            outbox,
            slow,
            metrics,
        }
    }

    /// Queues a frame without waiting. `false` means the connection is gone or too slow (and
    /// was told to close).
    pub fn deliver(&self, frame: Bytes) -> bool {
        match self.outbox.try_send(frame) {
            Ok(()) => {
                self.metrics.outgoing_queue_depth.fetch_add(1, Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.slow.flag();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// What the registry and the evictor can see of an actor without asking it.
#[derive(Debug, Default)]
pub struct DocShared {
    /// Stored size of the document (the memory estimate's basis).
    pub stored_bytes: AtomicUsize,
    /// Bytes of live presence (part of the memory estimate).
    pub presence_bytes: AtomicUsize,
    /// Connections subscribed.
    pub subscribers: AtomicUsize,
    /// Milliseconds since the server started, at the last command.
    pub last_active_ms: AtomicU64,
    /// A [`DocCommand::CatchUp`] did not fit the full queue: catch up at the next round.
    pub catch_up_wanted: AtomicBool,
}

/// Everything an actor needs besides its commands.
pub(crate) struct ActorContext<S> {
    pub id: String,
    pub storage: Arc<S>,
    pub metrics: Arc<Metrics>,
    pub limits: DocumentLimits,
    pub document_idle: Duration,
    pub shared: Arc<DocShared>,
    pub epoch: Instant,
    /// The cluster this node belongs to, if any.
    pub cluster: Option<Cluster>,
    /// Called once the actor stops taking commands, so the registry forgets it.
    pub on_exit: Box<dyn FnOnce() + Send>,
}

/// Commands handled before one persist: a burst of edits becomes one storage write.
const MAX_COMMANDS_PER_ROUND: usize = 256;

/// Runs a document until it is idle, evicted, shut down, or storage fails.
pub(crate) async fn run<S: Storage>(
    context: ActorContext<S>,
    mut commands: mpsc::Receiver<DocCommand>,
) {
    let ActorContext {
        id,
        storage,
        metrics,
        limits,
        document_idle,
        shared,
        epoch,
        cluster,
        on_exit,
    } = context;
    let stored = match storage.load(&id).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(doc = %id, %error, "loading the document failed");
            metrics.storage_errors.fetch_add(1, Relaxed);
            on_exit();
            // Dropping the receiver drops every queued Subscribe's reply: those connections
            // report the failure to their clients.
            return;
        }
    };
    let (mut state, report) = DocumentState::load(&id, stored, limits);
    if let Some(cluster) = &cluster {
        state.record_pushes();
        cluster.note_version(&id, state.durable());
        cluster.hold(&id, state.durable());
    }
    if report.skipped > 0 {
        tracing::warn!(doc = %id, skipped = report.skipped, "ignored corrupt records while loading");
    }
    tracing::debug!(doc = %id, changes = report.applied, "document loaded");
    metrics.documents_loaded.fetch_add(1, Relaxed);
    let mut actor = Actor {
        id: id.clone(),
        cluster,
        state,
        conns: HashMap::new(),
        metrics: Arc::clone(&metrics),
        shared,
        epoch,
        oldest_unpersisted: None,
    };
    actor.publish();
    let mut on_exit = Some(on_exit);
    let mut compaction: Option<tokio::task::JoinHandle<()>> = None;
    let mut presence_tick = tokio::time::interval(Duration::from_secs(1));
    presence_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let idle = actor.state.subscriber_count() == 0;
        let mut round = Vec::new();
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => round.push(command),
                None => break,
            },
            _ = presence_tick.tick(), if actor.state.has_presence() => {
                let mut out = Vec::new();
                actor.state.expire_presence(actor.now_ms(), &mut out);
                actor.deliver(out);
                continue;
            }
            _ = tokio::time::sleep(document_idle), if idle => break,
        }
        while round.len() < MAX_COMMANDS_PER_ROUND {
            match commands.try_recv() {
                Ok(command) => round.push(command),
                Err(_) => break,
            }
        }
        metrics
            .document_queue_depth
            .fetch_sub(round.len() as i64, Relaxed);
        // With a storage other nodes write, a new subscriber must get what they acknowledged,
        // and a hint says they wrote: read what this node lacks first. (Nothing is
        // unpersisted here: the previous round ended with a persist.)
        let hinted = actor.shared.catch_up_wanted.swap(false, Relaxed);
        if storage.is_shared()
            && (hinted
                || round.iter().any(|command| {
                    matches!(command, DocCommand::Subscribe { .. } | DocCommand::CatchUp)
                }))
        {
            actor.catch_up(&*storage, &id).await;
        }
        let stop = actor.handle_round(round);
        if !actor.persist(&*storage, &id).await {
            break;
        }
        // Compaction runs beside the actor, one at a time per document: the snapshot is
        // encoded here (the actor owns the document), the write happens in the background.
        let idle_compactor = compaction.as_ref().is_none_or(|task| task.is_finished());
        if idle_compactor && actor.state.compaction_due() {
            let (snapshot, up_to) = actor.state.snapshot();
            let (storage, metrics, id) = (Arc::clone(&storage), Arc::clone(&metrics), id.clone());
            compaction = Some(tokio::spawn(async move {
                if let Err(error) = storage.compact(&id, snapshot, up_to).await {
                    metrics.storage_errors.fetch_add(1, Relaxed);
                    tracing::warn!(doc = %id, %error, "compaction failed; the change log stays");
                }
            }));
        }
        actor.publish();
        if let Some(cluster) = &actor.cluster {
            cluster.note_version(&id, actor.state.durable());
        }
        match stop {
            Stop::No => {}
            Stop::Evict if actor.state.subscriber_count() > 0 => {}
            Stop::Evict | Stop::Shutdown => break,
        }
    }
    // Stop taking commands; those already queued still count (a shutdown persists them).
    if let Some(on_exit) = on_exit.take() {
        on_exit();
    }
    commands.close();
    let mut rest = Vec::new();
    while let Ok(command) = commands.try_recv() {
        rest.push(command);
    }
    metrics
        .document_queue_depth
        .fetch_sub(rest.len() as i64, Relaxed);
    if !rest.is_empty() {
        actor.handle_round(rest);
        actor.persist(&*storage, &id).await;
    }
    if let Some(task) = compaction {
        let _ = task.await;
    }
    if let Some(cluster) = &actor.cluster {
        cluster.release(&id);
    }
    metrics.documents_loaded.fetch_sub(1, Relaxed);
    tracing::debug!(doc = %id, "document unloaded");
}

enum Stop {
    No,
    Evict,
    Shutdown,
}

struct Actor {
    id: String,
    cluster: Option<Cluster>,
    state: DocumentState,
    conns: HashMap<ConnId, ConnHandle>,
    metrics: Arc<Metrics>,
    shared: Arc<DocShared>,
    epoch: Instant,
    /// When the oldest change not yet persisted arrived.
    oldest_unpersisted: Option<Instant>,
}

impl Actor {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn publish(&self) {
        self.shared
            .stored_bytes
            .store(self.state.stored_bytes(), Relaxed);
        self.shared
            .presence_bytes
            .store(self.state.presence_bytes(), Relaxed);
        self.shared
            .subscribers
            .store(self.state.subscriber_count(), Relaxed);
        self.shared.last_active_ms.store(self.now_ms(), Relaxed);
    }

    fn handle_round(&mut self, round: Vec<DocCommand>) -> Stop {
        let mut out = Vec::new();
        let mut stop = Stop::No;
        let now_ms = self.now_ms();
        for command in round {
            match command {
                DocCommand::Subscribe {
                    conn,
                    version,
                    access,
                    reply,
                } => {
                    self.state
                        .subscribe(conn.id, version, access, now_ms, &mut out);
                    self.conns.insert(conn.id, conn);
                    let _ = reply.send(());
                }
                DocCommand::Unsubscribe { conn } => {
                    self.state.unsubscribe(conn, &mut out);
                    self.conns.remove(&conn);
                }
                DocCommand::SetAccess { conn, access } => self.state.set_access(conn, access),
                DocCommand::Changes {
                    conn,
                    batch,
                    update,
                    version,
                    received,
                } => {
                    self.oldest_unpersisted.get_or_insert(received);
                    let refused = self.state.changes(conn, batch, update, version, &mut out);
                    match refused {
                        Some(AckStatus::Invalid) => self.metrics.rejected(Reject::Invalid),
                        Some(AckStatus::TooLarge) => self.metrics.rejected(Reject::TooLarge),
                        Some(AckStatus::PermissionDenied) => {
                            self.metrics.rejected(Reject::PermissionDenied)
                        }
                        // Waiting for dependencies is sync, not a refusal of bad input.
                        _ => {}
                    }
                }
                DocCommand::Have { conn, version } => self.state.have(conn, version),
                DocCommand::Presence { conn, presence } => {
                    if let Err(refusal) = self.state.presence(conn, presence, now_ms, &mut out) {
                        tracing::debug!(conn, ?refusal, "presence refused");
                        self.metrics.rejected(Reject::PresenceLimit);
                    }
                }
                DocCommand::CatchUp => {} // Done before the round.
                DocCommand::FromPeer {
                    from,
                    update,
                    version,
                } => {
                    self.oldest_unpersisted.get_or_insert_with(Instant::now);
                    if let Err(error) = self.state.from_peer(from, update, version) {
                        // Ask the member for everything this node lacks instead.
                        tracing::debug!(doc = %self.id, %from, %error, "a member's changes did not apply; asking again");
                        if let Some(cluster) = &self.cluster {
                            cluster.ask(from, &self.id, self.state.durable());
                        }
                    }
                }
                DocCommand::PeerHave { from, version } => {
                    if let Some(cluster) = &self.cluster {
                        if let Some((update, reaches)) = self.state.missing_for(&version) {
                            cluster.answer(from, &self.id, update, &reaches);
                        }
                        // The member holds what this node lacks: ask for it in turn.
                        if !self.state.durable().includes(&version) {
                            cluster.ask(from, &self.id, self.state.durable());
                        }
                    }
                }
                DocCommand::Reconcile { with } => {
                    if let Some(cluster) = &self.cluster {
                        cluster.ask(with, &self.id, self.state.durable());
                    }
                }
                DocCommand::Evict => stop = Stop::Evict,
                DocCommand::Shutdown => stop = Stop::Shutdown,
            }
        }
        self.deliver(out);
        stop
    }

    /// Reads what other nodes stored since this document's last known seq and takes it in
    /// (relaying it to subscribers). A failed read is logged and counted: the document stays,
    /// and the next hint or subscription tries again.
    async fn catch_up<S: Storage>(&mut self, storage: &S, id: &str) {
        let stored = match storage.load_after(id, self.state.stored_up_to()).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(doc = %id, %error, "reading other nodes' changes failed");
                self.metrics.storage_errors.fetch_add(1, Relaxed);
                return;
            }
        };
        if stored.is_empty() {
            return;
        }
        let mut out = Vec::new();
        if let Some(report) = self.state.absorb(stored, &mut out) {
            self.metrics
                .changes_from_other_nodes
                .fetch_add(report.applied as u64, Relaxed);
            if report.skipped > 0 {
                tracing::warn!(doc = %id, skipped = report.skipped, "ignored other nodes' records that do not load");
            }
        }
        self.deliver(out);
    }

    /// Persists what is applied but not stored, then acknowledges and relays. `false` if
    /// storage failed (the actor must stop: memory now holds changes storage may lack).
    async fn persist<S: Storage>(&mut self, storage: &S, id: &str) -> bool {
        let mut out = Vec::new();
        let ok = match self.state.unpersisted() {
            None => {
                self.oldest_unpersisted = None;
                self.state.persisted(None, &mut out);
                true
            }
            Some((update, version)) => {
                let started = self.oldest_unpersisted.take().unwrap_or_else(Instant::now);
                let len = update.len();
                match storage.append(id, update).await {
                    Ok(seq) => {
                        self.metrics.persist_latency.observe(started.elapsed());
                        self.metrics.persisted_batches.fetch_add(1, Relaxed);
                        self.state.persisted(Some((&version, seq, len)), &mut out);
                        // Stored here: now the members holding the document get the
                        // client batches (not what members sent: they pushed it themselves).
                        let pushes = self.state.take_pushes();
                        if let Some(cluster) = &self.cluster {
                            for update in pushes {
                                cluster.push(id, update, &version);
                            }
                        }
                        true
                    }
                    Err(error) => {
                        tracing::error!(doc = %id, %error, "persisting changes failed; unloading the document");
                        self.metrics.storage_errors.fetch_add(1, Relaxed);
                        self.state.persist_failed(&mut out);
                        false
                    }
                }
            }
        };
        self.deliver(out);
        ok
    }

    /// Queues frames to connections; a connection that cannot take them is unsubscribed (and
    /// closes itself), which may produce more frames (its presence ends).
    fn deliver(&mut self, mut out: Outbox) {
        while !out.is_empty() {
            let mut more = Vec::new();
            for (conn, frame) in out {
                let Some(handle) = self.conns.get(&conn) else {
                    continue;
                };
                if !handle.deliver(frame) {
                    // The connection closes itself (and counts the slow consumer).
                    self.conns.remove(&conn);
                    self.state.unsubscribe(conn, &mut more);
                }
            }
            out = more;
        }
    }
}
