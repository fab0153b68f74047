//! Peer-to-peer replicas of a state-based CRDT, syncing deltas over lossy UDP on loopback.
//!
//! Each peer holds a shop's stock as an `OrMap<String, PNCounter>` (item → count) inside a
//! [`DeltaSync`], edits it at random, and sends every other peer the deltas it lacks as UDP
//! datagrams on 127.0.0.1. The demo drops a share of the datagrams on purpose (deltas and
//! acknowledgements alike), then keeps syncing until all peers hold equal states. It shows that
//! delta anti-entropy needs no reliable transport: lost messages are resent, duplicates merge
//! away, and a peer that fell behind receives the whole state.

use std::collections::HashMap;
use std::fmt;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crdt_core::codec::{DecodeError, Encode};
use crdt_core::{DeltaMessage, DeltaSync, OrMap, PNCounter, ReplicaId};

/// The replicated state: stock count per item.
pub type Inventory = OrMap<String, PNCounter>;

const ITEMS: [&str; 5] = ["apples", "pears", "plums", "figs", "quinces"];
const ID_LEN: usize = 16;

/// How to run the demo.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Number of peers (at least 2).
    pub peers: usize,
    /// Rounds in which peers make edits; syncing continues afterwards until convergence.
    pub edit_rounds: u32,
    /// Share of datagrams dropped before sending, in percent (0 to 100).
    pub loss_percent: u8,
    /// Seed of the edits and losses, so a run can be repeated.
    pub seed: u64,
    /// Pause per round, giving datagrams time to arrive.
    pub round_pause: Duration,
    /// Give up if not converged after this many rounds past the edits.
    pub max_sync_rounds: u32,
    /// Deltas each peer buffers before falling back to sending its whole state.
    pub max_buffered: usize,
    /// Print each round's progress.
    pub verbose: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            peers: 3,
            edit_rounds: 30,
            loss_percent: 30,
            seed: 1,
            round_pause: Duration::from_millis(2),
            max_sync_rounds: 1000,
            max_buffered: 16,
            verbose: false,
        }
    }
}

/// What happened in a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Local edits made, over all peers.
    pub edits: u64,
    /// Datagrams handed to the socket.
    pub datagrams_sent: u64,
    /// Datagrams dropped on purpose.
    pub datagrams_dropped: u64,
    /// Bytes handed to the socket.
    pub bytes_sent: u64,
    /// Datagrams that did not decode (should be zero: nothing else writes to these sockets).
    pub datagrams_rejected: u64,
    /// Messages that carried a whole state because the receiver had fallen behind.
    pub full_states_sent: u64,
    /// Rounds after the last edit until every peer held the same state.
    pub sync_rounds: u32,
    /// True if every peer ended with the same state.
    pub converged: bool,
    /// Sum of all items' counts at peer 0 at the end.
    pub final_total: i64,
    /// Sum of all edits made anywhere: what `final_total` must be.
    pub expected_total: i64,
    /// Peer 0's final stock, item by item.
    pub inventory: Vec<(String, i64)>,
}

/// Why the demo could not run.
#[derive(Debug)]
pub enum DemoError {
    /// A socket operation failed.
    Io(std::io::Error),
    /// The configuration is unusable.
    Config(&'static str),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Io(error) => write!(f, "socket error: {error}"),
            DemoError::Config(reason) => write!(f, "bad configuration: {reason}"),
        }
    }
}

impl std::error::Error for DemoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DemoError::Io(error) => Some(error),
            DemoError::Config(_) => None,
        }
    }
}

impl From<std::io::Error> for DemoError {
    fn from(error: std::io::Error) -> Self {
        DemoError::Io(error)
    }
}

/// A small deterministic random generator (SplitMix64); enough for choosing edits and losses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

struct Peer {
    id: ReplicaId,
    socket: UdpSocket,
    sync: DeltaSync<Inventory>,
}

/// The network between the peers: real sockets, plus deliberate losses.
struct Network {
    addresses: Vec<SocketAddr>,
    index_of: HashMap<ReplicaId, usize>,
    rng: Rng,
    loss_percent: u64,
}

