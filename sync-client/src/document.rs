//! An open document: the local replica, its sync session with the server, and what the server
//! has confirmed durable.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crdt_core::{Document, ReplicaId, VersionVector};
use sync_protocol::Access;
use sync_protocol::client::DocumentSync;
use tokio::sync::watch;

use crate::client::{ClientError, Shared, Status};
use crate::error::{DocSyncError, WaitSavedError};
use crate::events::{Dispatcher, DocEvent, EventHub, Subscription};
use crate::local_store;

/// The mutable state of one open document, behind a mutex that is never held across an await.
pub(crate) struct DocState {
    pub document: Document,
    /// The protocol's decisions for this document (subscription, durable version, refusals,
    /// batches, presence), shared with the browser client.
    pub sync: DocumentSync,
    /// The last refusal or error the server reported for this document.
    pub last_error: Option<DocSyncError>,
    /// A refusal the client will not retry on this connection (it makes waiting for the
    /// save pointless); cleared by the next subscription.
    pub refusal: Option<DocSyncError>,
    /// Whether the document was saved when last looked at (for [`DocEvent::Saved`]).
    pub was_saved: bool,
    pub file: Option<PathBuf>,
}

impl DocState {
    /// Rewrites the local file, if there is one.
    pub(crate) fn save(&self) -> Result<(), DocSyncError> {
        if let Some(file) = &self.file {
            local_store::write(file, &self.document.encode()).map_err(|e| {
                DocSyncError::LocalStorage {
                    path: file.clone(),
                    kind: e.kind(),
                    message: e.to_string(),
                }
            })?;
        }
        Ok(())
    }

    pub(crate) fn is_saved(&self) -> bool {
        self.sync
            .durable_version()
            .includes(&self.document.version())
    }
}

pub(crate) struct DocEntry {
    pub id: String,
    pub state: Mutex<DocState>,
    /// Bumped on every change (local, remote, acknowledgement), for waiters.
    pub changed: watch::Sender<u64>,
    /// The change callbacks and their undelivered events.
    pub events: Arc<EventHub>,
}

