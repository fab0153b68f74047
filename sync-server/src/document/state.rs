//! One live document and its subscribers, as a synchronous state machine: frames in, frames out.
//!
//! No tasks, sockets or clocks here (time comes in as a parameter), so the actor around it stays
//! small and a deterministic simulation can drive the same logic.
//!
//! Durability: changes are applied in memory first, but nothing leaves this state about them
//! (no `Ack`, no broadcast) until the actor reports them persisted with [`DocumentState::persisted`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;

use bytes::Bytes;
use crdt_core::sync::{Message, SessionLimits, SyncError, SyncSession};
use crdt_core::{Document, ReplicaId, VersionVector};
use sync_protocol::{Access, AckStatus, ErrorCode, Frame};

use super::presence::{PresenceFrame, PresenceLimits, PresenceRefusal, PresenceTable};
use crate::storage::StoredDocument;

/// Identifies one connection within the server process.
pub type ConnId = u64;

/// Frames to send, by connection. Each frame is encoded once and shared.
pub type Outbox = Vec<(ConnId, Bytes)>;

/// The limits one document enforces.
#[derive(Clone, Copy, Debug)]
pub struct DocumentLimits {
    /// Largest stored size (snapshot plus log) the document may reach.
    pub max_document: usize,
    /// Changes appended before a compaction into a snapshot is due.
    pub compact_after: u64,
    /// How deep containers may be nested ([`Document::set_max_depth`]); deeper batches are
    /// refused as invalid.
    pub max_nesting_depth: usize,
    /// The presence the document holds at most.
    pub presence: PresenceLimits,
}

#[derive(Debug)]
struct Subscriber {
    session: SyncSession,
    access: Access,
    /// Client batches applied or waiting for dependencies, not yet acknowledged.
    pending: Vec<(u64, VersionVector)>,
}

/// What loading found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    /// Stored changes applied.
    pub applied: usize,
    /// Stored records that were corrupt or did not apply (logged and ignored).
    pub skipped: usize,
}

/// A loaded document with its subscribers' sync sessions and presence.
///
/// ```
/// use crdt_core::VersionVector;
/// use sync_protocol::{Access, Frame};
/// use sync_server::document::{DocumentLimits, DocumentState, PresenceLimits};
/// use sync_server::storage::StoredDocument;
///
/// let presence = PresenceLimits { entries: 64, bytes: 1 << 16 };
/// let limits = DocumentLimits {
///     max_document: 1 << 20,
///     compact_after: 100,
///     max_nesting_depth: 512,
///     presence,
/// };
/// let stored = StoredDocument::default();
/// let (mut state, _) = DocumentState::load("notes", stored, limits);
/// let mut out = Vec::new();
/// state.subscribe(1, VersionVector::new(), Access::ReadWrite, 0, &mut out);
/// assert!(matches!(Frame::decode(&out[0].1).unwrap(), Frame::Subscribed { .. }));
/// ```
#[derive(Debug)]
pub struct DocumentState {
    id: String,
    document: Document,
    subscribers: BTreeMap<ConnId, Subscriber>,
    presence: PresenceTable,
    /// What storage holds: everything up to here is durable.
    persisted: VersionVector,
    stored_bytes: usize,
    changes_since_snapshot: u64,
    /// Every stored change with a seq up to here is in this document (loaded or appended by
    /// this actor): the bound a compaction may delete up to.
    contiguous_seq: u64,
    /// Seqs of this actor's appends above a gap (another node appended the ones between, and
    /// this document has not loaded them).
    seqs_above_gap: BTreeSet<u64>,
    /// Part of the stored data did not load: never compact (it would be lost).
    keep_stored: bool,
    limits: DocumentLimits,
    /// Cluster members' sync sessions (changes they push wait here for missing dependencies).
    peers: HashMap<SocketAddr, SyncSession>,
    /// Whether client batches are kept for [`take_pushes`](Self::take_pushes) (in a cluster).
    record_pushes: bool,
    /// Client batches applied since the last [`take_pushes`](Self::take_pushes).
    pushes: Vec<Vec<u8>>,
}

