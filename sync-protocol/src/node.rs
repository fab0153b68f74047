//! What the nodes of a `sync-server` cluster say to each other, and how it is sealed (feature
//! `node`: clients never need it, and the wasm package stays without its hashing code).
//!
//! A node frame on a TCP stream between nodes is a 4-byte big-endian length, then:
//!
//! ```text
//! "CRDN" | wire version (1 byte) | HMAC-SHA256(cluster secret, body) (32 bytes) | body
//! ```
//!
//! where `body` is the postcard encoding of a [`NodeMessage`]. A frame whose tag does not match
//! was not sent by a holder of the cluster secret and is refused before anything in it is
//! decoded. The tag does not stop a replay of a captured frame: replayed changes are harmless
//! to CRDTs, and a replayed membership message carries an old incarnation that SWIM ignores.

use crdt_core::VersionVector;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A node's stable id (random at first start, then kept in the data directory).
///
/// ```
/// use sync_protocol::node::NodeId;
/// let id: NodeId = "00000000000000ff".parse().unwrap();
/// assert_eq!(id, NodeId(255));
/// assert_eq!(id.to_string(), "00000000000000ff");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for NodeId {
    type Err = String;

    fn from_str(text: &str) -> Result<NodeId, String> {
        u64::from_str_radix(text.trim(), 16)
            .ok()
            .filter(|id| *id != 0)
            .map(NodeId)
            .ok_or_else(|| format!("a node id is 1 to 16 hex digits, not zero; got {text:?}"))
    }
}

/// The first bytes of every node frame.
pub const MAGIC: &[u8; 4] = b"CRDN";

/// The version of the node-to-node format this program speaks. A frame with another version is
/// refused with a log line naming both (nodes of one cluster must run compatible versions).
pub const NODE_WIRE_VERSION: u8 = 1;

/// Magic, version and tag.
const HEADER: usize = 4 + 1 + 32;

/// One message from a node, with who sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMessage {
    /// The sending node's id.
    pub from: NodeId,
    /// The address the sender's cluster port listens on: with `from`, what a receiver checks
    /// against the membership (a node claiming another's id from elsewhere is refused).
    pub from_addr: std::net::SocketAddr,
    /// What it says.
    pub body: NodeBody,
}

/// What one node tells another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeBody {
    /// A SWIM message, produced and read by `foca`.
    Swim(Vec<u8>),
    /// The sender holds these documents live (`holding`) or no longer does: where to push.
    Holding {
        /// The documents.
        docs: Vec<String>,
        /// Whether it now holds or dropped them.
        holding: bool,
    },
    /// Changes to a document the sender accepted from its clients and stored (eager push), or
    /// the answer to a [`NodeBody::Have`].
    Changes {
        /// The document.
        doc: String,
        /// An encoded `crdt-core` update.
        update: Vec<u8>,
        /// The sender's durable version after these changes.
        version: VersionVector,
        /// When the sender stored them (milliseconds since the Unix epoch, its clock): the
        /// receiver's replication-lag histogram. Clocks of different machines differ; on one
        /// machine the figure is exact.
        stored_at_ms: u64,
    },
    /// The sender holds the document at this version (it just loaded it, or anti-entropy
    /// found it differs): send what it lacks, and ask back if it holds what the receiver lacks.
    Have {
        /// The document.
        doc: String,
        /// The sender's version.
        version: VersionVector,
    },
    /// Anti-entropy, first step: the root hash over every stored document's version.
    Digest {
        /// The root hash.
        root: u64,
    },
    /// Anti-entropy, the answer when the roots differ: the hash of each bucket of documents.
    Buckets {
        /// One hash per bucket, in bucket order.
        hashes: Vec<u64>,
    },
    /// Anti-entropy, for each bucket whose hashes differ: its documents with the hash of their
    /// versions, so the receiver can tell which documents to reconcile.
    BucketDocs {
        /// The bucket.
        bucket: u16,
        /// Its documents and the hashes of their versions.
        docs: Vec<(String, u64)>,
    },
}

/// Why a node frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeFrameError {
    /// Not a node frame (wrong magic, or shorter than the header).
    NotANodeFrame,
    /// A node frame of another version of this format.
    Version(u8),
    /// The tag does not match: the sender does not hold the cluster secret.
    BadTag,
    /// The tag matched but the body does not decode (a bug or a different build).
    Body(String),
}

