//! Change events: what a local transaction or a remote update did, for UIs to follow without
//! diffing.

use serde::{Deserialize, Serialize};

use super::value::{ContainerId, Value};

/// One step from a container to a child: a map key or a list index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathSegment {
    /// A key of a map.
    Key(String),
    /// An index in a list.
    Index(usize),
}

/// What happened to a container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PatchAction {
    /// `key` now shows `value` (a new value, or the winner after a conflict changed).
    MapSet {
        /// The key.
        key: String,
        /// Its value now.
        value: Value,
    },
    /// `key` is gone.
    MapDelete {
        /// The key.
        key: String,
    },
    /// `values` were inserted at `index`.
    ListInsert {
        /// Where.
        index: usize,
        /// What, in order.
        values: Vec<Value>,
    },
    /// `len` values were removed at `index`.
    ListDelete {
        /// Where.
        index: usize,
        /// How many.
        len: usize,
    },
    /// `text` was inserted at char `index`.
    TextInsert {
        /// Where, in chars.
        index: usize,
        /// What.
        text: String,
    },
    /// `len` chars were removed at char `index`.
    TextDelete {
        /// Where, in chars.
        index: usize,
        /// How many chars.
        len: usize,
    },
    /// The counter changed by `by`.
    Increment {
        /// The amount added (negative to subtract).
        by: i64,
    },
    /// The register now shows `value` (`None`: cleared).
    RegisterSet {
        /// Its value now.
        value: Option<Value>,
    },
}

/// One change to one container.
///
/// Applying a transaction's or an update's patches, in order, to the document's JSON as it was
/// before gives its JSON after (patches of containers no longer reachable from the root have
/// no `path` and change nothing visible).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    /// The container changed.
    pub container: ContainerId,
    /// Where it is, from the root, when the patch applies; `None` if it is not reachable.
    pub path: Option<Vec<PathSegment>>,
    /// What changed.
    pub action: PatchAction,
}

/// Where the patches of one commit or one merge came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Origin {
    /// A local transaction.
    Local,
    /// An update or merge from another replica.
    Remote,
}

/// A subscriber: called with the patches of each commit and each applied update, after they
/// took effect. It receives no access to the document, so it cannot re-enter it (no deadlock);
/// collect what you need and act after the call.
pub type Listener = Box<dyn FnMut(Origin, &[Patch]) + Send>;

/// Identifies a subscription, to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionId(pub(crate) u64);
