//! Counters, gauges and a latency histogram, rendered in the Prometheus text format at `/metrics`.
//!
//! Plain atomics: updating a metric is one relaxed atomic add, cheap enough for every frame.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Why the server refused a connection or a request; a label of `sync_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Too many connections in all (HTTP 503).
    Overloaded,
    /// Too many connections from one IP address.
    PerIpLimit,
    /// The HTTP request head was too large, malformed, or slow.
    BadHandshake,
    /// No common wire version.
    UnsupportedVersion,
    /// Missing, invalid or expired token.
    Unauthorized,
    /// The token does not allow the operation.
    PermissionDenied,
    /// A frame, message or document exceeded its size limit.
    TooLarge,
    /// A connection exceeded its message or byte rate.
    RateLimited,
    /// A frame did not decode or broke the protocol.
    Invalid,
    /// A connection did not read its frames fast enough and was closed.
    SlowConsumer,
    /// No frame within the idle timeout.
    IdleTimeout,
    /// Too many documents on one connection.
    TooManyDocuments,
    /// A fragment would exceed the bytes of unfinished fragmented frames allowed to its
    /// connection or to the whole server.
    FragmentBudget,
    /// A presence frame over a connection's or a document's presence caps, or speaking for a
    /// replica another connection owns.
    PresenceLimit,
    /// A subscription that would load a document beyond the connection's load rate.
    DocumentLoadRate,
}

impl Reject {
    /// Every reason, in declaration order: `reason as usize` indexes the counters.
    const ALL: [Reject; 15] = [
        Reject::Overloaded,
        Reject::PerIpLimit,
        Reject::BadHandshake,
        Reject::UnsupportedVersion,
        Reject::Unauthorized,
        Reject::PermissionDenied,
        Reject::TooLarge,
        Reject::RateLimited,
        Reject::Invalid,
        Reject::SlowConsumer,
        Reject::IdleTimeout,
        Reject::TooManyDocuments,
        Reject::FragmentBudget,
        Reject::PresenceLimit,
        Reject::DocumentLoadRate,
    ];

    fn label(self) -> &'static str {
        match self {
            Reject::Overloaded => "overloaded",
            Reject::PerIpLimit => "per_ip_limit",
            Reject::BadHandshake => "bad_handshake",
            Reject::UnsupportedVersion => "unsupported_version",
            Reject::Unauthorized => "unauthorized",
            Reject::PermissionDenied => "permission_denied",
            Reject::TooLarge => "too_large",
            Reject::RateLimited => "rate_limited",
            Reject::Invalid => "invalid",
            Reject::SlowConsumer => "slow_consumer",
            Reject::IdleTimeout => "idle_timeout",
            Reject::TooManyDocuments => "too_many_documents",
            Reject::FragmentBudget => "fragment_budget",
            Reject::PresenceLimit => "presence_limit",
            Reject::DocumentLoadRate => "document_load_rate",
        }
    }
}

/// Upper bounds of the persist-latency histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A histogram of durations with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(duration.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bucket, bound) in self.buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Every metric the server exports.
///
/// ```
/// use sync_server::metrics::{Metrics, Reject};
///
/// let metrics = Metrics::default();
/// metrics.rejected(Reject::RateLimited);
/// assert!(metrics.render().contains("sync_rejected_total{reason=\"rate_limited\"} 1"));
/// ```
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: AtomicI64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Documents loaded in memory.
    pub documents_loaded: AtomicI64,
    /// Frames received.
    pub messages_in: AtomicU64,
    /// Frames sent.
    pub messages_out: AtomicU64,
    /// Bytes received in frames.
    pub bytes_in: AtomicU64,
    /// Bytes sent in frames.
    pub bytes_out: AtomicU64,
    /// Commands waiting in document actors' queues.
    pub document_queue_depth: AtomicI64,
    /// Frames waiting in connections' outgoing queues.
    pub outgoing_queue_depth: AtomicI64,
    /// Bytes held by unfinished fragmented frames, over all connections.
    pub reassembly_bytes: AtomicI64,
    /// Batches committed to storage.
    pub persisted_batches: AtomicU64,
    /// Storage operations that failed.
    pub storage_errors: AtomicU64,
    /// Hints from a shared storage that another node appended to a document.
    pub storage_hints: AtomicU64,
    /// Changes (and snapshots) other nodes stored, taken in by live documents.
    pub changes_from_other_nodes: AtomicU64,
    /// Time from a batch's arrival at a document to its commit.
    pub persist_latency: Histogram,
    /// Cluster members alive, suspect and down, as this node sees them.
    pub cluster_members: [AtomicI64; 3],
    /// Node frames received and opened.
    pub cluster_messages_in: AtomicU64,
    /// Node frames sent.
    pub cluster_messages_out: AtomicU64,
    /// Bytes of node frames received (length prefixes included).
    pub cluster_bytes_in: AtomicU64,
    /// Bytes of node frames sent.
    pub cluster_bytes_out: AtomicU64,
    /// Node frames refused: bad tag (no cluster secret), other version, too large, or a node
    /// id claimed from the wrong address.
    pub cluster_refused: AtomicU64,
    /// Node frames dropped: a peer's queue was full or the peer unreachable.
    pub cluster_dropped: AtomicU64,
    /// Client changes pushed to the members holding their document.
    pub cluster_pushes: AtomicU64,
    /// Time from a change's commit on one node to its arrival on another.
    pub replication_lag: Histogram,
    /// Anti-entropy rounds this node started (one digest sent each).
    pub anti_entropy_rounds: AtomicU64,
    /// Buckets found different in anti-entropy exchanges (their document lists were sent).
    pub anti_entropy_buckets: AtomicU64,
    /// Documents anti-entropy found out of sync with a member.
    pub anti_entropy_differing: AtomicU64,
    rejected: [AtomicU64; Reject::ALL.len()],
}

