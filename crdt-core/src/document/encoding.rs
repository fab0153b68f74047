//! The binary form of document updates and snapshots.
//!
//! ```text
//! header:  magic "\xC7DOC" | format version (u8) | kind (u8: 1 update, 2 snapshot,
//!          3 shallow snapshot with the base's graph (read only), 4 shallow snapshot with a
//!          summary of the base)
//!          | CRC-32 of everything after the header (u32, little-endian)
//! body:
//!   replicas:    count, then 16 bytes each
//!   containers:  count, then per container (index 0 is the root, not written; containers
//!                are referred to by index):
//!                format 1: replica index, sequence number of the creating event;
//!                format 2: a tag, then 0 (created): replica index, sequence number;
//!                1 (named): index of its map (below its own), kind, key (length + UTF-8);
//!                2 (named, place unknown to the writer): the 32-byte digest
//!   base:        shallow snapshots only: the version the history was trimmed at (count, then
//!                replica index and count each), then
//!                kind 3: its events as changes without operations (count, then per change:
//!                replica index, first sequence number, length, parent count, parents), in
//!                causal order;
//!                kind 4: its heads (count, then per head, by replica: replica index and
//!                Lamport timestamp; the head is that replica's last event in the base), then
//!                anchors (count, then per event of the base the state or placements refer
//!                to, by dot: replica index, sequence number, Lamport timestamp)
//!   changes:     count, then per change:
//!                  replica index, first sequence number, length,
//!                  parent count, then (replica index, sequence number) each,
//!                  flags (1 = starts a transaction, 2 = has message, 4 = has timestamp),
//!                  [message: length + UTF-8], [timestamp: zig-zag],
//!                  op count, then per op (ops cover the change's events in order):
//!                    head = length << 4 | op kind, container index, then by kind:
//!                      text insert: position (text in the text block),
//!                      list insert: position, then `length` values,
//!                      delete forward / backward: position,
//!                      map set: key (length + UTF-8), value or none, overwritten dots,
//!                      register set: value or none, overwritten dots,
//!                      increment: amount (zig-zag)
//!   text:        the inserted text of every text insert, in order (a compressed block)
//!   state:       snapshots only: container count, then per container: container index, kind,
//!                then maps: key count, per key: key, write count, per write: dot, value;
//!                lists: count, values; texts: a compressed block; counters: zig-zag;
//!                registers: write count, per write: dot, value. A loader into an empty replica
//!                installs this state instead of replaying the changes.
//!   placements:  shallow snapshots only: count, then per container created within the base:
//!                container index, parent container index, key (0, or 1 then length + UTF-8)
//! value: tag (0 null, 1 false, 2 true, 3 int zig-zag, 4 float 8 bytes LE, 5 string,
//!        6 bytes, 7 new container + kind, 8 existing container + kind + container index,
//!        9 (format 2, map writes only) the named container of the written key + kind)
//!        then its payload; "none" is tag 255.
//! ```
//!
//! Format 2 exists for named containers ([`super::NamedId`]) and is written only when one
//! appears; everything else is written as format 1, byte for byte as before, so older builds
//! keep reading it (and refuse format 2 with [`LoadError::UnsupportedVersion`]). A named
//! container's id is never written: readers derive it from its place.
//! Every count and length is checked against the bytes left before anything is allocated;
//! the checksum catches corruption; applying is all or nothing.
//!
//! Kinds 3 and 4 (shallow snapshots) were added within format version 1: updates and full
//! snapshots are written exactly as before, so everything written earlier still loads; a
//! build older than a kind refuses it with "unknown kind of encoding". Kind 3 is still read
//! (a golden test keeps it loading) and no longer written.
//!
//! A shallow snapshot ([`Document::encode_shallow`]) holds the state, the changes after its
//! base version with their operations, where each container created within the base was
//! created, and of the events within the base only what a loaded document asks of them:
//! their number per replica (so every dot within the base names an event), the heads (the
//! parents of whatever comes next, and what tells a change made concurrently with the trimmed
//! history, refused with [`LoadError::HistoryTrimmed`], from one whose parents have simply not
//! arrived yet, [`LoadError::MissingEvent`]), and the Lamport timestamps that rank the map and
//! register writes of the state and order container creations. Kind 3 kept the base's whole
//! causal graph instead: on the two-user concurrent traces that was three quarters of the
//! snapshot, one run per transaction.

use std::collections::{HashMap, HashSet};

use super::change::{Change, ChangeOp, OpBody};
use super::state::Container;
use super::value::{ContainerId, ContainerKind, NamedId, Value};
use super::{Document, HistoryError, Placement};
use crate::bytes::{Reader, Writer, read_block, write_block};
use crate::causal_graph::{Frontier, GraphRun, Lv};
use crate::sequence::LoadError;
use crate::sequence::update::ApplyError;
use crate::{Dot, ReplicaId, VersionVector};

const MAGIC: [u8; 4] = [0xC7, b'D', b'O', b'C'];
/// The version written when nothing needs a later one.
pub(crate) const FORMAT_VERSION: u8 = 1;
/// The version written when named containers appear: the container table's entries are
/// tagged (created or named), and map writes may hold a named container (value tag 9).
/// Both versions are read.
pub(crate) const FORMAT_NAMED: u8 = 2;
const KIND_UPDATE: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;
/// Shallow snapshots with the base's whole causal graph (read, no longer written).
const KIND_SHALLOW: u8 = 3;
/// Shallow snapshots with a summary of the base (what is written now).
const KIND_SHALLOW_SUMMARY: u8 = 4;
const HEADER_LEN: usize = 10;

const OP_TEXT_INSERT: u64 = 0;
const OP_LIST_INSERT: u64 = 1;
const OP_DELETE_FORWARD: u64 = 2;
const OP_DELETE_BACKWARD: u64 = 3;
const OP_MAP_SET: u64 = 4;
const OP_REGISTER_SET: u64 = 5;
const OP_INCREMENT: u64 = 6;
const OP_KIND_BITS: u32 = 4;

const FLAG_STARTS: u64 = 1;
const FLAG_MESSAGE: u64 = 2;
const FLAG_TIMESTAMP: u64 = 4;

const VALUE_NONE: u8 = 255;
/// More trimmed events than any real document has (a quarter of the local version space).
const MAX_TRIMMED_EVENTS: usize = usize::MAX >> 2;
/// Lamport timestamps a shallow summary may give (room to add to them without overflow).
const MAX_BASE_LAMPORT: u64 = u64::MAX >> 2;

fn malformed(why: &'static str) -> LoadError {
    LoadError::Malformed(why)
}

/// Interns replicas and containers as small indices.
struct Tables<'a> {
    /// Where the document's named containers are (to declare them by place).
    doc: &'a Document,
    replicas: Vec<ReplicaId>,
    replica_index: HashMap<ReplicaId, usize>,
    containers: Vec<TableEntry>,
    container_index: HashMap<ContainerId, usize>,
    /// Whether anything written needs format version 2 (named containers).
    named: bool,
}

/// A container in the table (the root is index 0 and not written).
enum TableEntry {
    /// Created by the event with this dot.
    Created(Dot),
    /// The named container of `kind` at `key` of the container at `parent` (an index below
    /// this entry's own).
    Named {
        parent: usize,
        kind: ContainerKind,
        key: String,
    },
    /// A named container whose place the writer does not know (never happens in a
    /// consistent document; kept so that the writer cannot fail): its digest.
    NamedDigest(NamedId),
}

