//! The real `sync-server` binary killed with SIGKILL during a burst of writes: after a restart,
//! every change the server had acknowledged is still there.

// Test helpers: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crdt_core::MapId;
use support::{http_get, url};
use sync_client::{Client, ClientConfig};

const WAIT: Duration = Duration::from_secs(30);

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn spawn_server(addr: SocketAddr, dir: &Path) -> Child {
    // Killed and waited for by the test (a panic leaves it to the test harness's exit).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_sync-server"))
        .args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(dir)
        // Compact often, so that kills also land during compactions.
        .args(["--compact-after", "7"])
        .env("SYNC_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && http_get(addr, "/healthz").await.0 == 200
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start on {addr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_no_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    for (round, kill_after_ms) in [150u64, 400, 900].into_iter().enumerate() {
        let mut server = spawn_server(addr, dir.path()).await;
        let writer = Client::start(ClientConfig::new(url(addr)));
        let doc = writer.open("burst").unwrap();
        assert!(writer.wait_connected(WAIT).await);
        let burst = {
            let doc = doc.clone();
            tokio::spawn(async move {
                for i in 0..100_000u32 {
                    let key = format!("r{round}-{i}");
                    if doc
                        .edit(|d| d.set(MapId::ROOT, &key, i64::from(i)))
                        .is_err()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_micros(300)).await;
                }
            })
        };
        // Kill only once acknowledgements flow (a loaded CI machine may be slow to start).
        let deadline = tokio::time::Instant::now() + WAIT;
        while doc.saved_version().total_events() == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        // Acknowledgements received before the kill name changes the server had committed.
        let acknowledged = doc.saved_version();
        burst.abort();
        writer.close().await;
        assert!(
            acknowledged.total_events() > 0,
            "round {round}: nothing was acknowledged before the kill"
        );

        let mut server = spawn_server(addr, dir.path()).await;
        let reader = Client::start(ClientConfig::new(url(addr)));
        let seen = reader.open("burst").unwrap();
        let restored = seen
            .wait_until(WAIT, |d| d.version().includes(&acknowledged))
            .await;
        assert!(
            restored,
            "round {round}: acknowledged {} events, the restarted server has {}",
            acknowledged.total_events(),
            seen.read(|d| d.version().total_events())
        );
        println!(
            "round {round}: killed after {kill_after_ms} ms; {} events acknowledged, {} written, {} restored",
            acknowledged.total_events(),
            doc.read(|d| d.version().total_events()),
            seen.read(|d| d.version().total_events())
        );
        // What the server has is a prefix of what the writer made: values agree.
        let written = doc.read(|d| d.to_json());
        let stored = seen.read(|d| d.to_json());
        let this_round = format!("r{round}-");
        for (key, value) in stored.as_object().unwrap() {
            if !key.starts_with(&this_round) {
                continue;
            }
            assert_eq!(Some(value), written.get(key), "round {round}: key {key}");
        }
        reader.close().await;
        server.kill().unwrap();
        server.wait().unwrap();
    }
}
