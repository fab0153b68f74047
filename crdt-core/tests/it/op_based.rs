//! Op-based CRDTs against their state-based twins: the same edits by the same replicas, in the
//! same causal structure, give the same values at every step, and every replica converges
//! whatever the order and repetition of the operations. Operation decoders never panic.

use std::collections::BTreeMap;
use std::fmt::Debug;

use crdt_core::delivery::{CausalChange, DeliveryError, check_change};
use crdt_core::op_based::{
    CounterOp, EncodeOp, OP_FORMAT_VERSION, OpAwSet, OpCounter, OpRegister, RegisterOp, SetAction,
    SetOp,
};
use crdt_core::{AwSet, Dot, MvRegister, PNCounter, ReplicaId, StateCrdt, VersionVector};
use quickcheck::{Arbitrary, Gen};

use crate::delivery::Rng;
use crate::harness::{self, Small, check, replica};

/// An op-based type and its state-based twin, driven by the same edits.
pub trait Twin: Sized + 'static {
    type Op: EncodeOp + Clone + Debug + PartialEq;
    type State: StateCrdt + Debug;
    type Edit: Arbitrary + Debug;
    type Observed: PartialEq + Debug;

    fn new(replica: ReplicaId) -> Self;
    /// Makes `edit` here; returns the operation.
    fn edit(&mut self, edit: &Self::Edit) -> Self::Op;
    /// Makes `edit` on the twin's state on behalf of `replica`; returns the delta.
    fn edit_state(state: &mut Self::State, replica: ReplicaId, edit: &Self::Edit) -> Self::State;
    fn apply(&mut self, op: Self::Op) -> Result<Vec<Dot>, DeliveryError>;
    fn observe(&self) -> Self::Observed;
    fn observe_state(state: &Self::State) -> Self::Observed;
    fn version(&self) -> &VersionVector;
    /// How many operations wait in the replica's delivery buffer.
    fn buffered(&self) -> usize;
    /// What else replicas must agree on, beyond the value the twin also has.
    fn agreed(&self) -> Option<u8> {
        None
    }
    /// Whether what only the op-based type has is consistent with its value.
    fn consistent(&self) -> bool {
        true
    }
    /// Whether the operation carries observed dots (so `forge` keeps them).
    const OBSERVES: bool = true;
    /// An operation with any fields, as a forger would make it.
    fn forge(id: Dot, deps: Vec<Dot>, observed: Vec<Dot>, edit: &Self::Edit) -> Self::Op;
}

impl Twin for OpCounter {
    type Op = CounterOp;
    type State = PNCounter;
    type Edit = i8;
    type Observed = i64;
    const OBSERVES: bool = false;

    fn new(replica: ReplicaId) -> Self {
        OpCounter::new(replica)
    }
    fn edit(&mut self, edit: &i8) -> CounterOp {
        if *edit < 0 {
            self.decrement(u64::from(edit.unsigned_abs()))
        } else {
            self.increment(u64::from(edit.unsigned_abs()))
        }
    }
    fn edit_state(state: &mut PNCounter, replica: ReplicaId, edit: &i8) -> PNCounter {
        state.add(replica, i64::from(*edit))
    }
    fn apply(&mut self, op: CounterOp) -> Result<Vec<Dot>, DeliveryError> {
        OpCounter::apply(self, op)
    }
    fn observe(&self) -> i64 {
        self.value()
    }
    fn observe_state(state: &PNCounter) -> i64 {
        state.value()
    }
    fn version(&self) -> &VersionVector {
        OpCounter::version(self)
    }
    fn buffered(&self) -> usize {
        self.delivery().buffered()
    }
    fn forge(id: Dot, deps: Vec<Dot>, _: Vec<Dot>, edit: &i8) -> CounterOp {
        CounterOp {
            id,
            deps,
            amount: i64::from(*edit),
        }
    }
}

impl Twin for OpRegister<u8> {
    type Op = RegisterOp<u8>;
    type State = MvRegister<u8>;
    type Edit = harness::RegisterOp;
    type Observed = Vec<u8>;

