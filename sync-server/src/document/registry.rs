//! Finds a document's actor, starting it on first use; evicts idle documents when memory runs
//! short; shuts every actor down cleanly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::actor::{self, ActorContext, DocCommand, DocShared};
use super::presence::PresenceLimits;
use super::state::DocumentLimits;
use crate::cluster::{Cluster, Inbound};
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::storage::Storage;

/// Commands a document's queue holds before senders wait (or get `Overloaded` for writes).
pub const DOCUMENT_QUEUE: usize = 1024;

/// Memory a loaded document takes per stored byte, roughly (history, indexes, sessions).
const MEMORY_PER_STORED_BYTE: usize = 4;

/// Memory a loaded document takes whatever its content: its actor task and command queue, the
/// empty `Document`, the registry entry. Measured: 30,000 empty documents loaded took a server
/// from 6 MiB to 256 MiB, about 8.5 KiB each. Without it empty documents counted nothing
/// against `memory_cap`, and churning through fresh ids loaded documents without bound.
pub const DOCUMENT_OVERHEAD: usize = 9 * 1024;

/// The estimated memory of one loaded document, from what its actor published.
fn estimated_memory(shared: &DocShared) -> usize {
    shared
        .stored_bytes
        .load(Relaxed)
        .saturating_mul(MEMORY_PER_STORED_BYTE)
        .saturating_add(shared.presence_bytes.load(Relaxed))
        .saturating_add(DOCUMENT_OVERHEAD)
}

/// The live documents of one server.
pub struct Registry<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Registry<S> {
    fn clone(&self) -> Self {
        Registry {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<S> {
    docs: Mutex<HashMap<String, Entry>>,
    storage: Arc<S>,
    metrics: Arc<Metrics>,
    limits: Limits,
    next_generation: AtomicU64,
    epoch: Instant,
    cluster: Option<Cluster>,
}

struct Entry {
    sender: mpsc::Sender<DocCommand>,
    generation: u64,
    shared: Arc<DocShared>,
    task: JoinHandle<()>,
}

impl<S: Storage> Registry<S> {
    /// A registry over `storage`.
    pub fn new(storage: Arc<S>, metrics: Arc<Metrics>, limits: Limits) -> Registry<S> {
        Self::with_cluster(storage, metrics, limits, None)
    }

    /// A registry over `storage` whose documents take part in `cluster`.
    pub fn with_cluster(
        storage: Arc<S>,
        metrics: Arc<Metrics>,
        limits: Limits,
        cluster: Option<Cluster>,
    ) -> Registry<S> {
        Registry {
            inner: Arc::new(Inner {
                docs: Mutex::new(HashMap::new()),
                storage,
                metrics,
                limits,
                next_generation: AtomicU64::new(0),
                epoch: Instant::now(),
                cluster,
            }),
        }
    }

    /// The storage behind the documents.
    pub fn storage(&self) -> &Arc<S> {
        &self.inner.storage
    }

    /// Documents loaded now.
    pub fn loaded(&self) -> usize {
        self.lock().len()
    }

    /// The queue of `doc`'s actor, starting the actor (which loads the document) if needed.
    pub fn sender(&self, doc: &str) -> mpsc::Sender<DocCommand> {
        let mut docs = self.lock();
        if let Some(entry) = docs.get(doc)
            && !entry.sender.is_closed()
        {
            return entry.sender.clone();
        }
        self.start(&mut docs, doc)
    }

    /// Like [`sender`](Self::sender), but a document that is not loaded is loaded only if
    /// `refuse` says no (asked under the registry's lock, so the answer holds): this is how a
    /// connection spends its load budget on loads only, not on documents already in memory.
    pub fn sender_unless(
        &self,
        doc: &str,
        refuse: impl FnOnce() -> bool,
    ) -> Option<mpsc::Sender<DocCommand>> {
        let mut docs = self.lock();
        if let Some(entry) = docs.get(doc)
            && !entry.sender.is_closed()
        {
            return Some(entry.sender.clone());
        }
        if refuse() {
            return None;
        }
        Some(self.start(&mut docs, doc))
    }

    /// The limits every document of this server enforces.
    fn document_limits(&self) -> DocumentLimits {
        let limits = &self.inner.limits;
        DocumentLimits {
            max_document: limits.max_document,
            compact_after: limits.compact_after,
            max_nesting_depth: limits.max_nesting_depth,
            presence: PresenceLimits {
                entries: limits.presence_entries_per_document,
                bytes: limits.presence_bytes_per_document,
            },
        }
    }

    /// Starts `doc`'s actor and registers it.
    fn start(&self, docs: &mut HashMap<String, Entry>, doc: &str) -> mpsc::Sender<DocCommand> {
        let (sender, receiver) = mpsc::channel(DOCUMENT_QUEUE);
        let generation = self.inner.next_generation.fetch_add(1, Relaxed);
        let shared = Arc::new(DocShared::default());
        let weak: Weak<Inner<S>> = Arc::downgrade(&self.inner);
        let id = doc.to_owned();
        let on_exit = Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                let mut docs = inner.docs.lock().unwrap_or_else(|e| e.into_inner());
                if docs.get(&id).is_some_and(|e| e.generation == generation) {
                    docs.remove(&id);
                }
            }
        });
        let context = ActorContext {
            id: doc.to_owned(),
            storage: Arc::clone(&self.inner.storage),
            metrics: Arc::clone(&self.inner.metrics),
            limits: self.document_limits(),
            document_idle: self.inner.limits.document_idle,
            shared: Arc::clone(&shared),
            epoch: self.inner.epoch,
            cluster: self.inner.cluster.clone(),
            on_exit,
        };
        let task = tokio::spawn(actor::run(context, receiver));
        docs.insert(
            doc.to_owned(),
            Entry {
                sender: sender.clone(),
                generation,
                shared,
                task,
            },
        );
        sender
    }

