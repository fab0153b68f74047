//! Named containers (`text_at`, `list_at`, ...): replicas that open the same name
//! concurrently share one container, whatever the delivery order, and no edit is lost; a kind
//! mismatch is a typed error; named containers survive encoding, shallow snapshots, undo and
//! revert.

use std::sync::{Arc, Mutex};

use crdt_core::{
    ContainerId, ContainerKind, DocError, Document, MapId, NamedId, Origin, Patch, ReplicaId,
    UndoManager, Value, VersionVector,
};
use quickcheck::{Arbitrary, Gen};
use serde_json::json;

use crate::harness::check;

fn replica(index: usize) -> ReplicaId {
    ReplicaId::from_u128(0x900 + index as u128)
}

fn load(bytes: &[u8], index: usize) -> Document {
    Document::load(bytes, replica(index)).expect("loads")
}

/// Every order of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut order = rest.clone();
            order.insert(at, n - 1);
            out.push(order);
        }
    }
    out
}

/// Replica `i` of `n` opens every kind of named container at the root and in a named map,
/// and writes its own marks into each.
fn open_and_edit(i: usize) -> Document {
    let mut doc = Document::new(replica(i));
    doc.transact(|tx| {
        let title = tx.text_at(MapId::ROOT, "title")?;
        tx.text_insert(title, 0, &format!("<{i}>"))?;
        let items = tx.list_at(MapId::ROOT, "items")?;
        tx.list_insert(items, 0, format!("item {i}"))?;
        let likes = tx.counter_at(MapId::ROOT, "likes")?;
        tx.counter_add(likes, 1 << i)?;
        let settings = tx.map_at(MapId::ROOT, "settings")?;
        tx.set(settings, &format!("by {i}"), i as i64)?;
        let notes = tx.text_at(settings, "notes")?;
        tx.text_insert(notes, 0, &format!("[{i}]"))?;
        let status = tx.register_at(MapId::ROOT, "status")?;
        tx.register_set(status, i as i64)?;
        Ok(())
    })
    .expect("a fresh document");
    // A second change, typed into the same containers opened again.
    let title = doc.text_at(MapId::ROOT, "title").expect("the text");
    doc.text_insert(title, 0, "!").expect("in range");
    doc
}

/// Checks that `doc` holds every replica's edits of [`open_and_edit`] once.
fn assert_holds_all(doc: &Document, n: usize) {
    let title = doc.text(crdt_core::TextId(named(
        ContainerId::Root,
        "title",
        ContainerKind::Text,
    )));
    let title = title.expect("the shared title");
    let settings = named(ContainerId::Root, "settings", ContainerKind::Map);
    let notes = doc
        .text(crdt_core::TextId(named(
            settings,
            "notes",
            ContainerKind::Text,
        )))
        .expect("the shared notes");
    let items = doc
        .list(crdt_core::ListId(named(
            ContainerId::Root,
            "items",
            ContainerKind::List,
        )))
        .expect("the shared list");
    assert_eq!(items.len(), n, "{items:?}");
    for i in 0..n {
        assert!(title.contains(&format!("<{i}>")), "{title}");
        assert!(notes.contains(&format!("[{i}]")), "{notes}");
        assert!(items.contains(&Value::from(format!("item {i}"))));
        assert_eq!(
            doc.get(MapId(settings), &format!("by {i}")).expect("a map"),
            Some(&Value::from(i as i64))
        );
    }
    assert_eq!(title.matches('!').count(), n);
    let likes = named(ContainerId::Root, "likes", ContainerKind::Counter);
    assert_eq!(
        doc.counter(crdt_core::CounterId(likes)).expect("a counter"),
        (1 << n) - 1
    );
    // One container per key, not one per creator.
    for key in ["title", "items", "likes", "settings", "status"] {
        assert_eq!(
            doc.get_conflicts(MapId::ROOT, key).expect("a map").len(),
            1,
            "{key}"
        );
    }
}

