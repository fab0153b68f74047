//! Replica identity (issue 13): `fork` gives a second writer its own identity, so edits made on
//! both sides merge without loss; `duplicate_same_replica` keeps the identity, which is right for
//! a checkpoint and wrong for a second writer. That `Document`, `Text`, `List` and
//! `LamportClock` are not `Clone` is checked by `compile_fail` doc tests on their `fork`.

use crdt_core::op_based::{OpAwSet, OpCounter, OpRegister};
use crdt_core::{Document, LamportClock, List, MapId, ReplicaId, Text, Value};
use serde_json::json;

fn replica(index: u128) -> ReplicaId {
    ReplicaId::from_u128(0x1300 + index)
}

/// A document with a key, a text, a list and a counter, edited as `replica(1)`.
fn seeded_document() -> Document {
    let mut doc = Document::new(replica(1));
    doc.transact(|tx| {
        tx.set(MapId::ROOT, "title", "draft")?;
        let text = tx.replace_with_new_text(MapId::ROOT, "body")?;
        tx.text_insert(text, 0, "middle")?;
        let list = tx.replace_with_new_list(MapId::ROOT, "items")?;
        tx.list_insert(list, 0, "first")?;
        let counter = tx.replace_with_new_counter(MapId::ROOT, "count")?;
        tx.counter_add(counter, 1)
    })
    .expect("edits on a fresh document succeed");
    doc
}

/// Edits every container of a document made by `seeded_document`: `key` is set, `word` goes at
/// `at` in the text, `item` is pushed to the list, the counter goes up by `by`.
fn edit_everything(doc: &mut Document, key: &str, word: &str, at: usize, item: &str, by: i64) {
    let (text, list, counter) = match (
        doc.get(MapId::ROOT, "body"),
        doc.get(MapId::ROOT, "items"),
        doc.get(MapId::ROOT, "count"),
    ) {
        (Ok(Some(t)), Ok(Some(l)), Ok(Some(c))) => (
            t.as_text().expect("a text"),
            l.as_list().expect("a list"),
            c.as_counter().expect("a counter"),
        ),
        other => panic!("the seeded containers are missing: {other:?}"),
    };
    doc.transact(|tx| {
        tx.set(MapId::ROOT, key, true)?;
        tx.text_insert(text, at, word)?;
        let len = tx.doc().list(list)?.len();
        tx.list_insert(list, len, item)?;
        tx.counter_add(counter, by)
    })
    .expect("edits in range succeed");
}

#[test]
fn a_forked_document_edits_as_a_new_replica_and_both_sides_merge_without_loss() {
    let mut alice = seeded_document();
    let mut bob = alice.fork(replica(2));
    assert_eq!(bob.replica(), replica(2));
    assert_eq!(alice.replica(), replica(1));
    assert_eq!(bob.to_json(), alice.to_json());
    assert_eq!(bob.version(), alice.version());

    edit_everything(&mut alice, "by_alice", "<", 0, "from alice", 10);
    edit_everything(&mut bob, "by_bob", ">", 6, "from bob", 100);
    // Both sides wrote the same key concurrently, too: a conflict, not a lost write.
    alice
        .transact(|tx| tx.set(MapId::ROOT, "title", "alice's"))
        .expect("a map");
    bob.transact(|tx| tx.set(MapId::ROOT, "title", "bob's"))
        .expect("a map");

    let from_bob = bob.update_since(&alice.version());
    let from_alice = alice.update_since(&bob.version());
    alice.apply_update(&from_bob).expect("bob's update applies");
    bob.apply_update(&from_alice)
        .expect("alice's update applies");

    assert_eq!(alice.to_json(), bob.to_json());
    assert_eq!(alice.version(), bob.version());
    let json = alice.to_json();
    assert_eq!(json["by_alice"], json!(true));
    assert_eq!(json["by_bob"], json!(true));
    assert_eq!(json["body"], json!("<middle>"));
    let items = json["items"].as_array().expect("a list");
    assert_eq!(items.len(), 3);
    assert!(items.contains(&json!("from alice")) && items.contains(&json!("from bob")));
    assert_eq!(json["count"], json!(111));
    let mut titles = alice
        .get_conflicts(MapId::ROOT, "title")
        .expect("the root map")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    titles.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(titles, [Value::from("alice's"), Value::from("bob's")]);
}