impl DocumentState {
    /// Rebuilds a document from its snapshot and the changes stored after it. Records that do not
    /// load are skipped (and counted) rather than failing the whole document.
    pub fn load(
        id: &str,
        stored: StoredDocument,
        limits: DocumentLimits,
    ) -> (DocumentState, LoadReport) {
        // The server never authors changes, so its replica id only has to be unique per load.
        let replica = ReplicaId::random();
        let mut report = LoadReport {
            applied: 0,
            skipped: stored.skipped,
        };
        let mut stored_bytes = 0;
        let empty = || {
            let mut document = Document::new(replica);
            if let Err(error) = document.set_max_depth(limits.max_nesting_depth) {
                // The configuration is validated at start; keep the default if not.
                tracing::error!(doc = id, %error, "nesting limit not applied");
            }
            document
        };
        let mut document = empty();
        let skipped_before = report.skipped;
        if let Some(snapshot) = &stored.snapshot {
            match document.apply_update(snapshot) {
                Ok(_) => stored_bytes += snapshot.len(),
                Err(error) => {
                    tracing::error!(doc = id, %error, "stored snapshot does not load; starting from its change log");
                    report.skipped += 1;
                    document = empty();
                }
            }
        }
        for change in &stored.changes {
            stored_bytes += change.update.len();
            match document.apply_update(&change.update) {
                Ok(_) => report.applied += 1,
                Err(error) => {
                    tracing::warn!(doc = id, seq = change.seq, %error, "stored change does not apply; ignored");
                    report.skipped += 1;
                }
            }
        }
        // Stored data this process cannot read (refused by a limit lowered since, say) must
        // outlive it: a compaction would replace the snapshot and delete the log.
        let keep_stored = report.skipped > skipped_before;
        if keep_stored {
            tracing::error!(
                doc = id,
                "part of this document's stored data does not load (see above); it is kept \
                 as stored and the document is not compacted while loaded"
            );
        }
        let persisted = document.version();
        let state = DocumentState {
            id: id.to_owned(),
            document,
            subscribers: BTreeMap::new(),
            presence: PresenceTable::new(limits.presence),
            persisted,
            stored_bytes,
            changes_since_snapshot: stored.changes.len() as u64,
            // A load reads a consistent prefix of the log (seqs are given in commit order), and
            // whatever is missing below it was folded into the snapshot. (Counting the snapshot
            // matters: a document loaded from a snapshot alone would otherwise never compact
            // again, every later append sitting "above a gap" at seq 0.)
            contiguous_seq: stored.covers_up_to(),
            seqs_above_gap: BTreeSet::new(),
            keep_stored,
            limits,
            peers: HashMap::new(),
            record_pushes: false,
            pushes: Vec::new(),
        };
        (state, report)
    }

    /// The document id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The document as the server holds it.
    pub fn document(&self) -> &Document {
        &self.document
    }

    /// Connections subscribed.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }

    /// Bytes the document takes in storage (snapshot plus log): the basis of the size limit and
    /// of the memory estimate.
    pub fn stored_bytes(&self) -> usize {
        self.stored_bytes
    }

    /// Bytes of live presence (part of the memory estimate).
    pub fn presence_bytes(&self) -> usize {
        self.presence.bytes()
    }

