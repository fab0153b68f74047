//! A deterministic simulation of replicas syncing over a faulty network.
//!
//! Many processes run in one thread on a simulated clock ([`clock`]) and network
//! ([`network`]: loss, duplication, delay, reordering, partitions). Each replica
//! ([`replica`]) is a real `Document` driven by real `SyncSession`s exchanging encoded
//! messages, with a simulated disk ([`disk`]) it recovers from after a crash. All randomness
//! comes from one seed ([`rng`]); nothing reads the real time, spawns a thread or iterates a
//! hash map, so a seed replays its run exactly.
//!
//! A run has two phases: for `fault_ms` users edit while the network misbehaves, partitions
//! come and go and nodes crash and restart; then the faults stop, the network heals, every
//! node restarts, and the run must settle. The [`checker`] then demands that every node holds
//! the same state, that no change any node persisted is missing, and that no node met an
//! error or broke an invariant.
//!
//! Processes are anything implementing [`Node`]: addressed byte messages in, timer ticks,
//! crashes, messages out. A sync server or gossip node joins a simulation by implementing it
//! and being [added](Simulation::add_node).

pub mod canonical;
pub mod checker;
pub mod clock;
pub mod disk;
pub mod network;
pub mod node;
pub mod replica;
pub mod rng;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crdt_core::{ReplicaId, VersionVector};

pub use checker::{Violation, check};
pub use clock::SimClock;
pub use network::{Faults, Network, NetworkStats};
pub use node::{Context, DocReport, Node, NodeId, NodeReport, Outgoing};
pub use replica::{ReplicaConfig, ReplicaNode};
pub use rng::SimRng;

/// The shape of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// How many replicas the standard set-up starts.
    pub replicas: usize,
    /// Simulated milliseconds per step.
    pub step_ms: u64,
    /// How long users edit and faults happen.
    pub fault_ms: u64,
    /// The longest the run may take to settle afterwards.
    pub settle_ms: u64,
    /// How the network misbehaves during the fault phase.
    pub faults: Faults,
    /// Chance per step that a partition starts (when none lasts), per mille.
    pub partition_per_mille: u32,
    /// Chance per step and node that it crashes, per mille.
    pub crash_per_mille: u32,
    /// The longest a crashed node stays down.
    pub max_down_ms: u64,
    /// Chance per tick that a replica edits, per mille.
    pub edit_per_mille: u32,
}

impl SimConfig {
    /// A configuration drawn from `seed`: from two to six replicas, from a calm network to a
    /// very lossy one, from rare to frequent crashes and partitions.
    pub fn random(seed: u64) -> SimConfig {
        let mut rng = SimRng::new(seed).fork(u64::MAX);
        SimConfig {
            replicas: rng.between(2, 6) as usize,
            step_ms: 10,
            fault_ms: rng.between(3_000, 12_000),
            settle_ms: 60_000,
            faults: Faults::random(&mut rng),
            partition_per_mille: rng.below(15) as u32,
            crash_per_mille: rng.below(6) as u32,
            max_down_ms: rng.between(100, 3_000),
            edit_per_mille: rng.between(10, 80) as u32,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Simulated time at the end, in milliseconds.
    pub end_ms: u64,
    /// How long the run took to settle after the faults stopped, in simulated milliseconds.
    pub settle_ms: u64,
    /// Events in the final documents (summed over documents).
    pub events: u64,
    /// Crashes.
    pub crashes: u64,
    /// Partitions.
    pub partitions: u64,
    /// What the network did.
    pub network: NetworkStats,
    /// A digest of the final states: equal for two runs of one seed.
    pub fingerprint: u64,
}

/// A failed run: the seed that replays it, what went wrong and what happened.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The configuration it ran with.
    pub config: SimConfig,
    /// What went wrong.
    pub violations: Vec<Violation>,
    /// The faults of the run (crashes, partitions) with their times.
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulation seed {} FAILED", self.seed)?;
        writeln!(
            f,
            "replay: SIM_SEED={} cargo test -p integration-tests --test it sim::replay_seed -- --nocapture",
            self.seed
        )?;
        writeln!(f, "config: {:?}", self.config)?;
        for violation in self.violations.iter().take(20) {
            writeln!(f, "  {violation}")?;
        }
        if self.violations.len() > 20 {
            writeln!(f, "  ... and {} more", self.violations.len() - 20)?;
        }
        writeln!(f, "trace ({} events):", self.trace.len())?;
        for event in &self.trace {
            writeln!(f, "  {event}")?;
        }
        Ok(())
    }
}