const TABLE_CREATED: u8 = 0;
const TABLE_NAMED: u8 = 1;
const TABLE_NAMED_DIGEST: u8 = 2;

impl<'a> Tables<'a> {
    fn new(doc: &'a Document) -> Tables<'a> {
        Tables {
            doc,
            replicas: Vec::new(),
            replica_index: HashMap::new(),
            containers: Vec::new(),
            container_index: HashMap::new(),
            named: false,
        }
    }

    fn replica(&mut self, replica: ReplicaId) -> usize {
        let next = self.replicas.len();
        *self.replica_index.entry(replica).or_insert_with(|| {
            self.replicas.push(replica);
            next
        })
    }

    fn push(&mut self, id: ContainerId, entry: TableEntry) -> usize {
        self.containers.push(entry);
        let index = self.containers.len();
        self.container_index.insert(id, index);
        index
    }

    /// The index of container `id`, declaring it (and a named container's unknown parents,
    /// parents first) if needed.
    fn container(&mut self, id: ContainerId) -> usize {
        if id == ContainerId::Root {
            return 0;
        }
        if let Some(&index) = self.container_index.get(&id) {
            return index;
        }
        // The named containers on the way up to the first known (or created) container: a
        // loop, since named chains may be as deep as the document.
        let mut chain = Vec::new();
        let mut at = id;
        let mut parent_index = loop {
            if at == ContainerId::Root {
                break 0;
            }
            if let Some(&index) = self.container_index.get(&at) {
                break index;
            }
            match at {
                ContainerId::Root => break 0,
                ContainerId::Created(dot) => {
                    self.replica(dot.replica);
                    break self.push(at, TableEntry::Created(dot));
                }
                ContainerId::Named(named) => {
                    self.named = true;
                    match self.doc.named_place(at) {
                        Some((parent, key, kind)) => {
                            chain.push((at, key, kind));
                            at = parent;
                        }
                        None => break self.push(at, TableEntry::NamedDigest(named)),
                    }
                }
            }
        };
        while let Some((id, key, kind)) = chain.pop() {
            let entry = TableEntry::Named {
                parent: parent_index,
                kind,
                key,
            };
            parent_index = self.push(id, entry);
        }
        parent_index
    }

    fn dot(&mut self, out: &mut Writer, dot: Dot) {
        out.usize(self.replica(dot.replica));
        out.varint(dot.counter);
    }
}

fn kind_code(kind: ContainerKind) -> u8 {
    match kind {
        ContainerKind::Map => 0,
        ContainerKind::List => 1,
        ContainerKind::Text => 2,
        ContainerKind::Counter => 3,
        ContainerKind::Register => 4,
    }
}

fn kind_from(code: u8) -> Result<ContainerKind, LoadError> {
    Ok(match code {
        0 => ContainerKind::Map,
        1 => ContainerKind::List,
        2 => ContainerKind::Text,
        3 => ContainerKind::Counter,
        4 => ContainerKind::Register,
        _ => return Err(malformed("unknown container kind")),
    })
}

/// A container's content in a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StateContent {
    /// Per key, its surviving writes (dot of the writing event, value).
    Map(Vec<(String, Vec<(Dot, Value)>)>),
    List(Vec<Value>),
    Text(String),
    Counter(i64),
    Register(Vec<(Dot, Value)>),
}

/// What only a shallow snapshot holds.
pub(crate) struct ShallowPart {
    /// The version the history was trimmed at.
    pub(crate) version: VersionVector,
    /// Its events: the whole graph (kind 3) or a summary (kind 4).
    pub(crate) trimmed: TrimmedBase,
    /// Where each container created within the base was created: container, parent, key.
    pub(crate) placements: Vec<(ContainerId, ContainerId, Option<String>)>,
}

/// The events of a shallow snapshot's base, as read.
pub(crate) enum TrimmedBase {
    /// Kind 3 (read, no longer written): every event, as changes without operations or
    /// metadata, in causal order.
    Graph(Vec<Change>),
    /// Kind 4.
    Summary(BaseSummary),
}

/// What a loaded document needs of a shallow snapshot's base, nothing more: the heads (the
/// last event of each of these replicas in the base) with their Lamport timestamps, and the
/// Lamport timestamps of the other base events the snapshot refers to (writes in the state,
/// container creations), sorted by dot. See [`Document::install_base_summary`].
pub(crate) struct BaseSummary {
    pub(crate) heads: Vec<(ReplicaId, u64)>,
    pub(crate) anchors: Vec<(Dot, u64)>,
}

/// What a shallow snapshot being written holds besides the changes and state (always kind 4).
struct ShallowOut<'a> {
    version: &'a VersionVector,
    summary: &'a BaseSummary,
    placements: &'a [(ContainerId, ContainerId, Option<String>)],
}

/// What a snapshot holds: the changes, and (snapshots) every container's content.
pub(crate) struct Decoded {
    pub(crate) changes: Vec<Change>,
    pub(crate) state: Option<Vec<(ContainerId, StateContent)>>,
    /// Shallow snapshots only.
    pub(crate) shallow: Option<ShallowPart>,
}

fn write_value(out: &mut Writer, value: Option<&Value>) {
    match value {
        None => out.raw(&[VALUE_NONE]),
        Some(Value::Null) => out.raw(&[0]),
        Some(Value::Bool(false)) => out.raw(&[1]),
        Some(Value::Bool(true)) => out.raw(&[2]),
        Some(Value::Int(i)) => {
            out.raw(&[3]);
            out.signed(*i);
        }
        Some(Value::Float(f)) => {
            out.raw(&[4]);
            out.raw(&f.to_le_bytes());
        }
        Some(Value::String(s)) => {
            out.raw(&[5]);
            out.block(s.as_bytes());
        }
        Some(Value::Bytes(b)) => {
            out.raw(&[6]);
            out.block(b);
        }
        // A named container's id comes from the key written, a new container's from its
        // creating event: implied, not written.
        Some(Value::Container(kind, ContainerId::Named(_))) => out.raw(&[9, kind_code(*kind)]),
        Some(Value::Container(kind, _)) => out.raw(&[7, kind_code(*kind)]),
    }
}

/// Writes a value of a snapshot's state: containers are named by index.
fn write_state_value(out: &mut Writer, tables: &mut Tables, value: &Value) {
    match value {
        Value::Container(kind, id) => {
            out.raw(&[8, kind_code(*kind)]);
            let index = tables.container(*id);
            out.usize(index);
        }
        other => write_value(out, Some(other)),
    }
}

/// Reads a value of a snapshot's state: containers are looked up in `containers`.
fn read_value_in(
    reader: &mut Reader<'_>,
    own: Dot,
    containers: &[ContainerId],
) -> Result<Option<Value>, LoadError> {
    let mut probe = Reader::new(reader.peek_rest());
    if probe.u8()? == 8 {
        reader.u8()?;
        let kind = kind_from(reader.u8()?)?;
        let id = *containers
            .get(reader.usize()?)
            .ok_or(malformed("container index out of range"))?;
        return Ok(Some(Value::Container(kind, id)));
    }
    read_value(reader, own, None)
}

