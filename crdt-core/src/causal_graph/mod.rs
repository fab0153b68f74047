//! The causal graph: every event a replica knows, who made it, and what it happened after.
//!
//! This is the history half of an Eg-walker replica (Gentle and Kleppmann, "Collaborative Text
//! Editing with Eg-walker", EuroSys 2025); it knows nothing about text. Events are numbered by
//! local version ([`Lv`]) in the order they were learned, and stored as runs: a run is a chain of
//! events by one replica, each the child of the previous, so a typing burst of a thousand
//! keystrokes is one entry in each table.
//!
//! - `parents`: per run, the parents of its first event;
//! - `assignment`: per run, the replica and sequence numbers (the events' [`Dot`]s);
//! - per replica, its sequence numbers back to local versions.
//!
//! [`walk`] answers the questions merging needs: which events one version has that another
//! lacks, and which events must be replayed to merge two versions.

mod frontier;
mod walk;

use std::collections::HashMap;
use std::ops::Range;

pub(crate) use frontier::{Frontier, Lv};
pub(crate) use walk::{ConflictZone, Side};

use crate::rle::{HasLength, HasRleKey, MergeableSpan, RleVec, SplitableSpan};
use crate::{Dot, ReplicaId, VersionVector};

/// A chain of events: `span.start` has `parents`, every later event has the previous one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GraphRun {
    pub(crate) span: Range<Lv>,
    pub(crate) parents: Frontier,
    /// The Lamport timestamp of `span.start`: one more than the greatest of its parents'.
    /// Later events of the chain count up from it.
    pub(crate) lamport: u64,
}

impl HasLength for GraphRun {
    fn len(&self) -> usize {
        self.span.len()
    }
}

impl HasRleKey for GraphRun {
    fn rle_key(&self) -> usize {
        self.span.start
    }
}

impl MergeableSpan for GraphRun {
    fn can_append(&self, next: &Self) -> bool {
        // The timestamps must continue too (they always do, except in a rebuilt shallow base
        // whose runs carry the timestamps they are given).
        next.span.start == self.span.end
            && next.parents.as_slice() == [self.span.end - 1]
            && next.lamport == self.lamport + self.span.len() as u64
    }
    fn append(&mut self, next: Self) {
        self.span.end = next.span.end;
    }
}

impl SplitableSpan for GraphRun {
    fn truncate(&mut self, at: usize) -> Self {
        let split = self.span.start + at;
        let rest = GraphRun {
            span: split..self.span.end,
            parents: Frontier::single(split - 1),
            lamport: self.lamport + at as u64,
        };
        self.span.end = split;
        rest
    }
}

/// Events `span` were made by replica number `agent`, with sequence numbers from `seq_start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AgentRun {
    pub(crate) span: Range<Lv>,
    pub(crate) agent: u32,
    pub(crate) seq_start: u64,
}

impl HasLength for AgentRun {
    fn len(&self) -> usize {
        self.span.len()
    }
}

impl HasRleKey for AgentRun {
    fn rle_key(&self) -> usize {
        self.span.start
    }
}

impl MergeableSpan for AgentRun {
    fn can_append(&self, next: &Self) -> bool {
        next.span.start == self.span.end
            && next.agent == self.agent
            && next.seq_start == self.seq_start + self.span.len() as u64
    }
    fn append(&mut self, next: Self) {
        self.span.end = next.span.end;
    }
}

impl SplitableSpan for AgentRun {
    fn truncate(&mut self, at: usize) -> Self {
        let split = self.span.start + at;
        let rest = AgentRun {
            span: split..self.span.end,
            agent: self.agent,
            seq_start: self.seq_start + at as u64,
        };
        self.span.end = split;
        rest
    }
}

/// One replica's events: its id, and its sequence numbers mapped back to local versions.
#[derive(Clone, Debug, Default)]
struct AgentEvents {
    replica: ReplicaId,
    /// `(first sequence number, first local version, length)`, sorted by sequence number. A
    /// replica's events form a chain, so they are learned in sequence order, gap-free from 1.
    runs: Vec<(u64, Lv, usize)>,
    /// How many of its events are known: the next is `known + 1`.
    known: u64,
}

/// A chain of events of one replica, named as it travels: its local versions, replica, first
/// sequence number and the parents of its first event as dots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WireChain {
    pub(crate) span: Range<Lv>,
    pub(crate) replica: ReplicaId,
    pub(crate) seq_start: u64,
    pub(crate) parents: Vec<Dot>,
}

