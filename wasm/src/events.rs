//! Change events for JS listeners: the core's patches with text positions in the document's
//! index unit, turned into plain JS objects.
//!
//! The core counts text positions in chars. For UTF-16 each text patch's position is the
//! UTF-16 length of the text before it *at the moment of that patch*. When the texts involved
//! hold only Basic Multilingual Plane characters the two counts agree (the common case, no
//! work). Otherwise the states before each patch are rebuilt backwards from the state after
//! the batch, which the document holds when the patches are converted.

use crdt_core::{ContainerId, Document, Origin, Patch, PatchAction, PathSegment, TextId, Value};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::convert::value_to_js;
use crate::shared::{DocHandle, IndexUnit};

/// One commit's or one update's patches, ready for JS.
pub(crate) struct Event {
    origin: Origin,
    patches: Vec<Patch>,
    /// For each patch of a text: its position and length in the JS unit.
    text_positions: Vec<Option<(usize, usize)>>,
    /// For each patch: the kind of its container, as JS names it.
    kinds: Vec<&'static str>,
}

/// Converts the batches one call produced (in order), `doc` being the state after all of
/// them. Text positions are computed over the batches together, so a call that produces
/// several (a sync message that unblocks buffered updates) still gets each patch's position
/// in the state it applied to.
pub(crate) fn convert(
    doc: &Document,
    batches: Vec<(Origin, Vec<Patch>)>,
    unit: IndexUnit,
) -> Vec<Event> {
    convert_with(
        doc,
        &|text| doc.text(text).unwrap_or_default(),
        batches,
        unit,
    )
}

/// [`convert`] for patches whose final state is not `doc`'s (a `diff` to an earlier
/// version): `final_text` gives each text's content after the patches. `doc` still names
/// the kinds of containers.
pub(crate) fn convert_with(
    doc: &Document,
    final_text: &dyn Fn(TextId) -> String,
    batches: Vec<(Origin, Vec<Patch>)>,
    unit: IndexUnit,
) -> Vec<Event> {
    let sizes: Vec<usize> = batches.iter().map(|(_, patches)| patches.len()).collect();
    let origins: Vec<Origin> = batches.iter().map(|(origin, _)| *origin).collect();
    let patches: Vec<Patch> = batches
        .into_iter()
        .flat_map(|(_, patches)| patches)
        .collect();
    let mut text_positions = vec![None; patches.len()];
    let mut texts: Vec<ContainerId> = Vec::new();
    for patch in &patches {
        if matches!(
            patch.action,
            PatchAction::TextInsert { .. } | PatchAction::TextDelete { .. }
        ) && !texts.contains(&patch.container)
        {
            texts.push(patch.container);
        }
    }
    for text in texts {
        let indices: Vec<usize> = (0..patches.len())
            .filter(|&i| patches[i].container == text)
            .collect();
        let final_text = final_text(TextId(text));
        positions_in_unit(&final_text, &patches, &indices, unit, &mut text_positions);
    }
    let mut kinds: Vec<&'static str> = patches
        .iter()
        .map(|patch| match doc.kind_of(patch.container) {
            Some(kind) => crate::convert::kind_name(kind),
            None => "map",
        })
        .collect();
    // Split back into one event per batch.
    let mut events = Vec::with_capacity(sizes.len());
    let mut patches = patches.into_iter();
    let mut rest_positions = text_positions.as_slice();
    for (size, origin) in sizes.into_iter().zip(origins) {
        let (positions, later) = rest_positions.split_at(size);
        rest_positions = later;
        let batch_kinds: Vec<&'static str> = kinds.drain(..size).collect();
        events.push(Event {
            origin,
            patches: patches.by_ref().take(size).collect(),
            text_positions: positions.to_vec(),
            kinds: batch_kinds,
        });
    }
    events
}

fn is_bmp(s: &str) -> bool {
    s.chars().all(|c| (c as u32) < 0x1_0000)
}

fn utf16_len(chars: &[char]) -> usize {
    chars.iter().map(|c| c.len_utf16()).sum()
}

