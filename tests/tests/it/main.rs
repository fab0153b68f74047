//! Cross-crate integration tests: one test binary, one module per area.

mod p2p_demo;
mod sim;
