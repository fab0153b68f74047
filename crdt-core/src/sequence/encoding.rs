//! The binary form of sequence (text and list) updates and snapshots.
//!
//! ```text
//! header:  magic ("\xC7TXT" text, "\xC7LST" list) | format version (u8)
//!          | kind (u8: 1 update, 2 snapshot) | CRC-32 of everything after the header (u32, little-endian)
//! body:
//!   replicas:  count, then 16 bytes each
//!   runs:      count, then per event run: replica index, first sequence number, length,
//!              parent count, then per parent: replica index, sequence number
//!   content:   the inserted content of every insert, in order (UTF-8 for text, postcard for
//!              list elements), in a compressed block; snapshots: the length of the content's
//!              encoding, then one compressed block holding the content followed by the current
//!              document (the document refers back to the content)
//!   ops:       count, then per operation (in event order over the runs):
//!                head = length << 3 | has_gap << 2 | backward << 1 | is_delete,
//!                [gap: events without an operation since the previous one],
//!                position as a zig-zag delta from where the previous operation ended
//!
//! The operations come last so that a loader reads them in one pass, straight into its
//! operation log, with the content they point into already decoded.
//! compressed block: method (u8: 0 stored, 1 LZ4), uncompressed length, stored length, bytes
//! ```
//! Numbers are LEB128 varints unless noted. Every count and length is checked against the
//! input left before anything is allocated for it, and the checksum catches corruption, so
//! any byte string decodes to an update or a [`LoadError`].
//!
//! Version history: 1 to 3 were development formats, never released (1 stored ops per run and
//! no document; 2 put the operations before the content; 3 compressed document and content
//! apart). They are refused with [`LoadError::UnsupportedVersion`] and a message saying so.

use std::fmt;

use crate::bytes::{BlockError, ReadError, Reader, Writer, read_block, write_block};
use crate::causal_graph::CausalGraph;
use crate::sequence::content::Content;
use crate::sequence::oplog::{OpKind, OpLog, OpRun};
use crate::sequence::update::{ApplyError, EventRun, Update, UpdateOp};
use crate::{Dot, ReplicaId, VersionVector};

/// The version written; the only one read.
pub(crate) const FORMAT_VERSION: u8 = 4;
const KIND_UPDATE: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;
const HEADER_LEN: usize = 4 + 1 + 1 + 4;

const HEAD_DELETE: u64 = 1;
const HEAD_BACKWARD: u64 = 2;
const HEAD_GAP: u64 = 4;
const HEAD_FLAG_BITS: u32 = 3;

/// Why an update or snapshot could not be loaded. Nothing is applied when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not an update or snapshot of this kind of sequence (wrong magic number:
    /// another kind, or not an encoding at all).
    UnknownFormat,
    /// Written by a format version this build does not read.
    UnsupportedVersion {
        /// The version found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The bytes end early.
    Truncated,
    /// The bytes were altered after they were written.
    ChecksumMismatch,
    /// The bytes are well-formed but describe something impossible.
    Malformed(&'static str),
    /// The update builds on an event this replica does not have yet: apply the updates it
    /// depends on first (or ask the sender for everything since this replica's version).
    MissingEvent(Dot),
    /// The document was loaded from a shallow snapshot trimmed at version `base`, and the
    /// update needs history from before it: its changes were made concurrently with trimmed
    /// events (or it is itself a shallow snapshot at a base this document lacks). The sender
    /// must send a full snapshot, or be given one of this document.
    HistoryTrimmed {
        /// The version the history was trimmed at.
        base: VersionVector,
    },
    /// The update or snapshot nests a container deeper than the document's limit
    /// ([`Document::max_depth`](crate::Document::max_depth)); nothing of it was applied. An
    /// app that needs deeper documents raises the limit before loading.
    TooDeep {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::UnknownFormat => {
                f.write_str("not an update or snapshot of this kind (bad magic number)")
            }
            LoadError::UnsupportedVersion { found, supported } if found > supported => write!(
                f,
                "format version {found} is newer than this build reads ({supported}): \
                 upgrade to load it"
            ),
            LoadError::UnsupportedVersion { found, supported } => write!(
                f,
                "format version {found} is an unreleased development format that this \
                 build ({supported}) does not read"
            ),
            LoadError::Truncated => f.write_str("the update ends early"),
            LoadError::ChecksumMismatch => {
                f.write_str("checksum mismatch: the update was corrupted")
            }
            LoadError::Malformed(why) => write!(f, "malformed update: {why}"),
            LoadError::MissingEvent(dot) => write!(
                f,
                "the update depends on event {dot:?}, which this replica has not received"
            ),
            LoadError::HistoryTrimmed { base } => write!(
                f,
                "the update needs history before version {base:?}, which this side does not have \
                 (a document loaded from a shallow snapshot trimmed there, or a shallow snapshot \
                 at a base this document lacks): send or load a full snapshot instead"
            ),
            LoadError::TooDeep { limit } => write!(
                f,
                "the update nests containers deeper than this document's limit of {limit}"
            ),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<ReadError> for LoadError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Truncated => LoadError::Truncated,
            ReadError::BadVarint => LoadError::Malformed("a number is longer than 64 bits"),
        }
    }
}

