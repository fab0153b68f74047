//! Delivery patterns: synthetic histories that stress one way of receiving changes, timed on
//! crdt-core alone (`--pattern NAME`).
//!
//! `alternating`: a base replica is forked into A and B; each types `N / 2` single characters
//! with no syncing, each keystroke shipped as its own update (`update_since` the version before
//! it). A third replica, forked from the base, then applies the updates one by one in the order
//! A, B, A, B, ... (a valid causal order: what causal delivery of two live typists produces).
//! Every lone change is concurrent with the whole other branch, which is what made each
//! delivery replay everything since the fork (issue 14). Only the deliveries are timed; the
//! result is checked against the same updates applied as two batches (all of A, then all of B).
//!
//! The last column times the receiver's whole history since the base (the same interleaved
//! events) applied as one update to another fork of the base, as a relay would send it.
//!
//! `--changes N` times one size; without it the program sweeps N = 1k, 2k, 4k, ..., up to
//! `--max N` (default 64k), printing the time and the growth factor per doubling, and stops
//! early once a step takes longer than `--budget SECONDS` (default 60).

use std::time::{Duration, Instant};

use crdt_core::{Document, MapId, ReplicaId, Text, TextId};

/// Which public type receives the deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// [`Text`].
    Text,
    /// A text container of a [`Document`].
    Document,
}

impl Target {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::Text => "text",
            Target::Document => "document",
        }
    }
}

/// The options of `--pattern`.
#[derive(Clone, Debug)]
pub(crate) struct PatternArgs {
    /// One size (`--changes`), or a sweep when `None`.
    pub(crate) changes: Option<usize>,
    /// The largest size of a sweep.
    pub(crate) max: usize,
    /// A sweep stops after a step slower than this.
    pub(crate) budget: Duration,
    pub(crate) targets: Vec<Target>,
}

/// A measured delivery run.
struct Measured {
    changes: usize,
    took: Duration,
    /// Applying the receiver's whole history since the base as one update to another fork of
    /// the base: the same interleaved events, replayed in one merge.
    relayed: Duration,
}

