//! Causal delivery: handing changes to a replica exactly once, each after everything it
//! depends on, whatever the order and repetition in which they arrive.
//!
//! Operation-based CRDTs (and documents built from operations) are only correct if every
//! replica applies every operation once, after the operations it was made on top of. Networks
//! give no such guarantee: messages are late, repeated and reordered, and a sync step may send
//! the same events again cut differently. [`CausalDelivery`] sits between the network and the
//! data type and restores the guarantee: it delivers at once what it can, holds back what
//! arrived early (in a bounded buffer), drops what it has seen, and says which events it still
//! needs so they can be asked for.
//!
//! This module holds the vocabulary ([`CausalChange`], its checks, limits, results and errors);
//! `causal_delivery.rs` the buffer and its index.

mod causal_delivery;

use std::fmt;

pub use causal_delivery::CausalDelivery;

use crate::Dot;

/// A change that names its events and what they depend on, so that [`CausalDelivery`] can order
/// it.
///
/// A change covers the consecutive events `id().counter .. id().counter + len()` of one replica
/// (a single operation covers one). Each replica numbers its events from 1 with no gap, so the
/// events of a replica also depend on its earlier events; that dependency is implied and need not
/// be listed in [`deps`](Self::deps).
///
/// A change must be *causally atomic*: its events depend only on its `deps` and on its own
/// earlier events (the author made them in a row, merging nothing from elsewhere in between).
/// The delivery layer cannot check this; a change that breaks it can wait forever, in the
/// bounded buffer.
///
/// ```
/// use crdt_core::delivery::CausalChange;
/// use crdt_core::{Dot, ReplicaId};
///
/// /// Three keystrokes typed in a row by one replica, after seeing `deps`.
/// struct Typing {
///     first: Dot,
///     deps: Vec<Dot>,
///     text: String,
/// }
///
/// impl CausalChange for Typing {
///     fn id(&self) -> Dot {
///         self.first
///     }
///     fn len(&self) -> u64 {
///         self.text.chars().count() as u64
///     }
///     fn deps(&self) -> &[Dot] {
///         &self.deps
///     }
///     fn size_hint(&self) -> usize {
///         self.text.len() + self.deps.len() * 24
///     }
///     fn skip(&self, n: u64) -> Option<Self> {
///         Some(Typing {
///             first: Dot::new(self.first.replica, self.first.counter + n),
///             deps: self.deps.clone(),
///             text: self.text.chars().skip(n as usize).collect(),
///         })
///     }
/// }
///
/// let r = ReplicaId::from_u128(1);
/// let typed = Typing { first: Dot::new(r, 4), deps: vec![], text: "abc".into() };
/// let rest = typed.skip(1).expect("typing can be cut");
/// assert_eq!((rest.id(), rest.len()), (Dot::new(r, 5), 2));
/// ```
// A change always covers at least one event: an `is_empty` would always say false.
#[allow(clippy::len_without_is_empty)]
pub trait CausalChange: Sized {
    /// The change's first event: its replica and sequence number (from 1).
    fn id(&self) -> Dot;

    /// How many consecutive events of [`id`](Self::id)'s replica the change covers (at least 1).
    fn len(&self) -> u64 {
        1
    }

    /// The events the change depends on: the latest events its author had seen (its heads).
    /// Listing more (any event they depend on) is allowed, only less efficient.
    fn deps(&self) -> &[Dot];

    /// The change's size in bytes, for the buffer's byte bound. Defaults to 1, in which case only
    /// the bound on the number of changes really applies.
    fn size_hint(&self) -> usize {
        1
    }

