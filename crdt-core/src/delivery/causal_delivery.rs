//! The delivery engine: the buffer of early changes, indexed by the event each waits for.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{Arrival, CausalChange, Delivered, DeliveryError, DeliveryLimits, end_of};
use crate::{Dot, DotRange, ReplicaId, VersionVector};

/// A buffered change's place: its replica, first counter and the counter past its last event.
type Key = (ReplicaId, u64, u64);

const FIRST_KEY: Key = (ReplicaId::from_u128(0), 0, 0);
const LAST_KEY: Key = (ReplicaId::from_u128(u128::MAX), u64::MAX, u64::MAX);

/// A change held back, with the first event it waits for.
#[derive(Clone, Debug)]
struct Waiting<C> {
    change: C,
    blocker: Dot,
    size: usize,
}

/// Exactly-once, causally ordered delivery of [`CausalChange`]s, with a bounded buffer.
///
/// Give it every change that arrives, in any order and any number of times;
/// [`receive`](Self::receive) returns the changes to apply, each once, each after its
/// dependencies and its replica's earlier events. Early changes wait in a buffer bounded by
/// [`DeliveryLimits`]; [`missing`](Self::missing) names the events they wait for.
///
/// Overlapping changes (the same events cut differently) are fine if the change type can be
/// cut ([`CausalChange::skip`]): only the part not yet delivered is delivered. Otherwise such a
/// change is refused with [`DeliveryError::Overlap`].
///
/// Buffered changes are indexed by the one event each waits for, so delivering a change wakes
/// exactly the changes that waited for its events: `n` changes take `O(n log n)` time in total
/// (times their number of dependencies), however they were ordered.
///
/// ```
/// use crdt_core::delivery::{Arrival, CausalChange, CausalDelivery, DeliveryLimits};
/// use crdt_core::{Dot, DotRange, ReplicaId};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct Note {
///     id: Dot,
///     deps: Vec<Dot>,
/// }
/// impl CausalChange for Note {
///     fn id(&self) -> Dot {
///         self.id
///     }
///     fn deps(&self) -> &[Dot] {
///         &self.deps
///     }
/// }
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let first = Note { id: Dot::new(a, 1), deps: vec![] };
/// let reply = Note { id: Dot::new(b, 1), deps: vec![Dot::new(a, 1)] };
///
/// let mut inbox = CausalDelivery::new(DeliveryLimits::default());
/// // The reply arrives first: it waits, and we know what to ask for.
/// assert_eq!(inbox.receive(reply.clone())?.arrival, Arrival::Buffered);
/// assert_eq!(inbox.missing(), [DotRange { replica: a, counters: 1..2 }]);
///
/// // The note it answers arrives: both are delivered, in causal order.
/// let delivered = inbox.receive(first.clone())?;
/// assert_eq!(delivered.changes, [first.clone(), reply]);
/// assert_eq!(inbox.receive(first)?.arrival, Arrival::Duplicate);
/// assert_eq!(inbox.delivered_version().get(b), 1);
/// # Ok::<(), crdt_core::delivery::DeliveryError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CausalDelivery<C> {
    /// Everything delivered (always causally closed).
    version: VersionVector,
    /// Per replica, its latest delivered event if no delivered event is known to depend on it.
    heads: BTreeMap<ReplicaId, u64>,
    /// The changes held back. Each starts past its replica's delivered events; they may overlap
    /// one another.
    buffer: BTreeMap<Key, Waiting<C>>,
    /// Each buffered change under the one event it waits for.
    waiting_on: BTreeSet<(Dot, Key)>,
    buffered_bytes: usize,
    limits: DeliveryLimits,
}

impl<C: CausalChange> CausalDelivery<C> {
    /// A delivery that has delivered nothing yet and buffers within `limits`.
    pub fn new(limits: DeliveryLimits) -> Self {
        Self::with_version(VersionVector::new(), limits)
    }

