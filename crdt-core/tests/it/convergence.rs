//! Strong eventual convergence: replicas that received the same deltas, in any order and any
//! number of times, hold the same state, and that state holds every update made anywhere.

use crdt_core::codec::Encode;
use crdt_core::{
    AwSet, DeltaMessage, DeltaSync, DwFlag, EwFlag, GCounter, GSet, LwwRegister, MvRegister, OrMap,
    PNCounter, RwSet, StateCrdt, TwoPSet,
};
use quickcheck::{Arbitrary, Gen};

use crate::harness::{Subject, check, replica};

/// One step of a history where deltas travel between replicas as loose messages.
#[derive(Clone, Debug)]
pub enum Step<Op> {
    /// Replica `at` makes an edit.
    Edit { at: u8, op: Op },
    /// Replica `at` receives the `pick`-th delta made so far (modulo their number).
    Receive { at: u8, pick: u16 },
}

/// Random edits at 3 or 4 replicas, with some deltas received along the way, then every replica
/// receives every delta in its own random order, some twice.
#[derive(Clone, Debug)]
pub struct LooseDeltas<Op> {
    replicas: u8,
    steps: Vec<Step<Op>>,
    /// Per replica, a seed for the order and repetition of the final deliveries.
    final_orders: Vec<u64>,
}

impl<Op: Arbitrary> Arbitrary for LooseDeltas<Op> {
    fn arbitrary(g: &mut Gen) -> Self {
        let replicas = 3 + u8::arbitrary(g) % 2;
        let steps = (0..usize::arbitrary(g) % 40)
            .map(|_| {
                let at = u8::arbitrary(g) % replicas;
                if u8::arbitrary(g) % 3 == 0 {
                    Step::Receive {
                        at,
                        pick: u16::arbitrary(g),
                    }
                } else {
                    Step::Edit {
                        at,
                        op: Op::arbitrary(g),
                    }
                }
            })
            .collect();
        let final_orders = (0..replicas).map(|_| u64::arbitrary(g)).collect();
        LooseDeltas {
            replicas,
            steps,
            final_orders,
        }
    }
}

