//! Load generator for the sync server: N WebSocket clients over M documents, each sending edits
//! at a given rate. Reports sustained edits per second, latency from one client's edit to another
//! client's receipt (p50/p99/p999), acknowledgement latency, the server's CPU and resident memory,
//! and the memory each idle connection costs the server.
//!
//! ```sh
//! cargo build --release -p sync-server
//! cargo run --release -p bench --bin loadgen -- --clients 1000 --docs 100 --rate 1 --seconds 30
//! ```
//!
//! By default it starts `target/release/sync-server` itself (on a free loopback port, with a
//! temporary data directory and limits raised for one source address) so that it can read the
//! server's CPU time and memory from `/proc`. `--url ws://...` measures a running server instead
//! (without the server-side figures). Linux only for the server figures.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crdt_core::{Document, MapId, ReplicaId, VersionVector};
use futures_util::{SinkExt, StreamExt};
use sync_protocol::{AckStatus, Frame, WIRE_VERSION};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
struct Options {
    clients: usize,
    docs: usize,
    rate: f64,
    seconds: u64,
    url: Option<String>,
    server_bin: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        clients: 1000,
        docs: 100,
        rate: 1.0,
        seconds: 30,
        url: None,
        server_bin: None,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--clients" => options.clients = value()?.parse().map_err(|e| format!("{e}"))?,
            "--docs" => options.docs = value()?.parse().map_err(|e| format!("{e}"))?,
            "--rate" => options.rate = value()?.parse().map_err(|e| format!("{e}"))?,
            "--seconds" => options.seconds = value()?.parse().map_err(|e| format!("{e}"))?,
            "--url" => options.url = Some(value()?),
            "--server-bin" => options.server_bin = Some(value()?.into()),
            "--json" => options.json = Some(value()?.into()),
            "--help" | "-h" => {
                return Err("usage: loadgen [--clients N] [--docs M] [--rate EDITS_PER_SEC_PER_CLIENT] [--seconds S] [--url ws://HOST:PORT/sync | --server-bin PATH] [--json OUT]".into())
            }
            other => return Err(format!("unknown flag {other} (see --help)")),
        }
    }
    if options.clients == 0 || options.docs == 0 || options.rate <= 0.0 {
        return Err("--clients, --docs and --rate must be positive".into());
    }
    Ok(options)
}

/// Send times of edits, by (replica, event counter): the receipt side turns them into latencies.
type SendTimes = Mutex<HashMap<(u128, u64), Instant>>;

#[derive(Default)]
struct Counters {
    edits_sent: AtomicU64,
    edits_acked: AtomicU64,
    acks_refused: AtomicU64,
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
    subscribed: AtomicU64,
    failed: AtomicU64,
}

struct Shared {
    counters: Counters,
    send_times: SendTimes,
    /// Microseconds from an edit to its receipt by another client of the document.
    delivery: Mutex<Vec<u64>>,
    /// Microseconds from sending a batch to its `Ack` (durable).
    ack: Mutex<Vec<u64>>,
    /// Set when the load phase starts; edits before it are not sent.
    load_started: tokio::sync::watch::Receiver<bool>,
    stop: tokio::sync::watch::Receiver<bool>,
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("loadgen: {message}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: {error}");
            std::process::exit(1);
        }
    };
    if let Err(message) = runtime.block_on(run(options)) {
        eprintln!("loadgen: {message}");
        std::process::exit(1);
    }
}

struct ServerProcess {
    child: Child,
    _dir: PathBuf,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

async fn start_server(options: &Options) -> Result<(ServerProcess, SocketAddr), String> {
    let bin = match &options.server_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("sync-server"),
    };
    if !bin.exists() {
        return Err(format!(
            "{} not found: run `cargo build --release -p sync-server` first, or pass --server-bin or --url",
            bin.display()
        ));
    }
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("loadgen-{}", std::process::id()));
    let child = Command::new(&bin)
        .args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(&dir)
        .args([
            "--max-connections",
            "1000000",
            "--max-connections-per-ip",
            "1000000",
        ])
        .args(["--max-documents-per-connection", "16"])
        .env("SYNC_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let process = ServerProcess { child, _dir: dir };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok((process, addr));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the server did not start listening".into())
}

/// CPU seconds (user + system) and resident bytes of a process, from /proc.
fn process_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the name; clock ticks are
    // 100 per second on Linux (USER_HZ).
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / 100.0, rss_kb * 1024))
}