    fn new(replica: ReplicaId) -> Self {
        OpRegister::new(replica)
    }
    fn edit(&mut self, edit: &harness::RegisterOp) -> RegisterOp<u8> {
        match *edit {
            harness::RegisterOp::Write(value) => self.set(value),
            harness::RegisterOp::Clear => self.clear(),
        }
    }
    fn edit_state(
        state: &mut MvRegister<u8>,
        replica: ReplicaId,
        edit: &harness::RegisterOp,
    ) -> MvRegister<u8> {
        match *edit {
            harness::RegisterOp::Write(value) => state.set(replica, value),
            harness::RegisterOp::Clear => state.clear(),
        }
    }
    fn apply(&mut self, op: RegisterOp<u8>) -> Result<Vec<Dot>, DeliveryError> {
        OpRegister::apply(self, op)
    }
    fn observe(&self) -> Vec<u8> {
        let mut values: Vec<u8> = self.values().copied().collect();
        values.sort_unstable();
        values
    }
    fn observe_state(state: &MvRegister<u8>) -> Vec<u8> {
        let mut values: Vec<u8> = state.values().copied().collect();
        values.sort_unstable();
        values
    }
    fn version(&self) -> &VersionVector {
        OpRegister::version(self)
    }
    fn buffered(&self) -> usize {
        self.delivery().buffered()
    }
    fn agreed(&self) -> Option<u8> {
        self.winner().copied()
    }
    fn consistent(&self) -> bool {
        // The winner is the value of the greatest dot; the entries are sorted by dot.
        let entries = self.entries();
        entries.windows(2).all(|w| w[0].0 < w[1].0)
            && self.winner() == entries.last().map(|(_, value)| value)
            && self.values().count() == entries.len()
    }
    fn forge(
        id: Dot,
        deps: Vec<Dot>,
        overwrites: Vec<Dot>,
        edit: &harness::RegisterOp,
    ) -> RegisterOp<u8> {
        let value = match *edit {
            harness::RegisterOp::Write(value) => Some(value),
            harness::RegisterOp::Clear => None,
        };
        RegisterOp {
            id,
            deps,
            overwrites,
            value,
        }
    }
}

#[derive(Clone, Debug)]
pub enum SetEdit {
    Add(Small),
    Remove(Small),
}

impl Arbitrary for SetEdit {
    fn arbitrary(g: &mut Gen) -> Self {
        if bool::arbitrary(g) {
            SetEdit::Add(Small::arbitrary(g))
        } else {
            SetEdit::Remove(Small::arbitrary(g))
        }
    }
}

impl Twin for OpAwSet<u8> {
    type Op = SetOp<u8>;
    type State = AwSet<u8>;
    type Edit = SetEdit;
    type Observed = Vec<u8>;