/// Reads a value; a new container takes the id `own` (the event writing it), a named one the
/// id of its place `key` (map and key; `None` where values are not written to map keys).
fn read_value(
    reader: &mut Reader<'_>,
    own: Dot,
    key: Option<(ContainerId, &str)>,
) -> Result<Option<Value>, LoadError> {
    Ok(Some(match reader.u8()? {
        VALUE_NONE => return Ok(None),
        0 => Value::Null,
        1 => Value::Bool(false),
        2 => Value::Bool(true),
        3 => Value::Int(reader.signed()?),
        4 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(reader.raw(8)?);
            Value::Float(f64::from_le_bytes(bytes))
        }
        5 => Value::String(
            String::from_utf8(reader.block()?.to_vec())
                .map_err(|_| malformed("a string value is not UTF-8"))?,
        ),
        6 => Value::Bytes(reader.block()?.to_vec()),
        7 => Value::Container(kind_from(reader.u8()?)?, ContainerId::Created(own)),
        9 => {
            let kind = kind_from(reader.u8()?)?;
            let (map, key) = key.ok_or(malformed("a named container outside a map key"))?;
            Value::Container(kind, ContainerId::Named(NamedId::derive(map, key, kind)))
        }
        _ => return Err(malformed("unknown value tag")),
    }))
}

/// The binary form of `changes` of `doc` (an update), or with `state` a snapshot.
pub(crate) fn encode(
    doc: &Document,
    changes: &[Change],
    state: Option<&[(ContainerId, StateContent)]>,
) -> Vec<u8> {
    encode_with(doc, changes, state, None)
}

/// [`encode`], or with `shallow` (and `state`) a shallow snapshot.
fn encode_with(
    doc: &Document,
    changes: &[Change],
    state: Option<&[(ContainerId, StateContent)]>,
    shallow: Option<ShallowOut<'_>>,
) -> Vec<u8> {
    let snapshot = state.is_some();
    let mut tables = Tables::new(doc);
    let mut body = Writer::default();
    let mut text = String::new();
    if let Some(shallow) = &shallow {
        body.usize(shallow.version.len());
        for (replica, count) in shallow.version.iter() {
            body.usize(tables.replica(replica));
            body.varint(count);
        }
        let BaseSummary { heads, anchors } = shallow.summary;
        body.usize(heads.len());
        for &(replica, lamport) in heads {
            body.usize(tables.replica(replica));
            body.varint(lamport);
        }
        body.usize(anchors.len());
        for &(dot, lamport) in anchors {
            tables.dot(&mut body, dot);
            body.varint(lamport);
        }
    }
    body.usize(changes.len());
    for change in changes {
        body.usize(tables.replica(change.replica));
        body.varint(change.seq_start);
        body.usize(change.len);
        body.usize(change.parents.len());
        for &parent in &change.parents {
            tables.dot(&mut body, parent);
        }
        let mut flags = 0;
        if let Some((message, timestamp)) = &change.meta {
            flags |= FLAG_STARTS;
            if message.is_some() {
                flags |= FLAG_MESSAGE;
            }
            if timestamp.is_some() {
                flags |= FLAG_TIMESTAMP;
            }
            body.varint(flags);
            if let Some(message) = message {
                body.block(message.as_bytes());
            }
            if let Some(timestamp) = timestamp {
                body.signed(*timestamp);
            }
        } else {
            body.varint(flags);
        }
        body.usize(change.ops.len());
        for op in &change.ops {
            let kind = match &op.body {
                OpBody::TextInsert { .. } => OP_TEXT_INSERT,
                OpBody::ListInsert { .. } => OP_LIST_INSERT,
                OpBody::SeqDelete { forward: true, .. } => OP_DELETE_FORWARD,
                OpBody::SeqDelete { forward: false, .. } => OP_DELETE_BACKWARD,
                OpBody::MapSet { .. } => OP_MAP_SET,
                OpBody::RegisterSet { .. } => OP_REGISTER_SET,
                OpBody::Increment { .. } => OP_INCREMENT,
            };
            body.varint(((op.len as u64) << OP_KIND_BITS) | kind);
            let container = tables.container(op.container);
            body.usize(container);
            match &op.body {
                OpBody::TextInsert {
                    pos,
                    text: inserted,
                } => {
                    body.usize(*pos);
                    text.push_str(inserted);
                }
                OpBody::ListInsert { pos, values } => {
                    body.usize(*pos);
                    for value in values {
                        write_value(&mut body, Some(value));
                    }
                }
                OpBody::SeqDelete { pos, .. } => body.usize(*pos),
                OpBody::MapSet { key, value, pred } => {
                    body.block(key.as_bytes());
                    if let Some(Value::Container(_, ContainerId::Named(_))) = value {
                        tables.named = true;
                    }
                    write_value(&mut body, value.as_ref());
                    body.usize(pred.len());
                    for &dot in pred {
                        tables.dot(&mut body, dot);
                    }
                }
                OpBody::RegisterSet { value, pred } => {
                    write_value(&mut body, value.as_ref());
                    body.usize(pred.len());
                    for &dot in pred {
                        tables.dot(&mut body, dot);
                    }
                }
                OpBody::Increment { by } => body.signed(*by),
            }
        }
    }
    write_block(&mut body, text.as_bytes());
    if let Some(state) = state {
        body.usize(state.len());
        for (id, content) in state {
            let index = tables.container(*id);
            body.usize(index);
            let write_entries =
                |body: &mut Writer, tables: &mut Tables, entries: &[(Dot, Value)]| {
                    body.usize(entries.len());
                    for (dot, value) in entries {
                        tables.dot(body, *dot);
                        write_state_value(body, tables, value);
                    }
                };
            match content {
                StateContent::Map(keys) => {
                    body.raw(&[kind_code(ContainerKind::Map)]);
                    body.usize(keys.len());
                    for (key, entries) in keys {
                        body.block(key.as_bytes());
                        write_entries(&mut body, &mut tables, entries);
                    }
                }
                StateContent::List(values) => {
                    body.raw(&[kind_code(ContainerKind::List)]);
                    body.usize(values.len());
                    for value in values {
                        write_state_value(&mut body, &mut tables, value);
                    }
                }
                StateContent::Text(text) => {
                    body.raw(&[kind_code(ContainerKind::Text)]);
                    write_block(&mut body, text.as_bytes());
                }
                StateContent::Counter(value) => {
                    body.raw(&[kind_code(ContainerKind::Counter)]);
                    body.signed(*value);
                }
                StateContent::Register(entries) => {
                    body.raw(&[kind_code(ContainerKind::Register)]);
                    write_entries(&mut body, &mut tables, entries);
                }
            }
        }
    }
    if let Some(shallow) = &shallow {
        body.usize(shallow.placements.len());
        for (id, parent, key) in shallow.placements {
            let index = tables.container(*id);
            body.usize(index);
            let index = tables.container(*parent);
            body.usize(index);
            match key {
                None => body.raw(&[0]),
                Some(key) => {
                    body.raw(&[1]);
                    body.block(key.as_bytes());
                }
            }
        }
    }

    let mut head = Writer::default();
    head.usize(tables.replicas.len());
    for replica in &tables.replicas {
        head.raw(&replica.to_bytes());
    }
    head.usize(tables.containers.len());
    for entry in &tables.containers {
        // Version 1 tables hold created containers only, untagged.
        match entry {
            TableEntry::Created(dot) => {
                if tables.named {
                    head.raw(&[TABLE_CREATED]);
                }
                head.usize(tables.replica_index.get(&dot.replica).copied().unwrap_or(0));
                head.varint(dot.counter);
            }
            TableEntry::Named { parent, kind, key } => {
                head.raw(&[TABLE_NAMED]);
                head.usize(*parent);
                head.raw(&[kind_code(*kind)]);
                head.block(key.as_bytes());
            }
            TableEntry::NamedDigest(named) => {
                head.raw(&[TABLE_NAMED_DIGEST]);
                head.raw(&named.to_bytes());
            }
        }
    }
    head.raw(&body.bytes);

    let mut out = Vec::with_capacity(HEADER_LEN + head.bytes.len());
    out.extend_from_slice(&MAGIC);
    // Version 1 when it says all there is to say, so that older builds keep reading it.
    out.push(if tables.named {
        FORMAT_NAMED
    } else {
        FORMAT_VERSION
    });
    out.push(match (shallow, snapshot) {
        (Some(_), _) => KIND_SHALLOW_SUMMARY,
        (None, true) => KIND_SNAPSHOT,
        (None, false) => KIND_UPDATE,
    });
    out.extend_from_slice(&crate::checksum::crc32(&head.bytes).to_le_bytes());
    out.extend_from_slice(&head.bytes);
    out
}

