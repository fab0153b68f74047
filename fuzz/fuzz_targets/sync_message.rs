//! Untrusted bytes as a sync message, decoded and fed to a session and a presence set.
#![no_main]

use crdt_core::{Document, Message, PresenceSet, ReplicaId, SyncSession};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        // A decoded message re-encodes to itself.
        assert_eq!(Message::decode(&message.encode()).as_ref(), Ok(&message));
        let mut presence = PresenceSet::default();
        presence.receive(&message, 0);
        let mut doc = Document::new(ReplicaId::from_u128(1));
        let mut session = SyncSession::new(message.doc().to_owned());
        let _ = session.receive(&mut doc, message);
    }
});
