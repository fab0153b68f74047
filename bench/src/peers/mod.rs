//! The libraries measured, behind one trait.
//!
//! [`Peer`] is the whole contract between a text CRDT library and the harness: make a document,
//! apply a trace transaction as one local transaction, ship and receive updates, encode, load,
//! read the text. The harness (`harness.rs`: timing, medians, heap measurement, correctness
//! checks, reporting) is generic over it, so adding a library is one module implementing
//! `Peer` plus one line in [`all`]. The project's own `crdt-core` text CRDT is meant to plug in
//! exactly like that, under the name [`OURS`].

use std::fmt;

use crate::plan::Plan;
use crate::trace::{Trace, Txn};

mod automerge;
mod crdt_core;
mod diamond_types;
mod loro;
mod utf16;
mod yrs;

/// The name the project's own library will have in the reports; every other row is a "peer"
/// in the best-peer comparisons of the report.
pub const OURS: &str = "crdt-core";

/// Every library the program knows, in report order.
///
/// To add one, write a module implementing [`Peer`] and add a line here.
pub fn all() -> Vec<Box<dyn crate::harness::Subject>> {
    vec![
        Box::new(crdt_core::CrdtCore),
        Box::new(yrs::Yrs),
        Box::new(automerge::Automerge),
        Box::new(loro::Loro),
        Box::new(diamond_types::DiamondTypes),
    ]
}

/// What a library needs to know about a trace to create documents for it.
#[derive(Debug, Clone, Copy)]
pub struct DocSpec {
    /// Whether the trace inserts characters outside the Basic Multilingual Plane, so that
    /// UTF-16 positions differ from code point positions somewhere. Libraries indexing by
    /// UTF-16 must then convert; otherwise they may pass positions through.
    pub non_bmp: bool,
    /// Whether several transactions start from the empty document (several roots). Libraries
    /// whose text lives in an object some transaction must create (automerge) then start every
    /// replica from one shared creation of it, since no single transaction precedes all others.
    pub several_roots: bool,
}

impl DocSpec {
    /// The spec of a trace.
    pub fn of(trace: &Trace) -> DocSpec {
        DocSpec {
            non_bmp: trace.non_bmp,
            several_roots: trace.roots > 1,
        }
    }
}

/// A library failed to do what the trace asked. These are reported as the row's error and fail
/// the run, never hidden.
#[derive(Debug)]
pub enum PeerError {
    /// A local edit was refused (for example a position out of range).
    Edit(String),
    /// Encoding a document or an update failed.
    Encode(String),
    /// Decoding, loading or merging bytes failed.
    Decode(String),
    /// Reading the text failed.
    Read(String),
    /// The library panicked (the message of the panic).
    Panic(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Edit(e) => write!(f, "edit refused: {e}"),
            PeerError::Encode(e) => write!(f, "encoding failed: {e}"),
            PeerError::Decode(e) => write!(f, "decoding failed: {e}"),
            PeerError::Read(e) => write!(f, "reading the text failed: {e}"),
            PeerError::Panic(e) => write!(f, "panicked: {e}"),
        }
    }
}

impl std::error::Error for PeerError {}

/// A text CRDT library as the benchmark drives it.
///
/// Documents hold one text (named `"text"` where the library names its containers). Positions
/// handed to the library are the trace's code points; a library indexing by something else
/// converts inside its implementation (and that conversion is part of what is measured).
///
/// Replicas must be deterministic: the same calls give the same bytes (fixed replica / actor /
/// peer ids derived from the `agent` number rather than random ones), so sizes are repeatable.
///
/// What each measurement of the harness includes:
/// - apply: [`Peer::replay_sequential`] (a fresh document plus every transaction), or
///   [`Peer::replay_concurrent`];
/// - encode: [`Peer::encode`] of the final document;
/// - load: [`Peer::load`] of those bytes, then [`Peer::text`] once (so a library that decodes
///   lazily still pays for decoding);
/// - merge: [`Peer::apply_updates`] of those bytes into a document made by [`Peer::new_doc`]
///   beforehand (an existing empty replica), then [`Peer::text`] once.
pub trait Peer {
    /// A document (replica) of this library.
    type Doc;

    /// Name in the reports and for `--library`.
    fn name(&self) -> &'static str;

    /// The exact version measured.
    fn version(&self) -> &'static str;

    /// A new empty replica for `agent` (agents are `0..num_agents`; the harness also uses
    /// `num_agents` for the remote replica it merges into, and `num_agents + 1` onwards for the
    /// fresh replicas of forks, see [`crate::plan`]). Different agents must get different
    /// replica ids.
    fn new_doc(&self, spec: &DocSpec, agent: usize) -> Result<Self::Doc, PeerError>;

    /// Applies one trace transaction as ONE local transaction / commit of the library, the way
    /// an editor would: each patch deletes then inserts, in order.
    fn apply_txn(&self, doc: &mut Self::Doc, txn: &Txn) -> Result<(), PeerError>;

    /// Like [`Peer::apply_txn`], and returns the update that ships this transaction (and only
    /// it) to other replicas, in the library's usual wire format.
    fn apply_txn_with_update(&self, doc: &mut Self::Doc, txn: &Txn) -> Result<Vec<u8>, PeerError>;

