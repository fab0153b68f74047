//! The wire protocol between sync clients and the sync server.
//!
//! A connection is one WebSocket carrying binary messages, each one [`Frame`]. The protocol is
//! pure data: no sockets, no clocks, so the server, the Rust client, the wasm bindings and the
//! deterministic simulation all share it.
//!
//! A session, from the client's side:
//!
//! 1. `Hello` with the range of wire versions the client speaks and its token; the server answers
//!    `Welcome` with the version it chose and its limits, or `Error` and a close.
//! 2. `Subscribe { doc, version }` per document; the server answers `Subscribed` with its own
//!    version and access, then `Changes` with whatever the client lacks.
//! 3. Both sides send `Changes` as they edit; the server acknowledges each client batch with
//!    `Ack` once it is durably stored (or says why it refused it).
//! 4. `Presence` frames are relayed to the document's other subscribers and never stored.
//!
//! Frames larger than the negotiated maximum travel as [`Frame::Fragment`]s and are put back
//! together by a [`Reassembler`] with size bounds and a timeout; it hands back decoded frames
//! and refuses a fragment nested in a fragmented frame.
//!
//! ```
//! use sync_protocol::{Frame, WIRE_VERSION};
//!
//! let hello = Frame::Hello {
//!     min_version: WIRE_VERSION,
//!     max_version: WIRE_VERSION,
//!     token: None,
//!     agent: "example/1.0".into(),
//! };
//! let bytes = hello.encode();
//! assert_eq!(Frame::decode(&bytes).unwrap(), hello);
//! ```

pub mod client;
mod fragment;
mod frame;
#[cfg(feature = "node")]
pub mod node;
mod status;
mod vec_map;

pub use fragment::{
    FragmentError, PIECE_OVERHEAD, Reassembled, Reassembler, split_encoded, split_into_fragments,
};
pub use frame::{Frame, FrameError, WIRE_VERSION};
pub use status::{Access, AckStatus, ErrorCode};

/// The WebSocket subprotocol name clients request and the server confirms, so that a wrong
/// endpoint fails in the HTTP handshake rather than on the first frame.
pub const SUBPROTOCOL: &str = "crdt-sync.v1";

/// The default maximum size of one WebSocket message (256 KiB); larger frames are fragmented.
pub const DEFAULT_MAX_FRAME: usize = 256 * 1024;
