//! Loro.
//!
//! - Index units: `LoroText::insert` / `delete` take Unicode code point positions and lengths
//!   (the `_utf8` / `_utf16` variants are the others), the trace's unit: no conversion.
//! - One trace transaction = the patches applied to the document's open transaction, then one
//!   `LoroDoc::commit()`. Loro's defaults are kept: no timestamps recorded, and consecutive
//!   local commits may be merged into one stored change (its "change merge interval"); each
//!   commit is still its own event and its own update.
//! - Per-transaction update: `export(ExportMode::updates(&version_before))`, the ops after the
//!   replica's version vector taken before the transaction; received with `import`, or with
//!   one `import_batch` when a replica receives several at once.
//! - Encoding: `export(ExportMode::Snapshot)` (history and state).
//! - Load: `LoroDoc::from_snapshot(bytes)`. Loro may decode a snapshot's state lazily; the
//!   harness reads the text once inside the timed load, so that cost is included.
//! - Merge: `import(bytes)` into an existing empty `LoroDoc`.
//! - Peer ids are fixed per agent (`set_peer_id`) so sizes are repeatable.

use ::loro::{ExportMode, Frontiers, LoroDoc, LoroText};

use super::{DocSpec, Peer, PeerError};
use crate::trace::Txn;

/// The Loro adapter.
pub struct Loro;

/// A Loro document and its text container.
pub struct LDoc {
    doc: LoroDoc,
    text: LoroText,
}

/// Name of the root text container.
const TEXT: &str = "text";

impl LDoc {
    /// Wraps a document, fixing its peer id.
    fn new(doc: LoroDoc, agent: usize) -> Result<LDoc, PeerError> {
        doc.set_peer_id(agent as u64 + 1)
            .map_err(|e| PeerError::Edit(e.to_string()))?;
        let text = doc.get_text(TEXT);
        Ok(LDoc { doc, text })
    }

    fn apply(&self, txn: &Txn) -> Result<(), PeerError> {
        for patch in &txn.patches {
            if patch.delete > 0 {
                self.text
                    .delete(patch.pos, patch.delete)
                    .map_err(|e| PeerError::Edit(e.to_string()))?;
            }
            if !patch.insert.is_empty() {
                self.text
                    .insert(patch.pos, &patch.insert)
                    .map_err(|e| PeerError::Edit(e.to_string()))?;
            }
        }
        self.doc.commit();
        Ok(())
    }
}

impl Peer for Loro {
    type Doc = LDoc;
    type Mark = Frontiers;

    fn mark(&self, doc: &LDoc) -> Option<Frontiers> {
        Some(doc.doc.oplog_frontiers())
    }

    fn text_at(&self, doc: &LDoc, mark: &Frontiers) -> Result<String, PeerError> {
        doc.doc
            .checkout(mark)
            .map_err(|e| PeerError::Read(e.to_string()))?;
        let text = doc.text.to_string();
        doc.doc.checkout_to_latest();
        Ok(text)
    }

    fn name(&self) -> &'static str {
        "loro"
    }

    fn version(&self) -> &'static str {
        env!("BENCH_PIN_LORO")
    }

    fn new_doc(&self, _spec: &DocSpec, agent: usize) -> Result<LDoc, PeerError> {
        LDoc::new(LoroDoc::new(), agent)
    }

    fn apply_txn(&self, doc: &mut LDoc, txn: &Txn) -> Result<(), PeerError> {
        doc.apply(txn)
    }

    fn apply_txn_with_update(&self, doc: &mut LDoc, txn: &Txn) -> Result<Vec<u8>, PeerError> {
        let before = doc.doc.oplog_vv();
        doc.apply(txn)?;
        doc.doc
            .export(ExportMode::updates(&before))
            .map_err(|e| PeerError::Encode(e.to_string()))
    }

    fn apply_updates(&self, doc: &mut LDoc, updates: &[&[u8]]) -> Result<(), PeerError> {
        let status = match updates {
            [] => return Ok(()),
            [bytes] => doc.doc.import(bytes),
            // Loro computes the resulting state once for a batch, much faster than once per
            // update; its batch API takes owned buffers.
            _ => doc
                .doc
                .import_batch(&updates.iter().map(|u| u.to_vec()).collect::<Vec<_>>()),
        }
        .map_err(|e| PeerError::Decode(e.to_string()))?;
        if let Some(pending) = status.pending {
            // Updates arrive in causal order, so nothing may wait for a dependency.
            return Err(PeerError::Decode(format!(
                "import left changes pending: {pending:?}"
            )));
        }
        Ok(())
    }

    fn text(&self, doc: &LDoc) -> Result<String, PeerError> {
        Ok(doc.text.to_string())
    }

    fn encode(&self, doc: &LDoc) -> Result<Vec<u8>, PeerError> {
        doc.doc
            .export(ExportMode::Snapshot)
            .map_err(|e| PeerError::Encode(e.to_string()))
    }

    fn load(&self, _spec: &DocSpec, bytes: &[u8]) -> Result<LDoc, PeerError> {
        let doc = LoroDoc::from_snapshot(bytes).map_err(|e| PeerError::Decode(e.to_string()))?;
        LDoc::new(doc, u32::MAX as usize)
    }
}