    /// Merges updates (from [`Peer::apply_txn_with_update`] or whole documents from
    /// [`Peer::encode`]) into a replica. They are given in causal order.
    fn apply_updates(&self, doc: &mut Self::Doc, updates: &[&[u8]]) -> Result<(), PeerError>;

    /// The document's current text.
    fn text(&self, doc: &Self::Doc) -> Result<String, PeerError>;

    /// The whole document with its history, in the library's standard save / snapshot format.
    fn encode(&self, doc: &Self::Doc) -> Result<Vec<u8>, PeerError>;

    /// A fresh document, ready to read and edit, from bytes made by [`Peer::encode`].
    fn load(&self, spec: &DocSpec, bytes: &[u8]) -> Result<Self::Doc, PeerError>;

    /// A library's handle on one version of a document (time travel).
    type Mark;

    /// The document's current version, to read it later with [`Peer::text_at`]. `None` if
    /// the library cannot read earlier versions of a document as this harness builds it (time
    /// travel is then reported as not supported).
    fn mark(&self, doc: &Self::Doc) -> Option<Self::Mark>;

    /// The text as it was at `mark` (a version this document, or a replica whose changes it
    /// has merged, went through), through the library's own time-travel API, leaving the
    /// document showing its current version.
    fn text_at(&self, doc: &Self::Doc, mark: &Self::Mark) -> Result<String, PeerError>;

    /// Extra facts worth printing under the table (for example an alternative encoding's size).
    /// Called once per trace, on the final document of the first run, untimed.
    fn notes(&self, _doc: &Self::Doc) -> Result<Vec<String>, PeerError> {
        Ok(Vec::new())
    }

    /// Replays a sequential trace on a fresh document of agent 0. Override only if the library
    /// has a faster idiomatic path that keeps one transaction per trace transaction.
    fn replay_sequential(&self, trace: &Trace) -> Result<Self::Doc, PeerError> {
        let mut doc = self.new_doc(&DocSpec::of(trace), 0)?;
        for txn in &trace.txns {
            self.apply_txn(&mut doc, txn)?;
        }
        Ok(doc)
    }

    /// Replays a concurrent trace and returns the final replica of every agent (together they
    /// hold every transaction). The default is [`replay_with_replicas`].
    fn replay_concurrent(&self, trace: &Trace, plan: &Plan) -> Result<Vec<Self::Doc>, PeerError> {
        replay_with_replicas(self, trace, plan)
    }
}

/// Replays a concurrent trace with one replica per agent exchanging per-transaction updates,
/// following `plan` (see `plan.rs`): before each transaction its agent's replica receives the
/// updates of the ancestors it lacks (in one [`Peer::apply_updates`] call, as one sync message
/// would carry them), so it is at exactly the parents' version; then the transaction is applied
/// locally and its update kept for the replicas that need it later.
///
/// The updates of all transactions are kept until the end (like a relay server's log), so they
/// count in the peak heap of the replay, not in the retained heap.
pub fn replay_with_replicas<P: Peer + ?Sized>(
    peer: &P,
    trace: &Trace,
    plan: &Plan,
) -> Result<Vec<P::Doc>, PeerError> {
    replay_with_replicas_observed(peer, trace, plan, |_, _| Ok(()))
}

/// [`replay_with_replicas`], calling `after(i, replica)` once transaction `i` is applied to
/// its agent's replica (untimed uses: time travel takes marks there).
pub fn replay_with_replicas_observed<P: Peer + ?Sized>(
    peer: &P,
    trace: &Trace,
    plan: &Plan,
    mut after: impl FnMut(usize, &P::Doc) -> Result<(), PeerError>,
) -> Result<Vec<P::Doc>, PeerError> {
    let spec = DocSpec::of(trace);
    let mut replicas = (0..trace.num_agents)
        .map(|agent| peer.new_doc(&spec, agent))
        .collect::<Result<Vec<_>, _>>()?;
    let mut updates: Vec<Vec<u8>> = Vec::with_capacity(trace.txns.len());
    // A forked replica may lack transactions its agent made on the replica it replaces, so it
    // must not edit as that agent's identity (it would issue their ids again): each fork gets
    // an identity no replica used (`num_agents` is the harness's remote replica).
    let mut next_fork_identity = trace.num_agents + 1;
    for (txn, step) in trace.txns.iter().zip(&plan.steps) {
        let replica = &mut replicas[txn.agent];
        if step.fork {
            *replica = peer.new_doc(&spec, next_fork_identity)?;
            next_fork_identity += 1;
        }
        if !step.receive.is_empty() {
            let batch: Vec<&[u8]> = step
                .receive
                .iter()
                .map(|&t| updates[t].as_slice())
                .collect();
            peer.apply_updates(replica, &batch)?;
        }
        let mut update = peer.apply_txn_with_update(replica, txn)?;
        // Keep the bytes only, as a log would, not whatever spare capacity the encoder left.
        update.shrink_to_fit();
        updates.push(update);
        after(updates.len() - 1, replica)?;
    }
    Ok(replicas)
}
