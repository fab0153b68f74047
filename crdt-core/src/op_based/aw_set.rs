//! Operation-based add-wins observed-remove set.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{EncodeOp, OpDecodeError, OpKind, check_observed, check_op, next_op};
use crate::delivery::{CausalChange, CausalDelivery, DeliveryError, DeliveryLimits};
use crate::{Dot, ReplicaId, VersionVector};

/// Whether a [`SetOp`] inserts or removes its element.
///
/// ```
/// use crdt_core::op_based::SetAction;
///
/// assert_ne!(SetAction::Insert, SetAction::Remove);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SetAction {
    /// Tag the element with the operation's dot (a fresh tag). Named `Add` in the serde form
    /// (its name before the set verbs were aligned on `insert`), so serialized operations read
    /// the same as before.
    #[serde(rename = "Add")]
    Insert,
    /// Drop the element's observed tags.
    Remove,
}

/// One change of an [`OpAwSet`]: insert or remove `element`, dropping the tags of it the author
/// had observed.
///
/// An insert also drops the tags it observed, so an element inserted again and again keeps one
/// tag, not one per insert (as [`AwSet`](crate::AwSet) does); the value is the same either way.
///
/// ```
/// use crdt_core::op_based::{OpAwSet, SetAction};
/// use crdt_core::{Dot, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut set = OpAwSet::new(r);
/// set.insert("milk");
/// let op = set.remove(&"milk");
/// assert_eq!(op.action, SetAction::Remove);
/// assert_eq!(op.observed, [Dot::new(r, 1)]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SetOp<T> {
    /// The event this operation is; an insert tags its element with it.
    pub id: Dot,
    /// The heads its author had seen, in order.
    pub deps: Vec<Dot>,
    /// Insert or remove.
    pub action: SetAction,
    /// The element inserted or removed.
    pub element: T,
    /// The element's tags its author had observed, in order: those the operation drops.
    pub observed: Vec<Dot>,
}

impl<T> CausalChange for SetOp<T> {
    fn id(&self) -> Dot {
        self.id
    }

    fn deps(&self) -> &[Dot] {
        &self.deps
    }

    fn size_hint(&self) -> usize {
        super::op_size::<Self>(self.deps.len().saturating_add(self.observed.len()))
    }
}

impl<T: Serialize + serde::de::DeserializeOwned> EncodeOp for SetOp<T> {
    const KIND: OpKind = OpKind::Set;

    fn check(&self) -> Result<(), OpDecodeError> {
        check_op(self)?;
        check_observed(self.id, &self.observed, "observed")
    }
}

/// An observed-remove set in which an add wins over a concurrent remove, made of operations:
/// the op-based twin of [`AwSet`](crate::AwSet).
///
/// Each add tags its element with the add's dot; a remove names the tags it observed and drops
/// exactly those, so an add made concurrently keeps its unseen tag and the element stays. Causal
/// delivery guarantees that a remove arrives after the adds it observed, so no tombstone is
/// needed.
///
/// ```
/// use crdt_core::ReplicaId;
/// use crdt_core::op_based::OpAwSet;
///
/// let mut at_a = OpAwSet::new(ReplicaId::from_u128(1));
/// let mut at_b = OpAwSet::new(ReplicaId::from_u128(2));
/// at_b.apply(at_a.insert("milk"))?;
///
/// let remove = at_a.remove(&"milk");
/// let add_again = at_b.insert("milk"); // concurrent: b still wants milk
/// at_a.apply(add_again)?;
/// at_b.apply(remove)?;
/// assert!(at_a.contains(&"milk") && at_b.contains(&"milk"));
/// # Ok::<(), crdt_core::delivery::DeliveryError>(())
/// ```
#[derive(Debug)]
pub struct OpAwSet<T> {
    replica: ReplicaId,
    delivery: CausalDelivery<SetOp<T>>,
    /// Each present element with its tags, sorted; elements without tags are absent.
    elements: BTreeMap<T, Vec<Dot>>,
    /// The operations whose effect has been applied. After `apply` this equals the delivered
    /// version, but during it the delivery is ahead: it delivered a whole cascade at once.
    applied: VersionVector,
    /// Tags of an element removed before their add was applied (only forged operations do that).
    gone_early: BTreeSet<(T, Dot)>,
}

