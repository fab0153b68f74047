//! yrs, the Rust port of Yjs.
//!
//! - Index units: yrs counts UTF-8 bytes by default; documents here are created with
//!   `OffsetKind::Utf16`, the closest unit it offers to code points (it has no code point
//!   mode). UTF-16 equals code points unless the text holds non-BMP characters; for traces that
//!   insert some, positions are converted with an [`AstralIndex`] (kept per document, rebuilt
//!   from the text after remote updates).
//! - One trace transaction = one `transact_mut()` (committed when dropped).
//! - Per-transaction update: `TransactionMut::encode_update_v1` (what Yjs providers send).
//! - Encoding: `encode_state_as_update_v1(&StateVector::default())`, the default (v1) update
//!   format of Yjs and yrs; the v2 size is printed as a note (Yjs documents v2 as an opt-in
//!   with better compression that not every provider supports).
//! - Load: `Doc::with_options` + `Update::decode_v1` + `apply_update` in one transaction.
//! - Merge: `Update::decode_v1` + `apply_update` on an existing empty `Doc`.
//! - Garbage collection of deleted content is on (the default, `skip_gc: false`).

use ::yrs::updates::decoder::Decode;
use ::yrs::{
    ClientID, Doc, GetString, OffsetKind, Options, ReadTxn, StateVector, Text, TextRef, Transact,
    TransactionMut, Update,
};

use super::utf16::AstralIndex;
use super::{DocSpec, Peer, PeerError};
use crate::trace::Txn;

/// The yrs adapter.
pub struct Yrs;

/// A yrs document with its one text.
pub struct YDoc {
    doc: Doc,
    text: TextRef,
    /// Only for traces with non-BMP characters: positions of those characters.
    astral: Option<AstralIndex>,
}

/// Name of the root text type.
const TEXT: &str = "text";

impl YDoc {
    fn new(spec: &DocSpec, agent: usize) -> YDoc {
        let mut options = Options::with_client_id(ClientID::new(agent as u64 + 1));
        options.offset_kind = OffsetKind::Utf16;
        let doc = Doc::with_options(options);
        let text = doc.get_or_insert_text(TEXT);
        let astral = spec.non_bmp.then(AstralIndex::default);
        YDoc { doc, text, astral }
    }

    /// Applies a transaction's patches inside `txn`.
    fn apply(
        text: &TextRef,
        astral: &mut Option<AstralIndex>,
        txn: &mut TransactionMut,
        patches: &Txn,
    ) -> Result<(), PeerError> {
        for patch in &patches.patches {
            let (start, end) = match astral {
                Some(index) => (
                    index.to_utf16(patch.pos),
                    index.to_utf16(patch.pos + patch.delete),
                ),
                None => (patch.pos, patch.pos + patch.delete),
            };
            let len = text.len(txn) as usize;
            if end > len {
                return Err(PeerError::Edit(format!(
                    "patch at {}..{} beyond length {len}",
                    patch.pos,
                    patch.pos + patch.delete
                )));
            }
            if end > start {
                text.remove_range(txn, to_u32(start)?, to_u32(end - start)?);
            }
            if !patch.insert.is_empty() {
                text.insert(txn, to_u32(start)?, &patch.insert);
            }
            if let Some(index) = astral {
                index.delete(patch.pos, patch.delete);
                index.insert(patch.pos, &patch.insert);
            }
        }
        Ok(())
    }
}

/// yrs positions are `u32`.
fn to_u32(n: usize) -> Result<u32, PeerError> {
    u32::try_from(n).map_err(|_| PeerError::Edit(format!("position {n} exceeds u32")))
}

impl Peer for Yrs {
    type Doc = YDoc;
    type Mark = ();

    /// Reading an earlier version needs a document created with garbage collection off and a
    /// `Snapshot` taken at that version; the documents measured here keep the default
    /// (collection on), as apps do unless they want history.
    fn mark(&self, _doc: &Self::Doc) -> Option<()> {
        None
    }

    fn text_at(&self, _doc: &Self::Doc, _mark: &()) -> Result<String, PeerError> {
        Err(PeerError::Read(
            "not supported with garbage collection on".into(),
        ))
    }

    fn name(&self) -> &'static str {
        "yrs"
    }

    fn version(&self) -> &'static str {
        env!("BENCH_PIN_YRS")
    }

    fn new_doc(&self, spec: &DocSpec, agent: usize) -> Result<YDoc, PeerError> {
        Ok(YDoc::new(spec, agent))
    }

    fn apply_txn(&self, doc: &mut YDoc, txn: &Txn) -> Result<(), PeerError> {
        let mut t = doc.doc.transact_mut();
        YDoc::apply(&doc.text, &mut doc.astral, &mut t, txn)
    }

    fn apply_txn_with_update(&self, doc: &mut YDoc, txn: &Txn) -> Result<Vec<u8>, PeerError> {
        let mut t = doc.doc.transact_mut();
        YDoc::apply(&doc.text, &mut doc.astral, &mut t, txn)?;
        Ok(t.encode_update_v1())
    }

    fn apply_updates(&self, doc: &mut YDoc, updates: &[&[u8]]) -> Result<(), PeerError> {
        {
            let mut t = doc.doc.transact_mut();
            for bytes in updates {
                let update =
                    Update::decode_v1(bytes).map_err(|e| PeerError::Decode(e.to_string()))?;
                t.apply_update(update)
                    .map_err(|e| PeerError::Decode(e.to_string()))?;
            }
        }
        if doc.astral.is_some() {
            doc.astral = Some(AstralIndex::of(&self.text(doc)?));
        }
        Ok(())
    }

    fn text(&self, doc: &YDoc) -> Result<String, PeerError> {
        Ok(doc.text.get_string(&doc.doc.transact()))
    }

    fn encode(&self, doc: &YDoc) -> Result<Vec<u8>, PeerError> {
        Ok(doc
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default()))
    }

    fn load(&self, spec: &DocSpec, bytes: &[u8]) -> Result<YDoc, PeerError> {
        // Agent numbers are small; this id is above all of them, so a loaded document can be
        // edited without clashing with the writers.
        let mut doc = YDoc::new(spec, u32::MAX as usize);
        self.apply_updates(&mut doc, &[bytes])?;
        Ok(doc)
    }

    fn notes(&self, doc: &YDoc) -> Result<Vec<String>, PeerError> {
        let start = std::time::Instant::now();
        let v2 = doc
            .doc
            .transact()
            .encode_state_as_update_v2(&StateVector::default());
        let encode = start.elapsed();
        let start = std::time::Instant::now();
        let loaded = Doc::with_options(Options {
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        });
        let text = loaded.get_or_insert_text(TEXT);
        {
            let update = Update::decode_v2(&v2).map_err(|e| PeerError::Decode(e.to_string()))?;
            let mut t = loaded.transact_mut();
            t.apply_update(update)
                .map_err(|e| PeerError::Decode(e.to_string()))?;
        }
        let loaded_text = text.get_string(&loaded.transact());
        let load = start.elapsed();
        if loaded_text != self.text(doc)? {
            return Err(PeerError::Decode(
                "the v2 encoding loads to a different text".into(),
            ));
        }
        Ok(vec![format!(
            "v2 encoding (encode_state_as_update_v2): {} bytes, encode {:.2} ms, load {:.2} ms \
             (one run, text checked); the table uses v1, the default format",
            v2.len(),
            encode.as_secs_f64() * 1e3,
            load.as_secs_f64() * 1e3,
        )])
    }
}