impl From<BlockError> for LoadError {
    fn from(error: BlockError) -> Self {
        match error {
            BlockError::Read(error) => error.into(),
            BlockError::Corrupt(why) => LoadError::Malformed(why),
        }
    }
}

impl From<ApplyError> for LoadError {
    fn from(error: ApplyError) -> Self {
        match error {
            ApplyError::Missing(dot) => LoadError::MissingEvent(dot),
            ApplyError::Invalid(why) => LoadError::Malformed(why),
            ApplyError::Trimmed(base) => LoadError::HistoryTrimmed { base },
        }
    }
}

/// An operation on the wire: `len` events from the update's `event`-th event on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WireOp {
    pub(crate) event: usize,
    pub(crate) len: usize,
    pub(crate) kind: OpKind,
    pub(crate) pos: usize,
    pub(crate) forward: bool,
}

impl WireOp {
    /// Cuts the operation at event `event` if it continues past it, returning the rest.
    fn split_at(&mut self, event: usize) -> Option<WireOp> {
        if self.event + self.len <= event {
            return None;
        }
        let at = event - self.event;
        let pos = match (self.kind, self.forward) {
            (OpKind::Insert, _) => self.pos + at,
            (OpKind::Delete, true) => self.pos,
            // Validation refuses a backward run reaching before 0; no underflow here either way.
            (OpKind::Delete, false) => self.pos.saturating_sub(at),
        };
        let rest = WireOp {
            event,
            len: self.len - at,
            kind: self.kind,
            pos,
            forward: self.forward,
        };
        self.len = at;
        Some(rest)
    }

    /// Where an operation following this one most likely starts: just after a typed run, at the
    /// same place after a forward delete, just before a backspace run.
    fn predicted_next_pos(&self) -> i64 {
        let (pos, len) = (self.pos as i64, self.len as i64);
        match (self.kind, self.forward) {
            (OpKind::Insert, _) => pos + len,
            (OpKind::Delete, true) => pos,
            (OpKind::Delete, false) => pos - len,
        }
    }
}

/// A decoded update or snapshot, before it is applied. The operations are still bytes: they
/// are read in one pass by whoever applies them ([`Decoded::into_update`], or
/// `snapshot::adopt`).
pub(crate) struct Decoded<'a, C: Content> {
    pub(crate) runs: Vec<EventRun<C>>,
    /// The inserted content of every insert op, in order.
    pub(crate) content: C::Units,
    /// Snapshots: the document after every event.
    pub(crate) document: Option<C::Units>,
    /// The operations, in event order; `event` counts the events of `runs` in order.
    pub(crate) ops: OpsReader<'a>,
}

/// Reads the operations section, checking each operation as it goes.
pub(crate) struct OpsReader<'a> {
    reader: Reader<'a>,
    remaining: usize,
    total_events: usize,
    next_event: usize,
    predicted: i64,
}

