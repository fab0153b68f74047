//! The state-based types for JavaScript: `PNCounter`, `AwSet` (of strings), `MvRegister`
//! (of strings) and `OrMap` (string keys to multi-value string registers), each mutation
//! returning its delta as bytes.
//!
//! Deltas and whole states are the same type, encoded with the core's versioned, checked
//! codec: ship either, in any order, any number of times, and `merge` them; every replica
//! that merged the same deltas holds the same state.

use std::cell::RefCell;

use crdt_core::PNCounter as CorePnCounter;
use crdt_core::codec::Encode;
use crdt_core::{AwSet as CoreAwSet, MvRegister as CoreMvRegister, OrMap as CoreOrMap};
use crdt_core::{ReplicaId, StateCrdt};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::error::{JsFailure, JsResult};

/// A replica id from an optional JS string (random when absent).
fn replica(value: Option<String>) -> JsResult<ReplicaId> {
    match value {
        None => Ok(ReplicaId::random()),
        Some(text) => text.parse().map_err(|_| {
            JsFailure::new(
                "INVALID_REPLICA",
                format!("{text:?} is not a replica id (32 hex digits)"),
            )
        }),
    }
}

fn encoded<T: Encode>(value: &T) -> Uint8Array {
    Uint8Array::from(value.encode().as_slice())
}

fn decoded<T: Encode>(bytes: &[u8]) -> JsResult<T> {
    T::decode(bytes).map_err(|e| JsFailure::new("BAD_ENCODING", e.to_string()))
}

/// Merges encoded `bytes` into `state`; true if it changed.
fn merge_into<T: Encode + StateCrdt>(state: &RefCell<T>, bytes: &[u8]) -> JsResult<bool> {
    let other: T = decoded(bytes)?;
    let mut state = borrow(state)?;
    if state.includes(&other) {
        return Ok(false);
    }
    state.merge(&other);
    Ok(true)
}

fn borrow<T>(cell: &RefCell<T>) -> JsResult<std::cell::RefMut<'_, T>> {
    cell.try_borrow_mut()
        .map_err(|_| JsFailure::new("REENTRANT", "busy with another call"))
}

fn amount(value: &JsValue) -> JsResult<i64> {
    match crate::convert::js_to_value(value)? {
        crdt_core::Value::Int(n) => Ok(n),
        _ => Err(JsFailure::invalid_argument(
            "expected an integer (a safe-integer number or a bigint)",
        )),
    }
}

/// A counter every replica adds to and subtracts from (state-based, with deltas).
#[wasm_bindgen]
pub struct PNCounter {
    replica: ReplicaId,
    state: RefCell<CorePnCounter>,
}

#[wasm_bindgen]
impl PNCounter {
    /// A counter at 0, changed as `replica` (32 hex digits; random by default).
    #[wasm_bindgen(constructor)]
    pub fn new(replica_id: Option<String>) -> Result<PNCounter, JsFailure> {
        Ok(PNCounter {
            replica: replica(replica_id)?,
            state: RefCell::new(CorePnCounter::default()),
        })
    }

    /// A counter from `encode()`'s bytes (or a delta), changed as `replica`.
    pub fn decode(bytes: &[u8], replica_id: Option<String>) -> Result<PNCounter, JsFailure> {
        Ok(PNCounter {
            replica: replica(replica_id)?,
            state: RefCell::new(decoded(bytes)?),
        })
    }

    /// Adds `by` (negative to subtract); returns the delta to send to peers.
    pub fn add(&self, by: JsValue) -> Result<Uint8Array, JsFailure> {
        let by = amount(&by)?;
        let delta = borrow(&self.state)?.add(self.replica, by);
        Ok(encoded(&delta))
    }

    /// The sum of every replica's additions.
    #[wasm_bindgen(getter)]
    pub fn value(&self) -> Result<JsValue, JsFailure> {
        Ok(crate::convert::i64_to_js(borrow(&self.state)?.value()))
    }