    /// A delivery resuming after a restart: everything in `version` counts as delivered (save
    /// [`delivered_version`](Self::delivered_version) with the data it was applied to). The
    /// buffer starts empty; buffered changes are not persisted, peers send them again.
    ///
    /// ```
    /// use crdt_core::delivery::{Arrival, CausalChange, CausalDelivery, DeliveryLimits};
    /// use crdt_core::{Dot, ReplicaId, VersionVector};
    ///
    /// struct Op(Dot);
    /// impl CausalChange for Op {
    ///     fn id(&self) -> Dot {
    ///         self.0
    ///     }
    ///     fn deps(&self) -> &[Dot] {
    ///         &[]
    ///     }
    /// }
    ///
    /// let r = ReplicaId::from_u128(1);
    /// let saved: VersionVector = [(r, 2)].into_iter().collect();
    /// let mut inbox = CausalDelivery::with_version(saved, DeliveryLimits::default());
    /// assert_eq!(inbox.receive(Op(Dot::new(r, 2)))?.arrival, Arrival::Duplicate);
    /// assert_eq!(inbox.receive(Op(Dot::new(r, 3)))?.arrival, Arrival::Delivered);
    /// # Ok::<(), crdt_core::delivery::DeliveryError>(())
    /// ```
    pub fn with_version(version: VersionVector, limits: DeliveryLimits) -> Self {
        CausalDelivery {
            // Without the history, every replica's latest event may be a head: a superset of
            // the true heads, which is still a valid dependency list.
            heads: version.iter().collect(),
            version,
            buffer: BTreeMap::new(),
            waiting_on: BTreeSet::new(),
            buffered_bytes: 0,
            limits,
        }
    }

    /// The bounds of the buffer.
    pub fn limits(&self) -> DeliveryLimits {
        self.limits
    }

    /// Every event delivered so far.
    pub fn delivered_version(&self) -> &VersionVector {
        &self.version
    }

