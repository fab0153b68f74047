//! How to replay a concurrent trace with one replica per agent, worked out once per trace so
//! that the timed replays only do library work.
//!
//! A transaction `t` of agent `a` must be applied on `a`'s replica when that replica is at
//! exactly the version after `t`'s parents, i.e. holds exactly the transactions of
//! `closure(parents(t))` (the parents and all their ancestors): `t`'s positions are code points
//! in that version. Before applying `t` the replica receives the updates of the transactions of
//! that closure it has not seen yet, oldest first (indexes order parents before children, so
//! this order is causal).
//!
//! Why that is enough, and when it is not: a replica only ever receives its own transactions and
//! ancestors of its own transactions, so after applying its last transaction `l` it holds
//! exactly `closure(l) ∪ {l}`. If `l` is an ancestor of `t` that set is inside
//! `closure(parents(t))`, and after receiving the missing ones the replica holds exactly
//! `closure(parents(t))`, as required. If `l` is *not* an ancestor of `t` (the agent made two
//! concurrent transactions), the replica holds something `t` did not see and applying `t` there
//! would put its positions in the wrong version. The plan then *forks*: the agent gets a fresh
//! empty replica, under a new replica identity (it lacks `l`, so under the agent's own it would
//! issue `l`'s ids again), which receives all of `closure(parents(t))`. [`Plan::forks`] counts these;
//! the traces of `shared/traces` need none (the report says so for each trace).

use crate::trace::Trace;

/// What to do for one transaction.
#[derive(Debug, Clone)]
pub struct Step {
    /// Replace the agent's replica with a fresh empty one first (see the module doc).
    pub fork: bool,
    /// Transactions whose updates the replica must receive before this one is applied, in
    /// ascending (causal) order.
    pub receive: Vec<usize>,
}

/// The replay plan of a concurrent trace: one [`Step`] per transaction, in trace order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `steps[i]` prepares and applies `trace.txns[i]`.
    pub steps: Vec<Step>,
    /// Number of steps that fork a fresh replica.
    pub forks: usize,
    /// Total number of updates delivered to replicas (sum of `receive` lengths).
    pub deliveries: usize,
}

/// A set of transaction indexes as a bit set.
#[derive(Clone)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(len: usize) -> BitSet {
        BitSet(vec![0; len.div_ceil(64)])
    }

    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self) {
        self.0.fill(0);
    }
}

impl Plan {
    /// Computes the plan. Relies on the checks of [`Trace::load`]: parents come before their
    /// children and agents are below `num_agents`.
    pub fn new(trace: &Trace) -> Plan {
        let n = trace.txns.len();
        // What each agent's replica holds.
        let mut held: Vec<BitSet> = vec![BitSet::new(n); trace.num_agents];
        // The last transaction applied on each agent's replica.
        let mut last: Vec<Option<usize>> = vec![None; trace.num_agents];
        // Scratch space for graph walks: `visited[i] == stamp` means visited in this walk.
        let mut visited: Vec<usize> = vec![usize::MAX; n];
        let mut stack = Vec::new();
        let mut steps = Vec::with_capacity(n);
        let (mut forks, mut deliveries) = (0, 0);

        for (index, txn) in trace.txns.iter().enumerate() {
            let agent = txn.agent;
            let fork = last[agent].is_some_and(|l| {
                !is_ancestor(trace, l, &txn.parents, 2 * index, &mut visited, &mut stack)
            });
            if fork {
                held[agent].clear();
                forks += 1;
            }
            // Walk back from the parents, stopping at transactions the replica already holds
            // (it then holds their ancestors too).
            let mut receive = Vec::new();
            let stamp = 2 * index + 1;
            stack.extend(txn.parents.iter().copied());
            while let Some(t) = stack.pop() {
                if visited[t] == stamp || held[agent].contains(t) {
                    continue;
                }
                visited[t] = stamp;
                receive.push(t);
                stack.extend(trace.txns[t].parents.iter().copied());
            }
            receive.sort_unstable();
            for &t in &receive {
                held[agent].insert(t);
            }
            held[agent].insert(index);
            last[agent] = Some(index);
            deliveries += receive.len();
            steps.push(Step { fork, receive });
        }
        Plan {
            steps,
            forks,
            deliveries,
        }
    }
}

/// Whether `target` is one of `parents` or an ancestor of one of them. Indexes order parents
/// before children, so the walk skips everything older than `target`.
fn is_ancestor(
    trace: &Trace,
    target: usize,
    parents: &[usize],
    stamp: usize,
    visited: &mut [usize],
    stack: &mut Vec<usize>,
) -> bool {
    stack.clear();
    stack.extend(parents.iter().copied());
    while let Some(t) = stack.pop() {
        if t == target {
            stack.clear();
            return true;
        }
        if t < target || visited[t] == stamp {
            continue;
        }
        visited[t] = stamp;
        stack.extend(trace.txns[t].parents.iter().copied());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Kind, Txn};

    fn trace(txns: &[(usize, &[usize])], num_agents: usize) -> Trace {
        Trace {
            name: "t".into(),
            kind: Kind::Concurrent,
            end_content: String::new(),
            txns: txns
                .iter()
                .map(|&(agent, parents)| Txn {
                    patches: Vec::new(),
                    parents: parents.to_vec(),
                    agent,
                })
                .collect(),
            num_agents,
            roots: txns
                .iter()
                .filter(|(_, parents)| parents.is_empty())
                .count(),
            ops: 0,
            non_bmp: false,
        }
    }

    #[test]
    fn replicas_receive_exactly_the_missing_ancestors() {
        // 0 (a0) -> 1 (a0) ; 0 -> 2 (a1) ; {1, 2} -> 3 (a1) ; 3 -> 4 (a0)
        let t = trace(
            &[(0, &[]), (0, &[0]), (1, &[0]), (1, &[1, 2]), (0, &[3])],
            2,
        );
        let plan = Plan::new(&t);
        let receive: Vec<&[usize]> = plan.steps.iter().map(|s| s.receive.as_slice()).collect();
        assert_eq!(receive, [&[][..], &[], &[0], &[1], &[2, 3]]);
        assert_eq!((plan.forks, plan.deliveries), (0, 4));
    }

    #[test]
    fn an_agent_with_concurrent_transactions_forks() {
        // Agent 0 makes 1 and then 2, both children of 0 only: 2 must not see 1.
        let t = trace(&[(0, &[]), (0, &[0]), (0, &[0])], 1);
        let plan = Plan::new(&t);
        assert!(plan.steps[2].fork);
        assert_eq!(plan.steps[2].receive, [0]);
        assert_eq!(plan.forks, 1);
    }
}