struct Slot {
    node: Box<dyn Node>,
    rng: SimRng,
    down_until: Option<u64>,
}

/// The simulated world: nodes, network, clock and fault schedule.
pub struct Simulation {
    seed: u64,
    config: SimConfig,
    clock: SimClock,
    network: Network,
    slots: BTreeMap<NodeId, Slot>,
    /// Draws the fault schedule and the network's fate of each message.
    rng: SimRng,
    /// Per document, everything any node declared durable.
    persisted: BTreeMap<String, VersionVector>,
    workload: bool,
    partition_until: Option<u64>,
    crashes: u64,
    partitions: u64,
    trace: Vec<String>,
}

impl Simulation {
    /// An empty world for `seed`; add nodes, then [`run`](Self::run).
    pub fn new(seed: u64, config: SimConfig) -> Simulation {
        Simulation {
            seed,
            network: Network::new(config.faults),
            config,
            clock: SimClock::default(),
            slots: BTreeMap::new(),
            rng: SimRng::new(seed),
            persisted: BTreeMap::new(),
            workload: true,
            partition_until: None,
            crashes: 0,
            partitions: 0,
            trace: Vec::new(),
        }
    }

    /// The standard world of a seed: [`SimConfig::random`] replicas of one document, each
    /// syncing with every other.
    pub fn replicas(seed: u64) -> Simulation {
        let config = SimConfig::random(seed);
        let mut sim = Simulation::new(seed, config.clone());
        let ids: Vec<NodeId> = (0..config.replicas as u32).map(NodeId).collect();
        for id in &ids {
            let mut replica =
                ReplicaConfig::new("doc", ids.iter().copied().filter(|p| p != id).collect());
            replica.edit_per_mille = config.edit_per_mille;
            let replica_id = ReplicaId::from_u128(0x5EED_0000 + u128::from(id.0));
            sim.add_node(Box::new(ReplicaNode::new(*id, replica_id, replica)));
        }
        sim
    }

    /// Adds a process (started when the run starts).
    pub fn add_node(&mut self, node: Box<dyn Node>) {
        let id = node.id();
        let rng = self.rng.fork(u64::from(id.0));
        self.slots.insert(
            id,
            Slot {
                node,
                rng,
                down_until: None,
            },
        );
    }

    /// A node, to inspect it.
    pub fn node(&self, id: NodeId) -> Option<&dyn Node> {
        self.slots.get(&id).map(|slot| slot.node.as_ref())
    }

