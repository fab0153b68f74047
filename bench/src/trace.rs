//! Loading editing traces (the format of `shared/traces/README.md`) from gzipped or plain JSON.
//!
//! A trace is a list of transactions, each a list of patches `[pos, delete, insert]` whose
//! positions and delete counts are Unicode code points. Sequential traces apply their
//! transactions in order; concurrent ones (`"kind": "concurrent"`) give each transaction the
//! agent that made it and its parent transactions, and its positions are in the version after
//! its parents.
//!
//! Loading checks the structure every replay relies on (parents point backwards, agents are in
//! range, the start is empty) so that the replays themselves can index without checks, and
//! reports problems as [`TraceError`] instead of panicking.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One edit: at `pos` delete `delete` characters, then insert `insert` there.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "(usize, usize, String)")]
pub struct Patch {
    /// Position in code points, in the document as it is when the patch applies.
    pub pos: usize,
    /// Number of code points deleted at `pos`.
    pub delete: usize,
    /// Text inserted at `pos` after the deletion (may be empty).
    pub insert: String,
}

impl From<(usize, usize, String)> for Patch {
    fn from((pos, delete, insert): (usize, usize, String)) -> Patch {
        Patch {
            pos,
            delete,
            insert,
        }
    }
}

/// One transaction: patches made together by one agent (one keystroke, one paste, one commit).
#[derive(Debug, Clone, Deserialize)]
pub struct Txn {
    /// The edits, applied one after the other.
    pub patches: Vec<Patch>,
    /// Indexes of the transactions this one was made on top of (concurrent traces only; empty
    /// for the first transaction and in sequential traces).
    #[serde(default)]
    pub parents: Vec<usize>,
    /// The agent (user) who made it, `0..num_agents` (0 in sequential traces).
    #[serde(default)]
    pub agent: usize,
}

/// Whether transactions form one sequence or a DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Apply the transactions in order on one document.
    Sequential,
    /// Each transaction applies to the version after its parents, on its agent's replica.
    Concurrent,
}

/// A loaded and checked trace.
#[derive(Debug)]
pub struct Trace {
    /// The file name without `.json` / `.json.gz`: the `trace` field of the reports.
    pub name: String,
    /// Sequential or concurrent.
    pub kind: Kind,
    /// The text every correct replay must end with.
    pub end_content: String,
    /// The transactions, in an order where parents come first.
    pub txns: Vec<Txn>,
    /// Number of agents (1 for sequential traces).
    pub num_agents: usize,
    /// Number of transactions without parents (1 for sequential traces): more than one means
    /// several histories start from the empty document and merge later.
    pub roots: usize,
    /// Number of patches over all transactions: the `ops` of the reports.
    pub ops: usize,
    /// Whether any inserted text has a character outside the Basic Multilingual Plane, i.e.
    /// whether UTF-16 offsets can differ from code point offsets in this trace.
    pub non_bmp: bool,
}

/// The JSON as written in the files.
#[derive(Deserialize)]
struct RawTrace {
    #[serde(default)]
    kind: Option<String>,
    #[serde(rename = "startContent", default)]
    start_content: String,
    #[serde(rename = "endContent")]
    end_content: String,
    #[serde(rename = "numAgents", default)]
    num_agents: Option<usize>,
    txns: Vec<Txn>,
}

