//! Change callbacks without a server: local edits only, from plain `#[test]`s (no runtime; the
//! client runs its own). The server-side events (remote changes, acknowledgements, refusals)
//! are tested against a real server in `sync-server/tests/client_events.rs`.

// Test helpers: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crdt_core::{MapId, Origin, PatchAction, Value};
use sync_client::{Client, ClientConfig, DocEvent, DocSyncError};

const WAIT: Duration = Duration::from_secs(20);

/// A client that never reaches a server (nothing listens on port 9).
fn offline_client() -> Client {
    Client::start(ClientConfig {
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..ClientConfig::new("ws://127.0.0.1:9/sync")
    })
}

fn wait_for(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn close(client: &Client) {
    // `close` only waits for the client's own thread: any executor will do.
    futures_executor_free_block_on(client.close());
}

/// A minimal executor: polls on this thread, parking between wake-ups.
fn futures_executor_free_block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn local_edits_reach_callbacks_with_their_patches_in_order() {
    let client = offline_client();
    let doc = client.open("local").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let _guard = doc.on_event(move |event| {
        if let DocEvent::Changed { origin, patches } = event {
            for patch in patches {
                sink.lock().unwrap().push((*origin, patch.action.clone()));
            }
        }
    });
    for i in 0..10 {
        doc.edit(|d| d.set(MapId::ROOT, "k", i)).unwrap();
    }
    // An edit that changes nothing gives no event.
    let _ = doc.edit(|d| d.delete(MapId::ROOT, "missing").map(|_| ()));
    wait_for(|| seen.lock().unwrap().len() >= 10);
    let seen = seen.lock().unwrap();
    let expected: Vec<_> = (0..10)
        .map(|i| {
            (
                Origin::Local,
                PatchAction::MapSet {
                    key: "k".into(),
                    value: Value::from(i),
                },
            )
        })
        .collect();
    assert_eq!(seen[..10], expected[..]);
    drop(seen);
    close(&client);
}

/// Callbacks run under no lock of the client: one may read and edit the document it is told
/// about, and unsubscribe itself, without deadlocking.
#[test]
fn a_callback_may_edit_its_document_and_unsubscribe_itself() {
    let client = offline_client();
    let doc = client.open("reentrant").unwrap();
    let handle = doc.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let slot: Arc<Mutex<Option<sync_client::Subscription>>> = Arc::default();
    let own = Arc::clone(&slot);
    let subscription = doc.on_event(move |event| {
        if let DocEvent::Changed {
            origin: Origin::Local,
            patches,
        } = event
        {
            counter.fetch_add(1, Ordering::SeqCst);
            let asked = patches
                .iter()
                .any(|p| matches!(&p.action, PatchAction::MapSet { key, .. } if key == "ping"));
            if asked {
                let pings = handle.read(|d| d.get(MapId::ROOT, "ping").unwrap().cloned());
                handle
                    .edit(|d| d.set(MapId::ROOT, "pong", pings.unwrap_or(Value::Null)))
                    .unwrap();
            } else if let Some(subscription) = own.lock().unwrap().take() {
                // Called for the "pong" edit: done.
                subscription.unsubscribe();
            }
        }
    });
    *slot.lock().unwrap() = Some(subscription);
    doc.edit(|d| d.set(MapId::ROOT, "ping", 1)).unwrap();
    assert!(futures_executor_free_block_on(doc.wait_until(WAIT, |d| {
        d.get(MapId::ROOT, "pong").unwrap() == Some(&Value::from(1))
    })));
    wait_for(|| slot.lock().unwrap().is_none());
    // Unsubscribed from inside: later edits are not reported.
    doc.edit(|d| d.set(MapId::ROOT, "ping", 2)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    close(&client);
}

/// A callback that falls far behind gets `Lagged` instead of an unbounded queue, then the
/// newer events; nothing is lost from the count.
#[test]
fn a_slow_callback_gets_lagged_instead_of_an_unbounded_queue() {
    let client = offline_client();
    let doc = client.open("slow").unwrap();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let counts = Arc::new(Mutex::new((0u64, 0u64))); // (changes seen, changes missed)
    let sink = Arc::clone(&counts);
    let (entered, entering) = mpsc::channel::<()>();
    let _guard = doc.on_event(move |event| {
        match event {
            DocEvent::Changed { .. } => sink.lock().unwrap().0 += 1,
            DocEvent::Lagged { missed } => sink.lock().unwrap().1 += missed,
            _ => {}
        }
        // Block in the first call until the edits are done.
        let _ = entered.send(());
        let _ = released.lock().unwrap().recv_timeout(WAIT);
    });
    // The first edit's call is running (and blocked) before the others are made.
    doc.edit(|d| d.set(MapId::ROOT, "k", -1)).unwrap();
    entering.recv_timeout(WAIT).unwrap();
    let edits = 6000u64;
    for i in 0..edits {
        doc.edit(|d| d.set(MapId::ROOT, "k", i as i64)).unwrap();
    }
    drop(release);
    wait_for(|| {
        let (seen, missed) = *counts.lock().unwrap();
        seen + missed == edits + 1
    });
    let (seen, missed) = *counts.lock().unwrap();
    assert!(missed > 0 && seen <= edits, "seen {seen}, missed {missed}");
    close(&client);
}

/// A local file that cannot be written: the edit fails with `ClientError::Io`, and the same
/// failure is the document's typed last error and an event.
#[test]
fn local_storage_failures_are_typed() {
    let dir = tempfile_dir();
    let state = dir.join("state");
    let client = Client::start(ClientConfig {
        state_dir: Some(state.clone()),
        ..ClientConfig::new("ws://127.0.0.1:9/sync")
    });
    let doc = client.open("doc").unwrap();
    // Once open, a file where the state directory should be: nothing can be written there.
    std::fs::write(&state, b"x").unwrap();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&errors);
    let _guard = doc.on_event(move |event| {
        if let DocEvent::Error(error) = event {
            sink.lock().unwrap().push(error.clone());
        }
    });
    assert!(matches!(
        doc.edit(|d| d.set(MapId::ROOT, "k", 1)),
        Err(sync_client::ClientError::Io { .. })
    ));
    assert!(matches!(
        doc.last_error(),
        Some(DocSyncError::LocalStorage { .. })
    ));
    wait_for(|| !errors.lock().unwrap().is_empty());
    assert_eq!(errors.lock().unwrap()[0], doc.last_error().unwrap());
    close(&client);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sync-client-events-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
