//! The lattice laws, for every state-based type: merge is commutative, associative, idempotent
//! and an upper bound; a mutator has the effect of merging its delta; encodings round-trip.

use crate::harness::{Snapshots, Subject, check};
use crdt_core::{
    AwSet, DwFlag, EwFlag, GCounter, GSet, LwwRegister, MvRegister, OrMap, PNCounter, RwSet,
    StateCrdt, TwoPSet,
};

fn merged<T: StateCrdt>(mut x: T, y: &T) -> T {
    x.merge(y);
    x
}

pub fn merge_is_commutative<T: Subject>(s: Snapshots<T>) -> bool {
    merged(s.a.clone(), &s.b) == merged(s.b, &s.a)
}

pub fn merge_is_associative<T: Subject>(s: Snapshots<T>) -> bool {
    let left = merged(merged(s.a.clone(), &s.b), &s.c);
    let right = merged(s.a, &merged(s.b, &s.c));
    left == right
}

pub fn merge_is_idempotent<T: Subject>(s: Snapshots<T>) -> bool {
    let once = merged(s.a.clone(), &s.b);
    merged(s.a.clone(), &s.a) == s.a && merged(once.clone(), &s.b) == once
}

/// The join is an upper bound of both sides, and `includes` agrees with it.
pub fn merge_is_an_upper_bound<T: Subject>(s: Snapshots<T>) -> bool {
    let joined = merged(s.a.clone(), &s.b);
    joined.includes(&s.a)
        && joined.includes(&s.b)
        && s.a.includes(&s.b) == (joined == s.a)
        && s.a.includes(&T::default())
}

pub fn mutator_equals_merging_its_delta<T: Subject>((s, op): (Snapshots<T>, T::Op)) -> bool {
    let mut mutated = s.a.clone();
    let delta = mutated.apply(s.owner_of_a, &op);
    let via_delta = merged(s.a.clone(), &delta);
    // The delta also carries the mutation to any other replica that has seen `a`.
    let elsewhere = merged(s.b.clone(), &s.a);
    mutated == via_delta && merged(elsewhere.clone(), &delta) == merged(elsewhere, &mutated)
}

pub fn encoding_round_trips<T: Subject>(s: Snapshots<T>) -> bool {
    let bytes = s.a.encode();
    T::decode(&bytes).expect("our own encoding decodes") == s.a
}

macro_rules! lattice_laws {
    ($($name:ident: $ty:ty,)*) => {$(
        mod $name {
            use super::*;
            type T = $ty;

            #[test]
            fn merge_is_commutative() {
                check(300, super::merge_is_commutative::<T>);
            }
            #[test]
            fn merge_is_associative() {
                check(300, super::merge_is_associative::<T>);
            }
            #[test]
            fn merge_is_idempotent() {
                check(300, super::merge_is_idempotent::<T>);
            }
            #[test]
            fn merge_is_an_upper_bound() {
                check(300, super::merge_is_an_upper_bound::<T>);
            }
            #[test]
            fn mutator_equals_merging_its_delta() {
                check(300, super::mutator_equals_merging_its_delta::<T>);
            }
            #[test]
            fn encoding_round_trips() {
                check(300, super::encoding_round_trips::<T>);
            }
        }
    )*};
}

lattice_laws! {
    g_counter: GCounter,
    pn_counter: PNCounter,
    lww_register: LwwRegister<u8>,
    mv_register: MvRegister<u8>,
    g_set: GSet<u8>,
    two_p_set: TwoPSet<u8>,
    aw_set: AwSet<u8>,
    rw_set: RwSet<u8>,
    ew_flag: EwFlag,
    dw_flag: DwFlag,
    or_map_of_aw_sets: OrMap<u8, AwSet<u8>>,
    or_map_of_counters: OrMap<u8, PNCounter>,
    or_map_of_lww_registers: OrMap<u8, LwwRegister<u8>>,
    nested_or_maps: OrMap<u8, OrMap<u8, MvRegister<u8>>>,
}
