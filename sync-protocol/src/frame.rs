//! Frames: the messages of the wire protocol, and their versioned binary form.

use std::fmt;

use crdt_core::sync::{Message, PROTOCOL_VERSION};
use crdt_core::{ReplicaId, VersionVector};
use serde::{Deserialize, Serialize};

use crate::status::{Access, AckStatus, ErrorCode};

/// The version of the frame format this build speaks. A frame's header carries it; `Hello` and
/// `Welcome` negotiate it for the connection.
pub const WIRE_VERSION: u16 = 1;

/// Every frame starts with these two bytes, then the wire version (little-endian `u16`).
const MAGIC: [u8; 2] = [0xC7, b'W'];

/// One message on a sync connection. Both directions use this one type, so that a presence frame
/// can be relayed to other subscribers byte for byte; each variant says who sends it, and a side
/// that receives a frame meant for the other direction treats it as [`ErrorCode::Invalid`].
///
/// ```
/// use crdt_core::VersionVector;
/// use sync_protocol::Frame;
///
/// let subscribe = Frame::Subscribe { doc: "notes/1".into(), version: VersionVector::new() };
/// assert_eq!(subscribe.doc(), Some("notes/1"));
/// assert_eq!(Frame::decode(&subscribe.encode()).unwrap(), subscribe);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// Client, first frame: the wire versions it speaks (inclusive range) and its token.
    Hello {
        /// Lowest wire version the client speaks.
        min_version: u16,
        /// Highest wire version the client speaks.
        max_version: u16,
        /// A signed token; `None` on servers that run open.
        token: Option<String>,
        /// Free-form client name and version, for logs.
        agent: String,
    },
    /// Server, answer to `Hello`: the chosen wire version and the limits the client must respect.
    Welcome {
        /// The wire version both sides use from now on.
        version: u16,
        /// Server name and version, for logs.
        server: String,
        /// Largest WebSocket message the server accepts; larger frames must be fragmented.
        max_frame: u32,
        /// Largest message after reassembling fragments.
        max_message: u32,
        /// How many documents one connection may subscribe to.
        max_documents: u32,
    },
    /// Client: a fresh token on a live connection (before the old one expires).
    Auth {
        /// The new token.
        token: String,
    },
    /// Server, answer to `Auth`: the token was accepted.
    Authorized {
        /// When the token expires, in seconds since the Unix epoch, if it does.
        expires_at: Option<u64>,
    },
    /// Client: start syncing a document, announcing what the client has.
    Subscribe {
        /// Document id.
        doc: String,
        /// The client's version of the document (empty if it has none).
        version: VersionVector,
    },
    /// Server, answer to `Subscribe`: what the server has and what the client may do. The
    /// changes the client lacks follow as `Changes`.
    Subscribed {
        /// Document id.
        doc: String,
        /// The server's version of the document.
        version: VersionVector,
        /// What the client's token allows on this document.
        access: Access,
    },
    /// Client: stop syncing a document (presence of the client's replicas is dropped).
    Unsubscribe {
        /// Document id.
        doc: String,
    },
    /// Both: changes the other side lacks, as an encoded `crdt-core` update.
    Changes {
        /// Document id.
        doc: String,
        /// Client batches are numbered so that `Ack` can name them; the server sends 0.
        batch: u64,
        /// The update (`Document::update_since`).
        update: Vec<u8>,
        /// The sender's whole version after these changes.
        version: VersionVector,
    },
    /// Both: "I now have this version" (sent after applying changes).
    Have {
        /// Document id.
        doc: String,
        /// The sender's version.
        version: VersionVector,
    },
    /// Server: the outcome of a client's `Changes` batch. `Ok` is sent only once the changes are
    /// committed to storage.
    Ack {
        /// Document id.
        doc: String,
        /// The batch number from the client's `Changes`.
        batch: u64,
        /// Whether the batch is durable, or why it was refused.
        status: AckStatus,
        /// The server's durable version after the batch (empty when the connection refused
        /// the batch before it reached the document: rate limits, read-only access).
        version: VersionVector,
    },
    /// Both: ephemeral state of one replica (cursor, user name), relayed and never stored.
    Presence {
        /// Document id.
        doc: String,
        /// Whose state this is.
        replica: ReplicaId,
        /// Increases with every update from that replica; older ones are ignored.
        clock: u64,
        /// How long the state stays valid without a refresh.
        ttl_ms: u64,
        /// Application-defined bytes; empty means the replica left.
        state: Vec<u8>,
    },
    /// Server: a request failed, or (without `doc`) the connection is about to close.
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// The document concerned, if any.
        doc: Option<String>,
        /// What went wrong, for people.
        message: String,
    },
    /// Both: one piece of an encoded frame larger than the maximum frame size.
    Fragment {
        /// Identifies the fragmented frame among the sender's others in flight.
        id: u32,
        /// Position of this piece, from 0.
        index: u32,
        /// Number of pieces.
        count: u32,
        /// The piece's bytes.
        bytes: Vec<u8>,
    },
}

