//! What the properties need from each type under test, and generators of reachable states.

use std::fmt::Debug;

use crdt_core::codec::Encode;
use crdt_core::{
    AwSet, DwFlag, EwFlag, GCounter, GSet, LamportTimestamp, LwwRegister, MvRegister, OrMap,
    PNCounter, ReplicaId, RwSet, StateCrdt, TwoPSet,
};
use quickcheck::{Arbitrary, Gen};

/// The replicas of every generated history.
pub fn replica(index: usize) -> ReplicaId {
    ReplicaId::from_u128(0x1000 + index as u128)
}

/// A type under test: its mutations as data, and what a user can observe of it.
pub trait Subject: StateCrdt + Encode + Debug + Send + 'static {
    /// A mutation, generated at random.
    type Op: Arbitrary + Debug;
    /// What reading the value gives.
    type Observed: PartialEq + Debug;

    /// Applies `op` in place on behalf of `replica` and returns the delta.
    fn apply(&mut self, replica: ReplicaId, op: &Self::Op) -> Self;
    /// The value as a user reads it.
    fn observe(&self) -> Self::Observed;
}

/// A small element domain, so that adds and removes of the same element collide often.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Small(pub u8);

impl Arbitrary for Small {
    fn arbitrary(g: &mut Gen) -> Self {
        Small(u8::arbitrary(g) % 6)
    }
}

impl Subject for GCounter {
    type Op = u8;
    type Observed = u64;
    fn apply(&mut self, replica: ReplicaId, op: &u8) -> Self {
        self.increment(replica, u64::from(*op))
    }
    fn observe(&self) -> u64 {
        self.value()
    }
}

impl Subject for PNCounter {
    type Op = i8;
    type Observed = i64;
    fn apply(&mut self, replica: ReplicaId, op: &i8) -> Self {
        self.add(replica, i64::from(*op))
    }
    fn observe(&self) -> i64 {
        self.value()
    }
}

#[derive(Clone, Debug)]
pub enum LwwOp {
    Set(u8),
    /// A caller-chosen timestamp: collisions (even misuse, same stamp twice) must stay convergent.
    SetAt(u8, u8),
}

impl Arbitrary for LwwOp {
    fn arbitrary(g: &mut Gen) -> Self {
        if bool::arbitrary(g) {
            LwwOp::Set(u8::arbitrary(g))
        } else {
            LwwOp::SetAt(u8::arbitrary(g) % 8, u8::arbitrary(g))
        }
    }
}

impl Subject for LwwRegister<u8> {
    type Op = LwwOp;
    type Observed = Option<u8>;
    fn apply(&mut self, replica: ReplicaId, op: &LwwOp) -> Self {
        match *op {
            LwwOp::Set(value) => self.set(replica, value),
            LwwOp::SetAt(counter, value) => {
                self.set_at(LamportTimestamp::new(u64::from(counter), replica), value)
            }
        }
    }
    fn observe(&self) -> Option<u8> {
        self.value().copied()
    }
}

#[derive(Clone, Debug)]
pub enum RegisterOp {
    Write(u8),
    Clear,
}

impl Arbitrary for RegisterOp {
    fn arbitrary(g: &mut Gen) -> Self {
        if u8::arbitrary(g) % 5 == 0 {
            RegisterOp::Clear
        } else {
            RegisterOp::Write(u8::arbitrary(g))
        }
    }
}

impl Subject for MvRegister<u8> {
    type Op = RegisterOp;
    type Observed = Vec<u8>;
    fn apply(&mut self, replica: ReplicaId, op: &RegisterOp) -> Self {
        match *op {
            RegisterOp::Write(value) => self.set(replica, value),
            RegisterOp::Clear => self.clear(),
        }
    }
    fn observe(&self) -> Vec<u8> {
        let mut values: Vec<u8> = self.values().copied().collect();
        values.sort_unstable();
        values
    }
}

impl Subject for GSet<u8> {
    type Op = Small;
    type Observed = Vec<u8>;
    fn apply(&mut self, _: ReplicaId, op: &Small) -> Self {
        self.insert(op.0)
    }
    fn observe(&self) -> Vec<u8> {
        self.iter().copied().collect()
    }
}

#[derive(Clone, Debug)]
pub enum SetOp {
    Add(Small),
    Remove(Small),
    Clear,
}

impl Arbitrary for SetOp {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 9 {
            0 => SetOp::Clear,
            1..=4 => SetOp::Remove(Small::arbitrary(g)),
            _ => SetOp::Add(Small::arbitrary(g)),
        }
    }
}

impl Subject for TwoPSet<u8> {
    type Op = SetOp;
    type Observed = Vec<u8>;
    fn apply(&mut self, _: ReplicaId, op: &SetOp) -> Self {
        match *op {
            SetOp::Add(Small(e)) => self.insert(e),
            SetOp::Remove(Small(e)) => self.remove(&e),
            SetOp::Clear => {
                let delta = self.reset_delta();
                self.merge(&delta);
                delta
            }
        }
    }
    fn observe(&self) -> Vec<u8> {
        self.iter().copied().collect()
    }
}

impl Subject for AwSet<u8> {
    type Op = SetOp;
    type Observed = Vec<u8>;
    fn apply(&mut self, replica: ReplicaId, op: &SetOp) -> Self {
        match *op {
            SetOp::Add(Small(e)) => self.insert(replica, e),
            SetOp::Remove(Small(e)) => self.remove(&e),
            SetOp::Clear => self.clear(),
        }
    }
    fn observe(&self) -> Vec<u8> {
        self.iter().copied().collect()
    }
}