impl std::fmt::Display for NodeFrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeFrameError::NotANodeFrame => write!(f, "not a cluster node frame"),
            NodeFrameError::Version(found) => write!(
                f,
                "cluster node frame of wire version {found}; this node speaks version {NODE_WIRE_VERSION}"
            ),
            NodeFrameError::BadTag => write!(
                f,
                "cluster node frame with a bad authentication tag (the sender does not have this cluster's secret)"
            ),
            NodeFrameError::Body(why) => write!(f, "cluster node frame does not decode: {why}"),
        }
    }
}

impl std::error::Error for NodeFrameError {}

/// Seals and opens node frames with the cluster secret.
///
/// ```
/// use sync_protocol::node::{NodeBody, NodeId, NodeMessage, Sealer};
///
/// let sealer = Sealer::new(b"a long shared cluster secret");
/// let message = NodeMessage {
///     from: NodeId(7),
///     from_addr: "127.0.0.1:7000".parse().unwrap(),
///     body: NodeBody::Have { doc: "notes".into(), version: Default::default() },
/// };
/// let frame = sealer.seal(&message);
/// assert_eq!(sealer.open(&frame), Ok(message));
/// assert!(Sealer::new(b"another secret").open(&frame).is_err());
/// ```
#[derive(Clone)]
pub struct Sealer {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer { .. }")
    }
}

impl Sealer {
    /// A sealer for `secret` (any length; HMAC hashes long keys).
    pub fn new(secret: &[u8]) -> Sealer {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        let key = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Sealer { key }
    }

    /// The frame for `message` (without the length prefix).
    pub fn seal(&self, message: &NodeMessage) -> Vec<u8> {
        // Encoding a message of owned data into a Vec cannot fail.
        let body = postcard::to_allocvec(message).unwrap_or_default();
        let mut mac = self.key.clone();
        mac.update(&body);
        let tag = mac.finalize().into_bytes();
        let mut frame = Vec::with_capacity(HEADER + body.len());
        frame.extend_from_slice(MAGIC);
        frame.push(NODE_WIRE_VERSION);
        frame.extend_from_slice(&tag);
        frame.extend_from_slice(&body);
        frame
    }

    /// Checks a frame's tag (in constant time), then decodes it.
    pub fn open(&self, frame: &[u8]) -> Result<NodeMessage, NodeFrameError> {
        if frame.len() < HEADER || &frame[..4] != MAGIC {
            return Err(NodeFrameError::NotANodeFrame);
        }
        if frame[4] != NODE_WIRE_VERSION {
            return Err(NodeFrameError::Version(frame[4]));
        }
        let (tag, body) = frame[5..].split_at(32);
        let mut mac = self.key.clone();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| NodeFrameError::BadTag)?;
        postcard::from_bytes(body).map_err(|error| NodeFrameError::Body(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> NodeMessage {
        NodeMessage {
            from: NodeId(1),
            from_addr: "127.0.0.2:9000".parse().unwrap_or_else(|_| unreachable!()),
            body: NodeBody::Changes {
                doc: "d".into(),
                update: vec![1, 2, 3],
                version: VersionVector::new(),
                stored_at_ms: 5,
            },
        }
    }

    #[test]
    fn a_changed_byte_anywhere_is_refused() {
        let sealer = Sealer::new(b"secret");
        let frame = sealer.seal(&message());
        for i in 0..frame.len() {
            let mut bent = frame.clone();
            bent[i] ^= 0x40;
            assert!(
                sealer.open(&bent).is_err(),
                "byte {i} changed and still accepted"
            );
        }
        assert_eq!(
            sealer.open(&frame[..HEADER - 1]),
            Err(NodeFrameError::NotANodeFrame)
        );
    }

    /// Nodes of different builds must understand each other's version-1 frames: this frame
    /// was sealed by the first build and must keep opening (and sealing to the same bytes).
    #[test]
    fn version_1_frames_keep_their_bytes() {
        let sealer = Sealer::new(b"golden secret");
        let frame = sealer.seal(&message());
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN_V1);
        let bytes: Vec<u8> = (0..GOLDEN_V1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&GOLDEN_V1[i..i + 2], 16).unwrap_or_default())
            .collect();
        assert_eq!(sealer.open(&bytes), Ok(message()));
    }

    const GOLDEN_V1: &str = "4352444e01f48e695cd5512e1d9d72065f995870577530be4fb9d4885decbe0449257d8b0001007f000002a846020164030102030005";

    #[test]
    fn another_version_says_so() {
        let sealer = Sealer::new(b"secret");
        let mut frame = sealer.seal(&message());
        frame[4] = 9;
        assert_eq!(sealer.open(&frame), Err(NodeFrameError::Version(9)));
    }
}