    /// The latest delivered events no other delivered event is known to depend on, in replica
    /// order: the dependencies of a change made now. At most one per replica.
    pub fn heads(&self) -> impl Iterator<Item = Dot> + '_ {
        self.heads
            .iter()
            .map(|(&replica, &counter)| Dot::new(replica, counter))
    }

    /// How many changes wait in the buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// How many bytes wait in the buffer (the sum of their [`CausalChange::size_hint`]).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Takes every change out of the buffer, in replica and sequence order, to start afresh
    /// (for example when it filled up with changes that wait for events no peer has).
    pub fn drain_buffer(&mut self) -> Vec<C> {
        self.waiting_on.clear();
        self.buffered_bytes = 0;
        std::mem::take(&mut self.buffer)
            .into_values()
            .map(|waiting| waiting.change)
            .collect()
    }

    /// Handles a change that arrived; returns what became of it and every change that became
    /// deliverable, in causal order.
    ///
    /// A change already delivered, or already buffered as is, is a duplicate. A change whose
    /// first events were delivered is cut to the rest ([`CausalChange::skip`]). A change whose
    /// events lie inside a buffered one is kept all the same: it may have fewer dependencies and
    /// become deliverable sooner (the larger one is then cut or dropped as delivered). A change that
    /// can be delivered is delivered even when the buffer is full; one that must wait is
    /// refused with [`DeliveryError::BufferFull`] past the [`DeliveryLimits`]. An error leaves
    /// everything as it was.
    pub fn receive(&mut self, change: C) -> Result<Delivered<C>, DeliveryError> {
        let end = end_of(&change)?;
        let id = change.id();
        let delivered = self.version.get(id.replica);
        if end <= delivered.saturating_add(1) {
            return Ok(Delivered {
                arrival: Arrival::Duplicate,
                changes: Vec::new(),
            });
        }
        let change = if id.counter <= delivered {
            let len = change.len();
            cut(change, delivered + 1 - id.counter).ok_or(DeliveryError::Overlap {
                id,
                len,
                delivered,
            })?
        } else {
            change
        };
        let id = change.id();
        let key = (id.replica, id.counter, end);
        match self.blocker(&change) {
            // Delivered even if the same events are buffered with other dependencies: the
            // buffered copy is then dropped as delivered.
            None => Ok(Delivered {
                arrival: Arrival::Delivered,
                changes: self.deliver_from(change),
            }),
            Some(_) if self.buffer.contains_key(&key) => Ok(Delivered {
                arrival: Arrival::Duplicate,
                changes: Vec::new(),
            }),
            Some(blocker) => {
                let size = change.size_hint();
                let bytes = self.buffered_bytes.saturating_add(size);
                if self.buffer.len() >= self.limits.max_changes || bytes > self.limits.max_bytes {
                    return Err(DeliveryError::BufferFull {
                        id,
                        size,
                        buffered: self.buffer.len(),
                        buffered_bytes: self.buffered_bytes,
                        limits: self.limits,
                    });
                }
                self.hold(key, change, blocker);
                Ok(Delivered {
                    arrival: Arrival::Buffered,
                    changes: Vec::new(),
                })
            }
        }
    }

    /// The events that must arrive for the buffered changes to become deliverable, one run per
    /// gap, in replica and sequence order: what to ask peers for.
    ///
    /// These are the events the buffered changes depend on (directly, or as earlier events of
    /// the same replica) that are neither delivered nor buffered. Events that those events
    /// depend on in turn are unknown until they arrive.
    pub fn missing(&self) -> Vec<DotRange> {
        // Dependencies are downward closed per replica: needing an event is needing its
        // replica's earlier events too, so one counter per replica says everything.
        let mut needed: BTreeMap<ReplicaId, u64> = BTreeMap::new();
        let mut need = |dot: Dot| {
            let upto = needed.entry(dot.replica).or_insert(0);
            *upto = (*upto).max(dot.counter);
        };
        for (&(replica, start, _), waiting) in &self.buffer {
            need(Dot::new(replica, start - 1));
            waiting.change.deps().iter().copied().for_each(&mut need);
        }
        let mut missing = Vec::new();
        for (replica, upto) in needed {
            // The first event not known to be present.
            let mut next = self.version.get(replica).saturating_add(1);
            let runs = self
                .buffer
                .range((replica, 0, 0)..=(replica, u64::MAX, u64::MAX))
                .map(|(&(_, start, end), _)| (start, end));
            for (start, end) in runs {
                if start > upto || next > upto {
                    break;
                }
                if start > next {
                    missing.push(DotRange {
                        replica,
                        counters: next..start,
                    });
                }
                next = next.max(end);
            }
            if next <= upto {
                missing.push(DotRange {
                    replica,
                    counters: next..upto + 1,
                });
            }
        }
        missing
    }

    /// The first event `change` waits for, if any.
    fn blocker(&self, change: &C) -> Option<Dot> {
        let id = change.id();
        if self.version.get(id.replica) < id.counter - 1 {
            return Some(Dot::new(id.replica, id.counter - 1));
        }
        change
            .deps()
            .iter()
            .copied()
            .find(|&dep| !self.version.contains(dep))
    }

    /// `change` without the events already delivered; `None` if nothing is left, or if it must
    /// be cut and cannot be.
    fn trim(&self, change: C) -> Option<C> {
        let id = change.id();
        let end = id.counter.saturating_add(change.len());
        let delivered = self.version.get(id.replica);
        if end <= delivered.saturating_add(1) {
            None
        } else if id.counter <= delivered {
            cut(change, delivered + 1 - id.counter)
        } else {
            Some(change)
        }
    }

    /// Buffers `change` under `key`, waiting for `blocker`; a duplicate of a buffered change is
    /// dropped.
    fn hold(&mut self, key: Key, change: C, blocker: Dot) {
        if self.buffer.contains_key(&key) {
            return;
        }
        let size = change.size_hint();
        self.buffered_bytes = self.buffered_bytes.saturating_add(size);
        self.waiting_on.insert((blocker, key));
        self.buffer.insert(
            key,
            Waiting {
                change,
                blocker,
                size,
            },
        );
    }

    fn release(&mut self, key: Key) -> Option<C> {
        let waiting = self.buffer.remove(&key)?;
        self.waiting_on.remove(&(waiting.blocker, key));
        self.buffered_bytes = self.buffered_bytes.saturating_sub(waiting.size);
        Some(waiting.change)
    }

    /// Queues `change` if it can be delivered, buffers it again otherwise (no bound check: it
    /// was already buffered, or replaces a buffered change it was cut from).
    fn requeue(&mut self, change: C, ready: &mut VecDeque<C>) {
        match self.blocker(&change) {
            None => ready.push_back(change),
            Some(blocker) => {
                let id = change.id();
                let key = (
                    id.replica,
                    id.counter,
                    id.counter.saturating_add(change.len()),
                );
                self.hold(key, change, blocker);
            }
        }
    }

    /// Delivers `first`, which can be delivered, then everything it unblocks.
    fn deliver_from(&mut self, first: C) -> Vec<C> {
        let mut delivered = Vec::new();
        let mut ready = VecDeque::from([first]);
        while let Some(change) = ready.pop_front() {
            // Everything queued was deliverable when queued, so it starts at most one past its
            // replica's delivered events; a change delivered since may have covered its start.
            let Some(change) = self.trim(change) else {
                continue;
            };
            let id = change.id();
            let last = id.counter + (change.len() - 1);
            let before = self.version.get(id.replica);
            self.version.advance(id.replica, last);
            for dep in change.deps() {
                if self.heads.get(&dep.replica) == Some(&dep.counter) {
                    self.heads.remove(&dep.replica);
                }
            }
            self.heads.insert(id.replica, last);
            delivered.push(change);

            // Buffered changes of this replica that now start at or before a delivered event:
            // drop them, or cut them to the part not yet delivered.
            let covered: Vec<Key> = self
                .buffer
                .range((id.replica, 0, 0)..=(id.replica, last, u64::MAX))
                .map(|(key, _)| *key)
                .collect();
            for key in covered {
                if let Some(rest) = self.release(key).and_then(|c| self.trim(c)) {
                    self.requeue(rest, &mut ready);
                }
            }

            // Changes that waited for one of the events just delivered.
            let woken: Vec<Key> = self
                .waiting_on
                .range(
                    (Dot::new(id.replica, before + 1), FIRST_KEY)
                        ..=(Dot::new(id.replica, last), LAST_KEY),
                )
                .map(|(_, key)| *key)
                .collect();
            for key in woken {
                if let Some(change) = self.release(key) {
                    self.requeue(change, &mut ready);
                }
            }
        }
        delivered
    }
}

