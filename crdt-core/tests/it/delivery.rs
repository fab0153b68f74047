//! Causal delivery: changes that arrive in any order, repeated, and cut differently are
//! delivered exactly once and in causal order; the buffer stays within its bounds, loses
//! nothing, and names exactly the events it waits for.

use std::collections::{BTreeMap, BTreeSet};

use crdt_core::delivery::{
    CausalChange, CausalDelivery, DeliveryError, DeliveryLimits, check_change,
};
use crdt_core::{Dot, DotRange, ReplicaId, VersionVector};
use quickcheck::{Arbitrary, Gen};

use crate::harness::{check, replica};

/// A run of consecutive events of one replica, with the dependencies of its first event. A cut
/// keeps the dependencies, which stay valid for the rest of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    id: Dot,
    len: u64,
    deps: Vec<Dot>,
}

impl Run {
    fn last(&self) -> u64 {
        self.id.counter + self.len - 1
    }

    fn covers(&self, dot: Dot) -> bool {
        dot.replica == self.id.replica && (self.id.counter..=self.last()).contains(&dot.counter)
    }
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
    fn size_hint(&self) -> usize {
        usize::try_from(self.len)
            .unwrap_or(usize::MAX)
            .saturating_mul(10)
            .saturating_add(5 * self.deps.len())
    }
    fn skip(&self, n: u64) -> Option<Self> {
        (n < self.len).then(|| Run {
            id: Dot::new(self.id.replica, self.id.counter + n),
            len: self.len - n,
            deps: self.deps.clone(),
        })
    }
}

/// SplitMix64, so that a failing case replays exactly from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[derive(Clone, Debug)]
pub enum Step {
    /// The replica makes an event.
    Edit(u8),
    /// `to` learns everything `from` has seen.
    Sync { from: u8, to: u8 },
}

/// A random history of 2 to 4 replicas, and how its events travel: cut into runs at random
/// (some runs overlapping others), some sent twice, all in a random order.
#[derive(Clone, Debug)]
pub struct Scenario {
    replicas: u8,
    steps: Vec<Step>,
    /// Dependencies as heads (no dependency implied by another), or as whole versions.
    heads_only: bool,
    /// Drives the cutting into runs and the arrival order.
    seed: u64,
    /// Where (modulo the number of arrivals) the receiver restarts from its delivered version.
    restart_at: Option<u16>,
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Self {
        let replicas = 2 + u8::arbitrary(g) % 3;
        let steps = (0..usize::arbitrary(g) % 50)
            .map(|_| {
                if u8::arbitrary(g) % 3 == 0 {
                    Step::Sync {
                        from: u8::arbitrary(g) % replicas,
                        to: u8::arbitrary(g) % replicas,
                    }
                } else {
                    Step::Edit(u8::arbitrary(g) % replicas)
                }
            })
            .collect();
        Scenario {
            replicas,
            steps,
            heads_only: bool::arbitrary(g),
            seed: u64::arbitrary(g),
            restart_at: Option::arbitrary(g),
        }
    }
}

/// The events of a scenario and the runs that carry them.
struct World {
    /// Per event, what its author had seen when making it (itself included).
    clocks: BTreeMap<Dot, VersionVector>,
    /// Every event.
    full: VersionVector,
    /// The runs in their order of arrival.
    arrivals: Vec<Run>,
}

