//! Untrusted bytes as a sync message (hello, changes, have, presence), decoded and fed to a
//! session and a presence set: never panics, a decoded message re-encodes to itself, and a
//! presence message is taken in as it says.
#![no_main]

use crdt_core::{Document, Message, PresenceSet, ReplicaId, SyncSession};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        // A decoded message re-encodes to itself.
        assert_eq!(Message::decode(&message.encode()).as_ref(), Ok(&message));
        let mut presence = PresenceSet::default();
        let changed = presence.receive(&message, 0);
        if let Message::Presence { replica, state, .. } = &message {
            // A first presence is taken in (and an empty one, a departure, changes nothing).
            assert_eq!(changed, !state.is_empty());
            assert_eq!(
                presence.get(*replica).map(|p| p.state.as_slice()),
                (!state.is_empty()).then_some(state.as_slice())
            );
        }
        let mut doc = Document::new(ReplicaId::from_u128(1));
        let mut session = SyncSession::new(message.doc().to_owned());
        let _ = session.receive(&mut doc, message);
    }
});