/// Why events could not be added to the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GraphError {
    /// A parent is an event this replica has not seen.
    MissingParent(Dot),
    /// The events skip sequence numbers of their replica that this replica has not seen.
    MissingPredecessor {
        /// The first sequence number that is missing.
        expected: Dot,
    },
    /// A sequence number of zero, or a run that overflows the counter.
    InvalidSequence,
    /// The events were made concurrently with part of the history this (shallow) graph has
    /// trimmed: they do not descend from all of its base version, the one given.
    HistoryTrimmed(VersionVector),
}

/// The base of a graph loaded from a shallow snapshot: its first `len` events are the events of
/// `version` (kept as graph entries only, their operations trimmed), `frontier` their heads.
/// Every later event descends from all of them (checked when added).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShallowBase {
    pub(crate) len: Lv,
    pub(crate) frontier: Frontier,
    pub(crate) version: VersionVector,
}

/// Why a version vector is not a version of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VersionError {
    /// It names an event the graph does not have.
    UnknownEvent(Dot),
    /// It holds `event` but not `missing`, a parent of it.
    NotCausallyClosed { event: Dot, missing: Dot },
}

/// Every event a replica knows. See the module documentation.
#[derive(Clone, Debug, Default)]
pub(crate) struct CausalGraph {
    parents: RleVec<GraphRun>,
    assignment: RleVec<AgentRun>,
    agents: Vec<AgentEvents>,
    agent_index: HashMap<ReplicaId, u32>,
    /// The version holding every known event.
    frontier: Frontier,
    /// Set in a graph loaded from a shallow snapshot.
    base: Option<ShallowBase>,
}

impl CausalGraph {
    /// How many events are known; also the local version the next one takes.
    pub(crate) fn len(&self) -> Lv {
        self.parents.end()
    }

    /// The version holding every known event.
    pub(crate) fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// The internal number of `replica`, creating it if new.
    pub(crate) fn agent(&mut self, replica: ReplicaId) -> u32 {
        if let Some(&agent) = self.agent_index.get(&replica) {
            return agent;
        }
        let agent = self.agents.len() as u32;
        self.agents.push(AgentEvents {
            replica,
            ..AgentEvents::default()
        });
        self.agent_index.insert(replica, agent);
        agent
    }

    /// The replica with internal number `agent`.
    pub(crate) fn replica_of_agent(&self, agent: u32) -> ReplicaId {
        self.agents[agent as usize].replica
    }

    /// How many events of `replica` are known.
    pub(crate) fn known_of(&self, replica: ReplicaId) -> u64 {
        self.agent_index
            .get(&replica)
            .map_or(0, |&a| self.agents[a as usize].known)
    }

    /// Adds `len` new events made here by `agent`, the first with `parents`.
    pub(crate) fn add_local(&mut self, agent: u32, len: usize, parents: &Frontier) -> Range<Lv> {
        let seq_start = self.agents[agent as usize].known + 1;
        self.push_events(agent, seq_start, len, parents)
    }

    /// Adds events from elsewhere: `len` events of `replica` from sequence number `seq_start`,
    /// the first with the parents `parents`. Events already known are skipped; returns the local
    /// versions of the new ones (empty if none were new).
    pub(crate) fn add_remote(
        &mut self,
        replica: ReplicaId,
        seq_start: u64,
        len: usize,
        parents: &[Dot],
    ) -> Result<Range<Lv>, GraphError> {
        let seq_end = seq_start
            .checked_add(len as u64)
            .ok_or(GraphError::InvalidSequence)?;
        if seq_start == 0 {
            return Err(GraphError::InvalidSequence);
        }
        let known = self.known_of(replica);
        if seq_end <= known + 1 {
            let here = self.len();
            return Ok(here..here);
        }
        if seq_start > known + 1 {
            return Err(GraphError::MissingPredecessor {
                expected: Dot::new(replica, known + 1),
            });
        }
        let parent_lvs: Frontier = if seq_start <= known {
            // Part of the run is known: the rest follows the last known event.
            let last_known =
                self.dot_to_lv(Dot::new(replica, known))
                    .ok_or(GraphError::MissingPredecessor {
                        expected: Dot::new(replica, known),
                    })?;
            Frontier::single(last_known)
        } else {
            let mut lvs = Vec::with_capacity(parents.len());
            for &parent in parents {
                lvs.push(
                    self.dot_to_lv(parent)
                        .ok_or(GraphError::MissingParent(parent))?,
                );
            }
            Frontier::from_unsorted(&lvs)
        };
        if let Some(base) = &self.base
            && parent_lvs.as_slice().iter().all(|&p| p < base.len)
            && parent_lvs != base.frontier
        {
            // Parents inside the base but not all of it: made concurrently with trimmed events.
            return Err(GraphError::HistoryTrimmed(base.version.clone()));
        }
        let skip = (known + 1 - seq_start) as usize;
        let agent = self.agent(replica);
        Ok(self.push_events(agent, known + 1, len - skip, &parent_lvs))
    }

