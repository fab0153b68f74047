//! Deep and wide documents: the nesting limit holds locally and remotely (refused whole, with a
//! typed error), and every operation on a document nested as deep as the ceiling allows runs
//! on a small stack (nothing recurses once per level) with patches that still describe the
//! JSON exactly.

use std::sync::Mutex;

use crdt_core::{
    ContainerKind, DocError, Document, ListId, LoadError, MapId, Patch, ReplicaId, UndoManager,
    Value, VersionVector,
};
use quickcheck::{Arbitrary, Gen};
use serde_json::{Value as Json, json};

use crate::document::apply_patch;
use crate::harness::check;
use crate::history::recorder;

fn r(n: u128) -> ReplicaId {
    ReplicaId::from_u128(0x300 + n)
}

/// The stack the checks run on: what a wasm32 module gets by default (1 MiB), and half of a
/// tokio worker's.
const SMALL_STACK: usize = 1 << 20;

fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(work)
        .expect("a thread starts")
        .join()
    {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Applies recorded patches to `json`; false if one does not fit.
fn replay(json: &mut Json, patches: &Mutex<Vec<Patch>>) -> bool {
    let patches = std::mem::take(&mut *patches.lock().expect("not poisoned"));
    patches.iter().all(|patch| apply_patch(json, patch))
}

/// Writes, under `key` of `map`, a chain of `depth` containers alternating maps (key "k")
/// and lists (one element), ending in a text "leaf" as the last container, in one
/// transaction.
fn write_chain(doc: &mut Document, map: MapId, key: &str, depth: usize) -> Result<(), DocError> {
    doc.transact(|tx| {
        let mut parent_map = map;
        let mut parent_list: Option<ListId> = None;
        for level in 0..depth {
            let kind = if level + 1 == depth {
                ContainerKind::Text
            } else if level % 2 == 0 {
                ContainerKind::List
            } else {
                ContainerKind::Map
            };
            let key = if level == 0 { key } else { "k" };
            let id = match parent_list {
                Some(list) => tx.list_insert_new(list, 0, kind)?,
                None => match kind {
                    ContainerKind::List => tx.replace_with_new_list(parent_map, key)?.id(),
                    ContainerKind::Map => tx.replace_with_new_map(parent_map, key)?.id(),
                    _ => tx.replace_with_new_text(parent_map, key)?.id(),
                },
            };
            match kind {
                ContainerKind::List => parent_list = Some(ListId(id)),
                ContainerKind::Map => {
                    parent_map = MapId(id);
                    parent_list = None;
                }
                _ => tx.text_insert(crdt_core::TextId(id), 0, "leaf")?,
            }
        }
        Ok(())
    })
}

fn deep_document(replica: ReplicaId, limit: usize, depth: usize) -> Document {
    let mut doc = Document::new(replica);
    doc.set_max_depth(limit).expect("a limit in range");
    write_chain(&mut doc, MapId::ROOT, "chain", depth).expect("within the limit");
    doc
}

#[test]
fn every_operation_at_the_depth_ceiling_runs_on_a_small_stack() {
    on_small_stack(|| {
        let depth = Document::MAX_DEPTH_CEILING;
        let mut author = Document::new(r(1));
        author
            .set_max_depth(depth)
            .expect("the ceiling is a valid limit");
        let mut undo = UndoManager::new(&mut author);
        let local = recorder(&mut author);
        let mut author_json = author.to_json();
        write_chain(&mut author, MapId::ROOT, "chain", depth).expect("within the limit");
        assert!(replay(&mut author_json, &local), "local patches fit");
        assert_eq!(author_json, author.to_json(), "local patches give the JSON");
        let with_chain = author.version();

        // A remote replica receives it as an update, with a subscriber (paths, expansion).
        let mut reader = Document::new(r(2));
        reader.set_max_depth(depth).expect("valid");
        let remote = recorder(&mut reader);
        let mut reader_json = reader.to_json();
        reader
            .apply_update(&author.update_since(&VersionVector::new()))
            .expect("within the reader's limit");
        assert!(replay(&mut reader_json, &remote), "remote patches fit");
        assert_eq!(reader_json, author.to_json());

        // A snapshot loads into an empty replica with a subscriber (expansion of the root).
        let mut loaded = Document::new(r(3));
        loaded.set_max_depth(depth).expect("valid");
        let expansion = recorder(&mut loaded);
        let mut loaded_json = loaded.to_json();
        loaded.apply_update(&author.encode()).expect("loads");
        assert!(
            replay(&mut loaded_json, &expansion),
            "expansion patches fit"
        );
        assert_eq!(loaded_json, author.to_json());

        // Overwrite the chain, then bring it back: undo and revert copy it level by level.
        author.set(MapId::ROOT, "chain", "gone").expect("a map");
        assert!(undo.undo(&mut author).expect("undoes"));
        assert_eq!(
            author.to_json(),
            reader.to_json(),
            "undo copies the chain back"
        );
        undo.detach(&mut author);
        author
            .set(MapId::ROOT, "chain", "gone again")
            .expect("a map");
        author.revert_to(&with_chain).expect("reverts");
        assert_eq!(
            author.to_json(),
            reader.to_json(),
            "revert copies the chain back"
        );

        // History reads and writes.
        let view = author.view_at(&with_chain).expect("a version").to_json();
        assert_eq!(view, reader.to_json());
        let fork = author.fork_at(&with_chain, r(4)).expect("forks");
        assert_eq!(fork.to_json(), reader.to_json());
        let patches = author
            .diff(&VersionVector::new(), &with_chain)
            .expect("a diff");
        let mut diff_json = json!({});
        assert!(patches.iter().all(|p| apply_patch(&mut diff_json, p)));
        assert_eq!(diff_json, reader.to_json());
        let version = author.version();
        author.compact(&version).expect("compacts");
        assert_eq!(author.to_json(), reader.to_json());
        let reloaded = Document::load(&author.encode(), r(1));
        assert_eq!(
            reloaded.map(|_| ()),
            Err(LoadError::TooDeep {
                limit: Document::DEFAULT_MAX_DEPTH
            }),
            "the default limit refuses it"
        );
        // Everything drops here, on the small stack too.
    });
}

#[test]
fn a_remote_update_nested_deeper_than_the_limit_is_refused_whole() {
    let author = deep_document(r(1), 1000, Document::DEFAULT_MAX_DEPTH + 1);
    let mut receiver = Document::new(r(2));
    receiver.set(MapId::ROOT, "mine", 1).expect("a map");
    let before = (receiver.version(), receiver.to_json());
    let too_deep = Err(LoadError::TooDeep {
        limit: Document::DEFAULT_MAX_DEPTH,
    });
    let update = author.update_since(&VersionVector::new());
    assert_eq!(receiver.apply_update(&update).map(|_| ()), too_deep);
    assert_eq!(receiver.merge(&author).map(|_| ()), too_deep);
    assert_eq!((receiver.version(), receiver.to_json()), before);
    // Snapshots and shallow snapshots too, into an empty replica.
    let shallow = author.encode_shallow(&author.version()).expect("a version");
    for bytes in [author.encode(), shallow] {
        assert_eq!(Document::load(&bytes, r(3)).map(|_| ()), too_deep);
    }
    // Raised, the limit lets it in.
    receiver.set_max_depth(1000).expect("valid");
    assert!(receiver.apply_update(&update).is_ok());
    assert_eq!(receiver.get(MapId::ROOT, "mine"), Ok(Some(&Value::from(1))));
}

#[test]
fn a_local_container_past_the_limit_fails_and_leaves_nothing() {
    let mut doc = Document::new(r(1));
    doc.set(MapId::ROOT, "kept", true).expect("a map");
    let before = (doc.version(), doc.to_json());
    let too_deep = Err(DocError::TooDeep {
        limit: Document::DEFAULT_MAX_DEPTH,
    });
    assert_eq!(
        write_chain(
            &mut doc,
            MapId::ROOT,
            "chain",
            Document::DEFAULT_MAX_DEPTH + 1
        ),
        too_deep
    );
    assert_eq!(
        (doc.version(), doc.to_json()),
        before,
        "the transaction left nothing"
    );
    let local = recorder(&mut doc);
    let mut json = doc.to_json();
    write_chain(&mut doc, MapId::ROOT, "chain", Document::DEFAULT_MAX_DEPTH).expect("at the limit");
    assert!(replay(&mut json, &local), "local patches fit");
    assert_eq!(json, doc.to_json(), "local patches give the JSON");
    // JSON import stops at the limit as well: the outer object is the root's fields, so
    // this nests one map past the limit.
    let mut nested = json!("leaf");
    for _ in 0..Document::DEFAULT_MAX_DEPTH + 2 {
        nested = json!({ "k": nested });
    }
    let Json::Object(fields) = nested else {
        unreachable!("built as an object")
    };
    let before = (doc.version(), doc.to_json());
    assert_eq!(
        doc.import_json(MapId::ROOT, &Json::Object(fields), Default::default()),
        too_deep
    );
    assert_eq!((doc.version(), doc.to_json()), before);
}

#[test]
fn the_limit_is_checked_when_set() {
    let mut doc = Document::new(r(1));
    assert_eq!(doc.max_depth(), Document::DEFAULT_MAX_DEPTH);
    for bad in [0, Document::MAX_DEPTH_CEILING + 1] {
        assert_eq!(
            doc.set_max_depth(bad),
            Err(DocError::DepthLimitOutOfRange {
                requested: bad,
                ceiling: Document::MAX_DEPTH_CEILING
            })
        );
    }
    assert_eq!(doc.max_depth(), Document::DEFAULT_MAX_DEPTH);
    doc.set_max_depth(3).expect("valid");
    assert_eq!(doc.fork(r(2)).max_depth(), 3, "forks keep the limit");
}

// ---- property: random deep and wide shapes ----------------------------------------------------

/// One container creation: in the `parent`-th container made so far (modulo; 0 is the root),
/// of `kind`.
#[derive(Clone, Debug)]
struct Create {
    parent: usize,
    kind: ContainerKind,
}

#[derive(Clone, Debug)]
struct Shape {
    /// The writer's nesting limit.
    limit: usize,
    /// The second reader's limit (may be lower than what the writer built).
    other_limit: usize,
    creates: Vec<Create>,
}

impl Arbitrary for Shape {
    fn arbitrary(g: &mut Gen) -> Self {
        let kinds = [ContainerKind::Map, ContainerKind::List];
        let len = usize::arbitrary(g) % 120;
        Shape {
            limit: 1 + usize::arbitrary(g) % 12,
            other_limit: 1 + usize::arbitrary(g) % 12,
            creates: (0..len)
                .map(|_| Create {
                    // Mostly the newest containers, to make chains; sometimes any, to widen.
                    parent: if bool::arbitrary(g) {
                        usize::MAX - usize::arbitrary(g) % 3
                    } else {
                        usize::arbitrary(g)
                    },
                    kind: *g.choose(&kinds).expect("not empty"),
                })
                .collect(),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        // Shorter prefixes of the creations (the failing one is usually near the end).
        let base = self.clone();
        let len = self.creates.len();
        Box::new(
            [len / 2, len.saturating_sub(1)]
                .into_iter()
                .filter(move |&keep| keep < len)
                .map(move |keep| Shape {
                    creates: base.creates[..keep].to_vec(),
                    ..base.clone()
                }),
        )
    }
}

/// Builds the shape (one transaction per creation, refused ones included), then checks that
/// exactly the creations past the limit were refused, that a subscribed replica's patches and
/// a reload give the same JSON, and that a replica with a lower limit refuses the whole update
/// while one with enough takes it.
fn deep_and_wide_documents_sync_exactly(shape: Shape) -> bool {
    let mut writer = Document::new(r(1));
    writer.set_max_depth(shape.limit).expect("in range");
    // Containers made so far: (id, kind, depth); the root first.
    let mut made: Vec<(crdt_core::ContainerId, ContainerKind, usize)> =
        vec![(crdt_core::ContainerId::Root, ContainerKind::Map, 0)];
    let mut deepest = 0;
    for (n, create) in shape.creates.iter().enumerate() {
        let parent = made[match create.parent.checked_sub(usize::MAX - 2) {
            Some(back) => made.len().saturating_sub(1 + back),
            None => create.parent % made.len(),
        }];
        let (parent_id, parent_kind, parent_depth) = parent;
        let result = writer.transact(|tx| match parent_kind {
            ContainerKind::List => tx.list_insert_new(ListId(parent_id), 0, create.kind),
            _ if create.kind == ContainerKind::List => tx
                .replace_with_new_list(MapId(parent_id), &format!("k{n}"))
                .map(ListId::id),
            _ => tx
                .replace_with_new_map(MapId(parent_id), &format!("k{n}"))
                .map(MapId::id),
        });
        let allowed = parent_depth < shape.limit;
        match result {
            Ok(id) if allowed => {
                made.push((id, create.kind, parent_depth + 1));
                deepest = deepest.max(parent_depth + 1);
            }
            Err(DocError::TooDeep { limit }) if !allowed && limit == shape.limit => {}
            other => {
                eprintln!("creation {n} at depth {}: {other:?}", parent_depth + 1);
                return false;
            }
        }
    }
    let update = writer.update_since(&VersionVector::new());

    let mut reader = Document::new(r(2));
    reader.set_max_depth(shape.limit).expect("in range");
    let seen = recorder(&mut reader);
    let mut json = reader.to_json();
    let synced = reader.apply_update(&update).is_ok()
        && replay(&mut json, &seen)
        && json == writer.to_json()
        && reader.to_json() == writer.to_json();

    let mut reloaded = Document::new(r(3));
    reloaded.set_max_depth(shape.limit).expect("in range");
    let reloads =
        reloaded.apply_update(&writer.encode()).is_ok() && reloaded.to_json() == writer.to_json();

    let mut other = Document::new(r(4));
    other.set_max_depth(shape.other_limit).expect("in range");
    let other_ok = match other.apply_update(&update) {
        Ok(_) => deepest <= shape.other_limit && other.to_json() == writer.to_json(),
        Err(LoadError::TooDeep { limit }) => {
            deepest > shape.other_limit && limit == shape.other_limit && other.history_len() == 0
        }
        Err(_) => false,
    };
    synced && reloads && other_ok
}

#[test]
fn property_deep_and_wide_documents_sync_exactly() {
    check(300, deep_and_wide_documents_sync_exactly);
}
