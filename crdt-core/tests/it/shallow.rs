//! Shallow snapshots: the state plus the history after a version only
//! (`Document::encode_shallow`), what a loaded one can still do, what it refuses with
//! `LoadError::HistoryTrimmed`, decoding robustness, and the sizes on the shared traces.

use crdt_core::{
    ContainerKind, Document, HistoryError, LoadError, MapId, ReplicaId, TextId, Value,
    VersionVector,
};
use quickcheck::{Arbitrary, Gen};

use crate::document::{Edit, edit};
use crate::harness::check;

fn replica(index: usize) -> ReplicaId {
    ReplicaId::from_u128(0x500 + index as u128)
}

fn load(bytes: &[u8], index: usize) -> Document {
    Document::load(bytes, replica(index)).expect("a shallow snapshot loads")
}

/// Two replicas that edited a text concurrently and synced: the version they share has two
/// heads (no event descends from both), so merges after it meet a multi-head base.
fn two_headed() -> (Document, Document, TextId) {
    let mut a = Document::new(replica(1));
    let text = a.replace_with_new_text(MapId::ROOT, "text").expect("a map");
    a.text_insert(text, 0, "hello world").expect("in range");
    let mut b = a.fork(replica(2));
    a.text_insert(text, 5, ",").expect("in range");
    b.text_insert(text, 11, "!").expect("in range");
    b.set(MapId::ROOT, "k", "b").expect("a map");
    a.set(MapId::ROOT, "k", "a").expect("a map");
    a.merge(&b).expect("merges");
    b.merge(&a).expect("merges");
    assert_eq!(a.heads().len(), 2);
    (a, b, text)
}

#[test]
fn a_shallow_snapshot_loads_the_state_and_merges_concurrent_edits_after_its_base() {
    let (mut a, mut b, text) = two_headed();
    let base = a.version();
    let mut shallow = load(&a.encode_shallow(&base).expect("a version"), 3);
    assert_eq!(shallow.to_json(), a.to_json());
    assert_eq!(shallow.version(), base);
    assert_eq!(shallow.shallow_base(), Some(&base));
    assert!(
        shallow.history_len() == a.history_len(),
        "every event of the base keeps a local version"
    );

    // Concurrent edits on all three, merged every way, including into the full replicas.
    shallow.text_insert(text, 0, "[").expect("in range");
    shallow.set(MapId::ROOT, "k", "shallow").expect("a map");
    a.text_insert(text, 6, " big").expect("in range");
    b.text_delete(text, 0..1).expect("in range");
    b.set(MapId::ROOT, "k", "b2").expect("a map");
    for (from, to) in [(0, 1), (1, 2), (2, 0), (0, 2), (1, 0), (2, 1)] {
        let docs = [&a, &b, &shallow];
        let update = docs[from].update_since(&docs[to].version());
        let target: &mut Document = match to {
            0 => &mut a,
            1 => &mut b,
            _ => &mut shallow,
        };
        target
            .apply_update(&update)
            .expect("changes after the base apply");
    }
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(shallow.to_json(), a.to_json());
    assert_eq!(
        shallow.get_conflicts(MapId::ROOT, "k"),
        a.get_conflicts(MapId::ROOT, "k")
    );

    // It encodes shallow again, at the same base, and that loads to the same document.
    let again = load(&shallow.encode(), 4);
    assert_eq!(again.shallow_base(), Some(&base));
    assert_eq!(again.to_json(), a.to_json());
}

