//! crdt-core, this project's own text CRDT (`crdt_core::Text`).
//!
//! - Index units: `Text::insert` / `delete` take char (code point) positions: no conversion.
//! - Transactions: `Text` has none; a trace transaction is its patches as local edits of one
//!   replica, each `delete` then `insert`.
//! - Per-transaction update: `text.update_since(&version_before)`; received with
//!   `apply_update` (one call per update; merging happens inside each call).
//! - Encoding: `Text::encode` (history, inserted text and current text; LZ4).
//! - Load: `Text::load` (adopts the stored text and history, no replay).
//! - Merge: `apply_update` of the encoded document into an existing empty `Text`.
//! - Time travel: the version vector as the mark; `Text::text_at` (the events within the
//!   version merged into an empty rope; the same engine as `Document::view_at`).

use crdt_core::{ReplicaId, Text, VersionVector};

use super::{DocSpec, OURS, Peer, PeerError};
use crate::trace::Txn;

/// The crdt-core adapter.
pub struct CrdtCore;

fn replica(agent: usize) -> ReplicaId {
    ReplicaId::from_u128(agent as u128 + 1)
}

fn apply(doc: &mut Text, txn: &Txn) -> Result<(), PeerError> {
    for patch in &txn.patches {
        if patch.delete > 0 {
            doc.delete(patch.pos..patch.pos + patch.delete)
                .map_err(|e| PeerError::Edit(e.to_string()))?;
        }
        if !patch.insert.is_empty() {
            doc.insert(patch.pos, &patch.insert)
                .map_err(|e| PeerError::Edit(e.to_string()))?;
        }
    }
    Ok(())
}

impl Peer for CrdtCore {
    type Doc = Text;
    type Mark = VersionVector;

    fn mark(&self, doc: &Text) -> Option<VersionVector> {
        Some(doc.version())
    }

    fn text_at(&self, doc: &Text, mark: &VersionVector) -> Result<String, PeerError> {
        doc.text_at(mark)
            .map_err(|e| PeerError::Read(e.to_string()))
    }

    fn name(&self) -> &'static str {
        OURS
    }

    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    fn new_doc(&self, _spec: &DocSpec, agent: usize) -> Result<Text, PeerError> {
        Ok(Text::new(replica(agent)))
    }

    fn apply_txn(&self, doc: &mut Text, txn: &Txn) -> Result<(), PeerError> {
        apply(doc, txn)
    }

    fn apply_txn_with_update(&self, doc: &mut Text, txn: &Txn) -> Result<Vec<u8>, PeerError> {
        let before = doc.version();
        apply(doc, txn)?;
        Ok(doc.update_since(&before))
    }

    fn apply_updates(&self, doc: &mut Text, updates: &[&[u8]]) -> Result<(), PeerError> {
        for update in updates {
            doc.apply_update(update)
                .map_err(|e| PeerError::Decode(e.to_string()))?;
        }
        Ok(())
    }

    fn text(&self, doc: &Text) -> Result<String, PeerError> {
        Ok(doc.to_string())
    }

    fn encode(&self, doc: &Text) -> Result<Vec<u8>, PeerError> {
        Ok(doc.encode())
    }

    fn load(&self, _spec: &DocSpec, bytes: &[u8]) -> Result<Text, PeerError> {
        Text::load(bytes, replica(usize::MAX - 1)).map_err(|e| PeerError::Decode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::replay_with_replicas_observed;
    use crate::plan::Plan;
    use crate::trace::{Kind, Patch, Trace};

    fn insert(agent: usize, parents: &[usize], text: &str) -> Txn {
        Txn {
            patches: vec![Patch {
                pos: 0,
                delete: 0,
                insert: text.into(),
            }],
            parents: parents.to_vec(),
            agent,
        }
    }

    #[test]
    fn a_forked_replica_never_reissues_its_agents_ids() {
        // Agent 0 makes two concurrent transactions, so the second one runs on a fork that
        // lacks the first: under agent 0's identity it would reuse the first one's ids.
        let trace = Trace {
            name: "fork".into(),
            kind: Kind::Concurrent,
            end_content: String::new(),
            txns: vec![insert(0, &[], "a"), insert(0, &[], "b")],
            num_agents: 1,
            roots: 2,
            ops: 2,
            non_bmp: false,
        };
        let plan = Plan::new(&trace);
        assert_eq!(plan.forks, 1);
        let mut updates = Vec::new();
        let mut identities = Vec::new();
        replay_with_replicas_observed(&CrdtCore, &trace, &plan, |_, text: &Text| {
            updates.push(text.update_since(&VersionVector::new()));
            identities.push(text.replica());
            Ok(())
        })
        .expect("the replay succeeds");
        assert_ne!(identities[0], identities[1]);
        let mut merged = Text::new(replica(trace.num_agents));
        for update in &updates {
            merged.apply_update(update).expect("updates apply");
        }
        let mut text: Vec<char> = merged.to_string().chars().collect();
        text.sort_unstable();
        assert_eq!(text, ['a', 'b']);
    }
}