/// Reads an update or snapshot, checking everything that can be checked without a replica.
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, LoadError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(LoadError::UnknownFormat);
    }
    if bytes.len() < HEADER_LEN {
        return Err(LoadError::Truncated);
    }
    let format = bytes[4];
    if format != FORMAT_VERSION && format != FORMAT_NAMED {
        return Err(LoadError::UnsupportedVersion {
            found: format,
            supported: FORMAT_NAMED,
        });
    }
    if ![
        KIND_UPDATE,
        KIND_SNAPSHOT,
        KIND_SHALLOW,
        KIND_SHALLOW_SUMMARY,
    ]
    .contains(&bytes[5])
    {
        return Err(malformed("unknown kind of encoding"));
    }
    let summary = bytes[5] == KIND_SHALLOW_SUMMARY;
    let shallow = bytes[5] == KIND_SHALLOW || summary;
    let snapshot = bytes[5] == KIND_SNAPSHOT || shallow;
    let checksum = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[HEADER_LEN..];
    if crate::checksum::crc32(body) != checksum {
        return Err(LoadError::ChecksumMismatch);
    }
    let mut reader = Reader::new(body);
    let reader = &mut reader;

    let replica_count = reader.count()?;
    let mut replicas = Vec::with_capacity(replica_count);
    for _ in 0..replica_count {
        let mut id = [0u8; 16];
        id.copy_from_slice(reader.raw(16)?);
        replicas.push(ReplicaId::from_bytes(id));
    }
    let replica = |reader: &mut Reader<'_>| -> Result<ReplicaId, LoadError> {
        replicas
            .get(reader.usize()?)
            .copied()
            .ok_or(malformed("replica index out of range"))
    };
    let dot = |reader: &mut Reader<'_>| -> Result<Dot, LoadError> {
        let r = replica(reader)?;
        Ok(Dot::new(r, reader.varint()?))
    };
    // A chain's head, as changes and kind-3 trimmed events start: replica, first sequence
    // number, length, parents. Metadata and operations (changes only) follow.
    let chain = |reader: &mut Reader<'_>| -> Result<Change, LoadError> {
        let change_replica = replica(reader)?;
        let seq_start = reader.varint()?;
        let len = reader.usize()?;
        let parent_count = reader.count()?;
        let mut parents = Vec::with_capacity(parent_count);
        for _ in 0..parent_count {
            parents.push(dot(reader)?);
        }
        Ok(Change {
            replica: change_replica,
            seq_start,
            len,
            parents,
            meta: None,
            ops: Vec::new(),
        })
    };
    let container_count = reader.count()?;
    let mut containers = Vec::with_capacity(container_count + 1);
    containers.push(ContainerId::Root);
    for _ in 0..container_count {
        let tag = if format >= FORMAT_NAMED {
            reader.u8()?
        } else {
            TABLE_CREATED
        };
        containers.push(match tag {
            TABLE_CREATED => ContainerId::Created(dot(reader)?),
            TABLE_NAMED => {
                let parent = *containers
                    .get(reader.usize()?)
                    .ok_or(malformed("a named container's map comes after it"))?;
                let kind = kind_from(reader.u8()?)?;
                let key = std::str::from_utf8(reader.block()?)
                    .map_err(|_| malformed("a map key is not UTF-8"))?;
                ContainerId::Named(NamedId::derive(parent, key, kind))
            }
            TABLE_NAMED_DIGEST => {
                let mut digest = [0u8; 32];
                digest.copy_from_slice(reader.raw(32)?);
                ContainerId::Named(NamedId::from_bytes(digest))
            }
            _ => return Err(malformed("unknown kind of container table entry")),
        });
    }

    let mut shallow_part = None;
    if shallow {
        let entries = reader.count()?;
        let mut version = VersionVector::new();
        for _ in 0..entries {
            let r = replica(reader)?;
            let count = reader.varint()?;
            if count == 0 || version.get(r) != 0 {
                return Err(malformed("a base version is not canonical"));
            }
            version.advance(r, count);
        }
        let trimmed = if summary {
            let count = reader.count()?;
            let mut heads = Vec::with_capacity(count);
            for _ in 0..count {
                heads.push((replica(reader)?, reader.varint()?));
            }
            let count = reader.count()?;
            let mut anchors = Vec::with_capacity(count);
            for _ in 0..count {
                anchors.push((dot(reader)?, reader.varint()?));
            }
            TrimmedBase::Summary(BaseSummary { heads, anchors })
        } else {
            let count = reader.count()?;
            let mut trimmed = Vec::with_capacity(count);
            for _ in 0..count {
                trimmed.push(chain(reader)?);
            }
            TrimmedBase::Graph(trimmed)
        };
        shallow_part = Some(ShallowPart {
            version,
            trimmed,
            placements: Vec::new(),
        });
    }
    let change_count = reader.count()?;
    let mut changes = Vec::with_capacity(change_count);
    // Text inserts take their text from the block after the changes: remember where.
    let mut text_ops: Vec<(usize, usize)> = Vec::new();
    for change_index in 0..change_count {
        let mut change = chain(reader)?;
        let (change_replica, seq_start, len) = (change.replica, change.seq_start, change.len);
        let flags = reader.varint()?;
        if flags > (FLAG_STARTS | FLAG_MESSAGE | FLAG_TIMESTAMP) {
            return Err(malformed("unknown change flags"));
        }
        let meta = if flags & FLAG_STARTS != 0 {
            let message = if flags & FLAG_MESSAGE != 0 {
                Some(
                    String::from_utf8(reader.block()?.to_vec())
                        .map_err(|_| malformed("a change message is not UTF-8"))?,
                )
            } else {
                None
            };
            let timestamp = if flags & FLAG_TIMESTAMP != 0 {
                Some(reader.signed()?)
            } else {
                None
            };
            Some((message, timestamp))
        } else {
            None
        };
        let op_count = reader.count()?;
        let mut ops = Vec::with_capacity(op_count);
        let mut offset = 0usize;
        for _ in 0..op_count {
            let head = reader.varint()?;
            let op_len = usize::try_from(head >> OP_KIND_BITS)
                .map_err(|_| malformed("operation too long"))?;
            let end = offset
                .checked_add(op_len)
                .filter(|&end| end <= len && op_len > 0)
                .ok_or(malformed("operation outside its change"))?;
            let container = *containers
                .get(reader.usize()?)
                .ok_or(malformed("container index out of range"))?;
            let own = |i: usize| {
                Dot::new(
                    change_replica,
                    seq_start.saturating_add((offset + i) as u64),
                )
            };
            let body = match head & ((1 << OP_KIND_BITS) - 1) {
                OP_TEXT_INSERT => {
                    text_ops.push((change_index, ops.len()));
                    OpBody::TextInsert {
                        pos: reader.usize()?,
                        text: String::new(),
                    }
                }
                OP_LIST_INSERT => {
                    let pos = reader.usize()?;
                    if op_len > reader.remaining_len() {
                        return Err(LoadError::Truncated);
                    }
                    let mut values = Vec::with_capacity(op_len);
                    for i in 0..op_len {
                        values.push(
                            read_value(reader, own(i), None)?
                                .ok_or(malformed("a list element is missing"))?,
                        );
                    }
                    OpBody::ListInsert { pos, values }
                }
                OP_DELETE_FORWARD | OP_DELETE_BACKWARD => OpBody::SeqDelete {
                    pos: reader.usize()?,
                    forward: head & ((1 << OP_KIND_BITS) - 1) == OP_DELETE_FORWARD,
                },
                OP_MAP_SET => {
                    let key = String::from_utf8(reader.block()?.to_vec())
                        .map_err(|_| malformed("a map key is not UTF-8"))?;
                    if format < FORMAT_NAMED && reader.peek_rest().first() == Some(&9) {
                        return Err(malformed("unknown value tag"));
                    }
                    let value = read_value(reader, own(0), Some((container, &key)))?;
                    let pred_count = reader.count()?;
                    let mut pred = Vec::with_capacity(pred_count);
                    for _ in 0..pred_count {
                        pred.push(dot(reader)?);
                    }
                    OpBody::MapSet { key, value, pred }
                }
                OP_REGISTER_SET => {
                    let value = read_value(reader, own(0), None)?;
                    let pred_count = reader.count()?;
                    let mut pred = Vec::with_capacity(pred_count);
                    for _ in 0..pred_count {
                        pred.push(dot(reader)?);
                    }
                    OpBody::RegisterSet { value, pred }
                }
                OP_INCREMENT => OpBody::Increment {
                    by: reader.signed()?,
                },
                _ => return Err(malformed("unknown operation kind")),
            };
            ops.push(ChangeOp {
                offset,
                len: op_len,
                container,
                body,
            });
            offset = end;
        }
        change.meta = meta;
        change.ops = ops;
        changes.push(change);
    }
    let text = read_text(reader)?;
    let state = if snapshot {
        let count = reader.count()?;
        let mut state = Vec::with_capacity(count);
        let no_dot = Dot::new(ReplicaId::default(), 0);
        for _ in 0..count {
            let id = *containers
                .get(reader.usize()?)
                .ok_or(malformed("container index out of range"))?;
            let read_entries = |reader: &mut Reader<'_>| -> Result<Vec<(Dot, Value)>, LoadError> {
                let n = reader.count()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let at = dot(reader)?;
                    let value = read_value_in(reader, no_dot, &containers)?
                        .ok_or(malformed("a state entry has no value"))?;
                    entries.push((at, value));
                }
                Ok(entries)
            };
            let content = match kind_from(reader.u8()?)? {
                ContainerKind::Map => {
                    let keys = reader.count()?;
                    let mut map = Vec::with_capacity(keys);
                    for _ in 0..keys {
                        let key = String::from_utf8(reader.block()?.to_vec())
                            .map_err(|_| malformed("a map key is not UTF-8"))?;
                        map.push((key, read_entries(reader)?));
                    }
                    StateContent::Map(map)
                }
                ContainerKind::List => {
                    let n = reader.count()?;
                    let mut values = Vec::with_capacity(n);
                    for _ in 0..n {
                        values.push(
                            read_value_in(reader, no_dot, &containers)?
                                .ok_or(malformed("a list element is missing"))?,
                        );
                    }
                    StateContent::List(values)
                }
                ContainerKind::Text => StateContent::Text(read_text(reader)?),
                ContainerKind::Counter => StateContent::Counter(reader.signed()?),
                ContainerKind::Register => StateContent::Register(read_entries(reader)?),
            };
            state.push((id, content));
        }
        Some(state)
    } else {
        None
    };
    if let Some(part) = &mut shallow_part {
        let count = reader.count()?;
        for _ in 0..count {
            let mut container = || -> Result<ContainerId, LoadError> {
                containers
                    .get(reader.usize()?)
                    .copied()
                    .ok_or(malformed("container index out of range"))
            };
            let id = container()?;
            let parent = container()?;
            let key = match reader.u8()? {
                0 => None,
                1 => Some(
                    String::from_utf8(reader.block()?.to_vec())
                        .map_err(|_| malformed("a map key is not UTF-8"))?,
                ),
                _ => return Err(malformed("unknown placement key flag")),
            };
            part.placements.push((id, parent, key));
        }
    }
    if !reader.is_empty() {
        return Err(malformed("unexpected bytes after the changes"));
    }
    let mut rest = text.as_str();
    for (change, op) in text_ops {
        let op = &mut changes[change].ops[op];
        let split = rest
            .char_indices()
            .nth(op.len)
            .map_or(rest.len(), |(b, _)| b);
        let (inserted, tail) = rest.split_at(split);
        if let OpBody::TextInsert { text, .. } = &mut op.body {
            *text = inserted.to_owned();
        }
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(malformed("inserted text left over"));
    }
    Ok(Decoded {
        changes,
        state,
        shallow: shallow_part,
    })
}