impl Metrics {
    /// Counts one refusal.
    pub fn rejected(&self, reason: Reject) {
        self.rejected[reason as usize].fetch_add(1, Relaxed);
    }

    /// How many refusals of this kind were counted.
    pub fn rejected_count(&self, reason: Reject) -> u64 {
        self.rejected[reason as usize].load(Relaxed)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let gauges: [(&str, &str, i64); 8] = [
            (
                "sync_cluster_members_alive",
                "Cluster members answering probes, as this node sees them.",
                self.cluster_members[0].load(Relaxed),
            ),
            (
                "sync_cluster_members_suspect",
                "Cluster members that missed probes and may be declared down.",
                self.cluster_members[1].load(Relaxed),
            ),
            (
                "sync_cluster_members_down",
                "Cluster members declared down.",
                self.cluster_members[2].load(Relaxed),
            ),
            (
                "sync_connections",
                "Open WebSocket connections.",
                self.connections.load(Relaxed),
            ),
            (
                "sync_documents_loaded",
                "Documents loaded in memory.",
                self.documents_loaded.load(Relaxed),
            ),
            (
                "sync_document_queue_depth",
                "Commands waiting in document actors' queues.",
                self.document_queue_depth.load(Relaxed),
            ),
            (
                "sync_outgoing_queue_depth",
                "Frames waiting in connections' outgoing queues.",
                self.outgoing_queue_depth.load(Relaxed),
            ),
            (
                "sync_reassembly_bytes",
                "Bytes held by unfinished fragmented frames, over all connections.",
                self.reassembly_bytes.load(Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let counters: [(&str, &str, u64); 19] = [
            (
                "sync_anti_entropy_rounds_total",
                "Anti-entropy rounds started (one digest sent to a random member each).",
                self.anti_entropy_rounds.load(Relaxed),
            ),
            (
                "sync_anti_entropy_buckets_total",
                "Digest buckets found different (their document lists were exchanged).",
                self.anti_entropy_buckets.load(Relaxed),
            ),
            (
                "sync_anti_entropy_documents_out_of_sync_total",
                "Documents anti-entropy found out of sync with a member.",
                self.anti_entropy_differing.load(Relaxed),
            ),
            (
                "sync_cluster_messages_in_total",
                "Node frames received from other cluster members.",
                self.cluster_messages_in.load(Relaxed),
            ),
            (
                "sync_cluster_messages_out_total",
                "Node frames sent to other cluster members.",
                self.cluster_messages_out.load(Relaxed),
            ),
            (
                "sync_cluster_bytes_in_total",
                "Bytes of node frames received.",
                self.cluster_bytes_in.load(Relaxed),
            ),
            (
                "sync_cluster_bytes_out_total",
                "Bytes of node frames sent.",
                self.cluster_bytes_out.load(Relaxed),
            ),
            (
                "sync_cluster_refused_total",
                "Node frames refused (no cluster secret, other version, too large, or a node id claimed from the wrong address).",
                self.cluster_refused.load(Relaxed),
            ),
            (
                "sync_cluster_dropped_total",
                "Node frames dropped (a full queue or an unreachable peer).",
                self.cluster_dropped.load(Relaxed),
            ),
            (
                "sync_cluster_pushes_total",
                "Client changes pushed to the members holding their document.",
                self.cluster_pushes.load(Relaxed),
            ),
            (
                "sync_connections_total",
                "Connections accepted since start.",
                self.connections_total.load(Relaxed),
            ),
            (
                "sync_messages_in_total",
                "Frames received.",
                self.messages_in.load(Relaxed),
            ),
            (
                "sync_messages_out_total",
                "Frames sent.",
                self.messages_out.load(Relaxed),
            ),
            (
                "sync_bytes_in_total",
                "Bytes received in frames.",
                self.bytes_in.load(Relaxed),
            ),
            (
                "sync_bytes_out_total",
                "Bytes sent in frames.",
                self.bytes_out.load(Relaxed),
            ),
            (
                "sync_persisted_batches_total",
                "Batches committed to storage.",
                self.persisted_batches.load(Relaxed),
            ),
            (
                "sync_storage_errors_total",
                "Storage operations that failed.",
                self.storage_errors.load(Relaxed),
            ),
            (
                "sync_storage_hints_total",
                "Hints from a shared storage that another node appended to a document.",
                self.storage_hints.load(Relaxed),
            ),
            (
                "sync_changes_from_other_nodes_total",
                "Changes and snapshots other nodes stored, taken in by live documents.",
                self.changes_from_other_nodes.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP sync_rejected_total Refused connections and requests, by reason.\n# TYPE sync_rejected_total counter"
        );
        for (reason, count) in Reject::ALL.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "sync_rejected_total{{reason=\"{}\"}} {}",
                reason.label(),
                count.load(Relaxed)
            );
        }
        self.persist_latency.render(
            "sync_persist_latency_seconds",
            "Time from a batch's arrival at its document to its commit.",
            &mut out,
        );
        self.replication_lag.render(
            "sync_replication_lag_seconds",
            "Time from a change's commit on one cluster node to its arrival on another.",
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_indexes_its_own_counter() {
        for (index, reason) in Reject::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, index);
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.persist_latency.observe(Duration::from_micros(700));
        metrics.persist_latency.observe(Duration::from_millis(30));
        let text = metrics.render();
        assert!(text.contains("sync_persist_latency_seconds_bucket{le=\"0.0005\"} 0"));
        assert!(text.contains("sync_persist_latency_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("sync_persist_latency_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("sync_persist_latency_seconds_count 2"));
    }
}