    /// Adds (or re-adds) a subscriber: answers `Subscribed`, the changes it lacks, and the
    /// presence of the others.
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        version: VersionVector,
        access: Access,
        now_ms: u64,
        out: &mut Outbox,
    ) {
        self.drop_presence_of(conn, out);
        let mut session = SyncSession::with_limits(self.id.clone(), self.session_limits());
        out.push((
            conn,
            encode(Frame::Subscribed {
                doc: self.id.clone(),
                version: self.persisted.clone(),
                access,
            }),
        ));
        // Record what the client has without letting the session send anything yet: only what
        // is durable goes out, so a client never holds changes a crash could still lose here.
        let have = Message::Have {
            doc: self.id.clone(),
            version,
        };
        let _ = session.receive(&mut self.document, have);
        if let Some(peer_has) = session.peer_version()
            && !peer_has.includes(&self.persisted)
        {
            let update = self.document.update_between(peer_has, &self.persisted);
            out.push((
                conn,
                encode(Frame::Changes {
                    doc: self.id.clone(),
                    batch: 0,
                    update,
                    version: self.persisted.clone(),
                }),
            ));
            let sent = self.persisted.clone();
            session.mark_sent(&sent);
        }
        for frame in self.presence.live(now_ms) {
            out.push((conn, frame.clone()));
        }
        self.subscribers.insert(
            conn,
            Subscriber {
                session,
                access,
                pending: Vec::new(),
            },
        );
    }

    /// Removes a subscriber (unsubscribe or disconnect); its replicas' presence ends.
    pub fn unsubscribe(&mut self, conn: ConnId, out: &mut Outbox) {
        self.subscribers.remove(&conn);
        self.drop_presence_of(conn, out);
    }

    /// Changes a subscriber's access after a token refresh.
    pub fn set_access(&mut self, conn: ConnId, access: Access) {
        if let Some(subscriber) = self.subscribers.get_mut(&conn) {
            subscriber.access = access;
        }
    }

    /// A batch of changes from a client. Applied at once if its dependencies are here; the
    /// `Ack` waits for [`persisted`](Self::persisted). Returns the status of a batch refused at
    /// once (already answered in `out`), so the caller can count refusals.
    pub fn changes(
        &mut self,
        conn: ConnId,
        batch: u64,
        update: Vec<u8>,
        version: VersionVector,
        out: &mut Outbox,
    ) -> Option<AckStatus> {
        let Some(subscriber) = self.subscribers.get_mut(&conn) else {
            out.push((conn, self.not_subscribed()));
            return None;
        };
        let refuse = |status| {
            encode(Frame::Ack {
                doc: self.id.clone(),
                batch,
                status,
                version: self.persisted.clone(),
            })
        };
        if !subscriber.access.can_write() {
            out.push((conn, refuse(AckStatus::PermissionDenied)));
            return Some(AckStatus::PermissionDenied);
        }
        if self.stored_bytes.saturating_add(update.len()) > self.limits.max_document {
            out.push((conn, refuse(AckStatus::TooLarge)));
            return Some(AckStatus::TooLarge);
        }
        let pushed = self.record_pushes.then(|| update.clone());
        let message = Message::Changes {
            doc: self.id.clone(),
            update,
            version: version.clone(),
        };
        match subscriber.session.receive(&mut self.document, message) {
            Ok(_) => {
                subscriber.pending.push((batch, version));
                self.pushes.extend(pushed);
                None
            }
            Err(SyncError::BufferFull) => {
                // Too much waits for missing changes: refuse it all; the client subscribes
                // again and both sides recompute what the other lacks.
                let mut refused: Vec<u64> = subscriber.pending.drain(..).map(|(b, _)| b).collect();
                refused.push(batch);
                for batch in refused {
                    out.push((
                        conn,
                        encode(Frame::Ack {
                            doc: self.id.clone(),
                            batch,
                            status: AckStatus::MissingDependencies,
                            version: self.persisted.clone(),
                        }),
                    ));
                }
                Some(AckStatus::MissingDependencies)
            }
            Err(error) => {
                tracing::debug!(doc = %self.id, conn, %error, "refused a batch");
                out.push((
                    conn,
                    encode(Frame::Ack {
                        doc: self.id.clone(),
                        batch,
                        status: AckStatus::Invalid,
                        version: self.persisted.clone(),
                    }),
                ));
                Some(AckStatus::Invalid)
            }
        }
    }

    /// In a cluster: keep each client batch this document applies, for
    /// [`take_pushes`](Self::take_pushes).
    pub fn record_pushes(&mut self) {
        self.record_pushes = true;
    }

    /// The client batches applied since the last call (to push to the cluster members holding
    /// the document, once stored). Changes that came from members are not among them: they
    /// are never pushed on.
    pub fn take_pushes(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.pushes)
    }

    /// Changes a cluster member pushed (or sent in answer to a `Have`). Applied at once, or
    /// kept until their dependencies arrive; stored and relayed like a client's, but never
    /// acknowledged or pushed on. `Err` if they do not apply (or too much waits): the caller
    /// asks the member for everything again.
    pub fn from_peer(
        &mut self,
        from: SocketAddr,
        update: Vec<u8>,
        version: VersionVector,
    ) -> Result<(), SyncError> {
        if self.stored_bytes.saturating_add(update.len()) > self.limits.max_document {
            return Err(SyncError::BufferFull);
        }
        let limits = self.session_limits();
        let id = self.id.clone();
        let session = self
            .peers
            .entry(from)
            .or_insert_with(|| SyncSession::with_limits(id, limits));
        let message = Message::Changes {
            doc: self.id.clone(),
            update,
            version,
        };
        session.receive(&mut self.document, message).map(|_| ())
    }

    /// What a cluster member at `version` lacks of what is stored here, with the version it
    /// reaches; `None` if nothing.
    pub fn missing_for(&self, version: &VersionVector) -> Option<(Vec<u8>, VersionVector)> {
        if version.includes(&self.persisted) {
            return None;
        }
        Some((
            self.document.update_between(version, &self.persisted),
            self.persisted.clone(),
        ))
    }

    /// The durable version (what storage holds of this document).
    pub fn durable(&self) -> &VersionVector {
        &self.persisted
    }

    /// A client's `Have`: it needs nothing up to `version`.
    pub fn have(&mut self, conn: ConnId, version: VersionVector) {
        if let Some(subscriber) = self.subscribers.get_mut(&conn) {
            subscriber.session.mark_sent(&version);
        }
    }

    /// A presence frame from `conn`: remembered (unless it says the replica left) and relayed
    /// byte for byte to the other subscribers, if `conn` owns the replica id (or nobody does)
    /// and the document's presence caps allow it; otherwise refused (nothing relayed).
    pub fn presence(
        &mut self,
        conn: ConnId,
        presence: PresenceFrame,
        now_ms: u64,
        out: &mut Outbox,
    ) -> Result<(), PresenceRefusal> {
        if !self.subscribers.contains_key(&conn) {
            out.push((conn, self.not_subscribed()));
            return Ok(());
        }
        if self.presence.update(conn, &presence, now_ms)? {
            for &other in self.subscribers.keys() {
                if other != conn {
                    out.push((other, presence.frame.clone()));
                }
            }
        }
        Ok(())
    }

    /// Ends presence entries whose time ran out, telling the subscribers.
    pub fn expire_presence(&mut self, now_ms: u64, out: &mut Outbox) {
        for replica in self.presence.expired(now_ms) {
            self.end_presence(replica, out);
        }
    }

    /// Whether any presence entry is live (the actor then checks expiry periodically).
    pub fn has_presence(&self) -> bool {
        !self.presence.is_empty()
    }

    /// The changes applied in memory but not yet in storage, as one update, and the version
    /// storing it reaches.
    pub fn unpersisted(&self) -> Option<(Vec<u8>, VersionVector)> {
        let version = self.document.version();
        if self.persisted.includes(&version) {
            return None;
        }
        Some((self.document.update_since(&self.persisted), version))
    }

    /// Storage committed everything up to a version (`stored` = that version, the update's seq
    /// and its size; `None` if there was nothing new). Acknowledges the batches it covers and sends every
    /// subscriber what it lacks, one encoding shared by subscribers at the same version.
    pub fn persisted(&mut self, stored: Option<(&VersionVector, u64, usize)>, out: &mut Outbox) {
        if let Some((version, seq, bytes)) = stored {
            self.persisted.merge(version);
            self.note_seq(seq);
            self.stored_bytes += bytes;
            self.changes_since_snapshot += 1;
        }
        let durable = self.persisted.clone();
        let mut shared: HashMap<VersionVector, Bytes> = HashMap::new();
        for (&conn, subscriber) in &mut self.subscribers {
            let mut acked = Vec::new();
            subscriber.pending.retain(|(batch, version)| {
                let done = durable.includes(version);
                if done {
                    acked.push(*batch);
                }
                !done
            });
            for batch in acked {
                out.push((
                    conn,
                    encode(Frame::Ack {
                        doc: self.id.clone(),
                        batch,
                        status: AckStatus::Ok,
                        version: durable.clone(),
                    }),
                ));
            }
            let Some(peer_has) = subscriber.session.peer_version() else {
                continue;
            };
            if peer_has.includes(&durable) {
                continue;
            }
            let frame = shared
                .entry(peer_has.clone())
                .or_insert_with(|| {
                    encode(Frame::Changes {
                        doc: self.id.clone(),
                        batch: 0,
                        update: self.document.update_between(peer_has, &durable),
                        version: durable.clone(),
                    })
                })
                .clone();
            subscriber.session.mark_sent(&durable);
            out.push((conn, frame));
        }
    }

    /// Storage failed: no pending batch can be acknowledged. Every subscriber is told to
    /// subscribe again, and the caller drops this state (memory may hold changes storage lacks).
    pub fn persist_failed(&mut self, out: &mut Outbox) {
        for (&conn, subscriber) in &mut self.subscribers {
            for (batch, _) in subscriber.pending.drain(..) {
                out.push((
                    conn,
                    encode(Frame::Ack {
                        doc: self.id.clone(),
                        batch,
                        status: AckStatus::Overloaded,
                        version: self.persisted.clone(),
                    }),
                ));
            }
            out.push((
                conn,
                encode(Frame::Error {
                    code: ErrorCode::Internal,
                    doc: Some(self.id.clone()),
                    message: "storage failed; subscribe again to resume".into(),
                }),
            ));
        }
        self.subscribers.clear();
    }

    /// Whether the log is long enough to fold into a snapshot.
    pub fn compaction_due(&self) -> bool {
        !self.keep_stored && self.changes_since_snapshot >= self.limits.compact_after
    }

    /// A snapshot of everything persisted (only called when nothing is unpersisted), and the
    /// seq up to which the log may be deleted: the contiguous prefix this document holds, never
    /// a change another node appended that this document has not seen (several nodes can share
    /// one PostgreSQL log). Resets the log accounting.
    pub fn snapshot(&mut self) -> (Vec<u8>, u64) {
        let snapshot = self.document.encode();
        self.stored_bytes = snapshot.len();
        self.changes_since_snapshot = 0;
        (snapshot, self.contiguous_seq)
    }

    /// The seq up to which this document holds every stored change: where a
    /// [`Storage::load_after`](crate::storage::Storage::load_after) for
    /// [`absorb`](Self::absorb) starts.
    pub fn stored_up_to(&self) -> u64 {
        self.contiguous_seq
    }

    /// Takes in what other nodes sharing the storage appended (or compacted) since
    /// [`stored_up_to`](Self::stored_up_to): applies it, counts it as durable (it is in
    /// storage), acknowledges client batches it completes, and relays it to the subscribers
    /// that lack it.
    ///
    /// Only valid when everything applied here is persisted (the actor calls it right after a
    /// persist): the document's whole version then becomes the durable one. Otherwise nothing
    /// is taken and `None` returned.
    pub fn absorb(&mut self, stored: StoredDocument, out: &mut Outbox) -> Option<LoadReport> {
        if self.unpersisted().is_some() {
            return None;
        }
        let mut report = LoadReport {
            applied: 0,
            skipped: stored.skipped,
        };
        if let Some(snapshot) = &stored.snapshot {
            // Another node compacted: storage now holds this snapshot and the log after it.
            match self.document.apply_update(snapshot) {
                Ok(_) => report.applied += 1,
                Err(error) => {
                    tracing::error!(doc = %self.id, %error, "another node's snapshot does not apply here");
                    report.skipped += 1;
                }
            }
            self.stored_bytes = snapshot.len();
            self.changes_since_snapshot = 0;
        }
        if stored.snapshot_up_to > self.contiguous_seq {
            self.contiguous_seq = stored.snapshot_up_to;
            self.seqs_above_gap = self.seqs_above_gap.split_off(&(self.contiguous_seq + 1));
            while self.seqs_above_gap.remove(&(self.contiguous_seq + 1)) {
                self.contiguous_seq += 1;
            }
        }
        for change in &stored.changes {
            if change.seq <= self.contiguous_seq || self.seqs_above_gap.contains(&change.seq) {
                continue; // This node appended it, or holds it already.
            }
            match self.document.apply_update(&change.update) {
                Ok(_) => report.applied += 1,
                Err(error) => {
                    tracing::warn!(doc = %self.id, seq = change.seq, %error, "another node's change does not apply here; ignored");
                    report.skipped += 1;
                }
            }
            self.stored_bytes += change.update.len();
            self.changes_since_snapshot += 1;
            self.note_seq(change.seq);
        }
        if report.skipped > stored.skipped {
            // Stored data this node cannot read must not be compacted away.
            self.keep_stored = true;
        }
        self.persisted = self.document.version();
        self.persisted(None, out);
        Some(report)
    }

    /// What a client's or a member's sync session may hold waiting for dependencies.
    fn session_limits(&self) -> SessionLimits {
        SessionLimits {
            max_waiting: 64,
            max_waiting_bytes: self.limits.max_document.min(64 << 20),
        }
    }

    /// Records a seq this document now holds, advancing the contiguous prefix.
    fn note_seq(&mut self, seq: u64) {
        if seq <= self.contiguous_seq {
            return;
        }
        self.seqs_above_gap.insert(seq);
        while self.seqs_above_gap.remove(&(self.contiguous_seq + 1)) {
            self.contiguous_seq += 1;
        }
    }

    fn drop_presence_of(&mut self, conn: ConnId, out: &mut Outbox) {
        for replica in self.presence.owned_by(conn) {
            self.end_presence(replica, out);
        }
    }

    fn end_presence(&mut self, replica: ReplicaId, out: &mut Outbox) {
        let Some(slot) = self.presence.remove(replica) else {
            return;
        };
        let leave = encode(Frame::Presence {
            doc: self.id.clone(),
            replica,
            clock: slot.clock.saturating_add(1),
            ttl_ms: 0,
            state: Vec::new(),
        });
        for &other in self.subscribers.keys() {
            if other != slot.conn {
                out.push((other, leave.clone()));
            }
        }
    }

    fn not_subscribed(&self) -> Bytes {
        encode(Frame::Error {
            code: ErrorCode::NotSubscribed,
            doc: Some(self.id.clone()),
            message: "subscribe to the document first".into(),
        })
    }
}