#[test]
fn a_change_concurrent_with_the_trimmed_history_is_refused_with_a_typed_error() {
    let mut a = Document::new(replica(1));
    let text = a.replace_with_new_text(MapId::ROOT, "text").expect("a map");
    let mut late = a.fork(replica(2));
    a.text_insert(text, 0, "abc").expect("in range");
    let base = a.version();
    let mut shallow = load(&a.encode_shallow(&base).expect("a version"), 1);
    shallow.text_insert(text, 3, "d").expect("in range");
    let before = (shallow.to_json(), shallow.version());

    // `late` never saw "abc": its edit was made concurrently with trimmed events.
    late.text_insert(text, 0, "x").expect("in range");
    let result = shallow.apply_update(&late.update_since(&shallow.version()));
    let Err(error) = result else {
        panic!("accepted a change that needs the trimmed history: {result:?}");
    };
    assert_eq!(error, LoadError::HistoryTrimmed { base: base.clone() });
    assert!(error.to_string().contains("shallow snapshot"), "{error}");
    assert_eq!(
        (shallow.to_json(), shallow.version()),
        before,
        "nothing changed"
    );
    // The same through merge, and for a change from a replica that knew nothing.
    assert!(matches!(
        shallow.merge(&late),
        Err(LoadError::HistoryTrimmed { .. })
    ));
    let mut stranger = Document::new(replica(3));
    stranger.set(MapId::ROOT, "x", 1).expect("a map");
    assert!(matches!(
        shallow.apply_update(&stranger.encode()),
        Err(LoadError::HistoryTrimmed { .. })
    ));
    assert_eq!((shallow.to_json(), shallow.version()), before);

    // A full replica merges it, and the shallow one then takes the merged result.
    a.merge(&late).expect("the full history merges it");
    a.merge(&shallow).expect("merges");
    let merged = a.text(text).expect("a text");
    assert!(merged == "xabcd" || merged == "abcdx", "{merged}");
}

#[test]
fn a_change_whose_parents_have_not_arrived_is_still_a_missing_event() {
    let mut a = Document::new(replica(1));
    a.set(MapId::ROOT, "k", 1).expect("a map");
    let base = a.version();
    let mut shallow = load(&a.encode_shallow(&base).expect("a version"), 1);
    let v1 = a.version();
    a.set(MapId::ROOT, "k", 2).expect("a map");
    let v2 = a.version();
    a.set(MapId::ROOT, "k", 3).expect("a map");
    let gap = a.update_since(&v2);
    assert!(matches!(
        shallow.apply_update(&gap),
        Err(LoadError::MissingEvent(_))
    ));
    shallow
        .apply_update(&a.update_since(&v1))
        .expect("in order it applies");
    assert_eq!(shallow.to_json(), a.to_json());
}

#[test]
fn a_state_only_snapshot_is_smaller_and_syncs_on() {
    let (a, _, text) = two_headed();
    let full = a.encode();
    let state_only = a.encode_shallow(&a.version()).expect("the current version");
    assert!(state_only.len() < full.len());
    let mut loaded = load(&state_only, 4);
    assert_eq!(loaded.to_json(), a.to_json());
    loaded.text_insert(text, 0, ">").expect("in range");
    let mut peer = a.fork(replica(5));
    peer.apply_update(&loaded.update_since(&peer.version()))
        .expect("a full replica at the base takes it");
    assert_eq!(peer.to_json(), loaded.to_json());
}

#[test]
fn history_before_the_base_is_refused_with_typed_errors() {
    let mut a = Document::new(replica(1));
    a.set(MapId::ROOT, "k", 1).expect("a map");
    let v1 = a.version();
    a.set(MapId::ROOT, "k", 2).expect("a map");
    let base = a.version();
    let mut shallow = load(&a.encode_shallow(&base).expect("a version"), 1);
    shallow.set(MapId::ROOT, "k", 3).expect("a map");
    let trimmed = HistoryError::HistoryTrimmed { base: base.clone() };
    assert_eq!(shallow.check_version(&v1), Err(trimmed.clone()));
    assert_eq!(shallow.view_at(&v1).err(), Some(trimmed.clone()));
    assert_eq!(shallow.view_at(&base).err(), Some(trimmed.clone()));
    // The current version is readable: it is the live state.
    let now = shallow
        .view_at(&shallow.version())
        .expect("the current version");
    assert_eq!(now.to_json(), shallow.to_json());
    assert_eq!(now.get(MapId::ROOT, "k").expect("a map"), Some(3.into()));
    assert_eq!(shallow.encode_shallow(&v1).err(), Some(trimmed.clone()));
    assert_eq!(
        shallow.try_update_since(&VersionVector::new()).err(),
        Some(trimmed.clone())
    );
    assert_eq!(shallow.revert_to(&v1), Err(trimmed.clone()));
    assert!(shallow.check_version(&base).is_ok());
    let changes = shallow
        .changes_between(&base, &shallow.version())
        .expect("after the base");
    assert_eq!(changes.len(), 1);
    // Trimming further works.
    let further = load(
        &shallow
            .encode_shallow(&shallow.version())
            .expect("a later version"),
        2,
    );
    assert_eq!(further.to_json(), shallow.to_json());
    // `update_since` of a version without the base is the shallow snapshot: an empty replica
    // loads it (a first sync), any other refuses it with the typed error.
    let mut empty = Document::new(replica(3));
    empty
        .apply_update(&shallow.update_since(&VersionVector::new()))
        .expect("an empty replica loads it");
    assert_eq!(empty.to_json(), shallow.to_json());
    let mut empty = Document::new(replica(3));
    empty.merge(&shallow).expect("an empty replica loads it");
    assert_eq!(empty.to_json(), shallow.to_json());
    let mut stranger = Document::new(replica(4));
    stranger.set(MapId::ROOT, "s", 1).expect("a map");
    let trimmed_load = LoadError::HistoryTrimmed { base: base.clone() };
    assert_eq!(
        stranger.apply_update(&shallow.update_since(&stranger.version())),
        Err(trimmed_load.clone())
    );
    assert_eq!(stranger.merge(&shallow), Err(trimmed_load));
}

