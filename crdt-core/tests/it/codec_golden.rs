//! The state and operation envelopes (`codec::Encode`, `op_based::EncodeOp`, both version 1)
//! against bytes written before any API change: one sample per kind, built through the public
//! mutators, must encode to exactly the recorded bytes, and those bytes must decode back to it.
//! A failure here means the wire format changed: bump the version and keep reading these bytes.

use crdt_core::codec::Encode;
use crdt_core::op_based::{CounterOp, EncodeOp, OpAwSet, OpCounter, OpRegister, RegisterOp, SetOp};
use crdt_core::{
    AwSet, CausalContext, DeltaMessage, Dot, DwFlag, EwFlag, GCounter, GSet, LamportTimestamp,
    LwwRegister, MvRegister, OrMap, PNCounter, ReplicaId, RwSet, TwoPSet, VersionVector,
};

fn r(n: u128) -> ReplicaId {
    ReplicaId::from_u128(n)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Encodes `value`, checks it decodes back to itself, and names it.
fn state<T: Encode + PartialEq + std::fmt::Debug>(
    name: &'static str,
    value: T,
) -> (&'static str, String) {
    let bytes = value.encode();
    assert_eq!(T::decode(&bytes).as_ref(), Ok(&value), "{name} round trip");
    (name, hex(&bytes))
}

fn op<T: EncodeOp + PartialEq + std::fmt::Debug>(
    name: &'static str,
    value: T,
) -> (&'static str, String) {
    let bytes = value.encode();
    assert_eq!(T::decode(&bytes).as_ref(), Ok(&value), "{name} round trip");
    (name, hex(&bytes))
}

fn samples() -> Vec<(&'static str, String)> {
    let (a, b) = (r(1), r(0xABCD));
    let mut out = Vec::new();

    let mut version = VersionVector::new();
    version.advance(a, 3);
    version.advance(b, 300);
    out.push(state("version_vector", version));

    let mut context = CausalContext::default();
    context.insert(Dot::new(a, 1));
    context.insert(Dot::new(a, 2));
    context.insert(Dot::new(b, 5));
    out.push(state("causal_context", context));

    let mut g = GCounter::default();
    g.increment(a, 7);
    g.increment(b, 1000);
    out.push(state("g_counter", g));

    let mut pn = PNCounter::default();
    pn.increment(a, 5);
    pn.decrement(b, 9);
    pn.add(a, -2);
    out.push(state("pn_counter", pn));

    let mut lww = LwwRegister::default();
    lww.set(a, "draft".to_string());
    lww.set(b, "final".to_string());
    lww.set_at(LamportTimestamp::new(40, a), "later".to_string());
    out.push(state("lww_register", lww));

    let mut mv = MvRegister::default();
    mv.set(a, 10u32);
    let mut other = MvRegister::default();
    other.set(b, 20u32);
    crdt_core::StateCrdt::merge(&mut mv, &other);
    out.push(state("mv_register", mv));

    let mut gs = GSet::default();
    gs.insert("pear".to_string());
    gs.insert("apple".to_string());
    out.push(state("g_set", gs));

    let mut two = TwoPSet::default();
    two.insert(1u16);
    two.insert(2u16);
    two.remove(&1u16);
    two.remove(&3u16);
    out.push(state("two_p_set", two));

    let mut aw = AwSet::default();
    aw.insert(a, "milk".to_string());
    aw.insert(b, "eggs".to_string());
    aw.insert(a, "bread".to_string());
    aw.remove(&"milk".to_string());
    out.push(state("aw_set", aw));

    let mut rw = RwSet::default();
    rw.insert(a, 'x');
    rw.insert(b, 'y');
    rw.remove(a, &'x');
    rw.remove(b, &'z');
    out.push(state("rw_set", rw));

    let mut ew = EwFlag::default();
    ew.enable(a);
    ew.enable(b);
    out.push(state("ew_flag", ew.clone()));
    ew.disable();
    out.push(state("ew_flag_disabled", ew));

    let mut dw = DwFlag::default();
    dw.enable(a);
    dw.disable(b);
    out.push(state("dw_flag", dw));

    let mut map: OrMap<String, PNCounter> = OrMap::default();
    map.update(a, "apples".to_string(), |c| c.add(a, 12));
    map.update(b, "pears".to_string(), |c| c.decrement(b, 3));
    map.remove(&"pears".to_string());
    out.push(state("or_map", map));

    let mut nested: OrMap<u8, AwSet<u8>> = OrMap::default();
    nested.update(a, 1, |s| s.insert(a, 10));
    nested.update(b, 2, |s| s.insert(b, 20));
    nested.remove(&1);
    out.push(state("or_map_nested", nested));

    let mut delta = GCounter::default();
    let delta = delta.increment(a, 2);
    out.push(state(
        "delta_message",
        DeltaMessage::Deltas {
            payload: delta,
            up_to: 4,
            full_state: false,
        },
    ));
    out.push(state(
        "delta_message_ack",
        DeltaMessage::<GCounter>::Ack { up_to: 9 },
    ));

    let mut counter = OpCounter::new(a);
    counter.increment(3);
    let mut at_b = counter.fork(b);
    out.push(op::<CounterOp>("counter_op", at_b.decrement(2)));
    out.push(op::<CounterOp>(
        "counter_op_up",
        counter.increment(i64::MAX as u64),
    ));

    let mut register = OpRegister::new(a);
    register.set("blue".to_string());
    out.push(op::<RegisterOp<String>>(
        "register_op",
        register.set("teal".to_string()),
    ));
    out.push(op::<RegisterOp<String>>(
        "register_op_clear",
        register.clear(),
    ));

    let mut set = OpAwSet::new(a);
    set.insert("milk".to_string());
    out.push(op::<SetOp<String>>(
        "set_op_add",
        set.insert("milk".to_string()),
    ));
    out.push(op::<SetOp<String>>(
        "set_op_remove",
        set.remove(&"milk".to_string()),
    ));
    out
}

#[test]
fn every_envelope_encodes_to_its_golden_bytes() {
    let golden = include_str!("golden_codec_v1.txt");
    let expected: Vec<(&str, &str)> = golden
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split_once(' ').expect("name and hex"))
        .collect();
    let actual = samples();
    let actual: Vec<(&str, &str)> = actual.iter().map(|(n, h)| (*n, h.as_str())).collect();
    assert_eq!(actual, expected);
}

