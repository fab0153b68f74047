//! Simulated time: milliseconds since the start of a run, advanced only by the simulation.

/// The simulation's clock. Nodes read it through their [`Context`](super::Context); nothing in
/// the simulation reads the real time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SimClock {
    now_ms: u64,
}

impl SimClock {
    /// The current simulated time, in milliseconds.
    pub fn now(&self) -> u64 {
        self.now_ms
    }

    /// Moves time forward by `ms` (time never goes back).
    pub fn advance(&mut self, ms: u64) {
        self.now_ms = self.now_ms.saturating_add(ms);
    }
}