impl Frame {
    /// The document this frame is about, if any.
    ///
    /// ```
    /// use sync_protocol::Frame;
    /// assert_eq!(Frame::Auth { token: "t".into() }.doc(), None);
    /// ```
    pub fn doc(&self) -> Option<&str> {
        match self {
            Frame::Subscribe { doc, .. }
            | Frame::Subscribed { doc, .. }
            | Frame::Unsubscribe { doc }
            | Frame::Changes { doc, .. }
            | Frame::Have { doc, .. }
            | Frame::Ack { doc, .. }
            | Frame::Presence { doc, .. } => Some(doc),
            Frame::Error { doc, .. } => doc.as_deref(),
            Frame::Hello { .. }
            | Frame::Welcome { .. }
            | Frame::Auth { .. }
            | Frame::Authorized { .. }
            | Frame::Fragment { .. } => None,
        }
    }

    /// A short name of the frame's kind, for logs and metrics labels.
    ///
    /// ```
    /// use sync_protocol::Frame;
    /// assert_eq!(Frame::Unsubscribe { doc: "d".into() }.kind(), "unsubscribe");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "hello",
            Frame::Welcome { .. } => "welcome",
            Frame::Auth { .. } => "auth",
            Frame::Authorized { .. } => "authorized",
            Frame::Subscribe { .. } => "subscribe",
            Frame::Subscribed { .. } => "subscribed",
            Frame::Unsubscribe { .. } => "unsubscribe",
            Frame::Changes { .. } => "changes",
            Frame::Have { .. } => "have",
            Frame::Ack { .. } => "ack",
            Frame::Presence { .. } => "presence",
            Frame::Error { .. } => "error",
            Frame::Fragment { .. } => "fragment",
        }
    }

    /// The binary form: magic, wire version, then the postcard encoding of the frame.
    ///
    /// ```
    /// use sync_protocol::Frame;
    /// let bytes = Frame::Auth { token: "t".into() }.encode();
    /// assert_eq!(&bytes[..2], &[0xC7, b'W']);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_hint());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&WIRE_VERSION.to_le_bytes());
        // Serializing these types into a Vec cannot fail: no custom serializers, no sequences of
        // unknown length.
        postcard::to_extend(self, out).unwrap_or_default()
    }

    /// Decodes a frame, refusing other versions and malformed input with a typed error. Never
    /// panics, and allocates at most in proportion to `bytes.len()`.
    ///
    /// ```
    /// use sync_protocol::{Frame, FrameError};
    /// assert!(matches!(Frame::decode(b"nonsense"), Err(FrameError::BadMagic)));
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let [a, b, lo, hi, body @ ..] = bytes else {
            return Err(FrameError::Truncated);
        };
        if [*a, *b] != MAGIC {
            return Err(FrameError::BadMagic);
        }
        let version = u16::from_le_bytes([*lo, *hi]);
        if version != WIRE_VERSION {
            return Err(FrameError::UnsupportedVersion {
                found: version,
                supported: WIRE_VERSION,
            });
        }
        match postcard::take_from_bytes::<Frame>(body) {
            Ok((frame, [])) => Ok(frame),
            Ok(_) => Err(FrameError::TrailingBytes),
            Err(_) => Err(FrameError::Malformed),
        }
    }

    /// The frame as a message for a `crdt_core::sync::SyncSession`, for the frames that carry
    /// sync state (`Subscribe`/`Subscribed` become `Hello`, plus `Changes`, `Have`, `Presence`).
    ///
    /// ```
    /// use crdt_core::VersionVector;
    /// use crdt_core::sync::Message;
    /// use sync_protocol::Frame;
    ///
    /// let frame = Frame::Have { doc: "d".into(), version: VersionVector::new() };
    /// assert!(matches!(frame.into_sync_message(), Some(Message::Have { .. })));
    /// ```
    pub fn into_sync_message(self) -> Option<Message> {
        match self {
            Frame::Subscribe { doc, version } | Frame::Subscribed { doc, version, .. } => {
                Some(Message::Hello {
                    doc,
                    protocol: PROTOCOL_VERSION,
                    version,
                })
            }
            Frame::Changes {
                doc,
                update,
                version,
                ..
            } => Some(Message::Changes {
                doc,
                update,
                version,
            }),
            Frame::Have { doc, version } => Some(Message::Have { doc, version }),
            Frame::Presence {
                doc,
                replica,
                clock,
                ttl_ms,
                state,
            } => Some(Message::Presence {
                doc,
                replica,
                clock,
                ttl_ms,
                state,
            }),
            _ => None,
        }
    }

    /// The frame that carries a sync session's outgoing message. `Hello` becomes `Subscribe`;
    /// `batch` numbers `Changes` (clients count their batches; servers pass 0).
    ///
    /// ```
    /// use crdt_core::VersionVector;
    /// use crdt_core::sync::Message;
    /// use sync_protocol::Frame;
    ///
    /// let message = Message::Have { doc: "d".into(), version: VersionVector::new() };
    /// assert_eq!(Frame::from_sync_message(message, 0).kind(), "have");
    /// ```
    pub fn from_sync_message(message: Message, batch: u64) -> Frame {
        match message {
            Message::Hello { doc, version, .. } => Frame::Subscribe { doc, version },
            Message::Changes {
                doc,
                update,
                version,
            } => Frame::Changes {
                doc,
                batch,
                update,
                version,
            },
            Message::Have { doc, version } => Frame::Have { doc, version },
            Message::Presence {
                doc,
                replica,
                clock,
                ttl_ms,
                state,
            } => Frame::Presence {
                doc,
                replica,
                clock,
                ttl_ms,
                state,
            },
        }
    }

    /// A guess of the encoded size, so that encoding allocates once.
    fn size_hint(&self) -> usize {
        let payload = match self {
            Frame::Changes { update, .. } => update.len(),
            Frame::Presence { state, .. } => state.len(),
            Frame::Fragment { bytes, .. } => bytes.len(),
            _ => 0,
        };
        payload + 64
    }
}

