//! The simulation's only source of randomness: a small seeded generator (SplitMix64), so a
//! seed names one run exactly. Never use thread-local or OS randomness in the simulation.

/// A deterministic pseudo-random generator (SplitMix64: one 64-bit state, one multiply-xorshift
/// finaliser per output; statistically sound for simulation, not for cryptography).
#[derive(Clone, Debug)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng { state: seed }
    }

    /// An independent generator derived from this one's seed and a `stream` number, without
    /// advancing this one: each node draws from its own stream, so adding a draw in one node
    /// does not shift what every other node draws.
    pub fn fork(&self, stream: u64) -> SimRng {
        let mut mixer = SimRng::new(self.state ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        SimRng::new(mixer.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0). The modulo bias is negligible for the
    /// small bounds a simulation uses.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    /// An index in `0..len` (0 when `len` is 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
}

#[cfg(test)]
mod tests {
    use super::SimRng;

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (SimRng::new(42), SimRng::new(42));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(SimRng::new(1).next_u64(), SimRng::new(2).next_u64());
    }

    #[test]
    fn forks_are_independent_streams() {
        let root = SimRng::new(7);
        let (mut a, mut b) = (root.fork(1), root.fork(2));
        assert_ne!(a.next_u64(), b.next_u64());
        assert_eq!(root.fork(1).next_u64(), root.fork(1).next_u64());
    }

    #[test]
    fn bounds_hold() {
        let mut rng = SimRng::new(3);
        for _ in 0..1000 {
            assert!(rng.below(10) < 10);
            let x = rng.between(5, 7);
            assert!((5..=7).contains(&x));
        }
        assert_eq!(rng.below(0), 0);
    }
}