    /// The change without its first `n` events (`0 < n < len()`): the id moves `n` events on, the
    /// length shrinks by `n`, the dependencies stay valid (keeping them all is fine). A cut should
    /// not be larger than the change it was cut from.
    ///
    /// [`CausalDelivery`] calls it when a change arrives whose first events were already
    /// delivered by another change (a peer that sends "everything since" may cut its runs
    /// differently each time). Returning `None` (the default) says the change cannot be cut:
    /// such a change is refused with [`DeliveryError::Overlap`] on arrival, and dropped from the
    /// buffer if the overlap happens while it waits (its missing events then show in
    /// [`CausalDelivery::missing`]). Changes of one event are never cut.
    fn skip(&self, n: u64) -> Option<Self> {
        let _ = n;
        None
    }
}

/// Checks what a change says about itself, without looking at any state: a first sequence number
/// of at least 1, a length of at least 1, sequence numbers that fit in a `u64` (the change ends
/// before `u64::MAX`), and dependencies that name possible events (counters from 1, below
/// `u64::MAX`) other than the change's own events or later ones of its replica.
///
/// [`CausalDelivery::receive`] refuses changes that fail it; decoders can call it to refuse them
/// earlier.
///
/// ```
/// use crdt_core::delivery::{CausalChange, DeliveryError, check_change};
/// use crdt_core::{Dot, ReplicaId};
///
/// struct Op(Dot, Vec<Dot>);
/// impl CausalChange for Op {
///     fn id(&self) -> Dot {
///         self.0
///     }
///     fn deps(&self) -> &[Dot] {
///         &self.1
///     }
/// }
///
/// let r = ReplicaId::from_u128(1);
/// assert!(check_change(&Op(Dot::new(r, 1), vec![])).is_ok());
/// assert!(matches!(
///     check_change(&Op(Dot::new(r, 0), vec![])),
///     Err(DeliveryError::InvalidRange { .. })
/// ));
/// // An event cannot depend on itself.
/// assert!(matches!(
///     check_change(&Op(Dot::new(r, 2), vec![Dot::new(r, 2)])),
///     Err(DeliveryError::InvalidDependency { .. })
/// ));
/// ```
pub fn check_change<C: CausalChange>(change: &C) -> Result<(), DeliveryError> {
    end_of(change).map(|_| ())
}

/// Checks `change` (see [`check_change`]) and returns the counter just past its last event.
fn end_of<C: CausalChange>(change: &C) -> Result<u64, DeliveryError> {
    let id = change.id();
    let len = change.len();
    let end = if id.counter == 0 || len == 0 {
        None
    } else {
        id.counter.checked_add(len)
    };
    let end = end.ok_or(DeliveryError::InvalidRange { id, len })?;
    for &dep in change.deps() {
        let own_or_later = dep.replica == id.replica && dep.counter >= id.counter;
        if dep.counter == 0 || dep.counter == u64::MAX || own_or_later {
            return Err(DeliveryError::InvalidDependency { id, dep });
        }
    }
    Ok(end)
}

/// How much a [`CausalDelivery`] may hold back.
///
/// Both bounds apply: the buffer never holds more than `max_changes` changes nor more than
/// `max_bytes` bytes (as told by [`CausalChange::size_hint`]).
///
/// ```
/// use crdt_core::delivery::DeliveryLimits;
///
/// let limits = DeliveryLimits { max_changes: 100, ..DeliveryLimits::default() };
/// assert_eq!(limits.max_bytes, 16 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliveryLimits {
    /// The most changes buffered at once.
    pub max_changes: usize,
    /// The most bytes buffered at once.
    pub max_bytes: usize,
}

impl Default for DeliveryLimits {
    /// 10 000 changes and 16 MiB: far more than live collaboration needs, small enough for a
    /// browser tab.
    fn default() -> Self {
        DeliveryLimits {
            max_changes: 10_000,
            max_bytes: 16 << 20,
        }
    }
}

/// What became of a change given to [`CausalDelivery::receive`].
///
/// ```
/// use crdt_core::delivery::Arrival;
///
/// assert_ne!(Arrival::Buffered, Arrival::Duplicate);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arrival {
    /// It was delivered now (with whatever it unblocked), or the part of it not yet delivered
    /// was.
    Delivered,
    /// It waits in the buffer for events that are missing.
    Buffered,
    /// All its events were already delivered, or the same change is already buffered.
    Duplicate,
}

