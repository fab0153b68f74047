//! Change events: what a local transaction or a remote update did, for UIs to follow without
//! diffing.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::value::{ContainerId, Value};

/// One step from a container to a child: a map key or a list index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathSegment {
    /// A key of a map.
    Key(String),
    /// An index in a list.
    Index(usize),
}

/// Where a container is, from the root: its segments, outermost first (the root's path is
/// empty).
///
/// A path shares its prefix with the paths of the container's ancestors, so extending one
/// ([`child`](Self::child)) and cloning one cost O(1) whatever the depth: the patches of a
/// batch that reveals a chain of nested containers take memory in proportion to their number,
/// not to the number times the depth.
///
/// ```
/// use crdt_core::{Path, PathSegment};
///
/// let todo = Path::root().child(PathSegment::Key("todo".into()));
/// let first = todo.child(PathSegment::Index(0));
/// assert_eq!(first.len(), 2);
/// assert_eq!(first.last(), Some(&PathSegment::Index(0)));
/// assert_eq!(first, vec![PathSegment::Key("todo".into()), PathSegment::Index(0)]);
/// assert_eq!(first.to_vec(), [PathSegment::Key("todo".into()), PathSegment::Index(0)]);
/// ```
#[derive(Clone, Default)]
pub struct Path {
    /// The last segment and the path before it; `None` for the root.
    last: Option<Arc<PathLink>>,
}

struct PathLink {
    parent: Path,
    segment: PathSegment,
    len: usize,
}

impl Path {
    /// The root's path: no segments.
    pub fn root() -> Path {
        Path::default()
    }

    /// This path followed by `segment`.
    pub fn child(&self, segment: PathSegment) -> Path {
        Path {
            last: Some(Arc::new(PathLink {
                parent: self.clone(),
                segment,
                len: self.len() + 1,
            })),
        }
    }

    /// How many segments.
    pub fn len(&self) -> usize {
        self.last.as_ref().map_or(0, |link| link.len)
    }

    /// True for the root's path.
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
    }

    /// The innermost segment (`None` for the root).
    pub fn last(&self) -> Option<&PathSegment> {
        self.last.as_ref().map(|link| &link.segment)
    }

    /// The path without its last segment (`None` for the root).
    pub fn parent(&self) -> Option<&Path> {
        self.last.as_ref().map(|link| &link.parent)
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> Vec<&PathSegment> {
        let mut out = Vec::with_capacity(self.len());
        let mut at = self;
        while let Some(link) = &at.last {
            out.push(&link.segment);
            at = &link.parent;
        }
        out.reverse();
        out
    }

    /// The segments, outermost first, owned.
    pub fn to_vec(&self) -> Vec<PathSegment> {
        self.segments().into_iter().cloned().collect()
    }
}

impl Drop for Path {
    /// Unlinks iteratively: the default drop would recurse once per segment.
    fn drop(&mut self) {
        let mut next = self.last.take();
        while let Some(link) = next {
            next = match Arc::try_unwrap(link) {
                Ok(mut only) => only.parent.last.take(),
                Err(_shared) => None, // another path still holds the rest
            };
        }
    }
}

impl From<Vec<PathSegment>> for Path {
    fn from(segments: Vec<PathSegment>) -> Path {
        segments
            .into_iter()
            .fold(Path::root(), |path, segment| path.child(segment))
    }
}

impl PartialEq for Path {
    fn eq(&self, other: &Path) -> bool {
        self.len() == other.len() && self.segments() == other.segments()
    }
}

impl Eq for Path {}

impl PartialEq<[PathSegment]> for Path {
    fn eq(&self, other: &[PathSegment]) -> bool {
        self.len() == other.len() && self.segments().into_iter().eq(other)
    }
}

impl PartialEq<Vec<PathSegment>> for Path {
    fn eq(&self, other: &Vec<PathSegment>) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.segments()).finish()
    }
}

impl Serialize for Path {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.segments())
    }
}

impl<'de> Deserialize<'de> for Path {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Path, D::Error> {
        Vec::<PathSegment>::deserialize(deserializer).map(Path::from)
    }
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
        /// The chars removed (so that bindings can give positions in other units, such as
        /// JavaScript's UTF-16, and editors can show what went).
        text: String,
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
    pub path: Option<Path>,
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{Document, MapId, ReplicaId, VersionVector};

    const DEPTH: usize = 400;

    /// How many distinct links (by address) the paths of `patches` hold together.
    fn distinct_links(patches: &[Patch]) -> usize {
        let mut seen: HashSet<*const PathLink> = HashSet::new();
        for patch in patches {
            let mut at = patch.path.as_ref().expect("reachable");
            while let Some(link) = &at.last {
                if !seen.insert(Arc::as_ptr(link)) {
                    break; // the rest is shared with a path already walked
                }
                at = &link.parent;
            }
        }
        seen.len()
    }

    /// Nests `DEPTH` maps under "k" keys, each with a scalar "v", in one transaction.
    fn nest_maps(doc: &mut Document) {
        doc.transact(|tx| {
            let mut map = MapId::ROOT;
            for _ in 0..DEPTH {
                map = tx.replace_with_new_map(map, "k")?;
                tx.set(map, "v", 1)?;
            }
            Ok(())
        })
        .expect("within the limit");
    }

    /// Collects the patches `doc`'s subscribers get.
    fn recorder(doc: &mut Document) -> Arc<Mutex<Vec<Patch>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        doc.subscribe(Box::new(move |_, patches| {
            sink.lock()
                .expect("not poisoned")
                .extend_from_slice(patches)
        }));
        seen
    }

    #[test]
    fn the_patches_revealing_a_chain_share_their_path_prefixes() {
        let mut author = Document::new(ReplicaId::from_u128(1));
        nest_maps(&mut author);
        let mut reader = Document::new(ReplicaId::from_u128(2));
        let seen = recorder(&mut reader);
        reader
            .apply_update(&author.update_since(&VersionVector::new()))
            .expect("applies");
        let patches = seen.lock().expect("not poisoned");
        // Each map shows up as the key revealing it and its own "v": 2 per level.
        assert_eq!(patches.len(), 2 * DEPTH);
        let longest = patches
            .iter()
            .filter_map(|p| p.path.as_ref())
            .map(Path::len);
        assert_eq!(longest.max(), Some(DEPTH));
        // Unshared paths would hold DEPTH * (DEPTH + 1) / 2 links.
        assert_eq!(
            distinct_links(&patches),
            DEPTH,
            "one link per level, shared by every patch"
        );
    }

    #[test]
    fn a_transaction_nesting_a_chain_shares_its_patches_path_prefixes() {
        let mut doc = Document::new(ReplicaId::from_u128(1));
        let seen = recorder(&mut doc);
        nest_maps(&mut doc);
        let patches = seen.lock().expect("not poisoned");
        assert_eq!(patches.len(), 2 * DEPTH);
        assert_eq!(
            distinct_links(&patches),
            DEPTH,
            "one link per level, shared by every patch"
        );
    }

    #[test]
    fn a_long_path_drops_without_recursion() {
        let path = (0..1_000_000).fold(Path::root(), |path, i| path.child(PathSegment::Index(i)));
        let shorter = path.parent().cloned();
        drop(path);
        assert_eq!(shorter.map(|p| p.len()), Some(999_999));
    }
}