/// Golden bytes decode by themselves too, without being re-made by the mutators.
#[test]
fn golden_bytes_decode() {
    let golden = include_str!("golden_codec_v1.txt");
    for line in golden
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, hex) = line.split_once(' ').expect("name and hex");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let decoded = match name {
            "version_vector" => VersionVector::decode(&bytes).is_ok(),
            "causal_context" => CausalContext::decode(&bytes).is_ok(),
            "g_counter" => GCounter::decode(&bytes).is_ok(),
            "pn_counter" => PNCounter::decode(&bytes).is_ok(),
            "lww_register" => LwwRegister::<String>::decode(&bytes).is_ok(),
            "mv_register" => MvRegister::<u32>::decode(&bytes).is_ok(),
            "g_set" => GSet::<String>::decode(&bytes).is_ok(),
            "two_p_set" => TwoPSet::<u16>::decode(&bytes).is_ok(),
            "aw_set" => AwSet::<String>::decode(&bytes).is_ok(),
            "rw_set" => RwSet::<char>::decode(&bytes).is_ok(),
            "ew_flag" | "ew_flag_disabled" => EwFlag::decode(&bytes).is_ok(),
            "dw_flag" => DwFlag::decode(&bytes).is_ok(),
            "or_map" => OrMap::<String, PNCounter>::decode(&bytes).is_ok(),
            "or_map_nested" => OrMap::<u8, AwSet<u8>>::decode(&bytes).is_ok(),
            "delta_message" | "delta_message_ack" => {
                DeltaMessage::<GCounter>::decode(&bytes).is_ok()
            }
            "counter_op" | "counter_op_up" => CounterOp::decode(&bytes).is_ok(),
            "register_op" | "register_op_clear" => RegisterOp::<String>::decode(&bytes).is_ok(),
            "set_op_add" | "set_op_remove" => SetOp::<String>::decode(&bytes).is_ok(),
            other => panic!("no decoder for golden sample {other}"),
        };
        assert!(decoded, "{name} decodes");
    }
}

/// Prints the samples in the golden file's format (run with `--ignored --nocapture` after a
/// deliberate format change, with a new version).
#[test]
#[ignore]
fn print_golden() {
    for (name, hex) in samples() {
        println!("{name} {hex}");
    }
}
