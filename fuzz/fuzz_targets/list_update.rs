//! Untrusted bytes as a list update or snapshot (elements decoded with postcard).
#![no_main]

use crdt_core::{List, ReplicaId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(loaded) = List::<String>::load(data, ReplicaId::from_u128(1)) {
        let again = List::<String>::load(&loaded.encode(), ReplicaId::from_u128(2))
            .expect("own encoding loads");
        assert_eq!(again.to_vec(), loaded.to_vec());
        assert_eq!(again.encode(), loaded.encode());
    }
    let mut busy: List<String> = List::new(ReplicaId::from_u128(3));
    busy.push("kept".to_owned()).expect("in range");
    let before = busy.to_vec();
    if busy.apply_update(data).is_err() {
        assert_eq!(busy.to_vec(), before);
    }
});