fn read_text(reader: &mut Reader<'_>) -> Result<String, LoadError> {
    let bytes = read_block(reader).map_err(|e| match e {
        crate::bytes::BlockError::Read(e) => LoadError::from(e),
        crate::bytes::BlockError::Corrupt(why) => malformed(why),
    })?;
    String::from_utf8(bytes).map_err(|_| malformed("text is not UTF-8"))
}

/// The content of every container of `containers`, sorted by id (deterministic output).
pub(crate) fn state_of(
    containers: &HashMap<ContainerId, Container>,
    dot_of: impl Fn(crate::causal_graph::Lv) -> Dot,
) -> Vec<(ContainerId, StateContent)> {
    let entries = |entries: &super::state::Entries| -> Vec<(Dot, Value)> {
        entries
            .iter()
            .map(|e| (dot_of(e.lv), e.value.clone()))
            .collect()
    };
    let mut state: Vec<(ContainerId, StateContent)> = containers
        .iter()
        .map(|(id, container)| {
            let content = match container {
                Container::Map(keys) => {
                    StateContent::Map(keys.iter().map(|(k, e)| (k.clone(), entries(e))).collect())
                }
                Container::List(seq) => StateContent::List(seq.doc.clone()),
                Container::Text(seq) => StateContent::Text(seq.doc.to_string()),
                Container::Counter(value) => StateContent::Counter(*value),
                Container::Register(e) => StateContent::Register(entries(e)),
            };
            (*id, content)
        })
        .collect();
    state.sort_by_key(|(id, _)| *id);
    state
}

/// The kind of a container whose content is `content`.
fn kind_of(content: &StateContent) -> ContainerKind {
    match content {
        StateContent::Map(_) => ContainerKind::Map,
        StateContent::List(_) => ContainerKind::List,
        StateContent::Text(_) => ContainerKind::Text,
        StateContent::Counter(_) => ContainerKind::Counter,
        StateContent::Register(_) => ContainerKind::Register,
    }
}

