//! History compaction by causal stability: given a version every known replica has
//! acknowledged, the document keeps only the history after it (the shallow form of
//! [`Document::encode_shallow`]), so tombstone content and superseded map, register and
//! counter operations before it are dropped, while every replica that acknowledged it can
//! still merge both ways.

use super::{Document, HistoryError};
use crate::VersionVector;

impl Document {
    /// The version [`compact`](Self::compact) would trim this document's history at, given
    /// `stable`, a version every replica that will ever merge with this one has acknowledged
    /// (typically the meet of all their versions, see [`VersionVector::meet`]).
    ///
    /// It is the greatest version V included in both `stable` and this document's version
    /// such that every event here outside V descends from all of V (so
    /// [`encode_shallow`](Self::encode_shallow)`(V)` works): starting from `stable ∩ version`,
    /// an event outside V that is concurrent with part of V shrinks V to what that event had
    /// seen, until no such event is left. If the document is already shallow and V does not
    /// include its base, the base is returned (there is nothing more to trim). An empty result
    /// means there is nothing to compact.
    ///
    /// Refused with [`HistoryError::NotCausallyClosed`] if `stable ∩ version` is not a
    /// version (`stable` was not one).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut a = Document::new(ReplicaId::from_u128(1));
    /// a.set(MapId::ROOT, "k", 1).unwrap();
    /// let mut b = a.fork(ReplicaId::from_u128(2));
    /// let acknowledged = a.version();
    /// a.set(MapId::ROOT, "a", 2).unwrap();
    /// b.set(MapId::ROOT, "b", 3).unwrap();
    /// a.merge(&b).unwrap();
    /// // `b`'s write is concurrent with `a`'s: only what both had seen is stable.
    /// let stable = a.version().meet(&b.version());
    /// assert_eq!(a.stable_compaction_point(&stable).unwrap(), acknowledged);
    /// ```
    pub fn stable_compaction_point(
        &self,
        stable: &VersionVector,
    ) -> Result<VersionVector, HistoryError> {
        let mut point = stable.meet(&self.version());
        let base = self.graph.shallow_base().map(|base| base.version.clone());
        if let Some(base) = &base
            && !point.includes(base)
        {
            return Ok(base.clone());
        }
        self.check_version(&point)?;
        while !point.is_empty() {
            let Some(seen) = self.first_concurrent_with(&point)? else {
                break;
            };
            point = point.meet(&seen);
            if let Some(base) = &base
                && !point.includes(base)
            {
                return Ok(base.clone());
            }
        }
        Ok(point)
    }

    /// The version of what the first event outside `version` that does not descend from all
    /// of it had seen (its ancestors), if there is such an event.
    fn first_concurrent_with(
        &self,
        version: &VersionVector,
    ) -> Result<Option<VersionVector>, HistoryError> {
        let Some(run) = self.first_run_not_descending_from(version) else {
            return Ok(None);
        };
        let dots: Vec<_> = run
            .parents
            .as_slice()
            .iter()
            .map(|&p| self.graph.lv_to_dot(p))
            .collect();
        self.version_of_heads(&dots).map(Some)
    }

    /// Compacts the history in place at the version `stable` allows (see
    /// [`stable_compaction_point`](Self::stable_compaction_point), which computes it) and
    /// returns that version, V.
    ///
    /// `stable` must be a version every replica that will merge with this one has
    /// acknowledged (for example the meet of the versions all clients acknowledged, as a
    /// server knows from their acks), and this document must hold every event of the
    /// acknowledged versions (the server, once each client's changes up to its ack arrived):
    /// the point only accounts for the events known here, so a replica missing some should
    /// compact at the point such a holder returned rather than at the raw meet. Afterwards the document is what
    /// [`Document::load`] of [`encode_shallow`](Self::encode_shallow)`(V)` gives, with the
    /// same replica id, subscribers and version, and the same visible state: the operations
    /// within V and the metadata of their changes are gone, and only a summary of V's events stays.
    /// Replicas whose version includes V merge with it both ways as before; a change that does
    /// not descend from all of V is refused with
    /// [`LoadError::HistoryTrimmed`](crate::LoadError::HistoryTrimmed), nothing changed, and
    /// history operations needing the trimmed part return [`HistoryError::HistoryTrimmed`].
    /// Local version numbers may change (nothing public exposes them).
    ///
    /// Refused with [`HistoryError::UndoRecording`] while an
    /// [`UndoManager`](crate::UndoManager) records this document (its steps name elements by
    /// local version and replay from the base): compact before attaching one, or a clone, or
    /// [detach](crate::UndoManager::detach) it first.
    /// Nothing changes when the point is empty or already the document's base.
    ///
    /// ```
    /// use crdt_core::{Document, LoadError, MapId, ReplicaId};
    ///
    /// let mut a = Document::new(ReplicaId::from_u128(1));
    /// let text = a.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// a.text_insert(text, 0, "hello world").unwrap();
    /// a.text_delete(text, 5..11).unwrap();
    /// let mut b = a.fork(ReplicaId::from_u128(2));
    /// let mut stranger = Document::new(ReplicaId::from_u128(3));
    /// stranger.set(MapId::ROOT, "x", 1).unwrap();
    ///
    /// let before = (a.to_json(), a.version(), a.encode().len());
    /// let stable = a.version().meet(&b.version());
    /// assert_eq!(a.compact(&stable).unwrap(), stable);
    /// assert_eq!((a.to_json(), a.version()), (before.0, before.1));
    /// assert!(a.encode().len() < before.2);
    ///
    /// b.text_insert(text, 5, "!").unwrap();
    /// a.merge(&b).unwrap();
    /// assert_eq!(a.text(text).unwrap(), "hello!");
    /// assert!(matches!(a.merge(&stranger), Err(LoadError::HistoryTrimmed { .. })));
    /// ```
    pub fn compact(&mut self, stable: &VersionVector) -> Result<VersionVector, HistoryError> {
        if self.recording {
            return Err(HistoryError::UndoRecording);
        }
        let point = self.stable_compaction_point(stable)?;
        if point.is_empty() || self.shallow_base() == Some(&point) {
            return Ok(point);
        }
        let bytes = self.encode_shallow(&point)?;
        let mut fresh = self.empty_like(self.replica);
        fresh.apply_update(&bytes).map_err(HistoryError::Replay)?;
        if fresh.version() != self.version() {
            // A bug: the shallow form must hold every event. Nothing changed.
            return Err(HistoryError::Replay(crate::sequence::LoadError::Malformed(
                "the compacted document lost events",
            )));
        }
        fresh.listeners = std::mem::take(&mut self.listeners);
        fresh.next_subscription = self.next_subscription;
        fresh.recorded = std::mem::take(&mut self.recorded);
        *self = fresh;
        Ok(point)
    }
}
