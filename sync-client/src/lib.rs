//! A tokio client for the sync server (being written: see the sync-server issue).
