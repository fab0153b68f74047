//! The sync server: not built yet.
//!
//! This crate is a placeholder so the workspace has its final shape. The sync-server issue fills
//! it with a tokio + tokio-tungstenite WebSocket server that syncs `crdt-core` documents between
//! clients, acknowledges writes only once they are durable (SQLite by default, PostgreSQL for
//! clusters), and later gossips with peer server nodes. See `README.md` and `../ROADMAP` notes in
//! `ARCHITECTURE.md`.
