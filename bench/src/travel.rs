//! Time travel: reading the text as it was at earlier versions of a document.
//!
//! One measurement of a library on a trace:
//! 1. the trace is replayed (untimed), taking a [`Peer::mark`] and the current [`Peer::text`]
//!    after each of `samples` transactions spread evenly over the trace (the final version
//!    excluded: reading the current text is not time travel). Sequential traces: one document.
//!    Concurrent traces: one replica per agent as in the main measurement, each mark taken on
//!    the replica that made the transaction; then every replica is merged into one fresh
//!    document, which is the one read (so marks must name versions across replicas);
//! 2. each run reads the text at every mark with [`Peer::text_at`], timed as a whole; every
//!    text read is checked against the one shown at that version;
//! 3. the reported time is the median over the runs.
//!
//! The texts seen at each version are also compared across libraries by the caller, so a
//! library cannot pass by reading back a wrong history consistently.

use std::time::{Duration, Instant};

use crate::peers::{DocSpec, Peer, PeerError, replay_with_replicas_observed};
use crate::plan::Plan;
use crate::trace::{Kind, Trace};

/// The time-travel result of one library on one trace.
#[derive(Debug)]
pub struct TravelRow {
    /// Library name.
    pub library: String,
    /// How many versions were read per run.
    pub reads: usize,
    /// Median time to read all of them (ms); `None` if not measured.
    pub ms: Option<f64>,
    /// Runs the median is over.
    pub runs: usize,
    /// The texts the document showed at the sampled versions (for the cross-library check).
    pub seen: Vec<String>,
    /// Why it was not measured or what failed.
    pub problems: Vec<String>,
    /// Not supported by the library (not a failure).
    pub unsupported: bool,
}

impl TravelRow {
    /// A row with nothing measured yet.
    pub fn new(library: &str) -> TravelRow {
        TravelRow {
            library: library.to_string(),
            reads: 0,
            ms: None,
            runs: 0,
            seen: Vec::new(),
            problems: Vec::new(),
            unsupported: false,
        }
    }
}

/// The transaction indices after which versions are sampled: `samples` evenly spread points
/// strictly before the end.
pub fn sample_points(txns: usize, samples: usize) -> Vec<usize> {
    let mut points: Vec<usize> = (1..=samples)
        .map(|k| k * txns / (samples + 1))
        .filter(|&i| i < txns)
        .collect();
    points.dedup();
    points
}

/// Measures `peer`'s time travel on `trace` (see the module documentation); `plan` is the
/// replay plan of a concurrent trace.
pub fn measure<P: Peer>(
    peer: &P,
    trace: &Trace,
    plan: Option<&Plan>,
    samples: usize,
    runs: usize,
) -> TravelRow {
    let mut row = TravelRow::new(peer.name());
    if let Err(error) = measure_into(peer, trace, plan, samples, runs, &mut row) {
        row.problems.push(error.to_string());
    }
    row
}

/// A document to read, and the marks taken on the way to it.
type Marked<P> = (<P as Peer>::Doc, Vec<<P as Peer>::Mark>);

/// Replays `trace`, taking a mark and the text after each transaction of `points`; returns
/// the document to read (`None` if the library takes no marks).
fn replay_marked<P: Peer>(
    peer: &P,
    trace: &Trace,
    plan: Option<&Plan>,
    points: &[usize],
    seen: &mut Vec<String>,
) -> Result<Option<Marked<P>>, PeerError> {
    let spec = DocSpec::of(trace);
    let mut marks = Vec::with_capacity(points.len());
    let mut unsupported = false;
    let mut observe = |i: usize, doc: &P::Doc| {
        if unsupported || points.binary_search(&i).is_err() {
            return Ok(());
        }
        match peer.mark(doc) {
            Some(mark) => {
                marks.push(mark);
                seen.push(peer.text(doc)?);
            }
            None => unsupported = true,
        }
        Ok(())
    };
    let doc = match (trace.kind, plan) {
        (Kind::Concurrent, Some(plan)) => {
            let replicas = replay_with_replicas_observed(peer, trace, plan, &mut observe)?;
            let finals = replicas
                .iter()
                .map(|replica| peer.encode(replica))
                .collect::<Result<Vec<_>, _>>()?;
            let mut merged = peer.new_doc(&spec, trace.num_agents)?;
            let updates: Vec<&[u8]> = finals.iter().map(Vec::as_slice).collect();
            peer.apply_updates(&mut merged, &updates)?;
            merged
        }
        (Kind::Concurrent, None) => {
            return Err(PeerError::Edit(
                "no replay plan given for a concurrent trace".into(),
            ));
        }
        (Kind::Sequential, _) => {
            let mut doc = peer.new_doc(&spec, 0)?;
            for (i, txn) in trace.txns.iter().enumerate() {
                peer.apply_txn(&mut doc, txn)?;
                observe(i, &doc)?;
            }
            doc
        }
    };
    Ok((!unsupported).then_some((doc, marks)))
}

