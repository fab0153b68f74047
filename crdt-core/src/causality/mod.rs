//! The causality layer: who made an event, and which events a replica has seen.
//!
//! Nothing here knows about any data type. The CRDTs in [`crate::state`] and the later document
//! types build on these few concepts:
//!
//! - [`ReplicaId`]: who makes events;
//! - [`Dot`]: one event, (replica, counter); [`DotRange`] a run of them;
//! - [`VersionVector`]: a causally closed set of events, with the happened-before order;
//! - [`CausalContext`]: any set of dots, kept compact (a version vector plus a few outliers);
//! - [`LamportTimestamp`] and [`LamportClock`]: a total order that respects causality.

mod causal_context;
mod dot;
mod lamport;
mod replica_id;
mod version_vector;

pub use causal_context::{CausalContext, NonCanonicalCausalContext};
pub use dot::{Dot, DotRange};
pub use lamport::{LamportClock, LamportTimestamp};
pub use replica_id::{ParseReplicaIdError, ReplicaId};
pub use version_vector::{Causality, NonCanonicalVersionVector, VersionVector};