impl OpsReader<'_> {
    /// How many operations are left.
    pub(crate) fn len(&self) -> usize {
        self.remaining
    }

    /// The next operation, `None` at the end (which must be the end of the input too).
    pub(crate) fn next_op(&mut self) -> Result<Option<WireOp>, LoadError> {
        if self.remaining == 0 {
            if !self.reader.is_empty() {
                return Err(LoadError::Malformed("unexpected bytes after the update"));
            }
            return Ok(None);
        }
        self.remaining -= 1;
        let reader = &mut self.reader;
        let head = reader.varint()?;
        let gap = if head & HEAD_GAP != 0 {
            reader.usize()?
        } else {
            0
        };
        let len = usize::try_from(head >> HEAD_FLAG_BITS)
            .map_err(|_| LoadError::Malformed("operation too long"))?;
        let event = self
            .next_event
            .checked_add(gap)
            .ok_or(LoadError::Malformed("operation offset overflows"))?;
        let end = event
            .checked_add(len)
            .filter(|&end| end <= self.total_events && len > 0)
            .ok_or(LoadError::Malformed(
                "operation outside the update's events",
            ))?;
        let pos = self
            .predicted
            .checked_add(reader.signed()?)
            .and_then(|p| usize::try_from(p).ok())
            .ok_or(LoadError::Malformed("operation position out of range"))?;
        let op = WireOp {
            event,
            len,
            kind: if head & HEAD_DELETE != 0 {
                OpKind::Delete
            } else {
                OpKind::Insert
            },
            pos,
            forward: head & HEAD_BACKWARD == 0,
        };
        if op.kind == OpKind::Insert && !op.forward {
            return Err(LoadError::Malformed("backward insert runs do not exist"));
        }
        self.predicted = op.predicted_next_pos();
        self.next_event = end;
        Ok(Some(op))
    }
}

/// Assigns small indices to replicas in order of first appearance.
#[derive(Default)]
struct ReplicaTable {
    replicas: Vec<ReplicaId>,
    index: std::collections::HashMap<ReplicaId, usize>,
}

impl ReplicaTable {
    fn index(&mut self, replica: ReplicaId) -> usize {
        let next = self.replicas.len();
        *self.index.entry(replica).or_insert_with(|| {
            self.replicas.push(replica);
            next
        })
    }
}

fn read_units<C: Content>(reader: &mut Reader<'_>) -> Result<C::Units, LoadError> {
    C::decode_units(read_block(reader)?).map_err(LoadError::Malformed)
}

/// Writes the body: replicas, runs, ops, content and (snapshots) the document.
fn write_body<C: Content>(
    out: &mut Writer,
    runs: &[EventRun<C>],
    ops: &[WireOp],
    content: &C::Units,
    document: Option<&C::Units>,
) {
    let mut table = ReplicaTable::default();
    let mut body = Writer::default();
    body.usize(runs.len());
    for run in runs {
        body.usize(table.index(run.replica));
        body.varint(run.seq_start);
        body.usize(run.len);
        body.usize(run.parents.len());
        for parent in &run.parents {
            body.usize(table.index(parent.replica));
            body.varint(parent.counter);
        }
    }
    match document {
        // One block for content and document: the document is mostly text that the content
        // holds too, and one LZ4 block lets it refer back to it.
        Some(document) => {
            let mut both = C::encode_units(content);
            body.usize(both.len());
            both.extend(C::encode_units(document));
            write_block(&mut body, &both);
        }
        None => write_block(&mut body, &C::encode_units(content)),
    }
    body.usize(ops.len());
    let (mut next_event, mut predicted) = (0usize, 0i64);
    for op in ops {
        let gap = op.event - next_event;
        let mut head = (op.len as u64) << HEAD_FLAG_BITS;
        if op.kind == OpKind::Delete {
            head |= HEAD_DELETE;
        }
        if !op.forward {
            head |= HEAD_BACKWARD;
        }
        if gap > 0 {
            head |= HEAD_GAP;
        }
        body.varint(head);
        if gap > 0 {
            body.usize(gap);
        }
        body.signed(op.pos as i64 - predicted);
        next_event = op.event + op.len;
        predicted = op.predicted_next_pos();
    }

    out.usize(table.replicas.len());
    for replica in &table.replicas {
        out.raw(&replica.to_bytes());
    }
    out.raw(&body.bytes);
}

