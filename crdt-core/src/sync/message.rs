//! The messages of the sync protocol, and their versioned binary form.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ReplicaId, VersionVector};

/// The protocol version this build speaks. A peer announcing another one in its
/// [`Message::Hello`] is refused with [`SyncError::UnsupportedProtocol`].
pub const PROTOCOL_VERSION: u16 = 1;

const MAGIC: [u8; 2] = [0xC7, b'S'];

/// One message between two replicas (or a replica and a server). Every message names the
/// document it is about, so one connection carries many documents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// "I speak this protocol and have this version of the document": sent when a session
    /// starts (and again to ask for a resend). The other side answers with what it lacks.
    Hello {
        /// The document.
        doc: String,
        /// The sender's protocol version.
        protocol: u16,
        /// What the sender has.
        version: VersionVector,
    },
    /// Changes the receiver lacks: a document update (`Document::update_since`).
    Changes {
        /// The document.
        doc: String,
        /// The encoded update.
        update: Vec<u8>,
        /// The sender's version: it has at least this (so the receiver need not send it back).
        version: VersionVector,
    },
    /// "I now have this version": lets the other side stop resending what arrived.
    Have {
        /// The document.
        doc: String,
        /// What the sender has.
        version: VersionVector,
    },
    /// Ephemeral presence of one replica (cursor, selection, name...). Relayed, never stored;
    /// the newest `clock` of each replica wins and it expires after `ttl_ms` without refresh.
    Presence {
        /// The document.
        doc: String,
        /// Whose presence.
        replica: ReplicaId,
        /// Increases with each update of this replica's presence.
        clock: u64,
        /// How long it stays valid without a refresh, in milliseconds.
        ttl_ms: u64,
        /// The application's presence data; empty when the replica left.
        state: Vec<u8>,
    },
}

impl Message {
    /// The document the message is about.
    pub fn doc(&self) -> &str {
        match self {
            Message::Hello { doc, .. }
            | Message::Changes { doc, .. }
            | Message::Have { doc, .. }
            | Message::Presence { doc, .. } => doc,
        }
    }

    /// The binary form: magic, protocol version (u16 little-endian), postcard body.
    ///
    /// ```
    /// use crdt_core::{Message, VersionVector};
    ///
    /// let hello = Message::Hello { doc: "notes".into(), protocol: 1, version: VersionVector::new() };
    /// assert_eq!(Message::decode(&hello.encode()), Ok(hello));
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        // Encoding these types cannot fail: no sequence of unknown length, no custom errors.
        postcard::to_extend(self, out).unwrap_or_default()
    }

    /// Reads a message, refusing other protocol versions and malformed bytes with a typed
    /// error.
    pub fn decode(bytes: &[u8]) -> Result<Message, SyncError> {
        let [a, b, lo, hi, body @ ..] = bytes else {
            return Err(SyncError::Malformed("message shorter than its header"));
        };
        if [*a, *b] != MAGIC {
            return Err(SyncError::Malformed(
                "not a sync message (bad magic number)",
            ));
        }
        let version = u16::from_le_bytes([*lo, *hi]);
        if version != PROTOCOL_VERSION {
            return Err(SyncError::UnsupportedProtocol {
                found: version,
                supported: PROTOCOL_VERSION,
            });
        }
        match postcard::take_from_bytes::<Message>(body) {
            Ok((message, [])) => Ok(message),
            Ok(_) => Err(SyncError::Malformed("unexpected bytes after the message")),
            Err(_) => Err(SyncError::Malformed("the message body does not decode")),
        }
    }
}

/// Why a sync message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    /// The peer speaks another protocol version.
    UnsupportedProtocol {
        /// The peer's version.
        found: u16,
        /// Ours.
        supported: u16,
    },
    /// The bytes are not a well-formed message.
    Malformed(&'static str),
    /// The message is about another document than this session's.
    WrongDocument,
    /// The update in a [`Message::Changes`] could not be applied.
    Update(crate::LoadError),
    /// Too many updates wait for changes that have not arrived; they were dropped and a
    /// resend was asked for.
    BufferFull,
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::UnsupportedProtocol { found, supported } => write!(
                f,
                "the peer speaks sync protocol {found}; this build speaks {supported}"
            ),
            SyncError::Malformed(why) => write!(f, "malformed sync message: {why}"),
            SyncError::WrongDocument => f.write_str("the message is about another document"),
            SyncError::Update(error) => write!(f, "the received update was refused: {error}"),
            SyncError::BufferFull => f.write_str(
                "too many updates wait for missing changes; they were dropped and a resend asked for",
            ),
        }
    }
}

impl std::error::Error for SyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SyncError::Update(error) => Some(error),
            _ => None,
        }
    }
}
