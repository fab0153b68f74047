//! Delta anti-entropy: shipping deltas to neighbours until they acknowledge them.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::StateCrdt;
use crate::ReplicaId;

/// A message between two [`DeltaSync`] replicas.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum DeltaMessage<T> {
    /// A join of deltas (or the whole state) the receiver may lack. The receiver merges it and
    /// answers with [`Ack`](DeltaMessage::Ack)`{ up_to }`.
    Deltas {
        /// The join of the deltas, or the sender's whole state.
        payload: T,
        /// The sender's delta sequence number just past those included.
        up_to: u64,
        /// True if `payload` is the sender's whole state (the receiver was too far behind).
        full_state: bool,
    },
    /// "I have merged every delta of yours numbered below `up_to`."
    Ack {
        /// The `up_to` of the [`Deltas`](DeltaMessage::Deltas) message acknowledged.
        up_to: u64,
    },
}

/// One replica of a state-based CRDT that syncs with its neighbours by delta anti-entropy
/// (Algorithm 2 of "Delta State Replicated Data Types", Almeida, Shoker and Baquero, 2018).
///
/// Local mutations append their delta to a numbered buffer. For each neighbour the replica
/// remembers which deltas it acknowledged, and [`message_for`](Self::message_for) sends the join
/// of the ones it still lacks. Deltas received that bring something new are buffered too, so they
/// travel on to neighbours that did not get them directly. Messages may be lost, duplicated or
/// reordered: merging is idempotent, and unacknowledged deltas are simply sent again.
///
/// Memory is bounded: the buffer keeps at most `max_buffered` deltas and drops those every
/// neighbour has acknowledged. A neighbour that needs a delta already dropped gets the whole
/// state instead.
///
/// This type is pure: it produces and consumes messages; carrying them is up to the caller.
///
/// ```
/// use crdt_core::{DeltaSync, GCounter, ReplicaId};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut at_a = DeltaSync::new(GCounter::default(), 64);
/// let mut at_b = DeltaSync::new(GCounter::default(), 64);
/// at_a.mutate(|counter| counter.increment(a, 3));
///
/// let message = at_a.message_for(b).expect("b lacks a delta");
/// let ack = at_b.receive(a, message).expect("deltas are acknowledged");
/// at_a.receive(b, ack);
/// assert_eq!(at_b.state().value(), 3);
/// assert!(at_a.message_for(b).is_none()); // b is up to date
/// ```
#[derive(Clone, Debug)]
pub struct DeltaSync<T> {
    state: T,
    /// The number the next buffered delta takes.
    next_seq: u64,
    /// Buffered deltas numbered `first_buffered..next_seq`, each with the neighbour it came from
    /// (`None` for local mutations), so it is not echoed back there.
    buffer: VecDeque<(T, Option<ReplicaId>)>,
    first_buffered: u64,
    /// Per neighbour: it has every delta numbered below this.
    acknowledged: BTreeMap<ReplicaId, u64>,
    max_buffered: usize,
}

impl<T: StateCrdt> DeltaSync<T> {
    /// A replica starting from `state`, buffering at most `max_buffered` deltas (at least one).
    pub fn new(state: T, max_buffered: usize) -> Self {
        let mut sync = DeltaSync {
            state: T::default(),
            next_seq: 0,
            buffer: VecDeque::new(),
            first_buffered: 0,
            acknowledged: BTreeMap::new(),
            max_buffered: max_buffered.max(1),
        };
        if state != T::default() {
            // The initial state counts as the first delta, so new neighbours receive it.
            sync.state = state.clone();
            sync.push_delta(state, None);
        }
        sync
    }

    /// The current state.
    pub fn state(&self) -> &T {
        &self.state
    }

    /// Applies a local mutation: `mutate` changes the state and returns its delta, which is
    /// buffered for the neighbours.
    pub fn mutate<F: FnOnce(&mut T) -> T>(&mut self, mutate: F) {
        let delta = mutate(&mut self.state);
        if delta != T::default() {
            self.push_delta(delta, None);
        }
    }

    /// Registers a neighbour, which at first is assumed to know nothing.
    pub fn add_neighbour(&mut self, neighbour: ReplicaId) {
        self.acknowledged.entry(neighbour).or_insert(0);
    }

    /// Forgets a neighbour, so the deltas only it lacked can be dropped.
    pub fn remove_neighbour(&mut self, neighbour: ReplicaId) {
        self.acknowledged.remove(&neighbour);
        self.collect_garbage();
    }

    /// How many deltas are buffered.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The message to send `neighbour` now, or `None` if it already has everything. Registers
    /// `neighbour` if it was unknown.
    ///
    /// Call it periodically (and after mutations): a message that was lost is sent again.
    pub fn message_for(&mut self, neighbour: ReplicaId) -> Option<DeltaMessage<T>> {
        let acked = *self.acknowledged.entry(neighbour).or_insert(0);
        if acked >= self.next_seq {
            return None;
        }
        if acked < self.first_buffered {
            return Some(DeltaMessage::Deltas {
                payload: self.state.clone(),
                up_to: self.next_seq,
                full_state: true,
            });
        }
        let skip = usize::try_from(acked - self.first_buffered).unwrap_or(usize::MAX);
        let mut payload = T::default();
        for (delta, origin) in self.buffer.iter().skip(skip) {
            if *origin != Some(neighbour) {
                payload.merge(delta);
            }
        }
        if payload == T::default() {
            // Everything it lacks came from it: it has it all.
            self.acknowledge(neighbour, self.next_seq);
            return None;
        }
        Some(DeltaMessage::Deltas {
            payload,
            up_to: self.next_seq,
            full_state: false,
        })
    }

    /// Handles a message from `neighbour`; returns the reply to send back, if any.
    pub fn receive(
        &mut self,
        neighbour: ReplicaId,
        message: DeltaMessage<T>,
    ) -> Option<DeltaMessage<T>> {
        match message {
            DeltaMessage::Deltas { payload, up_to, .. } => {
                self.acknowledged.entry(neighbour).or_insert(0);
                if !self.state.includes(&payload) {
                    self.state.merge(&payload);
                    self.push_delta(payload, Some(neighbour));
                }
                Some(DeltaMessage::Ack { up_to })
            }
            DeltaMessage::Ack { up_to } => {
                // An acknowledgement can never cover more than was sent.
                self.acknowledge(neighbour, up_to.min(self.next_seq));
                None
            }
        }
    }

    fn acknowledge(&mut self, neighbour: ReplicaId, up_to: u64) {
        let acked = self.acknowledged.entry(neighbour).or_insert(0);
        *acked = (*acked).max(up_to);
        self.collect_garbage();
    }

    fn push_delta(&mut self, delta: T, origin: Option<ReplicaId>) {
        self.buffer.push_back((delta, origin));
        self.next_seq += 1;
        while self.buffer.len() > self.max_buffered {
            self.buffer.pop_front();
            self.first_buffered += 1;
        }
    }

    /// Drops the deltas every neighbour has acknowledged.
    fn collect_garbage(&mut self) {
        let Some(&oldest_needed) = self.acknowledged.values().min() else {
            return;
        };
        while self.first_buffered < oldest_needed && self.buffer.pop_front().is_some() {
            self.first_buffered += 1;
        }
    }
}