fn measure_into<P: Peer>(
    peer: &P,
    trace: &Trace,
    plan: Option<&Plan>,
    samples: usize,
    runs: usize,
    row: &mut TravelRow,
) -> Result<(), PeerError> {
    let points = sample_points(trace.txns.len(), samples);
    let Some((doc, marks)) = replay_marked(peer, trace, plan, &points, &mut row.seen)? else {
        row.unsupported = true;
        row.seen.clear();
        return Ok(());
    };
    row.reads = marks.len();
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let texts = marks
            .iter()
            .map(|mark| peer.text_at(&doc, mark))
            .collect::<Result<Vec<_>, _>>()?;
        times.push(start.elapsed());
        for (k, (read, seen)) in texts.iter().zip(&row.seen).enumerate() {
            if read != seen {
                row.problems.push(format!(
                    "the text read at sample {k} ({} chars) differs from the one shown then \
                     ({} chars)",
                    read.chars().count(),
                    seen.chars().count()
                ));
                return Ok(());
            }
        }
    }
    // The document still shows its final version.
    if peer.text(&doc)? != trace.end_content {
        row.problems
            .push("after time travel the document no longer shows endContent".into());
    }
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    row.runs = ms.len();
    row.ms = Some(match ms.len() % 2 {
        1 => ms[ms.len() / 2],
        _ => (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0,
    });
    Ok(())
}

/// Checks that every library saw the same texts at the sampled versions (the first measured
/// library is the reference); records a problem on each row that differs.
pub fn cross_check(rows: &mut [TravelRow]) {
    let Some(reference) = rows
        .iter()
        .find(|r| !r.seen.is_empty())
        .map(|r| (r.library.clone(), r.seen.clone()))
    else {
        return;
    };
    for row in rows.iter_mut().filter(|r| !r.seen.is_empty()) {
        if row.seen != reference.1 {
            row.problems.push(format!(
                "the texts shown at the sampled versions differ from {}'s",
                reference.0
            ));
        }
    }
}

/// The time-travel table of one trace, with each row's ratio to the fastest peer.
pub fn report(trace: &Trace, rows: &[TravelRow], ours: &str) -> String {
    let best_peer = rows
        .iter()
        .filter(|r| r.library != ours && r.problems.is_empty())
        .filter_map(|r| r.ms.map(|ms| (ms, r.library.as_str())))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = format!(
        "## {} ({}): time travel (text at {} earlier versions, median of {} runs)\n\n\
         | library | reads | total ms | ms per read | vs best peer |\n\
         | --- | ---: | ---: | ---: | ---: |\n",
        trace.name,
        match trace.kind {
            Kind::Sequential => "sequential",
            Kind::Concurrent =>
                "concurrent: marks taken on each agent's replica, read on the merge of all",
        },
        rows.iter().map(|r| r.reads).max().unwrap_or(0),
        rows.iter().map(|r| r.runs).max().unwrap_or(0)
    );
    for row in rows {
        let cells = match (row.ms, row.unsupported, row.problems.is_empty()) {
            (_, true, _) => "not supported | - | -".to_string(),
            (Some(ms), false, true) => {
                let ratio =
                    best_peer.map_or("-".to_string(), |(best, _)| format!("{:.2}", ms / best));
                format!("{ms:.2} | {:.3} | {ratio}", ms / row.reads.max(1) as f64)
            }
            _ => format!("FAILED: {} | - | -", row.problems.join("; ")),
        };
        out.push_str(&format!("| {} | {} | {cells} |\n", row.library, row.reads));
    }
    if let Some((_, name)) = best_peer {
        out.push_str(&format!("\nbest peer: {name}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sample_points;

    #[test]
    fn samples_are_spread_and_before_the_end() {
        assert_eq!(sample_points(100, 4), [20, 40, 60, 80]);
        assert_eq!(sample_points(3, 10), [0, 1, 2]);
        assert!(sample_points(0, 10).is_empty());
    }
}
