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

/// A value with a versioned binary form.
///
/// `encode` returns the bytes directly, as every `encode` of the crate does
/// ([`Document::encode`](crate::Document::encode), [`Text::encode`](crate::Text::encode),
/// [`Message::encode`](crate::Message::encode), [`EncodeOp::encode`](crate::op_based::EncodeOp::encode)):
/// writing into a `Vec` cannot fail for the types of this crate (see [Panics](#panics)).
/// Only decoding, which meets bytes from peers, returns a `Result`.
///
/// ```
/// use crdt_core::codec::{DecodeError, Encode};
/// use crdt_core::{AwSet, ReplicaId};
///
/// let mut set = AwSet::default();
/// set.insert(ReplicaId::from_u128(1), "x".to_string());
/// let bytes = set.encode();
/// assert_eq!(AwSet::<String>::decode(&bytes), Ok(set));
///
/// // Untrusted bytes give an error, never a panic.
/// assert!(matches!(
///     AwSet::<String>::decode(&[9, 9, 9]),
///     Err(DecodeError::UnsupportedVersion { found: 9, .. })
/// ));
/// ```
///
/// # Panics
///
/// `encode` panics only if the `Serialize` implementation of an element type fails, as
/// [`ToString::to_string`] panics on a failing `Display`. Postcard writing into a `Vec` has
/// exactly two failures: a custom error returned by a `Serialize` implementation, and a sequence
/// or map whose length is not given up front. The types of this crate (replica ids, dots,
/// version vectors, causal contexts, the state types, deltas and messages) serialize through
/// derives over integers, arrays, `Vec` and `BTreeMap`, which always give their length and never
/// return an error; so do the std and serde types usually stored in them (integers, `String`,
/// tuples, collections). An element type with a failing `Serialize` (one that returns errors, or
/// uses `#[serde(flatten)]`, which writes a map of unknown length) cannot be stored in this
/// format, and could not be decoded from it either.
pub trait Encode: Serialize + DeserializeOwned {
    /// The kind byte of this type.
    const KIND: Kind;

    /// The header followed by the postcard form of `self`.
    fn encode(&self) -> Vec<u8> {
        write_envelope(FORMAT_VERSION, Self::KIND as u8, self)
    }

    /// Decodes bytes written by [`encode`](Self::encode), checking everything.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        read_envelope(bytes, FORMAT_VERSION, Self::KIND as u8).map_err(|error| match error {
            EnvelopeError::MissingHeader => DecodeError::MissingHeader,
            EnvelopeError::UnsupportedVersion { found } => DecodeError::UnsupportedVersion {
                found,
                supported: FORMAT_VERSION,
            },
            EnvelopeError::WrongKind { found } => DecodeError::WrongKind {
                expected: Self::KIND,
                found,
            },
            EnvelopeError::Malformed(error) => DecodeError::Malformed(error),
            EnvelopeError::TrailingBytes { count } => DecodeError::TrailingBytes { count },
        })
    }
}

/// Writes the envelope shared by [`Encode`] and [`EncodeOp`](crate::op_based::EncodeOp):
/// `[version][kind]` followed by the postcard form of `value`.
///
/// Panics only if `value`'s `Serialize` fails (see [`Encode`]'s Panics section): postcard's
/// `Extend` flavour never runs out of room.
pub(crate) fn write_envelope<T: Serialize + ?Sized>(version: u8, kind: u8, value: &T) -> Vec<u8> {
    match postcard::to_extend(value, vec![version, kind]) {
        Ok(bytes) => bytes,
        Err(error) => panic!(
            "a Serialize implementation failed while encoding ({error}); element types must \
             serialize without errors and give the length of every sequence and map"
        ),
    }
}

/// What is wrong with an envelope, before each family names its kind and version in its own
/// error type.
pub(crate) enum EnvelopeError {
    MissingHeader,
    UnsupportedVersion { found: u8 },
    WrongKind { found: u8 },
    Malformed(postcard::Error),
    TrailingBytes { count: usize },
}

/// Reads an envelope written by [`write_envelope`] with this `version` and `kind`: checks the
/// header, decodes the body (checking the type's invariants), refuses trailing bytes.
pub(crate) fn read_envelope<T: DeserializeOwned>(
    bytes: &[u8],
    version: u8,
    kind: u8,
) -> Result<T, EnvelopeError> {
    let [found_version, found_kind, body @ ..] = bytes else {
        return Err(EnvelopeError::MissingHeader);
    };
    if *found_version != version {
        return Err(EnvelopeError::UnsupportedVersion {
            found: *found_version,
        });
    }
    if *found_kind != kind {
        return Err(EnvelopeError::WrongKind { found: *found_kind });
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(EnvelopeError::Malformed)?;
    if !rest.is_empty() {
        return Err(EnvelopeError::TrailingBytes { count: rest.len() });
    }
    Ok(value)
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

    /// An element whose `Serialize` fails: the only way `encode` can fail, and it panics.
    #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, serde::Deserialize)]
    struct Unserializable;

    impl Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refuses"))
        }
    }

    #[test]
    #[should_panic(expected = "a Serialize implementation failed while encoding")]
    fn a_failing_element_serialize_panics() {
        let mut set = GSet::default();
        set.insert(Unserializable);
        let _ = set.encode();
    }

    #[test]
    fn a_counter_with_one_replica_takes_few_bytes() {
        let mut counter = GCounter::default();
        counter.increment(ReplicaId::from_u128(u128::MAX), 1000);
        // header 2 + entry count 1 + replica 16 + varint 2
        assert_eq!(counter.encode().len(), 21);
    }
}
