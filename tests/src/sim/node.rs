//! The interface between the simulation and the processes it runs.
//!
//! A process (a replica today, a sync server or gossip node later) only ever sees addressed
//! byte messages, timer ticks and crashes. It answers by sending bytes through its
//! [`Context`] and by reporting what it made durable, so the checker can hold it to it.

use std::collections::BTreeMap;
use std::fmt;

use crdt_core::VersionVector;

use super::rng::SimRng;

/// The address of a simulated process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A message leaving a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The addressee.
    pub to: NodeId,
    /// The encoded message.
    pub bytes: Vec<u8>,
}

/// What a node may do while handling an event: read the clock and its own random stream,
/// send messages, and declare what it has made durable.
pub struct Context<'a> {
    pub(super) now: u64,
    pub(super) workload: bool,
    pub(super) rng: &'a mut SimRng,
    pub(super) outbox: &'a mut Vec<Outgoing>,
    pub(super) persisted: &'a mut BTreeMap<String, VersionVector>,
}

impl Context<'_> {
    /// The simulated time, in milliseconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// True while the simulated users edit; false once the run settles.
    pub fn workload(&self) -> bool {
        self.workload
    }

    /// This node's random stream (the only randomness a node may use).
    pub fn rng(&mut self) -> &mut SimRng {
        self.rng
    }

    /// Sends `bytes` to `to` over the simulated network (which may lose, duplicate, delay or
    /// reorder it).
    pub fn send(&mut self, to: NodeId, bytes: Vec<u8>) {
        self.outbox.push(Outgoing { to, bytes });
    }

    /// Declares that the changes `version` of document `doc` are on this node's durable
    /// storage: from now on, losing any of them is a failure of the run.
    pub fn persisted(&mut self, doc: &str, version: &VersionVector) {
        self.persisted
            .entry(doc.to_owned())
            .or_default()
            .merge(version);
    }
}

/// One document as a node holds it, for the checker.
#[derive(Clone, Debug, PartialEq)]
pub struct DocReport {
    /// The document's name.
    pub name: String,
    /// Its version.
    pub version: VersionVector,
    /// Its content in a canonical text form (conflicts included), equal on two replicas
    /// exactly when they hold the same state.
    pub canonical: String,
    /// Broken invariants found while reading it (empty when all is well).
    pub violations: Vec<String>,
}

/// What a node holds and what went wrong in it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeReport {
    /// The node.
    pub node: NodeId,
    /// Its documents, by name.
    pub documents: Vec<DocReport>,
    /// Errors the node met that a correct system never produces (a refused update, a message
    /// that does not decode, persisted state that does not load...).
    pub errors: Vec<String>,
}

/// A simulated process. Every method runs to completion at one instant of simulated time;
/// nodes never block, spawn threads or read the real clock.
pub trait Node {
    /// Its address.
    fn id(&self) -> NodeId;

    /// Boots the process: the first start, and every restart after [`crash`](Self::crash),
    /// from what it had persisted.
    fn start(&mut self, ctx: &mut Context<'_>);

    /// A message from `from` arrived.
    fn receive(&mut self, ctx: &mut Context<'_>, from: NodeId, bytes: &[u8]);

    /// A timer tick (every step of the simulation while the node is up).
    fn tick(&mut self, ctx: &mut Context<'_>);

    /// The process dies: everything not on durable storage is lost.
    fn crash(&mut self);

    /// True between [`start`](Self::start) and [`crash`](Self::crash).
    fn is_up(&self) -> bool;

    /// Its documents' versions (cheap; used to see when a run has settled).
    fn versions(&self) -> Vec<(String, VersionVector)>;

    /// Everything the checker looks at.
    fn report(&self) -> NodeReport;
}
