//! What a document holds: scalar values and references to nested containers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Dot;

/// Which kind of container a [`ContainerId`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ContainerKind {
    /// String keys to values; concurrent writes to a key are kept as conflicts.
    Map,
    /// A sequence of values.
    List,
    /// Plain text.
    Text,
    /// A number that replicas add to and subtract from.
    Counter,
    /// One value; concurrent writes are kept as conflicts.
    Register,
}

/// The identity of a container: the root map, the operation that created it, or the place it
/// is named by.
///
/// Ids are the same on every replica, so they are what paths, events and handles refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ContainerId {
    /// The document's root map.
    Root,
    /// The container created by the operation with this id: a fresh container, distinct from
    /// every other (made by `replace_with_new_*` and `list_insert_new`).
    Created(Dot),
    /// The shared container of one kind at one key of one map (made by `text_at`, `list_at`,
    /// ...): every replica that asks for it gets this same id, so concurrent creations are one
    /// container.
    Named(NamedId),
}

/// The identity of a named container: a SHA-256 digest of where it lives (its map's id, its
/// key) and its kind.
///
/// Derived, never chosen: replicas compute it from the place, so a peer cannot put one
/// named container in two places (updates carry the place, not the digest). A
/// cryptographic digest keeps two places from ever sharing an id, even places a hostile
/// peer picked to try.
///
/// ```
/// use crdt_core::{ContainerId, ContainerKind, NamedId};
///
/// let title = NamedId::derive(ContainerId::Root, "title", ContainerKind::Text);
/// assert_eq!(title, NamedId::derive(ContainerId::Root, "title", ContainerKind::Text));
/// assert_ne!(title, NamedId::derive(ContainerId::Root, "title", ContainerKind::List));
/// assert_ne!(title, NamedId::derive(ContainerId::Root, "body", ContainerKind::Text));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NamedId([u8; 32]);

impl NamedId {
    /// The id of the named container of `kind` at `key` of the map `parent`.
    pub fn derive(parent: ContainerId, key: &str, kind: ContainerKind) -> NamedId {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        // A domain tag, then every field in a form with one reading (fixed sizes, the key
        // last and length-prefixed), so no two places hash the same bytes.
        hash.update(b"crdt-core named container 1\0");
        match parent {
            ContainerId::Root => hash.update([0]),
            ContainerId::Created(dot) => {
                hash.update([1]);
                hash.update(dot.replica.to_bytes());
                hash.update(dot.counter.to_le_bytes());
            }
            ContainerId::Named(NamedId(digest)) => {
                hash.update([2]);
                hash.update(digest);
            }
        }
        hash.update([kind_tag(kind)]);
        hash.update((key.len() as u64).to_le_bytes());
        hash.update(key.as_bytes());
        NamedId(hash.finalize().into())
    }

    /// The digest's bytes.
    ///
    /// ```
    /// use crdt_core::{ContainerId, ContainerKind, NamedId};
    /// let id = NamedId::derive(ContainerId::Root, "title", ContainerKind::Text);
    /// assert_eq!(id.to_bytes().len(), 32);
    /// ```
    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The id with this digest (as read from an encoding; not checked against a place).
    pub(crate) fn from_bytes(digest: [u8; 32]) -> NamedId {
        NamedId(digest)
    }
}

impl fmt::Debug for NamedId {
    /// The first bytes in hex, enough to tell ids apart when reading logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamedId(")?;
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…)")
    }
}

/// The kind's byte in a [`NamedId`] digest (fixed forever: ids depend on it).
fn kind_tag(kind: ContainerKind) -> u8 {
    match kind {
        ContainerKind::Map => 0,
        ContainerKind::List => 1,
        ContainerKind::Text => 2,
        ContainerKind::Counter => 3,
        ContainerKind::Register => 4,
    }
}

/// A value stored in a map, list or register.
///
/// ```
/// use crdt_core::Value;
///
/// let v = Value::from("hello");
/// assert_eq!(v.as_str(), Some("hello"));
/// assert_eq!(Value::from(3).as_int(), Some(3));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// No value (JSON `null`).
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A string (an opaque value: use a [`ContainerKind::Text`] to edit text collaboratively).
    String(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A nested container.
    Container(ContainerKind, ContainerId),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The float, if this is one (integers are not converted).
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The container this value refers to, if any.
    pub fn as_container(&self) -> Option<(ContainerKind, ContainerId)> {
        match self {
            Value::Container(kind, id) => Some((*kind, *id)),
            _ => None,
        }
    }

    /// The map this value refers to, if it is one.
    pub fn as_map(&self) -> Option<MapId> {
        match self {
            Value::Container(ContainerKind::Map, id) => Some(MapId(*id)),
            _ => None,
        }
    }

    /// The list this value refers to, if it is one.
    pub fn as_list(&self) -> Option<ListId> {
        match self {
            Value::Container(ContainerKind::List, id) => Some(ListId(*id)),
            _ => None,
        }
    }

    /// The text this value refers to, if it is one.
    pub fn as_text(&self) -> Option<TextId> {
        match self {
            Value::Container(ContainerKind::Text, id) => Some(TextId(*id)),
            _ => None,
        }
    }

    /// The counter this value refers to, if it is one.
    pub fn as_counter(&self) -> Option<CounterId> {
        match self {
            Value::Container(ContainerKind::Counter, id) => Some(CounterId(*id)),
            _ => None,
        }
    }

    /// The register this value refers to, if it is one.
    pub fn as_register(&self) -> Option<RegisterId> {
        match self {
            Value::Container(ContainerKind::Register, id) => Some(RegisterId(*id)),
            _ => None,
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Value::Container(kind, id) => write!(f, "<{kind:?} {id:?}>"),
        }
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub ContainerId);

        impl $name {
            /// The container's id.
            pub fn id(self) -> ContainerId {
                self.0
            }
        }
    };
}

typed_id!(
    /// A handle to a map container (the root is [`MapId::ROOT`]).
    MapId
);
typed_id!(
    /// A handle to a list container.
    ListId
);
typed_id!(
    /// A handle to a text container.
    TextId
);
typed_id!(
    /// A handle to a counter container.
    CounterId
);
typed_id!(
    /// A handle to a register container.
    RegisterId
);

impl MapId {
    /// The document's root map.
    pub const ROOT: MapId = MapId(ContainerId::Root);
}