impl World {
    fn new(s: &Scenario) -> World {
        let n = usize::from(s.replicas);
        let mut rng = Rng(s.seed);
        let mut known = vec![VersionVector::new(); n];
        // Per replica, its events as (segment, deps): a segment is a stretch in which the
        // replica learnt nothing new, so that any run inside it is causally atomic.
        let mut events: Vec<Vec<(u64, Vec<Dot>)>> = vec![Vec::new(); n];
        let mut segment = vec![0u64; n];
        let mut clocks: BTreeMap<Dot, VersionVector> = BTreeMap::new();
        for step in &s.steps {
            match *step {
                Step::Edit(at) => {
                    let at = usize::from(at);
                    let me = replica(at);
                    let mut deps: Vec<Dot> = known[at]
                        .iter()
                        .filter(|&(r, _)| r != me)
                        .map(|(r, c)| Dot::new(r, c))
                        .collect();
                    if s.heads_only {
                        let all = deps.clone();
                        deps.retain(|d| {
                            !all.iter()
                                .any(|o| o != d && clocks[o].get(d.replica) >= d.counter)
                        });
                    }
                    let dot = known[at].increment(me);
                    clocks.insert(dot, known[at].clone());
                    events[at].push((segment[at], deps));
                }
                Step::Sync { from, to } => {
                    let (from, to) = (usize::from(from), usize::from(to));
                    let learnt = known[from].clone();
                    if !known[to].includes(&learnt) {
                        known[to].merge(&learnt);
                        segment[to] += 1;
                    }
                }
            }
        }
        let mut pieces = Vec::new();
        let mut segments = Vec::new();
        for (at, events) in events.iter().enumerate() {
            let mut start = 0;
            while start < events.len() {
                let mut end = start + 1;
                while end < events.len() && events[end].0 == events[start].0 {
                    end += 1;
                }
                let run = |from: usize, to: usize| Run {
                    id: Dot::new(replica(at), from as u64 + 1),
                    len: (to - from) as u64,
                    deps: events[start].1.clone(),
                };
                segments.push((start, end, at));
                // Every event in some piece: pieces of 1 to 3 events.
                let mut from = start;
                while from < end {
                    let to = (from + 1 + rng.below(3)).min(end);
                    pieces.push(run(from, to));
                    from = to;
                }
                start = end;
            }
        }
        let mut arrivals = pieces.clone();
        // Runs overlapping the pieces, cut elsewhere.
        for _ in 0..pieces.len() / 2 {
            let (start, end, at) = segments[rng.below(segments.len())];
            let from = start + rng.below(end - start);
            let to = from + 1 + rng.below(end - from);
            let deps = events[at][start].1.clone();
            arrivals.push(Run {
                id: Dot::new(replica(at), from as u64 + 1),
                len: (to - from) as u64,
                deps,
            });
        }
        // Some sent twice.
        for _ in 0..arrivals.len() / 4 {
            let again = arrivals[rng.below(arrivals.len())].clone();
            arrivals.push(again);
        }
        rng.shuffle(&mut arrivals);
        let full = known.iter().fold(VersionVector::new(), |mut all, v| {
            all.merge(v);
            all
        });
        World {
            clocks,
            full,
            arrivals,
        }
    }

    /// Checks that `run` may be delivered after `delivered` (its replica's earlier events, its
    /// stated dependencies and everything its events really depend on are delivered, and it
    /// starts with the next event of its replica: exactly once), then records it.
    fn deliver(&self, delivered: &mut VersionVector, run: &Run) -> bool {
        let r = run.id.replica;
        let next = run.id.counter == delivered.get(r) + 1;
        let exists = run.len >= 1 && run.last() <= self.full.get(r);
        let deps = run.deps.iter().all(|&d| delivered.contains(d));
        let causal = exists
            && (run.id.counter..=run.last()).all(|c| {
                self.clocks[&Dot::new(r, c)]
                    .iter()
                    .all(|(q, n)| q == r || delivered.get(q) >= n)
            });
        delivered.advance(r, run.last());
        next && deps && causal
    }

    /// The delivered events that no other delivered event depends on.
    fn maximal(&self, delivered: &VersionVector) -> BTreeSet<Dot> {
        let latest: Vec<Dot> = delivered.iter().map(|(r, n)| Dot::new(r, n)).collect();
        latest
            .iter()
            .copied()
            .filter(|d| {
                latest
                    .iter()
                    .all(|o| o == d || self.clocks[o].get(d.replica) < d.counter)
            })
            .collect()
    }
}

