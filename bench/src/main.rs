//! Replays real editing traces on text CRDT libraries and reports time, encoded size and heap
//! use per library, checking every result against the trace's final text.
//!
//! ```text
//! cargo run --release -p bench -- --trace FILE [--trace FILE ...] [--json OUT] [--runs N]
//!                                 [--library NAME ...] [--time-travel]
//! cargo run --release -p bench -- --pattern alternating [--changes N | --max N]
//!                                 [--budget SECONDS] [--target text|document]
//! ```
//!
//! See `README.md` for what each number includes for each library. The crate is a workspace
//! member but not a default member, so `cargo test` never builds the libraries it measures.

mod alloc;
mod harness;
mod pattern;
mod peers;
mod plan;
mod report;
mod trace;
mod travel;

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::plan::Plan;
use crate::report::Row;
use crate::trace::{Kind, Trace, TraceError};

/// Every heap allocation of the program is counted, so heap use can be measured.
#[global_allocator]
static ALLOCATOR: alloc::CountingAlloc = alloc::CountingAlloc;

/// Runs per measurement when `--runs` is not given.
const DEFAULT_RUNS: usize = 5;

const USAGE: &str = "\
usage: bench --trace FILE [--trace FILE ...] [--json OUT] [--runs N] [--library NAME ...]
             [--time-travel]
       bench --pattern alternating [--changes N | --max N] [--budget SECONDS]
             [--target text|document]

  --trace FILE    an editing trace (.json or .json.gz, format of shared/traces/README.md);
                  repeat for several
  --json OUT      also write the results as a JSON array to OUT
  --runs N        runs per measurement, reported as medians (default 5; fewer for runs over 2 s)
  --library NAME  measure only this library; repeat for several (default: all)
  --time-travel   instead, measure reading the text at 10 earlier versions of each
                  trace's document (see src/travel.rs)
  --pattern alternating
                  instead, time crdt-core receiving two writers' single-char changes one
                  update at a time, alternating (see src/pattern.rs); a sweep over
                  N = 1k, 2k, 4k, ... up to --max (default 64k) unless --changes N is given
  --budget SECONDS  a sweep stops after a step slower than this (default 60)
  --target T      text or document (default: both)";

/// Versions read per trace with `--time-travel`.
const TIME_TRAVEL_SAMPLES: usize = 10;

/// The parsed command line.
#[derive(Debug)]
struct Args {
    traces: Vec<PathBuf>,
    json: Option<PathBuf>,
    runs: usize,
    libraries: Vec<String>,
    time_travel: bool,
    /// `--pattern alternating` and its options.
    pattern: Option<pattern::PatternArgs>,
}

/// A command line that cannot be run.
#[derive(Debug)]
enum ArgsError {
    /// `--help` was asked for (not an error, but ends parsing).
    Help,
    /// A flag needing a value came last.
    MissingValue(String),
    /// `--runs` was not a positive integer.
    BadRuns(String),
    /// A pattern option had a value out of range or unknown.
    BadPattern(String),
    /// An argument that is not a known flag.
    Unknown(String),
    /// No `--trace` given.
    NoTrace,
    /// `--library` named a library the program does not know.
    UnknownLibrary {
        /// The name given.
        name: String,
        /// The names known.
        known: Vec<&'static str>,
    },
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => write!(f, "{USAGE}"),
            ArgsError::MissingValue(flag) => write!(f, "{flag} needs a value\n\n{USAGE}"),
            ArgsError::BadRuns(value) => {
                write!(f, "--runs must be a positive integer, not {value:?}")
            }
            ArgsError::BadPattern(what) => write!(f, "{what}\n\n{USAGE}"),
            ArgsError::Unknown(arg) => write!(f, "unknown argument {arg:?}\n\n{USAGE}"),
            ArgsError::NoTrace => write!(f, "give at least one --trace FILE\n\n{USAGE}"),
            ArgsError::UnknownLibrary { name, known } => {
                write!(f, "unknown library {name:?}; known: {}", known.join(", "))
            }
        }
    }
}

/// Why the program stopped before measuring everything.
#[derive(Debug)]
enum MainError {
    Args(ArgsError),
    Trace(TraceError),
    /// Writing the JSON output failed.
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for MainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MainError::Args(e) => write!(f, "{e}"),
            MainError::Trace(e) => write!(f, "{e}"),
            MainError::Output { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
        }
    }
}