    fn push_events(
        &mut self,
        agent: u32,
        seq_start: u64,
        len: usize,
        parents: &Frontier,
    ) -> Range<Lv> {
        let lamport = parents
            .as_slice()
            .iter()
            .map(|&p| self.lamport_of(p).saturating_add(1))
            .max()
            .unwrap_or(1);
        self.push_run(agent, seq_start, len, parents, lamport)
    }

    /// Adds a run of the base of a shallow graph rebuilt from its summary: `len` events of
    /// `replica` from `seq_start` (the next ones of that replica), the first with `parents`
    /// (earlier events of the rebuilt base) and the Lamport timestamp `lamport`, which the
    /// summary carries for the events whose timestamp matters (heads, writes, container
    /// creations); the others' structure is not the real one (see `document::encoding`).
    pub(crate) fn add_base_run(
        &mut self,
        replica: ReplicaId,
        seq_start: u64,
        len: usize,
        parents: &Frontier,
        lamport: u64,
    ) -> Result<Range<Lv>, GraphError> {
        if len == 0 || seq_start != self.known_of(replica) + 1 {
            return Err(GraphError::InvalidSequence);
        }
        seq_start
            .checked_add(len as u64)
            .ok_or(GraphError::InvalidSequence)?;
        if parents.as_slice().iter().any(|&p| p >= self.len()) || self.base.is_some() {
            return Err(GraphError::InvalidSequence);
        }
        let agent = self.agent(replica);
        Ok(self.push_run(agent, seq_start, len, parents, lamport))
    }

    /// Appends a run whose first event has `parents` and Lamport timestamp `lamport`.
    fn push_run(
        &mut self,
        agent: u32,
        seq_start: u64,
        len: usize,
        parents: &Frontier,
        lamport: u64,
    ) -> Range<Lv> {
        let start = self.len();
        let span = start..start + len;
        if len == 0 {
            return span;
        }
        self.parents.push(GraphRun {
            span: span.clone(),
            parents: parents.clone(),
            lamport,
        });
        self.assignment.push(AgentRun {
            span: span.clone(),
            agent,
            seq_start,
        });
        let events = &mut self.agents[agent as usize];
        match events.runs.last_mut() {
            Some((s, lv, l)) if *s + *l as u64 == seq_start && *lv + *l == start => *l += len,
            _ => events.runs.push((seq_start, start, len)),
        }
        events.known = seq_start + len as u64 - 1;
        self.frontier.advance(parents.as_slice(), span.end - 1);
        span
    }

    /// Marks every event known now as the base of a shallow graph (their operations are not
    /// kept): later events must descend from all of them.
    pub(crate) fn set_shallow_base(&mut self) {
        self.base = Some(ShallowBase {
            len: self.len(),
            frontier: self.frontier.clone(),
            version: self.version_vector(),
        });
    }

    /// The base of a graph loaded from a shallow snapshot.
    pub(crate) fn shallow_base(&self) -> Option<&ShallowBase> {
        self.base.as_ref()
    }

    /// Forgets every event from `len` on (undoing a failed update), restoring `frontier` as the
    /// version of everything left.
    pub(crate) fn truncate(&mut self, len: Lv, frontier: Frontier) {
        self.parents.truncate_keys(len);
        self.assignment.truncate_keys(len);
        for events in &mut self.agents {
            events.runs.retain(|&(_, lv, _)| lv < len);
            if let Some((_, lv, run_len)) = events.runs.last_mut() {
                *run_len = (*run_len).min(len - *lv);
            }
            events.known = events
                .runs
                .last()
                .map_or(0, |&(seq, _, run_len)| seq + run_len as u64 - 1);
        }
        self.frontier = frontier;
    }

    /// The Lamport timestamp of event `lv` (1 for events without parents): a total order
    /// consistent with causality when paired with the replica id.
    pub(crate) fn lamport_of(&self, lv: Lv) -> u64 {
        self.parents
            .find(lv)
            .map_or(0, |(run, offset)| run.lamport + offset as u64)
    }

