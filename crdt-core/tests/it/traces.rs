//! The real editing traces of `../shared/traces/` (format in its README), replayed on `Text`.

use std::path::{Path, PathBuf};

use crdt_core::{Document, MapId, ReplicaId, Text, TextId, VersionVector};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Trace {
    #[serde(rename = "endContent")]
    pub end_content: String,
    pub txns: Vec<Txn>,
    #[serde(rename = "numAgents", default)]
    pub num_agents: usize,
}

#[derive(Deserialize)]
pub struct Txn {
    pub patches: Vec<(usize, usize, String)>,
    #[serde(default)]
    pub parents: Vec<usize>,
    #[serde(default)]
    pub agent: usize,
}

pub fn traces_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces")
}

/// Reads a trace, gzipped if its name ends in `.gz`, plain JSON otherwise.
pub fn load(path: &Path) -> Trace {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = std::io::BufReader::new(file);
    let parsed = if path.extension().is_some_and(|ext| ext == "gz") {
        serde_json::from_reader(flate2::read::GzDecoder::new(reader))
    } else {
        serde_json::from_reader(reader)
    };
    parsed.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The hand-made trace with several roots (transactions on the empty document) that the
/// bench also measures.
fn multi_root_trace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/traces/multi-root.json")
}

fn trace_files(subdir: &str) -> Vec<PathBuf> {
    let dir = traces_dir().join(subdir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the shared traces must be at {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no traces in {}", dir.display());
    files
}

/// Applies a patch `[pos, delete, insert]` (positions in chars) to a text.
fn apply_patch(text: &mut Text, (pos, delete, insert): &(usize, usize, String)) {
    if *delete > 0 {
        text.delete(*pos..*pos + *delete)
            .expect("trace patch in range");
    }
    if !insert.is_empty() {
        text.insert(*pos, insert).expect("trace patch in range");
    }
}

/// Replays a trace whose transactions form one sequence.
fn replay_sequential(trace: &Trace) -> Text {
    let mut text = Text::new(ReplicaId::from_u128(1));
    for txn in &trace.txns {
        for patch in &txn.patches {
            apply_patch(&mut text, patch);
        }
    }
    text
}

#[test]
fn every_sequential_trace_yields_its_end_content() {
    let mut files = trace_files("sequential");
    files.extend(trace_files("sequential/ascii_only"));
    files.push(traces_dir().join("egwalker-paper/S3.json.gz"));
    for path in files {
        let trace = load(&path);
        let text = replay_sequential(&trace);
        assert!(
            text.to_string() == trace.end_content,
            "{}: replay differs from endContent",
            path.display()
        );
        // The encoded history loads back to the same text, at the same version.
        let loaded = Text::load(&text.encode(), ReplicaId::from_u128(2)).expect("loads");
        assert!(
            loaded.to_string() == trace.end_content,
            "{}: load",
            path.display()
        );
        assert_eq!(loaded.version(), text.version());
        // Merging into an existing empty replica gives the same.
        let mut remote = Text::new(ReplicaId::from_u128(3));
        remote.merge(&text).expect("merges");
        assert!(
            remote.to_string() == trace.end_content,
            "{}: merge",
            path.display()
        );
    }
}

/// Replays a concurrent trace with one replica per agent. Each transaction's update (made by
/// its agent's replica) goes into a log; before a transaction, its agent's replica applies the
/// logged updates of the ancestors it has not seen, so it is exactly at the parents' version.
/// A replica holding something the transaction did not see (its agent made two concurrent
/// transactions, e.g. a second root on the empty document) is replaced by a fresh one under a
/// new identity. At the end a fresh replica applies every update in order.
fn replay_concurrent(trace: &Trace) -> Text {
    let agents = trace.num_agents.max(1);
    let replica_of = |agent: usize| ReplicaId::from_u128(agent as u128 + 1);
    let mut next_fork = agents as u128 + 1;
    let mut replicas: Vec<Text> = (0..agents).map(|a| Text::new(replica_of(a))).collect();
    let n = trace.txns.len();
    // ancestors[t]: the transactions before t that t builds on (transitively), by index.
    let mut ancestors: Vec<Vec<bool>> = Vec::with_capacity(n);
    let mut applied: Vec<Vec<bool>> = vec![vec![false; n]; agents];
    let mut updates: Vec<Vec<u8>> = Vec::with_capacity(n);
    let mut versions: Vec<VersionVector> = Vec::with_capacity(n);
    for (t, txn) in trace.txns.iter().enumerate() {
        let mut mine = vec![false; t];
        let mut target = VersionVector::new();
        for &parent in &txn.parents {
            mine[parent] = true;
            for (u, &is) in ancestors[parent].iter().enumerate() {
                mine[u] |= is;
            }
            target.merge(&versions[parent]);
        }
        let replica = &mut replicas[txn.agent];
        if !target.includes(&replica.version()) {
            next_fork += 1;
            *replica = Text::new(ReplicaId::from_u128(next_fork));
            applied[txn.agent].fill(false);
        }
        for (u, &needed) in mine.iter().enumerate() {
            if needed && !applied[txn.agent][u] {
                replica.apply_update(&updates[u]).expect("ancestors apply");
                applied[txn.agent][u] = true;
            }
        }
        assert_eq!(replica.version(), target, "exactly at the parents' version");
        let before = replica.version();
        for patch in &txn.patches {
            apply_patch(replica, patch);
        }
        updates.push(replica.update_since(&before));
        applied[txn.agent][t] = true;
        versions.push(replica.version());
        ancestors.push(mine);
    }
    let mut all = Text::new(ReplicaId::from_u128(u128::MAX));
    for update in &updates {
        all.apply_update(update).expect("every update applies");
    }
    all
}

fn check_concurrent(relative: &str) {
    check_concurrent_at(&traces_dir().join(relative));
}

fn check_concurrent_at(path: &Path) {
    let trace = load(path);
    let merged = replay_concurrent(&trace);
    assert!(
        merged.to_string() == trace.end_content,
        "{}: replay differs from endContent",
        path.display()
    );
    let loaded = Text::load(&merged.encode(), ReplicaId::from_u128(2)).expect("loads");
    assert!(
        loaded.to_string() == trace.end_content,
        "{}: load",
        path.display()
    );
}

#[test]
fn a_concurrent_trace_with_several_roots_yields_its_end_content() {
    let path = multi_root_trace();
    let trace = load(&path);
    assert!(trace.txns.iter().filter(|t| t.parents.is_empty()).count() > 1);
    check_concurrent_at(&path);
    assert!(replay_concurrent_documents(&trace) == trace.end_content);
}

#[test]
fn concurrent_trace_friendsforever_yields_its_end_content() {
    check_concurrent("concurrent/friendsforever.json.gz");
}

#[test]
fn concurrent_trace_clownschool_yields_its_end_content() {
    check_concurrent("concurrent/clownschool.json.gz");
}

/// A1 has 204 agents on long-lived branches: each agent's replica catches up on most of the
/// history through updates, which takes about a minute in a release build and far longer
/// unoptimized. `cargo xtask test` runs it in release (`--release ... a1_`); debug builds skip
/// compiling it.
#[cfg(not(debug_assertions))]
#[test]
fn concurrent_trace_a1_one_replica_per_agent_yields_its_end_content() {
    check_concurrent("egwalker-paper/A1.json.gz");
}

/// The same traces in a document: a text container under the root, one transaction per trace
/// transaction, then encoded, loaded into a fresh replica and merged into another.
#[test]
fn every_sequential_trace_in_a_document_text_yields_its_end_content() {
    for path in trace_files("sequential") {
        let trace = load(&path);
        let sample_every = (trace.txns.len() / 10).max(1);
        let mut samples = Vec::new();
        let (doc, text) = sequential_document(&trace, |i, doc, text| {
            if i % sample_every == 0 {
                samples.push((doc.version(), doc.text(text).expect("a text")));
            }
        });
        for (version, seen) in &samples {
            let view = doc
                .view_at(version)
                .expect("a version the document went through");
            assert!(
                view.text(text).expect("a text") == *seen,
                "{}: the view at {version:?} differs",
                path.display()
            );
        }
        assert!(
            doc.text(text).expect("a text") == trace.end_content,
            "{}",
            path.display()
        );
        let loaded = Document::load(&doc.encode(), ReplicaId::from_u128(2)).expect("loads");
        assert!(
            loaded.text(text).expect("a text") == trace.end_content,
            "{}: load",
            path.display()
        );
        assert_eq!(loaded.version(), doc.version());
    }
}

/// A sequential trace in a document: a text container under the root, one transaction per
/// trace transaction; `after(i, doc, text)` is called once transaction `i` is applied.
pub(crate) fn sequential_document(
    trace: &Trace,
    mut after: impl FnMut(usize, &Document, TextId),
) -> (Document, TextId) {
    let mut doc = Document::new(ReplicaId::from_u128(1));
    let text = doc
        .replace_with_new_text(MapId::ROOT, "text")
        .expect("root is a map");
    for (i, txn) in trace.txns.iter().enumerate() {
        doc.transact(|tx| {
            for (pos, delete, insert) in &txn.patches {
                tx.text_delete(text, *pos..*pos + *delete)?;
                tx.text_insert(text, *pos, insert)?;
            }
            Ok(())
        })
        .expect("trace patches are in range");
        after(i, &doc, text);
    }
    (doc, text)
}

/// A real-time concurrent trace as documents: one replica per agent, each receiving exactly
/// the transactions its next transaction's parents name (from a hub holding all), editing a
/// text container, one transaction per trace transaction. `after(i, replica, version, text)`
/// is called once transaction `i` is applied to its agent's replica, whose version that is.
/// Returns the hub.
pub(crate) fn concurrent_document(
    trace: &Trace,
    mut after: impl FnMut(usize, &Document, &VersionVector, TextId),
) -> (Document, TextId) {
    let agents = trace.num_agents.max(1);
    let replica_of = |agent: usize| ReplicaId::from_u128(agent as u128 + 1);
    let mut next_fork = agents as u128 + 1;
    // Everyone starts from one shared creation of the text, so they all edit the same one.
    let mut origin = Document::new(ReplicaId::from_u128(u128::MAX - 1));
    let text: TextId = origin
        .replace_with_new_text(MapId::ROOT, "text")
        .expect("a map");
    let mut replicas: Vec<Document> = (0..agents).map(|a| origin.fork(replica_of(a))).collect();
    let mut hub = origin.fork(ReplicaId::from_u128(u128::MAX));
    let base = origin.version();
    let mut versions: Vec<VersionVector> = Vec::with_capacity(trace.txns.len());
    for (i, txn) in trace.txns.iter().enumerate() {
        let mut target = base.clone();
        for &parent in &txn.parents {
            target.merge(&versions[parent]);
        }
        let replica = &mut replicas[txn.agent];
        if !target.includes(&replica.version()) {
            // The agent's replica holds something this transaction did not see (a second root,
            // or two concurrent transactions of one agent): a fresh one from the creation.
            next_fork += 1;
            *replica = origin.fork(ReplicaId::from_u128(next_fork));
        }
        let missing = hub.update_between(&replica.version(), &target);
        replica.apply_update(&missing).expect("ancestors apply");
        assert_eq!(replica.version(), target, "exactly at the parents' version");
        replica
            .transact(|tx| {
                for (pos, delete, insert) in &txn.patches {
                    tx.text_delete(text, *pos..*pos + *delete)?;
                    tx.text_insert(text, *pos, insert)?;
                }
                Ok(())
            })
            .expect("patches in range");
        hub.merge(replica).expect("hub merges");
        let mut version = target;
        let editor = replica.replica();
        version.advance(editor, replica.version().get(editor));
        after(i, replica, &version, text);
        versions.push(version);
    }
    (hub, text)
}

/// [`concurrent_document`], checking the hub's view at every twentieth version against what
/// the editing replica saw, and that the hub's snapshot loads; returns the final text.
fn replay_concurrent_documents(trace: &Trace) -> String {
    let sample_every = (trace.txns.len() / 20).max(1);
    let mut samples: Vec<(VersionVector, String)> = Vec::new();
    let (hub, text) = concurrent_document(trace, |i, replica, version, text| {
        if i % sample_every == 0 {
            samples.push((version.clone(), replica.text(text).expect("a text")));
        }
    });
    for (version, seen) in &samples {
        let view = hub
            .view_at(version)
            .expect("a version the hub went through");
        assert!(
            view.text(text).expect("a text") == *seen,
            "the view at {version:?} differs from what the replica saw"
        );
    }
    let loaded = Document::load(&hub.encode(), ReplicaId::from_u128(5)).expect("loads");
    assert_eq!(loaded.text(text), hub.text(text));
    hub.text(text).expect("a text")
}

#[test]
fn concurrent_traces_as_documents_yield_their_end_content() {
    for relative in [
        "concurrent/friendsforever.json.gz",
        "concurrent/clownschool.json.gz",
    ] {
        let trace = load(&traces_dir().join(relative));
        assert!(
            replay_concurrent_documents(&trace) == trace.end_content,
            "{relative}: differs from endContent"
        );
    }
}