impl DocEntry {
    pub(crate) fn open(
        id: &str,
        file: Option<PathBuf>,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<DocEntry, ClientError> {
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
        // An empty document is saved from the start (nothing to send); a loaded one is not
        // until the server confirms it.
        let was_saved = document.version().is_empty();
        let (changed, _) = watch::channel(0);
        Ok(DocEntry {
            id: id.to_owned(),
            state: Mutex::new(DocState {
                document,
                sync: DocumentSync::new(id, replica),
                last_error: None,
                refusal: None,
                was_saved,
                file,
            }),
            changed,
            events: EventHub::new(dispatcher),
        })
    }

    /// Records an error: [`DocHandle::last_error`] and the callbacks'
    /// [`DocEvent::Error`]; `state` is this entry's, locked.
    pub(crate) fn report(&self, state: &mut DocState, error: DocSyncError) {
        state.last_error = Some(error.clone());
        self.events.record(DocEvent::Error(error));
    }

    /// Tells the callbacks when the document turns saved; `state` is this entry's, locked.
    /// (A refusal stays until the next subscription: being saved now, an empty document for
    /// one, says nothing about the edits to come, and `wait_saved` looks at saved first.)
    pub(crate) fn check_saved(&self, state: &mut DocState) {
        let saved = state.is_saved();
        if saved && !state.was_saved {
            self.events.record(DocEvent::Saved);
        }
        state.was_saved = saved;
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
    /// `edit` are returned as they are; a failure to save locally is [`ClientError::Io`] (and
    /// also [`last_error`](Self::last_error), [`DocSyncError::LocalStorage`]). Callbacks
    /// registered with [`on_event`](Self::on_event) receive the change after this returns,
    /// on their own thread. Do not call this handle's methods inside `edit` (the document is
    /// locked there).
    pub fn edit<R, E>(
        &self,
        edit: impl FnOnce(&mut Document) -> Result<R, E>,
    ) -> Result<R, ClientError>
    where
        E: std::fmt::Display,
    {
        let result = {
            let mut state = self.entry.lock();
            self.entry.events.tidy(&mut state.document);
            let result = edit(&mut state.document).map_err(|e| ClientError::Edit(e.to_string()));
            // A closure may have committed some changes before failing: look either way.
            self.entry.check_saved(&mut state);
            let result = result?;
            if let Err(error) = state.save() {
                self.entry.report(&mut state, error.clone());
                return Err(match error {
                    DocSyncError::LocalStorage { path, message, .. } => {
                        ClientError::Io { path, message }
                    }
                    other => ClientError::Edit(other.to_string()),
                });
            }
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
        self.entry.lock().is_saved()
    }

    /// The version the server confirmed as durably stored: every change it includes survives a
    /// server crash.
    pub fn saved_version(&self) -> VersionVector {
        self.entry.lock().sync.durable_version().clone()
    }

    /// The latest error about this document, if any: a refused batch, a server error (a
    /// denied subscription), changes from the server that did not apply, a local file that
    /// could not be written. It stays until another error replaces it.
    ///
    /// ```no_run
    /// # fn example(notes: &sync_client::DocHandle) {
    /// use sync_client::DocSyncError;
    /// use sync_protocol::AckStatus;
    /// match notes.last_error() {
    ///     Some(DocSyncError::BatchRefused { status: AckStatus::TooLarge, .. }) => {
    ///         eprintln!("the document is over the server's size limit")
    ///     }
    ///     Some(other) => eprintln!("{other}"),
    ///     None => {}
    /// }
    /// # }
    /// ```
    pub fn last_error(&self) -> Option<DocSyncError> {
        self.entry.lock().last_error.clone()
    }

    /// What the server allows on this document, once subscribed.
    pub fn access(&self) -> Option<Access> {
        self.entry.lock().sync.access()
    }

    /// Waits until [`is_saved`](Self::is_saved), or returns early with the reason it will not
    /// be saved soon: the timeout passed ([`WaitSavedError::TimedOut`], with the connection's
    /// status), connecting failed for good, the server refused the changes or the token is
    /// read-only, or the client was closed. Can be awaited from any executor.
    ///
    /// ```no_run
    /// # async fn example(notes: sync_client::DocHandle) {
    /// use std::time::Duration;
    /// use sync_client::WaitSavedError;
    /// match notes.wait_saved(Duration::from_secs(5)).await {
    ///     Ok(()) => println!("saved on the server"),
    ///     Err(error) if error.is_offline() => println!("offline: kept locally, sent later"),
    ///     Err(WaitSavedError::Refused(why)) => eprintln!("refused: {why}"),
    ///     Err(error) => eprintln!("{error}"),
    /// }
    /// # }
    /// ```
    pub async fn wait_saved(&self, timeout: Duration) -> Result<(), WaitSavedError> {
        let mut changed = self.entry.changed.subscribe();
        let mut status = self.shared.status.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        let sleep = self.shared.sleep_until(deadline);
        tokio::pin!(sleep);
        loop {
            changed.borrow_and_update();
            status.borrow_and_update();
            if let Some(outcome) = self.save_outcome() {
                return outcome;
            }
            tokio::select! {
                biased;
                _ = changed.changed() => {}
                _ = status.changed() => {}
                _ = &mut sleep => {
                    return self.save_outcome().unwrap_or_else(|| {
                        Err(WaitSavedError::TimedOut { status: self.shared.status.borrow().clone() })
                    });
                }
            }
        }
    }

    /// `Some` once waiting for the save is over: saved, or why it will not be.
    fn save_outcome(&self) -> Option<Result<(), WaitSavedError>> {
        {
            let state = self.entry.lock();
            if state.is_saved() {
                return Some(Ok(()));
            }
            if let Some(refusal) = &state.refusal {
                return Some(Err(WaitSavedError::Refused(refusal.clone())));
            }
            if state.sync.access() == Some(Access::ReadOnly) {
                return Some(Err(WaitSavedError::ReadOnly));
            }
        }
        if *self.shared.closing.borrow() {
            return Some(Err(WaitSavedError::Closed));
        }
        match &*self.shared.status.borrow() {
            Status::Failed(error) => Some(Err(WaitSavedError::ConnectionFailed(error.clone()))),
            Status::Closed => Some(Err(WaitSavedError::Closed)),
            _ => None,
        }
    }

    /// Waits until `condition` holds on the document or the timeout; returns whether it held.
    /// Can be awaited from any executor.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Document) -> bool,
    ) -> bool {
        let mut changed = self.entry.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        let sleep = self.shared.sleep_until(deadline);
        tokio::pin!(sleep);
        loop {
            changed.borrow_and_update();
            if self.read(&mut condition) {
                return true;
            }
            tokio::select! {
                biased;
                _ = changed.changed() => {}
                _ = &mut sleep => return self.read(&mut condition),
            }
        }
    }

    /// Calls `callback` after each change of the document (local edits and changes from the
    /// server, with their crdt-core patches), each acknowledgement of a batch by the server,
    /// when the document becomes saved, and on each error; until the returned guard is dropped.
    ///
    /// Callbacks run on the client's dispatcher thread (`sync-client-events`, one per client),
    /// never under a lock of the client: they may read, edit, subscribe and unsubscribe, and
    /// a slow callback delays only later callbacks, never the connection or an edit. Events of
    /// one document arrive in the order they happened, each after it took effect. If the
    /// callbacks fall far behind, the oldest undelivered events of a document are dropped and
    /// [`DocEvent::Lagged`] says how many. A panic in a callback is caught and logged; the
    /// callback stays registered and the client carries on.
    ///
    /// ```no_run
    /// # fn example(notes: &sync_client::DocHandle) {
    /// use crdt_core::Origin;
    /// use sync_client::DocEvent;
    ///
    /// let subscription = notes.on_event(|event| match event {
    ///     DocEvent::Changed { origin: Origin::Remote, patches } => {
    ///         println!("{} changes from others", patches.len())
    ///     }
    ///     DocEvent::Saved => println!("saved on the server"),
    ///     DocEvent::Error(error) => eprintln!("{error}"),
    ///     _ => {}
    /// });
    /// // ...
    /// drop(subscription); // no more calls
    /// # }
    /// ```
    pub fn on_event(&self, callback: impl FnMut(&DocEvent) + Send + 'static) -> Subscription {
        let mut state = self.entry.lock();
        self.entry
            .events
            .subscribe(&mut state.document, Box::new(callback))
    }

    /// Sets this client's presence on the document (cursor, name...): relayed to the other
    /// subscribers, refreshed while connected, never stored. `None` leaves.
    pub fn set_presence(&self, state: Option<Vec<u8>>) {
        self.entry.lock().sync.set_presence(state);
        self.shared.wake.notify_one();
    }

    /// The presence of the other replicas on this document.
    pub fn presence(&self) -> Vec<(ReplicaId, Vec<u8>)> {
        let now = self.shared.now_ms();
        self.entry.lock().sync.peers(now)
    }
}
