//! Untrusted bytes as a document update or snapshot: loaded into an empty document (snapshot
//! state installed without replay) and applied to a subscribed document with content (merge
//! path, with the patches a subscriber gets: paths and expansions). Seeds include documents
//! nested to and past the default depth limit.
#![no_main]

use crdt_core::{Document, MapId, ReplicaId, UpdateKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Inspection reads what loading reads: whatever loads, inspects, and a full load's
    // events are exactly the ones inspection lists.
    let inspected = Document::inspect_update(data);
    if let Ok(loaded) = Document::load(data, ReplicaId::from_u128(1)) {
        let info = inspected.expect("what loads, inspects");
        if !matches!(info.kind, UpdateKind::ShallowSnapshot { .. }) {
            assert_eq!(info.event_count(), loaded.history_len() as u64);
            assert!(
                info.dependencies.is_empty(),
                "it loaded into an empty document"
            );
        }
        let again =
            Document::load(&loaded.encode(), ReplicaId::from_u128(2)).expect("own encoding loads");
        assert_eq!(again.to_json(), loaded.to_json());
        assert_eq!(again.version(), loaded.version());
        // Equivalent down to the bytes: conflicts, history and change metadata included.
        assert_eq!(again.encode(), loaded.encode());
    }
    let mut busy = Document::new(ReplicaId::from_u128(3));
    busy.subscribe(Box::new(|_, patches| {
        std::hint::black_box(patches);
    }));
    let list = busy
        .replace_with_new_list(MapId::ROOT, "l")
        .expect("root is a map");
    busy.list_insert(list, 0, 1).expect("in range");
    let before = (busy.to_json(), busy.version());
    if busy.apply_update(data).is_err() {
        assert_eq!((busy.to_json(), busy.version()), before);
    }
});
