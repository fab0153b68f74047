//! The binary form of text updates and snapshots.
//!
//! ```text
//! magic "\xC7TXT" | format version (u8) | kind (u8: 1 update, 2 snapshot)
//! | CRC-32 of the body (u32, little-endian) | body
//! body:
//!   replicas:  count, then 16 bytes each
//!   runs:      count, then per event run:
//!                replica index, first sequence number, length,
//!                parents: count, then (replica index, sequence number) each,
//!                ops: count, then per op: gap since the previous op's end, length,
//!                     flags (1 = delete, 2 = backward), position (zig-zag delta from the
//!                     previous op's position)
//!   content:   length, then the inserted text of every insert op in order (UTF-8)
//! ```
//! All numbers are LEB128 varints unless noted. Every count and length is checked against the
//! input left before anything is allocated, and the checksum guards against corruption, so any
//! byte string decodes to an update or a [`LoadError`].

use std::fmt;

use crate::bytes::{ReadError, Reader, Writer, crc32};
use crate::causal_graph::CausalGraph;
use crate::rope::Rope;
use crate::text::oplog::{OpKind, OpLog};
use crate::text::update::{ApplyError, EventRun, Update, UpdateOp};
use crate::{Dot, ReplicaId, VersionVector};

const MAGIC: [u8; 4] = [0xC7, b'T', b'X', b'T'];
/// The version written; the only one read so far.
pub(crate) const FORMAT_VERSION: u8 = 1;
const KIND_UPDATE: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;
const HEADER_LEN: usize = 4 + 1 + 1 + 4;

const FLAG_DELETE: u64 = 1;
const FLAG_BACKWARD: u64 = 2;

/// Why an update or snapshot could not be loaded. Nothing is applied when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not a text update or snapshot (wrong magic number).
    NotText,
    /// Written by a format version this build does not read (probably a newer release).
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
    /// depends on first (or ask the sender for everything since [`Text::version`](super::Text)).
    MissingEvent(Dot),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotText => f.write_str("not a text update or snapshot (bad magic number)"),
            LoadError::UnsupportedVersion { found, supported } => write!(
                f,
                "text format version {found} is not supported (this build reads version \
                 {supported}); it was probably written by a newer release"
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

impl From<ApplyError> for LoadError {
    fn from(error: ApplyError) -> Self {
        match error {
            ApplyError::Missing(dot) => LoadError::MissingEvent(dot),
            ApplyError::Invalid(why) => LoadError::Malformed(why),
        }
    }
}

/// Assigns small indices to replicas in order of first appearance.
#[derive(Default)]
struct ReplicaTable {
    replicas: Vec<ReplicaId>,
}

impl ReplicaTable {
    fn index(&mut self, replica: ReplicaId) -> usize {
        match self.replicas.iter().position(|&r| r == replica) {
            Some(index) => index,
            None => {
                self.replicas.push(replica);
                self.replicas.len() - 1
            }
        }
    }
}

fn encode_body(update: &Update, writer: &mut Writer) {
    let mut table = ReplicaTable::default();
    let mut runs = Writer::default();
    let mut content = String::new();
    runs.usize(update.runs.len());
    for run in &update.runs {
        runs.usize(table.index(run.replica));
        runs.varint(run.seq_start);
        runs.usize(run.len);
        runs.usize(run.parents.len());
        for parent in &run.parents {
            runs.usize(table.index(parent.replica));
            runs.varint(parent.counter);
        }
        runs.usize(run.ops.len());
        let (mut previous_end, mut previous_pos) = (0usize, 0i64);
        for op in &run.ops {
            runs.usize(op.offset - previous_end);
            runs.usize(op.len);
            let mut flags = 0;
            if op.kind == OpKind::Delete {
                flags |= FLAG_DELETE;
            }
            if !op.forward {
                flags |= FLAG_BACKWARD;
            }
            runs.varint(flags);
            runs.signed(op.pos as i64 - previous_pos);
            previous_end = op.offset + op.len;
            previous_pos = op.pos as i64;
            content.push_str(&op.text);
        }
    }
    writer.usize(table.replicas.len());
    for replica in &table.replicas {
        writer.raw(&replica.to_bytes());
    }
    writer.raw(&runs.bytes);
    writer.block(content.as_bytes());
}

fn encode_with_header(kind: u8, update: &Update) -> Vec<u8> {
    let mut body = Writer::default();
    encode_body(update, &mut body);
    let mut out = Vec::with_capacity(HEADER_LEN + body.bytes.len());
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.push(kind);
    out.extend_from_slice(&crc32(&body.bytes).to_le_bytes());
    out.extend_from_slice(&body.bytes);
    out
}

/// The binary form of `update`.
pub(crate) fn encode_update(update: &Update) -> Vec<u8> {
    encode_with_header(KIND_UPDATE, update)
}

/// The binary form of a whole text with its history.
pub(crate) fn encode_snapshot(graph: &CausalGraph, log: &OpLog, _text: &Rope) -> Vec<u8> {
    let update = Update::since(graph, log, &VersionVector::new());
    encode_with_header(KIND_SNAPSHOT, &update)
}

/// Reads an update or snapshot (both carry the same body), checking everything.
pub(crate) fn decode_update(bytes: &[u8]) -> Result<Update, LoadError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(LoadError::NotText);
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
    if bytes[5] != KIND_UPDATE && bytes[5] != KIND_SNAPSHOT {
        return Err(LoadError::Malformed("unknown kind of text encoding"));
    }
    let checksum = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[HEADER_LEN..];
    if crc32(body) != checksum {
        return Err(LoadError::ChecksumMismatch);
    }
    decode_body(&mut Reader::new(body))
}

