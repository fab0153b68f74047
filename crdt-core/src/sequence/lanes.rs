//! Replaying concurrent branches without swinging one prepare version back and forth, and
//! keeping that replay state between nearby merges.
//!
//! A [`Tracker`] has one prepare version. Replaying events of two branches that alternate
//! (A, B, A, B, ...) moves it from one branch to the other before every chain: each move
//! retreats the whole of one branch since the fork and advances the whole of the other, so a
//! replay of `k` alternating events costs O(k²), and a replica that receives live keystrokes of
//! two writers one update at a time pays that for every update (O(k³) in all; issue 14).
//!
//! **Lanes.** [`Lanes`] keeps a few trackers over the same items, in the same order, each at its
//! own prepare version (a *lane*). A chain is replayed in the lane whose version already equals
//! its parents if there is one, else in the lane last used by the chain's author (usually an
//! ancestor of its parents), else in a new lane cloned from the most recent one, else in the
//! least recently used lane; only that lane's version moves. The other lanes take the new
//! items at the same raw position and the new deletions as effect-only changes (their versions
//! lack the new events), so every lane keeps the same items and the same effect state. Two
//! writers typing concurrently then cost O(log n) per keystroke to replay, plus what their
//! merges with each other really cost.
//!
//! **Keeping the state.** Eg-walker drops its replay state after each merge, which is right when
//! concurrency is rare, but a replica receiving concurrent changes one at a time then rebuilds
//! the same state for every change. A [`MergeCache`] keeps the lanes after a merge together
//! with what they describe: the events before `synced`, replayed from the critical version
//! `common`, with the effect state equal to the document at `version`. The next merge resumes
//! from them if nothing moved the document in between (see [`MergeCache::resume`]): local edits
//! and fast-forwards drop the cache, because the document then changes without the trackers.

use crate::ReplicaId;
use crate::causal_graph::{CausalGraph, Frontier, GraphRun, Lv};
use crate::sequence::content::Content;
use crate::sequence::merge::move_prepare_version;
use crate::sequence::oplog::{OpKind, OpLog, OpRun};
use crate::sequence::tracker::{OutOfRange, Tracker};

/// At most this many prepare versions are kept at once. Two concurrent writers need two; a
/// few more cover three or four, and each lane costs a copy of the items and mirrored edits.
const MAX_LANES: usize = 4;

/// What replaying an operation does to the effect (current) document.
pub(crate) enum Effect<'a> {
    Insert { at: usize, op: &'a OpRun },
    Delete { at: usize, len: usize },
}

/// One prepare version over the shared items.
#[derive(Clone)]
struct Lane {
    tracker: Tracker,
    prepare: Frontier,
    /// The replica that made the last chain replayed in this lane.
    author: Option<ReplicaId>,
    /// When it was last used (a counter of [`Lanes::clock`]).
    used: u64,
}

/// Trackers over the same items at different prepare versions. See the module documentation.
pub(crate) struct Lanes {
    lanes: Vec<Lane>,
    clock: u64,
}

impl Lanes {
    /// One lane at version `common`, whose document the tracker's placeholder stands for.
    pub(crate) fn new(common: Frontier) -> Lanes {
        Lanes {
            lanes: vec![Lane {
                tracker: Tracker::new(),
                prepare: common,
                author: None,
                used: 0,
            }],
            clock: 0,
        }
    }

