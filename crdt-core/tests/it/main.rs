//! Property tests of crdt-core: one test binary, one module per area.
//!
//! quickcheck picks a fresh seed each run; set `QUICKCHECK_TESTS` to run more cases. A failing
//! case is printed in full (shrunk where a shrinker exists).

mod causality;
mod codec_golden;
mod compaction;
mod convergence;
mod decoding;
mod deep;
mod delivery;
mod document;
mod harness;
mod history;
mod identity;
mod inspect;
mod laws;
mod named;
mod one_by_one;
mod op_based;
mod shallow;
mod sync;
mod text;
mod traces;
