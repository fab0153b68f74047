//! Decoding untrusted bytes: every decoder returns a value or an error, never panics, and
//! whatever it accepts is a valid state that encodes back to an equal value.

use crate::harness::{Snapshots, check};
use crdt_core::codec::{Encode, FORMAT_VERSION};
use crdt_core::{
    AwSet, CausalContext, DeltaMessage, DwFlag, EwFlag, GCounter, GSet, LwwRegister, MvRegister,
    OrMap, PNCounter, RwSet, StateCrdt, TwoPSet, VersionVector,
};

/// Decodes `bytes`; if accepted, the value must re-encode and decode to itself, and merging it
/// with itself must change nothing (its invariants hold).
fn accepts_only_valid<T: Encode + StateCrdt + std::fmt::Debug>(bytes: &[u8]) -> bool {
    match T::decode(bytes) {
        Err(_) => true,
        Ok(value) => {
            let again = value.encode();
            let reread = T::decode(&again).expect("our own encoding decodes");
            let mut merged = value.clone();
            merged.merge(&value);
            reread == value && merged == value
        }
    }
}

/// Arbitrary bytes behind a correct header, so the body decoder is what gets exercised.
pub fn random_bodies_never_panic<T: Encode + StateCrdt + std::fmt::Debug>(body: Vec<u8>) -> bool {
    let mut bytes = vec![FORMAT_VERSION, T::KIND as u8];
    bytes.extend(body);
    accepts_only_valid::<T>(&bytes)
}

/// A valid encoding, truncated and with some bytes overwritten.
pub fn corrupted_encodings_never_panic<T>(
    (s, edits, cut): (Snapshots<T>, Vec<(u16, u8)>, u16),
) -> bool
where
    T: crate::harness::Subject + Clone,
{
    let mut bytes = s.a.encode();
    for (position, value) in edits {
        if !bytes.is_empty() {
            let at = usize::from(position) % bytes.len();
            bytes[at] = value;
        }
    }
    let keep = bytes.len() - usize::from(cut) % (bytes.len() / 4 + 1);
    bytes.truncate(keep);
    accepts_only_valid::<T>(&bytes)
}

macro_rules! decoding_properties {
    ($($name:ident: $ty:ty,)*) => {$(
        mod $name {
            use super::*;
            type T = $ty;

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

decoding_properties! {
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
    nested_or_maps: OrMap<u8, OrMap<u8, MvRegister<u8>>>,
}

#[test]
fn random_bytes_into_the_other_decoders_never_panic() {
    fn property(body: Vec<u8>) -> bool {
        let with_header = |kind| {
            let mut bytes = vec![FORMAT_VERSION, kind as u8];
            bytes.extend(&body);
            bytes
        };
        // Accepted values must re-encode to bytes that decode to the same value.
        let vv_ok = VersionVector::decode(&with_header(VersionVector::KIND))
            .map(|v| VersionVector::decode(&v.encode()) == Ok(v))
            .unwrap_or(true);
        let context_ok = CausalContext::decode(&with_header(CausalContext::KIND))
            .map(|c| CausalContext::decode(&c.encode()) == Ok(c))
            .unwrap_or(true);
        let message_ok =
            DeltaMessage::<AwSet<u8>>::decode(&with_header(DeltaMessage::<AwSet<u8>>::KIND))
                .map(|m| DeltaMessage::<AwSet<u8>>::decode(&m.encode()) == Ok(m))
                .unwrap_or(true);
        // And arbitrary bytes without a header must be refused or accepted, never panic.
        let _ = GCounter::decode(&body);
        vv_ok && context_ok && message_ok
    }
    check(2000, property);
}

#[test]
fn a_huge_length_prefix_is_refused_without_allocating_it() {
    // A set claiming 2^63 elements, then nothing: must fail fast, not try to reserve memory.
    let mut bytes = vec![FORMAT_VERSION, GSet::<u8>::KIND as u8];
    bytes.extend([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert!(GSet::<u8>::decode(&bytes).is_err());
    let mut bytes = vec![FORMAT_VERSION, VersionVector::KIND as u8];
    bytes.extend([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert!(VersionVector::decode(&bytes).is_err());
}