#[test]
fn a_shallow_snapshot_applies_to_replicas_with_its_base_only() {
    let mut a = Document::new(replica(1));
    a.set(MapId::ROOT, "k", 1).expect("a map");
    let mut behind = a.fork(replica(2));
    let base = a.version();
    a.set(MapId::ROOT, "k", 2).expect("a map");
    let bytes = a.encode_shallow(&base).expect("a version");
    behind.apply_update(&bytes).expect("it has the base");
    assert_eq!(behind.to_json(), a.to_json());
    let mut stranger = Document::new(replica(3));
    stranger.set(MapId::ROOT, "s", 1).expect("a map");
    assert_eq!(
        stranger.apply_update(&bytes),
        Err(LoadError::HistoryTrimmed { base })
    );
}

#[test]
fn a_version_with_concurrent_events_after_it_cannot_be_a_base() {
    let mut a = Document::new(replica(1));
    a.set(MapId::ROOT, "a", 1).expect("a map");
    let mut b = a.fork(replica(2));
    a.set(MapId::ROOT, "a", 2).expect("a map");
    let v = a.version();
    b.set(MapId::ROOT, "b", 1).expect("a map"); // not after all of `v`
    a.merge(&b).expect("merges");
    assert!(matches!(
        a.encode_shallow(&v),
        Err(HistoryError::ConcurrentWithVersion { .. })
    ));
    assert!(a.encode_shallow(&a.version()).is_ok());
}

#[test]
fn nested_containers_created_before_the_base_keep_their_paths() {
    let mut a = Document::new(replica(1));
    let list = a.replace_with_new_list(MapId::ROOT, "list").expect("a map");
    let inner = a
        .list_insert_new(list, 0, ContainerKind::Map)
        .expect("in range");
    let inner = MapId(inner);
    let counter = a.replace_with_new_counter(inner, "n").expect("a map");
    a.counter_add(counter, 2).expect("a counter");
    let register = a
        .replace_with_new_register(MapId::ROOT, "r")
        .expect("a map");
    a.register_set(register, "x").expect("a register");
    let base = a.version();
    let mut shallow = load(&a.encode_shallow(&base).expect("a version"), 2);
    assert_eq!(shallow.to_json(), a.to_json());
    assert_eq!(shallow.path_of(inner.0), a.path_of(inner.0));
    shallow.counter_add(counter, 3).expect("a counter");
    a.register_set(register, "y").expect("a register");
    shallow.register_set(register, "z").expect("a register");
    a.merge(&shallow).expect("merges");
    shallow.merge(&a).expect("merges");
    assert_eq!(shallow.to_json(), a.to_json());
    assert_eq!(
        shallow
            .get(inner, "n")
            .expect("a map")
            .map(|v| matches!(v, Value::Container(..))),
        Some(true)
    );
}

