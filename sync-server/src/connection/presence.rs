//! What one connection may say in presence: a bounded number of live entries and bytes over
//! all its documents.
//!
//! Why here and not in the documents: a connection talks to up to `max_documents_per_connection`
//! documents, each in its own actor, and only the connection sees everything it sends. Four
//! connections sending 240 KiB presence under a fresh replica id each time took a server to
//! 524 MiB in 20 s. The ledger counts what the connection published and has not withdrawn or
//! let expire, and refuses what would go over; documents then enforce their own caps and who
//! owns a replica id (`document::presence`). The count is conservative: an entry a document
//! refused still counts here until it expires or the connection withdraws it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crdt_core::ReplicaId;

/// Why a presence frame was refused by its connection's ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LedgerRefusal {
    /// The connection already holds its maximum of live entries.
    TooManyEntries,
    /// The entry would take the connection over its presence bytes.
    TooManyBytes,
}

#[derive(Debug)]
struct Entry {
    bytes: usize,
    expires_at: Instant,
}

/// The live presence entries of one connection, by document and replica.
#[derive(Debug)]
pub(super) struct PresenceLedger {
    max_entries: usize,
    max_bytes: usize,
    entries: HashMap<(String, ReplicaId), Entry>,
    bytes: usize,
}

impl PresenceLedger {
    pub(super) fn new(max_entries: usize, max_bytes: usize) -> PresenceLedger {
        PresenceLedger {
            max_entries,
            max_bytes,
            entries: HashMap::new(),
            bytes: 0,
        }
    }

    /// Records a presence frame of `bytes` bytes living `ttl`, or refuses it. A leaving frame
    /// (empty state) is always allowed and frees the entry.
    pub(super) fn admit(
        &mut self,
        doc: &str,
        replica: ReplicaId,
        bytes: usize,
        ttl: Duration,
        leaving: bool,
        now: Instant,
    ) -> Result<(), LedgerRefusal> {
        self.expire(now);
        let key = (doc.to_owned(), replica);
        if leaving {
            if let Some(entry) = self.entries.remove(&key) {
                self.bytes -= entry.bytes;
            }
            return Ok(());
        }
        let replaced = self.entries.get(&key).map(|e| e.bytes);
        if replaced.is_none() && self.entries.len() >= self.max_entries {
            return Err(LedgerRefusal::TooManyEntries);
        }
        let total = self.bytes - replaced.unwrap_or(0) + bytes;
        if total > self.max_bytes {
            return Err(LedgerRefusal::TooManyBytes);
        }
        self.bytes = total;
        self.entries.insert(
            key,
            Entry {
                bytes,
                expires_at: now + ttl,
            },
        );
        Ok(())
    }

    /// The connection left `doc`: its entries there ended.
    pub(super) fn forget_document(&mut self, doc: &str) {
        let bytes = &mut self.bytes;
        self.entries.retain(|(d, _), entry| {
            let keep = d != doc;
            if !keep {
                *bytes -= entry.bytes;
            }
            keep
        });
    }

    fn expire(&mut self, now: Instant) {
        let bytes = &mut self.bytes;
        self.entries.retain(|_, entry| {
            let keep = entry.expires_at > now;
            if !keep {
                *bytes -= entry.bytes;
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_bytes_are_bounded_and_freed() {
        let mut ledger = PresenceLedger::new(2, 100);
        let now = Instant::now();
        let ttl = Duration::from_secs(10);
        let r = ReplicaId::from_u128;
        assert_eq!(ledger.admit("a", r(1), 60, ttl, false, now), Ok(()));
        assert_eq!(
            ledger.admit("a", r(2), 60, ttl, false, now),
            Err(LedgerRefusal::TooManyBytes)
        );
        // Replacing an entry counts its new size only.
        assert_eq!(ledger.admit("a", r(1), 90, ttl, false, now), Ok(()));
        assert_eq!(ledger.admit("b", r(1), 10, ttl, false, now), Ok(()));
        assert_eq!(
            ledger.admit("c", r(3), 0, ttl, false, now),
            Err(LedgerRefusal::TooManyEntries)
        );
        assert_eq!(ledger.admit("a", r(1), 0, ttl, true, now), Ok(()));
        assert_eq!(ledger.admit("c", r(3), 50, ttl, false, now), Ok(()));
        ledger.forget_document("c");
        assert_eq!(ledger.bytes, 10);
        assert_eq!(ledger.admit("d", r(4), 90, ttl, false, now), Ok(()));
        // Expiry frees too.
        let later = now + ttl;
        assert_eq!(ledger.admit("e", r(5), 100, ttl, false, later), Ok(()));
    }
}
