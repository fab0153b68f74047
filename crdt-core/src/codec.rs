//! The versioned binary form of the state-based types and their sync messages.
//!
//! Every encoding starts with a two-byte header, the format version and a kind byte naming the
//! type, followed by the [postcard](https://docs.rs/postcard) form of the value (varints, no
//! field names). Decoding checks the header, refuses trailing bytes, and checks every invariant
//! of the type, so bytes from a peer either give a valid state or a [`DecodeError`].
//!
//! The serde implementations are available on their own for embedding these types in other
//! formats; they check the same invariants, but only this envelope carries a version.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state::{
    AwSet, DeltaMessage, DwFlag, EwFlag, GCounter, GSet, LwwRegister, MvRegister, OrMap, PNCounter,
    RwSet, StateCrdt, TwoPSet,
};
use crate::{CausalContext, VersionVector};

/// The version of the format written by [`Encode::encode`]; the only one [`Encode::decode`]
/// reads so far.
pub const FORMAT_VERSION: u8 = 1;

/// What an encoding holds: its second header byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Kind {
    /// A [`VersionVector`].
    VersionVector = 1,
    /// A [`CausalContext`].
    CausalContext = 2,
    /// A [`GCounter`].
    GCounter = 3,
    /// A [`PNCounter`].
    PNCounter = 4,
    /// A [`LwwRegister`].
    LwwRegister = 5,
    /// A [`MvRegister`].
    MvRegister = 6,
    /// A [`GSet`].
    GSet = 7,
    /// A [`TwoPSet`].
    TwoPSet = 8,
    /// An [`AwSet`].
    AwSet = 9,
    /// An [`RwSet`].
    RwSet = 10,
    /// An [`EwFlag`].
    EwFlag = 11,
    /// A [`DwFlag`].
    DwFlag = 12,
    /// An [`OrMap`].
    OrMap = 13,
    /// A [`DeltaMessage`].
    DeltaMessage = 14,
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the two-byte header.
    MissingHeader,
    /// Written by a format version this build does not read (probably a newer release).
    UnsupportedVersion {
        /// The version found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The bytes hold another kind of value.
    WrongKind {
        /// The kind asked for.
        expected: Kind,
        /// The kind byte found.
        found: u8,
    },
    /// The body is not a well-formed encoding of the type, or it breaks one of the type's
    /// invariants (postcard cannot say which; the serde form used with a self-describing format
    /// such as JSON names the invariant).
    Malformed(postcard::Error),
    /// A complete value was followed by extra bytes.
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::MissingHeader => {
                f.write_str("input too short: the 2-byte header is missing")
            }
            DecodeError::UnsupportedVersion { found, supported } => write!(
                f,
                "format version {found} is not supported (this build reads version {supported}); \
                 it was probably written by a newer release"
            ),
            DecodeError::WrongKind { expected, found } => {
                write!(
                    f,
                    "expected a {expected:?} (kind {}), found kind {found}",
                    *expected as u8
                )
            }
            DecodeError::Malformed(postcard::Error::SerdeDeCustom) => {
                f.write_str("the bytes describe a value that breaks the type's invariants")
            }
            DecodeError::Malformed(error) => write!(f, "malformed body: {error}"),
            DecodeError::TrailingBytes { count } => {
                write!(f, "{count} unexpected bytes after the value")
            }
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Malformed(error) => Some(error),
            _ => None,
        }
    }
}

/// Why a value could not be encoded. Only a custom `Serialize` implementation of an element
/// type can cause this; the types of this crate always encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub postcard::Error);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not encode: {}", self.0)
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A value with a versioned binary form.
///
/// ```
/// use crdt_core::codec::{DecodeError, Encode};
/// use crdt_core::{AwSet, ReplicaId};
///
/// let mut set = AwSet::default();
/// set.add(ReplicaId::from_u128(1), "x".to_string());
/// let bytes = set.encode().expect("encodes");
/// assert_eq!(AwSet::<String>::decode(&bytes).expect("decodes"), set);
///
/// // Untrusted bytes give an error, never a panic.
/// assert!(matches!(
///     AwSet::<String>::decode(&[9, 9, 9]),
///     Err(DecodeError::UnsupportedVersion { found: 9, .. })
/// ));
/// ```
pub trait Encode: Serialize + DeserializeOwned {
    /// The kind byte of this type.
    const KIND: Kind;

