//! Operation-based CRDTs: replicas exchange the operations they made, delivered exactly once
//! and in causal order by a [`CausalDelivery`].
//!
//! They are the op-based twins of types in [`crate::state`]: same values, same resolution of
//! concurrent updates, but a replica ships each operation instead of a delta state. An operation
//! is small and says what the user did (add 5, write "blue", remove "milk" as seen here); the
//! price is that it must reach every replica once and after the operations it builds on, which
//! is what the [`CausalDelivery`] inside each replica ensures. Each operation is one event: its
//! [`Dot`] names it, and its dependencies are the heads of its author when it was made.
//!
//! | type | state-based twin | value |
//! | --- | --- | --- |
//! | [`OpCounter`] | [`PNCounter`](crate::PNCounter) | the sum of the amounts added |
//! | [`OpRegister`] | [`MvRegister`](crate::MvRegister) | concurrent values, plus a winner |
//! | [`OpAwSet`] | [`AwSet`](crate::AwSet) | a set; add wins over a concurrent remove |
//!
//! They share the shape of their twins (see [`crate::state`]): the same verbs (`insert` and
//! `remove(&T)`, `set` and `clear`, `increment`/`decrement` with unsigned amounts and a signed
//! `add`), the same accessors (`value()`, `values()`, `contains`, `iter`, `len`); the replica is
//! given once, to `new(replica)`, and every mutator returns the operation to send, which other
//! replicas [`apply`](OpCounter::apply).
//!
//! Operations have serde forms and a versioned binary envelope of their own ([`EncodeOp`]):
//! `[OP_FORMAT_VERSION][kind]` followed by the postcard body, decoded defensively.
//!
//! A replica issues at most `u64::MAX - 1` operations (its dots count them); past that its new
//! operations are refused everywhere, itself included. No real replica gets there.

mod aw_set;
mod counter;
mod register;

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use aw_set::{OpAwSet, SetAction, SetOp};
pub use counter::{CounterOp, OpCounter};
pub use register::{OpRegister, RegisterOp};

use crate::codec::{EnvelopeError, read_envelope, write_envelope};
use crate::delivery::{CausalChange, CausalDelivery, DeliveryError, check_change};
use crate::{Dot, ReplicaId, VersionVector};

/// The version of the operation envelope written by [`EncodeOp::encode`]; the only one
/// [`EncodeOp::decode`] reads so far.
pub const OP_FORMAT_VERSION: u8 = 1;

/// What an operation envelope holds: its second header byte.
///
/// ```
/// use crdt_core::op_based::OpKind;
///
/// assert_eq!(OpKind::Counter as u8, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum OpKind {
    /// A [`CounterOp`].
    Counter = 1,
    /// A [`RegisterOp`].
    Register = 2,
    /// A [`SetOp`].
    Set = 3,
}

/// Why bytes could not be decoded into an operation.
///
/// ```
/// use crdt_core::op_based::{CounterOp, EncodeOp, OpDecodeError};
///
/// assert_eq!(CounterOp::decode(&[1]), Err(OpDecodeError::MissingHeader));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpDecodeError {
    /// Fewer bytes than the two-byte header.
    MissingHeader,
    /// Written by an envelope version this build does not read (probably a newer release).
    UnsupportedVersion {
        /// The version found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The bytes hold another kind of operation.
    WrongKind {
        /// The kind asked for.
        expected: OpKind,
        /// The kind byte found.
        found: u8,
    },
    /// The body is not a well-formed postcard encoding of the operation.
    Malformed(postcard::Error),
    /// A complete operation was followed by extra bytes.
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The operation's id or dependencies are impossible (see [`check_change`]).
    Invalid(DeliveryError),
    /// A list of dots is not in canonical form (strictly increasing), or names an impossible
    /// event (counter 0, or one of its own replica not before the operation).
    NotCanonical {
        /// Which list.
        field: &'static str,
    },
}

impl fmt::Display for OpDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpDecodeError::MissingHeader => {
                f.write_str("input too short: the 2-byte header is missing")
            }
            OpDecodeError::UnsupportedVersion { found, supported } => write!(
                f,
                "operation format version {found} is not supported (this build reads version \
                 {supported}); it was probably written by a newer release"
            ),
            OpDecodeError::WrongKind { expected, found } => write!(
                f,
                "expected a {expected:?} operation (kind {}), found kind {found}",
                *expected as u8
            ),
            OpDecodeError::Malformed(postcard::Error::SerdeDeCustom) => {
                f.write_str("the bytes describe an operation that breaks the type's invariants")
            }
            OpDecodeError::Malformed(error) => write!(f, "malformed operation: {error}"),
            OpDecodeError::TrailingBytes { count } => {
                write!(f, "{count} unexpected bytes after the operation")
            }
            OpDecodeError::Invalid(error) => write!(f, "invalid operation: {error}"),
            OpDecodeError::NotCanonical { field } => write!(
                f,
                "the operation's {field} must be strictly increasing dots of events before it"
            ),
        }
    }
}

impl std::error::Error for OpDecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpDecodeError::Malformed(error) => Some(error),
            OpDecodeError::Invalid(error) => Some(error),
            _ => None,
        }
    }
}

