//! Behaviour of the sequence CRDT through `Text` on small, readable cases. The randomized
//! properties are in `tests/it/text.rs`.

use crate::{LoadError, ReplicaId, Text, TextError, VersionVector};

fn replica(n: u128) -> ReplicaId {
    ReplicaId::from_u128(n)
}

fn synced(a: &mut Text, b: &mut Text) {
    a.merge(b).expect("merge");
    b.merge(a).expect("merge");
}

#[test]
fn local_edits() {
    let mut text = Text::new(replica(1));
    text.insert(0, "hello").unwrap();
    text.insert(5, " world").unwrap();
    text.delete(0..1).unwrap();
    text.insert(0, "H").unwrap();
    assert_eq!(text.to_string(), "Hello world");
    assert_eq!(
        text.insert(12, "!"),
        Err(TextError::OutOfRange { index: 12, len: 11 })
    );
    assert_eq!(text.history_len(), 13);
}

#[test]
fn concurrent_inserts_at_one_place_do_not_interleave() {
    let mut a = Text::new(replica(1));
    a.insert(0, "ab").unwrap();
    let mut b = a.fork(replica(2));
    // Both type a word between a and b, char by char.
    for (i, c) in "1234".chars().enumerate() {
        a.insert(1 + i, &c.to_string()).unwrap();
    }
    for (i, c) in "wxyz".chars().enumerate() {
        b.insert(1 + i, &c.to_string()).unwrap();
    }
    synced(&mut a, &mut b);
    assert_eq!(a.to_string(), b.to_string());
    let merged = a.to_string();
    assert!(
        merged == "a1234wxyzb" || merged == "awxyz1234b",
        "interleaved: {merged}"
    );
}

#[test]
fn concurrent_deletes_of_the_same_text_delete_it_once() {
    let mut a = Text::new(replica(1));
    a.insert(0, "hello world").unwrap();
    let mut b = Text::new(replica(2));
    b.merge(&a).unwrap();
    a.delete(2..8).unwrap();
    b.delete(4..11).unwrap();
    b.insert(4, "!").unwrap();
    synced(&mut a, &mut b);
    assert_eq!(a.to_string(), "he!");
    assert_eq!(b.to_string(), "he!");
}

#[test]
fn updates_round_trip_through_bytes_and_skip_known_events() {
    let mut a = Text::new(replica(1));
    a.insert(0, "héllo 😀").unwrap();
    let mut b = Text::new(replica(2));
    let update = a.update_since(&b.version());
    assert_eq!(b.apply_update(&update), Ok(7));
    assert_eq!(b.apply_update(&update), Ok(0));
    assert_eq!(b.to_string(), "héllo 😀");
    a.delete(1..2).unwrap();
    b.insert(7, "!").unwrap();
    let from_b = b.update_since(&VersionVector::new());
    a.apply_update(&from_b).unwrap();
    assert_eq!(a.to_string(), "hllo 😀!");
}

#[test]
fn an_update_with_a_missing_dependency_is_refused_whole() {
    let mut a = Text::new(replica(1));
    a.insert(0, "abc").unwrap();
    let version = a.version();
    a.insert(3, "def").unwrap();
    let second_half = a.update_since(&version);
    let mut b = Text::new(replica(2));
    assert!(matches!(
        b.apply_update(&second_half),
        Err(LoadError::MissingEvent(_))
    ));
    assert_eq!(b.history_len(), 0);
    assert_eq!(b.to_string(), "");
}

#[test]
fn utf16_indices() {
    let mut text = Text::new(replica(1));
    text.insert(0, "a😀b").unwrap();
    assert_eq!(text.len(), 3);
    assert_eq!(text.len_utf16(), 4);
    assert_eq!(text.char_to_utf16(2), Ok(3));
    assert_eq!(
        text.insert_utf16(2, "x"),
        Err(TextError::NotCharBoundary { index: 2 })
    );
    text.insert_utf16(3, "x").unwrap();
    assert_eq!(text.to_string(), "a😀xb");
    text.delete_utf16(1..3).unwrap();
    assert_eq!(text.to_string(), "axb");
}

#[test]
fn snapshots_load() {
    let mut a = Text::new(replica(1));
    a.insert(0, "hello").unwrap();
    a.delete(1..3).unwrap();
    let loaded = Text::load(&a.encode(), replica(3)).unwrap();
    assert_eq!(loaded.to_string(), "hlo");
    assert_eq!(loaded.version(), a.version());
}