    /// Merges a peer's delta or state; true if it changed this counter.
    pub fn merge(&self, bytes: &[u8]) -> Result<bool, JsFailure> {
        merge_into(&self.state, bytes)
    }

    /// The whole state, encoded.
    pub fn encode(&self) -> Result<Uint8Array, JsFailure> {
        Ok(encoded(&*borrow(&self.state)?))
    }
}

/// A set of strings where an add wins over a concurrent remove (state-based, with deltas).
#[wasm_bindgen]
pub struct AwSet {
    replica: ReplicaId,
    state: RefCell<CoreAwSet<String>>,
}

#[wasm_bindgen]
impl AwSet {
    /// An empty set, changed as `replica` (random by default).
    #[wasm_bindgen(constructor)]
    pub fn new(replica_id: Option<String>) -> Result<AwSet, JsFailure> {
        Ok(AwSet {
            replica: replica(replica_id)?,
            state: RefCell::new(CoreAwSet::default()),
        })
    }

    /// A set from `encode()`'s bytes (or a delta), changed as `replica`.
    pub fn decode(bytes: &[u8], replica_id: Option<String>) -> Result<AwSet, JsFailure> {
        Ok(AwSet {
            replica: replica(replica_id)?,
            state: RefCell::new(decoded(bytes)?),
        })
    }

    /// Adds `element`; returns the delta.
    pub fn add(&self, element: String) -> Result<Uint8Array, JsFailure> {
        let delta = borrow(&self.state)?.insert(self.replica, element);
        Ok(encoded(&delta))
    }

    /// Removes `element` (the adds of it seen so far); returns the delta.
    pub fn delete(&self, element: String) -> Result<Uint8Array, JsFailure> {
        let delta = borrow(&self.state)?.remove(&element);
        Ok(encoded(&delta))
    }

    /// True if `element` is in the set.
    pub fn has(&self, element: String) -> Result<bool, JsFailure> {
        Ok(borrow(&self.state)?.contains(&element))
    }

    /// The elements, in order.
    pub fn values(&self) -> Result<Array, JsFailure> {
        Ok(borrow(&self.state)?
            .iter()
            .map(|s| JsValue::from_str(s))
            .collect())
    }

    /// How many elements.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> Result<usize, JsFailure> {
        Ok(borrow(&self.state)?.len())
    }

    /// Merges a peer's delta or state; true if it changed this set.
    pub fn merge(&self, bytes: &[u8]) -> Result<bool, JsFailure> {
        merge_into(&self.state, bytes)
    }

    /// The whole state, encoded.
    pub fn encode(&self) -> Result<Uint8Array, JsFailure> {
        Ok(encoded(&*borrow(&self.state)?))
    }
}

/// A register of strings that keeps every concurrently written value (state-based, with
/// deltas).
#[wasm_bindgen]
pub struct MvRegister {
    replica: ReplicaId,
    state: RefCell<CoreMvRegister<String>>,
}

#[wasm_bindgen]
impl MvRegister {
    /// An empty register, changed as `replica` (random by default).
    #[wasm_bindgen(constructor)]
    pub fn new(replica_id: Option<String>) -> Result<MvRegister, JsFailure> {
        Ok(MvRegister {
            replica: replica(replica_id)?,
            state: RefCell::new(CoreMvRegister::default()),
        })
    }

    /// A register from `encode()`'s bytes (or a delta), changed as `replica`.
    pub fn decode(bytes: &[u8], replica_id: Option<String>) -> Result<MvRegister, JsFailure> {
        Ok(MvRegister {
            replica: replica(replica_id)?,
            state: RefCell::new(decoded(bytes)?),
        })
    }

    /// Sets the value (replacing every value seen); returns the delta.
    pub fn set(&self, value: String) -> Result<Uint8Array, JsFailure> {
        let delta = borrow(&self.state)?.set(self.replica, value);
        Ok(encoded(&delta))
    }

    /// Clears the values seen; returns the delta.
    pub fn clear(&self) -> Result<Uint8Array, JsFailure> {
        let delta = borrow(&self.state)?.clear();
        Ok(encoded(&delta))
    }