/// Why bytes are not a frame this build can read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than the header.
    Truncated,
    /// Not a frame of this protocol.
    BadMagic,
    /// A frame of another wire version.
    UnsupportedVersion {
        /// The version in the frame's header.
        found: u16,
        /// The version this build speaks.
        supported: u16,
    },
    /// The body does not decode as a frame.
    Malformed,
    /// Bytes left over after the frame.
    TrailingBytes,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated => f.write_str("frame shorter than its 4-byte header"),
            FrameError::BadMagic => f.write_str("not a sync frame (bad magic number)"),
            FrameError::UnsupportedVersion { found, supported } => write!(
                f,
                "frame of wire version {found}; this build speaks version {supported}"
            ),
            FrameError::Malformed => f.write_str("the frame body does not decode"),
            FrameError::TrailingBytes => f.write_str("unexpected bytes after the frame"),
        }
    }
}

impl std::error::Error for FrameError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_core::Dot;

    fn some_version() -> VersionVector {
        let mut version = VersionVector::new();
        version.observe(Dot::new(ReplicaId::from_u128(7), 42));
        version
    }

    fn every_kind() -> Vec<Frame> {
        vec![
            Frame::Hello {
                min_version: 1,
                max_version: 3,
                token: Some("token".into()),
                agent: "test".into(),
            },
            Frame::Welcome {
                version: 1,
                server: "s".into(),
                max_frame: 1 << 18,
                max_message: 1 << 26,
                max_documents: 100,
            },
            Frame::Auth { token: "t".into() },
            Frame::Authorized {
                expires_at: Some(9),
            },
            Frame::Subscribe {
                doc: "d".into(),
                version: some_version(),
            },
            Frame::Subscribed {
                doc: "d".into(),
                version: some_version(),
                access: Access::ReadOnly,
            },
            Frame::Unsubscribe { doc: "d".into() },
            Frame::Changes {
                doc: "d".into(),
                batch: 5,
                update: vec![1, 2, 3],
                version: some_version(),
            },
            Frame::Have {
                doc: "d".into(),
                version: some_version(),
            },
            Frame::Ack {
                doc: "d".into(),
                batch: 5,
                status: AckStatus::TooLarge,
                version: some_version(),
            },
            Frame::Presence {
                doc: "d".into(),
                replica: ReplicaId::from_u128(3),
                clock: 2,
                ttl_ms: 30_000,
                state: b"cursor".to_vec(),
            },
            Frame::Error {
                code: ErrorCode::RateLimited,
                doc: None,
                message: "slow down".into(),
            },
            Frame::Fragment {
                id: 1,
                index: 0,
                count: 2,
                bytes: vec![0; 10],
            },
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for frame in every_kind() {
            assert_eq!(Frame::decode(&frame.encode()), Ok(frame));
        }
    }

    #[test]
    fn sync_frames_convert_both_ways() {
        for frame in every_kind() {
            let kind = frame.kind();
            if let Some(message) = frame.clone().into_sync_message() {
                let back = Frame::from_sync_message(message, 5);
                match kind {
                    "subscribed" | "subscribe" => assert_eq!(back.kind(), "subscribe"),
                    _ => assert_eq!(back, frame),
                }
            }
        }
    }

    #[test]
    fn other_versions_and_garbage_are_refused() {
        let mut bytes = Frame::Auth { token: "t".into() }.encode();
        bytes[2] = 9;
        assert_eq!(
            Frame::decode(&bytes),
            Err(FrameError::UnsupportedVersion {
                found: 9,
                supported: WIRE_VERSION
            })
        );
        assert_eq!(Frame::decode(&[0xC7]), Err(FrameError::Truncated));
        let mut long = Frame::Auth { token: "t".into() }.encode();
        long.push(0);
        assert_eq!(Frame::decode(&long), Err(FrameError::TrailingBytes));
    }

    #[test]
    fn every_prefix_and_bit_flip_decodes_or_errors() {
        for frame in every_kind() {
            let bytes = frame.encode();
            for end in 0..bytes.len() {
                let _ = Frame::decode(&bytes[..end]);
            }
            for at in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[at] ^= 0x55;
                let _ = Frame::decode(&flipped);
            }
        }
    }

    quickcheck::quickcheck! {
        fn random_bytes_never_panic(body: Vec<u8>) -> bool {
            let mut bytes = vec![0xC7, b'W', 1, 0];
            bytes.extend_from_slice(&body);
            let _ = Frame::decode(&bytes);
            let _ = Frame::decode(&body);
            true
        }
    }
}