/// Fills `out[i]` for the text patches `indices` (in order) of one text whose state after
/// them is `final_text`.
fn positions_in_unit(
    final_text: &str,
    patches: &[Patch],
    indices: &[usize],
    unit: IndexUnit,
    out: &mut [Option<(usize, usize)>],
) {
    let char_positions = |i: usize| match &patches[i].action {
        PatchAction::TextInsert { index, text } => Some((*index, text.chars().count())),
        PatchAction::TextDelete { index, len, .. } => Some((*index, *len)),
        _ => None,
    };
    let all_bmp = is_bmp(final_text)
        && indices.iter().all(|&i| match &patches[i].action {
            PatchAction::TextInsert { text, .. } | PatchAction::TextDelete { text, .. } => {
                is_bmp(text)
            }
            _ => true,
        });
    if unit == IndexUnit::CodePoint || all_bmp {
        for &i in indices {
            out[i] = char_positions(i);
        }
        return;
    }
    // Walk back from the final state: undoing patch k gives the state before it.
    let mut state: Vec<char> = final_text.chars().collect();
    for &i in indices.iter().rev() {
        match &patches[i].action {
            PatchAction::TextInsert { index, text } => {
                let at = (*index).min(state.len());
                let n = text.chars().count().min(state.len() - at);
                out[i] = Some((utf16_len(&state[..at]), text.encode_utf16().count()));
                state.drain(at..at + n);
            }
            PatchAction::TextDelete { index, text, .. } => {
                let at = (*index).min(state.len());
                out[i] = Some((utf16_len(&state[..at]), text.encode_utf16().count()));
                state.splice(at..at, text.chars());
            }
            _ => {}
        }
    }
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Setting a fresh plain object's own data property cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn usize_js(n: usize) -> JsValue {
    JsValue::from_f64(n as f64)
}

impl Event {
    /// `{ origin, changes: [{ path, kind, action, ... }] }`; see `index.d.ts` (`DocEvent`).
    pub(crate) fn to_js(&self, doc: &DocHandle) -> JsValue {
        let event = Object::new();
        let origin = match self.origin {
            Origin::Local => "local",
            _ => "remote",
        };
        set(&event, "origin", &JsValue::from_str(origin));
        set(&event, "changes", &self.changes_to_js(doc));
        event.into()
    }

    /// The event's `changes` array alone (what `diff` returns).
    pub(crate) fn changes_to_js(&self, doc: &DocHandle) -> Array {
        let changes = Array::new();
        for ((patch, text_position), kind) in self
            .patches
            .iter()
            .zip(&self.text_positions)
            .zip(&self.kinds)
        {
            let change = patch_to_js(doc, patch, *text_position);
            set(&change, "kind", &JsValue::from_str(kind));
            changes.push(&change);
        }
        changes
    }
}

fn patch_to_js(doc: &DocHandle, patch: &Patch, text_position: Option<(usize, usize)>) -> Object {
    let change = Object::new();
    let path: JsValue = match &patch.path {
        Some(path) => path
            .segments()
            .into_iter()
            .map(|segment| match segment {
                PathSegment::Key(key) => JsValue::from_str(key),
                PathSegment::Index(index) => usize_js(*index),
            })
            .collect::<Array>()
            .into(),
        None => JsValue::NULL,
    };
    set(&change, "path", &path);
    let value_js = |value: &Value| value_to_js(doc, value);
    let (action, fields): (&str, Vec<(&str, JsValue)>) = match &patch.action {
        PatchAction::MapSet { key, value } => (
            "set",
            vec![("key", JsValue::from_str(key)), ("value", value_js(value))],
        ),
        PatchAction::MapDelete { key } => ("delete", vec![("key", JsValue::from_str(key))]),
        PatchAction::ListInsert { index, values } => (
            "insert",
            vec![
                ("index", usize_js(*index)),
                (
                    "values",
                    values.iter().map(value_js).collect::<Array>().into(),
                ),
            ],
        ),
        PatchAction::ListDelete { index, len } => (
            "delete",
            vec![("index", usize_js(*index)), ("length", usize_js(*len))],
        ),
        PatchAction::TextInsert { index, text } => {
            let (index, _) = text_position.unwrap_or((*index, 0));
            (
                "insert",
                vec![
                    ("index", usize_js(index)),
                    ("text", JsValue::from_str(text)),
                ],
            )
        }
        PatchAction::TextDelete { index, len, text } => {
            let (index, len) = text_position.unwrap_or((*index, *len));
            (
                "delete",
                vec![
                    ("index", usize_js(index)),
                    ("length", usize_js(len)),
                    ("text", JsValue::from_str(text)),
                ],
            )
        }
        PatchAction::Increment { by } => {
            ("increment", vec![("by", crate::convert::i64_to_js(*by))])
        }
        PatchAction::RegisterSet { value } => (
            "set",
            vec![("value", value.as_ref().map_or(JsValue::NULL, value_js))],
        ),
    };
    set(&change, "action", &JsValue::from_str(action));
    for (key, value) in fields {
        set(&change, key, &value);
    }
    change
}