/// The result of [`CausalDelivery::receive`]: what became of the change received, and every
/// change that became deliverable, in causal order.
///
/// ```
/// use crdt_core::delivery::{Arrival, Delivered};
///
/// let nothing: Delivered<()> = Delivered { arrival: Arrival::Duplicate, changes: vec![] };
/// assert!(nothing.is_empty());
/// assert_eq!(nothing.into_iter().count(), 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered<C> {
    /// What became of the change received.
    pub arrival: Arrival,
    /// The changes to apply now, in this order: each comes after its dependencies and its
    /// replica's earlier events. A change may have been cut (see [`CausalChange::skip`]).
    pub changes: Vec<C>,
}

impl<C> Delivered<C> {
    /// True if nothing is to be applied.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many changes are to be applied.
    pub fn len(&self) -> usize {
        self.changes.len()
    }
}

impl<C> IntoIterator for Delivered<C> {
    type Item = C;
    type IntoIter = std::vec::IntoIter<C>;

    fn into_iter(self) -> Self::IntoIter {
        self.changes.into_iter()
    }
}

/// Why [`CausalDelivery::receive`] refused a change. A refused change leaves the delivery state
/// exactly as it was.
///
/// ```
/// use crdt_core::delivery::DeliveryError;
/// use crdt_core::{Dot, ReplicaId};
///
/// let error = DeliveryError::InvalidRange { id: Dot::new(ReplicaId::from_u128(1), 0), len: 1 };
/// assert!(error.to_string().contains("sequence numbers"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The change's sequence numbers start at 0, cover no event, or overflow a `u64`.
    InvalidRange {
        /// The change's first event.
        id: Dot,
        /// How many events it claims to cover.
        len: u64,
    },
    /// A dependency names an impossible event (counter 0 or `u64::MAX`), or the change itself
    /// or a later event of its replica, which it can never come after.
    InvalidDependency {
        /// The change's first event.
        id: Dot,
        /// The dependency refused.
        dep: Dot,
    },
    /// The change's first events were already delivered and it cannot be cut (its
    /// [`CausalChange::skip`] returned `None`, or a cut with the wrong id or length).
    Overlap {
        /// The change's first event.
        id: Dot,
        /// How many events it covers.
        len: u64,
        /// How many events of its replica were delivered.
        delivered: u64,
    },
    /// The change must wait, and buffering it would pass a bound. Nothing was dropped: send it
    /// again once the events listed by [`CausalDelivery::missing`] arrived.
    BufferFull {
        /// The change refused.
        id: Dot,
        /// Its size as told by [`CausalChange::size_hint`].
        size: usize,
        /// How many changes are buffered.
        buffered: usize,
        /// How many bytes are buffered.
        buffered_bytes: usize,
        /// The bounds.
        limits: DeliveryLimits,
    },
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::InvalidRange { id, len } => write!(
                f,
                "change {id:?} of {len} events: sequence numbers must start at 1, cover at least \
                 one event and stay below u64::MAX"
            ),
            DeliveryError::InvalidDependency { id, dep } => write!(
                f,
                "change {id:?} depends on {dep:?}, which cannot come before it"
            ),
            DeliveryError::Overlap { id, len, delivered } => write!(
                f,
                "change {id:?} of {len} events overlaps the {delivered} events of its replica \
                 already delivered, and cannot be cut"
            ),
            DeliveryError::BufferFull {
                id,
                size,
                buffered,
                buffered_bytes,
                limits,
            } => write!(
                f,
                "change {id:?} ({size} bytes) must wait but the buffer is full: {buffered} changes \
                 and {buffered_bytes} bytes held, at most {} changes and {} bytes allowed",
                limits.max_changes, limits.max_bytes
            ),
        }
    }
}

impl std::error::Error for DeliveryError {}
