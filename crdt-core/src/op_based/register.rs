//! Operation-based multi-value register.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{EncodeOp, OpDecodeError, OpKind, check_observed, check_op, forget_unseen, next_op};
use crate::delivery::{CausalChange, CausalDelivery, DeliveryError, DeliveryLimits};
use crate::{Dot, ReplicaId, VersionVector};

/// One change of an [`OpRegister`]: replace the values its author saw with `value`, or with
/// nothing (a clear).
///
/// ```
/// use crdt_core::op_based::OpRegister;
/// use crdt_core::{Dot, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut register = OpRegister::new(r);
/// register.set("draft");
/// let op = register.set("final");
/// assert_eq!(op.overwrites, [Dot::new(r, 1)]);
/// assert_eq!(op.value, Some("final"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegisterOp<T> {
    /// The event this operation is; it also tags the value written.
    pub id: Dot,
    /// The heads its author had seen, in order.
    pub deps: Vec<Dot>,
    /// The dots of the values its author saw, which it replaces, in order.
    pub overwrites: Vec<Dot>,
    /// The value written; `None` clears the register.
    pub value: Option<T>,
}

impl<T> CausalChange for RegisterOp<T> {
    fn id(&self) -> Dot {
        self.id
    }

    fn deps(&self) -> &[Dot] {
        &self.deps
    }

    fn size_hint(&self) -> usize {
        super::op_size::<Self>(self.deps.len().saturating_add(self.overwrites.len()))
    }
}

impl<T: Serialize + serde::de::DeserializeOwned> EncodeOp for RegisterOp<T> {
    const KIND: OpKind = OpKind::Register;

    fn check(&self) -> Result<(), OpDecodeError> {
        check_op(self)?;
        check_observed(self.id, &self.overwrites, "overwrites")
    }
}

/// A register that keeps concurrent writes side by side, made of operations: the op-based twin
/// of [`MvRegister`](crate::MvRegister).
///
/// A write names the values it replaces (those its author saw); delivered in causal order, it
/// removes exactly those, so a write made concurrently stays beside it until a later write has
/// seen both. For readers who need a single value, [`winner`](Self::winner) picks the value
/// with the greatest dot, the same on every replica.
///
/// ```
/// use crdt_core::ReplicaId;
/// use crdt_core::op_based::OpRegister;
///
/// let mut at_a = OpRegister::new(ReplicaId::from_u128(1));
/// let mut at_b = OpRegister::new(ReplicaId::from_u128(2));
/// let blue = at_a.set("blue");
/// let green = at_b.set("green");
/// at_a.apply(green)?;
/// at_b.apply(blue)?;
/// assert_eq!(at_a.values().collect::<Vec<_>>(), [&"blue", &"green"]);
/// assert_eq!(at_a.winner(), at_b.winner());
///
/// let teal = at_a.set("teal"); // has seen both: resolves the conflict
/// at_b.apply(teal)?;
/// assert_eq!(at_b.values().collect::<Vec<_>>(), [&"teal"]);
/// # Ok::<(), crdt_core::delivery::DeliveryError>(())
/// ```
#[derive(Debug)]
pub struct OpRegister<T> {
    replica: ReplicaId,
    delivery: CausalDelivery<RegisterOp<T>>,
    /// The current values tagged with the dot of their write, sorted by dot.
    values: Vec<(Dot, T)>,
    /// The operations whose effect has been applied. After `apply` this equals the delivered
    /// version, but during it the delivery is ahead: it delivered a whole cascade at once.
    applied: VersionVector,
    /// Dots overwritten before their write was applied (only forged operations do that).
    gone_early: BTreeSet<Dot>,
}

impl<T: Clone> OpRegister<T> {
    /// An empty register whose operations are made as `replica`, buffering early operations
    /// within the default [`DeliveryLimits`].
    pub fn new(replica: ReplicaId) -> Self {
        Self::with_limits(replica, DeliveryLimits::default())
    }

    /// An empty register whose operations are made as `replica`, buffering within `limits`.
    pub fn with_limits(replica: ReplicaId, limits: DeliveryLimits) -> Self {
        OpRegister {
            replica,
            delivery: CausalDelivery::new(limits),
            values: Vec::new(),
            applied: VersionVector::new(),
            gone_early: BTreeSet::new(),
        }
    }

    /// Sets the register to `value`, replacing every value seen; returns the operation to send.
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpRegister;
    ///
    /// let mut register = OpRegister::new(ReplicaId::from_u128(1));
    /// let op = register.set("blue");
    /// assert_eq!(op.value, Some("blue"));
    /// assert_eq!(register.winner(), Some(&"blue"));
    /// ```
    pub fn set(&mut self, value: T) -> RegisterOp<T> {
        self.assign(Some(value))
    }

    /// Removes every value seen; returns the operation to send. Concurrent writes survive.
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpRegister;
    ///
    /// let mut register = OpRegister::new(ReplicaId::from_u128(1));
    /// register.set("blue");
    /// let op = register.clear();
    /// assert_eq!(op.value, None);
    /// assert!(register.is_empty());
    /// ```
    pub fn clear(&mut self) -> RegisterOp<T> {
        self.assign(None)
    }