    /// Every value written concurrently and not overwritten since.
    pub fn values(&self) -> Result<Array, JsFailure> {
        Ok(borrow(&self.state)?
            .values()
            .map(|s| JsValue::from_str(s))
            .collect())
    }

    /// Merges a peer's delta or state; true if it changed this register.
    pub fn merge(&self, bytes: &[u8]) -> Result<bool, JsFailure> {
        merge_into(&self.state, bytes)
    }

    /// The whole state, encoded.
    pub fn encode(&self) -> Result<Uint8Array, JsFailure> {
        Ok(encoded(&*borrow(&self.state)?))
    }
}

/// A map from string keys to multi-value string registers, where a write wins over a
/// concurrent delete of its key (state-based, with deltas).
#[wasm_bindgen]
pub struct OrMap {
    replica: ReplicaId,
    state: RefCell<CoreOrMap<String, CoreMvRegister<String>>>,
}

fn strings<'a>(values: impl Iterator<Item = &'a String>) -> Array {
    values.map(|s| JsValue::from_str(s)).collect()
}

#[wasm_bindgen]
impl OrMap {
    /// An empty map, changed as `replica` (random by default).
    #[wasm_bindgen(constructor)]
    pub fn new(replica_id: Option<String>) -> Result<OrMap, JsFailure> {
        Ok(OrMap {
            replica: replica(replica_id)?,
            state: RefCell::new(CoreOrMap::default()),
        })
    }

    /// A map from `encode()`'s bytes (or a delta), changed as `replica`.
    pub fn decode(bytes: &[u8], replica_id: Option<String>) -> Result<OrMap, JsFailure> {
        Ok(OrMap {
            replica: replica(replica_id)?,
            state: RefCell::new(decoded(bytes)?),
        })
    }

    /// Writes `value` under `key` (replacing every value seen there); returns the delta.
    pub fn set(&self, key: String, value: String) -> Result<Uint8Array, JsFailure> {
        let replica = self.replica;
        let delta =
            borrow(&self.state)?.update(replica, key, |register| register.set(replica, value));
        Ok(encoded(&delta))
    }

    /// Deletes `key` (the writes to it seen so far; a concurrent write keeps it); returns the
    /// delta.
    pub fn delete(&self, key: String) -> Result<Uint8Array, JsFailure> {
        let delta = borrow(&self.state)?.remove(&key);
        Ok(encoded(&delta))
    }

    /// The values under `key`: one, or several written concurrently; `undefined` if absent.
    pub fn get(&self, key: String) -> Result<Option<Array>, JsFailure> {
        Ok(borrow(&self.state)?
            .get(&key)
            .map(|register| strings(register.values())))
    }

    /// True if `key` is present.
    pub fn has(&self, key: String) -> Result<bool, JsFailure> {
        Ok(borrow(&self.state)?.contains_key(&key))
    }

    /// The present keys, in order.
    pub fn keys(&self) -> Result<Array, JsFailure> {
        Ok(strings(borrow(&self.state)?.keys()))
    }

    /// How many keys are present.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> Result<usize, JsFailure> {
        Ok(borrow(&self.state)?.len())
    }

    /// Every present key with its values, as a plain object.
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> Result<JsValue, JsFailure> {
        let object = js_sys::Object::new();
        for (key, register) in borrow(&self.state)?.iter() {
            // Setting a fresh plain object's own data property cannot fail.
            let _ = js_sys::Reflect::set(
                &object,
                &JsValue::from_str(key),
                &strings(register.values()),
            );
        }
        Ok(object.into())
    }

    /// Merges a peer's delta or state; true if it changed this map.
    pub fn merge(&self, bytes: &[u8]) -> Result<bool, JsFailure> {
        merge_into(&self.state, bytes)
    }

    /// The whole state, encoded.
    pub fn encode(&self) -> Result<Uint8Array, JsFailure> {
        Ok(encoded(&*borrow(&self.state)?))
    }
}