fn parse_args(
    args: impl IntoIterator<Item = String>,
    known: &[&'static str],
) -> Result<Args, ArgsError> {
    let mut parsed = Args {
        traces: Vec::new(),
        json: None,
        runs: DEFAULT_RUNS,
        libraries: Vec::new(),
        time_travel: false,
        pattern: None,
    };
    let mut pattern_name: Option<String> = None;
    let mut pattern_args = pattern::PatternArgs {
        changes: None,
        max: 64_000,
        budget: std::time::Duration::from_secs(60),
        targets: vec![pattern::Target::Text, pattern::Target::Document],
    };
    let number = |flag: &str, v: String| -> Result<usize, ArgsError> {
        match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ArgsError::BadPattern(format!(
                "{flag} must be a positive integer, not {v:?}"
            ))),
        }
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| ArgsError::MissingValue(arg.clone()))
        };
        match arg.as_str() {
            "--trace" => parsed.traces.push(PathBuf::from(value()?)),
            "--json" => parsed.json = Some(PathBuf::from(value()?)),
            "--runs" => {
                let v = value()?;
                parsed.runs = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(ArgsError::BadRuns(v)),
                };
            }
            "--library" => {
                let name = value()?;
                if !known.contains(&name.as_str()) {
                    return Err(ArgsError::UnknownLibrary {
                        name,
                        known: known.to_vec(),
                    });
                }
                parsed.libraries.push(name);
            }
            "--time-travel" => parsed.time_travel = true,
            "--pattern" => pattern_name = Some(value()?),
            "--changes" => pattern_args.changes = Some(number("--changes", value()?)?),
            "--max" => pattern_args.max = number("--max", value()?)?,
            "--budget" => {
                pattern_args.budget =
                    std::time::Duration::from_secs(number("--budget", value()?)? as u64)
            }
            "--target" => {
                pattern_args.targets = match value()?.as_str() {
                    "text" => vec![pattern::Target::Text],
                    "document" => vec![pattern::Target::Document],
                    other => {
                        return Err(ArgsError::BadPattern(format!(
                            "--target must be text or document, not {other:?}"
                        )));
                    }
                }
            }
            "-h" | "--help" => return Err(ArgsError::Help),
            _ => return Err(ArgsError::Unknown(arg)),
        }
    }
    match pattern_name.as_deref() {
        Some("alternating") => {
            parsed.pattern = Some(pattern_args);
            return Ok(parsed);
        }
        Some(other) => {
            return Err(ArgsError::BadPattern(format!(
                "unknown pattern {other:?}; known: alternating"
            )));
        }
        None => {}
    }
    if parsed.traces.is_empty() {
        return Err(ArgsError::NoTrace);
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(MainError::Args(ArgsError::Help)) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Measures everything asked; `Ok(false)` if some library failed a run or a check.
fn run() -> Result<bool, MainError> {
    let subjects = peers::all();
    let known: Vec<&'static str> = subjects.iter().map(|s| s.name()).collect();
    let args = parse_args(std::env::args().skip(1), &known).map_err(MainError::Args)?;
    let subjects: Vec<_> = subjects
        .into_iter()
        .filter(|s| args.libraries.is_empty() || args.libraries.iter().any(|l| l == s.name()))
        .collect();
    if let Some(pattern) = &args.pattern {
        return Ok(pattern::run(pattern));
    }

    // Load every trace first, so a bad path fails at once rather than after minutes of work.
    let traces = args
        .traces
        .iter()
        .map(|path| Trace::load(path))
        .collect::<Result<Vec<_>, _>>()
        .map_err(MainError::Trace)?;

    if args.time_travel {
        return Ok(time_travel(&subjects, &traces, args.runs));
    }

    let mut all_rows: Vec<Row> = Vec::new();
    for trace in &traces {
        eprintln!("{}:", trace.name);
        let plan = (trace.kind == Kind::Concurrent).then(|| Plan::new(trace));
        let rows: Vec<Row> = subjects
            .iter()
            .map(|s| s.measure(trace, plan.as_ref(), args.runs))
            .collect();
        print!("{}", report::trace_report(trace, plan.as_ref(), &rows));
        println!();
        let _ = std::io::stdout().flush();
        all_rows.extend(rows);
    }

    if let Some(path) = &args.json {
        let output = |source| MainError::Output {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(&all_rows).map_err(|e| output(e.into()))?;
        std::fs::write(path, json).map_err(output)?;
    }

    let failed: Vec<&Row> = all_rows.iter().filter(|r| !r.ok).collect();
    if failed.is_empty() {
        println!(
            "all {} results ok: every text checked equals endContent",
            all_rows.len()
        );
        Ok(true)
    } else {
        for row in &failed {
            println!("!!! FAILED: {} on {}", row.library, row.trace);
        }
        Ok(false)
    }
}

/// `--time-travel`: reads earlier versions of each sequential trace with every library;
/// false if any failed.
fn time_travel(subjects: &[Box<dyn harness::Subject>], traces: &[Trace], runs: usize) -> bool {
    let mut ok = true;
    for trace in traces {
        eprintln!("{}:", trace.name);
        let plan = (trace.kind == Kind::Concurrent).then(|| Plan::new(trace));
        let mut rows: Vec<travel::TravelRow> = subjects
            .iter()
            .map(|s| s.measure_time_travel(trace, plan.as_ref(), TIME_TRAVEL_SAMPLES, runs))
            .collect();
        travel::cross_check(&mut rows);
        ok &= rows.iter().all(|r| r.problems.is_empty());
        println!("{}", travel::report(trace, &rows, peers::OURS));
        let _ = std::io::stdout().flush();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, ArgsError> {
        parse_args(args.iter().map(|s| s.to_string()), &["yrs", "loro"])
    }

    #[test]
    fn flags_parse_and_repeat() -> Result<(), ArgsError> {
        let args = parse(&[
            "--trace",
            "a.json",
            "--trace",
            "b.json.gz",
            "--runs",
            "3",
            "--library",
            "loro",
            "--json",
            "out.json",
        ])?;
        assert_eq!(args.traces.len(), 2);
        assert_eq!(
            (args.runs, args.libraries.as_slice()),
            (3, &["loro".to_string()][..])
        );
        assert_eq!(args.json, Some(PathBuf::from("out.json")));
        Ok(())
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(matches!(parse(&[]), Err(ArgsError::NoTrace)));
        assert!(matches!(
            parse(&["--trace"]),
            Err(ArgsError::MissingValue(_))
        ));
        assert!(matches!(
            parse(&["--trace", "a", "--runs", "0"]),
            Err(ArgsError::BadRuns(_))
        ));
        assert!(matches!(
            parse(&["--trace", "a", "--library", "nope"]),
            Err(ArgsError::UnknownLibrary { .. })
        ));
        assert!(matches!(parse(&["--frob"]), Err(ArgsError::Unknown(_))));
    }
}
