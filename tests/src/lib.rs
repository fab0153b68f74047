//! Workspace-level integration tests live in `tests/it/`; this library holds what they share:
//! the deterministic simulation of replicas syncing over a faulty network ([`sim`]).

pub mod sim;
