//! Change callbacks: what happened to an open document, delivered to the app's callbacks on
//! one dispatcher thread per client.
//!
//! Events are recorded where they happen (the core's subscriber for local and remote patches,
//! the connection task for acknowledgements and errors), always while the document's lock is
//! held, so they are queued in the order the document went through them. Recording only
//! appends to the document's bounded queue (`EventHub`); the callbacks run later on the
//! dispatcher thread, which holds no lock of the client while it calls them. Lock order: the
//! document's, then its hub's, then the dispatcher's queue; callbacks run under none of them.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use crdt_core::{Document, Origin, Patch, SubscriptionId, VersionVector};

use crate::error::DocSyncError;

/// Events queued for one document before the oldest are dropped (see [`DocEvent::Lagged`]).
pub(crate) const MAX_QUEUED_EVENTS: usize = 4096;
/// Patches queued for one document before the oldest events are dropped.
pub(crate) const MAX_QUEUED_PATCHES: usize = 1 << 18;

/// Something that happened to an open document, as given to a callback registered with
/// [`DocHandle::on_event`](crate::DocHandle::on_event).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DocEvent {
    /// The document changed: a local edit ([`Origin::Local`], one event per
    /// [`DocHandle::edit`](crate::DocHandle::edit) that changed something) or changes from the
    /// server ([`Origin::Remote`]). Applying `patches` in order to the document as it was gives
    /// the document after (the crdt-core [`Patch`] contract).
    Changed {
        /// Where the change came from.
        origin: Origin,
        /// What changed, in order.
        patches: Vec<Patch>,
    },
    /// The server committed batch `batch` of this client's changes to its storage.
    Acknowledged {
        /// The batch number (counted per connection).
        batch: u64,
        /// The server's durable version after this batch.
        version: VersionVector,
    },
    /// Everything the document holds is now durably stored on the server
    /// ([`DocHandle::is_saved`](crate::DocHandle::is_saved) turned true).
    Saved,
    /// The server refused something or an update failed; the same error
    /// [`DocHandle::last_error`](crate::DocHandle::last_error) now returns.
    Error(DocSyncError),
    /// The callbacks fell behind: `missed` older events were dropped to bound memory. Read the
    /// document again instead of relying on patches.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}

impl fmt::Display for DocEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocEvent::Changed { origin, patches } => {
                write!(f, "{origin:?} change ({} patches)", patches.len())
            }
            DocEvent::Acknowledged { batch, .. } => write!(f, "batch {batch} acknowledged"),
            DocEvent::Saved => f.write_str("saved"),
            DocEvent::Error(error) => write!(f, "error: {error}"),
            DocEvent::Lagged { missed } => write!(f, "{missed} events dropped"),
        }
    }
}

type Callback = Box<dyn FnMut(&DocEvent) + Send>;

struct Subscriber {
    id: u64,
    /// The first event sequence number it receives (nothing from before it subscribed).
    from: u64,
    active: AtomicBool,
    callback: Mutex<Callback>,
}

#[derive(Default)]
struct HubState {
    subscribers: Vec<Arc<Subscriber>>,
    next_subscriber: u64,
    /// Events with their sequence numbers, oldest first.
    queue: VecDeque<(u64, DocEvent)>,
    queued_patches: usize,
    next_seq: u64,
    /// Events dropped since the last delivery.
    missed: u64,
    /// Whether the hub is in the dispatcher's ready list.
    scheduled: bool,
    /// The crdt-core subscription feeding `Changed` events (patches are worked out only while
    /// the document has a subscriber, so it is installed only while a callback is).
    core: Option<SubscriptionId>,
}

/// One document's callbacks and undelivered events.
pub(crate) struct EventHub {
    state: Mutex<HubState>,
    dispatcher: Arc<Dispatcher>,
}

