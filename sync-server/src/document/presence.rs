//! A document's presence: who is here (one entry per replica id), bounded in entries and bytes,
//! and owned by the connection that published it.
//!
//! Why owners: presence frames are relayed byte for byte and the newest clock wins, so without
//! an owner any subscriber could overwrite or remove another's presence by reusing its replica
//! id with a higher clock. A replica id belongs to the connection whose entry holds it, until
//! that entry leaves, expires, or the connection unsubscribes. Why caps: every new subscriber is
//! sent every live entry, and entries live up to five minutes without a refresh.

use std::collections::BTreeMap;

use bytes::Bytes;
use crdt_core::ReplicaId;

use super::state::ConnId;

/// The presence a document holds at most.
#[derive(Clone, Copy, Debug)]
pub struct PresenceLimits {
    /// Live entries (replica ids).
    pub entries: usize,
    /// Bytes of their encoded frames.
    pub bytes: usize,
}

/// A presence frame as a connection hands it to its document: the encoded frame (relayed as
/// is) and what the document needs to know of it.
#[derive(Debug)]
pub struct PresenceFrame {
    /// The encoded frame.
    pub frame: Bytes,
    /// Whose presence.
    pub replica: ReplicaId,
    /// Its clock (older ones are dropped).
    pub clock: u64,
    /// Its time to live.
    pub ttl_ms: u64,
    /// Whether it says the replica left.
    pub leaving: bool,
}

/// Why a document refused a presence frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceRefusal {
    /// Another connection owns this replica id here.
    NotOwner,
    /// The document holds its maximum of entries.
    TooManyEntries,
    /// The entry would take the document over its presence bytes.
    TooManyBytes,
}

/// One live entry.
#[derive(Debug)]
pub(super) struct PresenceSlot {
    pub conn: ConnId,
    pub clock: u64,
    pub expires_at_ms: u64,
    pub frame: Bytes,
}

/// The live entries of one document.
#[derive(Debug)]
pub(super) struct PresenceTable {
    limits: PresenceLimits,
    slots: BTreeMap<ReplicaId, PresenceSlot>,
    bytes: usize,
}

impl PresenceTable {
    pub(super) fn new(limits: PresenceLimits) -> PresenceTable {
        PresenceTable {
            limits,
            slots: BTreeMap::new(),
            bytes: 0,
        }
    }

    /// Applies a frame from `conn`. `Ok(true)`: taken, relay it; `Ok(false)`: older than what is
    /// here, or a leave for no entry (nothing to relay).
    pub(super) fn update(
        &mut self,
        conn: ConnId,
        presence: &PresenceFrame,
        now_ms: u64,
    ) -> Result<bool, PresenceRefusal> {
        let existing = self.slots.get(&presence.replica);
        if let Some(slot) = existing {
            if slot.conn != conn {
                return Err(PresenceRefusal::NotOwner);
            }
            if slot.clock >= presence.clock {
                return Ok(false);
            }
        }
        if presence.leaving {
            return Ok(self.remove(presence.replica).is_some());
        }
        let replaced = existing.map(|slot| slot.frame.len());
        if replaced.is_none() && self.slots.len() >= self.limits.entries {
            return Err(PresenceRefusal::TooManyEntries);
        }
        let bytes = self.bytes - replaced.unwrap_or(0) + presence.frame.len();
        if bytes > self.limits.bytes {
            return Err(PresenceRefusal::TooManyBytes);
        }
        self.bytes = bytes;
        self.slots.insert(
            presence.replica,
            PresenceSlot {
                conn,
                clock: presence.clock,
                expires_at_ms: now_ms.saturating_add(presence.ttl_ms),
                frame: presence.frame.clone(),
            },
        );
        Ok(true)
    }

    /// Removes an entry.
    pub(super) fn remove(&mut self, replica: ReplicaId) -> Option<PresenceSlot> {
        let slot = self.slots.remove(&replica)?;
        self.bytes -= slot.frame.len();
        Some(slot)
    }

    /// Replica ids whose entries ran out of time.
    pub(super) fn expired(&self, now_ms: u64) -> Vec<ReplicaId> {
        self.slots
            .iter()
            .filter(|(_, slot)| slot.expires_at_ms <= now_ms)
            .map(|(replica, _)| *replica)
            .collect()
    }

    /// Replica ids `conn` owns.
    pub(super) fn owned_by(&self, conn: ConnId) -> Vec<ReplicaId> {
        self.slots
            .iter()
            .filter(|(_, slot)| slot.conn == conn)
            .map(|(replica, _)| *replica)
            .collect()
    }

    /// The frames of the live entries (for a new subscriber).
    pub(super) fn live(&self, now_ms: u64) -> impl Iterator<Item = &Bytes> {
        self.slots
            .values()
            .filter(move |slot| slot.expires_at_ms > now_ms)
            .map(|slot| &slot.frame)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes of the live entries' frames (part of the document's memory estimate).
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(replica: u128, clock: u64, len: usize) -> PresenceFrame {
        PresenceFrame {
            frame: Bytes::from(vec![0; len]),
            replica: ReplicaId::from_u128(replica),
            clock,
            ttl_ms: 1000,
            leaving: len == 0,
        }
    }

    #[test]
    fn owners_entries_and_bytes() {
        let mut table = PresenceTable::new(PresenceLimits {
            entries: 2,
            bytes: 100,
        });
        assert_eq!(table.update(1, &frame(7, 1, 40), 0), Ok(true));
        assert_eq!(
            table.update(2, &frame(7, 9, 10), 0),
            Err(PresenceRefusal::NotOwner)
        );
        assert_eq!(
            table.update(2, &frame(7, 9, 0), 0),
            Err(PresenceRefusal::NotOwner)
        );
        assert_eq!(table.update(1, &frame(7, 1, 40), 0), Ok(false), "stale");
        assert_eq!(
            table.update(2, &frame(8, 1, 61), 0),
            Err(PresenceRefusal::TooManyBytes)
        );
        assert_eq!(table.update(2, &frame(8, 1, 60), 0), Ok(true));
        assert_eq!(
            table.update(3, &frame(9, 1, 1), 0),
            Err(PresenceRefusal::TooManyEntries)
        );
        assert_eq!(table.bytes(), 100);
        // The owner leaves: the id is free, and so are its bytes.
        assert_eq!(table.update(1, &frame(7, 2, 0), 0), Ok(true));
        assert_eq!(table.bytes(), 60);
        assert_eq!(table.update(3, &frame(7, 1, 10), 0), Ok(true));
        assert_eq!(table.owned_by(3), vec![ReplicaId::from_u128(7)]);
        assert_eq!(table.expired(1000).len(), 2);
    }
}