/// Shallow snapshots: the state, plus the history after a version only.
impl Document {
    /// The document's current state with only the history after `version`, encoded: a
    /// *shallow snapshot*, for a fast first load and small storage. [`Document::load`] and
    /// [`apply_update`](Document::apply_update) read it.
    ///
    /// The loaded document reads, edits, syncs and encodes (again shallow) like any other, as
    /// long as nothing needs the trimmed history: a change made concurrently with the events
    /// of `version` (not descending from all of them) is refused with
    /// [`LoadError::HistoryTrimmed`], and so are history operations on versions that do not
    /// include `version` (or that replay the history: `view_at` at an earlier version,
    /// `fork_at`, `diff`, `revert_to`) with [`HistoryError::HistoryTrimmed`]. Of the trimmed
    /// changes the snapshot keeps a summary (how many events each replica made, the heads,
    /// the Lamport timestamps of the writes the state holds: a few bytes per replica and per
    /// write) and where containers were created.
    ///
    /// `version` must be a version of this document that every event after it descends from,
    /// as a version all replicas had reached before editing on is (the current
    /// [`version`](Document::version) always is: a snapshot of the state only); otherwise
    /// [`HistoryError::ConcurrentWithVersion`]. A document that is itself shallow can only
    /// trim further ([`HistoryError::HistoryTrimmed`] for a version without its base).
    ///
    /// ```
    /// use crdt_core::{Document, LoadError, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "body").unwrap();
    /// doc.text_insert(text, 0, "Hello").unwrap();
    /// let mut peer = doc.fork(ReplicaId::from_u128(2));
    /// let synced = doc.version();
    /// doc.text_insert(text, 5, ", world").unwrap();
    ///
    /// let shallow = doc.encode_shallow(&synced).unwrap();
    /// let mut loaded = Document::load(&shallow, ReplicaId::from_u128(3)).unwrap();
    /// assert_eq!(loaded.text(text).unwrap(), "Hello, world");
    ///
    /// // Concurrent edits after the base merge as usual.
    /// peer.text_insert(text, 0, ">> ").unwrap();
    /// loaded.apply_update(&peer.update_since(&synced)).unwrap();
    /// assert_eq!(loaded.text(text).unwrap(), ">> Hello, world");
    ///
    /// // A change made before the base was reached needs the trimmed history.
    /// let mut old = Document::new(ReplicaId::from_u128(4));
    /// old.set(MapId::ROOT, "late", true).unwrap();
    /// assert!(matches!(
    ///     loaded.apply_update(&old.update_since(&Default::default())),
    ///     Err(LoadError::HistoryTrimmed { .. })
    /// ));
    /// ```
    pub fn encode_shallow(&self, version: &VersionVector) -> Result<Vec<u8>, HistoryError> {
        self.check_version(version)?;
        self.check_shallow_base(version)?;
        // The containers whose place is within the base: those created in it, and the named
        // containers of maps there (shallowest first, so that each map is decided before the
        // names in it).
        let mut placed: HashSet<ContainerId> = self
            .placements
            .keys()
            .filter(|id| matches!(id, ContainerId::Created(dot) if version.contains(*dot)))
            .copied()
            .collect();
        let mut named: Vec<(&ContainerId, &Placement)> = self
            .placements
            .iter()
            .filter(|(id, _)| matches!(id, ContainerId::Named(_)))
            .collect();
        named.sort_by_key(|(_, placement)| placement.depth);
        for (id, placement) in named {
            if placement.parent == ContainerId::Root || placed.contains(&placement.parent) {
                placed.insert(*id);
            }
        }
        let mut placements: Vec<(ContainerId, ContainerId, Option<String>)> = self
            .placements
            .iter()
            .filter(|(id, _)| placed.contains(id))
            .map(|(id, placement)| (*id, placement.parent, placement.key.clone()))
            .collect();
        placements.sort_by_key(|(id, _, _)| *id);
        let state = state_of(&self.containers, |lv| self.graph.lv_to_dot(lv));
        let summary = self.base_summary(version, &state, &placements);
        let shallow = ShallowOut {
            version,
            summary: &summary,
            placements: &placements,
        };
        Ok(encode_with(
            self,
            &self.wire_changes(version, None),
            Some(&state),
            Some(shallow),
        ))
    }

    /// What a shallow snapshot at `version` keeps of the events within it: the heads of
    /// `version` and the Lamport timestamps of the events within it that `state` and
    /// `placements` refer to (the only timestamps a loaded document reads: they rank map and
    /// register writes and order container creations).
    fn base_summary(
        &self,
        version: &VersionVector,
        state: &[(ContainerId, StateContent)],
        placements: &[(ContainerId, ContainerId, Option<String>)],
    ) -> BaseSummary {
        let lamport = |dot: Dot| {
            self.graph
                .dot_to_lv(dot)
                .map_or(0, |lv| self.graph.lamport_of(lv))
        };
        let head_dots = self
            .graph
            .frontier_to_dots(&self.graph.frontier_of(version));
        let mut anchors: Vec<Dot> = placements
            .iter()
            .filter_map(|(id, _, _)| match id {
                ContainerId::Created(dot) => Some(*dot),
                ContainerId::Root | ContainerId::Named(_) => None,
            })
            .collect();
        for (_, content) in state {
            let entries: Vec<&(Dot, Value)> = match content {
                StateContent::Map(keys) => keys.iter().flat_map(|(_, e)| e).collect(),
                StateContent::Register(entries) => entries.iter().collect(),
                _ => Vec::new(),
            };
            anchors.extend(entries.into_iter().map(|(dot, _)| *dot));
        }
        anchors.retain(|dot| version.contains(*dot) && !head_dots.contains(dot));
        anchors.sort_unstable();
        anchors.dedup();
        let mut heads: Vec<(ReplicaId, u64)> = head_dots
            .iter()
            .map(|&dot| (dot.replica, lamport(dot)))
            .collect();
        heads.sort_unstable();
        BaseSummary {
            heads,
            anchors: anchors.into_iter().map(|dot| (dot, lamport(dot))).collect(),
        }
    }

