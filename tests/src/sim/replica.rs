//! A replica as a simulated process: a real [`Document`], one real [`SyncSession`] per peer
//! exchanging encoded [`Message`]s, presence, and a disk it recovers from after a crash.
//!
//! Durability follows what an app would do: a local change is written and synced before it
//! is sent (so a replica never forgets, and never reissues, its own events); changes received
//! from peers are appended at once and synced every `sync_every_ms` (a crash may lose them;
//! peers send them again); every `compact_every_ms` the log is replaced by a snapshot.

use std::collections::BTreeMap;

use crdt_core::{
    Document, LocalPresence, Message, PresenceSet, ReplicaId, SyncError, SyncSession, VersionVector,
};

use super::canonical::canonical;
use super::disk::Disk;
use super::node::{Context, DocReport, Node, NodeId, NodeReport};
use super::workload::random_change;

/// How a replica behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// The document it edits and syncs.
    pub doc: String,
    /// The nodes it syncs with from the start (others may reach it later).
    pub peers: Vec<NodeId>,
    /// Chance per tick of making a change while the workload runs, per mille.
    pub edit_per_mille: u32,
    /// How often it says hello to every peer again (the resend that repairs losses).
    pub hello_every_ms: u64,
    /// How often received changes are synced to disk.
    pub sync_every_ms: u64,
    /// How often the log is compacted into a snapshot.
    pub compact_every_ms: u64,
    /// How often it refreshes its presence.
    pub presence_every_ms: u64,
}

impl ReplicaConfig {
    /// Defaults for document `doc` syncing with `peers`.
    pub fn new(doc: impl Into<String>, peers: Vec<NodeId>) -> ReplicaConfig {
        ReplicaConfig {
            doc: doc.into(),
            peers,
            edit_per_mille: 40,
            hello_every_ms: 400,
            sync_every_ms: 150,
            compact_every_ms: 3_000,
            presence_every_ms: 1_000,
        }
    }
}

/// Counts of what a replica did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Local changes made.
    pub changes: u64,
    /// Starts (the first boot and restarts).
    pub starts: u64,
    /// Updates that waited for missing changes and were dropped when the buffer filled.
    pub buffer_overflows: u64,
}

/// What a replica loses when it crashes.
#[derive(Debug)]
struct Live {
    doc: Document,
    sessions: BTreeMap<NodeId, SyncSession>,
    presence: PresenceSet,
    local_presence: LocalPresence,
    /// What the disk holds, synced or not.
    written: VersionVector,
    /// What the disk holds durably.
    synced: VersionVector,
    next_hello: u64,
    next_sync: u64,
    next_compact: u64,
    next_presence: u64,
}

/// A replica node. See the module documentation.
#[derive(Debug)]
pub struct ReplicaNode {
    id: NodeId,
    replica: ReplicaId,
    config: ReplicaConfig,
    disk: Disk,
    live: Option<Live>,
    errors: Vec<String>,
    stats: ReplicaStats,
}

impl ReplicaNode {
    /// A replica at address `id` editing as `replica`. It holds nothing until started.
    pub fn new(id: NodeId, replica: ReplicaId, config: ReplicaConfig) -> ReplicaNode {
        ReplicaNode {
            id,
            replica,
            config,
            disk: Disk::default(),
            live: None,
            errors: Vec::new(),
            stats: ReplicaStats::default(),
        }
    }

    /// Its document, while it is up.
    pub fn document(&self) -> Option<&Document> {
        self.live.as_ref().map(|live| &live.doc)
    }

    /// Its disk.
    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    /// Its disk, to simulate corruption in tests.
    pub fn disk_mut(&mut self) -> &mut Disk {
        &mut self.disk
    }

    /// Counts of what it did.
    pub fn stats(&self) -> ReplicaStats {
        self.stats
    }

    /// Reads the disk back into a document.
    fn recover(&mut self) -> Document {
        let (snapshot, log) = self.disk.contents();
        let mut doc = match snapshot.map(|bytes| Document::load(bytes, self.replica)) {
            None => Document::new(self.replica),
            Some(Ok(doc)) => doc,
            Some(Err(e)) => {
                self.errors
                    .push(format!("{}: the snapshot does not load: {e}", self.id));
                Document::new(self.replica)
            }
        };
        let mut failures = Vec::new();
        for (i, record) in log.iter().enumerate() {
            if let Err(e) = doc.apply_update(record) {
                failures.push(format!("{}: log record {i} does not apply: {e}", self.id));
            }
        }
        self.errors.extend(failures);
        doc
    }

    fn send(ctx: &mut Context<'_>, to: NodeId, message: &Message) {
        ctx.send(to, message.encode());
    }
}

impl Live {
    /// Writes what the document has beyond the disk; with `sync`, makes it durable and says
    /// so.
    fn persist(&mut self, disk: &mut Disk, ctx: &mut Context<'_>, doc_name: &str, sync: bool) {
        let version = self.doc.version();
        if !self.written.includes(&version) {
            disk.append(self.doc.update_since(&self.written));
            self.written = version;
        }
        if sync && disk.has_unsynced() {
            disk.sync();
            self.synced = self.written.clone();
            ctx.persisted(doc_name, &self.synced);
        }
    }

    /// Sends every peer the changes it lacks as far as its session knows.
    fn poll_all(&mut self, ctx: &mut Context<'_>) {
        for (peer, session) in &mut self.sessions {
            if let Some(message) = session.poll(&self.doc) {
                ReplicaNode::send(ctx, *peer, &message);
            }
        }
    }
}

impl Node for ReplicaNode {
    fn id(&self) -> NodeId {
        self.id
    }

