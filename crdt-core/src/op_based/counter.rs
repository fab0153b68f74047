//! Operation-based counter.

use serde::{Deserialize, Serialize};

use super::{EncodeOp, OpDecodeError, OpKind, check_op, next_op, op_size};
use crate::delivery::{CausalChange, CausalDelivery, DeliveryError, DeliveryLimits};
use crate::{Dot, ReplicaId, VersionVector};

/// One change of an [`OpCounter`]: add `amount` (negative to subtract).
///
/// One operation moves the counter by at most `i64::MAX` up or `2^63` down (see
/// [`OpCounter::increment`]).
///
/// ```
/// use crdt_core::delivery::CausalChange;
/// use crdt_core::op_based::OpCounter;
/// use crdt_core::{Dot, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let op = OpCounter::new(r).decrement(2);
/// assert_eq!((op.id(), op.amount), (Dot::new(r, 1), -2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CounterOp {
    /// The event this operation is.
    pub id: Dot,
    /// The heads its author had seen, in order.
    pub deps: Vec<Dot>,
    /// What it adds.
    pub amount: i64,
}

impl CausalChange for CounterOp {
    fn id(&self) -> Dot {
        self.id
    }

    fn deps(&self) -> &[Dot] {
        &self.deps
    }

    fn size_hint(&self) -> usize {
        op_size::<Self>(self.deps.len())
    }
}

impl EncodeOp for CounterOp {
    const KIND: OpKind = OpKind::Counter;

    fn check(&self) -> Result<(), OpDecodeError> {
        check_op(self)
    }
}

/// A counter that goes up and down, made of operations: the op-based twin of
/// [`PNCounter`](crate::PNCounter).
///
/// Additions commute, so order does not matter to the value; what matters is that each one
/// counts exactly once, however often it arrives, which the internal [`CausalDelivery`]
/// ensures. The total is kept exactly (in 128 bits) and read clamped to `i64`.
///
/// ```
/// use crdt_core::ReplicaId;
/// use crdt_core::op_based::OpCounter;
///
/// let mut at_a = OpCounter::new(ReplicaId::from_u128(1));
/// let mut at_b = OpCounter::new(ReplicaId::from_u128(2));
/// let up = at_a.increment(5);
/// let down = at_b.decrement(7);
/// at_a.apply(down)?;
/// at_b.apply(up.clone())?;
/// at_b.apply(up)?; // a duplicate: counted once
/// assert_eq!((at_a.value(), at_b.value()), (-2, -2));
/// # Ok::<(), crdt_core::delivery::DeliveryError>(())
/// ```
#[derive(Debug)]
pub struct OpCounter {
    replica: ReplicaId,
    delivery: CausalDelivery<CounterOp>,
    total: i128,
}

impl OpCounter {
    /// A counter at zero whose operations are made as `replica`, buffering early operations
    /// within the default [`DeliveryLimits`].
    pub fn new(replica: ReplicaId) -> Self {
        Self::with_limits(replica, DeliveryLimits::default())
    }

    /// A counter at zero whose operations are made as `replica`, buffering within `limits`.
    pub fn with_limits(replica: ReplicaId, limits: DeliveryLimits) -> Self {
        OpCounter {
            replica,
            delivery: CausalDelivery::new(limits),
            total: 0,
        }
    }

    /// Adds `amount`; returns the operation to send to the other replicas.
    ///
    /// As in [`PNCounter`](crate::PNCounter), increments and decrements take unsigned amounts
    /// and [`add`](Self::add) a signed one. One operation carries an `i64`, so an amount above
    /// `i64::MAX` saturates to it (counters saturate everywhere in this crate).
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpCounter;
    ///
    /// let mut counter = OpCounter::new(ReplicaId::from_u128(1));
    /// assert_eq!(counter.increment(5).amount, 5);
    /// assert_eq!(counter.increment(u64::MAX).amount, i64::MAX);
    /// assert_eq!(counter.value(), i64::MAX);
    /// ```
    pub fn increment(&mut self, amount: u64) -> CounterOp {
        self.add(i64::try_from(amount).unwrap_or(i64::MAX))
    }

    /// Subtracts `amount`; returns the operation to send. An amount above `2^63` saturates to
    /// it (the most an `i64` can subtract).
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpCounter;
    ///
    /// let mut counter = OpCounter::new(ReplicaId::from_u128(1));
    /// assert_eq!(counter.decrement(7).amount, -7);
    /// assert_eq!(counter.decrement(u64::MAX).amount, i64::MIN);
    /// assert_eq!(counter.value(), i64::MIN);
    /// ```
    pub fn decrement(&mut self, amount: u64) -> CounterOp {
        // 0 - amount, saturating at i64::MIN = -2^63.
        let amount = i64::try_from(-i128::from(amount)).unwrap_or(i64::MIN);
        self.add(amount)
    }

