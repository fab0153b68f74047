//! Where containers are: paths from the root, worked out without recursion and shared between
//! the containers of one batch of patches.
//!
//! A container's place never changes (it is created in one parent, under one key or as one
//! list element), but whether it is *reachable* does: a map key overwritten, a list element
//! deleted. A path is therefore read from the current state, walking up the placements. The
//! resolver remembers every path it worked out and, per list, the index of each container
//! element, so the paths of a whole batch cost one walk per container and one scan per list,
//! however deep or wide the document.

use std::collections::HashMap;

use super::Document;
use super::events::{Path, PathSegment};
use super::state::Container;
use super::value::ContainerId;

/// Paths of containers of one document, as it is while the resolver lives.
pub(super) struct PathResolver<'d> {
    doc: &'d Document,
    /// Paths worked out so far (`None`: not reachable).
    paths: HashMap<ContainerId, Option<Path>>,
    /// Per list, the index of each container element.
    list_positions: HashMap<ContainerId, HashMap<ContainerId, usize>>,
}

impl<'d> PathResolver<'d> {
    pub(super) fn new(doc: &'d Document) -> PathResolver<'d> {
        let mut paths = HashMap::new();
        paths.insert(ContainerId::Root, Some(Path::root()));
        PathResolver {
            doc,
            paths,
            list_positions: HashMap::new(),
        }
    }

    /// Where container `id` is, or `None` if it is unknown or not reachable from the root.
    pub(super) fn path(&mut self, id: ContainerId) -> Option<Path> {
        // Walk up to the root or to an ancestor already resolved...
        let mut chain = Vec::new();
        let mut current = id;
        let known = loop {
            if let Some(known) = self.paths.get(&current) {
                break known.clone();
            }
            // Containers form a tree; the bound only guards against a corrupt placement table.
            if chain.len() > self.doc.placements.len() {
                return None;
            }
            chain.push(current);
            match self.doc.placements.get(&current) {
                Some(placement) => current = placement.parent,
                None => break None,
            }
        };
        // ...then back down, remembering every path on the way.
        let mut path = known;
        for &container in chain.iter().rev() {
            path = path.and_then(|parent| {
                let step = self.step_to(container)?;
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
    fn step_to(&mut self, id: ContainerId) -> Option<Option<PathSegment>> {
        let placement = self.doc.placements.get(&id)?;
        let holds = |value: &super::Value| value.as_container().map(|(_, c)| c) == Some(id);
        match (&placement.key, self.doc.containers.get(&placement.parent)?) {
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
