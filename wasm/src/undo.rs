//! `UndoManager`: undo and redo of this replica's own changes, with remote edits merged in.

use std::cell::RefCell;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::doc::Doc;
use crate::error::{JsFailure, JsResult};
use crate::shared::DocHandle;

/// Undo/redo of the local replica's changes. Remote changes are never undone, and undoing a
/// change keeps what others did since (an undone insert disappears even if text was typed
/// around it by a peer).
#[wasm_bindgen]
pub struct UndoManager {
    doc: DocHandle,
    /// `None` once destroyed.
    manager: RefCell<Option<crdt_core::UndoManager>>,
}

fn read_number(options: &JsValue, name: &str) -> JsResult<Option<f64>> {
    if options.is_undefined() || options.is_null() {
        return Ok(None);
    }
    let value = Reflect::get(options, &JsValue::from_str(name))
        .map_err(|_| JsFailure::invalid_argument("options must be an object"))?;
    if value.is_undefined() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(JsFailure::invalid_argument(format!(
            "{name} must be a non-negative number"
        ))),
    }
}

#[wasm_bindgen]
impl UndoManager {
    /// Starts recording `doc`'s local changes. `options.captureTimeout` (ms, default 500)
    /// joins changes made within that time of each other into one step; `options.maxSteps`
    /// (default 1000) bounds the undo stack. One manager per document: a new one replaces
    /// the previous one's recording.
    #[wasm_bindgen(constructor)]
    pub fn new(doc: &Doc, options: JsValue) -> Result<UndoManager, JsFailure> {
        let timeout = read_number(&options, "captureTimeout")?.unwrap_or(500.0);
        let max_steps = read_number(&options, "maxSteps")?;
        let handle = doc.handle();
        let manager = handle.change(|doc| {
            let mut manager = crdt_core::UndoManager::new(doc).with_capture_timeout(timeout as i64);
            if let Some(steps) = max_steps {
                manager = manager.with_max_steps(steps as usize);
            }
            Ok(manager)
        })?;
        Ok(UndoManager {
            doc: handle,
            manager: RefCell::new(Some(manager)),
        })
    }

    fn with<R>(
        &self,
        act: impl FnOnce(&mut crdt_core::UndoManager, &mut crdt_core::Document) -> JsResult<R>,
    ) -> JsResult<R> {
        let mut slot = self.manager.try_borrow_mut().map_err(|_| {
            JsFailure::new("REENTRANT", "the undo manager is busy with another call")
        })?;
        let manager = slot
            .as_mut()
            .ok_or_else(|| JsFailure::new("DESTROYED", "this undo manager was destroyed"))?;
        self.doc.change(|doc| act(manager, doc))
    }

    /// Undoes the last step; false if there was none. Listeners hear of it as a local change.
    pub fn undo(&self) -> Result<bool, JsFailure> {
        self.with(|manager, doc| Ok(manager.undo(doc)?))
    }

    /// Redoes the last undone step; false if there was none.
    pub fn redo(&self) -> Result<bool, JsFailure> {
        self.with(|manager, doc| Ok(manager.redo(doc)?))
    }

    /// True if there is a step to undo.
    #[wasm_bindgen(getter, js_name = canUndo)]
    pub fn can_undo(&self) -> Result<bool, JsFailure> {
        let slot = self.manager.try_borrow().map_err(|_| {
            JsFailure::new("REENTRANT", "the undo manager is busy with another call")
        })?;
        match slot.as_ref() {
            Some(manager) => self.doc.read(|doc| Ok(manager.can_undo(doc))),
            None => Ok(false),
        }
    }

    /// True if there is a step to redo.
    #[wasm_bindgen(getter, js_name = canRedo)]
    pub fn can_redo(&self) -> Result<bool, JsFailure> {
        let slot = self.manager.try_borrow().map_err(|_| {
            JsFailure::new("REENTRANT", "the undo manager is busy with another call")
        })?;
        Ok(slot.as_ref().is_some_and(|manager| manager.can_redo()))
    }

    /// Ends the current step: the next change starts a new one, even within the capture
    /// timeout.
    #[wasm_bindgen(js_name = stopCapturing)]
    pub fn stop_capturing(&self) -> Result<(), JsFailure> {
        self.with(|manager, doc| {
            manager.stop_capturing(doc);
            Ok(())
        })
    }

    /// Stops recording and drops every step (the document no longer keeps what undo needs).
    pub fn destroy(&self) -> Result<(), JsFailure> {
        let mut slot = self.manager.try_borrow_mut().map_err(|_| {
            JsFailure::new("REENTRANT", "the undo manager is busy with another call")
        })?;
        self.doc.change(|doc| {
            if let Some(manager) = slot.take() {
                manager.detach(doc);
            }
            Ok(())
        })
    }
}
