//! Measuring one library on one trace: runs, timings, medians, heap use and correctness checks,
//! generic over [`Peer`] so every library (and later `crdt-core`) is measured the same way.
//!
//! One run of a sequential trace:
//! 1. apply: `replay_sequential` in a fresh document, timed; heap peak and retained bytes
//!    measured around it (the document is alive when `retained` is read); then its text is
//!    checked against `endContent`;
//! 2. encode: `encode` of that document, timed;
//! 3. load: `load` of the bytes plus one `text`, timed; the text is checked;
//! 4. merge: `apply_updates` of the bytes into an empty replica created beforehand, plus one
//!    `text`, timed; the text is checked.
//!
//! One run of a concurrent trace:
//! 1. apply: `replay_concurrent` (one replica per agent exchanging per-transaction updates),
//!    timed, with heap peak and retained bytes (all replicas alive);
//! 2. merge: every agent's final replica is encoded (untimed), then all of them are merged into
//!    one empty replica created beforehand, plus one `text`, timed; the text is checked;
//! 3. encode and 4. load: of that merged document, as for sequential traces.
//!
//! Each number reported is the median over the runs. A run slower than [`SLOW_RUN`] lowers
//! the number of runs so that one library and trace take about [`SLOW_BUDGET`], and the report
//! says so. Panics of a library are caught and reported as that row's error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::alloc::{self, HeapUse};
use crate::peers::{DocSpec, Peer, PeerError};
use crate::plan::Plan;
use crate::report::Row;
use crate::trace::{Kind, Trace};

/// A run taking longer than this makes the harness do fewer runs.
pub const SLOW_RUN: Duration = Duration::from_secs(2);
/// About how long one library may take on one trace once its runs are slow.
pub const SLOW_BUDGET: Duration = Duration::from_secs(20);

/// A library as the harness sees it: object-safe, so [`crate::peers::all`] can list libraries
/// of different document types. Every [`Peer`] is a `Subject`.
pub trait Subject {
    /// Name in the reports and for `--library`.
    fn name(&self) -> &'static str;
    /// Runs the library `runs` times (fewer if slow) on the trace and summarises the results.
    /// `plan` is the trace's replay plan, required for concurrent traces.
    fn measure(&self, trace: &Trace, plan: Option<&Plan>, runs: usize) -> Row;
    /// Measures reading `samples` earlier versions of a trace's document (`travel.rs`),
    /// `runs` times; `plan` is required for concurrent traces.
    fn measure_time_travel(
        &self,
        trace: &Trace,
        plan: Option<&Plan>,
        samples: usize,
        runs: usize,
    ) -> crate::travel::TravelRow;
}

/// The measurements of one run.
struct Run {
    apply: Duration,
    encode: Duration,
    load: Duration,
    merge: Duration,
    bytes: usize,
    heap: HeapUse,
    /// Texts that differed from `endContent`, described.
    mismatches: Vec<String>,
    /// The library's notes (first run only).
    notes: Vec<String>,
}

impl<P: Peer> Subject for P {
    fn name(&self) -> &'static str {
        Peer::name(self)
    }

    fn measure_time_travel(
        &self,
        trace: &Trace,
        plan: Option<&Plan>,
        samples: usize,
        runs: usize,
    ) -> crate::travel::TravelRow {
        eprintln!("  {} on {}: time travel ...", Peer::name(self), trace.name);
        match catch_unwind(AssertUnwindSafe(|| {
            crate::travel::measure(self, trace, plan, samples, runs)
        })) {
            Ok(row) => row,
            Err(panic) => {
                let mut row = crate::travel::TravelRow::new(Peer::name(self));
                row.problems
                    .push(PeerError::Panic(panic_message(panic.as_ref())).to_string());
                row
            }
        }
    }

    fn measure(&self, trace: &Trace, plan: Option<&Plan>, runs: usize) -> Row {
        let mut row = Row::new(Peer::name(self), Peer::version(self), trace);
        let mut done: Vec<Run> = Vec::new();
        let mut planned = runs.max(1);
        let mut index = 0;
        while index < planned {
            eprint!(
                "  {} on {}: run {}/{planned} ...",
                Peer::name(self),
                trace.name,
                index + 1
            );
            let start = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| match (trace.kind, plan) {
                (Kind::Sequential, _) => run_sequential(self, trace, index == 0),
                (Kind::Concurrent, Some(plan)) => run_concurrent(self, trace, plan, index == 0),
                (Kind::Concurrent, None) => Err(PeerError::Edit(
                    "no replay plan given for a concurrent trace".into(),
                )),
            }));
            let took = start.elapsed();
            eprintln!(" {:.2} s", took.as_secs_f64());
            match outcome {
                Ok(Ok(run)) => done.push(run),
                Ok(Err(error)) => {
                    row.problems.push(format!("run {}: {error}", index + 1));
                    break;
                }
                Err(panic) => {
                    let error = PeerError::Panic(panic_message(panic.as_ref()));
                    row.problems.push(format!("run {}: {error}", index + 1));
                    break;
                }
            }
            if index == 0 && took > SLOW_RUN {
                let affordable = (SLOW_BUDGET.as_secs_f64() / took.as_secs_f64()) as usize;
                planned = affordable.clamp(1, planned);
                if planned < runs {
                    row.notes.push(format!(
                        "{planned} of {runs} runs: the first run took {:.1} s (over {} s)",
                        took.as_secs_f64(),
                        SLOW_RUN.as_secs()
                    ));
                }
            }
            index += 1;
        }
        row.fill(&done);
        row.settle();
        row
    }
}

