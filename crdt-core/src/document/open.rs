//! A transaction kept open across calls, for bindings whose edits arrive one call at a time.
//!
//! [`Document::transact`] takes a closure, which is what Rust callers want. A JavaScript
//! `doc.transact(fn)` cannot hand a borrowed [`Transaction`] to `fn`: each edit `fn` makes is a
//! separate call into the binding. [`OpenTransaction`] owns the document while the
//! transaction is open, so nothing else can change it in between (the type system, not a
//! runtime check, keeps the transaction's undo log true), and gives it back on commit or
//! roll back.

use super::events::Origin;
use super::transaction::{ChangeOptions, Detached, Transaction};
use super::{DocError, Document};

/// A transaction that stays open between edits: every edit takes effect at once (reads see
/// it) and all of them become one change on [`commit`](Self::commit), or are all undone by
/// [`roll_back`](Self::roll_back).
///
/// ```
/// use crdt_core::{ChangeOptions, Document, MapId, OpenTransaction, ReplicaId, Value};
/// use crdt_core::VersionVector;
///
/// let doc = Document::new(ReplicaId::from_u128(1));
/// let mut open = OpenTransaction::begin(doc, ChangeOptions::default());
/// open.edit(|tx| tx.set(MapId::ROOT, "a", 1)).unwrap();
/// // ... later, in another call:
/// open.edit(|tx| tx.set(MapId::ROOT, "b", 2)).unwrap();
/// assert_eq!(open.doc().get(MapId::ROOT, "a").unwrap(), Some(&Value::from(1)));
/// let doc = open.commit();
/// let changes = doc.changes_between(&VersionVector::new(), &doc.version()).unwrap();
/// assert_eq!(changes.len(), 1); // one change
///
/// let mut open = OpenTransaction::begin(doc, ChangeOptions::default());
/// open.edit(|tx| tx.set(MapId::ROOT, "a", 3)).unwrap();
/// let doc = open.roll_back();
/// assert_eq!(doc.get(MapId::ROOT, "a").unwrap(), Some(&Value::from(1)));
/// ```
pub struct OpenTransaction {
    doc: Document,
    /// Always `Some` between calls; taken only while an edit runs.
    state: Option<Detached>,
}

impl OpenTransaction {
    /// Opens a transaction on `doc`, which it holds until commit or roll back.
    pub fn begin(mut doc: Document, options: ChangeOptions) -> OpenTransaction {
        let state = Transaction::begin(&mut doc, options).detach();
        OpenTransaction {
            doc,
            state: Some(state),
        }
    }

    /// Runs operations in the transaction. An operation that returns `Err` has changed
    /// nothing (each checks its arguments before it changes anything); the edits before it
    /// stay, so a binding that runs one operation per `edit` keeps all or nothing per call.
    pub fn edit<R>(
        &mut self,
        edit: impl FnOnce(&mut Transaction<'_>) -> Result<R, DocError>,
    ) -> Result<R, DocError> {
        let state = self.state.take().unwrap_or_else(|| {
            // Unreachable: `state` is put back before `edit` returns, and a panic in `edit`
            // poisons nothing a caller can reach again. Begin afresh rather than panic.
            Transaction::begin(&mut self.doc, ChangeOptions::default()).detach()
        });
        let mut tx = Transaction::attach(&mut self.doc, state);
        let result = edit(&mut tx);
        self.state = Some(tx.detach());
        result
    }

    /// The document as the transaction has changed it so far, for reading.
    pub fn doc(&self) -> &Document {
        &self.doc
    }

    /// Makes the edits one change, tells the document's subscribers, and gives the document
    /// back.
    pub fn commit(mut self) -> Document {
        if let Some(state) = self.state.take() {
            let patches = Transaction::attach(&mut self.doc, state).commit();
            self.doc.notify(Origin::Local, &patches);
        }
        self.doc
    }

    /// Undoes every edit of the transaction and gives the document back as it was.
    pub fn roll_back(mut self) -> Document {
        if let Some(state) = self.state.take() {
            Transaction::attach(&mut self.doc, state).roll_back();
        }
        self.doc
    }
}