    fn new(replica: ReplicaId) -> Self {
        OpAwSet::new(replica)
    }
    fn edit(&mut self, edit: &SetEdit) -> SetOp<u8> {
        match *edit {
            SetEdit::Add(Small(e)) => self.insert(e),
            SetEdit::Remove(Small(e)) => self.remove(&e),
        }
    }
    fn edit_state(state: &mut AwSet<u8>, replica: ReplicaId, edit: &SetEdit) -> AwSet<u8> {
        match *edit {
            SetEdit::Add(Small(e)) => state.insert(replica, e),
            SetEdit::Remove(Small(e)) => state.remove(&e),
        }
    }
    fn apply(&mut self, op: SetOp<u8>) -> Result<Vec<Dot>, DeliveryError> {
        OpAwSet::apply(self, op)
    }
    fn observe(&self) -> Vec<u8> {
        self.iter().copied().collect()
    }
    fn observe_state(state: &AwSet<u8>) -> Vec<u8> {
        state.iter().copied().collect()
    }
    fn version(&self) -> &VersionVector {
        OpAwSet::version(self)
    }
    fn buffered(&self) -> usize {
        self.delivery().buffered()
    }
    fn forge(id: Dot, deps: Vec<Dot>, observed: Vec<Dot>, edit: &SetEdit) -> SetOp<u8> {
        let (action, Small(element)) = match *edit {
            SetEdit::Add(e) => (SetAction::Insert, e),
            SetEdit::Remove(e) => (SetAction::Remove, e),
        };
        SetOp {
            id,
            deps,
            action,
            element,
            observed,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Step<E> {
    /// Replica `at` makes an edit.
    Edit { at: u8, edit: E },
    /// Replica `at` receives the `pick`-th operation made so far (modulo their number).
    Receive { at: u8, pick: u16 },
}

/// Random edits at 3 or 4 replicas with some operations received along the way, then every
/// replica receives every operation in its own random order, some twice.
#[derive(Clone, Debug)]
pub struct History<E> {
    replicas: u8,
    steps: Vec<Step<E>>,
    final_orders: Vec<u64>,
}

impl<E: Arbitrary> Arbitrary for History<E> {
    fn arbitrary(g: &mut Gen) -> Self {
        let replicas = 3 + u8::arbitrary(g) % 2;
        let steps = (0..usize::arbitrary(g) % 60)
            .map(|_| {
                let at = u8::arbitrary(g) % replicas;
                if bool::arbitrary(g) {
                    Step::Receive {
                        at,
                        pick: u16::arbitrary(g),
                    }
                } else {
                    Step::Edit {
                        at,
                        edit: E::arbitrary(g),
                    }
                }
            })
            .collect();
        History {
            replicas,
            steps,
            final_orders: (0..replicas).map(|_| u64::arbitrary(g)).collect(),
        }
    }
}

fn shuffled_with_repeats<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut rng = Rng(seed);
    let mut out = items.to_vec();
    for item in items {
        if rng.next().is_multiple_of(4) {
            out.push(item.clone());
        }
    }
    rng.shuffle(&mut out);
    out
}

/// An op-based replica and its state-based twin, which has merged the deltas of exactly the
/// operations the replica has applied, in the same order.
struct Pair<T: Twin> {
    ops: T,
    state: T::State,
}

impl<T: Twin> Pair<T> {
    /// Delivers an operation the way a network would (encoded, then decoded); the twin merges
    /// the deltas of whatever the replica applied.
    fn receive(&mut self, op: &T::Op, deltas: &BTreeMap<Dot, T::State>) -> bool {
        let bytes = op.encode();
        let Ok(decoded) = T::Op::decode(&bytes) else {
            return false;
        };
        let Ok(applied) = self.ops.apply(decoded) else {
            return false;
        };
        for id in applied {
            let Some(delta) = deltas.get(&id) else {
                return false;
            };
            self.state.merge(delta);
        }
        self.agrees()
    }

    fn agrees(&self) -> bool {
        self.ops.observe() == T::observe_state(&self.state) && self.ops.consistent()
    }
}

pub fn op_based_equals_state_based<T: Twin>(history: History<T::Edit>) -> bool {
    let n = usize::from(history.replicas);
    let mut pairs: Vec<Pair<T>> = (0..n)
        .map(|i| Pair {
            ops: T::new(replica(i)),
            state: T::State::default(),
        })
        .collect();
    let mut ops: Vec<T::Op> = Vec::new();
    let mut deltas: BTreeMap<Dot, T::State> = BTreeMap::new();
    for step in &history.steps {
        match step {
            Step::Edit { at, edit } => {
                let at = usize::from(*at);
                let pair = &mut pairs[at];
                let op = pair.ops.edit(edit);
                deltas.insert(op.id(), T::edit_state(&mut pair.state, replica(at), edit));
                ops.push(op);
                if !pair.agrees() {
                    return false;
                }
            }
            Step::Receive { at, pick } if !ops.is_empty() => {
                let op = &ops[usize::from(*pick) % ops.len()];
                if !pairs[usize::from(*at)].receive(op, &deltas) {
                    return false;
                }
            }
            Step::Receive { .. } => {}
        }
    }
    for (pair, seed) in pairs.iter_mut().zip(&history.final_orders) {
        for op in shuffled_with_repeats(&ops, *seed) {
            if !pair.receive(&op, &deltas) {
                return false;
            }
        }
    }
    let all: VersionVector = ops
        .iter()
        .map(|op| (op.id().replica, op.id().counter))
        .collect();
    let first = &pairs[0];
    pairs.iter().all(|pair| {
        pair.ops.version() == &all
            && pair.ops.buffered() == 0
            && pair.ops.observe() == first.ops.observe()
            && pair.state == first.state
            && T::agreed(&pair.ops) == T::agreed(&first.ops)
    })
}

/// Operations with arbitrary ids, dependencies and observed dots (unique ids, but
/// dependencies on events that never come, cycles, and observed dots outside the causal past).
#[derive(Clone, Debug)]
pub struct Forged<E> {
    ops: Vec<ForgedOp<E>>,
    orders: (u64, u64),
}

/// One forged operation; dots are (replica, counter) pairs.
#[derive(Clone, Debug)]
pub struct ForgedOp<E> {
    author: u8,
    deps: Vec<(u8, u8)>,
    observed: Vec<(u8, u8)>,
    edit: E,
}

impl<E: Arbitrary> Arbitrary for Forged<E> {
    fn arbitrary(g: &mut Gen) -> Self {
        let dots = |g: &mut Gen| {
            (0..usize::arbitrary(g) % 3)
                .map(|_| (u8::arbitrary(g) % 3, 1 + u8::arbitrary(g) % 6))
                .collect()
        };
        let ops = (0..usize::arbitrary(g) % 25)
            .map(|_| ForgedOp {
                author: u8::arbitrary(g) % 3,
                deps: dots(g),
                observed: dots(g),
                edit: E::arbitrary(g),
            })
            .collect();
        Forged {
            ops,
            orders: (u64::arbitrary(g), u64::arbitrary(g)),
        }
    }
}

/// Two replicas that receive the same forged operations in different orders hold the same
/// value: a forged remove cannot make them diverge.
pub fn forged_operations_still_converge<T: Twin>(forged: Forged<T::Edit>) -> bool {
    let mut next = [0u64; 3];
    let ops: Vec<T::Op> = forged
        .ops
        .iter()
        .map(|forged| {
            let at = usize::from(forged.author);
            next[at] += 1;
            let id = Dot::new(replica(at), next[at]);
            // Only what a decoder would let through: sorted, and nothing of the op's own future.
            let dots = |pairs: &[(u8, u8)]| {
                let mut dots: Vec<Dot> = pairs
                    .iter()
                    .map(|&(r, c)| Dot::new(replica(usize::from(r)), u64::from(c)))
                    .filter(|d| !(d.replica == id.replica && d.counter >= id.counter))
                    .collect();
                dots.sort_unstable();
                dots.dedup();
                dots
            };
            T::forge(id, dots(&forged.deps), dots(&forged.observed), &forged.edit)
        })
        .collect();
    let mut left = T::new(replica(7));
    let mut right = T::new(replica(8));
    for op in shuffled_with_repeats(&ops, forged.orders.0) {
        if left.apply(op).is_err() {
            return false;
        }
    }
    for op in shuffled_with_repeats(&ops, forged.orders.1) {
        if right.apply(op).is_err() {
            return false;
        }
    }
    left.version() == right.version()
        && left.observe() == right.observe()
        && left.agreed() == right.agreed()
}

/// Decodes `bytes`; if accepted, the operation is valid, encodes back to itself, and applying
/// it to a replica does not panic.
fn accepts_only_valid<T: Twin>(bytes: &[u8]) -> bool {
    match T::Op::decode(bytes) {
        Err(_) => true,
        Ok(op) => {
            let again = T::Op::decode(&op.encode()).ok();
            let valid = op.check().is_ok() && check_change(&op).is_ok();
            let mut target = T::new(replica(9));
            valid && again.as_ref() == Some(&op) && target.apply(op).is_ok()
        }
    }
}

/// Arbitrary bytes behind a correct header, so the body decoder is what gets exercised.
pub fn random_bodies_never_panic<T: Twin>(body: Vec<u8>) -> bool {
    let mut bytes = vec![OP_FORMAT_VERSION, <T::Op as EncodeOp>::KIND as u8];
    bytes.extend(body);
    accepts_only_valid::<T>(&bytes)
}

/// Counters near the edges, where the rules bite.
fn edgy(g: &mut Gen) -> u64 {
    match u8::arbitrary(g) % 6 {
        0 => 0,
        1 => u64::MAX,
        2 => u64::MAX - 1,
        _ => u64::from(u8::arbitrary(g) % 5),
    }
}

/// An operation with any fields: unsorted, repeated, zero, too large, or its own future.
#[derive(Clone, Debug)]
pub struct RawOp<E> {
    id: Dot,
    deps: Vec<Dot>,
    observed: Vec<Dot>,
    edit: E,
}

impl<E: Arbitrary> Arbitrary for RawOp<E> {
    fn arbitrary(g: &mut Gen) -> Self {
        let dot = |g: &mut Gen| Dot::new(replica(usize::from(u8::arbitrary(g) % 2)), edgy(g));
        let dots = |g: &mut Gen| (0..usize::arbitrary(g) % 4).map(|_| dot(g)).collect();
        RawOp {
            id: dot(g),
            deps: dots(g),
            observed: dots(g),
            edit: E::arbitrary(g),
        }
    }
}

/// An encoded operation decodes exactly when it is valid, by the rules restated here.
pub fn decoding_refuses_exactly_the_invalid_operations<T: Twin>(raw: RawOp<T::Edit>) -> bool {
    let id = raw.id;
    let before_id = |d: &Dot| !(d.replica == id.replica && d.counter >= id.counter);
    let increasing = |dots: &[Dot]| dots.windows(2).all(|w| w[0] < w[1]);
    let valid = (1..u64::MAX).contains(&id.counter)
        && increasing(&raw.deps)
        && raw
            .deps
            .iter()
            .all(|d| (1..u64::MAX).contains(&d.counter) && before_id(d))
        && (!T::OBSERVES
            || increasing(&raw.observed)
                && raw.observed.iter().all(|d| d.counter >= 1 && before_id(d)));
    let op = T::forge(id, raw.deps, raw.observed, &raw.edit);
    let bytes = op.encode();
    match T::Op::decode(&bytes) {
        Ok(decoded) => valid && decoded == op,
        Err(_) => !valid,
    }
}

/// Bytes to overwrite (position, value), and how much to cut off the end.
type Corruption = (Vec<(u16, u8)>, u16);

/// A valid encoding of an operation with dependencies and observed dots, truncated and with
/// some bytes overwritten.
pub fn corrupted_encodings_never_panic<T: Twin>(
    (edits, (corruption, cut)): (Vec<(bool, T::Edit)>, Corruption),
) -> bool {
    let mut a = T::new(replica(0));
    let mut b = T::new(replica(1));
    let mut last = None;
    for (at_a, edit) in &edits {
        let (from, to) = if *at_a {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let op = from.edit(edit);
        if to.apply(op.clone()).is_err() {
            return false;
        }
        last = Some(op);
    }
    let Some(op) = last else {
        return true;
    };
    let mut bytes = op.encode();
    for (position, value) in corruption {
        let at = usize::from(position) % bytes.len();
        bytes[at] = value;
    }
    let keep = bytes.len() - usize::from(cut) % (bytes.len() / 4 + 1);
    bytes.truncate(keep);
    accepts_only_valid::<T>(&bytes)
}

macro_rules! op_based_properties {
    ($($name:ident: $ty:ty,)*) => {$(
        mod $name {
            use super::*;
            type T = $ty;

            #[test]
            fn op_based_equals_state_based() {
                check(300, super::op_based_equals_state_based::<T>);
            }

            #[test]
            fn forged_operations_still_converge() {
                check(300, super::forged_operations_still_converge::<T>);
            }

            #[test]
            fn decoding_refuses_exactly_the_invalid_operations() {
                check(1000, super::decoding_refuses_exactly_the_invalid_operations::<T>);
            }

            #[test]
            fn random_bodies_never_panic() {
                check(500, super::random_bodies_never_panic::<T>);
            }

            #[test]
            fn corrupted_encodings_never_panic() {
                check(500, super::corrupted_encodings_never_panic::<T>);
            }
        }
    )*};
}

op_based_properties! {
    counter: OpCounter,
    register: OpRegister<u8>,
    aw_set: OpAwSet<u8>,
}