/// Why a trace could not be loaded.
#[derive(Debug)]
pub enum TraceError {
    /// The file could not be opened or read (or decompressed).
    Io {
        /// The trace file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The content is not JSON of the expected shape.
    Json {
        /// The trace file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The JSON parsed but breaks a rule of the format (or uses a feature not supported here).
    Invalid {
        /// The trace file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            TraceError::Json { path, source } => {
                write!(f, "{}: not a trace: {source}", path.display())
            }
            TraceError::Invalid { path, reason } => {
                write!(f, "{}: invalid trace: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TraceError::Io { source, .. } => Some(source),
            TraceError::Json { source, .. } => Some(source),
            TraceError::Invalid { .. } => None,
        }
    }
}

impl Trace {
    /// Reads and checks a trace file: gzipped if its name ends in `.gz`, plain JSON otherwise.
    pub fn load(path: &Path) -> Result<Trace, TraceError> {
        let io = |source| TraceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let mut json = Vec::new();
        let gzipped = path.extension().is_some_and(|ext| ext == "gz");
        if gzipped {
            flate2::read::GzDecoder::new(BufReader::new(file))
                .read_to_end(&mut json)
                .map_err(io)?;
        } else {
            BufReader::new(file).read_to_end(&mut json).map_err(io)?;
        }
        let raw: RawTrace = serde_json::from_slice(&json).map_err(|source| TraceError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        Trace::check(raw, path)
    }

    /// Turns the parsed JSON into a `Trace`, enforcing the format's rules.
    fn check(raw: RawTrace, path: &Path) -> Result<Trace, TraceError> {
        let invalid = |reason: String| TraceError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        if !raw.start_content.is_empty() {
            return Err(invalid(
                "non-empty startContent is not supported (all known traces start empty)".into(),
            ));
        }
        let kind = match raw.kind.as_deref() {
            Some("concurrent") => Kind::Concurrent,
            _ => Kind::Sequential,
        };
        let num_agents = match kind {
            Kind::Sequential => 1,
            Kind::Concurrent => {
                let seen = raw.txns.iter().map(|t| t.agent + 1).max().unwrap_or(0);
                let declared = raw.num_agents.unwrap_or(seen);
                if seen > declared {
                    return Err(invalid(format!(
                        "an agent number is {} but numAgents is {declared}",
                        seen - 1
                    )));
                }
                declared.max(1)
            }
        };
        if kind == Kind::Concurrent {
            for (index, txn) in raw.txns.iter().enumerate() {
                if let Some(parent) = txn.parents.iter().find(|&&p| p >= index) {
                    return Err(invalid(format!(
                        "txn {index} has parent {parent}, which does not come before it"
                    )));
                }
            }
        }
        // Several roots (transactions made on the empty document, e.g. several authors starting
        // at once, as in the Eg-walker paper's datasets) are fine: each is applied on a replica
        // holding nothing, which the replay plan provides (a fresh replica when its agent's
        // already holds something).
        let roots = match kind {
            Kind::Sequential => 1,
            Kind::Concurrent => raw.txns.iter().filter(|t| t.parents.is_empty()).count(),
        };
        let ops = raw.txns.iter().map(|t| t.patches.len()).sum();
        let non_bmp = raw
            .txns
            .iter()
            .flat_map(|t| &t.patches)
            .any(|p| p.insert.chars().any(|c| c.len_utf16() == 2));
        Ok(Trace {
            name: trace_name(path),
            kind,
            end_content: raw.end_content,
            txns: raw.txns,
            num_agents,
            roots,
            ops,
            non_bmp,
        })
    }
}

/// The file name without directory and without `.gz` and `.json` suffixes.
fn trace_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = file.strip_suffix(".gz").unwrap_or(&file);
    file.strip_suffix(".json").unwrap_or(file).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Trace, TraceError> {
        let raw: RawTrace = serde_json::from_str(json).map_err(|source| TraceError::Json {
            path: PathBuf::from("t.json"),
            source,
        })?;
        Trace::check(raw, Path::new("t.json"))
    }

    #[test]
    fn names_drop_directories_and_suffixes() {
        assert_eq!(
            trace_name(Path::new("a/b/seph-blog1.json.gz")),
            "seph-blog1"
        );
        assert_eq!(trace_name(Path::new("x.json")), "x");
    }

    #[test]
    fn sequential_and_concurrent_traces_parse() -> Result<(), TraceError> {
        let seq = parse(
            r#"{"startContent":"","endContent":"ab","txns":[{"time":"t","patches":[[0,0,"ab"]]}]}"#,
        )?;
        assert_eq!(
            (seq.kind, seq.ops, seq.num_agents),
            (Kind::Sequential, 1, 1)
        );
        let conc = parse(
            r#"{"kind":"concurrent","endContent":"ba","numAgents":2,"txns":[
                {"parents":[],"agent":0,"patches":[[0,0,"a"]]},
                {"parents":[0],"agent":1,"patches":[[0,0,"b"]]}]}"#,
        )?;
        assert_eq!((conc.kind, conc.num_agents), (Kind::Concurrent, 2));
        assert_eq!(conc.txns[1].parents, [0]);
        Ok(())
    }

    #[test]
    fn forward_parents_and_out_of_range_agents_are_refused() {
        let forward = parse(
            r#"{"kind":"concurrent","endContent":"","txns":[{"parents":[0],"agent":0,"patches":[]}]}"#,
        );
        assert!(matches!(forward, Err(TraceError::Invalid { .. })));
        let agent = parse(
            r#"{"kind":"concurrent","endContent":"","numAgents":1,"txns":[{"parents":[],"agent":1,"patches":[]}]}"#,
        );
        assert!(matches!(agent, Err(TraceError::Invalid { .. })));
    }

    #[test]
    fn several_roots_are_accepted_and_counted() -> Result<(), TraceError> {
        let t = parse(
            r#"{"kind":"concurrent","endContent":"","numAgents":2,"txns":[
                {"parents":[],"agent":0,"patches":[[0,0,"a"]]},
                {"parents":[],"agent":1,"patches":[[0,0,"b"]]},
                {"parents":[0,1],"agent":0,"patches":[[0,2,""]]}]}"#,
        )?;
        assert_eq!(t.roots, 2);
        Ok(())
    }

    #[test]
    fn non_bmp_inserts_are_detected() -> Result<(), TraceError> {
        let t = parse(r#"{"endContent":"𝛝","txns":[{"patches":[[0,0,"𝛝"]]}]}"#)?;
        assert!(t.non_bmp);
        Ok(())
    }
}
