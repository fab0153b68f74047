//! Reading updates without applying them, and state equality of documents.

use crdt_core::{Document, Dot, DotRange, LoadError, MapId, ReplicaId, UpdateKind, VersionVector};

fn r(n: u128) -> ReplicaId {
    ReplicaId::from_u128(0x400 + n)
}

/// Alice writes, Bob forks and both write concurrently, then Alice merges Bob.
fn two_writers() -> (Document, VersionVector) {
    let mut alice = Document::new(r(1));
    alice.set(MapId::ROOT, "base", 0).expect("a map");
    let base = alice.version();
    let mut bob = alice.fork(r(2));
    alice
        .transact(|tx| {
            tx.set(MapId::ROOT, "a1", 1)?;
            tx.set(MapId::ROOT, "a2", 2)
        })
        .expect("a map");
    let text = bob.replace_with_new_text(MapId::ROOT, "t").expect("a map");
    bob.text_insert(text, 0, "hey").expect("in range");
    alice.merge(&bob).expect("merges");
    (alice, base)
}

#[test]
fn an_update_tells_its_events_and_dependencies_without_being_applied() {
    let (doc, base) = two_writers();
    let update = doc.update_since(&base);
    let info = Document::inspect_update(&update).expect("decodes");
    assert_eq!(info.kind, UpdateKind::Changes);
    assert_eq!(
        info.events,
        [
            DotRange {
                replica: r(1),
                counters: 2..4
            },
            DotRange {
                replica: r(2),
                counters: 1..5
            },
        ]
    );
    assert_eq!(info.event_count(), 6);
    assert_eq!(info.dependencies, [Dot::new(r(1), 1)]);
    assert_eq!(info.bytes, update.len());
    assert!(info.operations >= 3);

    // What it depends on is exactly what a replica lacking it is told is missing.
    let mut empty = Document::new(r(3));
    assert_eq!(
        empty.apply_update(&update),
        Err(LoadError::MissingEvent(Dot::new(r(1), 1)))
    );
}

#[test]
fn snapshots_and_shallow_snapshots_say_what_they_are() {
    let (doc, base) = two_writers();
    let snapshot = Document::inspect_update(&doc.encode()).expect("decodes");
    assert_eq!(snapshot.kind, UpdateKind::Snapshot);
    assert_eq!(snapshot.event_count(), doc.history_len() as u64);
    assert!(snapshot.dependencies.is_empty());

    let shallow_bytes = doc.encode_shallow(&base).expect("a version");
    let shallow = Document::inspect_update(&shallow_bytes).expect("decodes");
    assert_eq!(
        shallow.kind,
        UpdateKind::ShallowSnapshot { base: base.clone() }
    );
    assert_eq!(
        shallow.event_count(),
        6,
        "the base's events are not carried"
    );
    assert!(shallow.dependencies.is_empty(), "an empty replica loads it");
}

#[test]
fn damaged_bytes_are_refused_by_inspection_as_by_loading() {
    let (doc, base) = two_writers();
    let update = doc.update_since(&base);
    for cut in 0..update.len() {
        let prefix = &update[..cut];
        assert_eq!(
            Document::inspect_update(prefix).is_err(),
            Document::load(prefix, r(9)).is_err(),
            "prefix of {cut} bytes"
        );
    }
}

#[test]
fn documents_are_equal_when_their_events_and_state_are() {
    let (doc, _) = two_writers();
    let mut other = Document::new(r(5));
    assert_ne!(doc, other);
    other.merge(&doc).expect("merges");
    assert_eq!(doc, other, "same events, same state, another replica id");

    // A compacted replica keeps less history but the same version and state.
    let mut compacted = Document::load(&doc.encode(), r(6)).expect("loads");
    compacted.compact(&doc.version()).expect("compacts");
    assert_eq!(compacted, doc);

    // A concurrent write makes a conflict: same JSON on both sides can still differ in state.
    let mut left = doc.fork(r(7));
    let mut right = doc.fork(r(8));
    left.set(MapId::ROOT, "k", 1).expect("a map");
    right.set(MapId::ROOT, "k", 1).expect("a map");
    assert_ne!(left, right, "different events");
    left.merge(&right).expect("merges");
    right.merge(&left).expect("merges");
    assert_eq!(left, right);
}