    fn start(&mut self, ctx: &mut Context<'_>) {
        let doc = self.recover();
        let version = doc.version();
        ctx.persisted(&self.config.doc, &version);
        let now = ctx.now();
        let mut live = Live {
            doc,
            sessions: BTreeMap::new(),
            presence: PresenceSet::default(),
            local_presence: LocalPresence::new(self.replica, 3 * self.config.presence_every_ms),
            written: version.clone(),
            synced: version,
            next_hello: now + self.config.hello_every_ms,
            next_sync: now + self.config.sync_every_ms,
            next_compact: now + ctx.rng().between(1, self.config.compact_every_ms),
            next_presence: now,
        };
        for peer in &self.config.peers {
            let mut session = SyncSession::new(self.config.doc.clone());
            let hello = session.hello(&live.doc);
            ReplicaNode::send(ctx, *peer, &hello);
            live.sessions.insert(*peer, session);
        }
        self.live = Some(live);
        self.stats.starts += 1;
    }

    fn receive(&mut self, ctx: &mut Context<'_>, from: NodeId, bytes: &[u8]) {
        let Some(live) = &mut self.live else {
            return;
        };
        let message = match Message::decode(bytes) {
            Ok(message) => message,
            Err(e) => {
                self.errors.push(format!(
                    "{}: a message from {from} does not decode: {e}",
                    self.id
                ));
                return;
            }
        };
        if let Message::Presence { .. } = message {
            live.presence.receive(&message, ctx.now());
            return;
        }
        let session = live
            .sessions
            .entry(from)
            .or_insert_with(|| SyncSession::new(self.config.doc.clone()));
        let before = live.doc.version();
        match session.receive(&mut live.doc, message) {
            Ok(replies) => {
                for reply in replies {
                    ReplicaNode::send(ctx, from, &reply);
                }
            }
            Err(SyncError::BufferFull) => {
                // Too much arrived before what it builds on: start this exchange over.
                self.stats.buffer_overflows += 1;
                session.reset();
                let hello = session.hello(&live.doc);
                ReplicaNode::send(ctx, from, &hello);
            }
            Err(e) => {
                self.errors.push(format!(
                    "{}: a message from {from} was refused: {e}",
                    self.id
                ));
            }
        }
        if live.doc.version() != before {
            live.persist(&mut self.disk, ctx, &self.config.doc, false);
            // Relay to the other peers.
            live.poll_all(ctx);
        }
    }

    fn tick(&mut self, ctx: &mut Context<'_>) {
        let Some(live) = &mut self.live else {
            return;
        };
        let now = ctx.now();
        if ctx.workload() && ctx.rng().chance(self.config.edit_per_mille) {
            match random_change(&mut live.doc, ctx.rng()) {
                Ok(true) => {
                    self.stats.changes += 1;
                    // Durable before anyone can see it.
                    live.persist(&mut self.disk, ctx, &self.config.doc, true);
                    live.poll_all(ctx);
                }
                Ok(false) => {}
                Err(e) => self
                    .errors
                    .push(format!("{}: a valid local edit failed: {e}", self.id)),
            }
        }
        if now >= live.next_hello {
            for (peer, session) in &mut live.sessions {
                let hello = session.hello(&live.doc);
                ReplicaNode::send(ctx, *peer, &hello);
            }
            let jitter = ctx.rng().below(self.config.hello_every_ms / 2 + 1);
            live.next_hello = now + self.config.hello_every_ms + jitter;
        }
        if now >= live.next_sync {
            live.persist(&mut self.disk, ctx, &self.config.doc, true);
            live.next_sync = now + self.config.sync_every_ms;
        }
        if now >= live.next_compact {
            self.disk.compact(live.doc.encode());
            let version = live.doc.version();
            ctx.persisted(&self.config.doc, &version);
            live.written = version.clone();
            live.synced = version;
            live.next_compact = now + self.config.compact_every_ms;
        }
        if now >= live.next_presence {
            live.presence.expire(now);
            let cursor = live.doc.history_len().to_le_bytes().to_vec();
            let message = live.local_presence.update(&self.config.doc, cursor);
            for peer in live.sessions.keys() {
                ReplicaNode::send(ctx, *peer, &message);
            }
            live.next_presence = now + self.config.presence_every_ms;
        }
    }

    fn crash(&mut self) {
        self.live = None;
        self.disk.crash();
    }

    fn is_up(&self) -> bool {
        self.live.is_some()
    }

    fn versions(&self) -> Vec<(String, VersionVector)> {
        self.live
            .iter()
            .map(|live| (self.config.doc.clone(), live.doc.version()))
            .collect()
    }

    fn report(&self) -> NodeReport {
        let mut errors = self.errors.clone();
        let documents = match &self.live {
            None => Vec::new(),
            Some(live) => {
                let (form, mut violations) = canonical(&live.doc);
                // What it holds survives a restart: its snapshot loads to the same state.
                match Document::load(&live.doc.encode(), self.replica) {
                    Ok(reloaded) => {
                        if canonical(&reloaded).0 != form
                            || reloaded.version() != live.doc.version()
                        {
                            violations.push("its snapshot loads to another state".to_owned());
                        }
                    }
                    Err(e) => violations.push(format!("its snapshot does not load: {e}")),
                }
                for (peer, session) in &live.sessions {
                    if session.waiting() > 64 {
                        errors.push(format!("{}: session with {peer} over its bound", self.id));
                    }
                }
                vec![DocReport {
                    name: self.config.doc.clone(),
                    version: live.doc.version(),
                    canonical: form,
                    violations,
                }]
            }
        };
        NodeReport {
            node: self.id,
            documents,
            errors,
        }
    }
}