/// The model of [`CausalDelivery::missing`]: the events the received, not fully delivered runs
/// need (their replica's earlier events, their dependencies and the events before those), that
/// are neither delivered nor in one of those runs.
fn expected_missing(received: &[Run], delivered: &VersionVector) -> BTreeSet<Dot> {
    let pending: Vec<&Run> = received
        .iter()
        .filter(|run| run.last() > delivered.get(run.id.replica))
        .collect();
    let mut needed: BTreeMap<ReplicaId, u64> = BTreeMap::new();
    for run in &pending {
        let needs = run
            .deps
            .iter()
            .copied()
            .chain([Dot::new(run.id.replica, run.id.counter - 1)]);
        for dot in needs {
            let upto = needed.entry(dot.replica).or_insert(0);
            *upto = (*upto).max(dot.counter);
        }
    }
    let mut missing = BTreeSet::new();
    for (replica, upto) in needed {
        for counter in delivered.get(replica) + 1..=upto {
            let dot = Dot::new(replica, counter);
            if !pending.iter().any(|run| run.covers(dot)) {
                missing.insert(dot);
            }
        }
    }
    missing
}

/// The runs of `missing()` as a set of dots, if they are in canonical form: non-empty, in
/// order, neither overlapping nor adjacent.
fn missing_dots(ranges: &[DotRange]) -> Option<BTreeSet<Dot>> {
    let canonical = ranges.iter().all(|r| !r.is_empty())
        && ranges
            .windows(2)
            .all(|w| (w[0].replica, w[0].counters.end) < (w[1].replica, w[1].counters.start));
    canonical.then(|| {
        ranges
            .iter()
            .flat_map(|r| r.dots().collect::<Vec<_>>())
            .collect()
    })
}

const UNBOUNDED: DeliveryLimits = DeliveryLimits {
    max_changes: usize::MAX,
    max_bytes: usize::MAX,
};

#[test]
fn delivers_every_event_once_in_causal_order() {
    fn property(s: Scenario) -> bool {
        let world = World::new(&s);
        let restart_at = s
            .restart_at
            .map(|at| usize::from(at) % (world.arrivals.len() + 1));
        let mut inbox = CausalDelivery::new(UNBOUNDED);
        let mut model = VersionVector::new();
        let mut received: Vec<Run> = Vec::new();
        let mut restarted = false;
        for (i, run) in world.arrivals.iter().enumerate() {
            if restart_at == Some(i) {
                // A restart keeps only what was persisted; peers send the rest again, and nothing
                // they send again can be delivered yet.
                inbox = CausalDelivery::with_version(inbox.delivered_version().clone(), UNBOUNDED);
                restarted = true;
                for again in &received {
                    if !matches!(inbox.receive(again.clone()), Ok(d) if d.is_empty()) {
                        return false;
                    }
                }
            }
            let Ok(delivered) = inbox.receive(run.clone()) else {
                return false;
            };
            received.push(run.clone());
            if !delivered.into_iter().all(|c| world.deliver(&mut model, &c)) {
                return false;
            }
            let maximal = world.maximal(&model);
            let heads: BTreeSet<Dot> = inbox.heads().collect();
            let heads_right = if restarted {
                // Without the history, heads may include every replica's latest event.
                heads.is_superset(&maximal)
                    && heads.iter().all(|h| model.get(h.replica) == h.counter)
            } else {
                heads == maximal
            };
            let missing = missing_dots(&inbox.missing());
            if inbox.delivered_version() != &model
                || !heads_right
                || missing != Some(expected_missing(&received, &model))
            {
                return false;
            }
        }
        model == world.full
            && inbox.buffered() == 0
            && inbox.buffered_bytes() == 0
            && inbox.missing().is_empty()
    }
    check(300, property);
}

