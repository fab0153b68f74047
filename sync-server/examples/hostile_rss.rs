//! Reproductions of the memory attacks of issue 12, as a measuring program (a test asserts
//! the bounds; this prints what they cost): each drives one attack for a bounded time against
//! a server with the default configuration on 127.0.0.1 in this process, samples this
//! process's resident memory from /proc every 50 ms, and prints the peak and the refusals the
//! server counted. Run one attack per process, so that peaks do not carry over:
//!
//! `cargo run --release -p sync-server --example hostile_rss -- fragments|presence|churn`

// A measuring program on its own loopback server: a failed step should stop it loudly.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crdt_core::{ReplicaId, VersionVector};
use futures_util::{SinkExt, StreamExt};
use support::*;
use sync_protocol::Frame;
use tokio_tungstenite::tungstenite::Message;

/// How long each attack runs.
const ATTACK: Duration = Duration::from_secs(15);

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Samples RSS until dropped; reports the peak.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start() -> RssSampler {
        let peak = Arc::new(AtomicU64::new(rss_kib()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Relaxed) {
                p.fetch_max(rss_kib(), Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn peak_mib(&mut self) -> f64 {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Relaxed) as f64 / 1024.0
    }
}

/// Runs one attack: a server with the default configuration, `connections` tasks each running
/// `attack(addr, index, end)` until `end` (returning how much it sent), then prints the peak
/// resident memory, the refusals the server counted and `describe(server, total sent)`.
async fn run_attack<F, Fut>(
    name: &str,
    connections: usize,
    attack: F,
    describe: impl FnOnce(
        &sync_server::server::Server<sync_server::storage::SqliteStorage>,
        u64,
    ) -> String,
) where
    F: Fn(std::net::SocketAddr, usize, Instant) -> Fut,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let start_mib = rss_kib() as f64 / 1024.0;
    let mut sampler = RssSampler::start();
    let end = Instant::now() + ATTACK;
    let tasks: Vec<_> = (0..connections)
        .map(|index| tokio::spawn(attack(server.local_addr(), index, end)))
        .collect();
    let mut sent = 0;
    for task in tasks {
        sent += task.await.unwrap();
    }
    let extra = describe(&server, sent);
    let metrics = server.metrics().render();
    let refusals: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("sync_rejected_total{") && !l.ends_with(" 0"))
        .collect();
    println!(
        "[{name}] RSS at start {start_mib:.0} MiB, peak {:.0} MiB during {} s; {extra}; refusals: {refusals:?}",
        sampler.peak_mib(),
        ATTACK.as_secs()
    );
    server.shutdown().await;
}

/// Reads and drops everything the server sends, so the attacker is never a slow consumer.
fn drain(socket: Raw) -> futures_util::stream::SplitSink<Raw, Message> {
    let (sink, mut stream) = socket.split();
    tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    sink
}

/// Sends `frame`; false once the server closed the connection.
async fn offer(sink: &mut futures_util::stream::SplitSink<Raw, Message>, frame: &Frame) -> bool {
    sink.send(Message::Binary(frame.encode().into()))
        .await
        .is_ok()
}

/// Sleeps until the `n`th message of a stream started at `started` is due at `per_second`.
async fn pace(started: Instant, n: u64, per_second: u64) {
    tokio::time::sleep_until((started + Duration::from_millis(n * 1000 / per_second)).into()).await;
}

/// Item 4: six connections keep four 64 MiB fragmented frames each in flight, sent at just
/// under the per-connection byte rate; a refused connection reconnects.
async fn measure_fragment_reassembly() {
    let piece = sync_protocol::DEFAULT_MAX_FRAME - 64;
    let count = ((64 << 20) / piece) as u32;
    let attack = move |addr, _, end| async move {
        let mut sent = 0u64;
        while Instant::now() < end {
            let mut sink = drain(raw_session(addr, None).await);
            let started = Instant::now();
            let mut n = 0;
            'frames: for index in 0..count {
                for id in 0..4 {
                    let bytes = vec![index as u8; piece];
                    let fragment = Frame::Fragment {
                        id,
                        index,
                        count,
                        bytes,
                    };
                    if Instant::now() >= end || !offer(&mut sink, &fragment).await {
                        break 'frames; // over, or refused and closed: reconnect
                    }
                    sent += piece as u64;
                    n += 1;
                    // 30 pieces per second: 7.5 MiB/s, under the 8 MiB/s byte rate.
                    pace(started, n, 30).await;
                }
            }
        }
        sent
    };
    run_attack("fragments", 6, attack, |_, sent| {
        format!("{} MiB sent in fragments", sent >> 20)
    })
    .await;
}

/// Item 5: four connections on one document send 240 KiB presence states, a fresh replica id
/// each time, at just under the byte rate.
async fn measure_presence() {
    let attack = |addr, conn: usize, end| async move {
        let mut raw = raw_session(addr, None).await;
        let room = || "room".to_string();
        let subscribe = Frame::Subscribe {
            doc: room(),
            version: VersionVector::new(),
        };
        send(&mut raw, &subscribe).await;
        let mut sink = drain(raw);
        let started = Instant::now();
        let mut n = 0u64;
        while Instant::now() < end {
            n += 1;
            let presence = Frame::Presence {
                doc: room(),
                replica: ReplicaId::from_u128(((conn as u128) << 64) | u128::from(n)),
                clock: 1,
                ttl_ms: 300_000,
                state: vec![n as u8; 240 * 1024],
            };
            if !offer(&mut sink, &presence).await {
                break;
            }
            // 32 frames per second: 7.5 MiB/s.
            pace(started, n, 32).await;
        }
        n
    };
    run_attack("presence", 4, attack, |_, sent| {
        format!("{sent} presence frames of 240 KiB sent")
    })
    .await;
}

/// Item 6: ten connections subscribe to and unsubscribe from 200 fresh document ids per second
/// each.
async fn measure_document_churn() {
    let attack = |addr, conn: usize, end| async move {
        let mut sink = drain(raw_session(addr, None).await);
        let started = Instant::now();
        let mut n = 0u64;
        while Instant::now() < end {
            n += 1;
            let doc = format!("churn-{conn}-{n}");
            let subscribe = Frame::Subscribe {
                doc: doc.clone(),
                version: VersionVector::new(),
            };
            if !offer(&mut sink, &subscribe).await
                || !offer(&mut sink, &Frame::Unsubscribe { doc }).await
            {
                break;
            }
            pace(started, n, 200).await;
        }
        n
    };
    run_attack("churn", 10, attack, |server, sent| {
        let loaded = server.metrics().documents_loaded.load(Relaxed);
        format!("{sent} fresh ids subscribed; {loaded} documents loaded at the end")
    })
    .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("fragments") => measure_fragment_reassembly().await,
        Some("presence") => measure_presence().await,
        Some("churn") => measure_document_churn().await,
        _ => eprintln!("usage: hostile_rss fragments|presence|churn"),
    }
}
