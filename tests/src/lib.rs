//! Workspace-level integration tests live in `tests/it/`; this library is empty on purpose.
//!
//! Later issues add the deterministic simulation of replicas and server nodes here.
