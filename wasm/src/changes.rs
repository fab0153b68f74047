//! The history as data: `changes` (who changed what, when, with the version after each
//! change, for history lists and time-travel sliders), `diff` between two versions as change
//! events, `compact`, `Doc.inspectUpdate`, and the version helpers (`versionIncludes`,
//! `versionMeet`, `versionJoin`) that sync code needs to compare what peers hold.

use crdt_core::codec::Encode;
use crdt_core::{Document, Dot, Origin, UpdateKind, VersionVector};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::doc::{Doc, parse_version};
use crate::error::{JsFailure, JsResult};

fn set(object: &Object, key: &str, value: &JsValue) {
    // Setting a fresh plain object's own data property cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn number(n: impl Into<f64>) -> JsValue {
    JsValue::from_f64(n.into())
}

fn version_bytes(version: &VersionVector) -> Uint8Array {
    Uint8Array::from(version.encode().as_slice())
}

/// An optional encoded version; `None` is `default`.
fn version_or(
    bytes: Option<Vec<u8>>,
    default: impl FnOnce() -> VersionVector,
) -> JsResult<VersionVector> {
    match bytes {
        Some(bytes) => parse_version(&bytes),
        None => Ok(default()),
    }
}

fn dot_to_js(dot: Dot) -> JsValue {
    let head = Object::new();
    set(
        &head,
        "replica",
        &JsValue::from_str(&dot.replica.to_string()),
    );
    set(&head, "counter", &number(dot.counter as f64));
    head.into()
}

#[wasm_bindgen]
impl Doc {
    /// The changes `until` holds and `since` lacks (defaults: the empty version and the
    /// current one), oldest first, as `ChangeRecord`s; each carries the version right after
    /// it, to give to `viewAt` or `diff`.
    pub fn changes(
        &self,
        since: Option<Vec<u8>>,
        until: Option<Vec<u8>>,
    ) -> Result<Array, JsFailure> {
        let since = version_or(since, VersionVector::default)?;
        self.handle().read(|doc| {
            let until = version_or(until, || doc.version())?;
            let changes = doc.changes_between(&since, &until)?;
            let mut after = since.clone();
            let records = Array::new();
            for change in changes {
                // A change is one replica's consecutive events, and the list respects
                // causality, so the versions after each prefix are versions of the document.
                let last = change.id.counter + change.events as u64 - 1;
                after.advance(change.id.replica, last);
                let record = Object::new();
                set(
                    &record,
                    "replica",
                    &JsValue::from_str(&change.id.replica.to_string()),
                );
                set(&record, "counter", &number(change.id.counter as f64));
                set(&record, "events", &number(change.events as f64));
                set(&record, "operations", &number(change.ops as f64));
                let message = change
                    .message
                    .as_deref()
                    .map_or(JsValue::NULL, JsValue::from_str);
                set(&record, "message", &message);
                let timestamp = change
                    .timestamp
                    .map_or(JsValue::NULL, |ms| number(ms as f64));
                set(&record, "timestamp", &timestamp);
                set(&record, "version", &version_bytes(&after));
                records.push(&record);
            }
            Ok(records)
        })
    }

    /// What changed from version `from` to version `to` (default: now), as the changes of a
    /// `DocEvent`: applied in order to `viewAt(from).toJSON()`, they give `viewAt(to)`'s.
    /// Throws `INVALID_ARGUMENT` if `to` does not include `from`.
    pub fn diff(&self, from: &[u8], to: Option<Vec<u8>>) -> Result<Array, JsFailure> {
        let from = parse_version(from)?;
        let handle = self.handle();
        let unit = handle.unit()?;
        handle.read(|doc| {
            let to = version_or(to, || doc.version())?;
            let patches = doc.diff(&from, &to)?;
            let view = doc.view_at(&to)?;
            let final_text = |text| view.text(text).unwrap_or_default();
            let events =
                crate::events::convert_with(doc, &final_text, vec![(Origin::Local, patches)], unit);
            Ok(events
                .first()
                .map_or_else(Array::new, |event| event.changes_to_js(&handle)))
        })
    }

    /// Drops the history before `stable` (a version every peer already holds, for example
    /// `versionMeet` of their versions), keeping the state and every later change: smaller to
    /// store and to load. Returns the version compacted to (at most `stable`). A peer that
    /// still lacks part of the dropped history gets `HISTORY_TRIMMED` when it syncs.
    pub fn compact(&self, stable: &[u8]) -> Result<Uint8Array, JsFailure> {
        let stable = parse_version(stable)?;
        let compacted = self.handle().change(|doc| Ok(doc.compact(&stable)?))?;
        Ok(version_bytes(&compacted))
    }

    /// What encoded bytes (an update, a snapshot or a shallow snapshot) hold, read without
    /// applying them: `UpdateInfo`. Throws `BAD_ENCODING` (or another load code) for bytes
    /// that are not one.
    #[wasm_bindgen(js_name = inspectUpdate)]
    pub fn inspect_update(bytes: &[u8]) -> Result<JsValue, JsFailure> {
        let info = Document::inspect_update(bytes)?;
        let object = Object::new();
        let kind = match &info.kind {
            UpdateKind::Changes => "changes",
            UpdateKind::Snapshot => "snapshot",
            UpdateKind::ShallowSnapshot { .. } => "shallowSnapshot",
        };
        set(&object, "kind", &JsValue::from_str(kind));
        if let UpdateKind::ShallowSnapshot { base } = &info.kind {
            set(&object, "base", &version_bytes(base));
        }
        let events = Array::new();
        for run in &info.events {
            let range = Object::new();
            set(
                &range,
                "replica",
                &JsValue::from_str(&run.replica.to_string()),
            );
            set(&range, "from", &number(run.counters.start as f64));
            set(&range, "to", &number(run.counters.end as f64));
            events.push(&range);
        }
        set(&object, "events", &events);
        set(&object, "eventCount", &number(info.event_count() as f64));
        let dependencies: Array = info
            .dependencies
            .iter()
            .map(|&dot| dot_to_js(dot))
            .collect();
        set(&object, "dependencies", &dependencies);
        set(&object, "operations", &number(info.operations as f64));
        set(&object, "bytes", &number(info.bytes as f64));
        Ok(object.into())
    }
}

/// True if version `a` holds every event version `b` holds (a peer at `a` lacks nothing of
/// `b`).
#[wasm_bindgen(js_name = versionIncludes)]
pub fn version_includes(a: &[u8], b: &[u8]) -> Result<bool, JsFailure> {
    Ok(parse_version(a)?.includes(&parse_version(b)?))
}

/// The events both versions hold (the entry-wise minimum): what every one of a set of peers
/// holds, when folded over their versions.
#[wasm_bindgen(js_name = versionMeet)]
pub fn version_meet(a: &[u8], b: &[u8]) -> Result<Uint8Array, JsFailure> {
    Ok(version_bytes(&parse_version(a)?.meet(&parse_version(b)?)))
}

/// The events either version holds (the entry-wise maximum).
#[wasm_bindgen(js_name = versionJoin)]
pub fn version_join(a: &[u8], b: &[u8]) -> Result<Uint8Array, JsFailure> {
    let mut joined = parse_version(a)?;
    joined.merge(&parse_version(b)?);
    Ok(version_bytes(&joined))
}