fn named(parent: ContainerId, key: &str, kind: ContainerKind) -> ContainerId {
    ContainerId::Named(NamedId::derive(parent, key, kind))
}

#[test]
fn two_and_three_replicas_share_what_they_open_concurrently_in_any_delivery_order() {
    for n in [2, 3] {
        let replicas: Vec<Document> = (0..n).map(open_and_edit).collect();
        let updates: Vec<Vec<u8>> = replicas
            .iter()
            .map(|doc| doc.update_since(&VersionVector::new()))
            .collect();
        let mut results = Vec::new();
        for order in permutations(n) {
            // A fresh replica receiving every update in this order, and each creator receiving
            // the others' in this order.
            let mut fresh = Document::new(replica(50));
            for &i in &order {
                fresh.apply_update(&updates[i]).expect("applies");
            }
            assert_holds_all(&fresh, n);
            for (me, doc) in replicas.iter().enumerate() {
                let mut doc = doc.fork(replica(60 + me));
                for &i in order.iter().filter(|&&i| i != me) {
                    doc.apply_update(&updates[i]).expect("applies");
                }
                assert_holds_all(&doc, n);
                assert_eq!(doc.to_json(), fresh.to_json());
                assert!(doc == fresh, "same state");
            }
            results.push(fresh.to_json());
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]));
    }
}

#[test]
fn a_replica_that_already_has_the_container_opens_it_without_a_change() {
    let mut doc = Document::new(replica(1));
    let title = doc.text_at(MapId::ROOT, "title").expect("a map");
    let version = doc.version();
    assert_eq!(doc.text_at(MapId::ROOT, "title"), Ok(title));
    assert_eq!(doc.version(), version);
    // A text made the old way is opened too (documents written before named containers).
    let body = doc
        .replace_with_new_text(MapId::ROOT, "body")
        .expect("a map");
    assert!(matches!(body.id(), ContainerId::Created(_)));
    assert_eq!(doc.text_at(MapId::ROOT, "body"), Ok(body));
}

#[test]
fn a_kind_mismatch_is_a_typed_error_and_loses_nothing() {
    let mut a = Document::new(replica(1));
    let mut b = Document::new(replica(2));
    let text = a.text_at(MapId::ROOT, "x").expect("a map");
    a.text_insert(text, 0, "typed").expect("in range");
    let list = b.list_at(MapId::ROOT, "x").expect("a map");
    b.list_insert(list, 0, 1).expect("in range");
    a.merge(&b).expect("merges");
    b.merge(&a).expect("merges");
    assert_eq!(a.to_json(), b.to_json());

    // Both survive as a conflict of the key; the one shown opens, the other is refused.
    assert_eq!(a.get_conflicts(MapId::ROOT, "x").expect("a map").len(), 2);
    let (shown, hidden) = match a.get(MapId::ROOT, "x").expect("a map") {
        Some(Value::Container(ContainerKind::Text, _)) => {
            (ContainerKind::Text, ContainerKind::List)
        }
        _ => (ContainerKind::List, ContainerKind::Text),
    };
    let open = |doc: &mut Document, kind| match kind {
        ContainerKind::Text => doc.text_at(MapId::ROOT, "x").map(|t| t.id()),
        _ => doc.list_at(MapId::ROOT, "x").map(|l| l.id()),
    };
    assert!(open(&mut a, shown).is_ok());
    let version = a.version();
    assert_eq!(
        open(&mut a, hidden),
        Err(DocError::KeyHolds {
            map: ContainerId::Root,
            key: "x".into(),
            expected: hidden,
            found: Some(shown),
        })
    );
    assert_eq!(a.version(), version, "nothing written");
    // Neither side's content is gone: both containers keep it.
    assert_eq!(a.text(text).expect("a text"), "typed");
    assert_eq!(a.list_len(list).expect("a list"), 1);

    // A scalar at the key: refused, with `found: None`.
    a.set(MapId::ROOT, "n", 5).expect("a map");
    let error = a.map_at(MapId::ROOT, "n").expect_err("holds a scalar");
    assert!(matches!(error, DocError::KeyHolds { found: None, .. }));
    assert_eq!(error.to_string(), "key \"n\" holds a value, not a Map");
}

