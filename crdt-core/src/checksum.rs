//! The CRC-32 (IEEE) that guards every encoding against corruption.
//!
//! Natively it is `crc32fast` (SIMD). In wasm, crc32fast's portable path carries 16 KB of
//! lookup tables that no compressor can shrink (8% of the npm package's gzipped size), so
//! wasm builds use the one-table form below: 1 KB, built at compile time, byte-at-a-time
//! (a few hundred MB/s, far above what loading a document needs). Both give the same
//! checksum; a test compares them.

/// The CRC-32 of `bytes`.
#[cfg(not(target_family = "wasm"))]
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// The CRC-32 of `bytes`.
#[cfg(target_family = "wasm")]
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    crc32_small(bytes)
}

/// The reflected IEEE polynomial.
const POLYNOMIAL: u32 = 0xEDB8_8320;

/// The CRC of every byte value.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
};

/// CRC-32 with one 256-entry table.
#[cfg_attr(not(target_family = "wasm"), allow(dead_code))] // natively, only the test uses it
pub(crate) fn crc32_small(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in bytes {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::crc32_small;

    #[test]
    fn the_small_crc_is_the_standard_one() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32_small(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_small(b""), 0);
        let mut data = Vec::new();
        let mut seed = 1u32;
        for len in 0..2000 {
            assert_eq!(crc32_small(&data), crc32fast::hash(&data), "length {len}");
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            data.push((seed >> 16) as u8);
        }
    }
}