/// An operation with a versioned binary form: a two-byte header (envelope version, kind) and
/// the postcard body. Decoding checks the header, refuses trailing bytes and checks the
/// operation's invariants, so bytes from a peer give a valid operation or an [`OpDecodeError`],
/// never a panic.
///
/// The same shape as [`codec::Encode`](crate::codec::Encode) (`KIND`, an infallible `encode`, a
/// checked `decode`, the same header handling), for a separate envelope: operations have their
/// own version ([`OP_FORMAT_VERSION`]) and kind numbering ([`OpKind`]), and their decoding also
/// checks causality (an [`OpDecodeError`] can say `Invalid` or `NotCanonical`).
///
/// ```
/// use crdt_core::ReplicaId;
/// use crdt_core::op_based::{EncodeOp, OpCounter, OpDecodeError, CounterOp};
///
/// let mut counter = OpCounter::new(ReplicaId::from_u128(1));
/// let op = counter.increment(3);
/// let bytes = op.encode();
/// assert_eq!(CounterOp::decode(&bytes), Ok(op));
/// assert!(matches!(
///     CounterOp::decode(&[9, 1, 0]),
///     Err(OpDecodeError::UnsupportedVersion { found: 9, .. })
/// ));
/// ```
///
/// # Panics
///
/// `encode` panics only if the element type's `Serialize` fails, exactly as described for
/// [`codec::Encode`](crate::codec::Encode#panics); the operations themselves are integers, dots
/// and vectors, which always encode.
pub trait EncodeOp: CausalChange + Serialize + DeserializeOwned {
    /// The kind byte of this operation type.
    const KIND: OpKind;

    /// Checks what decoding must refuse: an impossible id or dependency, or a list of dots out
    /// of canonical form.
    fn check(&self) -> Result<(), OpDecodeError>;

    /// The header followed by the postcard form of `self`.
    fn encode(&self) -> Vec<u8> {
        write_envelope(OP_FORMAT_VERSION, Self::KIND as u8, self)
    }

    /// Decodes bytes written by [`encode`](Self::encode), checking everything.
    fn decode(bytes: &[u8]) -> Result<Self, OpDecodeError> {
        let op: Self = read_envelope(bytes, OP_FORMAT_VERSION, Self::KIND as u8).map_err(
            |error| match error {
                EnvelopeError::MissingHeader => OpDecodeError::MissingHeader,
                EnvelopeError::UnsupportedVersion { found } => OpDecodeError::UnsupportedVersion {
                    found,
                    supported: OP_FORMAT_VERSION,
                },
                EnvelopeError::WrongKind { found } => OpDecodeError::WrongKind {
                    expected: Self::KIND,
                    found,
                },
                EnvelopeError::Malformed(error) => OpDecodeError::Malformed(error),
                EnvelopeError::TrailingBytes { count } => OpDecodeError::TrailingBytes { count },
            },
        )?;
        op.check()?;
        Ok(op)
    }
}

/// The checks every operation shares: a valid id and dependencies, dependencies in canonical
/// form.
fn check_op<C: CausalChange>(op: &C) -> Result<(), OpDecodeError> {
    check_change(op).map_err(OpDecodeError::Invalid)?;
    if !op.deps().windows(2).all(|w| w[0] < w[1]) {
        return Err(OpDecodeError::NotCanonical { field: "deps" });
    }
    Ok(())
}

/// Checks a list of dots an operation `id` observed: strictly increasing, possible events, none
/// of its own replica at or after it.
fn check_observed(id: Dot, observed: &[Dot], field: &'static str) -> Result<(), OpDecodeError> {
    let sorted = observed.windows(2).all(|w| w[0] < w[1]);
    let possible = observed
        .iter()
        .all(|dot| dot.counter != 0 && !(dot.replica == id.replica && dot.counter >= id.counter));
    if sorted && possible {
        Ok(())
    } else {
        Err(OpDecodeError::NotCanonical { field })
    }
}

/// The id and dependencies of the next operation `replica` makes: the next dot of its own, and
/// the heads it has seen (its own latest event is implied).
fn next_op<C: CausalChange>(delivery: &CausalDelivery<C>, replica: ReplicaId) -> (Dot, Vec<Dot>) {
    let id = delivery.delivered_version().next_dot(replica);
    let deps = delivery.heads().filter(|d| d.replica != replica).collect();
    (id, deps)
}

/// Remembers the `observed` dots whose operation has not been applied yet, so that they are
/// dropped when it is.
///
/// An honest operation only observes dots in its causal past, all delivered before it. A forged
/// one could name a dot still to come: a replica that applied that dot first drops it, so every
/// other replica must drop it on arrival too, or they would diverge.
fn forget_unseen(observed: &[Dot], applied: &VersionVector, gone_early: &mut BTreeSet<Dot>) {
    for &dot in observed {
        if !applied.contains(dot) {
            gone_early.insert(dot);
        }
    }
}

/// A rough size of an operation in memory for the delivery buffer's bound: the struct, its
/// dependency and dot lists (the heap of the element type itself is not counted).
fn op_size<Op>(dot_lists: usize) -> usize {
    std::mem::size_of::<Op>().saturating_add(dot_lists.saturating_mul(std::mem::size_of::<Dot>()))
}