#[test]
fn a_deleted_named_container_comes_back_with_its_content_a_replaced_one_is_fresh() {
    let mut doc = Document::new(replica(1));
    let notes = doc.text_at(MapId::ROOT, "notes").expect("a map");
    doc.text_insert(notes, 0, "kept").expect("in range");
    doc.delete(MapId::ROOT, "notes").expect("a map");
    assert_eq!(doc.to_json(), json!({}));

    let events = Arc::new(Mutex::new(Vec::<Patch>::new()));
    let sink = Arc::clone(&events);
    doc.subscribe(Box::new(move |_: Origin, patches: &[Patch]| {
        sink.lock()
            .expect("not poisoned")
            .extend_from_slice(patches);
    }));
    assert_eq!(doc.text_at(MapId::ROOT, "notes"), Ok(notes));
    assert_eq!(doc.to_json(), json!({ "notes": "kept" }));
    // Subscribers see the key set, then the content that came back with it.
    let seen = events.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(matches!(
        &seen[1].action,
        crdt_core::PatchAction::TextInsert { index: 0, text } if text == "kept"
    ));

    let fresh = doc
        .replace_with_new_text(MapId::ROOT, "notes")
        .expect("a map");
    assert_ne!(fresh, notes);
    assert_eq!(doc.to_json(), json!({ "notes": "" }));
}

#[test]
fn a_remote_reopening_shows_the_content_to_subscribers() {
    let mut a = Document::new(replica(1));
    let notes = a.text_at(MapId::ROOT, "notes").expect("a map");
    a.text_insert(notes, 0, "kept").expect("in range");
    a.delete(MapId::ROOT, "notes").expect("a map");
    let mut b = a.fork(replica(2));
    let mut tracked = b.to_json();
    let events = Arc::new(Mutex::new(Vec::<Patch>::new()));
    let sink = Arc::clone(&events);
    b.subscribe(Box::new(move |_: Origin, patches: &[Patch]| {
        sink.lock()
            .expect("not poisoned")
            .extend_from_slice(patches);
    }));
    let since = b.version();
    a.text_at(MapId::ROOT, "notes").expect("a map");
    b.apply_update(&a.update_since(&since)).expect("applies");
    for patch in events.lock().expect("not poisoned").iter() {
        assert!(crate::document::apply_patch(&mut tracked, patch));
    }
    assert_eq!(tracked, json!({ "notes": "kept" }));
    assert_eq!(tracked, b.to_json());
}

#[test]
fn undo_and_revert_bring_a_named_container_back_as_itself() {
    let mut doc = Document::new(replica(1));
    let title = doc.text_at(MapId::ROOT, "title").expect("a map");
    doc.text_insert(title, 0, "Draft").expect("in range");
    let before = doc.version();

    let mut undo = UndoManager::new(&mut doc);
    doc.delete(MapId::ROOT, "title").expect("a map");
    assert!(undo.undo(&mut doc).expect("undoes"));
    assert_eq!(doc.to_json(), json!({ "title": "Draft" }));
    assert_eq!(
        doc.get(MapId::ROOT, "title").expect("a map"),
        Some(&Value::Container(ContainerKind::Text, title.id()))
    );

    doc.delete(MapId::ROOT, "title").expect("a map");
    doc.revert_to(&before).expect("reverts");
    assert_eq!(doc.to_json(), json!({ "title": "Draft" }));
    assert_eq!(doc.text_at(MapId::ROOT, "title"), Ok(title));
}

