//! Untrusted bytes into every state-based and op-based decoder (the first byte picks which):
//! never panics, and whatever decodes re-encodes and decodes to an equal value.
#![no_main]

use crdt_core::codec::Encode;
use crdt_core::op_based::{CounterOp, EncodeOp, RegisterOp, SetOp};
use crdt_core::{
    AwSet, CausalContext, DeltaMessage, DwFlag, EwFlag, GCounter, GSet, LwwRegister, MvRegister,
    OrMap, PNCounter, RwSet, TwoPSet, VersionVector,
};
use libfuzzer_sys::fuzz_target;

fn round_trip<T: Encode + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(value) = T::decode(bytes) {
        let again = T::decode(&value.encode()).expect("decodes");
        assert_eq!(again, value);
    }
}

fn op_round_trip<T: EncodeOp + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(op) = T::decode(bytes) {
        let again = T::decode(&op.encode()).expect("decodes");
        assert_eq!(again, op);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 17 {
        0 => round_trip::<VersionVector>(bytes),
        1 => round_trip::<CausalContext>(bytes),
        2 => round_trip::<GCounter>(bytes),
        3 => round_trip::<PNCounter>(bytes),
        4 => round_trip::<LwwRegister<String>>(bytes),
        5 => round_trip::<MvRegister<String>>(bytes),
        6 => round_trip::<GSet<String>>(bytes),
        7 => round_trip::<TwoPSet<String>>(bytes),
        8 => round_trip::<AwSet<String>>(bytes),
        9 => round_trip::<RwSet<String>>(bytes),
        10 => round_trip::<EwFlag>(bytes),
        11 => round_trip::<DwFlag>(bytes),
        12 => round_trip::<OrMap<String, AwSet<u32>>>(bytes),
        13 => round_trip::<DeltaMessage<OrMap<String, PNCounter>>>(bytes),
        14 => op_round_trip::<CounterOp>(bytes),
        15 => op_round_trip::<RegisterOp<String>>(bytes),
        _ => op_round_trip::<SetOp<String>>(bytes),
    }
});
