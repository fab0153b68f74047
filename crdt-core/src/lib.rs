//! Conflict-free replicated data types (CRDTs) for local-first apps and sync servers.
//!
//! Replicas edit independently, exchange what they changed in any order, any number of times,
//! and end up with equal states: strong eventual consistency, with no coordination.
//!
//! This crate is pure: no I/O, no threads, no async. It builds for `wasm32-unknown-unknown`.
//!
//! - [`Document`]: a JSON-like document (maps, lists, texts, counters, registers) with
//!   transactions, events, history, undo and a compact binary form: what most apps want;
//! - [`Text`] and [`List`]: the sequence CRDT on its own;
//! - [`causality`]: replica ids, dots, version vectors, causal contexts, Lamport clocks;
//! - [`state`]: state-based CRDTs with delta mutators (counters, registers, sets, flags, maps)
//!   and [`DeltaSync`], a delta anti-entropy helper;
//! - [`op_based`] and [`delivery`]: operation-based CRDTs over causal delivery;
//! - [`codec`]: the versioned binary encoding of the state-based types, decoded defensively.
//!
//! A document's parts are opened by name, so replicas that open them at the same time share
//! them:
//!
//! ```
//! use crdt_core::{Document, MapId, ReplicaId};
//!
//! let mut alice = Document::new(ReplicaId::from_u128(1));
//! let mut bob = Document::new(ReplicaId::from_u128(2));
//! // Both open "title" on a fresh document, concurrently, and type.
//! let title = alice.text_at(MapId::ROOT, "title").unwrap();
//! alice.text_insert(title, 0, "Groceries").unwrap();
//! let title_at_bob = bob.text_at(MapId::ROOT, "title").unwrap();
//! bob.text_insert(title_at_bob, 0, "Weekend ").unwrap();
//!
//! // Exchange updates (any order, any number of times): one text, both edits.
//! alice.apply_update(&bob.update_since(&alice.version())).unwrap();
//! bob.apply_update(&alice.update_since(&bob.version())).unwrap();
//! assert_eq!(title, title_at_bob);
//! assert_eq!(alice.text(title).unwrap(), bob.text(title).unwrap());
//! assert_eq!(alice.text(title).unwrap().len(), "Weekend Groceries".len());
//! ```
//!
//! State-based types return a delta from each mutation:
//!
//! ```
//! use crdt_core::{AwSet, ReplicaId, StateCrdt};
//!
//! let alice = ReplicaId::from_u128(1);
//! let bob = ReplicaId::from_u128(2);
//! let mut at_alice = AwSet::default();
//! let mut at_bob = AwSet::default();
//!
//! // Each mutation returns a small delta to send to the other replicas.
//! let delta = at_alice.insert(alice, "buy milk");
//! at_bob.merge(&delta);
//! at_bob.insert(bob, "call mum");
//! at_alice.merge(&at_bob);
//!
//! assert_eq!(at_alice, at_bob);
//! assert_eq!(at_alice.len(), 2);
//! ```

mod bytes;
mod causal_graph;
pub mod causality;
mod checksum;
pub mod codec;
pub mod delivery;
mod document;
mod list;
pub mod op_based;
mod rle;
mod rope;
mod sequence;
pub mod state;
pub mod sync;
mod text;

pub use causality::{
    CausalContext, Causality, Dot, DotRange, LamportClock, LamportTimestamp, ReplicaId,
    VersionVector,
};
pub use delivery::{CausalChange, CausalDelivery, DeliveryError, DeliveryLimits};
#[cfg(feature = "json")]
pub use document::JsonStrings;
pub use document::{
    ChangeInfo, ChangeOptions, ContainerId, ContainerKind, CounterId, DocError, Document,
    DocumentView, HistoryError, ListId, Listener, MapId, NamedId, OpenTransaction, Origin, Patch,
    PatchAction, Path, PathSegment, RegisterId, SubscriptionId, TextId, Transaction, UndoManager,
    UpdateInfo, UpdateKind, Value,
};
pub use list::{Element, List, ListError};
pub use op_based::{OpAwSet, OpCounter, OpRegister};
pub use sequence::{Bias, Cursor, CursorError, LoadError};
pub use state::{
    AwSet, DeltaMessage, DeltaSync, DwFlag, EwFlag, GCounter, GSet, LwwRegister, MvRegister, OrMap,
    PNCounter, RwSet, StateCrdt, TwoPSet,
};
pub use sync::{
    LocalPresence, Message, PresenceEntry, PresenceSet, SessionLimits, SyncError, SyncSession,
};
pub use text::{Text, TextError};

/// The workspace README's Rust example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