impl Row {
    /// Sets the medians, checks and notes from the successful runs.
    fn fill(&mut self, runs: &[Run]) {
        self.runs = runs.len();
        if runs.is_empty() {
            return;
        }
        let ms = |f: fn(&Run) -> Duration| {
            median(runs.iter().map(|r| f(r).as_secs_f64() * 1e3).collect())
        };
        let count = |f: fn(&Run) -> usize| {
            median(runs.iter().map(|r| f(r) as f64).collect()).round() as usize
        };
        self.apply_ms = Some(ms(|r| r.apply));
        self.encode_ms = Some(ms(|r| r.encode));
        self.load_ms = Some(ms(|r| r.load));
        self.merge_ms = Some(ms(|r| r.merge));
        self.bytes = Some(count(|r| r.bytes));
        self.peak_bytes = Some(count(|r| r.heap.peak));
        self.retained_bytes = Some(count(|r| r.heap.retained));
        for (i, run) in runs.iter().enumerate() {
            for mismatch in &run.mismatches {
                self.problems.push(format!("run {}: {mismatch}", i + 1));
            }
        }
        if runs.iter().any(|r| r.bytes != runs[0].bytes) {
            self.notes
                .push("the encoded size differed between runs (median shown)".into());
        }
        self.notes.extend(runs[0].notes.iter().cloned());
    }
}

/// The median of some values (mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Times `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// Compares a text with the trace's `endContent`, recording a description if they differ.
fn check(what: &str, text: &str, trace: &Trace, mismatches: &mut Vec<String>) {
    if text == trace.end_content {
        return;
    }
    let want = &trace.end_content;
    let at = text
        .chars()
        .zip(want.chars())
        .take_while(|(a, b)| a == b)
        .count();
    mismatches.push(format!(
        "text after {what} differs from endContent: {} chars instead of {}, first difference \
         at char {at}",
        text.chars().count(),
        want.chars().count(),
    ));
}

fn run_sequential<P: Peer>(peer: &P, trace: &Trace, first: bool) -> Result<Run, PeerError> {
    let spec = DocSpec::of(trace);
    let mut mismatches = Vec::new();

    let ((doc, apply), heap) = alloc::measure(|| timed(|| peer.replay_sequential(trace)));
    let doc = doc?;
    check("apply", &peer.text(&doc)?, trace, &mut mismatches);
    let (bytes, encode) = timed(|| peer.encode(&doc));
    let bytes = bytes?;
    let notes = if first { peer.notes(&doc)? } else { Vec::new() };
    drop(doc);

    let (loaded, load) = timed(|| {
        let doc = peer.load(&spec, &bytes)?;
        let text = peer.text(&doc)?;
        Ok::<_, PeerError>((doc, text))
    });
    let (loaded, text) = loaded?;
    check("load", &text, trace, &mut mismatches);
    drop(loaded);

    let mut remote = peer.new_doc(&spec, trace.num_agents)?;
    let (text, merge) = timed(|| {
        peer.apply_updates(&mut remote, &[&bytes])?;
        peer.text(&remote)
    });
    check("merge", &text?, trace, &mut mismatches);
    drop(remote);

    Ok(Run {
        apply,
        encode,
        load,
        merge,
        bytes: bytes.len(),
        heap,
        mismatches,
        notes,
    })
}

fn run_concurrent<P: Peer>(
    peer: &P,
    trace: &Trace,
    plan: &Plan,
    first: bool,
) -> Result<Run, PeerError> {
    let spec = DocSpec::of(trace);
    let mut mismatches = Vec::new();

    let ((replicas, apply), heap) =
        alloc::measure(|| timed(|| peer.replay_concurrent(trace, plan)));
    let replicas = replicas?;
    let finals = replicas
        .iter()
        .map(|replica| peer.encode(replica))
        .collect::<Result<Vec<_>, _>>()?;
    drop(replicas);

    let mut merged = peer.new_doc(&spec, trace.num_agents)?;
    let (text, merge) = timed(|| {
        let updates: Vec<&[u8]> = finals.iter().map(Vec::as_slice).collect();
        peer.apply_updates(&mut merged, &updates)?;
        peer.text(&merged)
    });
    check("merging all agents", &text?, trace, &mut mismatches);
    drop(finals);

    let (bytes, encode) = timed(|| peer.encode(&merged));
    let bytes = bytes?;
    let notes = if first {
        peer.notes(&merged)?
    } else {
        Vec::new()
    };
    drop(merged);

    let (loaded, load) = timed(|| {
        let doc = peer.load(&spec, &bytes)?;
        let text = peer.text(&doc)?;
        Ok::<_, PeerError>((doc, text))
    });
    let (loaded, text) = loaded?;
    check("load", &text, trace, &mut mismatches);
    drop(loaded);

    Ok(Run {
        apply,
        encode,
        load,
        merge,
        bytes: bytes.len(),
        heap,
        mismatches,
        notes,
    })
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::median;
    use crate::plan::Plan;
    use crate::trace::Trace;

    /// The hand-made trace with several roots (three authors start on the empty document, one
    /// of them starts again later) replays, loads and merges to its end content on every
    /// library.
    #[test]
    fn a_trace_with_several_roots_is_measured_on_every_library() -> Result<(), String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/multi-root.json");
        let trace = Trace::load(&path).map_err(|e| e.to_string())?;
        assert_eq!(trace.roots, 4);
        let plan = Plan::new(&trace);
        assert_eq!(plan.forks, 1);
        for subject in crate::peers::all() {
            let row = subject.measure(&trace, Some(&plan), 1);
            assert!(row.ok, "{}: {:?}", subject.name(), row.problems);
        }
        Ok(())
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