    /// Adds a signed `amount` (negative to subtract); returns the operation to send.
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpCounter;
    ///
    /// let mut counter = OpCounter::new(ReplicaId::from_u128(1));
    /// counter.add(10);
    /// let op = counter.add(-3);
    /// assert_eq!((op.amount, counter.value()), (-3, 7));
    /// ```
    pub fn add(&mut self, amount: i64) -> CounterOp {
        let (id, deps) = next_op(&self.delivery, self.replica);
        let op = CounterOp { id, deps, amount };
        // A fresh operation is deliverable at once; only an exhausted counter of dots refuses it.
        let _ = self.apply(op.clone());
        op
    }

    /// Applies an operation from another replica, once, after those it depends on; returns the
    /// ids of the operations applied now (none if it came early or twice).
    pub fn apply(&mut self, op: CounterOp) -> Result<Vec<Dot>, DeliveryError> {
        let delivered = self.delivery.receive(op)?;
        Ok(delivered
            .into_iter()
            .map(|op| {
                self.total = self.total.saturating_add(i128::from(op.amount));
                op.id
            })
            .collect())
    }

    /// The sum of every amount applied, clamped to the range of `i64`.
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpCounter;
    ///
    /// let mut counter = OpCounter::new(ReplicaId::from_u128(1));
    /// counter.increment(u64::MAX);
    /// counter.increment(1); // the exact total is kept; the value is clamped
    /// assert_eq!(counter.value(), i64::MAX);
    /// ```
    pub fn value(&self) -> i64 {
        i64::try_from(self.total).unwrap_or(if self.total < 0 { i64::MIN } else { i64::MAX })
    }

    /// A copy of this counter (everything applied and buffered so far) whose operations will be
    /// made as `replica`: the way to get a second writer. Give it a replica id no other copy
    /// makes operations as (a fresh `ReplicaId::random()` is always right).
    ///
    /// `OpCounter` is deliberately not `Clone`: a clone would make operations as the same
    /// replica, so two writers would give different operations the same dot, and every other
    /// replica would apply one of them and drop the other as a duplicate. For a copy that keeps
    /// this replica's identity, see [`duplicate_same_replica`](OpCounter::duplicate_same_replica).
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpCounter;
    ///
    /// let mut at_a = OpCounter::new(ReplicaId::from_u128(1));
    /// at_a.increment(2);
    /// let mut at_b = at_a.fork(ReplicaId::from_u128(2));
    /// let up = at_a.increment(3);
    /// let down = at_b.decrement(1);
    /// at_a.apply(down)?;
    /// at_b.apply(up)?;
    /// assert_eq!((at_a.value(), at_b.value()), (4, 4));
    /// # Ok::<(), crdt_core::delivery::DeliveryError>(())
    /// ```
    ///
    /// It cannot be cloned:
    ///
    /// ```compile_fail,E0599
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpCounter;
    ///
    /// let original = OpCounter::new(ReplicaId::from_u128(1));
    /// let copy = original.clone(); // error: `OpCounter` is not `Clone`; use `fork`
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
    /// converge. For a second writer use [`fork`](OpCounter::fork).
    ///
    /// ```
    /// use crdt_core::ReplicaId;
    /// use crdt_core::op_based::OpCounter;
    ///
    /// let mut counter = OpCounter::new(ReplicaId::from_u128(1));
    /// counter.increment(2);
    /// let checkpoint = counter.duplicate_same_replica();
    /// counter.increment(5);
    /// // Roll back: the original is dropped, only the checkpoint makes operations from now on.
    /// let mut counter = checkpoint;
    /// assert_eq!(counter.value(), 2);
    /// counter.increment(1);
    /// assert_eq!(counter.value(), 3);
    /// ```
    pub fn duplicate_same_replica(&self) -> Self {
        self.copy_as(self.replica)
    }

    fn copy_as(&self, replica: ReplicaId) -> Self {
        OpCounter {
            replica,
            delivery: self.delivery.clone(),
            total: self.total,
        }
    }

    /// The replica this counter makes operations as.
    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// The operations applied so far.
    pub fn version(&self) -> &VersionVector {
        self.delivery.delivered_version()
    }

    /// The delivery state: what is buffered, and which operations are missing.
    pub fn delivery(&self) -> &CausalDelivery<CounterOp> {
        &self.delivery
    }
}
