//! Document history: reading earlier versions, changes between versions, diffs, forks at a
//! version, reverts. Behavioural tests, then properties over random multi-replica histories.

use std::sync::{Arc, Mutex};

use crdt_core::{
    Bias, ChangeOptions, ContainerKind, CounterId, CursorError, DocError, Document, HistoryError,
    ListId, MapId, Origin, Patch, RegisterId, ReplicaId, TextId, Transaction, UndoManager, Value,
    VersionVector,
};
use quickcheck::{Arbitrary, Gen};
use serde_json::{Value as Json, json};

use crate::document::{Edit, apply_patch, edit};
use crate::harness::check;

fn r(n: u128) -> ReplicaId {
    ReplicaId::from_u128(0x300 + n)
}

fn vv(entries: &[(ReplicaId, u64)]) -> VersionVector {
    entries.iter().copied().collect()
}

// ---- reading earlier versions ------------------------------------------------------------

#[test]
fn view_at_reads_every_container_kind_as_it_was() {
    let mut doc = Document::new(r(1));
    let text = doc.replace_with_new_text(MapId::ROOT, "text").unwrap();
    let list = doc.replace_with_new_list(MapId::ROOT, "list").unwrap();
    let counter = doc.replace_with_new_counter(MapId::ROOT, "count").unwrap();
    let register = doc.replace_with_new_register(MapId::ROOT, "reg").unwrap();
    doc.text_insert(text, 0, "old text").unwrap();
    doc.list_insert(list, 0, 1).unwrap();
    doc.counter_add(counter, 5).unwrap();
    doc.register_set(register, "before").unwrap();
    let before = doc.version();
    let json_before = doc.to_json();

    doc.text_delete(text, 0..4).unwrap();
    doc.text_insert(text, 4, "!").unwrap();
    doc.list_insert(list, 1, 2).unwrap();
    doc.counter_add(counter, -7).unwrap();
    doc.register_set(register, "after").unwrap();
    doc.set(MapId::ROOT, "new", true).unwrap();
    let json_after = doc.to_json();

    let view = doc.view_at(&before).unwrap();
    assert_eq!(view.to_json(), json_before);
    assert_eq!(view.version(), &before);
    assert_eq!(view.text(text).unwrap(), "old text");
    assert_eq!(view.counter(counter).unwrap(), 5);
    // The document itself did not move.
    assert_eq!(doc.to_json(), json_after);
    assert_eq!(doc.view_at(&doc.version()).unwrap().to_json(), json_after);
    assert_eq!(
        doc.view_at(&VersionVector::new()).unwrap().to_json(),
        json!({})
    );
}

#[test]
fn view_at_a_version_of_concurrent_edits_shows_their_merge() {
    let mut a = Document::new(r(1));
    let text = a.replace_with_new_text(MapId::ROOT, "t").unwrap();
    a.text_insert(text, 0, "base").unwrap();
    let mut b = a.fork(r(2));
    a.text_insert(text, 0, "A").unwrap();
    a.set(MapId::ROOT, "k", "a").unwrap();
    b.text_insert(text, 4, "B").unwrap();
    b.set(MapId::ROOT, "k", "b").unwrap();
    a.merge(&b).unwrap();
    let merged = a.version();
    let merged_json = a.to_json();
    a.text_insert(text, 0, "later ").unwrap();

    let view = a.view_at(&merged).unwrap();
    assert_eq!(view.to_json(), merged_json);
    assert_eq!(view.text(text).unwrap(), "AbaseB");
    assert_eq!(view.get_conflicts(MapId::ROOT, "k").unwrap().len(), 2);
    // Only b's side: a's concurrent edits are not in it.
    let only_b = b.version();
    assert_eq!(a.view_at(&only_b).unwrap().text(text).unwrap(), "baseB");
}

#[test]
fn versions_outside_the_history_are_refused() {
    let mut a = Document::new(r(1));
    a.set(MapId::ROOT, "k", 1).unwrap();
    let mut b = Document::new(r(2));
    b.merge(&a).unwrap();
    b.set(MapId::ROOT, "k", 2).unwrap(); // depends on a's event
    a.merge(&b).unwrap();

    assert_eq!(
        a.view_at(&vv(&[(r(1), 2)])).map(|_| ()),
        Err(HistoryError::UnknownEvent(crdt_core::Dot::new(r(1), 2)))
    );
    assert_eq!(
        a.view_at(&vv(&[(r(3), 1)])).map(|_| ()),
        Err(HistoryError::UnknownEvent(crdt_core::Dot::new(r(3), 1)))
    );
    assert_eq!(
        a.view_at(&vv(&[(r(2), 1)])).map(|_| ()),
        Err(HistoryError::NotCausallyClosed {
            event: crdt_core::Dot::new(r(2), 1),
            missing: crdt_core::Dot::new(r(1), 1),
        })
    );
    assert!(
        a.changes_between(&VersionVector::new(), &vv(&[(r(2), 1)]))
            .is_err()
    );
    assert!(a.fork_at(&vv(&[(r(2), 1)]), r(9)).is_err());
    assert!(a.version_of_heads(&[crdt_core::Dot::new(r(7), 1)]).is_err());
}

#[test]
fn heads_name_the_same_versions_as_version_vectors() {
    let mut a = Document::new(r(1));
    a.set(MapId::ROOT, "x", 1).unwrap();
    let mut b = a.fork(r(2));
    a.set(MapId::ROOT, "y", 2).unwrap();
    b.set(MapId::ROOT, "z", 3).unwrap();
    a.merge(&b).unwrap();
    let heads = a.heads();
    assert_eq!(heads.len(), 2);
    let version = a.version();
    a.set(MapId::ROOT, "w", 4).unwrap();
    assert_eq!(a.version_of_heads(&heads).unwrap(), version);
    assert_eq!(a.version_of_heads(&[]).unwrap(), VersionVector::new());
    assert_eq!(
        a.view_at(&a.version_of_heads(&b.heads()).unwrap())
            .unwrap()
            .to_json(),
        b.to_json()
    );
    assert_eq!(
        a.view_at_heads(&b.heads()).unwrap().heads(),
        b.heads(),
        "a view names its version by the same heads"
    );
    assert_eq!(a.view_at_heads(&heads).unwrap().version(), &version);
}

// ---- changes between versions -------------------------------------------------------------

