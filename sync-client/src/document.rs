//! An open document: the local replica, its sync session with the server, and what the server
//! has confirmed durable.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crdt_core::sync::{LocalPresence, PresenceSet, SyncSession};
use crdt_core::{Document, ReplicaId, VersionVector};
use sync_protocol::Access;
use tokio::sync::watch;

use crate::client::{ClientError, Shared};
use crate::local_store;

/// How long presence lasts without a refresh; the client refreshes at half of it.
pub(crate) const PRESENCE_TTL_MS: u64 = 30_000;

/// The mutable state of one open document, behind a mutex that is never held across an await.
pub(crate) struct DocState {
    pub document: Document,
    pub session: SyncSession,
    /// What the server acknowledged as committed to its storage.
    pub durable: VersionVector,
    /// What the server's token allows, once subscribed.
    pub access: Option<Access>,
    /// Whether a Subscribe was sent on the current connection.
    pub subscribed: bool,
    /// Resubscribe after this instant (after a retryable refusal).
    pub resubscribe_at: Option<Instant>,
    /// The last refusal or error the server reported for this document.
    pub last_error: Option<String>,
    pub presence: PresenceSet,
    pub local_presence: LocalPresence,
    pub my_presence: Option<Vec<u8>>,
    /// Whether this client's presence must be (re)sent.
    pub presence_dirty: bool,
    pub file: Option<PathBuf>,
}

impl DocState {
    pub(crate) fn save(&self) -> Result<(), ClientError> {
        if let Some(file) = &self.file {
            local_store::write(file, &self.document.encode()).map_err(|e| ClientError::Io {
                path: file.clone(),
                message: e.to_string(),
            })?;
        }
        Ok(())
    }
}

pub(crate) struct DocEntry {
    pub id: String,
    pub state: Mutex<DocState>,
    /// Bumped on every change (local, remote, acknowledgement), for waiters.
    pub changed: watch::Sender<u64>,
}

impl DocEntry {
    pub(crate) fn open(id: &str, file: Option<PathBuf>) -> Result<DocEntry, ClientError> {
        // A new replica id per process: reusing one after a crash could reuse counters that a
        // lost local copy had already sent.
        let replica = ReplicaId::random();
        let document = match &file {
            Some(path) => match local_store::read(path).map_err(|e| ClientError::Io {
                path: path.clone(),
                message: e.to_string(),
            })? {
                Some(bytes) => {
                    Document::load(&bytes, replica).map_err(|e| ClientError::Corrupt {
                        path: path.clone(),
                        message: e.to_string(),
                    })?
                }
                None => Document::new(replica),
            },
            None => Document::new(replica),
        };
        let (changed, _) = watch::channel(0);
        Ok(DocEntry {
            id: id.to_owned(),
            state: Mutex::new(DocState {
                document,
                session: SyncSession::new(id),
                durable: VersionVector::new(),
                access: None,
                subscribed: false,
                resubscribe_at: None,
                last_error: None,
                presence: PresenceSet::default(),
                local_presence: LocalPresence::new(replica, PRESENCE_TTL_MS),
                my_presence: None,
                presence_dirty: false,
                file,
            }),
            changed,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DocState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A document opened through a [`Client`](crate::Client): edit and read it locally at any time,
/// online or not; the client syncs it in the background.
#[derive(Clone)]
pub struct DocHandle {
    pub(crate) entry: Arc<DocEntry>,
    pub(crate) shared: Arc<Shared>,
}

impl DocHandle {
    /// The document id.
    pub fn id(&self) -> &str {
        &self.entry.id
    }

    /// Edits the document, saves it locally, and queues the changes for the server. Errors of
    /// `edit` are returned as they are; a failure to save locally is [`ClientError::Io`].
    pub fn edit<R, E>(
        &self,
        edit: impl FnOnce(&mut Document) -> Result<R, E>,
    ) -> Result<R, ClientError>
    where
        E: std::fmt::Display,
    {
        let result = {
            let mut state = self.entry.lock();
            let result = edit(&mut state.document).map_err(|e| ClientError::Edit(e.to_string()))?;
            state.save()?;
            result
        };
        self.entry.notify();
        self.shared.wake.notify_one();
        Ok(result)
    }

    /// Reads the document.
    pub fn read<R>(&self, read: impl FnOnce(&Document) -> R) -> R {
        read(&self.entry.lock().document)
    }

    /// Whether the server confirmed everything this document holds as durably stored.
    pub fn is_saved(&self) -> bool {
        let state = self.entry.lock();
        state.durable.includes(&state.document.version())
    }

    /// The version the server confirmed as durably stored: every change it includes survives a
    /// server crash.
    pub fn saved_version(&self) -> VersionVector {
        self.entry.lock().durable.clone()
    }

    /// The last error the server reported about this document (a refused batch, a denied
    /// subscription), if any.
    pub fn last_error(&self) -> Option<String> {
        self.entry.lock().last_error.clone()
    }

    /// What the server allows on this document, once subscribed.
    pub fn access(&self) -> Option<Access> {
        self.entry.lock().access
    }

    /// Waits until [`is_saved`](Self::is_saved) or the timeout; returns whether saved.
    pub async fn wait_saved(&self, timeout: Duration) -> bool {
        let mut changed = self.entry.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_saved() {
                return true;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.is_saved(),
            }
        }
    }

    /// Waits until `condition` holds on the document or the timeout; returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Document) -> bool,
    ) -> bool {
        let mut changed = self.entry.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.read(&mut condition) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.read(&mut condition),
            }
        }
    }

    /// Sets this client's presence on the document (cursor, name...): relayed to the other
    /// subscribers, refreshed while connected, never stored. `None` leaves.
    pub fn set_presence(&self, state: Option<Vec<u8>>) {
        {
            let mut doc = self.entry.lock();
            doc.my_presence = state;
            doc.presence_dirty = true;
        }
        self.shared.wake.notify_one();
    }

    /// The presence of the other replicas on this document.
    pub fn presence(&self) -> Vec<(ReplicaId, Vec<u8>)> {
        let mut state = self.entry.lock();
        let now = self.shared.now_ms();
        state.presence.expire(now);
        let mut all: Vec<(ReplicaId, Vec<u8>)> = state
            .presence
            .iter()
            .map(|(replica, entry)| (replica, entry.state.clone()))
            .collect();
        all.sort();
        all
    }
}