    fn assign(&mut self, value: Option<T>) -> RegisterOp<T> {
        let (id, deps) = next_op(&self.delivery, self.replica);
        let op = RegisterOp {
            id,
            deps,
            overwrites: self.values.iter().map(|(dot, _)| *dot).collect(),
            value,
        };
        // A fresh operation is deliverable at once; only an exhausted counter of dots refuses it.
        let _ = self.apply(op.clone());
        op
    }

    /// Applies an operation from another replica, once, after those it depends on; returns the
    /// ids of the operations applied now (none if it came early or twice).
    pub fn apply(&mut self, op: RegisterOp<T>) -> Result<Vec<Dot>, DeliveryError> {
        let delivered = self.delivery.receive(op)?;
        Ok(delivered.into_iter().map(|op| self.effect(op)).collect())
    }

    fn effect(&mut self, op: RegisterOp<T>) -> Dot {
        forget_unseen(&op.overwrites, &self.applied, &mut self.gone_early);
        self.applied.observe(op.id);
        // `contains`, not a binary search: an operation that did not come through `decode` may
        // list its dots out of order, and every replica must still read it alike.
        self.values.retain(|(dot, _)| !op.overwrites.contains(dot));
        if let Some(value) = op.value
            && !self.gone_early.remove(&op.id)
        {
            // Delivered in causal order, a write's dot is usually the greatest of its replica.
            let at = self.values.partition_point(|(dot, _)| *dot < op.id);
            self.values.insert(at, (op.id, value));
        }
        op.id
    }
}

impl<T: Clone> OpRegister<T> {
    /// A copy of this register (everything applied and buffered so far) whose operations will be
    /// made as `replica`: the way to get a second writer. Give it a replica id no other copy
    /// makes operations as (a fresh `ReplicaId::random()` is always right).
    ///
    /// `OpRegister` is deliberately not `Clone`: a clone would make operations as the same
    /// replica, so two writers would give different operations the same dot, and every other
    /// replica would apply one of them and drop the other as a duplicate. For a copy that keeps
    /// this replica's identity, see [`duplicate_same_replica`](OpRegister::duplicate_same_replica).
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpRegister;
    ///
    /// let mut at_a = OpRegister::new(ReplicaId::from_u128(1));
    /// at_a.set("blue");
    /// let mut at_b = at_a.fork(ReplicaId::from_u128(2));
    /// let green = at_a.set("green");
    /// let red = at_b.set("red");
    /// at_a.apply(red)?;
    /// at_b.apply(green)?;
    /// assert_eq!(at_a.values().collect::<Vec<_>>(), [&"green", &"red"]);
    /// assert_eq!(at_a.winner(), at_b.winner());
    /// # Ok::<(), crdt_core::delivery::DeliveryError>(())
    /// ```
    ///
    /// It cannot be cloned:
    ///
    /// ```compile_fail,E0599
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpRegister;
    ///
    /// let original = OpRegister::<u32>::new(ReplicaId::from_u128(1));
    /// let copy = original.clone(); // error: `OpRegister` is not `Clone`; use `fork`
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
    /// converge. For a second writer use [`fork`](OpRegister::fork).
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpRegister;
    ///
    /// let mut register = OpRegister::new(ReplicaId::from_u128(1));
    /// register.set("saved");
    /// let checkpoint = register.duplicate_same_replica();
    /// register.set("draft");
    /// // Roll back: the original is dropped, only the checkpoint makes operations from now on.
    /// let register = checkpoint;
    /// assert_eq!(register.values().collect::<Vec<_>>(), [&"saved"]);
    /// ```
    pub fn duplicate_same_replica(&self) -> Self {
        self.copy_as(self.replica)
    }

    fn copy_as(&self, replica: ReplicaId) -> Self {
        OpRegister {
            replica,
            delivery: self.delivery.clone(),
            values: self.values.clone(),
            applied: self.applied.clone(),
            gone_early: self.gone_early.clone(),
        }
    }
}

impl<T> OpRegister<T> {
    /// The current values, in dot order: one, unless writes were concurrent; none if never
    /// written or cleared.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.values.iter().map(|(_, value)| value)
    }

    /// The current values with the dots of the writes that made them, in dot order.
    pub fn entries(&self) -> &[(Dot, T)] {
        &self.values
    }

    /// One of the current values, the same on every replica that applied the same operations:
    /// the one with the greatest dot.
    pub fn winner(&self) -> Option<&T> {
        self.values.last().map(|(_, value)| value)
    }

    /// True if the register holds no value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The replica this register makes operations as.
    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// The operations applied so far.
    pub fn version(&self) -> &VersionVector {
        self.delivery.delivered_version()
    }

    /// The delivery state: what is buffered, and which operations are missing.
    pub fn delivery(&self) -> &CausalDelivery<RegisterOp<T>> {
        &self.delivery
    }
}