#[test]
fn changes_between_lists_local_and_remote_changes_with_their_metadata() {
    let mut a = Document::new(r(1));
    let text = a.replace_with_new_text(MapId::ROOT, "t").unwrap();
    let v1 = a.version();
    let options = |m: &str, t: i64| ChangeOptions {
        message: Some(m.into()),
        timestamp: Some(t),
    };
    a.transact_with(options("typing", 10), |tx| {
        tx.text_insert(text, 0, "hello")?;
        tx.text_insert(text, 5, "!")
    })
    .unwrap();
    let mut b = a.fork(r(2));
    b.transact_with(options("from b", 20), |tx| tx.set(MapId::ROOT, "b", 1))
        .unwrap();
    a.merge(&b).unwrap();

    let all = a
        .changes_between(&VersionVector::new(), &a.version())
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].id, crdt_core::Dot::new(r(1), 1));
    assert_eq!((all[0].events, all[0].ops), (1, 1));
    assert_eq!(all[1].message.as_deref(), Some("typing"));
    assert_eq!(all[1].timestamp, Some(10));
    assert_eq!((all[1].events, all[1].ops), (6, 1)); // "hello" then "!" is one run
    assert_eq!(all[2].id, crdt_core::Dot::new(r(2), 1));
    assert_eq!(all[2].message.as_deref(), Some("from b"));

    let since_v1 = a.changes_between(&v1, &a.version()).unwrap();
    assert_eq!(since_v1.len(), 2);
    let only_b = a.changes_between(&v1, &vv(&[(r(1), 1), (r(2), 1)]));
    assert!(only_b.is_err()); // b's change depends on a's typing
    assert!(
        a.changes_between(&a.version(), &a.version())
            .unwrap()
            .is_empty()
    );
}

// ---- diffs as patches -----------------------------------------------------------------------

pub(crate) fn recorder(doc: &mut Document) -> Arc<Mutex<Vec<Patch>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    doc.subscribe(Box::new(move |_: Origin, patches: &[Patch]| {
        sink.lock()
            .expect("not poisoned")
            .extend_from_slice(patches);
    }));
    seen
}

#[test]
fn a_diff_is_what_a_subscriber_receives_for_the_same_changes() {
    let mut a = Document::new(r(1));
    let list = a.replace_with_new_list(MapId::ROOT, "l").unwrap();
    a.list_insert(list, 0, "x").unwrap();
    let v1 = a.version();
    let mut observer = Document::load(&a.encode(), r(9)).unwrap();
    let seen = recorder(&mut observer);

    a.list_insert(list, 1, "y").unwrap();
    let item = a.list_insert_new(list, 0, ContainerKind::Map).unwrap();
    a.set(MapId(item), "done", true).unwrap();
    a.list_delete(list, 1..2).unwrap();
    observer.apply_update(&a.update_since(&v1)).unwrap();

    let diff = a.diff(&v1, &a.version()).unwrap();
    assert_eq!(diff, *seen.lock().unwrap());
    let mut json = a.view_at(&v1).unwrap().to_json();
    assert!(diff.iter().all(|p| apply_patch(&mut json, p)));
    assert_eq!(json, a.to_json());
    assert_eq!(
        a.diff(&a.version(), &v1),
        Err(HistoryError::NotIncluded),
        "diffs go forwards"
    );
}

// ---- fork and merge ---------------------------------------------------------------------------

#[test]
fn fork_at_an_earlier_version_merges_back_either_way() {
    let mut main = Document::new(r(1));
    let text = main.replace_with_new_text(MapId::ROOT, "t").unwrap();
    main.text_insert(text, 0, "draft").unwrap();
    let v1 = main.version();
    main.text_insert(text, 5, " on main").unwrap();

    let mut branch = main.fork_at(&v1, r(2)).unwrap();
    assert_eq!(branch.text(text).unwrap(), "draft");
    assert_eq!(branch.replica(), r(2));
    branch.text_insert(text, 0, "my ").unwrap();

    let mut other_way = branch.fork(r(3));
    other_way.merge(&main).unwrap();
    main.merge(&branch).unwrap();
    assert_eq!(main.text(text).unwrap(), "my draft on main");
    assert_eq!(other_way.to_json(), main.to_json());
    assert_eq!(other_way.version(), main.version());

    // Forking as a replica that already edited after the version would reuse its ids.
    assert_eq!(
        main.fork_at(&v1, r(2)).map(|_| ()),
        Err(HistoryError::ReplicaReused(r(2)))
    );
    assert_eq!(
        main.fork_at(&v1, r(1)).map(|_| ()),
        Err(HistoryError::ReplicaReused(r(1)))
    );
    assert!(main.fork_at(&main.version(), r(4)).is_ok());
}

// ---- revert -----------------------------------------------------------------------------------

#[test]
fn revert_restores_text_by_identity_around_concurrent_edits() {
    let mut a = Document::new(r(1));
    let text = a.replace_with_new_text(MapId::ROOT, "t").unwrap();
    a.text_insert(text, 0, "one two three").unwrap();
    let good = a.version();
    a.text_delete(text, 4..8).unwrap(); // "one three"
    a.text_insert(text, 0, "zero ").unwrap(); // "zero one three"
    let mut b = a.fork(r(2));

    // b types inside "one" concurrently with a's revert.
    b.text_insert(text, 7, "-").unwrap(); // "zero on-e three"
    a.revert_to(&good).unwrap();
    assert_eq!(a.text(text).unwrap(), "one two three");

    a.merge(&b).unwrap();
    b.merge(&a).unwrap();
    assert_eq!(a.text(text).unwrap(), "on-e two three");
    assert_eq!(b.to_json(), a.to_json());
}

