//! Replica identity.

use core::fmt;
use core::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The identity of one replica: a process, tab or device that makes edits.
///
/// Other libraries call this an actor id (Automerge), a client id (Yjs) or a peer id (Loro).
/// It is 128 bits so that ids drawn at random never collide in practice, and it is a plain
/// integer so that comparing and hashing cost a couple of instructions.
///
/// A replica id must never make edits from two places at once, and a replica that lost its
/// state (a crash without a saved snapshot) must take a fresh id: reusing one would hand out
/// the same [`Dot`](crate::Dot) for two different events.
///
/// In binary encodings it takes exactly 16 bytes; in human-readable ones (JSON) it is the
/// 32-digit lower-case hex form that [`Display`](fmt::Display) prints and [`FromStr`] parses.
///
/// ```
/// use crdt_core::ReplicaId;
///
/// let a = ReplicaId::from_u128(7);
/// assert_eq!(a.to_string(), "00000000000000000000000000000007");
/// assert_eq!("00000000000000000000000000000007".parse::<ReplicaId>().unwrap(), a);
/// # #[cfg(feature = "random")]
/// assert_ne!(ReplicaId::random(), ReplicaId::random());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ReplicaId(u128);

impl ReplicaId {
    /// A fresh random id (a version 4 UUID).
    #[cfg(feature = "random")]
    pub fn random() -> Self {
        ReplicaId(uuid::Uuid::new_v4().as_u128())
    }

    /// The id with the given numeric value; handy in tests and for ids assigned by a server.
    pub const fn from_u128(value: u128) -> Self {
        ReplicaId(value)
    }

    /// The numeric value of this id.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The id from its 16-byte big-endian form (for example the bytes of a UUID).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        ReplicaId(u128::from_be_bytes(bytes))
    }

    /// The 16-byte big-endian form of this id.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

impl From<uuid::Uuid> for ReplicaId {
    fn from(value: uuid::Uuid) -> Self {
        ReplicaId(value.as_u128())
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Small ids (tests) print short; random ids print in full.
        if self.0 < 0x1_0000 {
            write!(f, "R{}", self.0)
        } else {
            write!(f, "R{:032x}", self.0)
        }
    }
}

/// The text given to [`ReplicaId::from_str`] was not 32 hex digits or a hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseReplicaIdError;

impl fmt::Display for ParseReplicaIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a replica id is 32 hexadecimal digits or a hyphenated UUID")
    }
}

impl std::error::Error for ParseReplicaIdError {}

impl FromStr for ReplicaId {
    type Err = ParseReplicaIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::try_parse(s)
            .map(ReplicaId::from)
            .map_err(|_| ParseReplicaIdError)
    }
}

impl Serialize for ReplicaId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            // A fixed-size array is a tuple to serde: postcard writes the 16 bytes with no length.
            self.to_bytes().serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ReplicaId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            struct HexVisitor;
            impl Visitor<'_> for HexVisitor {
                type Value = ReplicaId;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a replica id as 32 hexadecimal digits")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<ReplicaId, E> {
                    v.parse().map_err(E::custom)
                }
            }
            deserializer.deserialize_str(HexVisitor)
        } else {
            <[u8; 16]>::deserialize(deserializer).map(ReplicaId::from_bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_form_is_sixteen_bytes() {
        let id = ReplicaId::from_u128(u128::MAX - 5);
        let bytes = postcard::to_allocvec(&id).expect("encodes");
        assert_eq!(bytes.len(), 16);
        assert_eq!(
            postcard::from_bytes::<ReplicaId>(&bytes).expect("decodes"),
            id
        );
    }

    #[test]
    fn parses_hyphenated_uuid() {
        let id: ReplicaId = "67e55044-10b1-426f-9247-bb680e5fe0c8"
            .parse()
            .expect("parses");
        assert_eq!(id.to_string(), "67e5504410b1426f9247bb680e5fe0c8");
        assert!("not an id".parse::<ReplicaId>().is_err());
    }
}