    /// The simulated time.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The network.
    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.network
    }

    /// Calls `f` on node `id` with a context, then hands what it sent to the network.
    fn with_node(&mut self, id: NodeId, f: impl FnOnce(&mut dyn Node, &mut Context<'_>)) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let mut outbox = Vec::new();
        let mut ctx = Context {
            now: self.clock.now(),
            workload: self.workload,
            rng: &mut slot.rng,
            outbox: &mut outbox,
            persisted: &mut self.persisted,
        };
        f(slot.node.as_mut(), &mut ctx);
        let now = self.clock.now();
        for message in outbox {
            self.network
                .send(now, id, message.to, message.bytes, &mut self.rng);
        }
    }

    fn ids(&self) -> Vec<NodeId> {
        self.slots.keys().copied().collect()
    }

    fn note(&mut self, event: String) {
        let line = format!("{:>7} ms  {event}", self.clock.now());
        self.trace.push(line);
    }

    /// Crashes node `id` now; it restarts at `until` (or when the run settles).
    pub fn crash(&mut self, id: NodeId, until: u64) {
        if let Some(slot) = self.slots.get_mut(&id)
            && slot.node.is_up()
        {
            slot.node.crash();
            slot.down_until = Some(until);
            self.crashes += 1;
            self.note(format!("crash {id} until {until} ms"));
        }
    }

    /// Starts node `id` (a first boot or a restart from its disk).
    pub fn start(&mut self, id: NodeId) {
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.down_until = None;
        }
        self.with_node(id, |node, ctx| node.start(ctx));
    }

    /// Draws this step's faults: partitions start and heal, nodes crash and restart.
    fn faults(&mut self) {
        let now = self.clock.now();
        if let Some(until) = self.partition_until {
            if now >= until {
                self.network.heal();
                self.partition_until = None;
                self.note("heal".to_owned());
            }
        } else if self.rng.chance(self.config.partition_per_mille) {
            let ids = self.ids();
            let groups_count = self.rng.between(2, 3);
            let mut groups = vec![BTreeSet::new(); groups_count as usize];
            for id in ids {
                let group = self.rng.index(groups.len());
                groups[group].insert(id);
            }
            let until = now + self.rng.between(100, 3_000);
            self.network.partition(&groups);
            self.partition_until = Some(until);
            self.partitions += 1;
            self.note(format!("partition {groups:?} until {until} ms"));
        }
        for id in self.ids() {
            let (up, down_until) = match self.slots.get(&id) {
                Some(slot) => (slot.node.is_up(), slot.down_until),
                None => continue,
            };
            if up {
                let others_up = self.slots.values().filter(|s| s.node.is_up()).count() > 1;
                if others_up && self.rng.chance(self.config.crash_per_mille) {
                    let until = now + self.rng.between(10, self.config.max_down_ms);
                    self.crash(id, until);
                }
            } else if down_until.is_some_and(|until| now >= until) {
                self.note(format!("restart {id}"));
                self.start(id);
            }
        }
    }

    /// One step: time moves on, faults happen, due messages arrive, every node ticks.
    pub fn step(&mut self) {
        self.clock.advance(self.config.step_ms);
        if self.workload {
            self.faults();
        }
        let now = self.clock.now();
        while let Some(envelope) = self.network.next_due(now) {
            let up = self
                .slots
                .get(&envelope.to)
                .is_some_and(|slot| slot.node.is_up());
            if !up {
                self.network.dropped_at_down_node();
                continue;
            }
            self.with_node(envelope.to, |node, ctx| {
                node.receive(ctx, envelope.from, &envelope.bytes);
            });
        }
        for id in self.ids() {
            if self.slots.get(&id).is_some_and(|slot| slot.node.is_up()) {
                self.with_node(id, |node, ctx| node.tick(ctx));
            }
        }
    }

    /// Ends the fault phase: no more edits, a calm network without partitions, every node up.
    pub fn stop_faults(&mut self) {
        self.workload = false;
        self.network.heal();
        self.partition_until = None;
        self.network.set_faults(Faults::CALM);
        self.note("faults stop: heal, calm network, restart every node".to_owned());
        for id in self.ids() {
            if self.slots.get(&id).is_some_and(|slot| !slot.node.is_up()) {
                self.start(id);
            }
        }
    }

    /// True once every node is up and, per document, every holder has the same version and
    /// it includes everything persisted.
    pub fn settled(&self) -> bool {
        let mut seen: BTreeMap<String, VersionVector> = BTreeMap::new();
        for slot in self.slots.values() {
            if !slot.node.is_up() {
                return false;
            }
            for (doc, version) in slot.node.versions() {
                match seen.get(&doc) {
                    Some(first) if *first != version => return false,
                    Some(_) => {}
                    None => {
                        if !self.persisted.get(&doc).is_none_or(|p| version.includes(p)) {
                            return false;
                        }
                        seen.insert(doc, version);
                    }
                }
            }
        }
        true
    }

    /// Runs the whole scenario and checks it.
    pub fn run(mut self) -> Result<RunReport, Box<Failure>> {
        for id in self.ids() {
            self.start(id);
        }
        while self.clock.now() < self.config.fault_ms {
            self.step();
        }
        self.stop_faults();
        let settle_start = self.clock.now();
        let deadline = settle_start + self.config.settle_ms;
        while !self.settled() && self.clock.now() < deadline {
            self.step();
        }
        let settle_ms = self.clock.now() - settle_start;
        // A little longer: whatever is still in flight arrives and must change nothing.
        for _ in 0..50 {
            self.step();
        }
        self.finish(settle_ms)
    }

    fn finish(self, settle_ms: u64) -> Result<RunReport, Box<Failure>> {
        let reports: Vec<NodeReport> = self.slots.values().map(|s| s.node.report()).collect();
        let mut violations = Vec::new();
        for slot in self.slots.values() {
            if !slot.node.is_up() {
                violations.push(Violation::Down {
                    node: slot.node.id(),
                });
            }
        }
        if let Err(found) = check(&reports, &self.persisted) {
            violations.extend(found);
        }
        if !violations.is_empty() {
            return Err(Box::new(Failure {
                seed: self.seed,
                config: self.config,
                violations,
                trace: self.trace,
            }));
        }
        let mut fingerprint = Fnv::default();
        let mut events = 0;
        for report in &reports {
            for doc in &report.documents {
                fingerprint.write(doc.canonical.as_bytes());
                fingerprint.write(format!("{:?}", doc.version).as_bytes());
            }
        }
        if let Some(first) = reports.first() {
            events = first
                .documents
                .iter()
                .map(|d| d.version.total_events())
                .sum();
        }
        let network = self.network.stats();
        fingerprint.write(format!("{network:?}").as_bytes());
        Ok(RunReport {
            seed: self.seed,
            end_ms: self.clock.now(),
            settle_ms,
            events,
            crashes: self.crashes,
            partitions: self.partitions,
            network,
            fingerprint: fingerprint.0,
        })
    }
}

