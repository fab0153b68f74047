//! Untrusted bytes as the sync server's wire frames: the first byte picks whether they are one
//! frame or a sequence of fragments for the reassembler. Never panics; a decoded frame
//! re-encodes to itself; the reassembler never buffers more than its bound and never hands back
//! a fragment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sync_protocol::{Frame, Reassembler, split_encoded};

const MAX_MESSAGE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(frame) = Frame::decode(rest) {
            let encoded = frame.encode();
            assert_eq!(Frame::decode(&encoded).as_ref(), Ok(&frame));
            if matches!(frame, Frame::Fragment { .. }) {
                return; // a fragment is not split again
            }
            // Splitting and reassembling gives the frame back.
            let max_frame = 64 + usize::from(mode);
            let mut reassembler = Reassembler::new(usize::MAX, 1, 1000);
            let mut whole = None;
            for piece in split_encoded(encoded.clone(), max_frame, 7) {
                assert!(piece.len() <= max_frame || piece == encoded);
                match Frame::decode(&piece) {
                    Ok(Frame::Fragment {
                        id,
                        index,
                        count,
                        bytes,
                    }) => {
                        whole = reassembler
                            .push(id, index, count, bytes, 0)
                            .ok()
                            .flatten()
                            .map(|whole| whole.encoded);
                    }
                    Ok(other) => whole = Some(other.encode()),
                    Err(error) => panic!("a piece does not decode: {error}"),
                }
            }
            assert_eq!(whole.as_deref(), Some(encoded.as_slice()));
        }
    } else {
        // Chunks of the input as fragments with ids, indexes and counts taken from the bytes.
        let mut reassembler = Reassembler::new(MAX_MESSAGE, 2, 50);
        for (now, chunk) in rest.chunks(16).enumerate() {
            let [id, index, count, payload @ ..] = chunk else {
                break;
            };
            let bytes = payload.repeat(usize::from(*count % 64) + 1);
            let result = reassembler.push(
                u32::from(*id % 4),
                u32::from(*index % 8),
                u32::from(*count % 8),
                bytes,
                now as u64 * 10,
            );
            if let Ok(Some(whole)) = result {
                assert!(whole.encoded.len() <= MAX_MESSAGE);
                assert!(!matches!(whole.frame, Frame::Fragment { .. }));
            }
            assert!(reassembler.buffered_bytes() <= MAX_MESSAGE);
            assert!(reassembler.in_flight() <= 2);
        }
    }
});