    /// Replays the chain `chain` (its events and the parents of the first), calling `effect`
    /// with each change it makes to the effect document.
    pub(crate) fn replay_chain<C: Content>(
        &mut self,
        graph: &CausalGraph,
        log: &OpLog<C>,
        chain: &GraphRun,
        mut effect: impl FnMut(Effect<'_>) -> Result<(), OutOfRange>,
    ) -> Result<(), OutOfRange> {
        let mut ops = log.runs_in(chain.span.clone()).peekable();
        if ops.peek().is_none() {
            // No operation here (another container's events): nothing changes but the version
            // of whichever lane already stands at the chain's parents.
            if let Some(lane) = self.lanes.iter_mut().find(|l| l.prepare == chain.parents) {
                lane.prepare = Frontier::single(chain.span.end - 1);
            }
            return Ok(());
        }
        let author = graph.lv_to_dot(chain.span.start).replica;
        let index = self.choose(graph, log, &chain.parents, author);
        self.clock += 1;
        let (before, rest) = self.lanes.split_at_mut(index);
        let Some((lane, after)) = rest.split_first_mut() else {
            return Err(OutOfRange);
        };
        lane.used = self.clock;
        lane.author = Some(author);
        for op in ops {
            match op.kind {
                OpKind::Insert => {
                    let (at, placed) = lane.tracker.insert_placed(graph, &op)?;
                    for other in before.iter_mut().chain(after.iter_mut()) {
                        other.tracker.mirror_insert(&placed);
                    }
                    effect(Effect::Insert { at, op: &op })?;
                }
                OpKind::Delete => {
                    let from = lane.tracker.delete_records();
                    let deleted = lane.tracker.delete(&op)?;
                    for other in before.iter_mut().chain(after.iter_mut()) {
                        other.tracker.mirror_deletes(&lane.tracker, from);
                    }
                    for (at, len) in deleted {
                        effect(Effect::Delete { at, len })?;
                    }
                }
            }
        }
        lane.prepare = Frontier::single(chain.span.end - 1);
        Ok(())
    }

    /// The lane to replay a chain with `parents` by `author` in, already moved to `parents`.
    fn choose<C: Content>(
        &mut self,
        graph: &CausalGraph,
        log: &OpLog<C>,
        parents: &Frontier,
        author: ReplicaId,
    ) -> usize {
        if let Some(exact) = self.lanes.iter().position(|l| l.prepare == *parents) {
            return exact;
        }
        let index = match self.lanes.iter().position(|l| l.author == Some(author)) {
            Some(same_author) => same_author,
            None if self.lanes.len() < MAX_LANES => {
                let newest = self.most_recent();
                let copy = self.lanes[newest].clone();
                self.lanes.push(copy);
                self.lanes.len() - 1
            }
            None => self.least_recent(),
        };
        let lane = &mut self.lanes[index];
        move_prepare_version(graph, log, &mut lane.tracker, &mut lane.prepare, parents);
        index
    }

    fn most_recent(&self) -> usize {
        let mut best = 0;
        for (i, lane) in self.lanes.iter().enumerate() {
            if lane.used > self.lanes[best].used {
                best = i;
            }
        }
        best
    }

    fn least_recent(&self) -> usize {
        let mut best = 0;
        for (i, lane) in self.lanes.iter().enumerate() {
            if lane.used < self.lanes[best].used {
                best = i;
            }
        }
        best
    }

    /// One tracker whose prepare version is `target` (the effect version is the one replayed
    /// to): the lane nearest to it by the same choice as a replay, moved there.
    pub(crate) fn into_tracker<C: Content>(
        mut self,
        graph: &CausalGraph,
        log: &OpLog<C>,
        target: &Frontier,
    ) -> Tracker {
        let index = match self.lanes.iter().position(|l| l.prepare == *target) {
            Some(exact) => exact,
            None => self.most_recent(),
        };
        let mut lane = self.lanes.swap_remove(index);
        move_prepare_version(graph, log, &mut lane.tracker, &mut lane.prepare, target);
        lane.tracker
    }
}

/// True if every event of version `parents` descends from (or is) the critical version
/// `common`: a root `common`, or one of `parents` at or after it. Every event after a critical
/// version descends from it, and every event before it is its ancestor, so a version holds it
/// exactly when one of its heads is not before it.
fn descends_from(parents: &Frontier, common: &Frontier) -> bool {
    match common.as_slice() {
        [] => true,
        [point] => parents.as_slice().iter().any(|p| p >= point),
        _ => false,
    }
}

/// The replay state of the last merge into one sequence, kept for the next one. See the module
/// documentation.
pub(crate) struct MergeCache {
    lanes: Lanes,
    /// The critical version the replay started from (root or one event); every event after it
    /// descends from it.
    common: Frontier,
    /// The trackers hold every event before this one.
    synced: Lv,
    /// The version of the document when the cache was stored.
    version: Frontier,
    /// The length of the document then: a cheap check that nothing else edited it.
    doc_len: usize,
}

impl MergeCache {
    /// Keeps `lanes`, replayed from `common` up to the graph's current end, whose effect state
    /// is the document (of length `doc_len`) at the graph's frontier. `None` if `common` is
    /// not a single critical version (a shallow graph's base with several heads).
    pub(crate) fn keep(
        lanes: Lanes,
        common: Frontier,
        graph: &CausalGraph,
        doc_len: usize,
    ) -> Option<MergeCache> {
        (common.as_slice().len() <= 1).then(|| MergeCache {
            lanes,
            common,
            synced: graph.len(),
            version: graph.frontier().clone(),
            doc_len,
        })
    }

    /// The lanes, if they can take the events from `from` on of `graph` into a document at
    /// `version` of length `doc_len`: they hold every event before `from` (the events since
    /// they were stored have no operation in `log`, and the document has the same length), and
    /// every event since they were stored, including the new ones, descends from `common`
    /// (otherwise the replay would have to retreat events the placeholder stands for).
    pub(crate) fn resume<C: Content>(
        self,
        graph: &CausalGraph,
        log: &OpLog<C>,
        version: &Frontier,
        from: Lv,
        doc_len: usize,
    ) -> Option<(Lanes, Frontier)> {
        if self.doc_len != doc_len || self.synced > from || from > graph.len() {
            return None;
        }
        if self.synced == from && self.version != *version {
            return None;
        }
        if self.synced < from && log.runs_in(self.synced..from).next().is_some() {
            return None;
        }
        if !graph
            .runs_in(self.synced..graph.len())
            .all(|chain| descends_from(&chain.parents, &self.common))
        {
            return None;
        }
        Some((self.lanes, self.common))
    }
}