    /// Another node appended to `doc` (a hint from a shared storage): if it is live here, it
    /// catches up before its next commands. A document not loaded needs nothing: its next load
    /// reads everything.
    pub fn hint_changed(&self, doc: &str) {
        self.inner.metrics.storage_hints.fetch_add(1, Relaxed);
        let docs = self.lock();
        if let Some(entry) = docs.get(doc) {
            self.ask_catch_up(entry);
        }
    }

    /// Every live document catches up (hints were lost: the storage's feed reconnected).
    pub fn hint_all(&self) {
        for entry in self.lock().values() {
            self.ask_catch_up(entry);
        }
    }

    fn ask_catch_up(&self, entry: &Entry) {
        match entry.sender.try_send(DocCommand::CatchUp) {
            Ok(()) => {
                self.inner
                    .metrics
                    .document_queue_depth
                    .fetch_add(1, Relaxed);
            }
            // A full queue means rounds are coming: the flag makes the next one catch up.
            Err(mpsc::error::TrySendError::Full(_)) => {
                entry.shared.catch_up_wanted.store(true, Relaxed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Follows the storage's hints that other nodes appended to documents (a shared storage
    /// only; for one this process alone writes, returns at once). When the feed drops, it is
    /// opened again (with a growing pause) and every live document catches up, since hints
    /// were lost meanwhile. Runs until `stop` turns true.
    pub async fn follow_storage_hints(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        const FIRST_PAUSE: Duration = Duration::from_millis(100);
        const MAX_PAUSE: Duration = Duration::from_secs(5);
        if !self.inner.storage.is_shared() {
            return;
        }
        let mut pause = FIRST_PAUSE;
        let mut first = true;
        loop {
            let watched = tokio::select! {
                watched = self.inner.storage.watch() => watched,
                _ = stop.wait_for(|stop| *stop) => return,
            };
            match watched {
                Ok(None) => return,
                Ok(Some(mut feed)) => {
                    pause = FIRST_PAUSE;
                    if !first {
                        tracing::info!("following other nodes' changes again");
                        self.hint_all();
                    }
                    loop {
                        tokio::select! {
                            doc = feed.next() => match doc {
                                Some(doc) => self.hint_changed(&doc),
                                None => break,
                            },
                            _ = stop.wait_for(|stop| *stop) => return,
                        }
                    }
                    tracing::warn!("lost the storage's feed of other nodes' changes; reopening it");
                }
                Err(error) => {
                    self.inner.metrics.storage_errors.fetch_add(1, Relaxed);
                    tracing::warn!(%error, retry_in = ?pause, "cannot follow other nodes' changes");
                }
            }
            first = false;
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// Hands what other cluster members send to the documents' actors (loading a document a
    /// member pushed to, so that it is stored here too), until the queue closes.
    pub async fn follow_cluster(&self, mut inbound: tokio::sync::mpsc::Receiver<Inbound>) {
        while let Some(message) = inbound.recv().await {
            let (doc, command) = match message {
                Inbound::Changes {
                    from,
                    doc,
                    update,
                    version,
                } => (
                    doc,
                    DocCommand::FromPeer {
                        from,
                        update,
                        version,
                    },
                ),
                Inbound::Have { from, doc, version } => {
                    (doc, DocCommand::PeerHave { from, version })
                }
                Inbound::Reconcile { from, doc } => (doc, DocCommand::Reconcile { with: from }),
            };
            match self.sender(&doc).try_send(command) {
                Ok(()) => {
                    self.inner
                        .metrics
                        .document_queue_depth
                        .fetch_add(1, Relaxed);
                }
                // A busy document: the member's next push or the pull on load brings it.
                Err(_) => {
                    self.inner.metrics.cluster_dropped.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Fills the cluster's anti-entropy index with every stored document's version (one
    /// document loaded at a time, outside the actors), then lets anti-entropy start. A document
    /// that does not load is left out (and logged): its version is unknown here.
    pub async fn index_stored_documents(&self) {
        let Some(cluster) = &self.inner.cluster else {
            return;
        };
        let documents = match self.inner.storage.documents().await {
            Ok(documents) => documents,
            Err(error) => {
                self.inner.metrics.storage_errors.fetch_add(1, Relaxed);
                tracing::error!(%error, "listing stored documents failed; anti-entropy stays off");
                return;
            }
        };
        let limits = self.document_limits();
        for doc in documents {
            match self.inner.storage.load(&doc).await {
                Ok(stored) => {
                    let (state, _) = super::state::DocumentState::load(&doc, stored, limits);
                    cluster.note_stored_version(&doc, state.durable());
                }
                Err(error) => {
                    self.inner.metrics.storage_errors.fetch_add(1, Relaxed);
                    tracing::warn!(%doc, %error, "not indexed for anti-entropy: loading failed");
                }
            }
            // Serving clients comes first.
            tokio::task::yield_now().await;
        }
        cluster.index_ready();
    }

    /// Asks idle documents to unload, least recently used first, until the estimated memory of
    /// the loaded documents (a fixed overhead each, plus their content and presence) is under
    /// the cap. Documents with subscribers stay.
    pub fn evict_over_cap(&self) {
        let docs = self.lock();
        let mut total: usize = docs.values().map(|e| estimated_memory(&e.shared)).sum();
        if total <= self.inner.limits.memory_cap {
            return;
        }
        let mut idle: Vec<&Entry> = docs
            .values()
            .filter(|e| e.shared.subscribers.load(Relaxed) == 0)
            .collect();
        idle.sort_by_key(|e| e.shared.last_active_ms.load(Relaxed));
        for entry in idle {
            if total <= self.inner.limits.memory_cap {
                break;
            }
            if entry.sender.try_send(DocCommand::Evict).is_ok() {
                self.inner
                    .metrics
                    .document_queue_depth
                    .fetch_add(1, Relaxed);
                total = total.saturating_sub(estimated_memory(&entry.shared));
            }
        }
    }

    /// Runs [`evict_over_cap`](Self::evict_over_cap) every `period` until the registry is gone.
    pub fn spawn_evictor(&self, period: Duration) -> JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                Registry { inner }.evict_over_cap();
            }
        })
    }

    /// Stops every actor after it persisted what it had queued, and waits for them.
    pub async fn shutdown(&self) {
        let entries: Vec<Entry> = self.lock().drain().map(|(_, entry)| entry).collect();
        for entry in &entries {
            // Waiting here is fine: actors drain their queues without waiting on anyone.
            if entry.sender.send(DocCommand::Shutdown).await.is_ok() {
                self.inner
                    .metrics
                    .document_queue_depth
                    .fetch_add(1, Relaxed);
            }
        }
        for entry in entries {
            let _ = entry.task.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.docs.lock().unwrap_or_else(|e| e.into_inner())
    }
}