/// Format 1 documents written before shallow snapshots existed (by the encoder of commit
/// 23a4e71) still load: kinds 1 and 2 did not change.
#[test]
fn documents_written_before_shallow_snapshots_still_load() {
    let json = include_str!("golden_v1.txt");
    let mut lines = json.lines();
    let expected: serde_json::Value =
        serde_json::from_str(lines.next().expect("json")).expect("json");
    for line in lines {
        let bytes: Vec<u8> = (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
            .collect();
        let doc = Document::load(&bytes, replica(9)).expect("old data loads");
        assert_eq!(doc.to_json(), expected);
        assert_eq!(doc.shallow_base(), None);
    }
}

// ---- property ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub(crate) enum Step {
    Transact {
        at: u8,
        edits: Vec<(u8, Edit)>,
    },
    /// `to` applies `from`'s update since `to`'s version.
    Sync {
        from: u8,
        to: u8,
    },
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        if u8::arbitrary(g) % 3 == 0 {
            Step::Sync {
                from: u8::arbitrary(g),
                to: u8::arbitrary(g),
            }
        } else {
            Step::Transact {
                at: u8::arbitrary(g),
                edits: (0..1 + usize::from(u8::arbitrary(g) % 3))
                    .map(|_| (u8::arbitrary(g), Edit::arbitrary(g)))
                    .collect(),
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Scenario {
    replicas: usize,
    before: Vec<Step>,
    after: Vec<Step>,
    /// Which replicas (bit i) continue from a shallow snapshot; replica 0 always keeps the
    /// full history.
    shallow: u8,
    /// How many of the steps before the base the late replica saw.
    late_seen: usize,
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Self {
        let steps = |g: &mut Gen| {
            (0..usize::arbitrary(g) % 20)
                .map(|_| Step::arbitrary(g))
                .collect()
        };
        let before: Vec<Step> = steps(g);
        Scenario {
            replicas: 2 + usize::from(u8::arbitrary(g) % 2),
            late_seen: usize::arbitrary(g) % (before.len() + 1),
            before,
            after: steps(g),
            shallow: u8::arbitrary(g) | 2,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.clone();
        let fewer_after = self.after.shrink().map({
            let me = me.clone();
            move |after| Scenario {
                after,
                ..me.clone()
            }
        });
        let fewer_before = self.before.shrink().map(move |before| Scenario {
            late_seen: me.late_seen.min(before.len()),
            before,
            ..me.clone()
        });
        Box::new(fewer_after.chain(fewer_before))
    }
}

pub(crate) fn run(docs: &mut [Document], step: &Step) {
    let n = docs.len();
    match step {
        Step::Transact { at, edits } => {
            let _ = docs[usize::from(*at) % n].transact(|tx| {
                for (target, e) in edits {
                    edit(tx, *target, e)?;
                }
                Ok(())
            });
        }
        Step::Sync { from, to } => {
            let (from, to) = (usize::from(*from) % n, usize::from(*to) % n);
            if from != to {
                let update = docs[from].update_since(&docs[to].version());
                docs[to]
                    .apply_update(&update)
                    .expect("an update from a replica of the same history applies");
            }
        }
    }
}

pub(crate) fn sync_all(docs: &mut [Document]) {
    for _ in 0..2 {
        for from in 0..docs.len() {
            for to in 0..docs.len() {
                run(
                    docs,
                    &Step::Sync {
                        from: from as u8,
                        to: to as u8,
                    },
                );
            }
        }
    }
}

fn shallow_replicas_converge_with_full_ones(scenario: Scenario) -> bool {
    let mut docs: Vec<Document> = (0..scenario.replicas)
        .map(replica)
        .map(Document::new)
        .collect();
    // The late replica starts on the same empty document and sees a prefix of the steps.
    let mut late = Document::new(replica(7));
    for (i, step) in scenario.before.iter().enumerate() {
        run(&mut docs, step);
        if i + 1 == scenario.late_seen {
            late.merge(&docs[0]).expect("merges");
        }
    }
    sync_all(&mut docs);
    let base = docs[0].version();
    late.set(MapId::ROOT, "late", 1).expect("a map");
    for i in 1..docs.len() {
        if scenario.shallow & (1 << i) != 0 {
            let bytes = docs[(i + 1) % docs.len()]
                .encode_shallow(&base)
                .expect("a synced version is a base");
            docs[i] = Document::load(&bytes, replica(i)).expect("loads");
        }
    }
    for step in &scenario.after {
        run(&mut docs, step);
    }
    // A change concurrent with trimmed events: refused, nothing changed.
    for doc in docs.iter_mut().skip(1) {
        if doc.shallow_base().is_some() && !late.version().includes(&base) {
            let before = (doc.to_json(), doc.version());
            let refused = doc.apply_update(&late.update_since(&doc.version()));
            if refused != Err(LoadError::HistoryTrimmed { base: base.clone() })
                || (doc.to_json(), doc.version()) != before
            {
                eprintln!("late change: {refused:?}");
                return false;
            }
        }
    }
    sync_all(&mut docs);
    let json = docs[0].to_json();
    let round_trip = docs.iter().all(|d| {
        Document::load(&d.encode(), replica(8))
            .map(|l| l.to_json())
            .ok()
            == Some(json.clone())
    });
    docs.iter()
        .all(|d| d.to_json() == json && d.version() == docs[0].version())
        && round_trip
}

#[test]
fn shallow_and_full_replicas_converge_and_refuse_trimmed_concurrency() {
    check(1000, shallow_replicas_converge_with_full_ones);
}

// ---- decoding robustness -----------------------------------------------------------------

fn sample_shallow() -> Vec<u8> {
    let (mut a, _, text) = two_headed();
    let base = a.version();
    let list = a.replace_with_new_list(MapId::ROOT, "list").expect("a map");
    a.list_insert(list, 0, 1).expect("in range");
    a.text_insert(text, 0, "é😀").expect("in range");
    a.encode_shallow(&base).expect("a version")
}

fn forged_shallow_never_panics((edits, truncate): (Vec<(u16, u8)>, u16)) -> bool {
    let mut bytes = sample_shallow();
    for (position, value) in edits {
        let at = 10 + usize::from(position) % (bytes.len() - 10);
        bytes[at] = value;
    }
    if truncate % 4 == 0 {
        bytes.truncate(10 + usize::from(truncate) % (bytes.len() - 10));
    }
    let checksum = crc32fast::hash(&bytes[10..]).to_le_bytes();
    bytes[6..10].copy_from_slice(&checksum);
    let _ = Document::load(&bytes, replica(1)).map(|d| d.encode());
    let mut busy = Document::new(replica(2));
    busy.set(MapId::ROOT, "k", 1).expect("a map");
    let before = busy.to_json();
    busy.apply_update(&bytes).is_ok() || busy.to_json() == before
}

#[test]
fn forged_shallow_snapshots_with_valid_checksums_never_panic() {
    check(2000, forged_shallow_never_panics);
}

fn random_shallow_bodies_never_panic(body: Vec<u8>) -> bool {
    let mut bytes = vec![0xC7, b'D', b'O', b'C', 1, 3];
    bytes.extend(crc32fast::hash(&body).to_le_bytes());
    bytes.extend(&body);
    let _ = Document::load(&bytes, replica(1));
    true
}

#[test]
fn random_shallow_bodies_never_panic_the_decoder() {
    check(3000, random_shallow_bodies_never_panic);
}

/// A hand-written shallow snapshot whose base claims 2^63 events of each of two replicas, as
/// two trimmed runs (lengths cost no bytes): refused, not overflowed.
#[test]
fn huge_trimmed_runs_are_refused() {
    let mut body = vec![2u8]; // replicas
    body.extend([1u8; 16]);
    body.extend([2u8; 16]);
    body.push(0); // containers
    let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]; // 2^63
    body.push(2); // base version entries
    for r in 0..2u8 {
        body.push(r);
        body.extend(huge);
    }
    body.push(2); // trimmed runs
    for r in 0..2u8 {
        body.extend([r, 1]); // replica, first sequence number
        body.extend(huge); // length
        body.push(0); // parents
    }
    body.push(0); // changes
    body.extend([0, 0, 0]); // the text block: stored (0), empty
    body.extend([0, 0]); // state, placements
    let mut bytes = vec![0xC7, b'D', b'O', b'C', 1, 3];
    bytes.extend(crc32fast::hash(&body).to_le_bytes());
    bytes.extend(&body);
    assert_eq!(
        Document::load(&bytes, replica(1)).err(),
        Some(LoadError::Malformed("too many trimmed events"))
    );
}

#[test]
fn every_prefix_of_a_shallow_snapshot_is_refused_with_an_error() {
    let bytes = sample_shallow();
    assert!(Document::load(&bytes, replica(1)).is_ok());
    for len in 0..bytes.len() {
        assert!(Document::load(&bytes[..len], replica(1)).is_err(), "{len}");
    }
}

// ---- sizes on the shared traces ----------------------------------------------------------

/// Prints, for the shared traces in `subdirs` as documents, the full snapshot and the shallow
/// snapshot at the final version (state only), and checks the shallow one loads to the same
/// text.
fn trace_sizes(subdirs: &[&str]) {
    let dir = crate::traces::traces_dir();
    let mut rows = Vec::new();
    for &sub in subdirs {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(sub))
            .expect("the shared traces")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
            .collect();
        files.sort();
        for path in files {
            let trace = crate::traces::load(&path);
            let (doc, text) = if trace.num_agents > 0 {
                crate::traces::concurrent_document(&trace, |_, _, _, _| {})
            } else {
                crate::traces::sequential_document(&trace, |_, _, _| {})
            };
            assert!(doc.text(text).expect("a text") == trace.end_content);
            let full = doc.encode();
            let shallow = doc
                .encode_shallow(&doc.version())
                .expect("the current version");
            let loaded = Document::load(&shallow, replica(2)).expect("loads");
            assert!(loaded.text(text).expect("a text") == trace.end_content);
            assert!(shallow.len() < full.len());
            // The same final text with no history to speak of: what the state alone costs.
            let mut fresh = Document::new(replica(1));
            let fresh_text = fresh
                .replace_with_new_text(MapId::ROOT, "text")
                .expect("a map");
            fresh
                .text_insert(fresh_text, 0, &trace.end_content)
                .expect("in range");
            let state_only = fresh
                .encode_shallow(&fresh.version())
                .expect("the current version");
            // Compaction in place: when everyone acknowledged everything, and when the
            // acknowledged version lags (what the change at 90% of the history depends on).
            // Copies compacted and read, never edited.
            let mut compacted = doc.duplicate_same_replica();
            compacted.compact(&doc.version()).expect("compacts");
            assert!(compacted.text(text).expect("a text") == trace.end_content);
            let changes = doc
                .changes_between(&crdt_core::VersionVector::new(), &doc.version())
                .expect("the whole history");
            let lagging = doc
                .version_of_heads(&[changes[changes.len() * 9 / 10].id])
                .expect("a known event");
            let mut compacted_lagging = doc.duplicate_same_replica();
            let point = compacted_lagging.compact(&lagging).expect("compacts");
            assert!(compacted_lagging.text(text).expect("a text") == trace.end_content);
            let kept = doc.history_len() - point.iter().map(|(_, n)| n as usize).sum::<usize>();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            rows.push([
                format!("{sub}/{}", name.unwrap_or_default()),
                doc.history_len().to_string(),
                trace.end_content.len().to_string(),
                full.len().to_string(),
                shallow.len().to_string(),
                compacted.encode().len().to_string(),
                format!("{} ({kept} events kept)", compacted_lagging.encode().len()),
                state_only.len().to_string(),
            ]);
        }
    }
    println!(
        "| trace | events | final text | full snapshot | shallow at final version | \
         compacted at final version | compacted at 90% acknowledged | \
         same text without history |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
}

/// `cargo test --release -p crdt-core --test it trace_sizes -- --nocapture` prints the table.
#[test]
fn trace_sizes_full_and_shallow() {
    trace_sizes(&["sequential", "concurrent"]);
}

/// The Eg-walker paper's traces (2.3 million events for S3: about 20 s in release):
/// `cargo test --release -p crdt-core --test it trace_sizes -- --ignored --nocapture`.
#[test]
#[ignore = "slow; run in release with --ignored --nocapture"]
fn trace_sizes_full_and_shallow_egwalker_paper() {
    trace_sizes(&["egwalker-paper"]);
}

/// Over the sync protocol: a fresh client of a replica loaded from a shallow snapshot gets the
/// snapshot and syncs on; a client whose own changes are concurrent with the trimmed history
/// gets the typed error (from its session or the shallow side's), never a silent stall.
#[test]
fn sync_sessions_with_a_shallow_replica_load_or_fail_with_the_typed_error() {
    use crdt_core::{Message, SyncError, SyncSession};

    /// Exchanges messages until both sides are quiet; the first error of either side.
    fn exchange(a: &mut Document, b: &mut Document) -> Result<(), SyncError> {
        let (mut sa, mut sb) = (SyncSession::new("d"), SyncSession::new("d"));
        let mut to_b: Vec<Message> = vec![sa.hello(a)];
        let mut to_a: Vec<Message> = vec![sb.hello(b)];
        for _ in 0..20 {
            if to_a.is_empty() && to_b.is_empty() {
                break;
            }
            for message in std::mem::take(&mut to_b) {
                to_a.extend(sb.receive(b, message)?);
            }
            for message in std::mem::take(&mut to_a) {
                to_b.extend(sa.receive(a, message)?);
            }
            to_b.extend(sa.poll(a));
            to_a.extend(sb.poll(b));
        }
        Ok(())
    }

    let mut origin = Document::new(replica(1));
    let text = origin
        .replace_with_new_text(MapId::ROOT, "t")
        .expect("a map");
    let mut stale = origin.fork(replica(2));
    origin.text_insert(text, 0, "shared").expect("in range");
    let base = origin.version();
    let mut server = load(&origin.encode_shallow(&base).expect("a version"), 3);
    server.text_insert(text, 6, "!").expect("in range");

    let mut fresh = Document::new(replica(4));
    exchange(&mut server, &mut fresh).expect("a fresh client syncs");
    assert_eq!(fresh.to_json(), server.to_json());
    assert_eq!(fresh.shallow_base(), Some(&base));
    fresh.text_insert(text, 0, ">").expect("in range");
    exchange(&mut server, &mut fresh).expect("and syncs on");
    assert_eq!(server.text(text).expect("a text"), ">shared!");

    stale.text_insert(text, 0, "old").expect("in range");
    let before = server.to_json();
    let error = exchange(&mut server, &mut stale).expect_err("needs the trimmed history");
    assert_eq!(
        error,
        SyncError::Update(LoadError::HistoryTrimmed { base: base.clone() })
    );
    assert_eq!(server.to_json(), before);
}

/// Shallow snapshots of the first layout (kind 3: the base's whole causal graph), written by
/// the encoder of commit 149b176, still load and edit on: two replicas' concurrent writes
/// to "k" (kept as a conflict), a text edited by both, a list and a nested map.
#[test]
fn shallow_snapshots_of_the_first_layout_still_load() {
    let golden = include_str!("golden_shallow_kind3.txt");
    let mut lines = golden.lines();
    let expected: serde_json::Value =
        serde_json::from_str(lines.next().expect("json")).expect("json");
    let hex = lines.next().expect("hex");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    assert_eq!(bytes[5], 3, "kind 3");
    let mut doc = Document::load(&bytes, replica(9)).expect("old data loads");
    assert_eq!(doc.to_json(), expected);
    assert_eq!(
        doc.get_conflicts(MapId::ROOT, "k").expect("a map"),
        [&Value::from("b"), &Value::from("a")]
    );
    let base = doc.shallow_base().cloned().expect("shallow");
    assert_eq!(base, doc.version());
    // It edits on, and re-encodes in the current layout.
    doc.set(MapId::ROOT, "k", "c").expect("a map");
    let again = Document::load(&doc.encode(), replica(10)).expect("loads");
    assert_eq!(again.to_json(), doc.to_json());
    assert_eq!(again.shallow_base(), Some(&base));
}
