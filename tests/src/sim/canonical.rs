//! A document's state in a canonical text form, and the invariants read along the way.
//!
//! Two replicas hold the same state exactly when their canonical forms are equal: the form
//! shows every container with its id, every concurrent write kept as a conflict, and nothing
//! replica-private (local versions, the order events arrived in).

use std::fmt::Write;

use crdt_core::{
    ContainerId, ContainerKind, CounterId, Document, ListId, MapId, RegisterId, TextId, Value,
};

/// The canonical form of `doc`, and the invariants it breaks (none, when all is well).
pub fn canonical(doc: &Document) -> (String, Vec<String>) {
    let mut reader = Reader {
        doc,
        out: String::new(),
        violations: Vec::new(),
        visited: 0,
    };
    let events: u64 = doc.version().iter().map(|(_, count)| count).sum();
    if events != doc.history_len() as u64 {
        reader.violations.push(format!(
            "the version counts {events} events, the history holds {}",
            doc.history_len()
        ));
    }
    reader.container(ContainerKind::Map, ContainerId::Root, 0);
    (reader.out, reader.violations)
}

struct Reader<'a> {
    doc: &'a Document,
    out: String,
    violations: Vec<String>,
    visited: usize,
}

impl Reader<'_> {
    fn value(&mut self, value: &Value, depth: usize) {
        match value.as_container() {
            Some((kind, id)) => self.container(kind, id, depth + 1),
            None => {
                let _ = write!(self.out, "{value:?}");
            }
        }
    }

    fn values(&mut self, values: &[&Value], depth: usize) {
        self.out.push('[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.value(value, depth);
        }
        self.out.push(']');
    }

    fn container(&mut self, kind: ContainerKind, id: ContainerId, depth: usize) {
        self.visited += 1;
        if depth > 64 || self.visited > 100_000 {
            self.violations
                .push(format!("container {id:?} is nested absurdly deep"));
            return;
        }
        if self.doc.kind_of(id) != Some(kind) {
            self.violations.push(format!(
                "a value names container {id:?} as a {kind:?}, the document says {:?}",
                self.doc.kind_of(id)
            ));
        }
        let doc = self.doc;
        let _ = write!(self.out, "{kind:?}@{id:?}");
        match kind {
            ContainerKind::Map => match doc.keys(MapId(id)) {
                Ok(keys) => {
                    self.out.push('{');
                    for key in keys {
                        let _ = write!(self.out, "{key:?}: ");
                        match doc.get_conflicts(MapId(id), key) {
                            Ok(values) if !values.is_empty() => self.values(&values, depth),
                            Ok(_) => self
                                .violations
                                .push(format!("map {id:?} lists key {key:?} without a value")),
                            Err(e) => self.violations.push(format!("map {id:?}: {e}")),
                        }
                        self.out.push_str("; ");
                    }
                    self.out.push('}');
                }
                Err(e) => self.violations.push(format!("map {id:?}: {e}")),
            },
            ContainerKind::List => match doc.list(ListId(id)) {
                Ok(items) => {
                    if doc.list_len(ListId(id)).ok() != Some(items.len()) {
                        self.violations
                            .push(format!("list {id:?}: its length is not its item count"));
                    }
                    let items: Vec<&Value> = items.iter().collect();
                    self.values(&items, depth);
                }
                Err(e) => self.violations.push(format!("list {id:?}: {e}")),
            },
            ContainerKind::Text => match doc.text(TextId(id)) {
                Ok(text) => {
                    if doc.text_len(TextId(id)).ok() != Some(text.chars().count()) {
                        self.violations
                            .push(format!("text {id:?}: its length is not its char count"));
                    }
                    if doc.text_len_utf16(TextId(id)).ok() != Some(text.encode_utf16().count()) {
                        self.violations
                            .push(format!("text {id:?}: its UTF-16 length is wrong"));
                    }
                    let _ = write!(self.out, "{text:?}");
                }
                Err(e) => self.violations.push(format!("text {id:?}: {e}")),
            },
            ContainerKind::Counter => match doc.counter(CounterId(id)) {
                Ok(value) => {
                    let _ = write!(self.out, "={value}");
                }
                Err(e) => self.violations.push(format!("counter {id:?}: {e}")),
            },
            ContainerKind::Register => match doc.register_conflicts(RegisterId(id)) {
                Ok(values) => self.values(&values, depth),
                Err(e) => self.violations.push(format!("register {id:?}: {e}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;
    use crdt_core::{Document, MapId, ReplicaId};

    #[test]
    fn the_canonical_form_shows_conflicts_and_ignores_arrival_order() {
        let mut a = Document::new(ReplicaId::from_u128(1));
        let mut b = Document::new(ReplicaId::from_u128(2));
        a.set(MapId::ROOT, "k", 1).unwrap();
        b.set(MapId::ROOT, "k", 2).unwrap();
        let text = b.replace_with_new_text(MapId::ROOT, "t").unwrap();
        b.text_insert(text, 0, "hé").unwrap();
        // Each replica after receiving the other's change: copies that only merge, never edit.
        let (mut ab, mut ba) = (a.duplicate_same_replica(), b.duplicate_same_replica());
        ab.merge(&b).unwrap();
        ba.merge(&a).unwrap();
        let (form, violations) = canonical(&ab);
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!(canonical(&ba).0, form);
        assert!(form.contains("Int(1)") && form.contains("Int(2)"), "{form}");
        assert_ne!(canonical(&a).0, form);
    }
}
