//! The simulated network: addressed datagrams that may be lost, duplicated, delayed and
//! reordered, and partitions that cut the nodes into groups that cannot reach each other.

use std::collections::{BTreeMap, BTreeSet};

use super::node::NodeId;
use super::rng::SimRng;

/// How badly the network behaves. Rates are per mille.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Faults {
    /// Messages lost.
    pub loss: u32,
    /// Messages delivered twice (the copy with its own delay).
    pub duplicate: u32,
    /// Shortest delay, in milliseconds.
    pub min_delay_ms: u64,
    /// Longest ordinary delay, in milliseconds. Messages with different delays overtake each
    /// other, so any delay range wider than zero reorders.
    pub max_delay_ms: u64,
    /// Messages held back much longer than the others (up to `spike_ms`): late arrivals
    /// from long ago.
    pub spike: u32,
    /// The longest spike, in milliseconds.
    pub spike_ms: u64,
}

impl Faults {
    /// A network that loses nothing and delivers within a few milliseconds (in order, per
    /// pair, as long as the delay range is this narrow).
    pub const CALM: Faults = Faults {
        loss: 0,
        duplicate: 0,
        min_delay_ms: 1,
        max_delay_ms: 5,
        spike: 0,
        spike_ms: 0,
    };

    /// Faults drawn at random for one run, from benign to very lossy.
    pub fn random(rng: &mut SimRng) -> Faults {
        let min_delay_ms = rng.between(1, 20);
        Faults {
            loss: rng.below(350) as u32,
            duplicate: rng.below(150) as u32,
            min_delay_ms,
            max_delay_ms: min_delay_ms + rng.below(300),
            spike: rng.below(30) as u32,
            spike_ms: rng.between(500, 5_000),
        }
    }
}

/// Counts of what the network did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered (duplicates included).
    pub delivered: u64,
    /// Messages lost at random.
    pub lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Messages dropped by a partition or because their addressee was down.
    pub cut: u64,
    /// Bytes delivered.
    pub bytes: u64,
}

/// A message in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender.
    pub from: NodeId,
    /// The addressee.
    pub to: NodeId,
    /// The message.
    pub bytes: Vec<u8>,
}

/// Messages in flight, ordered by delivery time and then by sending order (a tie-break that
/// keeps runs deterministic).
#[derive(Debug)]
pub struct Network {
    faults: Faults,
    in_flight: BTreeMap<(u64, u64), Envelope>,
    next_seq: u64,
    /// The group of each node while a partition lasts; nodes absent from it are in group 0.
    groups: BTreeMap<NodeId, u32>,
    stats: NetworkStats,
}

impl Network {
    /// A network behaving as `faults` says, with no partition.
    pub fn new(faults: Faults) -> Network {
        Network {
            faults,
            in_flight: BTreeMap::new(),
            next_seq: 0,
            groups: BTreeMap::new(),
            stats: NetworkStats::default(),
        }
    }

    /// Changes how the network behaves from now on (messages in flight keep their delays).
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// How the network behaves now.
    pub fn faults(&self) -> Faults {
        self.faults
    }

    /// Cuts the network into the given groups: messages between two groups are dropped (at
    /// sending and at delivery). Nodes in no group form one more group of their own.
    pub fn partition(&mut self, groups: &[BTreeSet<NodeId>]) {
        self.groups.clear();
        for (index, group) in groups.iter().enumerate() {
            for node in group {
                self.groups.insert(*node, index as u32 + 1);
            }
        }
    }

    /// Ends any partition.
    pub fn heal(&mut self) {
        self.groups.clear();
    }

    /// True while a partition lasts.
    pub fn is_partitioned(&self) -> bool {
        !self.groups.is_empty()
    }

    /// True if `a` and `b` can reach each other now.
    pub fn connected(&self, a: NodeId, b: NodeId) -> bool {
        self.groups.get(&a).copied().unwrap_or(0) == self.groups.get(&b).copied().unwrap_or(0)
    }

    /// Counts so far.
    pub fn stats(&self) -> NetworkStats {
        self.stats
    }

    /// How many messages are in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Hands a message to the network at time `now`.
    pub fn send(&mut self, now: u64, from: NodeId, to: NodeId, bytes: Vec<u8>, rng: &mut SimRng) {
        self.stats.sent += 1;
        if !self.connected(from, to) {
            self.stats.cut += 1;
            return;
        }
        if rng.chance(self.faults.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if rng.chance(self.faults.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = rng.between(self.faults.min_delay_ms, self.faults.max_delay_ms);
            if rng.chance(self.faults.spike) {
                delay += rng.below(self.faults.spike_ms + 1);
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.in_flight.insert(
                (now + delay, seq),
                Envelope {
                    from,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// Takes the next message due at or before `now` that may still be delivered; messages
    /// whose path a partition cut meanwhile are dropped.
    pub fn next_due(&mut self, now: u64) -> Option<Envelope> {
        loop {
            let entry = self.in_flight.first_entry()?;
            if entry.key().0 > now {
                return None;
            }
            let envelope = entry.remove();
            if self.connected(envelope.from, envelope.to) {
                self.stats.delivered += 1;
                self.stats.bytes += envelope.bytes.len() as u64;
                return Some(envelope);
            }
            self.stats.cut += 1;
        }
    }

    /// Records that a due message found its addressee down.
    pub fn dropped_at_down_node(&mut self) {
        self.stats.delivered -= 1;
        self.stats.cut += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(net: &mut Network, now: u64) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| net.next_due(now))
            .map(|e| e.bytes)
            .collect()
    }

    #[test]
    fn a_calm_network_delivers_everything_once() {
        let mut net = Network::new(Faults::CALM);
        let mut rng = SimRng::new(1);
        for i in 0..50u8 {
            net.send(0, NodeId(0), NodeId(1), vec![i], &mut rng);
        }
        let got = drain(&mut net, 100);
        assert_eq!(got.len(), 50);
        assert_eq!(net.in_flight(), 0);
    }

    #[test]
    fn faults_lose_duplicate_and_reorder() {
        let faults = Faults {
            loss: 200,
            duplicate: 200,
            min_delay_ms: 1,
            max_delay_ms: 100,
            spike: 0,
            spike_ms: 0,
        };
        let mut net = Network::new(faults);
        let mut rng = SimRng::new(2);
        for i in 0..200u8 {
            net.send(0, NodeId(0), NodeId(1), vec![i], &mut rng);
        }
        let got = drain(&mut net, 1_000);
        let stats = net.stats();
        assert!(stats.lost > 0 && stats.duplicated > 0);
        assert_eq!(got.len() as u64, 200 - stats.lost + stats.duplicated);
        assert!(got.windows(2).any(|w| w[0] > w[1]), "nothing was reordered");
    }

    #[test]
    fn partitions_cut_messages_in_flight_and_new_ones() {
        let mut net = Network::new(Faults::CALM);
        let mut rng = SimRng::new(3);
        net.send(0, NodeId(0), NodeId(1), vec![1], &mut rng);
        net.partition(&[BTreeSet::from([NodeId(0)])]);
        assert!(!net.connected(NodeId(0), NodeId(1)));
        net.send(0, NodeId(0), NodeId(1), vec![2], &mut rng);
        net.send(0, NodeId(1), NodeId(2), vec![3], &mut rng);
        assert_eq!(drain(&mut net, 100), vec![vec![3]]);
        net.heal();
        net.send(100, NodeId(0), NodeId(1), vec![4], &mut rng);
        assert_eq!(drain(&mut net, 200), vec![vec![4]]);
    }
}