async fn run(options: Options) -> Result<(), String> {
    let (server, url) = match &options.url {
        Some(url) => (None, url.clone()),
        None => {
            let (server, addr) = start_server(&options).await?;
            (Some(server), format!("ws://{addr}/sync"))
        }
    };
    let pid = server.as_ref().map(|s| s.child.id());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = pid.and_then(process_usage);

    let (start_load, load_started) = tokio::sync::watch::channel(false);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        counters: Counters::default(),
        send_times: Mutex::new(HashMap::new()),
        delivery: Mutex::new(Vec::new()),
        ack: Mutex::new(Vec::new()),
        load_started,
        stop,
    });

    // Phase 1: connect and subscribe everyone, then measure idle memory.
    println!(
        "connecting {} clients over {} documents to {url} ...",
        options.clients, options.docs
    );
    let connect_started = Instant::now();
    let gate = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(options.clients);
    for index in 0..options.clients {
        let shared = Arc::clone(&shared);
        let url = url.clone();
        let gate = Arc::clone(&gate);
        let doc = format!("load/{}", index % options.docs);
        // The first client of each document observes deliveries.
        let observer = index < options.docs;
        let rate = options.rate;
        tasks.push(tokio::spawn(async move {
            if let Err(error) = client(index, url, doc, observer, rate, shared.clone(), gate).await
                && shared.counters.failed.fetch_add(1, Relaxed) < 5
            {
                eprintln!("client {index}: {error}");
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ready = shared.counters.subscribed.load(Relaxed) + shared.counters.failed.load(Relaxed);
        if ready >= options.clients as u64 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let subscribed = shared.counters.subscribed.load(Relaxed);
    let connect_secs = connect_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = pid.and_then(process_usage);
    let per_idle_connection = match (baseline, idle) {
        (Some((_, base)), Some((_, rss))) if subscribed > 0 => {
            Some(rss.saturating_sub(base) as f64 / subscribed as f64)
        }
        _ => None,
    };
    println!(
        "{subscribed} subscribed in {connect_secs:.1} s ({} failed); server RSS {} idle",
        shared.counters.failed.load(Relaxed),
        idle.map(|(_, rss)| format!("{:.1} MiB", rss as f64 / 1048576.0))
            .unwrap_or("n/a".into())
    );

    // Phase 2: everyone edits at the rate for the duration.
    let load_start_usage = pid.and_then(process_usage);
    let started = Instant::now();
    let _ = start_load.send(true);
    let mut peak_rss = 0u64;
    while started.elapsed() < Duration::from_secs(options.seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some((_, rss)) = pid.and_then(process_usage) {
            peak_rss = peak_rss.max(rss);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let acked_at_end = shared.counters.edits_acked.load(Relaxed);
    let sent_at_end = shared.counters.edits_sent.load(Relaxed);
    let load_end_usage = pid.and_then(process_usage);
    let _ = stop_tx.send(true);
    // Let deliveries in flight arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for task in tasks {
        task.abort();
    }
    let cpu_percent = match (load_start_usage, load_end_usage) {
        (Some((a, _)), Some((b, _))) => Some(100.0 * (b - a) / elapsed),
        _ => None,
    };
    let mut delivery = std::mem::take(&mut *shared.delivery.lock().map_err(|e| e.to_string())?);
    let mut ack = std::mem::take(&mut *shared.ack.lock().map_err(|e| e.to_string())?);
    delivery.sort_unstable();
    ack.sort_unstable();
    let pct = |v: &[u64], p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i] as f64 / 1000.0
    };
    let counters = &shared.counters;
    let report = serde_json::json!({
        "clients": options.clients,
        "subscribed": subscribed,
        "docs": options.docs,
        "rate_per_client": options.rate,
        "seconds": elapsed,
        "edits_sent": sent_at_end,
        "edits_acked": acked_at_end,
        "acks_refused": counters.acks_refused.load(Relaxed),
        "edits_per_second_acked": acked_at_end as f64 / elapsed,
        "frames_received": counters.frames_received.load(Relaxed),
        "bytes_received": counters.bytes_received.load(Relaxed),
        "delivery_samples": delivery.len(),
        "delivery_ms_p50": pct(&delivery, 0.50),
        "delivery_ms_p99": pct(&delivery, 0.99),
        "delivery_ms_p999": pct(&delivery, 0.999),
        "ack_ms_p50": pct(&ack, 0.50),
        "ack_ms_p99": pct(&ack, 0.99),
        "ack_ms_p999": pct(&ack, 0.999),
        "server_cpu_percent": cpu_percent,
        "server_rss_idle_bytes": idle.map(|(_, rss)| rss),
        "server_rss_peak_bytes": if peak_rss > 0 { Some(peak_rss) } else { None },
        "server_rss_baseline_bytes": baseline.map(|(_, rss)| rss),
        "server_bytes_per_idle_connection": per_idle_connection,
        "connect_seconds": connect_secs,
    });
    println!(
        "\nclients {} (subscribed {subscribed}), docs {}, {:.2} edits/s per client, {:.1} s\n\
         edits sent {sent_at_end}, acknowledged {acked_at_end} ({:.0} edits/s sustained), refused {}\n\
         delivery latency (edit -> other client's receipt): p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms ({} samples)\n\
         ack latency (edit -> durable ack): p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms\n\
         server CPU {}, RSS idle {}, peak {}, per idle connection {}",
        options.clients,
        options.docs,
        options.rate,
        elapsed,
        acked_at_end as f64 / elapsed,
        counters.acks_refused.load(Relaxed),
        pct(&delivery, 0.5),
        pct(&delivery, 0.99),
        pct(&delivery, 0.999),
        delivery.len(),
        pct(&ack, 0.5),
        pct(&ack, 0.99),
        pct(&ack, 0.999),
        cpu_percent
            .map(|c| format!("{c:.0}%"))
            .unwrap_or("n/a".into()),
        idle.map(|(_, r)| format!("{:.1} MiB", r as f64 / 1048576.0))
            .unwrap_or("n/a".into()),
        if peak_rss > 0 {
            format!("{:.1} MiB", peak_rss as f64 / 1048576.0)
        } else {
            "n/a".into()
        },
        per_idle_connection
            .map(|b| format!("{:.1} KiB", b / 1024.0))
            .unwrap_or("n/a".into()),
    );
    if let Some(path) = &options.json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    drop(server);
    Ok(())
}

/// One simulated client: connect, subscribe, then edit at `rate` until stopped, reading
/// everything the server sends (observers also apply it and measure delivery latency).
async fn client(
    index: usize,
    url: String,
    doc_id: String,
    observer: bool,
    rate: f64,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
) -> Result<(), String> {
    let permit = gate.acquire().await.map_err(|e| e.to_string())?;
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let send = |frame: Frame| Message::Binary(frame.encode().into());
    socket
        .send(send(Frame::Hello {
            min_version: WIRE_VERSION,
            max_version: WIRE_VERSION,
            token: None,
            agent: "loadgen".into(),
        }))
        .await
        .map_err(|e| e.to_string())?;
    let replica = ReplicaId::from_u128(0x10ad_0000_0000 + index as u128);
    let mut document = Document::new(replica);
    let mut sent_version = VersionVector::new();
    socket
        .send(send(Frame::Subscribe {
            doc: doc_id.clone(),
            version: VersionVector::new(),
        }))
        .await
        .map_err(|e| e.to_string())?;
    let mut welcomed = false;
    let mut subscribed = false;
    while !(welcomed && subscribed) {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => match Frame::decode(&bytes) {
                Ok(Frame::Welcome { .. }) => welcomed = true,
                Ok(Frame::Subscribed { .. }) => subscribed = true,
                Ok(Frame::Error { message, .. }) => return Err(message),
                _ => {}
            },
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.to_string()),
            None => return Err("closed during subscribe".into()),
        }
    }
    shared.counters.subscribed.fetch_add(1, Relaxed);
    drop(permit);
    let mut load_started = shared.load_started.clone();
    let stop = shared.stop.clone();
    let _ = load_started.wait_for(|s| *s).await;
    let period = Duration::from_secs_f64(1.0 / rate);
    // Spread clients over the period so that they do not all edit in the same instant.
    let phase = period.mul_f64((index as f64 * 0.618_033_988_7).fract());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = 0u64;
    let mut batch_sent: HashMap<u64, (Instant, u64)> = HashMap::new();
    let key = format!("c{index}");
    loop {
        tokio::select! {
            _ = tick.tick(), if !*stop.borrow() => {
                batch += 1;
                if document.set(MapId::ROOT, &key, batch as i64).is_err() {
                    return Err("local edit failed".into());
                }
                let version = document.version();
                let update = document.update_since(&sent_version);
                let edits = version.total_events() - sent_version.total_events();
                sent_version = version.clone();
                let now = Instant::now();
                if let Ok(mut times) = shared.send_times.lock() {
                    times.insert((replica.as_u128(), version.get(replica)), now);
                }
                batch_sent.insert(batch, (now, edits));
                shared.counters.edits_sent.fetch_add(edits, Relaxed);
                socket
                    .send(send(Frame::Changes { doc: doc_id.clone(), batch, update, version }))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            incoming = socket.next() => {
                let bytes = match incoming {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => return Err(error.to_string()),
                    None => return Err("server closed the connection".into()),
                };
                let now = Instant::now();
                shared.counters.frames_received.fetch_add(1, Relaxed);
                shared.counters.bytes_received.fetch_add(bytes.len() as u64, Relaxed);
                match Frame::decode(&bytes) {
                    Ok(Frame::Ack { batch, status, .. }) => {
                        if let Some((sent, edits)) = batch_sent.remove(&batch) {
                            if status == AckStatus::Ok {
                                shared.counters.edits_acked.fetch_add(edits, Relaxed);
                                if let Ok(mut ack) = shared.ack.lock() {
                                    ack.push(now.duration_since(sent).as_micros() as u64);
                                }
                            } else {
                                shared.counters.acks_refused.fetch_add(1, Relaxed);
                            }
                        }
                    }
                    Ok(Frame::Changes { update, .. }) if observer => {
                        let before = document.version();
                        if document.apply_update(&update).is_err() {
                            continue;
                        }
                        let after = document.version();
                        // The server has what it sent: never send it back.
                        sent_version.merge(&after);
                        let mut samples = Vec::new();
                        if let Ok(times) = shared.send_times.lock() {
                            for (writer, counter) in after.iter() {
                                if writer == replica {
                                    continue;
                                }
                                for c in before.get(writer) + 1..=counter {
                                    if let Some(sent) = times.get(&(writer.as_u128(), c)) {
                                        samples.push(now.duration_since(*sent).as_micros() as u64);
                                    }
                                }
                            }
                        }
                        if let Ok(mut delivery) = shared.delivery.lock() {
                            delivery.extend(samples);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