    /// Rebuilds the base of a shallow snapshot from its summary, as a graph whose structure
    /// within the base is made up but whose answers are the ones a shallow document asks:
    ///
    /// - every event of the base has a local version (so dots within it name events);
    /// - the base's frontier is its real heads, with their real Lamport timestamps (new events
    ///   take their parents and timestamps from them, exactly as on a replica holding the
    ///   whole history);
    /// - the events the state and placements refer to have their real Lamport timestamps;
    /// - a new event whose parents are in the base descends from all of it exactly when its
    ///   parents include every head (true of the real graph too, since heads are maximal).
    ///
    /// The made-up part: each replica's other events form one chain, the replicas' chains
    /// follow each other, and the heads follow the end of it, each its own run. Nothing reads
    /// the structure below the heads (history operations before the base are refused).
    fn install_base_summary(
        &mut self,
        version: &VersionVector,
        BaseSummary { heads, anchors }: &BaseSummary,
    ) -> Result<(), LoadError> {
        let bad = || malformed("a shallow base summary is inconsistent");
        // Canonical: heads sorted by replica without repeats, anchors sorted without repeats.
        if heads.windows(2).any(|w| w[0].0 >= w[1].0)
            || anchors.windows(2).any(|w| w[0].0 >= w[1].0)
            || heads.is_empty() != version.is_empty()
        {
            return Err(bad());
        }
        let mut total: usize = 0;
        for (_, count) in version.iter() {
            total = usize::try_from(count)
                .ok()
                .and_then(|count| total.checked_add(count))
                .filter(|&total| total <= MAX_TRIMMED_EVENTS)
                .ok_or(malformed("too many trimmed events"))?;
        }
        let head_of =
            |replica: ReplicaId| heads.binary_search_by_key(&replica, |&(r, _)| r).is_ok();
        for &(replica, lamport) in heads {
            if version.get(replica) == 0 || lamport == 0 || lamport > MAX_BASE_LAMPORT {
                return Err(bad());
            }
        }
        for &(dot, lamport) in anchors {
            let last = version.get(dot.replica);
            let is_head = head_of(dot.replica) && dot.counter == last;
            if dot.counter == 0 || dot.counter > last || is_head || lamport > MAX_BASE_LAMPORT {
                return Err(bad());
            }
        }
        let graph_error = |e| LoadError::from(ApplyError::from(e));
        let mut previous = Frontier::root();
        let push = |graph: &mut crate::causal_graph::CausalGraph,
                    replica: ReplicaId,
                    from: u64,
                    to: u64,
                    lamport: u64,
                    parents: &Frontier|
         -> Result<Frontier, LoadError> {
            // `from..=to`, at most `total` events: fits a usize.
            let len = usize::try_from(to + 1 - from).map_err(|_| bad())?;
            let span = graph
                .add_base_run(replica, from, len, parents, lamport)
                .map_err(graph_error)?;
            Ok(Frontier::single(span.end - 1))
        };
        for (replica, count) in version.iter() {
            let chain_end = if head_of(replica) { count - 1 } else { count };
            // Anchors are sorted by dot: this replica's are one stretch.
            let first = anchors.partition_point(|(d, _)| d.replica < replica);
            let end = anchors.partition_point(|(d, _)| d.replica <= replica);
            let mut next = 1;
            for &(dot, lamport) in &anchors[first..end] {
                if next < dot.counter {
                    previous = push(
                        &mut self.graph,
                        replica,
                        next,
                        dot.counter - 1,
                        0,
                        &previous,
                    )?;
                }
                previous = push(
                    &mut self.graph,
                    replica,
                    dot.counter,
                    dot.counter,
                    lamport,
                    &previous,
                )?;
                next = dot.counter + 1;
            }
            if next <= chain_end {
                previous = push(&mut self.graph, replica, next, chain_end, 0, &previous)?;
            }
        }
        for &(replica, lamport) in heads {
            let last = version.get(replica);
            push(&mut self.graph, replica, last, last, lamport, &previous)?;
        }
        Ok(())
    }

    /// The version this document's history was trimmed at, if it was loaded from a shallow
    /// snapshot (see [`encode_shallow`](Self::encode_shallow)).
    ///
    /// ```
    /// use crdt_core::{Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// assert_eq!(doc.shallow_base(), None);
    /// let shallow = doc.encode_shallow(&doc.version()).unwrap();
    /// let loaded = Document::load(&shallow, ReplicaId::from_u128(1)).unwrap();
    /// assert_eq!(loaded.shallow_base(), Some(&doc.version()));
    /// ```
    pub fn shallow_base(&self) -> Option<&VersionVector> {
        self.graph.shallow_base().map(|base| &base.version)
    }

    /// Like [`update_since`](Self::update_since), refusing a version that lacks part of this
    /// (shallow) document's base: the changes such a replica needs are trimmed here.
    /// `update_since` itself returns the shallow snapshot then ([`encode`](Self::encode)),
    /// which an empty replica loads and any other refuses with [`LoadError::HistoryTrimmed`].
    ///
    /// ```
    /// use crdt_core::{Document, HistoryError, MapId, ReplicaId, VersionVector};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// doc.set(MapId::ROOT, "k", 1).unwrap();
    /// let base = doc.version();
    /// let mut loaded = Document::load(&doc.encode_shallow(&base).unwrap(), ReplicaId::from_u128(2)).unwrap();
    /// loaded.set(MapId::ROOT, "k", 2).unwrap();
    /// assert!(loaded.try_update_since(&base).is_ok());
    /// assert!(matches!(
    ///     loaded.try_update_since(&VersionVector::new()),
    ///     Err(HistoryError::HistoryTrimmed { .. })
    /// ));
    /// ```
    pub fn try_update_since(&self, version: &VersionVector) -> Result<Vec<u8>, HistoryError> {
        if let Some(base) = self.graph.shallow_base()
            && !version.includes(&base.version)
        {
            return Err(HistoryError::HistoryTrimmed {
                base: base.version.clone(),
            });
        }
        Ok(self.update_since(version))
    }

    /// `version` joined with this document's shallow base: what to send changes since (the
    /// changes within the base have no operations here).
    pub(super) fn sendable_since(&self, version: &VersionVector) -> VersionVector {
        let mut since = version.clone();
        if let Some(base) = self.graph.shallow_base() {
            since.merge(&base.version);
        }
        since
    }

    /// Checks that every event outside `version` (a version of this document) descends from
    /// all of it.
    fn check_shallow_base(&self, version: &VersionVector) -> Result<(), HistoryError> {
        match self.first_run_not_descending_from(version) {
            Some(run) => Err(HistoryError::ConcurrentWithVersion {
                event: self.graph.lv_to_dot(run.span.start),
            }),
            None => Ok(()),
        }
    }

    /// The first run of events outside `version` (a version of this document) whose parents
    /// are all inside it but are not all of its heads: events that do not descend from all of
    /// `version`. Shallow snapshots and compaction both need there to be none.
    pub(super) fn first_run_not_descending_from(
        &self,
        version: &VersionVector,
    ) -> Option<GraphRun> {
        let inside = |lv: Lv| version.contains(self.graph.lv_to_dot(lv));
        let mut heads = Frontier::root();
        for span in self
            .graph
            .spans_between(&VersionVector::new(), Some(version))
        {
            for run in self.graph.runs_in(span) {
                heads.advance(run.parents.as_slice(), run.span.end - 1);
            }
        }
        self.graph
            .spans_between(version, None)
            .into_iter()
            .flat_map(|span| self.graph.runs_in(span))
            .find(|run| {
                let parents = run.parents.as_slice();
                parents.iter().all(|&p| inside(p)) && parents != heads.as_slice()
            })
    }

