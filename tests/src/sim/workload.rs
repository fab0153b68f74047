//! What simulated users do: random edits on every container kind of a document.

use crdt_core::{
    ContainerId, ContainerKind, CounterId, DocError, Document, ListId, MapId, RegisterId, TextId,
    Transaction,
};

use super::rng::SimRng;

/// Keys of scalar writes and of new containers: they overlap on "c", so containers are
/// sometimes overwritten by scalars (and by other containers) too.
const SCALAR_KEYS: [&str; 3] = ["a", "b", "c"];
const CONTAINER_KEYS: [&str; 5] = ["c", "d", "e", "f", "g"];
const WORDS: [&str; 6] = ["x", "hello ", "é", "日本", "🦀", "\n"];
const KINDS: [ContainerKind; 5] = [
    ContainerKind::Map,
    ContainerKind::List,
    ContainerKind::Text,
    ContainerKind::Counter,
    ContainerKind::Register,
];

/// The containers reachable from the root (the root first), by kind, in document order.
pub fn containers(doc: &Document) -> Vec<(ContainerKind, ContainerId)> {
    let mut found = vec![(ContainerKind::Map, ContainerId::Root)];
    let mut i = 0;
    while i < found.len() && found.len() < 256 {
        let (kind, id) = found[i];
        match kind {
            ContainerKind::Map => {
                for key in doc.keys(MapId(id)).unwrap_or_default() {
                    if let Ok(Some(value)) = doc.get(MapId(id), key) {
                        found.extend(value.as_container());
                    }
                }
            }
            ContainerKind::List => {
                for value in doc.list(ListId(id)).unwrap_or_default() {
                    found.extend(value.as_container());
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Makes one change of one to three random operations. Returns whether anything was edited.
pub fn random_change(doc: &mut Document, rng: &mut SimRng) -> Result<bool, DocError> {
    let operations = rng.between(1, 3);
    doc.transact(|tx| {
        let mut edited = false;
        for _ in 0..operations {
            edited |= random_operation(tx, rng)?;
        }
        Ok(edited)
    })
}

fn random_operation(tx: &mut Transaction<'_>, rng: &mut SimRng) -> Result<bool, DocError> {
    let found = containers(tx.doc());
    let (kind, id) = found[rng.index(found.len())];
    match kind {
        ContainerKind::Map => {
            let map = MapId(id);
            let key = SCALAR_KEYS[rng.index(SCALAR_KEYS.len())];
            let container_key = CONTAINER_KEYS[rng.index(CONTAINER_KEYS.len())];
            match rng.below(10) {
                0..=3 => tx.set(map, key, rng.below(100) as i64)?,
                4 => tx.delete(map, key)?,
                5 => tx.delete(map, container_key)?,
                // New containers mostly at the root, so trees stay small but not flat.
                _ if id != ContainerId::Root && rng.chance(700) => {
                    tx.set(map, container_key, "leaf")?;
                }
                // Half the time the named container of the key (what apps open), so replicas
                // open the same containers concurrently; a key showing another kind refuses.
                _ if rng.chance(500) => {
                    return open_named(tx, map, container_key, KINDS[rng.index(KINDS.len())]);
                }
                _ => match KINDS[rng.index(KINDS.len())] {
                    ContainerKind::Map => {
                        let _ = tx.replace_with_new_map(map, container_key)?;
                    }
                    ContainerKind::List => {
                        let _ = tx.replace_with_new_list(map, container_key)?;
                    }
                    ContainerKind::Text => {
                        let _ = tx.replace_with_new_text(map, container_key)?;
                    }
                    ContainerKind::Counter => {
                        let _ = tx.replace_with_new_counter(map, container_key)?;
                    }
                    ContainerKind::Register => {
                        let _ = tx.replace_with_new_register(map, container_key)?;
                    }
                },
            }
        }
        ContainerKind::List => {
            let list = ListId(id);
            let len = tx.doc().list_len(list)?;
            match rng.below(10) {
                0..=4 => tx.list_insert(list, rng.index(len + 1), rng.below(1000) as i64)?,
                5 if found.len() < 40 => {
                    let kind = KINDS[rng.index(KINDS.len())];
                    {
                        let _ = tx.list_insert_new(list, rng.index(len + 1), kind)?;
                    };
                }
                _ if len > 0 => {
                    let start = rng.index(len);
                    let end = (start + 1 + rng.index(3)).min(len);
                    tx.list_delete(list, start..end)?;
                }
                _ => return Ok(false),
            }
        }
        ContainerKind::Text => {
            let text = TextId(id);
            let len = tx.doc().text_len(text)?;
            if len > 0 && rng.chance(350) {
                let start = rng.index(len);
                let end = (start + 1 + rng.index(5)).min(len);
                tx.text_delete(text, start..end)?;
            } else {
                let word = WORDS[rng.index(WORDS.len())];
                tx.text_insert(text, rng.index(len + 1), word)?;
            }
        }
        ContainerKind::Counter => tx.counter_add(CounterId(id), rng.below(21) as i64 - 10)?,
        ContainerKind::Register => {
            if rng.chance(200) {
                tx.register_clear(RegisterId(id))?;
            } else {
                tx.register_set(RegisterId(id), rng.below(100) as i64)?;
            }
        }
    }
    Ok(true)
}

/// Opens the named container of `kind` at `key` of `map`; false if the key shows another
/// kind or a scalar (refused, nothing written).
fn open_named(
    tx: &mut Transaction<'_>,
    map: MapId,
    key: &str,
    kind: ContainerKind,
) -> Result<bool, DocError> {
    let opened = match kind {
        ContainerKind::Map => tx.map_at(map, key).map(|_| ()),
        ContainerKind::List => tx.list_at(map, key).map(|_| ()),
        ContainerKind::Text => tx.text_at(map, key).map(|_| ()),
        ContainerKind::Counter => tx.counter_at(map, key).map(|_| ()),
        ContainerKind::Register => tx.register_at(map, key).map(|_| ()),
    };
    match opened {
        Ok(()) => Ok(true),
        Err(DocError::KeyHolds { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_core::ReplicaId;

    #[test]
    fn random_changes_reach_every_container_kind() {
        let mut doc = Document::new(ReplicaId::from_u128(1));
        let mut rng = SimRng::new(11);
        let mut kinds = Vec::new();
        let mut named = 0;
        for _ in 0..300 {
            random_change(&mut doc, &mut rng).expect("edits computed from the state are valid");
            kinds.extend(containers(&doc).iter().map(|(k, _)| *k));
            named += containers(&doc)
                .iter()
                .filter(|(_, id)| matches!(id, ContainerId::Named(_)))
                .count();
        }
        for kind in KINDS {
            assert!(kinds.contains(&kind), "no {kind:?} in {:?}", doc.to_json());
        }
        assert!(named > 0, "no named container was ever opened");
    }
}
