//! Loading a snapshot into an empty replica without replaying its history.
//!
//! A snapshot carries the current text beside the history, so a replica that has nothing yet can
//! take the text as it is and the history as it is: decoding is the whole cost of loading. The
//! text is trusted to be the result of the history (the checksum guards against corruption; a
//! deliberately inconsistent snapshot can only make this replica's text wrong, never make it
//! panic). A few cheap consistency checks catch gross mismatches.

use crate::causal_graph::CausalGraph;
use crate::rope::Rope;
use crate::text::encoding::{Decoded, LoadError};
use crate::text::oplog::{OpKind, OpLog, OpRun};

/// The history and text of a decoded snapshot, for a replica that has no events.
pub(crate) fn adopt(decoded: Decoded) -> Result<(CausalGraph, OpLog, Rope), LoadError> {
    let Decoded {
        runs,
        ops,
        content,
        text,
    } = decoded;
    let text = text.ok_or(LoadError::Malformed("not a snapshot"))?;

    let mut graph = CausalGraph::default();
    for run in &runs {
        let span = graph
            .add_remote(run.replica, run.seq_start, run.len, &run.parents)
            .map_err(crate::text::update::ApplyError::from)?;
        if span.len() != run.len {
            return Err(LoadError::Malformed("a snapshot names an event twice"));
        }
    }

    let mut log = OpLog {
        content,
        ..OpLog::default()
    };
    let ascii = log.content.is_ascii();
    let (mut byte, mut inserted, mut deleted) = (0usize, 0usize, 0usize);
    for op in ops {
        let start = byte;
        match op.kind {
            OpKind::Insert => {
                byte = if ascii {
                    start + op.len
                } else {
                    let rest = log
                        .content
                        .get(start..)
                        .ok_or(LoadError::Malformed("inserted text is missing"))?;
                    start
                        + rest
                            .char_indices()
                            .nth(op.len)
                            .map_or(rest.len(), |(b, _)| b)
                };
                if byte > log.content.len() {
                    return Err(LoadError::Malformed("inserted text is missing"));
                }
                inserted += op.len;
            }
            OpKind::Delete => {
                if !op.forward && op.pos + 1 < op.len {
                    return Err(LoadError::Malformed("delete run reaches before the start"));
                }
                deleted += op.len;
            }
        }
        log.push_run(OpRun {
            span: op.event..op.event + op.len,
            kind: op.kind,
            pos: op.pos,
            forward: op.forward,
            content: start..byte,
        });
    }
    if byte != log.content.len() {
        return Err(LoadError::Malformed("inserted text left over"));
    }
    // Every inserted char is in the text or was deleted at least once.
    let rope = Rope::from_text(&text);
    let chars = rope.len_chars();
    if chars > inserted || chars + deleted < inserted {
        return Err(LoadError::Malformed(
            "the snapshot's text does not match its history",
        ));
    }
    Ok((graph, log, rope))
}
