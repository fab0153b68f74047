//! Time travel: reading the text as it was at earlier versions of a document.
//!
//! One measurement of a library on a sequential trace:
//! 1. the trace is replayed in a fresh document (untimed), taking a [`Peer::mark`] and the
//!    current [`Peer::text`] after each of `samples` transactions spread evenly over the
//!    trace (the final version excluded: reading the current text is not time travel);
//! 2. each run reads the text at every mark with [`Peer::text_at`], timed as a whole; every
//!    text read is checked against the one the document showed at that version;
//! 3. the reported time is the median over the runs.
//!
//! The texts seen at each version are also compared across libraries by the caller, so a
//! library cannot pass by reading back a wrong history consistently.

use std::time::{Duration, Instant};

use crate::peers::{DocSpec, Peer, PeerError};
use crate::trace::Trace;

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

/// Measures `peer`'s time travel on `trace` (see the module documentation).
pub fn measure<P: Peer>(peer: &P, trace: &Trace, samples: usize, runs: usize) -> TravelRow {
    let mut row = TravelRow::new(peer.name());
    if let Err(error) = measure_into(peer, trace, samples, runs, &mut row) {
        row.problems.push(error.to_string());
    }
    row
}

fn measure_into<P: Peer>(
    peer: &P,
    trace: &Trace,
    samples: usize,
    runs: usize,
    row: &mut TravelRow,
) -> Result<(), PeerError> {
    let points = sample_points(trace.txns.len(), samples);
    let mut doc = peer.new_doc(&DocSpec::of(trace), 0)?;
    let mut marks = Vec::with_capacity(points.len());
    let mut next = points.iter().peekable();
    for (i, txn) in trace.txns.iter().enumerate() {
        peer.apply_txn(&mut doc, txn)?;
        if next.next_if(|&&p| p == i).is_some() {
            let Some(mark) = peer.mark(&doc) else {
                row.unsupported = true;
                return Ok(());
            };
            marks.push(mark);
            row.seen.push(peer.text(&doc)?);
        }
    }
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
    // The document still shows its current version.
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
        "## {}: time travel (text at {} earlier versions, median of {} runs)\n\n\
         | library | reads | total ms | ms per read | vs best peer |\n\
         | --- | ---: | ---: | ---: | ---: |\n",
        trace.name,
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
