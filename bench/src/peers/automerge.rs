//! automerge (Rust core).
//!
//! - Index units: documents are created and loaded with `TextEncoding::UnicodeCodePoint`, the
//!   trace's unit, so positions pass through unconverted. (It is also the crate's default
//!   unless its `utf8-indexing` / `utf16-indexing` features are on; it is set explicitly so a
//!   feature switched on elsewhere in the build cannot change it.)
//! - One trace transaction = one explicit `Automerge::transaction()` and `commit()` (the
//!   non-`AutoCommit` API, which maps trace transactions to changes one to one without any
//!   implicit commits), with one `splice_text` per patch. Each commit makes a change with its
//!   hash; no timestamp is recorded (time 0), so documents are deterministic.
//! - The text object is created (`put_object(ROOT, "text", ObjType::Text)`) in the first
//!   transaction of the first writer, as an editor creating the document would; every other
//!   replica receives it with that transaction's change before its own first edit (all
//!   transactions descend from the first). A trace with several roots (transactions made on
//!   the empty document) has no first transaction every other descends from, so there every
//!   replica starts from one shared change (a fixed actor, no timestamp, hence the same bytes
//!   and object id everywhere) that creates the text object, applied in `new_doc`.
//! - Per-transaction update: the committed change's bytes
//!   (`get_change_by_hash(..).raw_bytes()`); received with `load_incremental`. When a replica
//!   receives several updates at once they are concatenated (a valid sequence of chunks) and
//!   applied with one `load_incremental`, i.e. one batch, as a sync message would deliver
//!   them.
//! - Encoding: `save()` (compressed columnar document with the whole history).
//! - Load: `Automerge::load_with_options(bytes, LoadOptions::new().text_encoding(..))`, which
//!   checks the heads' hashes (the default `VerificationMode::Check`).
//! - Merge: `load_incremental(bytes)` into an existing empty document (automerge takes its
//!   whole-document load path when the receiving document is empty).
//! - Time travel: `get_heads()` as the mark; `text_at(text, heads)`.

use ::automerge::transaction::Transactable;
use ::automerge::{ActorId, LoadOptions, ObjId, ObjType, ROOT, ReadDoc, TextEncoding};

use super::{DocSpec, Peer, PeerError};
use crate::trace::Txn;

/// The automerge adapter.
pub struct Automerge;

/// An automerge document and its text object, once it exists.
pub struct AmDoc {
    doc: ::automerge::Automerge,
    text: Option<ObjId>,
}

/// Name of the text object in the root map.
const TEXT: &str = "text";

/// The unit of every position handed to automerge.
const ENCODING: TextEncoding = TextEncoding::UnicodeCodePoint;

/// A deterministic actor id for an agent.
fn actor(agent: usize) -> ActorId {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&(agent as u64 + 1).to_be_bytes());
    ActorId::from(id)
}

/// The change creating the text object that every replica of a trace with several roots
/// starts from (see the module documentation): made by an actor no agent uses, without a
/// timestamp, so it is byte for byte the same each time.
fn shared_creation() -> Result<Vec<u8>, PeerError> {
    let mut id = [0u8; 16];
    id[0] = 0xC7;
    let mut doc = ::automerge::Automerge::new_with_encoding(ENCODING).with_actor(ActorId::from(id));
    let mut tx = doc.transaction();
    tx.put_object(ROOT, TEXT, ObjType::Text)
        .map_err(edit_error)?;
    let (hash, _) = tx.commit();
    hash.and_then(|hash| doc.get_change_by_hash(&hash))
        .map(|change| change.raw_bytes().to_vec())
        .ok_or_else(|| PeerError::Encode("the text object's creation made no change".into()))
}

fn edit_error(e: ::automerge::AutomergeError) -> PeerError {
    PeerError::Edit(e.to_string())
}

fn decode_error(e: ::automerge::AutomergeError) -> PeerError {
    PeerError::Decode(e.to_string())
}

impl AmDoc {
    /// Finds the text object after remote changes arrived, if it is not known yet.
    fn find_text(&mut self) -> Result<(), PeerError> {
        if self.text.is_none() {
            self.text = self
                .doc
                .get(ROOT, TEXT)
                .map_err(|e| PeerError::Read(e.to_string()))?
                .map(|(_, id)| id);
        }
        Ok(())
    }