impl Subject for RwSet<u8> {
    type Op = SetOp;
    type Observed = Vec<u8>;
    fn apply(&mut self, replica: ReplicaId, op: &SetOp) -> Self {
        match *op {
            SetOp::Add(Small(e)) => self.insert(replica, e),
            SetOp::Remove(Small(e)) => self.remove(replica, &e),
            SetOp::Clear => {
                let delta = self.reset_delta();
                self.merge(&delta);
                delta
            }
        }
    }
    fn observe(&self) -> Vec<u8> {
        self.iter().copied().collect()
    }
}

impl Subject for EwFlag {
    type Op = bool;
    type Observed = bool;
    fn apply(&mut self, replica: ReplicaId, enable: &bool) -> Self {
        if *enable {
            self.enable(replica)
        } else {
            self.disable()
        }
    }
    fn observe(&self) -> bool {
        self.value()
    }
}

impl Subject for DwFlag {
    type Op = bool;
    type Observed = bool;
    fn apply(&mut self, replica: ReplicaId, enable: &bool) -> Self {
        if *enable {
            self.enable(replica)
        } else {
            self.disable(replica)
        }
    }
    fn observe(&self) -> bool {
        self.value()
    }
}

#[derive(Clone, Debug)]
pub enum MapOp<O> {
    Update(Small, O),
    Remove(Small),
}

impl<O: Arbitrary> Arbitrary for MapOp<O> {
    fn arbitrary(g: &mut Gen) -> Self {
        if u8::arbitrary(g) % 4 == 0 {
            MapOp::Remove(Small::arbitrary(g))
        } else {
            MapOp::Update(Small::arbitrary(g), O::arbitrary(g))
        }
    }
}

impl<V: Subject> Subject for OrMap<u8, V>
where
    OrMap<u8, V>: Encode,
{
    type Op = MapOp<V::Op>;
    type Observed = Vec<(u8, V::Observed)>;
    fn apply(&mut self, replica: ReplicaId, op: &Self::Op) -> Self {
        match op {
            MapOp::Update(Small(key), op) => {
                self.update(replica, *key, |value| value.apply(replica, op))
            }
            MapOp::Remove(Small(key)) => self.remove(key),
        }
    }
    fn observe(&self) -> Self::Observed {
        self.iter().map(|(k, v)| (*k, v.observe())).collect()
    }
}

/// Three states of one random history of three replicas, so that their dots are consistent (as
/// between real replicas): `a` is the latest state of replica `owner_of_a`; `b` and `c` are
/// states any replica held at any point.
#[derive(Clone, Debug)]
pub struct Snapshots<T> {
    pub a: T,
    pub b: T,
    pub c: T,
    pub owner_of_a: ReplicaId,
}

impl<T: Subject + Clone> Arbitrary for Snapshots<T> {
    fn arbitrary(g: &mut Gen) -> Self {
        const N: usize = 3;
        let mut states: Vec<T> = vec![T::default(); N];
        let mut seen: Vec<T> = vec![T::default()];
        let steps = usize::arbitrary(g) % 30;
        for _ in 0..steps {
            let at = usize::arbitrary(g) % N;
            if u8::arbitrary(g) % 4 == 0 {
                let from = states[usize::arbitrary(g) % N].clone();
                states[at].merge(&from);
            } else {
                let op = T::Op::arbitrary(g);
                states[at].apply(replica(at), &op);
            }
            seen.push(states[at].clone());
        }
        // `a` is a replica's latest state, so that it may go on editing without reusing a dot.
        let owner = usize::arbitrary(g) % N;
        let mut pick = || seen[usize::arbitrary(g) % seen.len()].clone();
        Snapshots {
            b: pick(),
            c: pick(),
            a: states.swap_remove(owner),
            owner_of_a: replica(owner),
        }
    }
}

/// A property over one generated input (a tuple for several). Unlike quickcheck's own function
/// wrapper, it prints the failing input even when the input type has no shrinker.
pub struct Property<A>(pub fn(A) -> bool);

impl<A: Arbitrary + Debug> quickcheck::Testable for Property<A> {
    fn result(&self, g: &mut Gen) -> quickcheck::TestResult {
        let property = self.0;
        let holds = |input: A| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || property(input)))
                .unwrap_or(false)
        };
        let input = A::arbitrary(g);
        if holds(input.clone()) {
            return quickcheck::TestResult::passed();
        }
        // Shrink greedily while the property still fails, then report the smallest input.
        let mut smallest = input;
        'shrinking: loop {
            for candidate in smallest.shrink() {
                if !holds(candidate.clone()) {
                    smallest = candidate;
                    continue 'shrinking;
                }
            }
            break;
        }
        quickcheck::TestResult::error(format!("failing input: {smallest:?}"))
    }
}

/// Runs `property` on `default_cases` random inputs, or `QUICKCHECK_TESTS` if set (for soak
/// runs: `QUICKCHECK_TESTS=100000 cargo test -p crdt-core --release`).
pub fn check<A: Arbitrary + Debug>(default_cases: u64, property: fn(A) -> bool) {
    let cases = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    quickcheck::QuickCheck::new()
        .tests(cases)
        .max_tests(cases.saturating_mul(10))
        .quickcheck(Property(property));
}
