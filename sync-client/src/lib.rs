//! A tokio client for the sync server, for Rust desktop apps.
//!
//! The client keeps each open document in memory and, when given a state directory, in a local
//! file rewritten after every change, so edits made offline survive a restart. It connects,
//! subscribes to the open documents, pushes local changes, applies remote ones, and reconnects
//! with exponential backoff and full jitter (`wss://` URLs connect over TLS; an untrusted
//! certificate stops the retries and shows as [`Status::Failed`]). A document is *saved* once the server acknowledged
//! (after committing to its storage) everything the document contains.
//!
//! Apps learn what happens through callbacks ([`DocHandle::on_event`]: local and remote
//! changes with their patches, acknowledgements, saved, errors), typed errors
//! ([`DocHandle::last_error`], [`DocSyncError`]) and [`DocHandle::wait_saved`], which says why
//! a document is not saved ([`WaitSavedError`]). [`Client::start`] works inside a Tokio
//! runtime (it spawns its task there) and outside one (it runs its own runtime thread), and
//! the async methods can be awaited from any executor.
//!
//! ```no_run
//! # async fn example() -> Result<(), sync_client::ClientError> {
//! use std::time::Duration;
//! use crdt_core::MapId;
//! use sync_client::{Client, ClientConfig};
//!
//! let client = Client::start(ClientConfig {
//!     state_dir: Some("./notes-state".into()),
//!     ..ClientConfig::new("ws://127.0.0.1:8080/sync")
//! });
//! let notes = client.open("notes/today")?;
//! notes.edit(|doc| doc.set(MapId::ROOT, "title", "Groceries"))?;
//! if let Err(error) = notes.wait_saved(Duration::from_secs(5)).await {
//!     eprintln!("kept locally, not on the server yet: {error}");
//! }
//! client.close().await;
//! # Ok(()) }
//! ```

mod backoff;
mod client;
mod connection;
mod document;
mod error;
mod events;
mod local_store;
mod tls;

pub use backoff::Backoff;
pub use client::{Client, ClientConfig, ClientError, ConnectError, Status};
pub use document::DocHandle;
pub use error::{DocSyncError, WaitSavedError};
pub use events::{DocEvent, Subscription};
