//! History compaction by causal stability (`Document::compact`): the visible state and version
//! never change, replicas that acknowledged the stable version keep merging both ways, others
//! get `LoadError::HistoryTrimmed`, and compacted replicas converge with a control run.

use crdt_core::{Document, HistoryError, LoadError, MapId, ReplicaId, UndoManager, VersionVector};
use quickcheck::{Arbitrary, Gen};

use crate::harness::check;
use crate::shallow::{Step, run, sync_all};
use crate::traces::sequential_document;

fn replica(index: usize) -> ReplicaId {
    ReplicaId::from_u128(0x600 + index as u128)
}

fn meet(docs: &[Document]) -> VersionVector {
    let mut stable = docs[0].version();
    for doc in &docs[1..] {
        stable = stable.meet(&doc.version());
    }
    stable
}

#[test]
fn compaction_keeps_the_state_and_version_and_shrinks_the_encoding() {
    let mut a = Document::new(replica(1));
    let text = a.replace_with_new_text(MapId::ROOT, "t").expect("a map");
    for i in 0..200 {
        a.text_insert(text, 0, "some words typed and erased ")
            .expect("in range");
        a.text_delete(text, 0..20).expect("in range");
        a.set(MapId::ROOT, "k", i).expect("a map");
    }
    let mut b = a.fork(replica(2));
    let before = (a.to_json(), a.version(), a.encode().len());
    let stable = a.version().meet(&b.version());
    assert_eq!(a.compact(&stable), Ok(stable.clone()));
    assert_eq!(
        (a.to_json(), a.version()),
        (before.0.clone(), before.1.clone())
    );
    assert_eq!(a.shallow_base(), Some(&stable));
    assert!(
        a.encode().len() * 10 < before.2,
        "{} vs {}",
        a.encode().len(),
        before.2
    );
    // Compacting again at the same point changes nothing.
    assert_eq!(a.compact(&stable), Ok(stable.clone()));
    assert_eq!(a.to_json(), before.0);

    // Both ways with a replica that acknowledged it.
    a.text_insert(text, 0, "a").expect("in range");
    b.text_insert(text, 0, "b").expect("in range");
    b.set(MapId::ROOT, "k", "b").expect("a map");
    a.merge(&b).expect("b acknowledged the stable version");
    b.merge(&a)
        .expect("a full replica takes the compacted one's changes");
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(
        a.get_conflicts(MapId::ROOT, "k"),
        b.get_conflicts(MapId::ROOT, "k")
    );
}

#[test]
fn a_replica_that_did_not_acknowledge_the_stable_version_gets_the_typed_error() {
    let mut a = Document::new(replica(1));
    let text = a.replace_with_new_text(MapId::ROOT, "t").expect("a map");
    let mut late = a.fork(replica(2));
    a.text_insert(text, 0, "abc").expect("in range");
    let stable = a.version();
    assert_eq!(a.compact(&stable), Ok(stable.clone()));
    late.text_insert(text, 0, "x").expect("in range");
    let before = (a.to_json(), a.version());
    assert_eq!(
        a.merge(&late),
        Err(LoadError::HistoryTrimmed {
            base: stable.clone()
        })
    );
    assert_eq!(
        a.apply_update(&late.update_since(&a.version())),
        Err(LoadError::HistoryTrimmed { base: stable })
    );
    assert_eq!((a.to_json(), a.version()), before, "nothing changed");
}

#[test]
fn the_point_shrinks_to_what_concurrent_events_had_seen() {
    let mut a = Document::new(replica(1));
    a.set(MapId::ROOT, "x", 1).expect("a map");
    let common = a.version();
    let mut b = a.fork(replica(2));
    a.set(MapId::ROOT, "a", 1).expect("a map");
    b.set(MapId::ROOT, "b", 1).expect("a map");
    b.merge(&a).expect("merges");
    a.merge(&b).expect("merges");
    // `stable` holds a's write but not b's, which is concurrent with it.
    let stable = a.version().meet(&{
        let mut v = common.clone();
        v.advance(replica(1), 2);
        v
    });
    assert_eq!(a.stable_compaction_point(&stable), Ok(common.clone()));
    let json = a.to_json();
    assert_eq!(a.compact(&stable), Ok(common.clone()));
    assert_eq!(a.to_json(), json);
    // Nothing to compact: an empty stable version.
    let mut c = Document::new(replica(3));
    c.set(MapId::ROOT, "c", 1).expect("a map");
    assert_eq!(c.compact(&VersionVector::new()), Ok(VersionVector::new()));
    assert_eq!(c.shallow_base(), None);
    // A stable version this document has not fully seen is cut to what it has.
    let mut beyond = c.version();
    beyond.advance(replica(9), 5);
    assert_eq!(c.compact(&beyond), Ok(c.version()));
}

#[test]
fn compaction_keeps_subscribers_and_refuses_while_undo_records() {
    let mut a = Document::new(replica(1));
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    let _id = a.subscribe(Box::new(move |_, _| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }));
    a.set(MapId::ROOT, "k", 1).expect("a map");
    a.compact(&a.version()).expect("compacts");
    let after_compact = seen.load(std::sync::atomic::Ordering::SeqCst);
    a.set(MapId::ROOT, "k", 2).expect("a map");
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst) > after_compact,
        "the subscriber still hears edits"
    );

    let mut b = Document::new(replica(2));
    let _undo = UndoManager::new(&mut b);
    b.set(MapId::ROOT, "k", 1).expect("a map");
    let json = b.to_json();
    assert_eq!(b.compact(&b.version()), Err(HistoryError::UndoRecording));
    assert_eq!(b.to_json(), json);
    // A same-replica copy (a backup, never edited) does not record: it compacts.
    let mut c = b.duplicate_same_replica();
    assert!(c.compact(&c.version()).is_ok());
}