fn decode_body(reader: &mut Reader<'_>) -> Result<Update, LoadError> {
    let replica_count = reader.count()?;
    let mut replicas = Vec::with_capacity(replica_count);
    for _ in 0..replica_count {
        let raw = reader.raw(16)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(raw);
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
    // Ops are read before the content they refer to: remember each insert's length in chars.
    let mut insert_lengths: Vec<(usize, usize, usize)> = Vec::new(); // (run, op, chars)
    for run_index in 0..run_count {
        let run_replica = replica(reader.usize()?)?;
        let seq_start = reader.varint()?;
        let len = reader.usize()?;
        let parent_count = reader.count()?;
        let mut parents = Vec::with_capacity(parent_count);
        for _ in 0..parent_count {
            let parent_replica = replica(reader.usize()?)?;
            parents.push(Dot::new(parent_replica, reader.varint()?));
        }
        let op_count = reader.count()?;
        let mut ops = Vec::with_capacity(op_count);
        let (mut previous_end, mut previous_pos) = (0usize, 0i64);
        for op_index in 0..op_count {
            let offset = previous_end
                .checked_add(reader.usize()?)
                .ok_or(LoadError::Malformed("operation offset overflows"))?;
            let op_len = reader.usize()?;
            let flags = reader.varint()?;
            if flags > (FLAG_DELETE | FLAG_BACKWARD) {
                return Err(LoadError::Malformed("unknown operation flags"));
            }
            let pos = previous_pos
                .checked_add(reader.signed()?)
                .and_then(|p| usize::try_from(p).ok())
                .ok_or(LoadError::Malformed("operation position out of range"))?;
            let kind = if flags & FLAG_DELETE != 0 {
                OpKind::Delete
            } else {
                insert_lengths.push((run_index, op_index, op_len));
                OpKind::Insert
            };
            ops.push(UpdateOp {
                offset,
                len: op_len,
                kind,
                pos,
                forward: flags & FLAG_BACKWARD == 0,
                text: String::new(),
            });
            previous_end = offset
                .checked_add(op_len)
                .ok_or(LoadError::Malformed("operation length overflows"))?;
            previous_pos = pos as i64;
        }
        runs.push(EventRun {
            replica: run_replica,
            seq_start,
            len,
            parents,
            ops,
        });
    }

    let content = std::str::from_utf8(reader.block()?)
        .map_err(|_| LoadError::Malformed("inserted text is not UTF-8"))?;
    let mut rest = content;
    for (run_index, op_index, chars) in insert_lengths {
        let split = rest
            .char_indices()
            .nth(chars)
            .map_or(rest.len(), |(byte, _)| byte);
        let (text, tail) = rest.split_at(split);
        runs[run_index].ops[op_index].text = text.to_owned();
        rest = tail;
    }
    if !rest.is_empty() || !reader.is_empty() {
        return Err(LoadError::Malformed("unexpected bytes after the update"));
    }
    Ok(Update { runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_errors_are_typed() {
        assert_eq!(decode_update(b""), Err(LoadError::Truncated));
        assert_eq!(decode_update(b"hello world"), Err(LoadError::NotText));
        let mut bytes = encode_update(&Update::default());
        assert_eq!(decode_update(&bytes), Ok(Update::default()));
        bytes[4] = 9;
        assert_eq!(
            decode_update(&bytes),
            Err(LoadError::UnsupportedVersion {
                found: 9,
                supported: FORMAT_VERSION
            })
        );
        bytes[4] = FORMAT_VERSION;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(decode_update(&bytes), Err(LoadError::ChecksumMismatch));
    }
}
