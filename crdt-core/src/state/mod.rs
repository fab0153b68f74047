//! State-based CRDTs with delta mutators.
//!
//! Each type here is a join-semilattice: [`StateCrdt::merge`] is the join (least upper bound),
//! so merging is commutative, associative and idempotent, and replicas that merged the same
//! states hold equal states whatever the order or repetition. Following "Delta State Replicated
//! Data Types" (Almeida, Shoker, Baquero, 2018), every mutator also returns a *delta*: a small
//! state of the same type such that merging it anywhere has the effect of the mutation. Shipping
//! deltas instead of whole states is what [`DeltaSync`] does, falling back to the whole state
//! when a neighbour has fallen too far behind.
//!
//! | type | value | concurrent conflict |
//! | --- | --- | --- |
//! | [`GCounter`] | `u64`, grows only | increments add up |
//! | [`PNCounter`] | `i64` | increments and decrements add up |
//! | [`LwwRegister`] | one value | greatest timestamp wins |
//! | [`MvRegister`] | concurrent values | all kept until overwritten |
//! | [`GSet`] | a set, grows only | union |
//! | [`TwoPSet`] | a set; removed for good | remove wins, forever |
//! | [`AwSet`] | a set | add wins; no tombstones |
//! | [`RwSet`] | a set | remove wins |
//! | [`EwFlag`] / [`DwFlag`] | a boolean | enable wins / disable wins |
//! | [`OrMap`] | a map of any of the above | update wins over remove |
//!
//! All states are kept in a canonical form, so two replicas hold equal (`==`) states exactly
//! when they hold the same information.
//!
//! # One shape for every type
//!
//! - **Construction**: `Default::default()`, the bottom (a replica that has seen nothing).
//! - **Verbs**: sets `insert` and `remove`, registers `set` (and `clear` where a value can be
//!   withdrawn), counters `increment` and `decrement` (unsigned amounts) and `add` (a signed
//!   one), flags `enable` and `disable`, maps `update` and `remove`. The op-based twins in
//!   [`crate::op_based`] use the same verbs.
//! - **The replica comes first**, and only when the mutation makes an event of its own (a fresh
//!   dot or a count of its own): `insert(replica, x)`, `set(replica, v)`,
//!   `increment(replica, n)`. An observed-remove (`AwSet::remove`, `EwFlag::disable`,
//!   `OrMap::remove`, `clear`) only drops what this replica has seen, so it takes none; a remove
//!   that must win over concurrent inserts (`RwSet::remove`, `DwFlag::disable`) is an event and
//!   takes one. The compiler tells which.
//! - **Borrowing**: what is stored is taken by value (`insert(replica, element: T)`,
//!   `set(replica, value: T)`); what is only looked up or removed is borrowed (`remove(&T)`,
//!   `contains(&T)`, `get(&K)`), as in `std::collections`.
//! - **Every mutator returns its delta**, a value of the same type: `mutated == old ⊔ delta`.
//! - **Reading**: `value()` for a single value (counters, flags, [`LwwRegister`]), `values()`
//!   for the values a [`MvRegister`] keeps, `contains`/`iter`/`len`/`is_empty` for sets and maps.
//! - **Merging**: [`StateCrdt::merge`]`(&mut self, &Self)` for whole states and deltas alike.
//! - **Encoding**: [`Encode`](crate::codec::Encode): `encode() -> Vec<u8>` and
//!   `decode(&[u8]) -> Result<Self, DecodeError>`.

mod anti_entropy;
mod aw_set;
mod counters;
mod dot_store;
mod flags;
mod g_set;
mod lww_register;
mod mv_register;
mod or_map;
mod rw_set;
mod two_p_set;

pub use anti_entropy::{DeltaMessage, DeltaSync};
pub use aw_set::AwSet;
pub use counters::{GCounter, PNCounter};
pub use flags::{DwFlag, EwFlag};
pub use g_set::GSet;
pub use lww_register::LwwRegister;
pub use mv_register::MvRegister;
pub use or_map::OrMap;
pub use rw_set::RwSet;
pub use two_p_set::TwoPSet;

/// A state-based CRDT: a join-semilattice whose mutators return deltas.
///
/// `Default` is the bottom element: the state of a replica that has seen nothing.
///
/// ```
/// use crdt_core::{GCounter, ReplicaId, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut left = GCounter::default();
/// let mut right = GCounter::default();
/// let delta = left.increment(a, 2);
/// right.increment(b, 3);
///
/// // Merging the delta has the same effect as merging the whole state.
/// let mut via_delta = right.clone();
/// via_delta.merge(&delta);
/// right.merge(&left);
/// assert_eq!(via_delta, right);
/// assert_eq!(right.value(), 5);
/// ```
pub trait StateCrdt: Clone + Default + PartialEq {
    /// Joins `other` into `self`: afterwards `self` holds everything either held.
    fn merge(&mut self, other: &Self);

    /// True if merging `other` would not change `self` (`other` ⊑ `self`).
    fn includes(&self, other: &Self) -> bool {
        let mut joined = self.clone();
        joined.merge(other);
        joined == *self
    }

    /// A delta that resets what this replica has observed, used when an [`OrMap`] key holding
    /// this value is removed.
    ///
    /// Types with a causal context (the sets, registers and flags built on dots) return an
    /// observed-remove of their whole content: whatever was added concurrently survives. Types
    /// without one cannot forget a contribution without a tombstone, and return the bottom
    /// (their content is kept; see [`OrMap`] for what that means).
    fn reset_delta(&self) -> Self {
        Self::default()
    }
}