// ---- property ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Scenario {
    before: Vec<Step>,
    middle: Vec<Step>,
    after: Vec<Step>,
    /// Which replica holds every event (pulls from all) and computes the point.
    holder: u8,
    /// Which replicas (bits) compact, first and second round.
    first: u8,
    second: u8,
    /// Which replicas (bits) the holder sends everything to before each round.
    push: (u8, u8),
}

/// The holder pulls every replica's changes, then sends everything to the replicas in `push`.
fn gather(docs: &mut [Document], holder: u8, push: u8) {
    for other in 0..docs.len() as u8 {
        run(
            docs,
            &Step::Sync {
                from: other,
                to: holder,
            },
        );
    }
    for other in 0..docs.len() as u8 {
        if push & (1 << other) != 0 {
            run(
                docs,
                &Step::Sync {
                    from: holder,
                    to: other,
                },
            );
        }
    }
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Self {
        let steps = |g: &mut Gen| {
            (0..usize::arbitrary(g) % 16)
                .map(|_| Step::arbitrary(g))
                .collect()
        };
        Scenario {
            before: steps(g),
            middle: steps(g),
            after: steps(g),
            holder: u8::arbitrary(g) % 3,
            first: u8::arbitrary(g),
            second: u8::arbitrary(g),
            push: (u8::arbitrary(g), u8::arbitrary(g)),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.clone();
        let a = {
            let me = me.clone();
            self.after.shrink().map(move |after| Scenario {
                after,
                ..me.clone()
            })
        };
        let m = {
            let me = me.clone();
            self.middle.shrink().map(move |middle| Scenario {
                middle,
                ..me.clone()
            })
        };
        let b = self.before.shrink().map(move |before| Scenario {
            before,
            ..me.clone()
        });
        Box::new(a.chain(m).chain(b))
    }
}

/// The holder (which holds every replica's changes) computes the point at the meet of all
/// versions and compacts; the replicas in `which` compact at that point. False if a compaction changed
/// the JSON or version, or was refused.
fn compaction_round(docs: &mut [Document], holder: usize, which: u8) -> bool {
    let stable = meet(docs);
    let before = (docs[holder].to_json(), docs[holder].version());
    let Ok(point) = docs[holder].compact(&stable) else {
        return false;
    };
    if (docs[holder].to_json(), docs[holder].version()) != before || !stable.includes(&point) {
        return false;
    }
    for (i, doc) in docs.iter_mut().enumerate() {
        if i != holder && which & (1 << i) != 0 {
            let before = (doc.to_json(), doc.version());
            if doc.compact(&point).as_ref() != Ok(&point) && !point.is_empty() {
                eprintln!("replica {i} did not compact at {point:?}");
                return false;
            }
            if (doc.to_json(), doc.version()) != before {
                return false;
            }
        }
    }
    true
}

fn compacted_replicas_converge_with_a_control_run(s: Scenario) -> bool {
    let fresh = || -> Vec<Document> { (0..3).map(replica).map(Document::new).collect() };
    let (mut docs, mut control) = (fresh(), fresh());
    let holder = usize::from(s.holder);
    for step in &s.before {
        run(&mut docs, step);
        run(&mut control, step);
    }
    gather(&mut docs, s.holder, s.push.0);
    gather(&mut control, s.holder, s.push.0);
    if !compaction_round(&mut docs, holder, s.first) {
        return false;
    }
    for step in &s.middle {
        run(&mut docs, step);
        run(&mut control, step);
    }
    gather(&mut docs, s.holder, s.push.1);
    gather(&mut control, s.holder, s.push.1);
    if !compaction_round(&mut docs, holder, s.second) {
        return false;
    }
    for step in &s.after {
        run(&mut docs, step);
        run(&mut control, step);
    }
    sync_all(&mut docs);
    sync_all(&mut control);
    let json = control[0].to_json();
    docs.iter()
        .chain(control.iter())
        .all(|d| d.to_json() == json && d.version() == control[0].version())
}

#[test]
fn compaction_never_changes_the_state_nor_stops_merges_with_acknowledging_replicas() {
    check(500, compacted_replicas_converge_with_a_control_run);
}

// ---- sizes on the shared traces ----------------------------------------------------------

/// `cargo test --release -p crdt-core --test it compaction_trace_sizes -- --nocapture`.
#[test]
fn compaction_trace_sizes() {
    let dir = crate::traces::traces_dir().join("sequential");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the shared traces")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    files.sort();
    println!(
        "| trace | full snapshot | after compact(final version) | = shallow at final version |"
    );
    println!("| --- | ---: | ---: | --- |");
    for path in files {
        let trace = crate::traces::load(&path);
        let (mut doc, text) = sequential_document(&trace, |_, _, _| {});
        let full = doc.encode().len();
        let shallow = doc.encode_shallow(&doc.version()).expect("a version");
        let version = doc.version();
        assert_eq!(doc.compact(&version), Ok(version));
        assert!(doc.text(text).expect("a text") == trace.end_content);
        let compacted = doc.encode();
        assert!(compacted.len() < full);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        println!(
            "| {} | {full} | {} | {} |",
            name.unwrap_or_default(),
            compacted.len(),
            compacted == shallow
        );
    }
}