#[test]
fn named_containers_survive_encoding_shallow_snapshots_and_views() {
    let mut a = Document::new(replica(1));
    let plain = Document::new(replica(9));
    // Nothing named: still written as format 1, which older builds read.
    assert_eq!(plain.encode()[4], 1);

    let settings = a.map_at(MapId::ROOT, "settings").expect("a map");
    let created = a.replace_with_new_map(settings, "created").expect("a map");
    let deep = a.text_at(created, "deep").expect("a map");
    a.text_insert(deep, 0, "deep").expect("in range");
    let base = a.version();
    let later = a.list_at(settings, "later").expect("a map");
    a.list_insert(later, 0, true).expect("in range");
    let encoded = a.encode();
    assert_eq!(encoded[4], 2, "named containers need format 2");

    let full = load(&encoded, 2);
    assert!(full == a);
    assert_eq!(full.path_of(deep.id()), a.path_of(deep.id()));
    let replayed = load(&a.update_since(&VersionVector::new()), 3);
    assert!(replayed == a);

    let shallow = load(&a.encode_shallow(&base).expect("a version"), 4);
    assert!(shallow == a);
    assert_eq!(shallow.path_of(deep.id()), a.path_of(deep.id()));
    assert_eq!(shallow.path_of(later.id()), a.path_of(later.id()));
    let again = load(&shallow.encode(), 5);
    assert!(again == a);

    // Concurrent openers on both sides of a shallow load still share.
    let mut b = shallow.fork(replica(6));
    let mut c = a.fork(replica(7));
    let b_notes = b.text_at(settings, "notes").expect("a map");
    b.text_insert(b_notes, 0, "b").expect("in range");
    let c_notes = c.text_at(settings, "notes").expect("a map");
    c.text_insert(c_notes, 0, "c").expect("in range");
    b.merge(&c).expect("merges");
    assert_eq!(b.text(b_notes).expect("a text").len(), 2);

    // Time travel: before the list was opened the map shows no key, and after it does.
    let view = a.view_at(&base).expect("a version");
    assert_eq!(view.keys(settings).expect("a map"), ["created"]);
    assert_eq!(view.kind_of(later.id()), Some(ContainerKind::List));
    assert_eq!(view.list(later).expect("a list").len(), 0);
}

// ---- property ---------------------------------------------------------------------------

/// One replica's edits: opens named containers (a fixed kind per name, so no mismatch) and
/// writes into them.
#[derive(Clone, Debug)]
struct Typing {
    /// (name index, mark) pairs: opens name `name % NAMES.len()`, writes `mark` into it.
    edits: Vec<(u8, u8)>,
    /// Changes are cut here (several changes per replica).
    split: u8,
}

const NAMES: [(&str, ContainerKind); 4] = [
    ("title", ContainerKind::Text),
    ("items", ContainerKind::List),
    ("likes", ContainerKind::Counter),
    ("meta", ContainerKind::Map),
];

impl Arbitrary for Typing {
    fn arbitrary(g: &mut Gen) -> Self {
        Typing {
            edits: (0..1 + usize::arbitrary(g) % 6)
                .map(|_| (u8::arbitrary(g), u8::arbitrary(g)))
                .collect(),
            split: u8::arbitrary(g),
        }
    }
}

#[derive(Clone, Debug)]
struct Concurrent {
    replicas: Vec<Typing>,
    /// The order updates are delivered in, as picks among those left.
    order: Vec<u8>,
}

impl Arbitrary for Concurrent {
    fn arbitrary(g: &mut Gen) -> Self {
        Concurrent {
            replicas: (0..2 + usize::arbitrary(g) % 3)
                .map(|_| Typing::arbitrary(g))
                .collect(),
            order: Vec::arbitrary(g),
        }
    }
}

