//! File descriptors: the real binary under a low `RLIMIT_NOFILE` (set with `ulimit -n`), flooded
//! with more connections than it has descriptors for. New clients must be refused promptly
//! (503, or closed at once) instead of hanging in the backlog, the connection cap must be
//! derived from the limit and logged, and accept failures must be logged at most once per
//! interval instead of once per retry.

// Test helpers: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{http_get, url};
use sync_protocol::{Frame, WIRE_VERSION};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;

/// The descriptor limit the server runs under (soft and hard, so it cannot raise it).
const LIMIT: u64 = 256;

/// `LIMIT` minus the reserve of `sync_server::descriptors::connection_cap`.
const EXPECTED_CAP: usize = 256 - 64 - 19;

/// A client that gets no answer within this is hanging.
const PROMPT: Duration = Duration::from_secs(3);

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Welcomed,
    Refused503,
    /// Closed or reset without an HTTP answer (shed at the descriptor limit).
    Closed,
    Hung,
}

/// One WebSocket client through the upgrade and the Hello, kept open if welcomed.
async fn session(addr: SocketAddr, open: &mut Vec<support::Raw>) -> Outcome {
    let attempt = async {
        let mut socket = match tokio_tungstenite::connect_async(url(addr)).await {
            Ok((socket, _)) => socket,
            Err(WsError::Http(response)) if response.status() == 503 => {
                return Outcome::Refused503;
            }
            Err(_) => return Outcome::Closed,
        };
        let hello = Frame::Hello {
            min_version: WIRE_VERSION,
            max_version: WIRE_VERSION,
            token: None,
            agent: "limits_fd".into(),
        };
        support::send(&mut socket, &hello).await;
        match support::next_frame(&mut socket).await {
            Some(Frame::Welcome { .. }) => {
                open.push(socket);
                Outcome::Welcomed
            }
            _ => Outcome::Closed,
        }
    };
    tokio::time::timeout(PROMPT, attempt)
        .await
        .unwrap_or(Outcome::Hung)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_descriptor_limit_clients_are_refused_promptly_and_accept_errors_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    // `ulimit -n` in sh sets the soft and the hard limit, so the server cannot raise it.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_sync-server"))
        .args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(dir.path())
        // Idle sockets keep their descriptor for the whole handshake timeout.
        .args(["--handshake-timeout-secs", "60"])
        .env("SYNC_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push(line);
            }
        });
    }
    let mut started = false;
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() && http_get(addr, "/healthz").await.0 == 200 {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started,
        "the server did not start: {:?}",
        log.lock().unwrap()
    );

    // Phase 1: more WebSocket clients than the server has descriptors.
    let mut open = Vec::new();
    let mut outcomes = Vec::new();
    for _ in 0..LIMIT as usize + 24 {
        let outcome = session(addr, &mut open).await;
        let hung = outcome == Outcome::Hung;
        outcomes.push(outcome);
        // Before the fix every client past the limit hangs: a few show it.
        if outcomes.iter().filter(|o| **o == Outcome::Hung).count() >= 3 && hung {
            break;
        }
    }
    let count = |kind: Outcome| outcomes.iter().filter(|o| **o == kind).count();
    let (welcomed, refused, closed, hung) = (
        count(Outcome::Welcomed),
        count(Outcome::Refused503),
        count(Outcome::Closed),
        count(Outcome::Hung),
    );
    println!(
        "phase 1 ({} clients): {welcomed} welcomed, {refused} refused with 503, {closed} closed, {hung} hung",
        outcomes.len()
    );

    // Phase 2: idle TCP clients (no request) until the process is out of descriptors, then
    // more; each must be answered or closed promptly, and the failures logged once.
    let accept_lines_before = accept_failed_lines(&log);
    let flood_start = Instant::now();
    let mut idle = Vec::new();
    let mut shed = 0;
    for _ in 0..160 {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            continue;
        };
        let mut byte = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(150), stream.read(&mut byte)).await {
            // Accepted and waiting for a request (descriptors left): keep it open.
            Err(_) => idle.push(stream),
            Ok(_) => shed += 1,
        }
    }
    // The last idle ones may be waiting in the backlog rather than accepted: give the server
    // time to shed them, then count who is still unanswered beyond what it could accept.
    tokio::time::sleep(PROMPT).await;
    let mut still_open: usize = 0;
    for stream in &mut idle {
        let mut byte = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(10), stream.read(&mut byte)).await {
            Err(_) => still_open += 1,
            Ok(_) => shed += 1,
        }
    }
    let flood_secs = flood_start.elapsed().as_secs_f64();
    let accept_lines = accept_failed_lines(&log) - accept_lines_before;
    // Which of the still-open ones does the server hold (accepted) and which hang in the
    // backlog? The server holds at most what its descriptors allow.
    let held_max = LIMIT as usize - welcomed;
    let idle_hung = still_open.saturating_sub(held_max);
    println!(
        "phase 2 (160 idle clients over {flood_secs:.1} s): {shed} shed promptly, {still_open} still open \
         (at most {held_max} can be held), {accept_lines} 'accept failed' log lines"
    );

    let cap_line = log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("max_connections lowered"))
        .cloned();
    drop(open);
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();

    assert_eq!(hung, 0, "WebSocket clients hung instead of being refused");
    assert!(refused > 0, "nobody was refused with 503");
    assert!(
        (EXPECTED_CAP - 5..=EXPECTED_CAP).contains(&welcomed),
        "{welcomed} welcomed; the derived cap is {EXPECTED_CAP}"
    );
    let cap_line = cap_line.expect("the derived cap was not logged");
    assert!(
        cap_line.contains(&format!("max_connections={EXPECTED_CAP}")),
        "{cap_line}"
    );
    assert!(shed > 0, "the flood never exhausted the descriptors");
    assert_eq!(idle_hung, 0, "idle clients hung in the backlog");
    // One line per interval (10 s) at most: the first, and one per interval since.
    assert!(
        accept_lines as f64 <= 1.0 + (flood_secs / 10.0).ceil(),
        "{accept_lines} 'accept failed' lines in {flood_secs:.1} s: not rate limited"
    );
}

fn accept_failed_lines(log: &Mutex<Vec<String>>) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .count()
}
