//! diamond-types (Joseph Gentle's list CRDT; the crate's 1.0 API names the op log `OpLog`,
//! later versions `ListOpLog`).
//!
//! - Index units: `ListCRDT::insert` / `delete` take Unicode code point positions (its rope
//!   counts chars): no conversion.
//! - Transactions: diamond-types has none. A trace transaction is its patches as local
//!   operations of one agent, each `ListCRDT::delete` (which keeps the deleted content, as
//!   its editors do) then `ListCRDT::insert`.
//! - Per-transaction update: `oplog.encode_from(ENCODE_PATCH, &version_before)`; received
//!   with `oplog.decode_and_add` and then one `branch.merge` to the op log's version.
//! - Concurrent traces use the same replica-per-agent replay as the other libraries (one
//!   `ListCRDT`, i.e. op log plus branch, per agent), so the numbers compare like for like.
//!   diamond-types could also take such a trace natively (`add_operations_at` with explicit
//!   parents into one op log, then one checkout), which skips all the update traffic; that is
//!   a different workload and is not what `apply_ms` measures here.
//! - Encoding: `oplog.encode(EncodeOptions::default())`, i.e. `ENCODE_FULL` (inserted
//!   content, lz4-compressed; deleted content not stored).
//! - Load: `ListCRDT::load_from(bytes)` = `OpLog::load_from` + `checkout_tip()` (replays the
//!   whole history into a branch holding the text).
//! - Merge: `decode_and_add` into the empty op log of an existing `ListCRDT`, then
//!   `branch.merge(&oplog, oplog.local_version_ref())`.

use ::diamond_types::AgentId;
use ::diamond_types::list::ListCRDT;
use ::diamond_types::list::encoding::{ENCODE_PATCH, EncodeOptions};

use super::{DocSpec, Peer, PeerError};
use crate::trace::Txn;

/// The diamond-types adapter.
pub struct DiamondTypes;

/// A diamond-types document (op log + branch) and the local agent's id in it.
pub struct DtDoc {
    crdt: ListCRDT,
    agent: AgentId,
}

impl DtDoc {
    fn new(mut crdt: ListCRDT, agent: usize) -> DtDoc {
        let agent = crdt.get_or_create_agent_id(&format!("agent{agent}"));
        DtDoc { crdt, agent }
    }

    fn apply(&mut self, txn: &Txn) -> Result<(), PeerError> {
        for patch in &txn.patches {
            let end = patch.pos + patch.delete;
            let len = self.crdt.len();
            if end > len {
                return Err(PeerError::Edit(format!(
                    "patch at {}..{end} beyond length {len}",
                    patch.pos
                )));
            }
            if patch.delete > 0 {
                self.crdt.delete(self.agent, patch.pos..end);
            }
            if !patch.insert.is_empty() {
                self.crdt.insert(self.agent, patch.pos, &patch.insert);
            }
        }
        Ok(())
    }
}

impl Peer for DiamondTypes {
    type Doc = DtDoc;
    /// Local versions are numbers of one replica: the mark is the remote form (agent name and
    /// sequence number), converted back by the replica that reads it.
    type Mark = Vec<::diamond_types::list::remote_ids::RemoteId>;

    fn mark(&self, doc: &DtDoc) -> Option<Self::Mark> {
        Some(doc.crdt.oplog.remote_version().to_vec())
    }

    fn text_at(&self, doc: &DtDoc, mark: &Self::Mark) -> Result<String, PeerError> {
        let oplog = &doc.crdt.oplog;
        let local = oplog
            .try_remote_to_local_version(mark.iter())
            .map_err(|e| PeerError::Read(format!("{e:?}")))?;
        Ok(oplog.checkout(&local).content().to_string())
    }

    fn name(&self) -> &'static str {
        "diamond-types"
    }

    fn version(&self) -> &'static str {
        env!("BENCH_PIN_DIAMOND_TYPES")
    }

    fn new_doc(&self, _spec: &DocSpec, agent: usize) -> Result<DtDoc, PeerError> {
        Ok(DtDoc::new(ListCRDT::new(), agent))
    }

    fn apply_txn(&self, doc: &mut DtDoc, txn: &Txn) -> Result<(), PeerError> {
        doc.apply(txn)
    }

    fn apply_txn_with_update(&self, doc: &mut DtDoc, txn: &Txn) -> Result<Vec<u8>, PeerError> {
        let before = doc.crdt.oplog.local_version();
        doc.apply(txn)?;
        Ok(doc.crdt.oplog.encode_from(ENCODE_PATCH, &before))
    }

    fn apply_updates(&self, doc: &mut DtDoc, updates: &[&[u8]]) -> Result<(), PeerError> {
        for bytes in updates {
            doc.crdt
                .oplog
                .decode_and_add(bytes)
                .map_err(|e| PeerError::Decode(e.to_string()))?;
        }
        let crdt = &mut doc.crdt;
        crdt.branch
            .merge(&crdt.oplog, crdt.oplog.local_version_ref());
        Ok(())
    }

    fn text(&self, doc: &DtDoc) -> Result<String, PeerError> {
        Ok(doc.crdt.branch.content().to_string())
    }

    fn encode(&self, doc: &DtDoc) -> Result<Vec<u8>, PeerError> {
        Ok(doc.crdt.oplog.encode(EncodeOptions::default()))
    }

    fn load(&self, _spec: &DocSpec, bytes: &[u8]) -> Result<DtDoc, PeerError> {
        let crdt = ListCRDT::load_from(bytes).map_err(|e| PeerError::Decode(e.to_string()))?;
        Ok(DtDoc::new(crdt, u32::MAX as usize))
    }
}
