//! The state a `Doc` and all its container handles share, and the rules for touching it.
//!
//! Invariants:
//! - No JavaScript code runs while the state is borrowed: JS callbacks (a `transact` function,
//!   event listeners) are called only after every borrow is released, so a callback may call
//!   back into the document freely, and no borrow can ever fail because of one. (A borrow that
//!   fails anyway is reported as a `REENTRANT` error, never a panic.)
//! - Every edit goes through [`DocHandle::edit`]: inside a JS `transact` it joins the open
//!   transaction, otherwise it is a transaction of its own.
//! - Events are taken from the core right after the call that caused them, while the document
//!   is still in the state they lead to (UTF-16 positions are computed from it), and delivered
//!   to listeners in order once the call is over.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crdt_core::{
    ChangeOptions, DocError, Document, OpenTransaction, Origin, Patch, SubscriptionId, Transaction,
};
use wasm_bindgen::prelude::*;

use crate::error::{JsFailure, JsResult};
use crate::events::{self, Event};

/// How text positions are counted in the JS API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IndexUnit {
    /// UTF-16 code units, as JS strings count them (the default).
    Utf16,
    /// Unicode code points (chars).
    CodePoint,
}

/// Where the document is: idle, or inside a JS `transact` (then the open transaction owns it).
/// Boxed: the document moves in and out of the open transaction without copying it.
enum Slot {
    Idle(Box<Document>),
    Open(Box<OpenTransaction>),
    /// Only while the document moves between the two states above.
    Moving,
}

/// The raw patches the core listener collected, waiting to be converted.
type CoreQueue = Arc<Mutex<Vec<(Origin, Vec<Patch>)>>>;

pub(crate) struct Shared {
    slot: Slot,
    pub(crate) unit: IndexUnit,
    core_queue: CoreQueue,
    /// The core subscription, present while at least one JS listener is.
    core_subscription: Option<SubscriptionId>,
    /// Converted events waiting for delivery.
    pending: Vec<Event>,
    listeners: Vec<(u32, js_sys::Function)>,
    next_listener: u32,
    delivering: bool,
}

/// A reference to the shared state: what `Doc` and every handle hold.
#[derive(Clone)]
pub(crate) struct DocHandle(Rc<RefCell<Shared>>);

impl DocHandle {
    pub(crate) fn new(doc: Document, unit: IndexUnit) -> DocHandle {
        DocHandle(Rc::new(RefCell::new(Shared {
            slot: Slot::Idle(Box::new(doc)),
            unit,
            core_queue: CoreQueue::default(),
            core_subscription: None,
            pending: Vec::new(),
            listeners: Vec::new(),
            next_listener: 0,
            delivering: false,
        })))
    }

