//! Live documents: each owned by one actor task that applies changes, persists them, and only
//! then acknowledges and relays them.
//!
//! - [`state`]: the synchronous logic of one document and its subscribers;
//! - [`presence`]: who is here, bounded, each replica id owned by one connection;
//! - [`actor`]: the task around it, which talks to storage and to connections' queues;
//! - [`registry`]: finds or starts a document's actor, evicts idle ones, shuts all down.

pub mod actor;
pub mod presence;
pub mod registry;
pub mod state;

pub use actor::{ConnHandle, DocCommand};
pub use presence::{PresenceFrame, PresenceLimits, PresenceRefusal};
pub use registry::Registry;
pub use state::{ConnId, DocumentLimits, DocumentState, LoadReport, Outbox};