#[test]
fn a_duplicate_keeps_the_replica_and_serves_as_a_checkpoint() {
    let mut doc = seeded_document();
    let checkpoint = doc.duplicate_same_replica();
    assert_eq!(checkpoint.replica(), doc.replica());
    assert_eq!(checkpoint.to_json(), doc.to_json());
    assert_eq!(checkpoint.version(), doc.version());

    // Edits the original makes and never sends are abandoned with it.
    edit_everything(&mut doc, "abandoned", "x", 0, "abandoned", 5);
    drop(doc);
    let mut doc = checkpoint;
    edit_everything(&mut doc, "kept", "y", 0, "kept", 7);

    // A peer that only ever saw the checkpoint's line merges it as usual.
    let mut peer = Document::new(replica(9));
    peer.merge(&doc).expect("merges");
    assert_eq!(peer.to_json(), doc.to_json());
    assert_eq!(peer.to_json()["kept"], json!(true));
    assert!(peer.to_json().get("abandoned").is_none());
}

#[test]
fn two_live_duplicates_that_both_edit_do_not_converge() {
    // Why a second writer must fork: both copies give their next edit the same dot.
    let mut first = seeded_document();
    let mut second = first.duplicate_same_replica();
    edit_everything(&mut first, "one", "1", 0, "one", 1);
    edit_everything(&mut second, "two", "2", 0, "two", 2);
    assert_eq!(
        first.version(),
        second.version(),
        "the same dots, different edits"
    );

    let merged = first.merge(&second);
    // Either the merge is refused, or the other copy's edit is taken as already known.
    assert!(merged.is_err() || first.to_json().get("two").is_none());
    assert_ne!(first.to_json(), second.to_json());
}

#[test]
fn forked_texts_and_lists_merge_without_loss() {
    let mut alice = Text::new(replica(1));
    alice.insert(0, "shared").expect("in range");
    let mut bob = alice.fork(replica(2));
    assert_eq!((alice.replica(), bob.replica()), (replica(1), replica(2)));
    alice.insert(0, "[").expect("in range");
    bob.insert(6, "]").expect("in range");
    alice.merge(&bob).expect("merges");
    bob.merge(&alice).expect("merges");
    assert_eq!(alice.to_string(), "[shared]");
    assert_eq!(bob.to_string(), alice.to_string());

    let saved = alice.duplicate_same_replica();
    assert_eq!(saved.replica(), alice.replica());
    assert_eq!(saved.to_string(), alice.to_string());

    let mut left: List<u32> = List::new(replica(3));
    left.push(1).expect("in range");
    let mut right = left.fork(replica(4));
    assert_eq!((left.replica(), right.replica()), (replica(3), replica(4)));
    left.insert(0, 0).expect("in range");
    right.push(2).expect("in range");
    left.merge(&right).expect("merges");
    right.merge(&left).expect("merges");
    assert_eq!(left.to_vec(), [0, 1, 2]);
    assert_eq!(right.to_vec(), left.to_vec());
    assert_eq!(left.duplicate_same_replica().to_vec(), left.to_vec());
}

#[test]
fn forked_op_based_replicas_make_distinct_operations() {
    let mut a = OpCounter::new(replica(1));
    a.increment(1);
    let mut b = a.fork(replica(2));
    assert_eq!(b.replica(), replica(2));
    let (up, down) = (a.increment(5), b.decrement(2));
    assert_ne!(up.id, down.id);
    a.apply(down).expect("deliverable");
    b.apply(up).expect("deliverable");
    assert_eq!((a.value(), b.value()), (4, 4));
    assert_eq!(a.duplicate_same_replica().replica(), a.replica());

    let mut a = OpRegister::new(replica(1));
    a.set("old");
    let mut b = a.fork(replica(2));
    let (x, y) = (a.set("a"), b.set("b"));
    a.apply(y).expect("deliverable");
    b.apply(x).expect("deliverable");
    assert_eq!(a.values().count(), 2, "both concurrent writes are kept");
    assert_eq!(a.winner(), b.winner());

    let mut a = OpAwSet::new(replica(1));
    a.insert("milk");
    let mut b = a.fork(replica(2));
    let (eggs, bread) = (a.insert("eggs"), b.insert("bread"));
    a.apply(bread).expect("deliverable");
    b.apply(eggs).expect("deliverable");
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        ["bread", "eggs", "milk"].iter().collect::<Vec<_>>()
    );
    assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());

    let mut clock = LamportClock::new(replica(1));
    clock.tick();
    let mut other = clock.fork(replica(2));
    assert_ne!(clock.tick(), other.tick());
}