impl<T: Ord + Clone> OpAwSet<T> {
    /// An empty set whose operations are made as `replica`, buffering early operations within
    /// the default [`DeliveryLimits`].
    pub fn new(replica: ReplicaId) -> Self {
        Self::with_limits(replica, DeliveryLimits::default())
    }

    /// An empty set whose operations are made as `replica`, buffering within `limits`.
    pub fn with_limits(replica: ReplicaId, limits: DeliveryLimits) -> Self {
        OpAwSet {
            replica,
            delivery: CausalDelivery::new(limits),
            elements: BTreeMap::new(),
            applied: VersionVector::new(),
            gone_early: BTreeSet::new(),
        }
    }

    /// Inserts `element`; returns the operation to send.
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpAwSet;
    ///
    /// let mut set = OpAwSet::new(ReplicaId::from_u128(1));
    /// let mut elsewhere = OpAwSet::new(ReplicaId::from_u128(2));
    /// elsewhere.apply(set.insert("milk"))?;
    /// assert!(elsewhere.contains(&"milk"));
    /// # Ok::<(), crdt_core::delivery::DeliveryError>(())
    /// ```
    pub fn insert(&mut self, element: T) -> SetOp<T> {
        self.make(SetAction::Insert, element)
    }

    /// Removes `element` as far as this replica has seen it; returns the operation to send (it
    /// carries a copy of the element).
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpAwSet;
    ///
    /// let mut set = OpAwSet::new(ReplicaId::from_u128(1));
    /// set.insert("milk");
    /// let op = set.remove(&"milk");
    /// assert_eq!(op.element, "milk");
    /// assert!(set.is_empty());
    /// ```
    pub fn remove(&mut self, element: &T) -> SetOp<T> {
        self.make(SetAction::Remove, element.clone())
    }

    fn make(&mut self, action: SetAction, element: T) -> SetOp<T> {
        let (id, deps) = next_op(&self.delivery, self.replica);
        let observed = self.elements.get(&element).cloned().unwrap_or_default();
        let op = SetOp {
            id,
            deps,
            action,
            element,
            observed,
        };
        // A fresh operation is deliverable at once; only an exhausted counter of dots refuses it.
        let _ = self.apply(op.clone());
        op
    }

    /// Applies an operation from another replica, once, after those it depends on; returns the
    /// ids of the operations applied now (none if it came early or twice).
    pub fn apply(&mut self, op: SetOp<T>) -> Result<Vec<Dot>, DeliveryError> {
        let delivered = self.delivery.receive(op)?;
        Ok(delivered.into_iter().map(|op| self.effect(op)).collect())
    }

    fn effect(&mut self, op: SetOp<T>) -> Dot {
        for &dot in &op.observed {
            if !self.applied.contains(dot) {
                // Keyed by element: removing `x` must not take a tag that turns out to be `y`'s.
                self.gone_early.insert((op.element.clone(), dot));
            }
        }
        self.applied.observe(op.id);
        let mut added = op.action == SetAction::Insert;
        if added && !self.gone_early.is_empty() {
            added = !self.gone_early.remove(&(op.element.clone(), op.id));
        }
        match self.elements.entry(op.element) {
            Entry::Occupied(mut entry) => {
                let tags = entry.get_mut();
                // `contains`, not a binary search: an operation that did not come through
                // `decode` may list its dots out of order, and every replica must read it alike.
                tags.retain(|tag| !op.observed.contains(tag));
                if added {
                    let at = tags.partition_point(|tag| *tag < op.id);
                    tags.insert(at, op.id);
                }
                if tags.is_empty() {
                    entry.remove();
                }
            }
            Entry::Vacant(entry) => {
                if added {
                    entry.insert(vec![op.id]);
                }
            }
        }
        op.id
    }