/// Writes `mark` into the named container `name`; returns what must survive: (name, the
/// text, element or key written, or the amount added).
fn write_mark(
    doc: &mut Document,
    replica_index: usize,
    name: u8,
    mark: u8,
) -> (usize, String, i64) {
    let name = usize::from(name) % NAMES.len();
    let (key, kind) = NAMES[name];
    let word = format!("<{replica_index}.{mark}>");
    match kind {
        ContainerKind::Text => {
            let text = doc.text_at(MapId::ROOT, key).expect("always a text");
            let len = doc.text_len(text).expect("a text");
            // At an end: inside another word would split it (not a loss, but not findable).
            let at = if mark.is_multiple_of(2) { 0 } else { len };
            doc.text_insert(text, at, &word).expect("in range");
        }
        ContainerKind::List => {
            let list = doc.list_at(MapId::ROOT, key).expect("always a list");
            let len = doc.list_len(list).expect("a list");
            doc.list_insert(list, usize::from(mark) % (len + 1), word.as_str())
                .expect("in range");
        }
        ContainerKind::Counter => {
            let counter = doc.counter_at(MapId::ROOT, key).expect("always a counter");
            doc.counter_add(counter, i64::from(mark))
                .expect("a counter");
        }
        _ => {
            let map = doc.map_at(MapId::ROOT, key).expect("always a map");
            doc.set(map, &word, 1).expect("a map");
        }
    }
    (name, word, i64::from(mark))
}

#[test]
fn property_concurrent_openers_lose_no_edit_in_any_delivery_order() {
    fn property(case: Concurrent) -> bool {
        let mut updates = Vec::new();
        let mut marks = Vec::new();
        for (i, typing) in case.replicas.iter().enumerate() {
            let mut doc = Document::new(replica(i));
            let split = usize::from(typing.split) % typing.edits.len();
            for (at, &(name, mark)) in typing.edits.iter().enumerate() {
                if at == split {
                    updates.push(doc.update_since(&VersionVector::new()));
                }
                marks.push(write_mark(&mut doc, i, name, mark));
            }
            updates.push(doc.update_since(&VersionVector::new()));
        }
        // Deliver in the order picked (the second update of a replica includes the first:
        // delivering it first makes the first a duplicate).
        let mut left: Vec<usize> = (0..updates.len()).collect();
        let mut delivered = Vec::new();
        for pick in case.order.iter().chain(std::iter::repeat(&0)) {
            if left.is_empty() {
                break;
            }
            delivered.push(left.remove(usize::from(*pick) % left.len()));
        }
        let mut doc = Document::new(replica(99));
        let mut reverse = Document::new(replica(98));
        for &i in &delivered {
            if doc.apply_update(&updates[i]).is_err() {
                return false;
            }
        }
        for &i in delivered.iter().rev() {
            if reverse.apply_update(&updates[i]).is_err() {
                return false;
            }
        }
        if doc != reverse || doc.to_json() != reverse.to_json() {
            return false;
        }
        let json = doc.to_json();
        let mut total = 0;
        for (name, word, by) in &marks {
            let (key, kind) = NAMES[*name];
            let here = &json[key];
            let survived = match kind {
                ContainerKind::Text => here.as_str().is_some_and(|t| t.contains(word.as_str())),
                ContainerKind::List => here
                    .as_array()
                    .is_some_and(|items| items.contains(&json!(word))),
                ContainerKind::Counter => {
                    total += by;
                    true
                }
                _ => here.get(word.as_str()).is_some(),
            };
            if !survived {
                eprintln!("lost {word} in {key}: {json}");
                return false;
            }
        }
        let counted = marks
            .iter()
            .any(|(name, _, _)| NAMES[*name].1 == ContainerKind::Counter);
        !counted || json["likes"] == json!(total)
    }
    check(200, property as fn(Concurrent) -> bool);
}

// ---- golden bytes -------------------------------------------------------------------------

