//! Where containers are: paths from the root, worked out without recursion and shared between
//! the containers of one batch of patches.
//!
//! A container's place never changes (it is created in one parent, under one key or as one
//! list element), but whether it is *reachable* does: a map key overwritten, a list element
//! deleted. A path is therefore read from the current state, walking up the placements. The
//! resolver remembers every path it worked out and, per list, the index of each container
//! element, so the paths of a whole batch cost one walk per container and one scan per list,
//! however deep or wide the document. A transaction keeps one for its patches and tells it when
//! an edit moves containers ([`PathResolver::clear`], [`PathResolver::added_list_element`]).

use std::collections::HashMap;

use super::Document;
use super::events::{Path, PathSegment};
use super::state::Container;
use super::value::ContainerId;

/// Paths of containers of one document, valid while no edit moves a container (the caller
/// clears it when one does).
#[derive(Default)]
pub(super) struct PathResolver {
    /// Paths worked out so far (`None`: not reachable).
    paths: HashMap<ContainerId, Option<Path>>,
    /// Per list, the index of each container element.
    list_positions: HashMap<ContainerId, HashMap<ContainerId, usize>>,
}

impl PathResolver {
    /// Forgets everything: an edit changed which container is where (a key or register that
    /// held a container was written, or list elements that are containers moved).
    pub(super) fn clear(&mut self) {
        self.paths.clear();
        self.list_positions.clear();
    }

    /// Container `id` was inserted at `index` of `list`, and no container element of the list
    /// moved (else the caller clears).
    pub(super) fn added_list_element(&mut self, list: ContainerId, index: usize, id: ContainerId) {
        if let Some(positions) = self.list_positions.get_mut(&list) {
            positions.insert(id, index);
        }
    }

    /// Where container `id` of `doc` is, or `None` if it is unknown or not reachable from the
    /// root.
    pub(super) fn path(&mut self, doc: &Document, id: ContainerId) -> Option<Path> {
        // Walk up to the root or to an ancestor already resolved...
        let mut chain = Vec::new();
        let mut current = id;
        let known = loop {
            if current == ContainerId::Root {
                break Some(Path::root());
            }
            if let Some(known) = self.paths.get(&current) {
                break known.clone();
            }
            // Containers form a tree; the bound only guards against a corrupt placement table.
            if chain.len() > doc.placements.len() {
                return None;
            }
            chain.push(current);
            match doc.placements.get(&current) {
                Some(placement) => current = placement.parent,
                None => break None,
            }
        };
        // ...then back down, remembering every path on the way.
        let mut path = known;
        for &container in chain.iter().rev() {
            path = path.and_then(|parent| {
                let step = self.step_to(doc, container)?;
                Some(match step {
                    Some(segment) => parent.child(segment),
                    None => parent,
                })
            });
            self.paths.insert(container, path.clone());
        }
        path
    }

    /// The segment from `id`'s parent to `id`: `Some(None)` for a register's value (which
    /// shares the register's path), `None` if `id` is no longer where it was created.
    fn step_to(&mut self, doc: &Document, id: ContainerId) -> Option<Option<PathSegment>> {
        let placement = doc.placements.get(&id)?;
        let holds = |value: &super::Value| value.as_container().map(|(_, c)| c) == Some(id);
        match (&placement.key, doc.containers.get(&placement.parent)?) {
            (Some(key), Container::Map(entries)) => {
                let winner = entries.get(key)?.last()?;
                holds(&winner.value).then(|| Some(PathSegment::Key(key.clone())))
            }
            (None, Container::List(seq)) => {
                let positions = self
                    .list_positions
                    .entry(placement.parent)
                    .or_insert_with(|| {
                        seq.doc
                            .iter()
                            .enumerate()
                            .filter_map(|(i, v)| v.as_container().map(|(_, c)| (c, i)))
                            .collect()
                    });
                positions
                    .get(&id)
                    .map(|&index| Some(PathSegment::Index(index)))
            }
            (None, Container::Register(entries)) => holds(&entries.last()?.value).then_some(None),
            _ => None,
        }
    }
}