/// A shuffle driven by a seed (SplitMix64), so a failing case replays exactly.
fn shuffled_with_repeats<T: Clone>(items: &[T], mut seed: u64) -> Vec<T> {
    let mut next = move || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut out: Vec<T> = items.to_vec();
    // Some deliveries happen twice.
    for item in items {
        if next() % 4 == 0 {
            out.push(item.clone());
        }
    }
    for i in (1..out.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

/// The join of every delta ever made: what every replica must end with.
fn join_all<T: StateCrdt>(deltas: &[T]) -> T {
    deltas.iter().fold(T::default(), |mut acc, d| {
        acc.merge(d);
        acc
    })
}

pub fn any_delivery_order_converges<T: Subject>(scenario: LooseDeltas<T::Op>) -> bool {
    let n = usize::from(scenario.replicas);
    let mut states = vec![T::default(); n];
    let mut deltas: Vec<T> = Vec::new();
    for step in &scenario.steps {
        match step {
            Step::Edit { at, op } => {
                let at = usize::from(*at);
                deltas.push(states[at].apply(replica(at), op));
            }
            Step::Receive { at, pick } if !deltas.is_empty() => {
                let delta = &deltas[usize::from(*pick) % deltas.len()];
                states[usize::from(*at)].merge(delta);
            }
            Step::Receive { .. } => {}
        }
    }
    for (state, seed) in states.iter_mut().zip(&scenario.final_orders) {
        for delta in shuffled_with_repeats(&deltas, *seed) {
            state.merge(&delta);
        }
    }
    let expected = join_all(&deltas);
    states
        .iter()
        .all(|s| *s == expected && s.observe() == expected.observe())
}

/// One step of a history of [`DeltaSync`] replicas on a faulty network.
#[derive(Clone, Debug)]
pub enum NetStep<Op> {
    Edit {
        at: u8,
        op: Op,
    },
    /// `from` offers `to` what it lacks; the message goes into the network.
    Send {
        from: u8,
        to: u8,
    },
    /// The network delivers one message (any one: reordering) and the reply goes back in.
    Deliver {
        pick: u16,
    },
    /// The network loses one message.
    Drop {
        pick: u16,
    },
    /// The network duplicates one message.
    Duplicate {
        pick: u16,
    },
}

#[derive(Clone, Debug)]
pub struct FaultyNetwork<Op> {
    replicas: u8,
    max_buffered: usize,
    /// Replicas in a line, each talking only to its neighbours, so every delta must be
    /// forwarded hop by hop; otherwise everyone talks to everyone.
    line: bool,
    steps: Vec<NetStep<Op>>,
}

impl<Op: Arbitrary> Arbitrary for FaultyNetwork<Op> {
    fn arbitrary(g: &mut Gen) -> Self {
        let replicas = 3 + u8::arbitrary(g) % 2;
        let steps = (0..usize::arbitrary(g) % 60)
            .map(|_| {
                let at = u8::arbitrary(g) % replicas;
                let pick = u16::arbitrary(g);
                match u8::arbitrary(g) % 10 {
                    0..=3 => NetStep::Edit {
                        at,
                        op: Op::arbitrary(g),
                    },
                    4 | 5 => NetStep::Send {
                        from: at,
                        to: u8::arbitrary(g) % replicas,
                    },
                    6 | 7 => NetStep::Deliver { pick },
                    8 => NetStep::Drop { pick },
                    _ => NetStep::Duplicate { pick },
                }
            })
            .collect();
        FaultyNetwork {
            replicas,
            // Tiny buffers, so that falling back to the whole state happens often.
            max_buffered: 1 + usize::arbitrary(g) % 4,
            line: bool::arbitrary(g),
            steps,
        }
    }
}

struct InFlight {
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

/// Delivers one encoded message; returns the encoded reply, if any.
fn deliver<T: Subject>(replicas: &mut [DeltaSync<T>], message: &InFlight) -> Option<InFlight> {
    let decoded = DeltaMessage::<T>::decode(&message.bytes).expect("messages decode");
    let reply = replicas[message.to].receive(replica(message.from), decoded)?;
    Some(InFlight {
        from: message.to,
        to: message.from,
        bytes: reply.encode(),
    })
}

pub fn delta_sync_converges_despite_faults<T: Subject>(scenario: FaultyNetwork<T::Op>) -> bool {
    let n = usize::from(scenario.replicas);
    let linked = |from: u8, to: u8| from != to && (!scenario.line || from.abs_diff(to) == 1);
    let mut replicas: Vec<DeltaSync<T>> = (0..n)
        .map(|_| DeltaSync::new(T::default(), scenario.max_buffered))
        .collect();
    let mut network: Vec<InFlight> = Vec::new();
    let mut deltas: Vec<T> = Vec::new();

    for step in scenario.steps {
        match step {
            NetStep::Edit { at, op } => {
                let at = usize::from(at);
                replicas[at].mutate(|state| {
                    let delta = state.apply(replica(at), &op);
                    deltas.push(delta.clone());
                    delta
                });
            }
            NetStep::Send { from, to } if linked(from, to) => {
                let (from, to) = (usize::from(from), usize::from(to));
                if let Some(message) = replicas[from].message_for(replica(to)) {
                    let bytes = message.encode();
                    network.push(InFlight { from, to, bytes });
                }
            }
            NetStep::Deliver { pick } if !network.is_empty() => {
                let message = network.swap_remove(usize::from(pick) % network.len());
                network.extend(deliver(&mut replicas, &message));
            }
            NetStep::Drop { pick } if !network.is_empty() => {
                network.swap_remove(usize::from(pick) % network.len());
            }
            NetStep::Duplicate { pick } if !network.is_empty() => {
                let message = &network[usize::from(pick) % network.len()];
                let copy = InFlight {
                    from: message.from,
                    to: message.to,
                    bytes: message.bytes.clone(),
                };
                network.push(copy);
            }
            _ => {}
        }
    }

    // The faults stop and the network heals: stale messages still arrive, then anti-entropy
    // rounds run over reliable links until nobody has anything left to send.
    for message in std::mem::take(&mut network) {
        let _ = deliver(&mut replicas, &message);
    }
    let mut quiet = false;
    for _round in 0..20 {
        quiet = true;
        for from in 0..n {
            for to in (0..n).filter(|&to| linked(from as u8, to as u8)) {
                if let Some(message) = replicas[from].message_for(replica(to)) {
                    quiet = false;
                    let bytes = message.encode();
                    let reply = deliver(&mut replicas, &InFlight { from, to, bytes });
                    if let Some(reply) = reply {
                        let _ = deliver(&mut replicas, &reply);
                    }
                }
            }
        }
        if quiet {
            break;
        }
    }
    let expected = join_all(&deltas);
    quiet
        && replicas
            .iter()
            .all(|r| *r.state() == expected && r.state().observe() == expected.observe())
        && replicas
            .iter()
            .all(|r| r.buffered() <= scenario.max_buffered)
}

macro_rules! convergence_properties {
    ($($name:ident: $ty:ty,)*) => {$(
        mod $name {
            use super::*;
            type T = $ty;

            #[test]
            fn any_delivery_order_converges() {
                check(200, super::any_delivery_order_converges::<T>);
            }

            #[test]
            fn delta_sync_converges_despite_faults() {
                check(200, super::delta_sync_converges_despite_faults::<T>);
            }
        }
    )*};
}

convergence_properties! {
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