    /// Applies a trace transaction as one automerge transaction; returns the change's hash.
    fn apply(&mut self, txn: &Txn) -> Result<Option<::automerge::ChangeHash>, PeerError> {
        let mut tx = self.doc.transaction();
        let text = match &self.text {
            Some(text) => text.clone(),
            None => tx
                .put_object(ROOT, TEXT, ObjType::Text)
                .map_err(edit_error)?,
        };
        for patch in &txn.patches {
            let delete = isize::try_from(patch.delete)
                .map_err(|_| PeerError::Edit(format!("delete of {} chars", patch.delete)))?;
            tx.splice_text(&text, patch.pos, delete, &patch.insert)
                .map_err(edit_error)?;
        }
        let (hash, _) = tx.commit();
        self.text = Some(text);
        Ok(hash)
    }
}

impl Peer for Automerge {
    type Doc = AmDoc;
    type Mark = Vec<::automerge::ChangeHash>;

    fn mark(&self, doc: &AmDoc) -> Option<Self::Mark> {
        Some(doc.doc.get_heads())
    }

    fn text_at(&self, doc: &AmDoc, mark: &Self::Mark) -> Result<String, PeerError> {
        let text = doc
            .text
            .as_ref()
            .ok_or_else(|| PeerError::Read("no text object yet".into()))?;
        doc.doc
            .text_at(text, mark)
            .map_err(|e| PeerError::Read(e.to_string()))
    }

    fn name(&self) -> &'static str {
        "automerge"
    }

    fn version(&self) -> &'static str {
        env!("BENCH_PIN_AUTOMERGE")
    }

    fn new_doc(&self, spec: &DocSpec, agent: usize) -> Result<AmDoc, PeerError> {
        let mut doc = AmDoc {
            doc: ::automerge::Automerge::new_with_encoding(ENCODING).with_actor(actor(agent)),
            text: None,
        };
        if spec.several_roots {
            doc.doc
                .load_incremental(&shared_creation()?)
                .map_err(decode_error)?;
            doc.find_text()?;
        }
        Ok(doc)
    }

    fn apply_txn(&self, doc: &mut AmDoc, txn: &Txn) -> Result<(), PeerError> {
        doc.apply(txn).map(|_| ())
    }

    fn apply_txn_with_update(&self, doc: &mut AmDoc, txn: &Txn) -> Result<Vec<u8>, PeerError> {
        match doc.apply(txn)? {
            Some(hash) => doc
                .doc
                .get_change_by_hash(&hash)
                .map(|change| change.raw_bytes().to_vec())
                .ok_or_else(|| PeerError::Encode("the committed change is not found".into())),
            // A transaction without operations makes no change.
            None => Ok(Vec::new()),
        }
    }

    fn apply_updates(&self, doc: &mut AmDoc, updates: &[&[u8]]) -> Result<(), PeerError> {
        match updates {
            [] => {}
            [bytes] => {
                doc.doc.load_incremental(bytes).map_err(decode_error)?;
            }
            _ => {
                // Automerge's storage format is a sequence of chunks (changes or documents),
                // so several updates concatenated are one valid input: one
                // `load_incremental` applies them all as one batch, which automerge does much
                // faster than one batch per change.
                let all = updates.concat();
                doc.doc.load_incremental(&all).map_err(decode_error)?;
            }
        }
        doc.find_text()
    }

    fn text(&self, doc: &AmDoc) -> Result<String, PeerError> {
        match &doc.text {
            Some(text) => doc
                .doc
                .text(text)
                .map_err(|e| PeerError::Read(e.to_string())),
            None => Ok(String::new()),
        }
    }

    fn encode(&self, doc: &AmDoc) -> Result<Vec<u8>, PeerError> {
        Ok(doc.doc.save())
    }

    fn load(&self, _spec: &DocSpec, bytes: &[u8]) -> Result<AmDoc, PeerError> {
        let doc = ::automerge::Automerge::load_with_options(
            bytes,
            LoadOptions::new().text_encoding(ENCODING),
        )
        .map_err(decode_error)?
        .with_actor(actor(u32::MAX as usize));
        let mut doc = AmDoc { doc, text: None };
        doc.find_text()?;
        Ok(doc)
    }
}
