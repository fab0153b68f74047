//! The sync server: WebSocket connections syncing `crdt-core` documents, persisted durably.
//!
//! Data flow: [`server`] accepts TCP connections and routes HTTP ([`http`]); a WebSocket
//! upgrade becomes a [`connection`], which authenticates ([`auth`]), enforces [`limits`], and
//! forwards each document's frames to the document's actor ([`document`]). The actor applies
//! changes, persists them through [`storage`], and only then acknowledges and relays them.
//! Everything is counted in [`metrics`]. [`tls`] holds the optional certificate (reloaded
//! without restart); [`descriptors`] fits the connection cap to the file descriptor limit.

pub mod auth;
pub mod budget;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod descriptors;
pub mod document;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod storage;
pub mod tls;

pub use config::{Cli, Config, ConfigError, Limits, TlsFiles};