impl Network {
    fn send(
        &mut self,
        from: &Peer,
        to: usize,
        message: &DeltaMessage<Inventory>,
        report: &mut Report,
    ) -> Result<(), DemoError> {
        if matches!(
            message,
            DeltaMessage::Deltas {
                full_state: true,
                ..
            }
        ) {
            report.full_states_sent += 1;
        }
        if self.rng.below(100) < self.loss_percent {
            report.datagrams_dropped += 1;
            return Ok(());
        }
        let mut datagram = from.id.to_bytes().to_vec();
        datagram.extend(message.encode());
        from.socket.send_to(&datagram, self.addresses[to])?;
        report.datagrams_sent += 1;
        report.bytes_sent += datagram.len() as u64;
        Ok(())
    }
}

fn parse_datagram(bytes: &[u8]) -> Result<(ReplicaId, DeltaMessage<Inventory>), DecodeError> {
    let (id, body) = bytes
        .split_first_chunk::<ID_LEN>()
        .ok_or(DecodeError::MissingHeader)?;
    Ok((ReplicaId::from_bytes(*id), DeltaMessage::decode(body)?))
}

/// Runs the demo and reports what happened.
pub fn run(config: &DemoConfig) -> Result<Report, DemoError> {
    if config.peers < 2 {
        return Err(DemoError::Config("at least two peers are needed"));
    }
    let mut rng = Rng(config.seed);
    let mut peers = Vec::with_capacity(config.peers);
    for _ in 0..config.peers {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let id = ReplicaId::from_u128(u128::from(rng.next()) << 64 | u128::from(rng.next()));
        peers.push(Peer {
            id,
            socket,
            sync: DeltaSync::new(Inventory::default(), config.max_buffered),
        });
    }
    let mut network = Network {
        addresses: peers
            .iter()
            .map(|p| p.socket.local_addr())
            .collect::<Result<_, _>>()?,
        index_of: peers.iter().enumerate().map(|(i, p)| (p.id, i)).collect(),
        rng: Rng(config.seed ^ 0xDEAD_BEEF),
        loss_percent: u64::from(config.loss_percent.min(100)),
    };
    let mut report = Report::default();
    let mut buffer = vec![0u8; 65_536];

    let mut round = 0u32;
    loop {
        let editing = round < config.edit_rounds;
        if editing {
            for peer in &mut peers {
                if rng.below(2) == 0 {
                    let item = ITEMS[rng.below(ITEMS.len() as u64) as usize].to_string();
                    let amount = rng.below(11) as i64 - 5;
                    let id = peer.id;
                    peer.sync
                        .mutate(|stock| stock.update(id, item, |count| count.add(id, amount)));
                    report.edits += 1;
                    report.expected_total += amount;
                }
            }
        } else {
            let first = peers[0].sync.state();
            if peers.iter().all(|p| p.sync.state() == first) {
                report.converged = true;
                break;
            }
            report.sync_rounds += 1;
            if report.sync_rounds > config.max_sync_rounds {
                break;
            }
        }

        // Every peer offers every other peer what it lacks.
        for from in 0..peers.len() {
            for to in 0..peers.len() {
                if from == to {
                    continue;
                }
                let to_id = peers[to].id;
                if let Some(message) = peers[from].sync.message_for(to_id) {
                    network.send(&peers[from], to, &message, &mut report)?;
                }
            }
        }
        std::thread::sleep(config.round_pause);

        // Every peer merges what arrived and acknowledges it.
        for peer in &mut peers {
            loop {
                let length = match peer.socket.recv_from(&mut buffer) {
                    Ok((length, _)) => length,
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) => return Err(error.into()),
                };
                let Ok((sender, message)) = parse_datagram(&buffer[..length]) else {
                    report.datagrams_rejected += 1;
                    continue;
                };
                let Some(&sender_index) = network.index_of.get(&sender) else {
                    report.datagrams_rejected += 1;
                    continue;
                };
                if let Some(reply) = peer.sync.receive(sender, message) {
                    network.send(peer, sender_index, &reply, &mut report)?;
                }
            }
        }
        if config.verbose {
            let totals: Vec<i64> = peers.iter().map(|p| total(p.sync.state())).collect();
            println!("round {round:4}: totals per peer {totals:?}");
        }
        round += 1;
    }

    let state = peers[0].sync.state();
    report.final_total = total(state);
    report.inventory = state
        .iter()
        .map(|(item, count)| (item.clone(), count.value()))
        .collect();
    Ok(report)
}

fn total(stock: &Inventory) -> i64 {
    stock.iter().map(|(_, count)| count.value()).sum()
}