impl EventHub {
    pub(crate) fn new(dispatcher: Arc<Dispatcher>) -> Arc<EventHub> {
        Arc::new(EventHub {
            state: Mutex::new(HubState::default()),
            dispatcher,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a callback; `document` is the hub's document, locked by the caller.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        document: &mut Document,
        callback: Callback,
    ) -> Subscription {
        let mut state = self.lock();
        if state.core.is_none() {
            let hub = Arc::downgrade(self);
            state.core = Some(document.subscribe(Box::new(move |origin, patches| {
                if let Some(hub) = hub.upgrade() {
                    hub.record(DocEvent::Changed {
                        origin,
                        patches: patches.to_vec(),
                    });
                }
            })));
        }
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        let from = state.next_seq;
        state.subscribers.push(Arc::new(Subscriber {
            id,
            from,
            active: AtomicBool::new(true),
            callback: Mutex::new(callback),
        }));
        drop(state);
        self.dispatcher.add_live();
        Subscription {
            hub: Arc::downgrade(self),
            id,
            done: false,
        }
    }

    /// Removes the crdt-core subscription once no callback is left; `document` is the hub's
    /// document, locked by the caller. (Unsubscribing does not take the document's lock, so a
    /// guard may be dropped anywhere; the core subscription goes at the next edit or update.)
    pub(crate) fn tidy(&self, document: &mut Document) {
        let mut state = self.lock();
        if state.subscribers.is_empty()
            && let Some(core) = state.core.take()
        {
            document.unsubscribe(core);
        }
    }

    fn unsubscribe(&self, id: u64) {
        let mut state = self.lock();
        let before = state.subscribers.len();
        state.subscribers.retain(|subscriber| {
            if subscriber.id == id {
                subscriber.active.store(false, Ordering::SeqCst);
                false
            } else {
                true
            }
        });
        let removed = before != state.subscribers.len();
        drop(state);
        if removed {
            self.dispatcher.remove_live();
        }
    }

    /// Queues an event for the callbacks (nothing if there are none). Called with the
    /// document's lock held, so events keep the document's order; never blocks for long.
    pub(crate) fn record(self: &Arc<Self>, event: DocEvent) {
        let mut state = self.lock();
        if state.subscribers.is_empty() {
            return;
        }
        let patches = match &event {
            DocEvent::Changed { patches, .. } => patches.len(),
            _ => 0,
        };
        if !state.queue.is_empty()
            && (state.queue.len() >= MAX_QUEUED_EVENTS
                || state.queued_patches + patches > MAX_QUEUED_PATCHES)
        {
            let dropped = state.queue.len() as u64;
            state.missed += dropped;
            state.queue.clear();
            state.queued_patches = 0;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.queue.push_back((seq, event));
        state.queued_patches += patches;
        if !state.scheduled {
            state.scheduled = true;
            self.dispatcher.schedule(Arc::clone(self));
        }
    }

    /// Delivers what is queued (on the dispatcher thread, no lock held during the calls).
    fn deliver(&self) {
        let (events, missed, subscribers) = {
            let mut state = self.lock();
            state.scheduled = false;
            state.queued_patches = 0;
            (
                std::mem::take(&mut state.queue),
                std::mem::take(&mut state.missed),
                state.subscribers.clone(),
            )
        };
        if missed > 0 {
            let first = events.front().map_or(u64::MAX, |(seq, _)| *seq);
            let lagged = DocEvent::Lagged { missed };
            for subscriber in &subscribers {
                // Only those that were there for some of the dropped events.
                if subscriber.from < first {
                    call(subscriber, &lagged);
                }
            }
        }
        for (seq, event) in &events {
            for subscriber in &subscribers {
                if *seq >= subscriber.from {
                    call(subscriber, event);
                }
            }
        }
    }
}

fn call(subscriber: &Subscriber, event: &DocEvent) {
    if !subscriber.active.load(Ordering::SeqCst) {
        return;
    }
    let mut callback = subscriber
        .callback
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if catch_unwind(AssertUnwindSafe(|| (*callback)(event))).is_err() {
        tracing::error!(%event, "a document callback panicked; the client carries on");
    }
}

/// Keeps a callback registered; dropping it (or [`Subscription::unsubscribe`]) removes it.
///
/// ```no_run
/// # fn example(notes: &sync_client::DocHandle) {
/// let subscription = notes.on_event(|event| println!("{event}"));
/// // ... later: no call starts after this returns (one already running finishes).
/// subscription.unsubscribe();
/// # }
/// ```
#[must_use = "dropping the Subscription unsubscribes the callback at once"]
pub struct Subscription {
    hub: Weak<EventHub>,
    id: u64,
    done: bool,
}

impl Subscription {
    /// Removes the callback: no call of it starts after this returns (a call already running
    /// on the dispatcher thread finishes). The same as dropping the guard.
    pub fn unsubscribe(mut self) {
        self.remove();
    }

    /// Keeps the callback registered for as long as the document is open, without a guard.
    pub fn detach(mut self) {
        self.done = true;
    }

    fn remove(&mut self) {
        if !self.done {
            self.done = true;
            if let Some(hub) = self.hub.upgrade() {
                hub.unsubscribe(self.id);
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.remove();
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

#[derive(Default)]
struct DispatchState {
    ready: VecDeque<Arc<EventHub>>,
    /// Registered callbacks over all documents: the thread runs while there are any.
    live: usize,
    running: bool,
}

/// The client's dispatcher: one thread (started with the first callback, ending when the last
/// one is removed and nothing is left to deliver) calling the callbacks of every document.
#[derive(Default)]
pub(crate) struct Dispatcher {
    state: Mutex<DispatchState>,
    wake: Condvar,
}

impl Dispatcher {
    fn lock(&self) -> MutexGuard<'_, DispatchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_live(self: &Arc<Self>) {
        let mut state = self.lock();
        state.live += 1;
        self.ensure_running(&mut state);
    }

    /// Starts the thread unless it runs; `state` is this dispatcher's, locked. If the system
    /// refuses a thread, events wait in their queues (bounded) and the next event tries again.
    fn ensure_running(self: &Arc<Self>, state: &mut DispatchState) {
        if state.running {
            return;
        }
        let dispatcher = Arc::clone(self);
        match std::thread::Builder::new()
            .name("sync-client-events".into())
            .spawn(move || dispatcher.run())
        {
            Ok(_) => state.running = true,
            Err(error) => {
                tracing::error!(%error, "cannot start the callback thread; retried at the next event")
            }
        }
    }

    fn remove_live(&self) {
        let mut state = self.lock();
        state.live = state.live.saturating_sub(1);
        self.wake.notify_all();
    }

    fn schedule(self: &Arc<Self>, hub: Arc<EventHub>) {
        let mut state = self.lock();
        state.ready.push_back(hub);
        self.ensure_running(&mut state);
        self.wake.notify_all();
    }

    fn run(&self) {
        loop {
            let hub = {
                let mut state = self.lock();
                loop {
                    if let Some(hub) = state.ready.pop_front() {
                        break hub;
                    }
                    if state.live == 0 {
                        state.running = false;
                        return;
                    }
                    state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            };
            hub.deliver();
        }
    }
}
