//! Multi-value register.

use serde::{Deserialize, Serialize};

use super::StateCrdt;
use super::dot_store::{Causal, DotFun};
use crate::ReplicaId;

/// A register that keeps every concurrent write until a later write overwrites them all.
///
/// Where a [`LwwRegister`](super::LwwRegister) silently drops the losers of concurrent writes,
/// this keeps them so the application (or the user) can choose. A write overwrites exactly the
/// values its replica has seen; values written concurrently stay beside it.
///
/// ```
/// use crdt_core::{MvRegister, ReplicaId, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut at_a = MvRegister::default();
/// let mut at_b = MvRegister::default();
/// at_a.set(a, "blue");
/// at_b.set(b, "green");
/// at_a.merge(&at_b);
/// let mut values: Vec<_> = at_a.values().copied().collect();
/// values.sort();
/// assert_eq!(values, ["blue", "green"]);
///
/// at_a.set(a, "teal"); // resolves the conflict
/// assert_eq!(at_a.values().collect::<Vec<_>>(), [&"teal"]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: serde::de::DeserializeOwned + Clone + PartialEq"
))]
pub struct MvRegister<T> {
    inner: Causal<DotFun<T>>,
}

impl<T> Default for MvRegister<T> {
    fn default() -> Self {
        MvRegister {
            inner: Causal {
                store: Vec::new(),
                context: Default::default(),
            },
        }
    }
}

impl<T: Clone + PartialEq> MvRegister<T> {
    /// Sets the register to `value` on behalf of `replica`, replacing every value seen; returns
    /// the delta.
    ///
    /// ```
    /// use crdt_core::{MvRegister, ReplicaId};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut register = MvRegister::default();
    /// register.set(a, "draft");
    /// register.set(a, "final");
    /// assert_eq!(register.values().collect::<Vec<_>>(), [&"final"]);
    /// ```
    pub fn set(&mut self, replica: ReplicaId, value: T) -> Self {
        MvRegister {
            inner: self.inner.write(replica, value),
        }
    }

    /// Removes every value seen; returns the delta. Concurrent writes survive.
    ///
    /// ```
    /// use crdt_core::{MvRegister, ReplicaId};
    ///
    /// let mut register = MvRegister::default();
    /// register.set(ReplicaId::from_u128(1), "blue");
    /// register.clear();
    /// assert!(register.is_empty());
    /// ```
    pub fn clear(&mut self) -> Self {
        MvRegister {
            inner: self.inner.clear(),
        }
    }
}

impl<T> MvRegister<T> {
    /// The current values: one, unless writes were concurrent; none if never written or cleared.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.inner.store.iter().map(|(_, value)| value)
    }

    /// True if the register holds no value.
    pub fn is_empty(&self) -> bool {
        self.inner.store.is_empty()
    }
}

impl<T: Clone + PartialEq> StateCrdt for MvRegister<T> {
    fn merge(&mut self, other: &Self) {
        self.inner.merge(&other.inner);
    }

    fn reset_delta(&self) -> Self {
        MvRegister {
            inner: self.inner.clear_delta(),
        }
    }
}