    /// The header followed by the postcard form of `self`.
    fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let bytes = vec![FORMAT_VERSION, Self::KIND as u8];
        postcard::to_extend(self, bytes).map_err(EncodeError)
    }

    /// Decodes bytes written by [`encode`](Self::encode), checking everything.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [version, kind, body @ ..] = bytes else {
            return Err(DecodeError::MissingHeader);
        };
        if *version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: *version,
                supported: FORMAT_VERSION,
            });
        }
        if *kind != Self::KIND as u8 {
            return Err(DecodeError::WrongKind {
                expected: Self::KIND,
                found: *kind,
            });
        }
        let (value, rest) = postcard::take_from_bytes(body).map_err(DecodeError::Malformed)?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { count: rest.len() });
        }
        Ok(value)
    }
}

impl Encode for VersionVector {
    const KIND: Kind = Kind::VersionVector;
}
impl Encode for CausalContext {
    const KIND: Kind = Kind::CausalContext;
}
impl Encode for GCounter {
    const KIND: Kind = Kind::GCounter;
}
impl Encode for PNCounter {
    const KIND: Kind = Kind::PNCounter;
}
impl Encode for EwFlag {
    const KIND: Kind = Kind::EwFlag;
}
impl Encode for DwFlag {
    const KIND: Kind = Kind::DwFlag;
}
impl<T: Serialize + DeserializeOwned + Clone + Ord> Encode for LwwRegister<T> {
    const KIND: Kind = Kind::LwwRegister;
}
impl<T: Serialize + DeserializeOwned + Clone + PartialEq> Encode for MvRegister<T> {
    const KIND: Kind = Kind::MvRegister;
}
impl<T: Serialize + DeserializeOwned + Ord> Encode for GSet<T> {
    const KIND: Kind = Kind::GSet;
}
impl<T: Serialize + DeserializeOwned + Ord> Encode for TwoPSet<T> {
    const KIND: Kind = Kind::TwoPSet;
}
impl<T: Serialize + DeserializeOwned + Ord + Clone> Encode for AwSet<T> {
    const KIND: Kind = Kind::AwSet;
}
impl<T: Serialize + DeserializeOwned + Ord + Clone> Encode for RwSet<T> {
    const KIND: Kind = Kind::RwSet;
}
impl<K, V> Encode for OrMap<K, V>
where
    K: Serialize + DeserializeOwned + Ord + Clone,
    V: Serialize + DeserializeOwned + StateCrdt,
{
    const KIND: Kind = Kind::OrMap;
}
impl<T: Serialize + DeserializeOwned> Encode for DeltaMessage<T> {
    const KIND: Kind = Kind::DeltaMessage;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplicaId;

    #[test]
    fn header_errors_are_typed() {
        assert_eq!(GCounter::decode(&[]), Err(DecodeError::MissingHeader));
        assert_eq!(
            GCounter::decode(&[FORMAT_VERSION, Kind::AwSet as u8, 0]),
            Err(DecodeError::WrongKind {
                expected: Kind::GCounter,
                found: Kind::AwSet as u8
            })
        );
        assert_eq!(
            GCounter::decode(&[FORMAT_VERSION, Kind::GCounter as u8, 0, 7]),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn a_counter_with_one_replica_takes_few_bytes() {
        let mut counter = GCounter::default();
        counter.increment(ReplicaId::from_u128(u128::MAX), 1000);
        // header 2 + entry count 1 + replica 16 + varint 2
        assert_eq!(counter.encode().expect("encodes").len(), 21);
    }
}
