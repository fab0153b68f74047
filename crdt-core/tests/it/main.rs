//! Property tests of crdt-core: one test binary, one module per area.
//!
//! quickcheck picks a fresh seed each run; set `QUICKCHECK_TESTS` to run more cases. A failing
//! case is printed in full (shrunk where a shrinker exists).

mod causality;
mod convergence;
mod decoding;
mod harness;
mod laws;
mod text;
mod traces;
mod document;
