//! Untrusted bytes as a text update or snapshot: into an empty text (the snapshot path) and
//! into a text with history (the merge path). Never panics; a refused update changes nothing;
//! what loads re-encodes to a snapshot that loads to the same text and version.
#![no_main]

use crdt_core::{ReplicaId, Text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(loaded) = Text::load(data, ReplicaId::from_u128(1)) {
        let again =
            Text::load(&loaded.encode(), ReplicaId::from_u128(2)).expect("own encoding loads");
        assert_eq!(again.to_string(), loaded.to_string());
        assert_eq!(again.version(), loaded.version());
        assert_eq!(again.encode(), loaded.encode());
    }
    let mut busy = Text::new(ReplicaId::from_u128(3));
    busy.insert(0, "some text").expect("in range");
    let before = (busy.to_string(), busy.version());
    if busy.apply_update(data).is_err() {
        assert_eq!((busy.to_string(), busy.version()), before);
    }
});
