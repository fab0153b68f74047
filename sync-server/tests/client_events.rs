//! The client's conveniences (issue 13) against a real server on loopback: change callbacks,
//! typed per-document errors, `wait_saved` saying why, and a client started outside a Tokio
//! runtime.

// Test helpers: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crdt_core::{MapId, Origin, PatchAction, Value};
use support::*;
use sync_client::{
    Client, ClientConfig, ConnectError, DocEvent, DocHandle, DocSyncError, Status, Subscription,
    WaitSavedError,
};
use sync_protocol::{AckStatus, ErrorCode};
use sync_server::auth::issue_token;

const WAIT: Duration = Duration::from_secs(20);

type Events = Arc<Mutex<Vec<DocEvent>>>;

fn record(doc: &DocHandle) -> (Events, Subscription) {
    let events: Events = Arc::default();
    let sink = Arc::clone(&events);
    let subscription = doc.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    (events, subscription)
}

/// Waits (polling, bounded by `WAIT`) until `condition` holds on the events recorded so far.
fn wait_events(events: &Events, condition: impl Fn(&[DocEvent]) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition(&events.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "events: {:?}",
            events.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sets_key(event: &DocEvent, origin: Origin, wanted: &str, wanted_value: i64) -> bool {
    matches!(event, DocEvent::Changed { origin: o, patches } if *o == origin
        && patches.iter().any(|p| matches!(&p.action,
            PatchAction::MapSet { key, value } if key == wanted && *value == Value::from(wanted_value))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_see_local_remote_and_acknowledgement_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let (a, b) = (
        Client::start(ClientConfig::new(url(addr))),
        Client::start(ClientConfig::new(url(addr))),
    );
    let (doc_a, doc_b) = (a.open("events").unwrap(), b.open("events").unwrap());
    let (seen_a, _guard_a) = record(&doc_a);
    let (seen_b, _guard_b) = record(&doc_b);

    doc_a.edit(|d| d.set(MapId::ROOT, "k", 1)).unwrap();
    // The writer: its own edit (local, with the patch), then the server's acknowledgement,
    // then saved, in that order.
    wait_events(&seen_a, |events| events.contains(&DocEvent::Saved));
    {
        let events = seen_a.lock().unwrap();
        let local = events
            .iter()
            .position(|e| sets_key(e, Origin::Local, "k", 1))
            .unwrap();
        let acked = events
            .iter()
            .position(|e| matches!(e, DocEvent::Acknowledged { batch, version } if *batch >= 1 && !version.is_empty()))
            .unwrap();
        let saved = events.iter().position(|e| *e == DocEvent::Saved).unwrap();
        assert!(local < acked && acked < saved, "{events:?}");
    }
    // The other client: a remote change with the same patch.
    wait_events(&seen_b, |events| {
        events.iter().any(|e| sets_key(e, Origin::Remote, "k", 1))
    });
    assert!(
        !seen_b.lock().unwrap().iter().any(|e| matches!(
            e,
            DocEvent::Changed {
                origin: Origin::Local,
                ..
            }
        )),
        "b made no local change"
    );
    assert_eq!(doc_a.last_error(), None);
    a.close().await;
    b.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_callbacks_stop_and_a_panicking_one_does_not_stop_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let addr = server.local_addr();
    let (a, b) = (
        Client::start(ClientConfig::new(url(addr))),
        Client::start(ClientConfig::new(url(addr))),
    );
    let (doc_a, doc_b) = (a.open("panics").unwrap(), b.open("panics").unwrap());
    let panics = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&panics);
    let _panicking = doc_b.on_event(move |event| {
        if matches!(event, DocEvent::Changed { .. }) {
            counter.fetch_add(1, Ordering::SeqCst);
            panic!("a buggy callback");
        }
    });
    let (dropped, dropped_guard) = record(&doc_b);
    let (kept, _kept_guard) = record(&doc_b);

    for i in 1..=2 {
        doc_a.edit(|d| d.set(MapId::ROOT, "n", i)).unwrap();
        assert_eq!(doc_a.wait_saved(WAIT).await, Ok(()));
        wait_events(&kept, |events| {
            events.iter().any(|e| sets_key(e, Origin::Remote, "n", i))
        });
    }
    // The panicking callback was called each time and stayed registered; the ones after it
    // in the same event were called too.
    assert_eq!(panics.load(Ordering::SeqCst), 2);
    assert!(
        dropped
            .lock()
            .unwrap()
            .iter()
            .any(|e| sets_key(e, Origin::Remote, "n", 2))
    );

    dropped_guard.unsubscribe();
    let before = dropped.lock().unwrap().len();
    doc_a.edit(|d| d.set(MapId::ROOT, "n", 3)).unwrap();
    // Syncing went on, and local edits on b still work.
    assert!(
        doc_b
            .wait_until(WAIT, |d| d.get(MapId::ROOT, "n").unwrap()
                == Some(&Value::from(3)))
            .await
    );
    wait_events(&kept, |events| {
        events.iter().any(|e| sets_key(e, Origin::Remote, "n", 3))
    });
    // Delivered to `kept` means delivered to every registered callback, in order: the
    // unsubscribed one got nothing more.
    assert_eq!(dropped.lock().unwrap().len(), before);
    assert_eq!(panics.load(Ordering::SeqCst), 3);
    doc_b.edit(|d| d.set(MapId::ROOT, "from_b", 1)).unwrap();
    assert_eq!(doc_b.wait_saved(WAIT).await, Ok(()));
    a.close().await;
    b.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_saved_reports_refusals_and_last_error_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |c| {
        c.jwt_secret = Some(SECRET.into());
        c.limits.max_document = 4096;
    })
    .await;
    let addr = server.local_addr();

    // A read-only token: the client does not send, and says why it cannot be saved.
    let reader = Client::start(ClientConfig {
        token: Some(issue_token(SECRET, "reader", &["docs/*"], &[], 3600).unwrap()),
        ..ClientConfig::new(url(addr))
    });
    let doc = reader.open("docs/1").unwrap();
    doc.edit(|d| d.set(MapId::ROOT, "mine", 1)).unwrap();
    assert_eq!(doc.wait_saved(WAIT).await, Err(WaitSavedError::ReadOnly));
    // A document outside the grant: the subscription is refused.
    let private = reader.open("private").unwrap();
    let (events, _guard) = record(&private);
    // Let the refusal arrive first, while the document is still empty (and so "saved"): it
    // must still stand once there is something to save.
    let deadline = std::time::Instant::now() + WAIT;
    while private.last_error().is_none() {
        assert!(std::time::Instant::now() < deadline, "no refusal");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    private.edit(|d| d.set(MapId::ROOT, "mine", 1)).unwrap();
    match private.wait_saved(WAIT).await {
        Err(WaitSavedError::Refused(DocSyncError::Server {
            code: ErrorCode::PermissionDenied,
            ..
        })) => {}
        other => panic!("expected a refused subscription, got {other:?}"),
    }
    assert!(matches!(
        private.last_error(),
        Some(DocSyncError::Server {
            code: ErrorCode::PermissionDenied,
            ..
        })
    ));
    wait_events(&events, |events| {
        events.iter().any(|e| {
            matches!(
                e,
                DocEvent::Error(DocSyncError::Server {
                    code: ErrorCode::PermissionDenied,
                    ..
                })
            )
        })
    });
    reader.close().await;

    // A writer whose batch is over the document size limit.
    let writer = Client::start(ClientConfig {
        token: Some(issue_token(SECRET, "writer", &[], &["*"], 3600).unwrap()),
        ..ClientConfig::new(url(addr))
    });
    let capped = writer.open("capped").unwrap();
    capped.edit(|d| d.set(MapId::ROOT, "small", 1)).unwrap();
    assert_eq!(capped.wait_saved(WAIT).await, Ok(()));
    let big = "z".repeat(20_000);
    capped
        .edit(|d| d.set(MapId::ROOT, "big", big.as_str()))
        .unwrap();
    let refused = capped.wait_saved(WAIT).await;
    match &refused {
        Err(WaitSavedError::Refused(DocSyncError::BatchRefused {
            status: AckStatus::TooLarge,
            ..
        })) => {}
        other => panic!("expected a refused batch, got {other:?}"),
    }
    assert_eq!(
        capped.last_error().map(WaitSavedError::Refused),
        refused.err()
    );
    assert!(!capped.is_saved());
    writer.close().await;
    server.shutdown().await;
}

/// Polls `future` to completion on this thread, without any runtime (what a desktop app's
/// own event loop, or `futures::executor::block_on`, would do).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// `Client::start` from a plain test, no runtime: the client runs its own, syncs with a real
/// server, and its async methods work under a minimal executor.
#[test]
fn a_client_started_outside_a_runtime_syncs() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let dir = tempfile::tempdir().unwrap();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_runtime.block_on(start_server(dir.path(), |_| {}));
    let addr = server.local_addr();

    let client = Client::start(ClientConfig::new(url(addr)));
    let other = Client::start(ClientConfig::new(url(addr)));
    let doc = client.open("plain").unwrap();
    let seen = other.open("plain").unwrap();
    let (events, _guard) = record(&seen);
    doc.edit(|d| d.set(MapId::ROOT, "k", 7)).unwrap();
    assert!(block_on(client.wait_connected(WAIT)));
    assert_eq!(block_on(doc.wait_saved(WAIT)), Ok(()));
    assert!(block_on(
        seen.wait_until(WAIT, |d| d.get(MapId::ROOT, "k").unwrap()
            == Some(&Value::from(7)))
    ));
    wait_events(&events, |events| {
        events.iter().any(|e| sets_key(e, Origin::Remote, "k", 7))
    });
    block_on(client.close());
    block_on(other.close());
    assert_eq!(client.status(), Status::Closed);
    // Closed: waiting says so at once.
    doc.edit(|d| d.set(MapId::ROOT, "k", 8)).unwrap();
    assert_eq!(block_on(doc.wait_saved(WAIT)), Err(WaitSavedError::Closed));
    server_runtime.block_on(server.shutdown());
}

/// Offline: `wait_saved` times out and says the client is not connected; an unusable URL
/// stops it for good and says why. No runtime here either.
#[test]
fn wait_saved_times_out_offline_and_reports_permanent_failures() {
    let offline = Client::start(ClientConfig {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        // Nothing listens there.
        ..ClientConfig::new("ws://127.0.0.1:9/sync")
    });
    let doc = offline.open("offline").unwrap();
    doc.edit(|d| d.set(MapId::ROOT, "k", 1)).unwrap();
    let started = Instant::now();
    let error = block_on(doc.wait_saved(Duration::from_millis(300))).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(error.is_offline(), "{error}");
    assert!(matches!(
        error,
        WaitSavedError::TimedOut {
            status: Status::Disconnected
        }
    ));
    block_on(offline.close());

    let broken = Client::start(ClientConfig::new("http://127.0.0.1:9/sync"));
    let doc = broken.open("broken").unwrap();
    doc.edit(|d| d.set(MapId::ROOT, "k", 1)).unwrap();
    match block_on(doc.wait_saved(WAIT)) {
        Err(WaitSavedError::ConnectionFailed(ConnectError::InvalidUrl(_))) => {}
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    block_on(broken.close());
}
