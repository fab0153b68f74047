//! Named containers: the one container of a kind at a map key that every replica asking for
//! it gets.
//!
//! Every app opens a document and asks for its parts ("the text called title"). If each
//! replica made a fresh container for that, two replicas opening the same empty document at
//! once would make two texts under one key, and one side's typing would vanish from view.
//! A named container's id is instead derived from its place ([`NamedId`]: the map, the key,
//! the kind), so concurrent creations are the same container and their edits merge. The
//! write that puts it in its map is an ordinary map write carrying that id; receivers check
//! that the id is the one its place derives (a peer cannot put a named container anywhere
//! else).
//!
//! A named container that is deleted and asked for again comes back with its content: its
//! identity is its place. `replace_with_new_*` makes a fresh, empty container instead.

use super::transaction::KeyWrite;
use super::value::{ContainerId, ContainerKind, CounterId, ListId, MapId, RegisterId, TextId};
use super::{DocError, Transaction, Value};

impl Transaction<'_> {
    /// The container of `kind` at `key` of `map`: the one there, or else the named one (see
    /// the typed `*_at` operations).
    pub(crate) fn container_at(
        &mut self,
        map: MapId,
        key: &str,
        kind: ContainerKind,
    ) -> Result<ContainerId, DocError> {
        match self.doc().get(map, key)? {
            Some(Value::Container(found, id)) if *found == kind => return Ok(*id),
            Some(other) => {
                return Err(DocError::KeyHolds {
                    map: map.0,
                    key: key.to_owned(),
                    expected: kind,
                    found: other.as_container().map(|(kind, _)| kind),
                });
            }
            None => {}
        }
        self.write_key(map, key, KeyWrite::Named(kind))?
            .ok_or(DocError::NoSuchContainer(map.0))
    }

    /// The map at `key` of `map`, shared by every replica that asks for it: the map there
    /// if there is one, else the named map of that key, created (or brought back with its
    /// content) by writing it to the key. Replicas that do this concurrently get one map,
    /// and all their edits to it merge.
    ///
    /// Fails with [`DocError::KeyHolds`] if the key shows something else (a scalar, or a
    /// container of another kind): nothing is overwritten.
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut a = Document::new(ReplicaId::from_u128(1));
    /// let mut b = Document::new(ReplicaId::from_u128(2));
    /// let settings_a = a.map_at(MapId::ROOT, "settings").unwrap();
    /// a.set(settings_a, "theme", "dark").unwrap();
    /// let settings_b = b.map_at(MapId::ROOT, "settings").unwrap();
    /// b.set(settings_b, "font", "serif").unwrap();
    ///
    /// a.merge(&b).unwrap();
    /// assert_eq!(settings_a, settings_b);
    /// assert_eq!(
    ///     a.to_json(),
    ///     serde_json::json!({ "settings": { "theme": "dark", "font": "serif" } })
    /// );
    /// ```
    pub fn map_at(&mut self, map: MapId, key: &str) -> Result<MapId, DocError> {
        self.container_at(map, key, ContainerKind::Map).map(MapId)
    }

    /// The list at `key` of `map`, shared by every replica that asks for it (as
    /// [`map_at`](Self::map_at) for maps).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut a = Document::new(ReplicaId::from_u128(1));
    /// let mut b = Document::new(ReplicaId::from_u128(2));
    /// let items = a.list_at(MapId::ROOT, "items").unwrap();
    /// a.list_insert(items, 0, "milk").unwrap();
    /// let items_b = b.list_at(MapId::ROOT, "items").unwrap();
    /// b.list_insert(items_b, 0, "eggs").unwrap();
    ///
    /// a.merge(&b).unwrap();
    /// assert_eq!(a.list_len(items).unwrap(), 2);
    /// ```
    pub fn list_at(&mut self, map: MapId, key: &str) -> Result<ListId, DocError> {
        self.container_at(map, key, ContainerKind::List).map(ListId)
    }

    /// The text at `key` of `map`, shared by every replica that asks for it (as
    /// [`map_at`](Self::map_at) for maps). What an app calls on opening a document.
    ///
    /// ```
    /// use crdt_core::{DocError, Document, MapId, ReplicaId};
    ///
    /// let mut a = Document::new(ReplicaId::from_u128(1));
    /// let mut b = Document::new(ReplicaId::from_u128(2));
    /// let title = a.text_at(MapId::ROOT, "title").unwrap();
    /// a.text_insert(title, 0, "Hello").unwrap();
    /// let title_b = b.text_at(MapId::ROOT, "title").unwrap();
    /// b.text_insert(title_b, 0, "Hi. ").unwrap();
    ///
    /// a.merge(&b).unwrap();
    /// b.merge(&a).unwrap();
    /// assert_eq!(a.text(title).unwrap(), b.text(title).unwrap());
    /// assert_eq!(a.text(title).unwrap().len(), "Hello".len() + "Hi. ".len());
    ///
    /// // Asking for another kind at the key is an error, not an overwrite.
    /// assert!(matches!(a.list_at(MapId::ROOT, "title"), Err(DocError::KeyHolds { .. })));
    /// ```
    pub fn text_at(&mut self, map: MapId, key: &str) -> Result<TextId, DocError> {
        self.container_at(map, key, ContainerKind::Text).map(TextId)
    }

    /// The counter at `key` of `map`, shared by every replica that asks for it (as
    /// [`map_at`](Self::map_at) for maps).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut a = Document::new(ReplicaId::from_u128(1));
    /// let mut b = Document::new(ReplicaId::from_u128(2));
    /// let likes = a.counter_at(MapId::ROOT, "likes").unwrap();
    /// a.counter_add(likes, 1).unwrap();
    /// let likes_b = b.counter_at(MapId::ROOT, "likes").unwrap();
    /// b.counter_add(likes_b, 2).unwrap();
    ///
    /// a.merge(&b).unwrap();
    /// assert_eq!(a.counter(likes).unwrap(), 3);
    /// ```
    pub fn counter_at(&mut self, map: MapId, key: &str) -> Result<CounterId, DocError> {
        self.container_at(map, key, ContainerKind::Counter)
            .map(CounterId)
    }

    /// The register at `key` of `map`, shared by every replica that asks for it (as
    /// [`map_at`](Self::map_at) for maps).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId, Value};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let status = doc.register_at(MapId::ROOT, "status").unwrap();
    /// doc.register_set(status, "away").unwrap();
    /// assert_eq!(doc.register_at(MapId::ROOT, "status").unwrap(), status);
    /// assert_eq!(doc.register(status).unwrap(), Some(&Value::from("away")));
    /// ```
    pub fn register_at(&mut self, map: MapId, key: &str) -> Result<RegisterId, DocError> {
        self.container_at(map, key, ContainerKind::Register)
            .map(RegisterId)
    }
}