#[test]
fn revert_covers_maps_lists_counters_registers_and_lost_containers() {
    let mut doc = Document::new(r(1));
    let list = doc.replace_with_new_list(MapId::ROOT, "list").unwrap();
    let counter = doc.replace_with_new_counter(MapId::ROOT, "n").unwrap();
    let register = doc.replace_with_new_register(MapId::ROOT, "reg").unwrap();
    let settings = doc.replace_with_new_map(MapId::ROOT, "settings").unwrap();
    doc.set(settings, "dark", true).unwrap();
    let note = doc.replace_with_new_text(settings, "note").unwrap();
    doc.text_insert(note, 0, "keep me").unwrap();
    for (i, v) in ["a", "b", "c"].into_iter().enumerate() {
        doc.list_insert(list, i, v).unwrap();
    }
    let item = doc.list_insert_new(list, 1, ContainerKind::List).unwrap();
    doc.list_insert(ListId(item), 0, 42).unwrap();
    doc.counter_add(counter, 3).unwrap();
    doc.register_set(register, "r1").unwrap();
    let good = doc.version();
    let good_json = doc.to_json();

    doc.list_delete(list, 0..3).unwrap(); // deletes the nested list too
    doc.list_insert(list, 0, "z").unwrap();
    doc.counter_add(counter, -10).unwrap();
    doc.register_clear(register).unwrap();
    doc.set(MapId::ROOT, "settings", "gone").unwrap(); // overwrites the map
    doc.set(MapId::ROOT, "extra", 1).unwrap();
    assert_ne!(doc.to_json(), good_json);

    let before = doc.history_len();
    doc.revert_to(&good).unwrap();
    assert_eq!(doc.to_json(), good_json);
    assert!(doc.history_len() > before);
    // The overwritten map came back as a copy, with a new id.
    let Some(Value::Container(ContainerKind::Map, copy)) =
        doc.get(MapId::ROOT, "settings").unwrap().cloned()
    else {
        panic!("settings is a map again");
    };
    assert_ne!(copy, settings.id());
    assert_eq!(doc.counter(CounterId(counter.id())).unwrap(), 3);

    // A revert to the current version changes nothing and makes no change.
    let len = doc.history_len();
    doc.revert_to(&doc.version()).unwrap();
    assert_eq!(doc.history_len(), len);

    // Other replicas receive the revert as any change.
    let mut other = Document::new(r(2));
    other
        .apply_update(&doc.update_since(&other.version()))
        .unwrap();
    assert_eq!(other.to_json(), good_json);
    let _ = TextId(note.id());
}

// ---- properties ---------------------------------------------------------------------------

/// A random history at a few replicas: transactions and one-way merges.
#[derive(Clone, Debug)]
enum HStep {
    Transact { at: u8, edits: Vec<(u8, Edit)> },
    Merge { from: u8, to: u8 },
}

impl Arbitrary for HStep {
    fn arbitrary(g: &mut Gen) -> Self {
        if u8::arbitrary(g) % 3 == 0 {
            HStep::Merge {
                from: u8::arbitrary(g),
                to: u8::arbitrary(g),
            }
        } else {
            HStep::Transact {
                at: u8::arbitrary(g),
                edits: (0..1 + usize::from(u8::arbitrary(g) % 3))
                    .map(|_| (u8::arbitrary(g), Edit::arbitrary(g)))
                    .collect(),
            }
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        match self {
            HStep::Transact { at, edits } => {
                let at = *at;
                Box::new(
                    edits
                        .shrink()
                        .filter(|e| !e.is_empty())
                        .map(move |edits| HStep::Transact { at, edits }),
                )
            }
            HStep::Merge { .. } => Box::new(std::iter::empty()),
        }
    }
}

const REPLICAS: usize = 3;

/// Runs `steps` on replicas `docs`; returns every (version, JSON) a replica went through.
fn run(docs: &mut [Document], steps: &[HStep]) -> Vec<(VersionVector, Json)> {
    let mut seen = Vec::new();
    for step in steps {
        match step {
            HStep::Transact { at, edits } => {
                let doc = &mut docs[usize::from(*at) % docs.len()];
                doc.transact(|tx| {
                    for (target, e) in edits {
                        edit(tx, *target, e)?;
                    }
                    Ok(())
                })
                .expect("random edits are valid");
                seen.push((doc.version(), doc.to_json()));
            }
            HStep::Merge { from, to } => {
                let (from, to) = (
                    usize::from(*from) % docs.len(),
                    usize::from(*to) % docs.len(),
                );
                if from != to {
                    // Read only (it lets `docs[to]` be borrowed mutably); never edits.
                    let source = docs[from].duplicate_same_replica();
                    docs[to].merge(&source).expect("merges succeed");
                    seen.push((docs[to].version(), docs[to].to_json()));
                }
            }
        }
    }
    seen
}

fn fresh_replicas() -> Vec<Document> {
    (0..REPLICAS)
        .map(|i| Document::new(r(10 + i as u128)))
        .collect()
}

/// Merges every replica into a fork of the first: a new replica (it may edit, as `main` does in
/// `fork_then_merge_equals_live_sync`, while `docs[0]` lives on).
fn merge_all(docs: &mut [Document]) -> Document {
    let mut all = docs[0].fork(r(40));
    for doc in docs.iter().skip(1) {
        all.merge(doc).expect("merges succeed");
    }
    all
}

#[derive(Clone, Debug)]
struct History(Vec<HStep>);

impl Arbitrary for History {
    fn arbitrary(g: &mut Gen) -> Self {
        History(
            (0..usize::arbitrary(g) % 30)
                .map(|_| HStep::arbitrary(g))
                .collect(),
        )
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(History))
    }
}

fn reading_at_a_version_equals_replaying_only_its_changes(history: History) -> bool {
    let mut docs = fresh_replicas();
    let seen = run(&mut docs, &history.0);
    let all = merge_all(&mut docs);
    seen.iter().all(|(version, json)| {
        let Ok(view) = all.view_at(version) else {
            return false;
        };
        let mut replayed = Document::new(r(99));
        let update = all.update_between(&VersionVector::new(), version);
        let sorted = |mut heads: Vec<crdt_core::Dot>| {
            heads.sort();
            heads
        };
        replayed.apply_update(&update).is_ok()
            && view.to_json() == *json
            && replayed.to_json() == *json
            && view.version() == version
            && sorted(view.heads()) == sorted(replayed.heads())
            // Conflicts (not in the JSON) agree too.
            && replayed.keys(MapId::ROOT).expect("the root").iter().all(|key| {
                let live: Vec<Value> = replayed
                    .get_conflicts(MapId::ROOT, key)
                    .expect("the root")
                    .into_iter()
                    .cloned()
                    .collect();
                view.get_conflicts(MapId::ROOT, key).ok() == Some(live)
            })
    })
}

#[test]
fn property_reading_at_a_version_equals_replaying_only_its_changes() {
    check(
        200,
        reading_at_a_version_equals_replaying_only_its_changes as fn(History) -> bool,
    );
}

