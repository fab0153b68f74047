//! One server per SQLite data directory: the real binary started twice on one directory; the
//! second exits at once with a message naming the directory, and the lock goes with the first
//! process, however it ends.

// Test helpers: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::http_get;

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn spawn(addr: SocketAddr, dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sync-server"))
        .args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(dir)
        .env("SYNC_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn wait_healthy(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && http_get(addr, "/healthz").await.0 == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start on {addr}");
}

/// Waits up to `limit` for the child to exit; kills it and returns `None` if it did not.
fn exit_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first_addr = free_addr();
    let mut first = spawn(first_addr, dir.path());
    wait_healthy(first_addr).await;

    let mut second = spawn(free_addr(), dir.path());
    let status = exit_within(&mut second, Duration::from_secs(10));
    let output = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let status = status.expect("the second server kept running on a directory in use");
    assert!(!status.success(), "the second server exited with {status}");
    assert!(
        stderr.contains(&dir.path().display().to_string()) && stderr.contains("already in use"),
        "the refusal does not name the directory: {stderr}"
    );
    // The first one is unaffected.
    assert_eq!(http_get(first_addr, "/healthz").await.0, 200);

    // SIGKILL releases the lock: the next start succeeds.
    first.kill().unwrap();
    first.wait().unwrap();
    let third_addr = free_addr();
    let mut third = spawn(third_addr, dir.path());
    wait_healthy(third_addr).await;
    third.kill().unwrap();
    third.wait().unwrap();
}