    /// Places the containers of a shallow snapshot's base (already created from its state)
    /// where its placements say, walking down from the root so that every parent is placed
    /// (and its depth known) before its children. A placement the walk never reaches (a
    /// cycle, a parent outside the base) is refused.
    fn place_base_containers(&mut self, shallow: &ShallowPart) -> Result<(), LoadError> {
        let impossible = || malformed("a container placement is impossible");
        let mut children: HashMap<ContainerId, Vec<(ContainerId, Option<&String>)>> =
            HashMap::new();
        for (id, parent, key) in &shallow.placements {
            children
                .entry(*parent)
                .or_default()
                .push((*id, key.as_ref()));
        }
        let rank = |doc: &Document, id: &ContainerId| match id {
            ContainerId::Root => Some(0),
            ContainerId::Created(dot) => {
                doc.graph.dot_to_lv(*dot).map(|lv| doc.graph.lamport_of(lv))
            }
            ContainerId::Named(_) => None,
        };
        let mut placed = 0;
        let mut stack = vec![ContainerId::Root];
        while let Some(parent) = stack.pop() {
            let Some(kids) = children.remove(&parent) else {
                continue;
            };
            let parent_kind = self.containers.get(&parent).map(Container::kind);
            for (id, key) in kids {
                let fits = match parent_kind {
                    Some(ContainerKind::Map) => key.is_some(),
                    Some(ContainerKind::List) => key.is_none(),
                    _ => false,
                };
                // A created container is created after its parent.
                let ordered = match (rank(self, &parent), rank(self, &id)) {
                    (Some(p), Some(c)) => p < c,
                    _ => true,
                };
                let kind = self.containers.get(&id).map(Container::kind);
                // A named container is at the place its id is derived from.
                let named_here = match (id, key, kind) {
                    (ContainerId::Named(named), Some(key), Some(kind)) => {
                        named == NamedId::derive(parent, key, kind)
                    }
                    (ContainerId::Named(_), _, _) => false,
                    _ => true,
                };
                if kind.is_none() || !fits || !ordered || !named_here {
                    return Err(impossible());
                }
                let depth = self.depth_of(parent) + 1;
                if depth > self.max_depth {
                    return Err(LoadError::TooDeep {
                        limit: self.max_depth,
                    });
                }
                let placement = Placement {
                    parent,
                    key: key.cloned(),
                    depth,
                };
                if self.placements.insert(id, placement).is_some() {
                    return Err(malformed("a container placement appears twice"));
                }
                placed += 1;
                stack.push(id);
            }
        }
        if placed != shallow.placements.len() {
            return Err(impossible());
        }
        Ok(())
    }

    /// Applies a decoded shallow snapshot: loads it into an empty document; into one holding
    /// its base, applies its changes after the base.
    pub(super) fn apply_shallow(&mut self, decoded: Decoded) -> Result<usize, LoadError> {
        let (Some(shallow), Some(state)) = (&decoded.shallow, &decoded.state) else {
            return Err(malformed("a shallow snapshot without its state"));
        };
        if self.graph.len() != 0 {
            if !self.version().includes(&shallow.version) {
                return Err(LoadError::HistoryTrimmed {
                    base: shallow.version.clone(),
                });
            }
            return self.apply_decoded(&decoded.changes);
        }
        let mut fresh = self.empty_like(self.replica);
        fresh.install_shallow(&decoded.changes, state, shallow)?;
        Ok(self.adopt_installed(fresh))
    }

    /// Builds this (empty) document from a shallow snapshot: the base's graph, the containers
    /// created within it, then the changes after it and the state as for a full snapshot.
    fn install_shallow(
        &mut self,
        changes: &[Change],
        state: &[(ContainerId, StateContent)],
        shallow: &ShallowPart,
    ) -> Result<(), LoadError> {
        let trimmed = match &shallow.trimmed {
            TrimmedBase::Graph(trimmed) => trimmed.as_slice(),
            TrimmedBase::Summary(summary) => {
                self.install_base_summary(&shallow.version, summary)?;
                &[]
            }
        };
        for change in trimmed {
            // Lengths cost no bytes: bound them so local versions never overflow.
            if self
                .graph
                .len()
                .checked_add(change.len)
                .is_none_or(|end| end > MAX_TRIMMED_EVENTS)
            {
                return Err(malformed("too many trimmed events"));
            }
            let new = self
                .graph
                .add_remote(
                    change.replica,
                    change.seq_start,
                    change.len,
                    &change.parents,
                )
                .map_err(|e| LoadError::from(ApplyError::from(e)))?;
            if change.len == 0 || new.len() != change.len {
                return Err(malformed("the trimmed events overlap"));
            }
        }
        let known = self.graph.version_vector();
        if !known.includes(&shallow.version) || !shallow.version.includes(&known) {
            return Err(malformed("the trimmed events are not the base version"));
        }
        self.graph.set_shallow_base();
        let named_in_base: HashSet<ContainerId> = shallow
            .placements
            .iter()
            .map(|(id, _, _)| *id)
            .filter(|id| matches!(id, ContainerId::Named(_)))
            .collect();
        let in_base = |id: &ContainerId| match id {
            ContainerId::Created(dot) => shallow.version.contains(*dot),
            ContainerId::Named(_) => named_in_base.contains(id),
            ContainerId::Root => false,
        };
        for (id, content) in state {
            if in_base(id)
                && self
                    .containers
                    .insert(*id, Container::new(kind_of(content)))
                    .is_some()
            {
                return Err(malformed("a container's state appears twice"));
            }
        }
        self.place_base_containers(shallow)?;
        if self.placements.len() + 1 != self.containers.len() {
            return Err(malformed("a container of the base has no placement"));
        }
        self.install_snapshot(changes, state)
    }
}

#[cfg(test)]
mod forged_lengths {
    //! Lengths cost a varint each, whatever they say: a forged update claiming billions of
    //! events must be refused cleanly (no overflow, no allocation per claimed event).

    use super::super::change::OpBody;
    use super::*;
    use crate::{MapId, ReplicaId, VersionVector};

    /// A document with a text "abcdef", and the update of a remote replica deleting "cd",
    /// as wire changes.
    fn base_and_delete() -> (Document, Vec<Change>) {
        let mut doc = Document::new(ReplicaId::from_u128(1));
        let text = doc.replace_with_new_text(MapId::ROOT, "t").expect("a map");
        doc.text_insert(text, 0, "abcdef").expect("in range");
        let mut remote = doc.fork(ReplicaId::from_u128(2));
        let since = remote.version();
        remote.text_delete(text, 2..4).expect("in range");
        let changes = remote.wire_changes(&since, None);
        (doc, changes)
    }

    #[test]
    fn huge_change_and_delete_lengths_are_refused_and_change_nothing() {
        for huge in [
            1usize << 40,
            usize::MAX >> 2,
            usize::MAX / 2,
            usize::MAX - 1,
            usize::MAX,
        ] {
            for which in 0..5 {
                let (mut doc, mut changes) = base_and_delete();
                let before = (doc.to_json(), doc.version(), doc.history_len());
                let change = &mut changes[0];
                assert!(matches!(change.ops[0].body, OpBody::SeqDelete { .. }));
                match which {
                    // The change and its one delete claim `huge` events.
                    0 => {
                        change.len = huge;
                        change.ops[0].len = huge;
                    }
                    // The change is huge, its delete is not: events without operations.
                    1 => change.len = huge,
                    // A huge sequence number start.
                    2 => change.seq_start = u64::MAX - 1,
                    // An insert claiming `huge` chars with one char of text.
                    3 => {
                        change.len = huge;
                        change.ops[0].len = huge;
                        change.ops[0].body = OpBody::TextInsert {
                            pos: 0,
                            text: "x".into(),
                        };
                    }
                    // A list insert claiming `huge` values into the text.
                    _ => {
                        change.len = huge;
                        change.ops[0].len = huge;
                        change.ops[0].body = OpBody::ListInsert {
                            pos: 0,
                            values: vec![Value::Null],
                        };
                    }
                }
                let bytes = encode(&doc, &changes, None);
                let result = doc.apply_update(&bytes);
                assert!(result.is_err(), "{huge} / {which}: {result:?}");
                assert_eq!(
                    (doc.to_json(), doc.version(), doc.history_len()),
                    before,
                    "{huge} / {which}"
                );
                // The document still works.
                let mut other = Document::new(ReplicaId::from_u128(3));
                other
                    .apply_update(&doc.update_since(&VersionVector::new()))
                    .expect("its own update applies");
                assert_eq!(other.to_json(), doc.to_json());
            }
        }
    }
}