fn with_header<C: Content>(kind: u8, body: Writer) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.bytes.len());
    out.extend_from_slice(&C::MAGIC);
    out.push(FORMAT_VERSION);
    out.push(kind);
    out.extend_from_slice(&crate::checksum::crc32(&body.bytes).to_le_bytes());
    out.extend_from_slice(&body.bytes);
    out
}

/// The binary form of `update`.
pub(crate) fn encode_update<C: Content>(update: &Update<C>) -> Vec<u8> {
    let mut ops = Vec::new();
    let mut content = C::Units::default();
    let mut event = 0;
    for run in &update.runs {
        for op in &run.ops {
            ops.push(WireOp {
                event: event + op.offset,
                len: op.len,
                kind: op.kind,
                pos: op.pos,
                forward: op.forward,
            });
            C::push(&mut content, C::as_slice(&op.units));
        }
        event += run.len;
    }
    let mut body = Writer::default();
    write_body(&mut body, &update.runs, &ops, &content, None);
    with_header::<C>(KIND_UPDATE, body)
}

/// The binary form of a whole sequence with its history and current document.
pub(crate) fn encode_snapshot<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    doc: &C::Doc,
) -> Vec<u8> {
    let runs = Update::<C>::event_runs(graph, &VersionVector::new(), None);
    // Every event is included, in local version order, so an event's index is its version.
    let ops: Vec<WireOp> = log
        .ops
        .0
        .iter()
        .map(|op: &OpRun| WireOp {
            event: op.span.start,
            len: op.span.len(),
            kind: op.kind,
            pos: op.pos,
            forward: op.forward,
        })
        .collect();
    let mut body = Writer::default();
    write_body(
        &mut body,
        &runs,
        &ops,
        log.content.units(),
        Some(&C::doc_to_units(doc)),
    );
    with_header::<C>(KIND_SNAPSHOT, body)
}

/// Reads an update or snapshot, checking everything that can be checked without a replica.
pub(crate) fn decode<C: Content>(bytes: &[u8]) -> Result<Decoded<'_, C>, LoadError> {
    let magic_len = bytes.len().min(C::MAGIC.len());
    if bytes[..magic_len] != C::MAGIC[..magic_len] {
        return Err(LoadError::UnknownFormat);
    }
    if bytes.len() < HEADER_LEN {
        return Err(LoadError::Truncated);
    }
    if bytes[4] != FORMAT_VERSION {
        return Err(LoadError::UnsupportedVersion {
            found: bytes[4],
            supported: FORMAT_VERSION,
        });
    }
    let kind = bytes[5];
    if kind != KIND_UPDATE && kind != KIND_SNAPSHOT {
        return Err(LoadError::Malformed("unknown kind of encoding"));
    }
    let checksum = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[HEADER_LEN..];
    if crate::checksum::crc32(body) != checksum {
        return Err(LoadError::ChecksumMismatch);
    }
    decode_body(Reader::new(body), kind == KIND_SNAPSHOT)
}

fn decode_body<C: Content>(
    mut body: Reader<'_>,
    snapshot: bool,
) -> Result<Decoded<'_, C>, LoadError> {
    let reader = &mut body;
    let replica_count = reader.count()?;
    let mut replicas = Vec::with_capacity(replica_count);
    for _ in 0..replica_count {
        let mut id = [0u8; 16];
        id.copy_from_slice(reader.raw(16)?);
        replicas.push(ReplicaId::from_bytes(id));
    }
    let replica = |index: usize| {
        replicas
            .get(index)
            .copied()
            .ok_or(LoadError::Malformed("replica index out of range"))
    };

    let run_count = reader.count()?;
    let mut runs = Vec::with_capacity(run_count);
    let mut total_events = 0usize;
    for _ in 0..run_count {
        let run_replica = replica(reader.usize()?)?;
        let seq_start = reader.varint()?;
        let len = reader.usize()?;
        total_events = total_events
            .checked_add(len)
            .ok_or(LoadError::Malformed("too many events"))?;
        let parent_count = reader.count()?;
        let mut parents = Vec::with_capacity(parent_count);
        for _ in 0..parent_count {
            let parent_replica = replica(reader.usize()?)?;
            parents.push(Dot::new(parent_replica, reader.varint()?));
        }
        runs.push(EventRun {
            replica: run_replica,
            seq_start,
            len,
            parents,
            ops: Vec::new(),
        });
    }

    let (content, document) = if snapshot {
        let content_len = reader.usize()?;
        let mut both = read_block(reader)?;
        if content_len > both.len() {
            return Err(LoadError::Malformed("content longer than its block"));
        }
        let document = both.split_off(content_len);
        let decode = |bytes| C::decode_units(bytes).map_err(LoadError::Malformed);
        (decode(both)?, Some(decode(document)?))
    } else {
        (read_units::<C>(reader)?, None)
    };
    let remaining = reader.count()?;
    Ok(Decoded {
        runs,
        content,
        document,
        ops: OpsReader {
            reader: body,
            remaining,
            total_events,
            next_event: 0,
            predicted: 0,
        },
    })
}