fn a_diff_applied_to_the_earlier_version_gives_the_later(history: History) -> bool {
    let mut docs = fresh_replicas();
    let seen = run(&mut docs, &history.0);
    let all = merge_all(&mut docs);
    let to = all.version();
    seen.iter().all(|(version, json)| {
        let Ok(patches) = all.diff(version, &to) else {
            return false;
        };
        let mut json = json.clone();
        patches.iter().all(|p| apply_patch(&mut json, p)) && json == all.to_json()
    })
}

#[test]
fn property_a_diff_applied_to_the_earlier_version_gives_the_later() {
    check(
        150,
        a_diff_applied_to_the_earlier_version_gives_the_later as fn(History) -> bool,
    );
}

fn revert_shows_the_version_and_merges_everywhere(input: (History, u8, History)) -> bool {
    let (history, pick, concurrent) = input;
    let mut docs = fresh_replicas();
    let seen = run(&mut docs, &history.0);
    let Some((version, json)) = (!seen.is_empty()).then(|| &seen[usize::from(pick) % seen.len()])
    else {
        return true;
    };
    // Replica 0 learns everything and reverts while the others go on editing.
    let everything = merge_all(&mut docs);
    docs[0].merge(&everything).expect("merges succeed");
    if docs[0].revert_to(version).is_err() || docs[0].to_json() != *json {
        return false;
    }
    let mut others = docs.split_off(1);
    run(&mut others, &concurrent.0);
    docs.extend(others);
    let a = merge_all(&mut docs);
    // Only merges and is read, never edits.
    let mut b = docs[REPLICAS - 1].duplicate_same_replica();
    for doc in docs.iter().rev() {
        b.merge(doc).expect("merges succeed");
    }
    a.to_json() == b.to_json() && a.version() == b.version()
}

#[test]
fn property_revert_shows_the_version_and_merges_everywhere() {
    check(
        150,
        revert_shows_the_version_and_merges_everywhere as fn((History, u8, History)) -> bool,
    );
}

/// Transactions after a fork: (on the fork rather than the original, edits).
type BranchEdits = Vec<(bool, Vec<(u8, Edit)>)>;

fn fork_then_merge_equals_live_sync(input: (History, u8, BranchEdits)) -> bool {
    let (history, pick, branch_edits) = input;
    let mut docs = fresh_replicas();
    let seen = run(&mut docs, &history.0);
    let mut main = merge_all(&mut docs);
    let version = if seen.is_empty() {
        VersionVector::new()
    } else {
        seen[usize::from(pick) % seen.len()].0.clone()
    };
    let Ok(mut fork) = main.fork_at(&version, r(50)) else {
        return false;
    };
    // The observer receives every change as it is made, from both sides.
    let mut live = Document::load(&main.encode(), r(60)).expect("loads");
    for (on_fork, edits) in &branch_edits {
        let side = if *on_fork { &mut fork } else { &mut main };
        let before = side.version();
        side.transact(|tx| {
            for (target, e) in edits {
                edit(tx, *target, e)?;
            }
            Ok(())
        })
        .expect("random edits are valid");
        if live.apply_update(&side.update_since(&before)).is_err() {
            return false;
        }
    }
    // Each side after receiving the other's changes: copies that only merge, never edit.
    let mut fork_into_main = main.duplicate_same_replica();
    let mut main_into_fork = fork.duplicate_same_replica();
    fork_into_main.merge(&fork).expect("merges succeed");
    main_into_fork.merge(&main).expect("merges succeed");
    fork_into_main.to_json() == live.to_json()
        && main_into_fork.to_json() == live.to_json()
        && fork_into_main.version() == live.version()
        && main_into_fork.version() == live.version()
}

#[test]
fn property_fork_then_merge_equals_live_sync() {
    check(
        150,
        fork_then_merge_equals_live_sync as fn((History, u8, BranchEdits)) -> bool,
    );
}

// ---- undo and redo ------------------------------------------------------------------------

#[test]
fn undo_takes_back_only_local_changes() {
    let mut a = Document::new(r(1));
    let list = a.replace_with_new_list(MapId::ROOT, "l").unwrap();
    let mut b = a.fork(r(2));
    let mut undo = UndoManager::new(&mut a);
    b.list_insert(list, 0, "theirs").unwrap();
    a.merge(&b).unwrap();
    assert!(!undo.can_undo(&a));
    assert!(!undo.undo(&mut a).unwrap());
    a.list_insert(list, 1, "mine").unwrap();
    assert!(undo.undo(&mut a).unwrap());
    assert_eq!(a.list(list).unwrap(), [Value::from("theirs")]);
    // The undo is a change like any other.
    b.merge(&a).unwrap();
    assert_eq!(b.to_json(), a.to_json());
}

#[test]
fn undo_of_deletes_puts_text_back_between_its_old_neighbours() {
    let mut a = Document::new(r(1));
    let text = a.replace_with_new_text(MapId::ROOT, "t").unwrap();
    a.text_insert(text, 0, "abcdef").unwrap();
    let mut undo = UndoManager::new(&mut a);
    a.transact(|tx| {
        tx.text_delete(text, 3..4)?; // "abcef"
        tx.text_delete(text, 1..3) // "aef"
    })
    .unwrap();
    let mut b = a.fork(r(2));
    b.text_insert(text, 1, "X").unwrap(); // "aXef", concurrently
    a.merge(&b).unwrap();
    undo.undo(&mut a).unwrap();
    // "bc" goes back after "a" and "d" after "c" (its left neighbour when it was deleted,
    // restored in the same undo); X, inserted after "a" where "bcd" was gone, stays before "e".
    assert_eq!(a.text(text).unwrap(), "abcdXef");
    undo.redo(&mut a).unwrap();
    assert_eq!(a.text(text).unwrap(), "aXef");
    undo.undo(&mut a).unwrap();
    assert_eq!(a.text(text).unwrap(), "abcdXef");
}

#[test]
fn undo_leaves_a_later_remote_write_alone() {
    let mut a = Document::new(r(1));
    let register = a.replace_with_new_register(MapId::ROOT, "r").unwrap();
    let counter = a.replace_with_new_counter(MapId::ROOT, "n").unwrap();
    let mut undo = UndoManager::new(&mut a);
    a.transact(|tx| {
        tx.set(MapId::ROOT, "k", "mine")?;
        tx.register_set(register, 1)?;
        tx.counter_add(counter, 5)
    })
    .unwrap();
    let mut b = a.fork(r(2));
    b.set(MapId::ROOT, "k", "theirs").unwrap(); // overwrites ours
    b.counter_add(counter, 1).unwrap();
    a.merge(&b).unwrap();
    undo.undo(&mut a).unwrap();
    assert_eq!(
        a.get(MapId::ROOT, "k").unwrap(),
        Some(&Value::from("theirs"))
    );
    assert_eq!(a.register(register).unwrap(), None);
    assert_eq!(a.counter(counter).unwrap(), 1);
}

