//! Results: one [`Row`] per library and trace, printed as a table per trace (with the best peer
//! of each metric and every row's ratio to it) and written as JSON.
//!
//! "Peers" are all libraries except the project's own ([`OURS`]); the best-peer lines are what
//! our library will be compared against once it has a row.

use std::fmt::Write as _;

use serde::Serialize;

use crate::peers::OURS;
use crate::plan::Plan;
use crate::trace::{Kind, Trace};

/// The results of one library on one trace.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Library name (`yrs`, `automerge`, `loro`, `diamond-types`, `crdt-core`).
    pub library: String,
    /// Exact version measured.
    pub version: String,
    /// Trace name (file name without `.json[.gz]`).
    pub trace: String,
    /// Number of patches in the trace.
    pub ops: usize,
    /// Median replay time (ms).
    pub apply_ms: Option<f64>,
    /// Median time to encode the final document (ms).
    pub encode_ms: Option<f64>,
    /// Median time to load the encoded document and read its text (ms).
    pub load_ms: Option<f64>,
    /// Median time to merge into an empty replica and read its text (ms).
    pub merge_ms: Option<f64>,
    /// Size of the encoded document.
    pub bytes: Option<usize>,
    /// Peak heap during the replay, above the heap before it.
    pub peak_bytes: Option<usize>,
    /// Heap held after the replay by the live document(s).
    pub retained_bytes: Option<usize>,
    /// Every run succeeded and every text checked equals `endContent`.
    pub ok: bool,
    /// Number of runs the medians are over.
    pub runs: usize,
    /// Errors and failed checks (empty when `ok`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Remarks printed under the table (fewer runs, alternative encodings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Row {
    /// An empty row (no measurement yet) for a library and trace.
    pub fn new(library: &str, version: &str, trace: &Trace) -> Row {
        Row {
            library: library.to_string(),
            version: version.to_string(),
            trace: trace.name.clone(),
            ops: trace.ops,
            apply_ms: None,
            encode_ms: None,
            load_ms: None,
            merge_ms: None,
            bytes: None,
            peak_bytes: None,
            retained_bytes: None,
            ok: false,
            runs: 0,
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Sets `ok` from the problems found (call once all are recorded).
    pub fn settle(&mut self) {
        self.ok = self.runs > 0 && self.problems.is_empty();
    }

    /// Whether this row is a peer (not the project's own library).
    pub fn is_peer(&self) -> bool {
        self.library != OURS
    }
}

/// A measured quantity; lower is better for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `apply_ms`
    Apply,
    /// `encode_ms`
    Encode,
    /// `bytes`
    Bytes,
    /// `load_ms`
    Load,
    /// `merge_ms`
    Merge,
    /// `peak_bytes`
    Peak,
    /// `retained_bytes`
    Retained,
}

impl Metric {
    /// All metrics, in table order.
    pub const ALL: [Metric; 7] = [
        Metric::Apply,
        Metric::Encode,
        Metric::Bytes,
        Metric::Load,
        Metric::Merge,
        Metric::Peak,
        Metric::Retained,
    ];

    /// Column header.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Apply => "apply ms",
            Metric::Encode => "encode ms",
            Metric::Bytes => "bytes",
            Metric::Load => "load ms",
            Metric::Merge => "merge ms",
            Metric::Peak => "peak heap",
            Metric::Retained => "retained heap",
        }
    }

    /// The row's value, if measured.
    pub fn value(self, row: &Row) -> Option<f64> {
        match self {
            Metric::Apply => row.apply_ms,
            Metric::Encode => row.encode_ms,
            Metric::Bytes => row.bytes.map(|b| b as f64),
            Metric::Load => row.load_ms,
            Metric::Merge => row.merge_ms,
            Metric::Peak => row.peak_bytes.map(|b| b as f64),
            Metric::Retained => row.retained_bytes.map(|b| b as f64),
        }
    }

    /// The value as shown in tables.
    pub fn format(self, value: f64) -> String {
        match self {
            Metric::Apply | Metric::Encode | Metric::Load | Metric::Merge => format_ms(value),
            Metric::Bytes => group_thousands(value as usize),
            Metric::Peak | Metric::Retained => format_heap(value as usize),
        }
    }
}

