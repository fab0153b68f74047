//! Presence (awareness): who is here and where, ephemeral and never stored.

use std::collections::HashMap;

use super::message::Message;
use crate::ReplicaId;

/// One replica's presence as last heard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceEntry {
    /// Its clock (higher is newer).
    pub clock: u64,
    /// The application's data (a cursor, a name, a colour...).
    pub state: Vec<u8>,
    /// When it expires, in the caller's milliseconds.
    pub expires_at: u64,
}

/// The presence of the other replicas of one document, with expiry.
///
/// The core keeps no clock: pass the current time (any monotonic milliseconds) to
/// [`receive`](Self::receive) and [`expire`](Self::expire).
///
/// ```
/// use crdt_core::{Message, PresenceSet, ReplicaId};
///
/// let mut presence = PresenceSet::default();
/// let alice = ReplicaId::from_u128(1);
/// let message = Message::Presence { doc: "d".into(), replica: alice, clock: 1, ttl_ms: 30_000, state: b"cursor 4".to_vec() };
/// assert!(presence.receive(&message, 1_000));
/// assert_eq!(presence.get(alice).map(|p| p.state.as_slice()), Some(&b"cursor 4"[..]));
/// assert_eq!(presence.expire(40_000), vec![alice]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct PresenceSet {
    entries: HashMap<ReplicaId, PresenceEntry>,
}

impl PresenceSet {
    /// Takes in a presence message received at `now`; returns true if it changed what is
    /// known (older clocks and other message kinds change nothing). Empty state means the
    /// replica left.
    pub fn receive(&mut self, message: &Message, now: u64) -> bool {
        let Message::Presence {
            replica,
            clock,
            ttl_ms,
            state,
            ..
        } = message
        else {
            return false;
        };
        if self
            .entries
            .get(replica)
            .is_some_and(|known| known.clock >= *clock)
        {
            return false;
        }
        if state.is_empty() {
            return self.entries.remove(replica).is_some();
        }
        self.entries.insert(
            *replica,
            PresenceEntry {
                clock: *clock,
                state: state.clone(),
                expires_at: now.saturating_add(*ttl_ms),
            },
        );
        true
    }

    /// Removes the presences not refreshed in time; returns whose.
    pub fn expire(&mut self, now: u64) -> Vec<ReplicaId> {
        let mut gone: Vec<ReplicaId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at <= now)
            .map(|(r, _)| *r)
            .collect();
        gone.sort();
        for replica in &gone {
            self.entries.remove(replica);
        }
        gone
    }

    /// Removes a replica's presence (it disconnected).
    pub fn remove(&mut self, replica: ReplicaId) -> bool {
        self.entries.remove(&replica).is_some()
    }

    /// A replica's presence.
    pub fn get(&self, replica: ReplicaId) -> Option<&PresenceEntry> {
        self.entries.get(&replica)
    }

    /// Everyone present.
    pub fn iter(&self) -> impl Iterator<Item = (ReplicaId, &PresenceEntry)> {
        self.entries.iter().map(|(r, e)| (*r, e))
    }

    /// How many replicas are present.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nobody is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Builds this replica's presence messages with an increasing clock.
///
/// Deliberately not `Clone`: two copies would announce the same replica with the same clock
/// values, and receivers, keeping the latest clock per replica, would show one copy's state
/// and drop the other's. Another replica makes its own with [`LocalPresence::new`].
///
/// ```
/// use crdt_core::ReplicaId;
/// use crdt_core::sync::LocalPresence;
///
/// let mut presence = LocalPresence::new(ReplicaId::from_u128(1), 10_000);
/// let _here = presence.update("notes", b"cursor at 3".to_vec());
/// let _gone = presence.leave("notes");
/// ```
#[derive(Debug)]
pub struct LocalPresence {
    replica: ReplicaId,
    clock: u64,
    ttl_ms: u64,
}

impl LocalPresence {
    /// Presence of `replica`, valid for `ttl_ms` after each update.
    pub fn new(replica: ReplicaId, ttl_ms: u64) -> LocalPresence {
        LocalPresence {
            replica,
            clock: 0,
            ttl_ms,
        }
    }

    /// A message announcing `state` for document `doc` (send it again before the ttl runs out
    /// to stay present).
    pub fn update(&mut self, doc: &str, state: Vec<u8>) -> Message {
        self.clock += 1;
        Message::Presence {
            doc: doc.to_owned(),
            replica: self.replica,
            clock: self.clock,
            ttl_ms: self.ttl_ms,
            state,
        }
    }

    /// A message saying this replica left `doc`.
    pub fn leave(&mut self, doc: &str) -> Message {
        self.update(doc, Vec::new())
    }
}