/// Why a run's result could not be trusted.
#[derive(Debug)]
pub(crate) struct PatternError(String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail(what: impl std::fmt::Display) -> PatternError {
    PatternError(what.to_string())
}

/// The character typed by keystroke `i` of a writer (`a..z` for A, `A..Z` for B), so a
/// wrong interleaving shows in the text.
fn key(first: u8, i: usize) -> String {
    char::from(first + (i % 26) as u8).to_string()
}

/// Runs the alternating pattern with `changes` deliveries (rounded down to even) on `target`.
fn alternating(target: Target, changes: usize) -> Result<Measured, PatternError> {
    let per_writer = changes / 2;
    match target {
        Target::Text => alternating_text(per_writer),
        Target::Document => alternating_document(per_writer),
    }
}

fn alternating_text(per_writer: usize) -> Result<Measured, PatternError> {
    let mut base = Text::new(ReplicaId::from_u128(1));
    base.insert(0, "base text\n").map_err(fail)?;
    let mut writers = [
        base.fork(ReplicaId::from_u128(2)),
        base.fork(ReplicaId::from_u128(3)),
    ];
    // The deliveries in the order the third replica gets them: A, B, A, B, ...
    let mut deliveries: Vec<Vec<u8>> = Vec::with_capacity(per_writer * 2);
    for i in 0..per_writer {
        for (w, first) in [(0, b'a'), (1, b'A')] {
            let writer = &mut writers[w];
            let before = writer.version();
            writer.insert(writer.len(), &key(first, i)).map_err(fail)?;
            deliveries.push(writer.update_since(&before));
        }
    }
    let mut receiver = base.fork(ReplicaId::from_u128(4));
    let start = Instant::now();
    for update in &deliveries {
        receiver.apply_update(update).map_err(fail)?;
    }
    let took = start.elapsed();

    let mut batch = base.fork(ReplicaId::from_u128(5));
    for writer in &writers {
        batch
            .apply_update(&writer.update_since(&base.version()))
            .map_err(fail)?;
    }
    if receiver.to_string() != batch.to_string() || receiver.version() != batch.version() {
        return Err(fail("one-by-one delivery differs from batch delivery"));
    }
    let everything = receiver.update_since(&base.version());
    let mut relay = base.fork(ReplicaId::from_u128(6));
    let start = Instant::now();
    relay.apply_update(&everything).map_err(fail)?;
    let relayed = start.elapsed();
    if relay.to_string() != batch.to_string() {
        return Err(fail("the relayed history differs from batch delivery"));
    }
    Ok(Measured {
        changes: per_writer * 2,
        took,
        relayed,
    })
}

fn alternating_document(per_writer: usize) -> Result<Measured, PatternError> {
    let mut base = Document::new(ReplicaId::from_u128(1));
    let text: TextId = base
        .replace_with_new_text(MapId::ROOT, "text")
        .map_err(fail)?;
    base.text_insert(text, 0, "base text\n").map_err(fail)?;
    let mut writers = [
        base.fork(ReplicaId::from_u128(2)),
        base.fork(ReplicaId::from_u128(3)),
    ];
    // The deliveries in the order the third replica gets them: A, B, A, B, ...
    let mut deliveries: Vec<Vec<u8>> = Vec::with_capacity(per_writer * 2);
    for i in 0..per_writer {
        for (w, first) in [(0, b'a'), (1, b'A')] {
            let writer = &mut writers[w];
            let before = writer.version();
            let at = writer.text_len(text).map_err(fail)?;
            writer.text_insert(text, at, &key(first, i)).map_err(fail)?;
            deliveries.push(writer.update_since(&before));
        }
    }
    let mut receiver = base.fork(ReplicaId::from_u128(4));
    let start = Instant::now();
    for update in &deliveries {
        receiver.apply_update(update).map_err(fail)?;
    }
    let took = start.elapsed();

    let mut batch = base.fork(ReplicaId::from_u128(5));
    for writer in &writers {
        batch
            .apply_update(&writer.update_since(&base.version()))
            .map_err(fail)?;
    }
    if receiver.text(text).map_err(fail)? != batch.text(text).map_err(fail)?
        || receiver.version() != batch.version()
    {
        return Err(fail("one-by-one delivery differs from batch delivery"));
    }
    let everything = receiver.update_since(&base.version());
    let mut relay = base.fork(ReplicaId::from_u128(6));
    let start = Instant::now();
    relay.apply_update(&everything).map_err(fail)?;
    let relayed = start.elapsed();
    if relay.text(text).map_err(fail)? != batch.text(text).map_err(fail)? {
        return Err(fail("the relayed history differs from batch delivery"));
    }
    Ok(Measured {
        changes: per_writer * 2,
        took,
        relayed,
    })
}

/// The sizes of a sweep: 1k, 2k, 4k, ... up to `max`.
fn sweep_sizes(max: usize) -> Vec<usize> {
    std::iter::successors(Some(1_000usize), |n| n.checked_mul(2))
        .take_while(|&n| n <= max)
        .collect()
}

/// Runs `--pattern alternating` and prints its table; false if a result was wrong.
pub(crate) fn run(args: &PatternArgs) -> bool {
    let mut ok = true;
    for &target in &args.targets {
        println!(
            "pattern alternating, target {}: A and B each type N/2 single chars; a third replica \
             applies them one update at a time, A, B, A, B, ...",
            target.name()
        );
        println!(
            "{:>10} {:>12} {:>14} {:>10} {:>18}",
            "changes", "time ms", "µs per change", "growth", "relayed as one ms"
        );
        let sizes = match args.changes {
            Some(n) => vec![n],
            None => sweep_sizes(args.max),
        };
        let mut previous: Option<Measured> = None;
        for n in sizes {
            eprintln!("  {} changes ...", n);
            match alternating(target, n) {
                Ok(m) => {
                    let growth = previous
                        .as_ref()
                        .filter(|p| p.changes * 2 == m.changes)
                        .map(|p| m.took.as_secs_f64() / p.took.as_secs_f64());
                    println!(
                        "{:>10} {:>12.1} {:>14.2} {:>10} {:>18.1}",
                        m.changes,
                        m.took.as_secs_f64() * 1e3,
                        m.took.as_secs_f64() * 1e6 / m.changes as f64,
                        growth.map_or("-".to_string(), |g| format!("{g:.2}x")),
                        m.relayed.as_secs_f64() * 1e3
                    );
                    let slow = m.took > args.budget;
                    previous = Some(m);
                    if slow && args.changes.is_none() {
                        println!("(sweep stopped: the last step took over the budget)");
                        break;
                    }
                }
                Err(error) => {
                    println!("!!! ERROR at {n} changes: {error}");
                    ok = false;
                    break;
                }
            }
        }
        println!();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_doubles_from_one_thousand() {
        assert_eq!(sweep_sizes(8_000), vec![1_000, 2_000, 4_000, 8_000]);
        assert_eq!(sweep_sizes(999), Vec::<usize>::new());
    }

    #[test]
    fn both_targets_agree_with_batch_delivery() -> Result<(), PatternError> {
        for target in [Target::Text, Target::Document] {
            assert_eq!(alternating(target, 40)?.changes, 40);
        }
        Ok(())
    }
}
