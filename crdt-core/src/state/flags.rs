//! Boolean flags: enable-wins and disable-wins.

use serde::{Deserialize, Serialize};

use super::StateCrdt;
use super::dot_store::{Causal, DotFun};
use crate::ReplicaId;

/// A boolean that starts disabled, where an enable wins over a concurrent disable.
///
/// Enabling adds an event; disabling removes the events it has seen. An enable the disabler had
/// not seen survives.
///
/// ```
/// use crdt_core::{EwFlag, ReplicaId, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut at_a = EwFlag::default();
/// at_a.enable(a);
/// let mut at_b = at_a.clone();
/// at_a.disable();
/// at_b.enable(b); // concurrent with the disable: enable wins
/// at_a.merge(&at_b);
/// assert!(at_a.value());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EwFlag {
    inner: Causal<DotFun<()>>,
}

impl EwFlag {
    /// Enables the flag on behalf of `replica`; returns the delta.
    pub fn enable(&mut self, replica: ReplicaId) -> Self {
        EwFlag {
            inner: self.inner.write(replica, ()),
        }
    }

    /// Disables the flag as far as this replica has seen it enabled; returns the delta.
    ///
    /// ```
    /// use crdt_core::{EwFlag, ReplicaId};
    ///
    /// let mut flag = EwFlag::default();
    /// flag.enable(ReplicaId::from_u128(1));
    /// assert!(flag.value());
    /// flag.disable();
    /// assert!(!flag.value());
    /// ```
    pub fn disable(&mut self) -> Self {
        EwFlag {
            inner: self.inner.clear(),
        }
    }

    /// True if enabled.
    pub fn value(&self) -> bool {
        !self.inner.store.is_empty()
    }
}

impl StateCrdt for EwFlag {
    fn merge(&mut self, other: &Self) {
        self.inner.merge(&other.inner);
    }

    fn reset_delta(&self) -> Self {
        EwFlag {
            inner: self.inner.clear_delta(),
        }
    }
}

/// A boolean that starts disabled, where a disable wins over a concurrent enable.
///
/// Both enabling and disabling replace the events seen with a new one; the flag is enabled when
/// every surviving event is an enable. A concurrent enable and disable both survive: disabled.
///
/// ```
/// use crdt_core::{DwFlag, ReplicaId, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut at_a = DwFlag::default();
/// at_a.enable(a);
/// let mut at_b = at_a.clone();
/// at_a.disable(a);
/// at_b.enable(b); // concurrent with the disable: disable wins
/// at_a.merge(&at_b);
/// assert!(!at_a.value());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DwFlag {
    /// Surviving events: `true` for an enable, `false` for a disable.
    inner: Causal<DotFun<bool>>,
}

impl DwFlag {
    /// Enables the flag on behalf of `replica`; returns the delta.
    pub fn enable(&mut self, replica: ReplicaId) -> Self {
        DwFlag {
            inner: self.inner.write(replica, true),
        }
    }

    /// Disables the flag on behalf of `replica`, winning over concurrent enables; returns the
    /// delta.
    ///
    /// ```
    /// use crdt_core::{DwFlag, ReplicaId};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut flag = DwFlag::default();
    /// flag.enable(a);
    /// flag.disable(a);
    /// assert!(!flag.value());
    /// ```
    pub fn disable(&mut self, replica: ReplicaId) -> Self {
        DwFlag {
            inner: self.inner.write(replica, false),
        }
    }

    /// True if enabled.
    pub fn value(&self) -> bool {
        let events = &self.inner.store;
        !events.is_empty() && events.iter().all(|&(_, enabled)| enabled)
    }
}

impl StateCrdt for DwFlag {
    fn merge(&mut self, other: &Self) {
        self.inner.merge(&other.inner);
    }

    fn reset_delta(&self) -> Self {
        DwFlag {
            inner: self.inner.clear_delta(),
        }
    }
}
