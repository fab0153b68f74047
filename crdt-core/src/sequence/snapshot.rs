//! Loading a snapshot into an empty replica without replaying its history.
//!
//! A snapshot carries the current document beside the history, so a replica that has nothing
//! yet can take both as they are: decoding is the whole cost of loading. The document is trusted
//! to be the result of the history (the checksum guards against corruption; a deliberately
//! inconsistent snapshot can only make this replica's document wrong, never make it panic). A
//! few cheap consistency checks catch gross mismatches.

use crate::causal_graph::CausalGraph;
use crate::sequence::content::{Arena, Content};
use crate::sequence::encoding::{Decoded, LoadError};
use crate::sequence::oplog::{OpKind, OpLog, OpRun};
use crate::sequence::update::ApplyError;

/// The history and document of a decoded snapshot, for a replica that has no events.
pub(crate) fn adopt<C: Content>(
    decoded: Decoded<C>,
) -> Result<(CausalGraph, OpLog<C>, C::Doc), LoadError> {
    let Decoded {
        runs,
        mut ops,
        content,
        document,
    } = decoded;
    let document = document.ok_or(LoadError::Malformed("not a snapshot"))?;

    let mut graph = CausalGraph::default();
    for run in &runs {
        let span = graph
            .add_remote(run.replica, run.seq_start, run.len, &run.parents)
            .map_err(ApplyError::from)?;
        if span.len() != run.len {
            return Err(LoadError::Malformed("a snapshot names an event twice"));
        }
    }

    let total_units = C::count(&content);
    let mut log = OpLog::<C>::default();
    log.content = Arena::from_units(content, total_units);
    log.ops.0.reserve_exact(ops.len());
    let (mut next_unit, mut inserted, mut deleted) = (0usize, 0usize, 0usize);
    while let Some(op) = ops.next_op()? {
        let start = next_unit;
        match op.kind {
            OpKind::Insert => {
                next_unit += op.len;
                inserted += op.len;
            }
            OpKind::Delete => {
                if !op.forward && op.pos + 1 < op.len {
                    return Err(LoadError::Malformed("delete run reaches before the start"));
                }
                deleted += op.len;
            }
        }
        log.push_run_unmerged(OpRun {
            span: op.event..op.event + op.len,
            kind: op.kind,
            pos: op.pos,
            forward: op.forward,
            content: start..next_unit,
        });
    }
    if inserted != total_units {
        return Err(LoadError::Malformed(
            "inserted content does not match the operations",
        ));
    }
    // Every inserted unit is in the document or was deleted at least once.
    let doc = C::doc_from_units(document);
    let len = C::doc_len(&doc);
    if len > inserted || len + deleted < inserted {
        return Err(LoadError::Malformed(
            "the snapshot's document does not match its history",
        ));
    }
    Ok((graph, log, doc))
}