/// The peer row with the lowest value of `metric` among correct rows, if any.
pub fn best_peer(rows: &[Row], metric: Metric) -> Option<(&Row, f64)> {
    rows.iter()
        .filter(|r| r.is_peer() && r.ok)
        .filter_map(|r| metric.value(r).map(|v| (r, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

fn format_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn format_heap(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// A text table with right-aligned columns except the first two.
fn render(header: &[String], body: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            body.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in std::iter::once(header).chain(body.iter().map(Vec::as_slice)) {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c < 2 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// The report of one trace: header, table, best peers, ratios, notes and loud problems.
pub fn trace_report(trace: &Trace, plan: Option<&Plan>, rows: &[Row]) -> String {
    let mut out = String::new();
    let chars = trace.end_content.chars().count();
    let _ = match trace.kind {
        Kind::Sequential => writeln!(
            out,
            "== {} (sequential: {} txns, {} ops, {} chars at the end) ==",
            trace.name,
            group_thousands(trace.txns.len()),
            group_thousands(trace.ops),
            group_thousands(chars)
        ),
        Kind::Concurrent => writeln!(
            out,
            "== {} (concurrent: {} agent{}, {} txns{}, {} ops, {} chars at the end) ==",
            trace.name,
            trace.num_agents,
            if trace.num_agents == 1 { "" } else { "s" },
            group_thousands(trace.txns.len()),
            if trace.roots > 1 {
                format!(" ({} of them roots)", trace.roots)
            } else {
                String::new()
            },
            group_thousands(trace.ops),
            group_thousands(chars)
        ),
    };
    if let Some(plan) = plan {
        let _ = writeln!(
            out,
            "replica per agent: {} update deliveries; forks needed (an agent's replica holding \
             something its next txn did not see): {}",
            group_thousands(plan.deliveries),
            plan.forks
        );
    }

    let mut header: Vec<String> = ["library", "version", "ops"].map(String::from).to_vec();
    header.extend(Metric::ALL.iter().map(|m| m.label().to_string()));
    header.push("ok".into());
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![
                row.library.clone(),
                row.version.clone(),
                row.ops.to_string(),
            ];
            cells.extend(
                Metric::ALL
                    .iter()
                    .map(|m| m.value(row).map_or("-".into(), |v| m.format(v))),
            );
            cells.push(if row.ok { "ok".into() } else { "FAIL".into() });
            cells
        })
        .collect();
    out.push_str(&render(&header, &body));

    // Best peer per metric, and each row's ratio to it.
    let best: Vec<Option<(&Row, f64)>> = Metric::ALL.iter().map(|&m| best_peer(rows, m)).collect();
    let summary: Vec<String> = Metric::ALL
        .iter()
        .zip(&best)
        .filter_map(|(m, b)| {
            b.map(|(row, v)| format!("{} {} ({})", m.label(), row.library, m.format(v)))
        })
        .collect();
    if !summary.is_empty() {
        let _ = writeln!(out, "best peer: {}", summary.join(" | "));
        let mut header: Vec<String> = vec!["× best peer".into(), String::new()];
        header.extend(Metric::ALL.iter().map(|m| m.label().to_string()));
        let body: Vec<Vec<String>> =
            rows.iter()
                .map(|row| {
                    let mut cells = vec![row.library.clone(), String::new()];
                    cells.extend(Metric::ALL.iter().zip(&best).map(|(m, b)| {
                        match (m.value(row), b) {
                            (Some(v), Some((_, best))) if *best > 0.0 && row.ok => {
                                format!("{:.2}", v / best)
                            }
                            _ => "-".into(),
                        }
                    }));
                    cells
                })
                .collect();
        out.push_str(&render(&header, &body));
    }

    for row in rows {
        for note in &row.notes {
            let _ = writeln!(out, "note: {}: {note}", row.library);
        }
    }
    for row in rows.iter().filter(|r| !r.ok) {
        if row.problems.is_empty() {
            let _ = writeln!(
                out,
                "!!! ERROR: {} on {}: no successful run",
                row.library, row.trace
            );
        }
        for problem in &row.problems {
            let _ = writeln!(
                out,
                "!!! ERROR: {} on {}: {problem}",
                row.library, row.trace
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(library: &str, apply: f64, ok: bool) -> Row {
        Row {
            library: library.into(),
            version: "1".into(),
            trace: "t".into(),
            ops: 1,
            apply_ms: Some(apply),
            encode_ms: None,
            load_ms: None,
            merge_ms: None,
            bytes: None,
            peak_bytes: None,
            retained_bytes: None,
            ok,
            runs: 1,
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn best_peer_skips_ours_and_failed_rows() {
        let rows = [
            row("a", 5.0, true),
            row(OURS, 1.0, true),
            row("b", 2.0, false),
        ];
        let best = best_peer(&rows, Metric::Apply).map(|(r, v)| (r.library.as_str(), v));
        assert_eq!(best, Some(("a", 5.0)));
    }

    #[test]
    fn numbers_format_readably() {
        assert_eq!(group_thousands(1234567), "1,234,567");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(format_heap(2 * 1024 * 1024), "2.00 MiB");
        assert_eq!(format_ms(0.5), "0.500");
    }
}