/// Everything a refused change could have changed.
fn observable(inbox: &CausalDelivery<Run>) -> (usize, usize, VersionVector, Vec<DotRange>) {
    (
        inbox.buffered(),
        inbox.buffered_bytes(),
        inbox.delivered_version().clone(),
        inbox.missing(),
    )
}

#[test]
fn a_full_buffer_refuses_without_losing_anything() {
    fn property((s, max_changes, max_bytes): (Scenario, u8, u8)) -> bool {
        let world = World::new(&s);
        let limits = DeliveryLimits {
            max_changes: usize::from(max_changes % 5),
            max_bytes: 10 + usize::from(max_bytes),
        };
        let mut inbox = CausalDelivery::new(limits);
        let mut model = VersionVector::new();
        let mut to_send = world.arrivals.clone();
        // Peers send again what was refused; every round must make progress until all is there.
        for _ in 0..=world.arrivals.len() {
            let mut refused = Vec::new();
            for run in to_send {
                let before = observable(&inbox);
                match inbox.receive(run.clone()) {
                    Ok(delivered) => {
                        if !delivered.into_iter().all(|c| world.deliver(&mut model, &c)) {
                            return false;
                        }
                    }
                    Err(DeliveryError::BufferFull { .. }) => {
                        if observable(&inbox) != before {
                            return false;
                        }
                        refused.push(run);
                    }
                    Err(_) => return false,
                }
                if inbox.buffered() > limits.max_changes
                    || inbox.buffered_bytes() > limits.max_bytes
                {
                    return false;
                }
            }
            to_send = refused;
            if to_send.is_empty() {
                break;
            }
        }
        to_send.is_empty()
            && model == world.full
            && inbox.delivered_version() == &world.full
            && inbox.buffered() == 0
    }
    check(300, property);
}

/// Counters and lengths near the edges, where arithmetic overflows.
fn edgy(g: &mut Gen) -> u64 {
    match u8::arbitrary(g) % 6 {
        0 => 0,
        1 => u64::MAX,
        2 => u64::MAX - 1,
        3 => u64::MAX - u64::from(u8::arbitrary(g)),
        _ => u64::from(u8::arbitrary(g) % 8),
    }
}

#[derive(Clone, Debug)]
pub struct AnyRun(Run);

impl Arbitrary for AnyRun {
    fn arbitrary(g: &mut Gen) -> Self {
        let dot = |g: &mut Gen| Dot::new(replica(usize::from(u8::arbitrary(g) % 2)), edgy(g));
        let id = dot(g);
        let deps = (0..usize::arbitrary(g) % 3).map(|_| dot(g)).collect();
        AnyRun(Run {
            id,
            len: edgy(g),
            deps,
        })
    }
}

#[test]
fn only_possible_changes_are_accepted() {
    fn property((runs, probe): (Vec<AnyRun>, AnyRun)) -> bool {
        let mut inbox = CausalDelivery::new(DeliveryLimits::default());
        for AnyRun(run) in runs {
            let _ = inbox.receive(run);
        }
        let AnyRun(probe) = probe;
        // The rules, restated independently.
        let possible = |d: &Dot| d.counter >= 1 && d.counter < u64::MAX;
        let valid = probe.id.counter >= 1
            && probe.len >= 1
            && u128::from(probe.id.counter) + u128::from(probe.len) <= u128::from(u64::MAX)
            && probe.deps.iter().all(|d| {
                possible(d) && !(d.replica == probe.id.replica && d.counter >= probe.id.counter)
            });
        let before = observable(&inbox);
        match inbox.receive(probe.clone()) {
            Err(
                error @ (DeliveryError::InvalidRange { .. }
                | DeliveryError::InvalidDependency { .. }),
            ) => !valid && check_change(&probe) == Err(error) && observable(&inbox) == before,
            Err(_) => valid && observable(&inbox) == before,
            Ok(_) => valid && check_change(&probe).is_ok(),
        }
    }
    check(1000, property);
}
