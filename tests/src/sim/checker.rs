//! The verdict on a run: once faults stop and the network heals, every replica holds the same
//! state, no change any node persisted is missing, and no node met an error or broke an
//! invariant.

use std::collections::BTreeMap;
use std::fmt;

use crdt_core::VersionVector;

use super::node::{NodeId, NodeReport};

/// One thing that went wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Violation {
    /// A node met an error a correct system never produces.
    NodeError {
        /// Where.
        node: NodeId,
        /// What.
        error: String,
    },
    /// A document breaks an invariant.
    Invariant {
        /// Where.
        node: NodeId,
        /// Which document.
        doc: String,
        /// What.
        what: String,
    },
    /// Two nodes hold different versions or states of a document.
    Diverged {
        /// The document.
        doc: String,
        /// The first node holding it.
        first: NodeId,
        /// A node holding something else.
        other: NodeId,
        /// How they differ.
        detail: String,
    },
    /// A node lacks changes that some node had persisted.
    LostChanges {
        /// Where.
        node: NodeId,
        /// The document.
        doc: String,
        /// Everything persisted at some point, by any node.
        persisted: VersionVector,
        /// What the node has.
        has: VersionVector,
    },
    /// A node that should be up holds nothing.
    Down {
        /// Which.
        node: NodeId,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NodeError { node, error } => write!(f, "{node}: error: {error}"),
            Violation::Invariant { node, doc, what } => {
                write!(f, "{node}: document {doc:?} breaks an invariant: {what}")
            }
            Violation::Diverged {
                doc,
                first,
                other,
                detail,
            } => write!(
                f,
                "document {doc:?}: {first} and {other} diverged: {detail}"
            ),
            Violation::LostChanges {
                node,
                doc,
                persisted,
                has,
            } => write!(
                f,
                "{node}: document {doc:?} lost persisted changes: persisted {persisted:?}, has {has:?}"
            ),
            Violation::Down { node } => write!(f, "{node} is down after the run settled"),
        }
    }
}

/// Checks the final reports of every node against what was persisted during the run (per
/// document, the union of every version any node declared durable).
pub fn check(
    reports: &[NodeReport],
    persisted: &BTreeMap<String, VersionVector>,
) -> Result<(), Vec<Violation>> {
    let mut violations = Vec::new();
    // The first holder of each document is the reference the others are compared with.
    let mut reference: BTreeMap<&str, (NodeId, &VersionVector, &str)> = BTreeMap::new();
    for report in reports {
        for error in &report.errors {
            violations.push(Violation::NodeError {
                node: report.node,
                error: error.clone(),
            });
        }
        for doc in &report.documents {
            for what in &doc.violations {
                violations.push(Violation::Invariant {
                    node: report.node,
                    doc: doc.name.clone(),
                    what: what.clone(),
                });
            }
            if let Some(persisted) = persisted.get(&doc.name)
                && !doc.version.includes(persisted)
            {
                violations.push(Violation::LostChanges {
                    node: report.node,
                    doc: doc.name.clone(),
                    persisted: persisted.clone(),
                    has: doc.version.clone(),
                });
            }
            match reference.get(doc.name.as_str()) {
                None => {
                    reference.insert(&doc.name, (report.node, &doc.version, &doc.canonical));
                }
                Some((first, version, form)) => {
                    let detail = if **version != doc.version {
                        Some(format!("versions {version:?} and {:?}", doc.version))
                    } else if *form != doc.canonical {
                        Some(format!(
                            "same version, different states:\n  {form}\n  {}",
                            doc.canonical
                        ))
                    } else {
                        None
                    };
                    if let Some(detail) = detail {
                        violations.push(Violation::Diverged {
                            doc: doc.name.clone(),
                            first: *first,
                            other: report.node,
                            detail,
                        });
                    }
                }
            }
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::node::DocReport;
    use crdt_core::ReplicaId;

    fn report(node: u32, counts: &[(u128, u64)], form: &str) -> NodeReport {
        let mut version = VersionVector::new();
        for (replica, count) in counts {
            version.advance(ReplicaId::from_u128(*replica), *count);
        }
        NodeReport {
            node: NodeId(node),
            documents: vec![DocReport {
                name: "d".into(),
                version,
                canonical: form.into(),
                violations: Vec::new(),
            }],
            errors: Vec::new(),
        }
    }

    fn persisted(counts: &[(u128, u64)]) -> BTreeMap<String, VersionVector> {
        let mut version = VersionVector::new();
        for (replica, count) in counts {
            version.advance(ReplicaId::from_u128(*replica), *count);
        }
        BTreeMap::from([("d".to_owned(), version)])
    }

    #[test]
    fn equal_replicas_pass() {
        let reports = [report(0, &[(1, 2)], "x"), report(1, &[(1, 2)], "x")];
        assert_eq!(check(&reports, &persisted(&[(1, 2)])), Ok(()));
    }

    #[test]
    fn different_versions_or_states_fail() {
        let reports = [report(0, &[(1, 2)], "x"), report(1, &[(1, 1)], "x")];
        assert!(matches!(
            check(&reports, &BTreeMap::new())
                .as_ref()
                .map_err(Vec::as_slice),
            Err([Violation::Diverged { .. }])
        ));
        let reports = [report(0, &[(1, 2)], "x"), report(1, &[(1, 2)], "y")];
        assert!(matches!(
            check(&reports, &BTreeMap::new())
                .as_ref()
                .map_err(Vec::as_slice),
            Err([Violation::Diverged { .. }])
        ));
    }

    #[test]
    fn a_persisted_change_missing_everywhere_fails() {
        let reports = [report(0, &[(1, 2)], "x"), report(1, &[(1, 2)], "x")];
        let outcome = check(&reports, &persisted(&[(1, 2), (2, 1)]));
        assert!(matches!(
            outcome.as_ref().map_err(Vec::as_slice),
            Err([Violation::LostChanges { .. }, ..])
        ));
    }

    #[test]
    fn node_errors_and_invariants_fail() {
        let mut broken = report(0, &[], "x");
        broken.errors.push("boom".into());
        broken.documents[0].violations.push("bad index".into());
        let outcome = check(&[broken], &BTreeMap::new());
        assert!(matches!(
            outcome.as_ref().map_err(Vec::as_slice),
            Err([Violation::NodeError { .. }, Violation::Invariant { .. }])
        ));
    }
}
