//! The deterministic simulation (`integration_tests::sim`): replicas syncing over a faulty
//! network with crashes converge, and the checker really catches a replica that loses changes.
//!
//! `SIM_SEEDS=N` runs more seeds here; `cargo xtask soak --seeds N` runs many in release.

use integration_tests::sim::{
    Context, Node, NodeId, NodeReport, ReplicaConfig, ReplicaNode, SimConfig, Simulation,
    Violation, run_seed, soak,
};

use crdt_core::{ReplicaId, VersionVector};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn replicas_converge_after_faults_for_every_seed() {
    let count = env_u64("SIM_SEEDS").unwrap_or(500);
    let start = env_u64("SIM_START").unwrap_or(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = std::time::Instant::now();
    let report = soak(start, count, threads);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "simulation: seeds {start}..{}: {} runs in {seconds:.1} s ({:.0} seeds/s on {threads} threads), \
         {} events, {} messages delivered, {} crashes, {} partitions, {} failed",
        start + count,
        report.runs,
        report.runs as f64 / seconds.max(1e-9),
        report.events,
        report.delivered,
        report.crashes,
        report.partitions,
        report.failures.len()
    );
    for failure in &report.failures {
        eprintln!("{failure}");
    }
    assert!(
        report.failures.is_empty(),
        "{} of {} seeds failed: {:?} (replay each with the command printed above)",
        report.failures.len(),
        report.runs,
        report.failures.iter().map(|f| f.seed).collect::<Vec<_>>()
    );
    assert_eq!(report.runs, count);
    // The runs did something: edits, traffic and faults.
    assert!(report.events > count, "{report:?}");
    assert!(report.crashes > 0 && report.partitions > 0, "{report:?}");
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [1, 17, 123] {
        let first = run_seed(seed).expect("the seed passes");
        assert_eq!(run_seed(seed).expect("the seed passes"), first);
    }
    assert_ne!(
        run_seed(1).map(|r| r.fingerprint).ok(),
        run_seed(2).map(|r| r.fingerprint).ok()
    );
}

/// Replays one seed verbosely: `SIM_SEED=42 cargo test -p integration-tests --test it
/// sim::replay_seed -- --nocapture`. Without `SIM_SEED` it does nothing.
#[test]
fn replay_seed() {
    let Some(seed) = env_u64("SIM_SEED") else {
        return;
    };
    println!("config: {:?}", SimConfig::random(seed));
    match run_seed(seed) {
        Ok(report) => println!("seed {seed} passed: {report:#?}"),
        Err(failure) => panic!("{failure}"),
    }
}

/// A replica whose disk loses its log at every crash: a change it persisted and had not yet
/// delivered is gone, and it reissues the ids of events it had sent.
struct LosesLog(ReplicaNode);

impl Node for LosesLog {
    fn id(&self) -> NodeId {
        self.0.id()
    }
    fn start(&mut self, ctx: &mut Context<'_>) {
        self.0.start(ctx);
    }
    fn receive(&mut self, ctx: &mut Context<'_>, from: NodeId, bytes: &[u8]) {
        self.0.receive(ctx, from, bytes);
    }
    fn tick(&mut self, ctx: &mut Context<'_>) {
        self.0.tick(ctx);
    }
    fn crash(&mut self) {
        self.0.crash();
        self.0.disk_mut().corrupt_log();
    }
    fn is_up(&self) -> bool {
        self.0.is_up()
    }
    fn versions(&self) -> Vec<(String, VersionVector)> {
        self.0.versions()
    }
    fn report(&self) -> NodeReport {
        self.0.report()
    }
}

/// A replica that never applies what peers send (but answers their hellos).
struct IgnoresChanges(ReplicaNode);

impl Node for IgnoresChanges {
    fn id(&self) -> NodeId {
        self.0.id()
    }
    fn start(&mut self, ctx: &mut Context<'_>) {
        self.0.start(ctx);
    }
    fn receive(&mut self, ctx: &mut Context<'_>, from: NodeId, bytes: &[u8]) {
        if let Ok(crdt_core::Message::Changes { .. }) = crdt_core::Message::decode(bytes) {
            return;
        }
        self.0.receive(ctx, from, bytes);
    }
    fn tick(&mut self, ctx: &mut Context<'_>) {
        self.0.tick(ctx);
    }
    fn crash(&mut self) {
        self.0.crash();
    }
    fn is_up(&self) -> bool {
        self.0.is_up()
    }
    fn versions(&self) -> Vec<(String, VersionVector)> {
        self.0.versions()
    }
    fn report(&self) -> NodeReport {
        self.0.report()
    }
}

/// Three replicas, the first wrapped by `broken`.
fn world_with(seed: u64, broken: impl FnOnce(ReplicaNode) -> Box<dyn Node>) -> Simulation {
    let mut config = SimConfig::random(seed);
    config.replicas = 3;
    config.crash_per_mille = 20;
    config.max_down_ms = 300;
    config.edit_per_mille = 100;
    config.settle_ms = 10_000;
    let mut sim = Simulation::new(seed, config);
    let ids = [NodeId(0), NodeId(1), NodeId(2)];
    let mut broken = Some(broken);
    for id in ids {
        let peers = ids.iter().copied().filter(|p| *p != id).collect();
        let node = ReplicaNode::new(
            id,
            ReplicaId::from_u128(100 + u128::from(id.0)),
            ReplicaConfig::new("doc", peers),
        );
        match broken.take() {
            Some(wrap) => sim.add_node(wrap(node)),
            None => sim.add_node(Box::new(node)),
        }
    }
    sim
}

#[test]
fn the_checker_catches_a_replica_that_ignores_changes() {
    let failure = world_with(5, |node| Box::new(IgnoresChanges(node)))
        .run()
        .expect_err("a replica that ignores changes cannot converge");
    assert!(
        failure.violations.iter().any(|v| matches!(
            v,
            Violation::Diverged { .. } | Violation::LostChanges { .. }
        )),
        "{failure}"
    );
    assert!(failure.to_string().contains("SIM_SEED=5"), "{failure}");
}

#[test]
fn the_checker_catches_a_replica_that_loses_persisted_changes() {
    let failed = (0..20)
        .filter(|seed| {
            world_with(*seed, |node| Box::new(LosesLog(node)))
                .run()
                .is_err()
        })
        .count();
    assert!(
        failed >= 10,
        "only {failed} of 20 runs noticed the lost changes"
    );
}