/// The document of the format 2 golden file: named containers at the root, in a named map,
/// in a created map, a created container in a named map, and a concurrent opening.
fn golden_document() -> (Document, VersionVector) {
    let mut a = Document::new(replica(1));
    let title = a.text_at(MapId::ROOT, "title").expect("a map");
    a.text_insert(title, 0, "Hello").expect("in range");
    let settings = a.map_at(MapId::ROOT, "settings").expect("a map");
    a.set(settings, "theme", "dark").expect("a map");
    let created = a.replace_with_new_map(settings, "created").expect("a map");
    let deep = a.list_at(created, "deep").expect("a map");
    a.list_insert(deep, 0, 1).expect("in range");
    let base = a.version();
    let mut b = a.fork(replica(2));
    b.text_insert(title, 5, "!").expect("in range");
    let likes = b.counter_at(MapId::ROOT, "likes").expect("a map");
    b.counter_add(likes, 2).expect("a counter");
    let likes = a.counter_at(MapId::ROOT, "likes").expect("a map");
    a.counter_add(likes, 3).expect("a counter");
    a.merge(&b).expect("merges");
    // A shallow snapshot's later events must all descend from its base: `base` is before the
    // concurrent edits.
    (a, base)
}

/// The encodings in the golden file: an update from nothing, a snapshot, a shallow snapshot
/// at `base`.
fn golden_encodings(doc: &Document, base: &VersionVector) -> Vec<Vec<u8>> {
    vec![
        doc.update_since(&VersionVector::new()),
        doc.encode(),
        doc.encode_shallow(base)
            .expect("a version every later event descends from"),
    ]
}

/// Format 2 data written when named containers were introduced still loads, to the same
/// state (first line: the JSON; then one encoding per line, in hex).
#[test]
fn format_2_documents_keep_loading() {
    let golden = include_str!("golden_named_v2.txt");
    let mut lines = golden.lines();
    let expected: serde_json::Value =
        serde_json::from_str(lines.next().expect("json")).expect("json");
    let mut count = 0;
    for line in lines {
        let bytes: Vec<u8> = (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
            .collect();
        assert_eq!(bytes[4], 2, "format 2");
        let doc = Document::load(&bytes, replica(9)).expect("format 2 data loads");
        assert_eq!(doc.to_json(), expected);
        let title = named(ContainerId::Root, "title", ContainerKind::Text);
        assert_eq!(
            doc.text(crdt_core::TextId(title)).expect("a text"),
            "Hello!"
        );
        count += 1;
    }
    assert_eq!(count, 3);
}

/// Prints the golden file's content (run with `--ignored --nocapture` when the format
/// changes on purpose; never rewrite the file for a change that should be compatible).
#[test]
#[ignore]
fn print_golden_named_v2() {
    let (doc, base) = golden_document();
    println!("{}", doc.to_json());
    for bytes in golden_encodings(&doc, &base) {
        println!(
            "{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
    }
}

/// Every single-bit corruption of format 2 data (checksum recomputed, so the decoder itself
/// must catch it) loads or is refused cleanly, and a refused update changes nothing; format 2
/// data relabelled as format 1 is refused.
#[test]
fn corrupt_format_2_data_is_refused_cleanly() {
    let golden = include_str!("golden_named_v2.txt");
    let (target, _) = golden_document();
    for line in golden.lines().skip(1) {
        let bytes: Vec<u8> = (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
            .collect();
        let mut relabelled = bytes.clone();
        relabelled[4] = 1;
        reseal(&mut relabelled);
        assert!(Document::load(&relabelled, replica(9)).is_err());
        for at in 10..bytes.len() {
            for bit in 0..8 {
                let mut corrupt = bytes.clone();
                corrupt[at] ^= 1 << bit;
                reseal(&mut corrupt);
                let _ = Document::load(&corrupt, replica(9));
                let mut doc = target.fork(replica(10));
                if doc.apply_update(&corrupt).is_err() {
                    assert!(doc == target, "a refused update changed nothing");
                }
            }
        }
    }
}

/// Recomputes the checksum of an encoded document (CRC-32 of the body, after the header).
fn reseal(bytes: &mut [u8]) {
    let crc = crc32(&bytes[10..]);
    bytes[6..10].copy_from_slice(&crc.to_le_bytes());
}

/// CRC-32 (IEEE), bit by bit: tests only.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