impl<C: Content> Decoded<'_, C> {
    /// Spreads the operations over their event runs, with their content: the form `Update::add_to`
    /// merges into any replica.
    pub(crate) fn into_update(self) -> Result<Update<C>, LoadError> {
        let Decoded {
            mut runs,
            mut ops,
            content,
            ..
        } = self;
        let mut offset = 0;
        let mut next = ops.next_op()?;
        let mut run_start = 0;
        for run in &mut runs {
            let run_end = run_start + run.len;
            while let Some(mut op) = next.take_if(|op| op.event < run_end) {
                // An operation run may continue into the next event run (a snapshot stores
                // runs as its log holds them): the part past this run waits for the next.
                let rest = op.split_at(run_end);
                next = match rest {
                    Some(rest) => Some(rest),
                    None => ops.next_op()?,
                };
                let units = if op.kind == OpKind::Insert {
                    let end = C::offset_after(&content, offset, op.len);
                    let units = C::slice(&content, offset..end);
                    offset = end;
                    units
                } else {
                    C::Units::default()
                };
                run.ops.push(UpdateOp {
                    offset: op.event - run_start,
                    len: op.len,
                    kind: op.kind,
                    pos: op.pos,
                    forward: op.forward,
                    units,
                });
            }
            run_start = run_end;
        }
        if next.is_some() || offset != C::storage_len(&content) {
            return Err(LoadError::Malformed(
                "operations or inserted content left over after the last event",
            ));
        }
        Ok(Update { runs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::content::TextContent;

    #[test]
    fn header_errors_are_typed() {
        assert_eq!(
            decode::<TextContent>(b"").map(|_| ()),
            Err(LoadError::Truncated)
        );
        assert_eq!(
            decode::<TextContent>(b"hello world").map(|_| ()),
            Err(LoadError::UnknownFormat)
        );
        let mut bytes = encode_update(&Update::<TextContent>::default());
        assert!(decode::<TextContent>(&bytes).is_ok());
        bytes[4] = 9;
        assert_eq!(
            decode::<TextContent>(&bytes).map(|_| ()),
            Err(LoadError::UnsupportedVersion {
                found: 9,
                supported: FORMAT_VERSION
            })
        );
        bytes[4] = FORMAT_VERSION;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            decode::<TextContent>(&bytes).map(|_| ()),
            Err(LoadError::ChecksumMismatch)
        );
    }

    #[test]
    fn development_formats_1_to_3_are_refused_with_a_clear_error() {
        for old in [1, 2, 3] {
            let mut bytes = encode_update(&Update::<TextContent>::default());
            bytes[4] = old;
            let error = decode::<TextContent>(&bytes)
                .map(|_| ())
                .expect_err("refused");
            assert_eq!(
                error,
                LoadError::UnsupportedVersion {
                    found: old,
                    supported: FORMAT_VERSION
                }
            );
            assert!(error.to_string().contains("unreleased development format"));
        }
    }

    #[test]
    fn a_lying_block_length_is_refused_before_allocating() {
        let mut body = Writer::default();
        body.varint(1); // LZ4
        body.usize(usize::MAX / 2);
        body.block(&[0x10, b'a']);
        assert!(read_block(&mut Reader::new(&body.bytes)).is_err());
    }
}