/// The concurrent traces of `../shared/traces` read as one update: every transaction an event
/// run with the trace's parents and its patches as operations (positions in the parents'
/// version, exactly Eg-walker's operation semantics), merged into an empty text at once.
mod concurrent_traces {
    use super::*;
    use crate::Dot;
    use crate::sequence::content::TextContent;
    use crate::sequence::oplog::OpKind;
    use crate::sequence::update::{EventRun, Update, UpdateOp};

    #[derive(serde::Deserialize)]
    struct Trace {
        #[serde(rename = "endContent")]
        end_content: String,
        txns: Vec<Txn>,
    }

    #[derive(serde::Deserialize)]
    struct Txn {
        patches: Vec<(usize, usize, String)>,
        parents: Vec<usize>,
        agent: usize,
    }

    fn load(relative: &str) -> Trace {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/traces")
            .join(relative);
        let file = std::fs::File::open(&path).expect("the shared traces are beside the project");
        serde_json::from_reader(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
            .expect("trace parses")
    }

    fn as_update(trace: &Trace) -> Update<TextContent> {
        let mut next_seq: std::collections::HashMap<usize, u64> = Default::default();
        // The heads after each transaction, as dots.
        let mut heads: Vec<Vec<Dot>> = Vec::with_capacity(trace.txns.len());
        let mut runs = Vec::new();
        for txn in &trace.txns {
            let mut parents: Vec<Dot> = txn
                .parents
                .iter()
                .flat_map(|&p| heads[p].iter().copied())
                .collect();
            parents.sort();
            parents.dedup();
            let replica = ReplicaId::from_u128(txn.agent as u128 + 1);
            let mut ops = Vec::new();
            let mut offset = 0;
            for (pos, delete, insert) in &txn.patches {
                if *delete > 0 {
                    ops.push(UpdateOp {
                        offset,
                        len: *delete,
                        kind: OpKind::Delete,
                        pos: *pos,
                        forward: true,
                        units: String::new(),
                    });
                    offset += delete;
                }
                let chars = insert.chars().count();
                if chars > 0 {
                    ops.push(UpdateOp {
                        offset,
                        len: chars,
                        kind: OpKind::Insert,
                        pos: *pos,
                        forward: true,
                        units: insert.clone(),
                    });
                    offset += chars;
                }
            }
            if offset == 0 {
                heads.push(parents);
                continue;
            }
            let seq = next_seq.entry(txn.agent).or_insert(1);
            runs.push(EventRun {
                replica,
                seq_start: *seq,
                len: offset,
                parents,
                ops,
            });
            *seq += offset as u64;
            heads.push(vec![Dot::new(replica, *seq - 1)]);
        }
        Update { runs }
    }

    fn check(relative: &str) {
        let trace = load(relative);
        let mut text = Text::new(ReplicaId::from_u128(u128::MAX));
        text.sequence_mut()
            .apply(&as_update(&trace))
            .expect("the trace applies");
        assert!(
            text.to_string() == trace.end_content,
            "{relative}: differs from endContent"
        );
        let loaded = Text::load(&text.encode(), ReplicaId::from_u128(7)).expect("loads");
        assert!(
            loaded.to_string() == trace.end_content,
            "{relative}: load differs"
        );
    }

    #[test]
    fn friendsforever() {
        check("concurrent/friendsforever.json.gz");
    }

    #[test]
    fn clownschool() {
        check("concurrent/clownschool.json.gz");
    }

    #[test]
    fn egwalker_a1() {
        check("egwalker-paper/A1.json.gz");
    }
}

#[test]
fn a_snapshot_whose_operation_runs_span_replicas_merges_into_a_non_empty_text() {
    // b continues a's typing: in b's log the two replicas' inserts form one operation run.
    let mut a = Text::new(ReplicaId::from_u128(1));
    a.insert(0, "ab").unwrap();
    let mut b = Text::new(ReplicaId::from_u128(2));
    b.merge(&a).unwrap();
    b.insert(2, "c").unwrap();
    let mut c = Text::new(ReplicaId::from_u128(3));
    c.insert(0, "x").unwrap();
    c.apply_update(&b.encode()).unwrap();
    b.merge(&c).unwrap();
    assert_eq!(c.to_string(), b.to_string());
    assert_eq!(c.len(), 4);
}