/// `change` without its first `n` events, if it can be cut and the cut is what was asked for.
fn cut<C: CausalChange>(change: C, n: u64) -> Option<C> {
    let id = change.id();
    let len = change.len();
    let rest = change.skip(n)?;
    let expected = Dot::new(id.replica, id.counter.checked_add(n)?);
    let valid = rest.id() == expected && rest.len() == len.checked_sub(n)? && end_of(&rest).is_ok();
    valid.then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::check_change;

    #[derive(Clone, Debug, PartialEq)]
    struct Run {
        id: Dot,
        len: u64,
        deps: Vec<Dot>,
        cuttable: bool,
    }

    impl CausalChange for Run {
        fn id(&self) -> Dot {
            self.id
        }
        fn len(&self) -> u64 {
            self.len
        }
        fn deps(&self) -> &[Dot] {
            &self.deps
        }
        fn skip(&self, n: u64) -> Option<Self> {
            self.cuttable.then(|| Run {
                id: Dot::new(self.id.replica, self.id.counter + n),
                len: self.len - n,
                ..self.clone()
            })
        }
    }

    fn dot(r: u128, c: u64) -> Dot {
        Dot::new(ReplicaId::from_u128(r), c)
    }

    fn run(r: u128, start: u64, len: u64, deps: &[Dot]) -> Run {
        Run {
            id: dot(r, start),
            len,
            deps: deps.to_vec(),
            cuttable: true,
        }
    }

    #[test]
    fn a_partial_overlap_delivers_only_the_new_events() {
        let mut inbox = CausalDelivery::new(DeliveryLimits::default());
        inbox.receive(run(1, 1, 5, &[])).expect("valid");
        let delivered = inbox.receive(run(1, 3, 5, &[])).expect("valid");
        assert_eq!(delivered.changes, [run(1, 6, 2, &[])]);
        assert_eq!(inbox.delivered_version().get(ReplicaId::from_u128(1)), 7);
    }

    #[test]
    fn an_uncuttable_overlap_is_refused_and_changes_nothing() {
        let mut inbox = CausalDelivery::new(DeliveryLimits::default());
        inbox.receive(run(1, 1, 5, &[])).expect("valid");
        let stuck = Run {
            cuttable: false,
            ..run(1, 3, 5, &[])
        };
        assert_eq!(
            inbox.receive(stuck),
            Err(DeliveryError::Overlap {
                id: dot(1, 3),
                len: 5,
                delivered: 5
            })
        );
        assert_eq!(inbox.delivered_version().get(ReplicaId::from_u128(1)), 5);
    }

    #[test]
    fn a_buffered_change_overtaken_by_a_shorter_one_is_cut() {
        let mut inbox = CausalDelivery::new(DeliveryLimits::default());
        // 1..=4 waits for replica 2; then 1..=2 arrives without that dependency.
        inbox.receive(run(1, 1, 4, &[dot(2, 1)])).expect("valid");
        let delivered = inbox.receive(run(1, 1, 2, &[])).expect("valid");
        assert_eq!(delivered.changes, [run(1, 1, 2, &[])]);
        assert_eq!(inbox.buffered(), 1);
        let delivered = inbox.receive(run(2, 1, 1, &[])).expect("valid");
        assert_eq!(
            delivered.changes,
            [run(2, 1, 1, &[]), run(1, 3, 2, &[dot(2, 1)])]
        );
        assert_eq!(inbox.buffered(), 0);
        assert_eq!(inbox.buffered_bytes(), 0);
    }

    #[test]
    fn invalid_ranges_are_refused() {
        let mut inbox = CausalDelivery::new(DeliveryLimits::default());
        for bad in [
            run(1, 0, 1, &[]),
            run(1, 1, 0, &[]),
            run(1, u64::MAX, 1, &[]),
            run(1, 2, u64::MAX - 1, &[]),
        ] {
            assert!(matches!(
                inbox.receive(bad),
                Err(DeliveryError::InvalidRange { .. })
            ));
        }
        // The last possible event ends just before u64::MAX.
        assert!(check_change(&run(1, u64::MAX - 1, 1, &[])).is_ok());
        for dep in [dot(2, 0), dot(2, u64::MAX), dot(1, 3), dot(1, 4)] {
            assert_eq!(
                inbox.receive(run(1, 3, 2, &[dep])),
                Err(DeliveryError::InvalidDependency { id: dot(1, 3), dep })
            );
        }
    }

    #[test]
    fn heads_keep_one_event_per_replica_and_drop_what_was_built_on() {
        let mut inbox = CausalDelivery::new(DeliveryLimits::default());
        inbox.receive(run(1, 1, 1, &[])).expect("valid");
        inbox.receive(run(2, 1, 1, &[])).expect("valid");
        assert_eq!(inbox.heads().collect::<Vec<_>>(), [dot(1, 1), dot(2, 1)]);
        inbox.receive(run(2, 2, 3, &[dot(1, 1)])).expect("valid");
        assert_eq!(inbox.heads().collect::<Vec<_>>(), [dot(2, 4)]);
    }

    #[test]
    fn drain_buffer_empties_it() {
        let mut inbox = CausalDelivery::new(DeliveryLimits::default());
        inbox.receive(run(1, 2, 1, &[])).expect("valid");
        assert_eq!(inbox.drain_buffer(), [run(1, 2, 1, &[])]);
        assert_eq!((inbox.buffered(), inbox.buffered_bytes()), (0, 0));
        assert!(inbox.missing().is_empty());
        // Nothing waits any more: the event it waited for is delivered alone.
        let delivered = inbox.receive(run(1, 1, 1, &[])).expect("valid");
        assert_eq!(delivered.len(), 1);
    }
}
