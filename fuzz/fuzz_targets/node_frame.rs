//! Untrusted bytes as the frames between cluster nodes (`sync_protocol::node`). The first byte
//! picks the mode: the bytes as a whole frame (they never carry a valid tag, so this checks the
//! header and the tag check), or the bytes as a body sealed with the right secret (so the
//! decoder behind the tag sees arbitrary input, as it would from a node that holds the secret
//! but runs a broken or hostile build). Never panics; what opens seals and opens to itself.
#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use sync_protocol::node::{MAGIC, NODE_WIRE_VERSION, Sealer};

const SECRET: &[u8] = b"fuzzing cluster secret";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sealer = Sealer::new(SECRET);
    let frame = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(SECRET) else {
            return;
        };
        mac.update(rest);
        let mut frame = MAGIC.to_vec();
        frame.push(NODE_WIRE_VERSION);
        frame.extend_from_slice(&mac.finalize().into_bytes());
        frame.extend_from_slice(rest);
        frame
    };
    if let Ok(message) = sealer.open(&frame) {
        assert_eq!(sealer.open(&sealer.seal(&message)), Ok(message));
    }
});