    /// True if `element` is present.
    pub fn contains(&self, element: &T) -> bool {
        self.elements.contains_key(element)
    }
}

impl<T: Clone> OpAwSet<T> {
    /// A copy of this set (everything applied and buffered so far) whose operations will be
    /// made as `replica`: the way to get a second writer. Give it a replica id no other copy
    /// makes operations as (a fresh `ReplicaId::random()` is always right).
    ///
    /// `OpAwSet` is deliberately not `Clone`: a clone would make operations as the same
    /// replica, so two writers would give different operations the same dot, and every other
    /// replica would apply one of them and drop the other as a duplicate. For a copy that keeps
    /// this replica's identity, see [`duplicate_same_replica`](OpAwSet::duplicate_same_replica).
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpAwSet;
    ///
    /// let mut at_a = OpAwSet::new(ReplicaId::from_u128(1));
    /// at_a.insert("milk");
    /// let mut at_b = at_a.fork(ReplicaId::from_u128(2));
    /// let eggs = at_a.insert("eggs");
    /// let remove = at_b.remove(&"milk");
    /// at_a.apply(remove)?;
    /// at_b.apply(eggs)?;
    /// assert!(at_a.contains(&"eggs") && !at_a.contains(&"milk"));
    /// assert!(at_b.contains(&"eggs") && !at_b.contains(&"milk"));
    /// # Ok::<(), crdt_core::delivery::DeliveryError>(())
    /// ```
    ///
    /// It cannot be cloned:
    ///
    /// ```compile_fail,E0599
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpAwSet;
    ///
    /// let original = OpAwSet::<u32>::new(ReplicaId::from_u128(1));
    /// let copy = original.clone(); // error: `OpAwSet` is not `Clone`; use `fork`
    /// ```
    pub fn fork(&self, replica: ReplicaId) -> Self {
        self.copy_as(replica)
    }

    /// A copy that still makes operations as **this** replica.
    ///
    /// Right only when the copy and the original will never both make operations: a backup, a
    /// snapshot of this replica's state to read, or a checkpoint to roll back to (drop the original
    /// and carry on with the copy, provided nothing the original made since the copy was sent or
    /// saved anywhere: its dots would be issued twice; if it was, fork the checkpoint instead). Two
    /// live copies that both make operations would give different operations the same dots: other
    /// replicas keep one and drop the other as already known (or refuse it), so the copies never
    /// converge. For a second writer use [`fork`](OpAwSet::fork).
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpAwSet;
    ///
    /// let mut set = OpAwSet::new(ReplicaId::from_u128(1));
    /// set.insert("milk");
    /// let checkpoint = set.duplicate_same_replica();
    /// set.insert("eggs");
    /// // Roll back: the original is dropped, only the checkpoint makes operations from now on.
    /// let set = checkpoint;
    /// assert!(set.contains(&"milk") && !set.contains(&"eggs"));
    /// ```
    pub fn duplicate_same_replica(&self) -> Self {
        self.copy_as(self.replica)
    }

    fn copy_as(&self, replica: ReplicaId) -> Self {
        OpAwSet {
            replica,
            delivery: self.delivery.clone(),
            elements: self.elements.clone(),
            applied: self.applied.clone(),
            gone_early: self.gone_early.clone(),
        }
    }
}

impl<T> OpAwSet<T> {
    /// The present elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.elements.keys()
    }

    /// How many elements are present.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// True if no element is present.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The replica this set makes operations as.
    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// The operations applied so far.
    pub fn version(&self) -> &VersionVector {
        self.delivery.delivered_version()
    }

    /// The delivery state: what is buffered, and which operations are missing.
    pub fn delivery(&self) -> &CausalDelivery<SetOp<T>> {
        &self.delivery
    }
}
