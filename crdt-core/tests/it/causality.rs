//! Properties of the causality layer, checked against plain set models.

use std::collections::BTreeSet;

use crdt_core::{CausalContext, Causality, Dot, ReplicaId, VersionVector};
use quickcheck::{Arbitrary, Gen};

use crate::harness::check;

#[derive(Clone, Debug)]
struct SmallVv(VersionVector);

impl Arbitrary for SmallVv {
    fn arbitrary(g: &mut Gen) -> Self {
        let entries: Vec<(u8, u8)> = Arbitrary::arbitrary(g);
        SmallVv(
            entries
                .into_iter()
                .map(|(r, n)| (ReplicaId::from_u128(u128::from(r % 5)), u64::from(n % 6)))
                .collect(),
        )
    }
}

/// The events a version vector covers, as a plain set.
fn events(vv: &VersionVector) -> BTreeSet<Dot> {
    vv.iter()
        .flat_map(|(r, n)| (1..=n).map(move |c| Dot::new(r, c)))
        .collect()
}

#[test]
fn version_vector_order_matches_set_inclusion() {
    fn property((a, b): (SmallVv, SmallVv)) -> bool {
        let (ea, eb) = (events(&a.0), events(&b.0));
        let expected = match (ea.is_subset(&eb), eb.is_subset(&ea)) {
            (true, true) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (false, false) => Causality::Concurrent,
        };
        a.0.compare(&b.0) == expected && a.0.includes(&b.0) == eb.is_subset(&ea)
    }
    check(1000, property);
}

#[test]
fn version_vector_merge_is_union_and_meet_is_intersection() {
    fn property((a, b): (SmallVv, SmallVv)) -> bool {
        let (ea, eb) = (events(&a.0), events(&b.0));
        let mut merged = a.0.clone();
        merged.merge(&b.0);
        let union: BTreeSet<Dot> = ea.union(&eb).copied().collect();
        let intersection: BTreeSet<Dot> = ea.intersection(&eb).copied().collect();
        events(&merged) == union && events(&a.0.meet(&b.0)) == intersection
    }
    check(1000, property);
}

#[test]
fn missing_from_is_exactly_the_difference() {
    fn property((a, b): (SmallVv, SmallVv)) -> bool {
        let difference: BTreeSet<Dot> = events(&a.0).difference(&events(&b.0)).copied().collect();
        let reported: BTreeSet<Dot> =
            a.0.missing_from(&b.0)
                .flat_map(|r| r.dots().collect::<Vec<_>>())
                .collect();
        let one_run_per_replica = {
            let replicas: Vec<_> = a.0.missing_from(&b.0).map(|r| r.replica).collect();
            replicas.windows(2).all(|w| w[0] < w[1])
        };
        reported == difference && one_run_per_replica
    }
    check(1000, property);
}

#[derive(Clone, Debug)]
struct SmallDots(Vec<Dot>);

impl Arbitrary for SmallDots {
    fn arbitrary(g: &mut Gen) -> Self {
        let raw: Vec<(u8, u8)> = Arbitrary::arbitrary(g);
        SmallDots(
            raw.into_iter()
                .map(|(r, c)| {
                    Dot::new(
                        ReplicaId::from_u128(u128::from(r % 3)),
                        u64::from(c % 12) + 1,
                    )
                })
                .collect(),
        )
    }
}

#[test]
fn causal_context_behaves_as_a_set_and_stays_canonical() {
    fn property((a, b, probe): (SmallDots, SmallDots, SmallDots)) -> bool {
        let model: BTreeSet<Dot> = a.0.iter().chain(&b.0).copied().collect();
        let ca: CausalContext = a.0.iter().copied().collect();
        let cb: CausalContext = b.0.iter().copied().collect();
        let mut joined = ca.clone();
        joined.join(&cb);
        let mut joined_other_way = cb.clone();
        joined_other_way.join(&ca);
        // Built by insertion in another order: the same set, so the same representation.
        let inserted: CausalContext = model.iter().rev().copied().collect();
        let membership = probe
            .0
            .iter()
            .chain(&model)
            .all(|d| joined.contains(*d) == model.contains(d));
        let next_dots_fresh = (0..3).all(|r| {
            let next = joined.next_dot(ReplicaId::from_u128(r));
            !joined.contains(next)
                && model
                    .iter()
                    .all(|d| d.replica != next.replica || d.counter < next.counter)
        });
        membership && joined == joined_other_way && joined == inserted && next_dots_fresh
    }
    check(1000, property);
}
