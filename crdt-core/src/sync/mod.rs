//! The sync protocol: pure state machines, no sockets.
//!
//! - [`Message`]: what travels (hello, changes, have, presence), with a protocol version and a
//!   checked binary form;
//! - [`SyncSession`]: one document with one peer;
//! - [`PresenceSet`] and [`LocalPresence`]: ephemeral presence, never persisted.
//!
//! Every message names its document, so one connection carries any number of documents: keep
//! one session per (connection, document) and route by [`Message::doc`].

mod message;
mod presence;
mod session;

pub use message::{Message, PROTOCOL_VERSION, SyncError};
pub use presence::{LocalPresence, PresenceEntry, PresenceSet};
pub use session::{SessionLimits, SyncSession};