    /// True if both handles refer to the same document.
    pub(crate) fn same(&self, other: &DocHandle) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    fn borrow(&self) -> JsResult<std::cell::Ref<'_, Shared>> {
        self.0.try_borrow().map_err(|_| reentrant())
    }

    fn borrow_mut(&self) -> JsResult<std::cell::RefMut<'_, Shared>> {
        self.0.try_borrow_mut().map_err(|_| reentrant())
    }

    /// The index unit of text positions.
    pub(crate) fn unit(&self) -> JsResult<IndexUnit> {
        Ok(self.borrow()?.unit)
    }

    /// Reads the document (as the open transaction has changed it, inside `transact`).
    pub(crate) fn read<R>(&self, read: impl FnOnce(&Document) -> JsResult<R>) -> JsResult<R> {
        let shared = self.borrow()?;
        match &shared.slot {
            Slot::Idle(doc) => read(doc),
            Slot::Open(open) => read(open.doc()),
            Slot::Moving => Err(reentrant()),
        }
    }

    /// Runs operations as one change: in the open transaction inside `transact`, else as a
    /// change of their own. Delivers the events afterwards.
    ///
    /// Generic only in this thin shell: the work is in [`edit_dyn`](Self::edit_dyn), compiled
    /// once (every edit method instantiating the whole path cost about 20 KB of wasm).
    pub(crate) fn edit<R>(
        &self,
        edit: impl FnOnce(&mut Transaction<'_>) -> Result<R, DocError>,
    ) -> JsResult<R> {
        let mut edit = Some(edit);
        let mut output = None;
        self.edit_dyn(&mut |tx| {
            if let Some(edit) = edit.take() {
                output = Some(edit(tx)?);
            }
            Ok(())
        })?;
        output.ok_or_else(reentrant)
    }

    fn edit_dyn(
        &self,
        edit: &mut dyn FnMut(&mut Transaction<'_>) -> Result<(), DocError>,
    ) -> JsResult<()> {
        let result = {
            let mut shared = self.borrow_mut()?;
            let result = match &mut shared.slot {
                Slot::Idle(doc) => doc.transact_with(stamped(), edit),
                Slot::Open(open) => open.edit(edit),
                Slot::Moving => return Err(reentrant()),
            };
            shared.collect_events();
            result
        };
        self.deliver();
        Ok(result?)
    }

    /// Changes the document outside any transaction (apply an update, merge, undo): refused
    /// inside `transact`, whose undo log must stay true. (A thin generic shell, like `edit`.)
    pub(crate) fn change<R>(
        &self,
        change: impl FnOnce(&mut Document) -> JsResult<R>,
    ) -> JsResult<R> {
        let mut change = Some(change);
        let mut output = None;
        self.change_dyn(&mut |doc| {
            if let Some(change) = change.take() {
                output = Some(change(doc)?);
            }
            Ok(())
        })?;
        output.ok_or_else(reentrant)
    }

    fn change_dyn(&self, change: &mut dyn FnMut(&mut Document) -> JsResult<()>) -> JsResult<()> {
        let result = {
            let mut shared = self.borrow_mut()?;
            let result = match &mut shared.slot {
                Slot::Idle(doc) => change(doc),
                Slot::Open(_) => Err(JsFailure::new(
                    "TRANSACTION_OPEN",
                    "this operation cannot run inside transact(); call it after the transaction",
                )),
                Slot::Moving => Err(reentrant()),
            };
            shared.collect_events();
            result
        };
        self.deliver();
        result
    }

    /// Runs `body` as one transaction: its edits become one change, committed when it returns
    /// and rolled back when it throws. Inside another `transact`, it joins that one.
    pub(crate) fn transact(
        &self,
        options: ChangeOptions,
        body: impl FnOnce() -> Result<JsValue, JsValue>,
    ) -> Result<JsValue, JsValue> {
        {
            let mut shared = self.borrow_mut()?;
            match std::mem::replace(&mut shared.slot, Slot::Moving) {
                Slot::Idle(doc) => {
                    shared.slot = Slot::Open(Box::new(OpenTransaction::begin(*doc, options)));
                }
                open @ Slot::Open(_) => {
                    shared.slot = open;
                    drop(shared);
                    return body(); // nested: part of the outer transaction
                }
                Slot::Moving => return Err(reentrant().into()),
            }
        }
        let result = body();
        {
            let mut shared = self.borrow_mut()?;
            if let Slot::Open(open) = std::mem::replace(&mut shared.slot, Slot::Moving) {
                let doc = if result.is_ok() {
                    open.commit()
                } else {
                    open.roll_back()
                };
                shared.slot = Slot::Idle(Box::new(doc));
            }
            shared.collect_events();
        }
        self.deliver();
        result
    }

    /// Adds a change listener; returns its id.
    pub(crate) fn subscribe(&self, listener: js_sys::Function) -> JsResult<u32> {
        let mut shared = self.borrow_mut()?;
        if shared.core_subscription.is_none() {
            let queue = Arc::clone(&shared.core_queue);
            let Slot::Idle(doc) = &mut shared.slot else {
                return Err(JsFailure::new(
                    "TRANSACTION_OPEN",
                    "subscribe before or after transact(), not inside it",
                ));
            };
            let id = doc.subscribe(Box::new(move |origin, patches| {
                if let Ok(mut queue) = queue.lock() {
                    queue.push((origin, patches.to_vec()));
                }
            }));
            shared.core_subscription = Some(id);
        }
        let id = shared.next_listener;
        shared.next_listener += 1;
        shared.listeners.push((id, listener));
        Ok(id)
    }

    /// Removes a listener; false if it was not there. The core stops collecting patches (and
    /// tracking paths) when the last one goes.
    pub(crate) fn unsubscribe(&self, id: u32) -> JsResult<bool> {
        let mut shared = self.borrow_mut()?;
        let before = shared.listeners.len();
        shared.listeners.retain(|(listener, _)| *listener != id);
        let removed = shared.listeners.len() != before;
        if let (true, Some(subscription)) = (shared.listeners.is_empty(), shared.core_subscription)
            && let Slot::Idle(doc) = &mut shared.slot
        {
            doc.unsubscribe(subscription);
            shared.core_subscription = None;
        }
        Ok(removed)
    }

    /// Calls the listeners with the pending events, oldest first, with no borrow held. Events
    /// caused by a listener's own edits are delivered by the same loop, after the current ones.
    fn deliver(&self) {
        let Ok(mut shared) = self.borrow_mut() else {
            return;
        };
        if shared.delivering || shared.pending.is_empty() {
            return;
        }
        shared.delivering = true;
        drop(shared);
        loop {
            let (event, listeners) = {
                let Ok(mut shared) = self.borrow_mut() else {
                    return;
                };
                if shared.pending.is_empty() {
                    shared.delivering = false;
                    return;
                }
                let event = shared.pending.remove(0);
                let listeners: Vec<js_sys::Function> =
                    shared.listeners.iter().map(|(_, f)| f.clone()).collect();
                (event, listeners)
            };
            let value = event.to_js(self);
            for listener in listeners {
                // A listener that throws does not stop the others or the edit (already done).
                let _ = listener.call1(&JsValue::UNDEFINED, &value);
            }
        }
    }
}

impl Shared {
    /// Converts what the core listener collected during the call that just ended, while the
    /// document is in the state the patches lead to.
    fn collect_events(&mut self) {
        let raw: Vec<(Origin, Vec<Patch>)> = match self.core_queue.lock() {
            Ok(mut queue) => std::mem::take(&mut *queue),
            Err(_) => return,
        };
        if raw.is_empty() {
            return;
        }
        let doc = match &self.slot {
            Slot::Idle(doc) => doc,
            Slot::Open(open) => open.doc(),
            Slot::Moving => return,
        };
        let converted = events::convert(doc, raw, self.unit);
        self.pending.extend(converted);
    }
}

/// The time in Unix milliseconds, from the JS clock.
pub(crate) fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// Options for a change made now: every local change carries its time, which undo uses to
/// join changes typed in quick succession into one step (and history views show).
fn stamped() -> ChangeOptions {
    ChangeOptions {
        message: None,
        timestamp: Some(now_ms()),
    }
}

fn reentrant() -> JsFailure {
    JsFailure::new(
        "REENTRANT",
        "the document is busy with another call (a getter or proxy called back into it)",
    )
}