/// FNV-1a, for the run fingerprint (stable across builds and platforms).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Runs the standard world of one seed.
pub fn run_seed(seed: u64) -> Result<RunReport, Box<Failure>> {
    Simulation::replicas(seed).run()
}

/// What a batch of seeds did.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    /// Seeds run.
    pub runs: u64,
    /// Events in the final documents, summed over runs.
    pub events: u64,
    /// Messages delivered, summed over runs.
    pub delivered: u64,
    /// Crashes, summed over runs.
    pub crashes: u64,
    /// Partitions, summed over runs.
    pub partitions: u64,
    /// The failed runs, by seed.
    pub failures: Vec<Failure>,
}

/// Runs the seeds `start..start + count` on `threads` threads (each run is single-threaded
/// and deterministic; threads only share out the seeds).
pub fn soak(start: u64, count: u64, threads: usize) -> SoakReport {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    let next = AtomicU64::new(start);
    let total = Mutex::new(SoakReport::default());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= start + count {
                        break;
                    }
                    let outcome = run_seed(seed);
                    let mut total = total.lock().unwrap_or_else(|e| e.into_inner());
                    total.runs += 1;
                    match outcome {
                        Ok(report) => {
                            total.events += report.events;
                            total.delivered += report.network.delivered;
                            total.crashes += report.crashes;
                            total.partitions += report.partitions;
                        }
                        Err(failure) => total.failures.push(*failure),
                    }
                }
            });
        }
    });
    let mut report = total.into_inner().unwrap_or_else(|e| e.into_inner());
    report.failures.sort_by_key(|f| f.seed);
    report
}