    /// The parents of event `lv`.
    pub(crate) fn parents_of(&self, lv: Lv) -> Frontier {
        match self.parents.find(lv) {
            Some((run, 0)) => run.parents.clone(),
            Some(_) => Frontier::single(lv - 1),
            None => Frontier::root(),
        }
    }

    /// The run of the graph containing `lv`: its first event and that event's parents.
    pub(crate) fn run_containing(&self, lv: Lv) -> Option<&GraphRun> {
        self.parents.find(lv).map(|(run, _)| run)
    }

    /// The graph's runs overlapping `range`, cut to it.
    pub(crate) fn runs_in(&self, range: Range<Lv>) -> impl Iterator<Item = GraphRun> + '_ {
        self.parents.iter_range(range)
    }

    /// The replica and sequence-number runs overlapping `range`, cut to it.
    pub(crate) fn assignment_in(&self, range: Range<Lv>) -> impl Iterator<Item = AgentRun> + '_ {
        self.assignment.iter_range(range)
    }

    /// The dot of event `lv`.
    pub(crate) fn lv_to_dot(&self, lv: Lv) -> Dot {
        let (run, offset) = self
            .assignment
            .find(lv)
            .expect("every local version below len() has an agent run");
        Dot::new(
            self.agents[run.agent as usize].replica,
            run.seq_start + offset as u64,
        )
    }

    /// The local version of the event `dot`, if known.
    pub(crate) fn dot_to_lv(&self, dot: Dot) -> Option<Lv> {
        let agent = *self.agent_index.get(&dot.replica)?;
        let runs = &self.agents[agent as usize].runs;
        let index = runs.partition_point(|&(seq, _, _)| seq <= dot.counter);
        let &(seq, lv, len) = runs.get(index.checked_sub(1)?)?;
        let offset = dot.counter - seq;
        (offset < len as u64).then(|| lv + offset as usize)
    }

    /// The version vector of everything known.
    pub(crate) fn version_vector(&self) -> VersionVector {
        self.agents.iter().map(|a| (a.replica, a.known)).collect()
    }

    /// The local versions of the events covered by `until` (everything if `None`) but not by
    /// `since`, in ascending runs.
    pub(crate) fn spans_between(
        &self,
        since: &VersionVector,
        until: Option<&VersionVector>,
    ) -> Vec<Range<Lv>> {
        let mut spans: Vec<Range<Lv>> = Vec::new();
        for events in &self.agents {
            let seen = since.get(events.replica);
            let last = until.map_or(u64::MAX, |u| u.get(events.replica));
            for &(seq, lv, len) in &events.runs {
                // The run's sequence numbers `seq..seq + len`, cut to `seen + 1..=last`.
                let from = seq.max(seen.saturating_add(1));
                let to = (seq + len as u64).min(last.saturating_add(1));
                if from < to {
                    let first = lv + (from - seq) as usize;
                    spans.push(first..first + (to - from) as usize);
                }
            }
        }
        spans.sort_unstable_by_key(|s| s.start);
        // Adjacent runs of different replicas join into one span.
        let mut merged: Vec<Range<Lv>> = Vec::with_capacity(spans.len());
        for span in spans {
            match merged.last_mut() {
                Some(last) if last.end == span.start => last.end = span.end,
                _ => merged.push(span),
            }
        }
        merged
    }

    /// The events covered by `until` (all if `None`) and not by `since`, as chains of one
    /// replica each, in local version order (so parents come before children).
    pub(crate) fn chains_between(
        &self,
        since: &VersionVector,
        until: Option<&VersionVector>,
    ) -> Vec<WireChain> {
        let mut chains = Vec::new();
        for span in self.spans_between(since, until) {
            for chain in self.runs_in(span) {
                for agent_run in self.assignment_in(chain.span.clone()) {
                    let span = agent_run.span.clone();
                    let parents = if span.start == chain.span.start {
                        self.frontier_to_dots(&chain.parents)
                    } else {
                        vec![self.lv_to_dot(span.start - 1)]
                    };
                    chains.push(WireChain {
                        replica: self.replica_of_agent(agent_run.agent),
                        seq_start: agent_run.seq_start,
                        span,
                        parents,
                    });
                }
            }
        }
        chains
    }

    /// Checks that `version` is a version of this graph: every event it names is known, and
    /// it holds every parent of its events (it is causally closed).
    pub(crate) fn check_version(&self, version: &VersionVector) -> Result<(), VersionError> {
        for (replica, count) in version.iter() {
            let known = self.known_of(replica);
            if count > known {
                return Err(VersionError::UnknownEvent(Dot::new(replica, known + 1)));
            }
        }
        for span in self.spans_between(&VersionVector::new(), Some(version)) {
            for run in self.runs_in(span) {
                for &parent in run.parents.as_slice() {
                    let missing = self.lv_to_dot(parent);
                    if !version.contains(missing) {
                        return Err(VersionError::NotCausallyClosed {
                            event: self.lv_to_dot(run.span.start),
                            missing,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The heads of `version`, which must be causally closed (every parent of its events in
    /// it): its events that none of its other events has as a parent.
    pub(crate) fn frontier_of(&self, version: &VersionVector) -> Frontier {
        let mut frontier = Frontier::root();
        // Runs in ascending order are a topological order: each run's parents stop being
        // heads, its last event becomes one.
        for span in self.spans_between(&VersionVector::new(), Some(version)) {
            for run in self.runs_in(span) {
                frontier.advance(run.parents.as_slice(), run.span.end - 1);
            }
        }
        frontier
    }

    /// The frontier whose heads are the events `dots`, or the first dot this graph lacks.
    pub(crate) fn frontier_of_dots(&self, dots: &[Dot]) -> Result<Frontier, Dot> {
        let mut lvs = Vec::with_capacity(dots.len());
        for &dot in dots {
            lvs.push(self.dot_to_lv(dot).ok_or(dot)?);
        }
        Ok(Frontier::from_unsorted(&lvs))
    }

    /// The dots of a frontier's heads.
    pub(crate) fn frontier_to_dots(&self, frontier: &Frontier) -> Vec<Dot> {
        frontier
            .as_slice()
            .iter()
            .map(|&lv| self.lv_to_dot(lv))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: u128) -> ReplicaId {
        ReplicaId::from_u128(n)
    }

    #[test]
    fn local_runs_merge_and_ids_round_trip() {
        let mut graph = CausalGraph::default();
        let a = graph.agent(r(1));
        let first = graph.add_local(a, 3, &Frontier::root());
        let second = graph.add_local(a, 2, &Frontier::single(first.end - 1));
        assert_eq!(second, 3..5);
        assert_eq!(graph.parents.num_runs(), 1);
        assert_eq!(graph.lv_to_dot(4), Dot::new(r(1), 5));
        assert_eq!(graph.dot_to_lv(Dot::new(r(1), 5)), Some(4));
        assert_eq!(graph.dot_to_lv(Dot::new(r(1), 6)), None);
        assert_eq!(graph.frontier().as_slice(), [4]);
    }

    #[test]
    fn remote_events_skip_what_is_known_and_refuse_gaps() {
        let mut graph = CausalGraph::default();
        assert_eq!(graph.add_remote(r(2), 1, 3, &[]), Ok(0..3));
        // Overlapping: only the last two are new.
        assert_eq!(graph.add_remote(r(2), 2, 4, &[Dot::new(r(2), 1)]), Ok(3..5));
        assert_eq!(graph.add_remote(r(2), 1, 5, &[]), Ok(5..5));
        assert_eq!(
            graph.add_remote(r(2), 9, 1, &[]),
            Err(GraphError::MissingPredecessor {
                expected: Dot::new(r(2), 6)
            })
        );
        assert_eq!(
            graph.add_remote(r(3), 1, 1, &[Dot::new(r(4), 1)]),
            Err(GraphError::MissingParent(Dot::new(r(4), 1)))
        );
        assert_eq!(graph.version_vector().get(r(2)), 5);
    }

    #[test]
    fn spans_not_in_a_version() {
        let mut graph = CausalGraph::default();
        let a = graph.agent(r(1));
        let b = graph.agent(r(2));
        graph.add_local(a, 3, &Frontier::root()); // 0..3
        graph.add_local(b, 2, &Frontier::root()); // 3..5
        graph.add_local(a, 2, &Frontier::from_unsorted(&[2, 4])); // 5..7
        let version: VersionVector = [(r(1), 2), (r(2), 2)].into_iter().collect();
        assert_eq!(graph.spans_between(&version, None), vec![2..3, 5..7]);
        let until: VersionVector = [(r(1), 4), (r(2), 2)].into_iter().collect();
        assert_eq!(
            graph.spans_between(&version, Some(&until)),
            vec![2..3, 5..6]
        );
    }
}