#[test]
fn a_new_local_change_clears_redo_and_containers_come_back_as_copies() {
    let mut a = Document::new(r(1));
    let mut undo = UndoManager::new(&mut a);
    let notes = a.replace_with_new_text(MapId::ROOT, "notes").unwrap();
    a.text_insert(notes, 0, "keep").unwrap();
    a.set(MapId::ROOT, "notes", "replaced").unwrap();
    undo.undo(&mut a).unwrap();
    assert_eq!(a.to_json(), json!({ "notes": "keep" }));
    assert!(undo.can_redo());
    a.set(MapId::ROOT, "other", 1).unwrap();
    assert!(!undo.redo(&mut a).unwrap());
    assert!(!undo.can_redo());
}

/// The containers one replica edits in the undo properties (made before undo is attached; the
/// properties make no new containers: a container that comes back through undo is a copy, and
/// list and text edits recorded in the old one are not replayed in the copy, a documented
/// limit of `UndoManager`).
#[derive(Clone, Copy)]
struct Owned {
    text: TextId,
    list: ListId,
    counter: CounterId,
    register: RegisterId,
    map: MapId,
    /// The keys of `map` this replica writes.
    keys: [&'static str; 2],
}

/// A document with two sets of containers: "text", "list", "counter", "register", "map" and
/// "rtext", "rlist", "rregister", "rmap". The shared map "map" has keys "a", "b" (local) and
/// "y", "z" (remote).
fn with_containers(replica: ReplicaId) -> (Document, Owned, Owned) {
    let mut doc = Document::new(replica);
    let (mine, theirs) = doc
        .transact(|tx| {
            let map = tx.replace_with_new_map(MapId::ROOT, "map")?;
            let counter = tx.replace_with_new_counter(MapId::ROOT, "counter")?;
            let mine = Owned {
                text: tx.replace_with_new_text(MapId::ROOT, "text")?,
                list: tx.replace_with_new_list(MapId::ROOT, "list")?,
                counter,
                register: tx.replace_with_new_register(MapId::ROOT, "register")?,
                map,
                keys: ["a", "b"],
            };
            let theirs = Owned {
                text: tx.replace_with_new_text(MapId::ROOT, "rtext")?,
                list: tx.replace_with_new_list(MapId::ROOT, "rlist")?,
                counter,
                register: tx.replace_with_new_register(MapId::ROOT, "rregister")?,
                map,
                keys: ["y", "z"],
            };
            Ok((mine, theirs))
        })
        .expect("fresh containers");
    (doc, mine, theirs)
}

/// Applies one random edit to the containers `to` (new containers are skipped).
fn edit_owned(tx: &mut Transaction<'_>, to: Owned, e: &Edit) -> Result<(), DocError> {
    let key = |k: u8| to.keys[usize::from(k) % 2];
    match *e {
        Edit::MapSet { key: k, value } => tx.set(to.map, key(k), i64::from(value)),
        Edit::MapDelete { key: k } => tx.delete(to.map, key(k)),
        Edit::MapNew { .. } | Edit::MapNamed { .. } | Edit::ListInsertNew { .. } => Ok(()),
        Edit::ListInsert { index, value } => {
            let len = tx.doc().list_len(to.list)?;
            tx.list_insert(to.list, usize::from(index) % (len + 1), i64::from(value))
        }
        Edit::ListDelete { index, len: n } => {
            let len = tx.doc().list_len(to.list)?;
            if len == 0 {
                return Ok(());
            }
            let start = usize::from(index) % len;
            tx.list_delete(to.list, start..(start + 1 + usize::from(n) % 3).min(len))
        }
        Edit::TextInsert { index, word } => {
            let len = tx.doc().text_len(to.text)?;
            let word = ["x", "yz", "é", "😀", "hello "][usize::from(word) % 5];
            tx.text_insert(to.text, usize::from(index) % (len + 1), word)
        }
        Edit::TextDelete { index, len: n } => {
            let len = tx.doc().text_len(to.text)?;
            if len == 0 {
                return Ok(());
            }
            let start = usize::from(index) % len;
            tx.text_delete(to.text, start..(start + 1 + usize::from(n) % 4).min(len))
        }
        Edit::Increment { by } => tx.counter_add(to.counter, i64::from(by)),
        Edit::RegisterSet { value } => tx.register_set(to.register, i64::from(value)),
        Edit::RegisterClear => tx.register_clear(to.register),
    }
}

/// One transaction of a few random edits on `to`, at time `at`.
fn transact_owned(doc: &mut Document, to: Owned, edits: &[Edit], at: i64) {
    let options = ChangeOptions {
        message: None,
        timestamp: Some(at),
    };
    doc.transact_with(options, |tx| {
        for e in edits {
            edit_owned(tx, to, e)?;
        }
        Ok(())
    })
    .expect("random edits are valid");
}

/// Transactions at two replicas, interleaved (each replica merges the other's changes before
/// its own transaction), and how many steps to undo then redo.
#[derive(Clone, Debug)]
struct UndoScenario {
    /// (made by the remote replica, time since the previous transaction, edits). Local
    /// transactions closer than `TIMEOUT` join one undo step.
    steps: Vec<(bool, u8, Vec<Edit>)>,
    undos: u8,
}

const TIMEOUT: i64 = 100;

impl Arbitrary for UndoScenario {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::from(u8::arbitrary(g) % 16);
        UndoScenario {
            steps: (0..n)
                .map(|_| {
                    let edits = (0..1 + usize::from(u8::arbitrary(g) % 6))
                        .map(|_| Edit::arbitrary(g))
                        .collect();
                    (bool::arbitrary(g), u8::arbitrary(g), edits)
                })
                .collect(),
            undos: u8::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let undos = self.undos;
        Box::new(
            self.steps
                .shrink()
                .map(move |steps| UndoScenario { steps, undos }),
        )
    }
}

/// Runs a scenario: the local replica edits `mine`, the remote one `theirs` (`shared`: the
/// remote edits the local containers too). Returns both replicas, the undo manager, and the
/// remote replica's transactions replayed alone on a fresh document.
fn undo_run(scenario: &UndoScenario, shared: bool) -> (Document, Document, UndoManager, Document) {
    let (mut local, mine, theirs) = with_containers(r(1));
    let mut remote_only = local.fork(r(3));
    let mut remote = local.fork(r(2));
    let remote_edits = if shared { mine } else { theirs };
    let undo = UndoManager::new(&mut local).with_capture_timeout(TIMEOUT);
    let mut now = 0;
    for (is_remote, gap, edits) in &scenario.steps {
        now += i64::from(*gap);
        if *is_remote {
            remote.merge(&local).expect("merges succeed");
            transact_owned(&mut remote, remote_edits, edits, now);
            transact_owned(&mut remote_only, theirs, edits, now);
            local.merge(&remote).expect("merges succeed");
        } else {
            transact_owned(&mut local, mine, edits, now);
        }
    }
    (local, remote, undo, remote_only)
}

/// Undoes up to `n` steps, then redoes as many; true if each call did one.
fn undo_redo(doc: &mut Document, undo: &mut UndoManager, n: usize) -> bool {
    let mut done = 0;
    while done < n && undo.can_undo(doc) {
        if undo.undo(doc) != Ok(true) {
            return false;
        }
        done += 1;
    }
    (0..done).all(|_| undo.redo(doc) == Ok(true)) && !undo.can_redo()
}

/// Guarantee 1: whatever the remote replica did before (even to the same elements, keys and
/// registers), undoing `k` steps and then redoing `k` gives back exactly the state before the
/// undos, and the replicas converge on it.
fn undoing_then_redoing_k_steps_restores_the_state(scenario: UndoScenario) -> bool {
    let (mut local, mut remote, mut undo, _) = undo_run(&scenario, true);
    let before = local.to_json();
    if !undo_redo(&mut local, &mut undo, usize::from(scenario.undos % 20)) {
        return false;
    }
    remote.merge(&local).expect("merges succeed");
    local.to_json() == before && remote.to_json() == before
}

#[test]
fn property_undoing_then_redoing_k_steps_restores_the_state() {
    check(
        500,
        undoing_then_redoing_k_steps_restores_the_state as fn(UndoScenario) -> bool,
    );
}

/// Guarantee 2: when the remote replica edits other elements (its own texts, lists, register
/// and map keys; the counter is shared), undoing every local step shows exactly what the
/// remote replica's transactions alone give, and redoing them all gives back the state
/// before the undos.
fn undoing_every_local_step_leaves_the_remote_history(scenario: UndoScenario) -> bool {
    let (mut local, mut remote, mut undo, remote_only) = undo_run(&scenario, false);
    let before = local.to_json();
    let mut undone = 0;
    while undo.can_undo(&local) {
        if undo.undo(&mut local) != Ok(true) {
            return false;
        }
        undone += 1;
    }
    let alone = local.to_json() == remote_only.to_json();
    remote.merge(&local).expect("merges succeed");
    let synced = remote.to_json() == local.to_json();
    let redone = (0..undone).all(|_| undo.redo(&mut local) == Ok(true));
    alone && synced && redone && local.to_json() == before
}

#[test]
fn property_undoing_every_local_step_leaves_the_remote_history() {
    check(
        500,
        undoing_every_local_step_leaves_the_remote_history as fn(UndoScenario) -> bool,
    );
}

/// A lone replica: any interleaving of undos and redos keeps the state equal to the one the
/// same number of steps back (a stack of states); undoing everything gives the start.
fn undo_and_redo_in_any_order_walk_the_states(input: (UndoScenario, Vec<bool>)) -> bool {
    let (scenario, moves) = input;
    let (mut doc, mine, _) = with_containers(r(1));
    let mut undo = UndoManager::new(&mut doc);
    let mut states = vec![doc.to_json()];
    for (_, _, edits) in &scenario.steps {
        let len = doc.history_len();
        transact_owned(&mut doc, mine, edits, 0);
        if doc.history_len() > len {
            states.push(doc.to_json());
        }
    }
    let mut at = states.len() - 1;
    for back in moves {
        if back && at > 0 {
            if undo.undo(&mut doc) != Ok(true) {
                return false;
            }
            at -= 1;
        } else if !back && at + 1 < states.len() {
            if undo.redo(&mut doc) != Ok(true) {
                return false;
            }
            at += 1;
        }
        if doc.to_json() != states[at] {
            return false;
        }
    }
    while undo.can_undo(&doc) {
        if undo.undo(&mut doc) != Ok(true) {
            return false;
        }
    }
    doc.to_json() == states[0]
}

#[test]
fn property_undo_and_redo_in_any_order_walk_the_states() {
    check(
        500,
        undo_and_redo_in_any_order_walk_the_states as fn((UndoScenario, Vec<bool>)) -> bool,
    );
}

#[test]
fn undo_then_redo_of_two_steps_puts_text_back_in_place() {
    // The example of the old limit: "hello ", then "yz" at 1, undo both, redo both.
    let mut doc = Document::new(r(1));
    let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    let mut undo = UndoManager::new(&mut doc);
    doc.text_insert(text, 0, "hello ").unwrap();
    doc.text_insert(text, 1, "yz").unwrap();
    assert!(undo.undo(&mut doc).unwrap() && undo.undo(&mut doc).unwrap());
    assert_eq!(doc.text(text).unwrap(), "");
    assert!(undo.redo(&mut doc).unwrap() && undo.redo(&mut doc).unwrap());
    assert_eq!(doc.text(text).unwrap(), "hyzello ");
}

#[test]
fn undo_of_a_step_that_inserted_then_deleted_removes_only_what_is_left() {
    let mut doc = Document::new(r(1));
    let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    doc.text_insert(text, 0, "ab").unwrap();
    let mut undo = UndoManager::new(&mut doc).with_capture_timeout(1_000);
    let at = |ms| ChangeOptions {
        message: None,
        timestamp: Some(ms),
    };
    doc.transact_with(at(0), |tx| tx.text_insert(text, 1, "hello"))
        .unwrap();
    doc.transact_with(at(10), |tx| tx.text_delete(text, 2..5))
        .unwrap(); // "ahob"
    doc.transact_with(at(20), |tx| tx.text_delete(text, 0..1))
        .unwrap(); // "hob"
    undo.undo(&mut doc).unwrap();
    assert_eq!(doc.text(text).unwrap(), "ab");
    undo.redo(&mut doc).unwrap();
    assert_eq!(doc.text(text).unwrap(), "hob");
}

#[test]
fn undo_works_on_a_replica_loaded_from_a_shallow_snapshot() {
    let mut old = Document::new(r(1));
    let text = old.replace_with_new_text(MapId::ROOT, "t").unwrap();
    let list = old.replace_with_new_list(MapId::ROOT, "l").unwrap();
    old.text_insert(text, 0, "hello world").unwrap();
    old.list_insert(list, 0, "x").unwrap();
    let bytes = old.encode_shallow(&old.version()).unwrap();
    let mut doc = Document::load(&bytes, r(5)).unwrap();
    let start = doc.to_json();
    let mut undo = UndoManager::new(&mut doc);
    doc.transact(|tx| {
        tx.text_delete(text, 5..11)?; // "hello"
        tx.text_insert(text, 0, "oh, ")?; // "oh, hello"
        tx.text_delete(text, 4..5) // "oh, ello"
    })
    .unwrap();
    doc.transact(|tx| {
        tx.list_delete(list, 0..1)?;
        tx.list_insert(list, 0, "y")
    })
    .unwrap();
    let done = doc.to_json();
    assert!(undo.undo(&mut doc).unwrap() && undo.undo(&mut doc).unwrap());
    assert_eq!(doc.to_json(), start);
    assert!(undo.redo(&mut doc).unwrap() && undo.redo(&mut doc).unwrap());
    assert_eq!(doc.to_json(), done);
}

// ---- cursors ------------------------------------------------------------------------------

#[test]
fn document_cursors_follow_their_element_and_refuse_what_they_cannot_name() {
    let mut doc = Document::new(r(1));
    let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    let counter = doc.replace_with_new_counter(MapId::ROOT, "c").unwrap();
    doc.text_insert(text, 0, "abcdef").unwrap();
    doc.list_insert(list, 0, 1).unwrap();
    let before_d = doc.cursor(text.id(), 3, Bias::After).unwrap();
    let after_c = doc.cursor(text.id(), 3, Bias::Before).unwrap();
    let list_end = doc.cursor(list.id(), 1, Bias::Before).unwrap();
    assert_eq!(doc.resolve_cursor(text.id(), &before_d), Ok(3));

    // Remote text typed right at the cursors goes between them.
    let mut other = doc.fork(r(2));
    other.text_insert(text, 3, "XY").unwrap();
    other.list_insert(list, 0, 0).unwrap();
    doc.merge(&other).unwrap();
    assert_eq!(doc.resolve_cursor(text.id(), &after_c), Ok(3));
    assert_eq!(doc.resolve_cursor(text.id(), &before_d), Ok(5));
    assert_eq!(doc.resolve_cursor(list.id(), &list_end), Ok(2));
    // The element a cursor sticks to is deleted: where it was.
    doc.text_delete(text, 4..6).unwrap(); // "abcXef"
    assert_eq!(doc.resolve_cursor(text.id(), &before_d), Ok(4));

    assert!(matches!(
        doc.cursor(counter.id(), 0, Bias::After),
        Err(DocError::WrongKind { .. })
    ));
    assert_eq!(
        doc.cursor(text.id(), 99, Bias::After).err(),
        Some(DocError::OutOfRange { index: 99, len: 6 })
    );
    assert_eq!(
        doc.resolve_cursor(counter.id(), &before_d),
        Err(CursorError::NotASequence)
    );
    // A cursor from a replica that knows more than this one.
    let mut ahead = doc.fork(r(3));
    ahead.text_insert(text, 0, "new").unwrap();
    let from_ahead = ahead.cursor(text.id(), 1, Bias::After).unwrap();
    assert!(matches!(
        doc.resolve_cursor(text.id(), &from_ahead),
        Err(CursorError::UnknownEvent(_))
    ));
    doc.merge(&ahead).unwrap();
    assert_eq!(doc.resolve_cursor(text.id(), &from_ahead), Ok(1));

    // A shallow replica cannot follow a cursor from before its base.
    let shallow = Document::load(&doc.encode_shallow(&doc.version()).unwrap(), r(4)).unwrap();
    assert_eq!(
        shallow.resolve_cursor(text.id(), &before_d),
        Err(CursorError::HistoryTrimmed)
    );
    let fresh = shallow.cursor(text.id(), 2, Bias::After).unwrap();
    assert_eq!(shallow.resolve_cursor(text.id(), &fresh), Ok(2));
}

#[test]
fn undo_gives_back_the_caret_saved_before_the_step_shifted_by_remote_edits() {
    let mut doc = Document::new(r(1));
    let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    doc.text_insert(text, 0, "hello").unwrap();
    let mut undo = UndoManager::new(&mut doc);
    let caret = doc.cursor(text.id(), 5, Bias::Before).unwrap();
    undo.save_cursors(&mut doc, [(text.id(), caret)]);
    doc.text_insert(text, 5, " world").unwrap();

    let mut other = doc.fork(r(2));
    other.text_insert(text, 0, "oh, ").unwrap();
    doc.merge(&other).unwrap();

    let restored = undo.undo_with_cursors(&mut doc).unwrap().unwrap();
    assert_eq!(doc.text(text).unwrap(), "oh, hello");
    assert_eq!(restored, [(text.id(), 9)]); // after "hello", behind the remote prefix
    // Nothing more to undo: None, not an empty list.
    assert_eq!(undo.undo_with_cursors(&mut doc), Ok(None));
}

#[test]
fn a_selection_over_deleted_text_selects_the_restored_text_after_undo() {
    let mut doc = Document::new(r(1));
    let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    doc.text_insert(text, 0, "one two three").unwrap();
    let mut undo = UndoManager::new(&mut doc);
    // "two" is selected and deleted; the cursors stick to its first and last chars.
    let start = doc.cursor(text.id(), 4, Bias::After).unwrap();
    let end = doc.cursor(text.id(), 7, Bias::Before).unwrap();
    undo.save_cursors(
        &mut doc,
        [(text.id(), start.clone()), (text.id(), end.clone())],
    );
    doc.text_delete(text, 4..7).unwrap(); // "one  three"

    // Meanwhile another user types into the gap and at the start.
    let mut other = doc.fork(r(2));
    other
        .transact(|tx| {
            tx.text_insert(text, 4, "2")?;
            tx.text_insert(text, 0, "> ")
        })
        .unwrap(); // "> one 2 three"
    doc.merge(&other).unwrap();

    let restored = undo.undo_with_cursors(&mut doc).unwrap().unwrap();
    let now = doc.text(text).unwrap();
    let (from, to) = (restored[0].1, restored[1].1);
    let chars: Vec<char> = now.chars().collect();
    assert_eq!(
        chars[from..to].iter().collect::<String>(),
        "two",
        "in {now:?}"
    );
    assert_eq!(restored[0].0, text.id());
    // Resolved without the manager, both cursors follow the deleted old chars and collapse to
    // where they were: the restored chars are new elements only the manager maps to them.
    assert_eq!(
        doc.resolve_cursor(text.id(), &start),
        doc.resolve_cursor(text.id(), &end)
    );
}

#[test]
fn redo_gives_back_the_cursors_saved_before_the_undo() {
    let mut doc = Document::new(r(1));
    let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    doc.list_insert(list, 0, "a").unwrap();
    let mut undo = UndoManager::new(&mut doc);
    doc.list_insert(list, 1, "b").unwrap();
    doc.list_insert(list, 2, "c").unwrap();
    // Undo with the "caret" after "b".
    let caret = doc.cursor(list.id(), 2, Bias::Before).unwrap();
    undo.save_cursors(&mut doc, [(list.id(), caret)]);
    assert_eq!(undo.undo_with_cursors(&mut doc).unwrap(), Some(Vec::new()));
    let restored = undo.redo_with_cursors(&mut doc).unwrap().unwrap();
    assert_eq!(restored, [(list.id(), 2)]);
    assert_eq!(doc.list_len(list).unwrap(), 3);
}

#[test]
fn a_step_joined_by_the_capture_timeout_keeps_the_cursors_from_before_it_began() {
    let mut doc = Document::new(r(1));
    let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    let mut undo = UndoManager::new(&mut doc).with_capture_timeout(1_000);
    let at = |ms| ChangeOptions {
        message: None,
        timestamp: Some(ms),
    };
    for (i, ms) in [0, 100, 200].into_iter().enumerate() {
        let caret = doc.cursor(text.id(), i, Bias::Before).unwrap();
        undo.save_cursors(&mut doc, [(text.id(), caret)]);
        doc.transact_with(at(ms), |tx| tx.text_insert(text, i, "x"))
            .unwrap();
    }
    let restored = undo.undo_with_cursors(&mut doc).unwrap().unwrap();
    assert_eq!(doc.text(text).unwrap(), "");
    assert_eq!(restored, [(text.id(), 0)]);
}

#[test]
fn cursors_that_cannot_be_resolved_are_left_out() {
    let mut doc = Document::new(r(1));
    let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    let counter = doc.replace_with_new_counter(MapId::ROOT, "c").unwrap();
    let mut undo = UndoManager::new(&mut doc);
    let caret = doc.cursor(text.id(), 0, Bias::After).unwrap();
    undo.save_cursors(
        &mut doc,
        [(counter.id(), caret.clone()), (text.id(), caret)],
    );
    doc.text_insert(text, 0, "x").unwrap();
    assert_eq!(
        undo.undo_with_cursors(&mut doc).unwrap(),
        Some(vec![(text.id(), 0)])
    );
}

/// A lone replica saving random cursors before every change (edits, undos, redos): each undo
/// and redo gives back exactly the indices saved before the change it takes back, since the
/// state it returns to is the one they were saved in.
fn undo_and_redo_give_back_the_saved_cursors(input: (UndoScenario, Vec<bool>, Vec<u8>)) -> bool {
    let (scenario, moves, picks) = input;
    let (mut doc, mine, _) = with_containers(r(1));
    let mut undo = UndoManager::new(&mut doc);
    let mut pick = picks.into_iter().cycle();
    let mut next = move || usize::from(pick.next().unwrap_or(0));
    // Saves two cursors at random places of the text and the list; returns their indices.
    let mut save = |doc: &mut Document, undo: &mut UndoManager| {
        let text_at = next() % (doc.text_len(mine.text).expect("a text") + 1);
        let list_at = next() % (doc.list_len(mine.list).expect("a list") + 1);
        let bias = if next() % 2 == 0 {
            Bias::Before
        } else {
            Bias::After
        };
        let cursors = [
            (
                mine.text.id(),
                doc.cursor(mine.text.id(), text_at, bias).expect("in range"),
            ),
            (
                mine.list.id(),
                doc.cursor(mine.list.id(), list_at, bias).expect("in range"),
            ),
        ];
        undo.save_cursors(doc, cursors);
        vec![(mine.text.id(), text_at), (mine.list.id(), list_at)]
    };
    // For each state k > 0: what undoing into k - 1 and redoing into k must give back.
    let mut on_undo: Vec<Vec<(crdt_core::ContainerId, usize)>> = vec![Vec::new()];
    let mut on_redo: Vec<Vec<(crdt_core::ContainerId, usize)>> = vec![Vec::new()];
    for (_, _, edits) in &scenario.steps {
        let len = doc.history_len();
        let saved = save(&mut doc, &mut undo);
        transact_owned(&mut doc, mine, edits, 0);
        if doc.history_len() > len {
            on_undo.push(saved);
            on_redo.push(Vec::new());
        }
    }
    let mut at = on_undo.len() - 1;
    for back in moves {
        if back && at > 0 {
            on_redo[at] = save(&mut doc, &mut undo);
            match undo.undo_with_cursors(&mut doc) {
                Ok(Some(restored)) if restored == on_undo[at] => at -= 1,
                _ => return false,
            }
        } else if !back && at + 1 < on_undo.len() {
            on_undo[at + 1] = save(&mut doc, &mut undo);
            match undo.redo_with_cursors(&mut doc) {
                Ok(Some(restored)) if restored == on_redo[at + 1] => at += 1,
                _ => return false,
            }
        }
    }
    true
}

#[test]
fn property_undo_and_redo_give_back_the_saved_cursors() {
    check(
        500,
        undo_and_redo_give_back_the_saved_cursors as fn((UndoScenario, Vec<bool>, Vec<u8>)) -> bool,
    );
}