fn encode(frame: Frame) -> Bytes {
    Bytes::from(frame.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_core::MapId;

    fn empty(limits: DocumentLimits) -> DocumentState {
        let stored = StoredDocument {
            snapshot: None,
            snapshot_up_to: 0,
            changes: Vec::new(),
            skipped: 0,
        };
        DocumentState::load("doc", stored, limits).0
    }

    fn limits() -> DocumentLimits {
        DocumentLimits {
            max_document: 1 << 20,
            compact_after: 100,
            max_nesting_depth: crdt_core::Document::DEFAULT_MAX_DEPTH,
            presence: PresenceLimits {
                entries: 16,
                bytes: 1 << 16,
            },
        }
    }

    fn frames(out: &Outbox, conn: ConnId) -> Vec<Frame> {
        out.iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, bytes)| Frame::decode(bytes).unwrap())
            .collect()
    }

    fn edit() -> (Vec<u8>, VersionVector) {
        let mut doc = Document::new(ReplicaId::from_u128(5));
        doc.set(MapId::ROOT, "k", 1).unwrap();
        (doc.update_since(&VersionVector::new()), doc.version())
    }

    #[test]
    fn stored_data_that_does_not_load_is_never_compacted_away() {
        let stored_change = |seq, update| crate::storage::StoredChange { seq, update };
        let limits = DocumentLimits {
            compact_after: 1,
            ..limits()
        };
        let (readable, _) = edit();
        let mut deep = Document::new(ReplicaId::from_u128(6));
        deep.set_max_depth(600).unwrap();
        deep.transact(|tx| {
            let mut map = MapId::ROOT;
            for _ in 0..513 {
                map = tx.replace_with_new_map(map, "k")?;
            }
            Ok(())
        })
        .unwrap();
        let too_deep = deep.update_since(&VersionVector::new());
        let load = |changes| {
            let stored = StoredDocument {
                changes,
                ..StoredDocument::default()
            };
            DocumentState::load("doc", stored, limits)
        };
        let (state, report) = load(vec![stored_change(1, readable.clone())]);
        assert!(report.skipped == 0 && state.compaction_due());
        let (state, report) = load(vec![stored_change(1, readable), stored_change(2, too_deep)]);
        assert_eq!(report.skipped, 1);
        assert!(
            !state.compaction_due(),
            "the unreadable change would be deleted"
        );
    }

    #[test]
    fn nothing_is_acknowledged_or_relayed_before_it_is_persisted() {
        let mut state = empty(limits());
        let mut out = Vec::new();
        state.subscribe(1, VersionVector::new(), Access::ReadWrite, 0, &mut out);
        state.subscribe(2, VersionVector::new(), Access::ReadWrite, 0, &mut out);
        out.clear();
        let (update, version) = edit();
        state.changes(1, 7, update, version.clone(), &mut out);
        assert!(out.is_empty(), "applied but not durable: silence");
        let (bytes, reaches) = state.unpersisted().unwrap();
        assert!(!bytes.is_empty());
        state.persisted(Some((&reaches, 1, bytes.len())), &mut out);
        assert!(matches!(
            frames(&out, 1).as_slice(),
            [Frame::Ack {
                batch: 7,
                status: AckStatus::Ok,
                ..
            }]
        ));
        assert!(matches!(
            frames(&out, 2).as_slice(),
            [Frame::Changes { .. }]
        ));
        assert!(state.unpersisted().is_none());
    }

    #[test]
    fn a_document_loaded_from_a_snapshot_alone_still_compacts() {
        // Before: such a load counted seq 0 as held, every later append sat "above a gap",
        // and compaction never deleted anything again (the log grew without end).
        let mut doc = Document::new(ReplicaId::from_u128(7));
        doc.set(MapId::ROOT, "old", 1).unwrap();
        let stored = StoredDocument {
            snapshot: Some(doc.encode()),
            snapshot_up_to: 40,
            ..StoredDocument::default()
        };
        let (mut state, _) = DocumentState::load("doc", stored, limits());
        assert_eq!(state.stored_up_to(), 40);
        let mut out = Vec::new();
        state.persisted(Some((&VersionVector::new(), 41, 10)), &mut out);
        assert_eq!(state.snapshot().1, 41);
    }

    #[test]
    fn what_other_nodes_stored_is_taken_in_and_relayed_as_durable() {
        let mut state = empty(limits());
        let mut out = Vec::new();
        state.subscribe(1, VersionVector::new(), Access::ReadWrite, 0, &mut out);
        // This node appended seq 2; another node appended seq 1 (unseen here) and seq 3.
        state.persisted(Some((&VersionVector::new(), 2, 10)), &mut out);
        assert_eq!(state.stored_up_to(), 0);
        out.clear();
        let (first, first_version) = edit();
        let mut other = Document::new(ReplicaId::from_u128(9));
        other.set(MapId::ROOT, "third", 3).unwrap();
        let third = other.update_since(&VersionVector::new());
        let stored = StoredDocument {
            changes: vec![
                crate::storage::StoredChange {
                    seq: 1,
                    update: first,
                },
                crate::storage::StoredChange {
                    seq: 2,
                    update: b"not read again".to_vec(),
                },
                crate::storage::StoredChange {
                    seq: 3,
                    update: third,
                },
            ],
            ..StoredDocument::default()
        };
        let report = state.absorb(stored, &mut out).unwrap();
        assert_eq!(
            report,
            LoadReport {
                applied: 2,
                skipped: 0
            }
        );
        assert_eq!(state.stored_up_to(), 3);
        assert!(state.document().version().includes(&first_version));
        // The subscriber is sent both, as durable.
        let sent = frames(&out, 1);
        assert!(
            matches!(&sent[..], [Frame::Changes { version, .. }] if *version == state.document().version())
        );

        // Another node compacted up to 5 (4 and 5 folded into its snapshot).
        let mut everything = Document::new(ReplicaId::from_u128(9));
        everything.apply_update(&state.document().encode()).unwrap();
        everything.set(MapId::ROOT, "fifth", 5).unwrap();
        let stored = StoredDocument {
            snapshot: Some(everything.encode()),
            snapshot_up_to: 5,
            ..StoredDocument::default()
        };
        out.clear();
        state.absorb(stored, &mut out).unwrap();
        assert_eq!(state.stored_up_to(), 5);
        assert_eq!(state.document().version(), everything.version());
        assert_eq!(frames(&out, 1).len(), 1);
    }

    #[test]
    fn nothing_is_taken_in_while_changes_await_their_persist() {
        let mut state = empty(limits());
        let mut out = Vec::new();
        state.subscribe(1, VersionVector::new(), Access::ReadWrite, 0, &mut out);
        let (update, version) = edit();
        state.changes(1, 1, update, version, &mut out);
        assert_eq!(state.absorb(StoredDocument::default(), &mut out), None);
    }

    #[test]
    fn compaction_never_reaches_past_a_gap_in_the_log() {
        let mut state = empty(limits());
        let version = VersionVector::new();
        let mut out = Vec::new();
        for seq in [1, 2, 5, 6] {
            state.persisted(Some((&version, seq, 10)), &mut out);
        }
        // 3 and 4 were appended by another node and are not in this document.
        assert_eq!(state.snapshot().1, 2);
        for seq in [4, 3] {
            state.persisted(Some((&version, seq, 10)), &mut out);
        }
        assert_eq!(state.snapshot().1, 6);
    }

    #[test]
    fn presence_expires_and_ends_with_its_connection() {
        let mut state = empty(limits());
        let mut out = Vec::new();
        state.subscribe(1, VersionVector::new(), Access::ReadOnly, 0, &mut out);
        state.subscribe(2, VersionVector::new(), Access::ReadOnly, 0, &mut out);
        out.clear();
        let replica = ReplicaId::from_u128(9);
        let frame = Bytes::from(
            Frame::Presence {
                doc: "doc".into(),
                replica,
                clock: 1,
                ttl_ms: 1000,
                state: b"here".to_vec(),
            }
            .encode(),
        );
        let presence = PresenceFrame {
            frame,
            replica,
            clock: 1,
            ttl_ms: 1000,
            leaving: false,
        };
        state.presence(1, presence, 0, &mut out).unwrap();
        assert_eq!(frames(&out, 2).len(), 1, "relayed to the other subscriber");
        assert!(frames(&out, 1).is_empty(), "not echoed");
        out.clear();
        state.expire_presence(999, &mut out);
        assert!(out.is_empty());
        state.expire_presence(1000, &mut out);
        assert!(matches!(
            frames(&out, 2).as_slice(),
            [Frame::Presence { state, ttl_ms: 0, .. }] if state.is_empty()
        ));
        assert!(!state.has_presence());
    }

    #[test]
    fn read_only_and_oversized_batches_are_refused_unapplied() {
        let mut state = empty(DocumentLimits {
            max_document: 10,
            ..limits()
        });
        let mut out = Vec::new();
        state.subscribe(1, VersionVector::new(), Access::ReadOnly, 0, &mut out);
        state.subscribe(2, VersionVector::new(), Access::ReadWrite, 0, &mut out);
        out.clear();
        let (update, version) = edit();
        state.changes(1, 1, update.clone(), version.clone(), &mut out);
        state.changes(2, 2, update, version, &mut out);
        let statuses: Vec<AckStatus> = out
            .iter()
            .filter_map(|(_, b)| match Frame::decode(b) {
                Ok(Frame::Ack { status, .. }) => Some(status),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [AckStatus::PermissionDenied, AckStatus::TooLarge]);
        assert!(state.unpersisted().is_none());
        assert!(state.document().version().is_empty());
    }
}
