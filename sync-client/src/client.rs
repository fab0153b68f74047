//! The client handle: configuration, open documents, connection status.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use crate::connection;
use crate::document::{DocEntry, DocHandle};
use crate::events::Dispatcher;
use crate::local_store;

/// How to reach the server and where to keep local copies.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The server's WebSocket URL, e.g. `ws://127.0.0.1:8080/sync` or
    /// `wss://sync.example.com/sync` (TLS).
    pub url: String,
    /// The signed token (servers without a secret need none).
    pub token: Option<String>,
    /// Where documents are saved locally; `None` keeps them in memory only.
    pub state_dir: Option<PathBuf>,
    /// First reconnect delay ceiling (doubles per failed attempt).
    pub backoff_base: Duration,
    /// Largest reconnect delay ceiling.
    pub backoff_max: Duration,
    /// Name and version, for the server's logs.
    pub agent: String,
    /// Extra certificates (PEM, one or more `CERTIFICATE` blocks) trusted as roots for
    /// `wss://`: a private CA, or a development server's self-signed certificate.
    pub tls_roots_pem: Option<String>,
    /// Whether the operating system's root certificates are trusted for `wss://` (default
    /// true); turn off to trust only `tls_roots_pem`.
    pub tls_system_roots: bool,
}

impl ClientConfig {
    /// Defaults for `url`: no token, no local files, backoff from 100 ms to 30 s, the system's
    /// root certificates for `wss://`.
    ///
    /// ```
    /// let config = sync_client::ClientConfig::new("ws://127.0.0.1:8080/sync");
    /// assert!(config.token.is_none() && config.state_dir.is_none());
    /// ```
    pub fn new(url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            token: None,
            state_dir: None,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            agent: concat!("sync-client/", env!("CARGO_PKG_VERSION")).into(),
            tls_roots_pem: None,
            tls_system_roots: true,
        }
    }
}

/// The connection's state, as the application may show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not connected (yet, or since a failure); reconnecting with backoff.
    Disconnected,
    /// Connected and past the handshake.
    Connected,
    /// The server refused the token; the client keeps retrying in case it is refreshed.
    Unauthorized(String),
    /// Connecting failed in a way retrying cannot fix (the server's certificate is not
    /// trusted, TLS failed, the URL or the extra roots are invalid); the client stopped trying
    /// until [`Client::reconnect`]. [`ConnectError::is_permanent`] says which errors do this.
    Failed(ConnectError),
    /// [`Client::close`] was called.
    Closed,
}

pub(crate) struct Shared {
    pub docs: Mutex<BTreeMap<String, Arc<DocEntry>>>,
    pub config: ClientConfig,
    pub token: Mutex<Option<String>>,
    /// Wakes the connection task: local changes or new documents to send.
    pub wake: Notify,
    pub status: watch::Sender<Status>,
    pub closing: watch::Sender<bool>,
    /// The latest failed attempt to connect; cleared by a successful one.
    pub last_error: Mutex<Option<ConnectError>>,
    /// Wakes a client stopped on a permanent error ([`Client::reconnect`]).
    pub retry: Notify,
    pub epoch: Instant,
    /// The runtime the connection task runs on (the caller's, or the client's own thread's).
    pub runtime: Handle,
    /// Calls the change callbacks of every document.
    pub dispatcher: Arc<Dispatcher>,
}

impl Shared {
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A future ready at `deadline`, usable from any executor: a tokio timer when polled
    /// inside a runtime, otherwise a timer task on the client's runtime (ready at once if that
    /// runtime has shut down, after [`Client::close`]).
    pub(crate) async fn sleep_until(&self, deadline: tokio::time::Instant) {
        if Handle::try_current().is_ok() {
            tokio::time::sleep_until(deadline).await;
        } else {
            struct AbortOnDrop(JoinHandle<()>);
            impl Drop for AbortOnDrop {
                fn drop(&mut self) {
                    self.0.abort();
                }
            }
            // The timer is made inside the task: making one needs the runtime's context.
            let timer = self
                .runtime
                .spawn(async move { tokio::time::sleep_until(deadline).await });
            let mut timer = AbortOnDrop(timer);
            let _ = (&mut timer.0).await;
        }
    }

    pub(crate) fn entries(&self) -> Vec<Arc<DocEntry>> {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// The connection task, and how to wait for its end.
enum Task {
    /// Spawned on the caller's runtime.
    Spawned(JoinHandle<()>),
    /// Running on the client's own thread and runtime; the sender is dropped when the thread
    /// has shut its runtime down.
    Thread(oneshot::Receiver<()>),
}

/// A connection to a sync server that keeps the open documents in sync, reconnecting as needed.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    task: Arc<Mutex<Option<Task>>>,
}

impl Client {
    /// Starts the client: it connects in the background.
    ///
    /// Inside a Tokio runtime (with its time and I/O drivers), the connection task is spawned
    /// on it. Anywhere else (a desktop app's main thread, a plain `#[test]`), the client starts
    /// its own thread, `sync-client`, with a single-threaded runtime for the connection, shut
    /// down by [`close`](Self::close). Either way the async methods ([`close`](Self::close),
    /// [`DocHandle::wait_saved`], ...) can be awaited from any executor, and the other methods
    /// are plain calls.
    ///
    /// ```no_run
    /// // No runtime here: the client runs its own.
    /// use sync_client::{Client, ClientConfig};
    /// let client = Client::start(ClientConfig::new("ws://127.0.0.1:8080/sync"));
    /// let notes = client.open("notes").expect("a valid id");
    /// notes.edit(|doc| doc.set(crdt_core::MapId::ROOT, "title", "Groceries")).ok();
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime, if the operating system refuses a thread or the runtime's I/O
    /// driver (as `std::thread::spawn` and `tokio::runtime::Runtime::new` do).
    pub fn start(config: ClientConfig) -> Client {
        // Outside a runtime: build ours first, so the shared state knows where timers run.
        let (runtime, owned) = match Handle::try_current() {
            Ok(current) => (current, None),
            Err(_) => {
                let owned = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("sync-client: cannot build its runtime: {e}"));
                (owned.handle().clone(), Some(owned))
            }
        };
        let (status, _) = watch::channel(Status::Disconnected);
        let (closing, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            docs: Mutex::new(BTreeMap::new()),
            token: Mutex::new(config.token.clone()),
            config,
            wake: Notify::new(),
            status,
            closing,
            last_error: Mutex::new(None),
            retry: Notify::new(),
            epoch: Instant::now(),
            runtime,
            dispatcher: Arc::new(Dispatcher::default()),
        });
        let task = match owned {
            None => Task::Spawned(shared.runtime.spawn(connection::run(Arc::clone(&shared)))),
            Some(runtime) => {
                let (done, finished) = oneshot::channel::<()>();
                let run = connection::run(Arc::clone(&shared));
                std::thread::Builder::new()
                    .name("sync-client".into())
                    .spawn(move || {
                        runtime.block_on(run);
                        // Timers of waits still pending end here (they see the client closed).
                        drop(runtime);
                        drop(done);
                    })
                    .unwrap_or_else(|e| panic!("sync-client: cannot start its thread: {e}"));
                Task::Thread(finished)
            }
        };
        Client {
            shared,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Opens a document: from its local file if there is one, empty otherwise; it starts
    /// syncing at once (or when the connection comes up). Opening twice gives the same document.
    pub fn open(&self, doc: &str) -> Result<DocHandle, ClientError> {
        if doc.is_empty() || doc.len() > 512 {
            return Err(ClientError::InvalidDocumentId);
        }
        let entry = {
            let mut docs = self.shared.docs.lock().unwrap_or_else(|e| e.into_inner());
            match docs.get(doc) {
                Some(entry) => Arc::clone(entry),
                None => {
                    let file = self
                        .shared
                        .config
                        .state_dir
                        .as_ref()
                        .map(|dir| local_store::path_for(dir, doc));
                    let entry = Arc::new(DocEntry::open(
                        doc,
                        file,
                        Arc::clone(&self.shared.dispatcher),
                    )?);
                    docs.insert(doc.to_owned(), Arc::clone(&entry));
                    entry
                }
            }
        };
        self.shared.wake.notify_one();
        Ok(DocHandle {
            entry,
            shared: Arc::clone(&self.shared),
        })
    }

    /// The connection's status now.
    pub fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    /// Why the latest attempt to connect failed (`None` once an attempt succeeds). A TLS or
    /// certificate failure shows here and as [`Status::Failed`].
    pub fn last_error(&self) -> Option<ConnectError> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Tries again after a permanent failure ([`Status::Failed`]), e.g. once the server's
    /// certificate was fixed or the user chose to trust it. Otherwise does nothing.
    pub fn reconnect(&self) {
        // Only while failed: a stored wake-up would otherwise skip the stop after the next
        // permanent failure. (Failed is set before the task waits, so none is lost.)
        if matches!(*self.shared.status.borrow(), Status::Failed(_)) {
            self.shared.retry.notify_one();
        }
    }

    /// Waits until connected or the timeout; returns whether connected.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut status = self.shared.status.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        tokio::select! {
            biased;
            connected = status.wait_for(|s| *s == Status::Connected) => connected.is_ok(),
            _ = self.shared.sleep_until(deadline) => *self.shared.status.borrow() == Status::Connected,
        }
    }

    /// Replaces the token: sent on the live connection at once, and used for reconnects.
    pub fn refresh_token(&self, token: String) {
        *self.shared.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
        self.shared.wake.notify_one();
    }

    /// Closes the connection and stops reconnecting. Local files stay as they are.
    pub async fn close(&self) {
        let _ = self.shared.closing.send_replace(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        match task {
            Some(Task::Spawned(task)) => {
                let _ = task.await;
            }
            Some(Task::Thread(finished)) => {
                let _ = finished.await;
            }
            None => {}
        }
        let _ = self.shared.status.send_replace(Status::Closed);
    }
}

/// What went wrong on the client's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// Document ids are 1 to 512 bytes.
    InvalidDocumentId,
    /// Reading or writing a local file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        message: String,
    },
    /// A local file does not load as a document.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it does not load.
        message: String,
    },
    /// The edit closure returned an error.
    Edit(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidDocumentId => f.write_str("document ids are 1 to 512 bytes long"),
            ClientError::Io { path, message } => {
                write!(f, "local file {}: {message}", path.display())
            }
            ClientError::Corrupt { path, message } => write!(
                f,
                "local file {} does not load as a document: {message}",
                path.display()
            ),
            ClientError::Edit(message) => write!(f, "the edit failed: {message}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Why connecting to the server failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a usable `ws://` or `wss://` URL. Permanent.
    InvalidUrl(String),
    /// `tls_roots_pem` does not parse, or there is no root certificate to trust. Permanent.
    RootCertificates(String),
    /// The server's certificate is not accepted: unknown issuer, another name, expired,
    /// revoked, or none presented. Permanent (retrying would fail the same way, and silently
    /// retrying would hide a misconfiguration or an interception).
    Certificate(String),
    /// TLS failed otherwise: the peer does not speak TLS on that port, refused the handshake,
    /// or has no protocol version in common. Permanent.
    Tls(String),
    /// The server refused the token. Retried (the token may be refreshed).
    Unauthorized(String),
    /// The network failed or the server closed, refused or timed out. Retried with backoff.
    Network(String),
    /// The server answered something the client does not understand, or an error frame.
    /// Retried with backoff.
    Protocol(String),
}

impl ConnectError {
    /// Whether the client stops retrying after this error (until [`Client::reconnect`]).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ConnectError::InvalidUrl(_)
                | ConnectError::RootCertificates(_)
                | ConnectError::Certificate(_)
                | ConnectError::Tls(_)
        )
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidUrl(why) => write!(f, "invalid server URL: {why}"),
            ConnectError::RootCertificates(why) => {
                write!(f, "invalid root certificates (tls_roots_pem): {why}")
            }
            ConnectError::Certificate(why) => {
                write!(f, "the server's certificate is not trusted: {why}")
            }
            ConnectError::Tls(why) => write!(f, "TLS failed: {why}"),
            ConnectError::Unauthorized(why) => write!(f, "the server refused the token: {why}"),
            ConnectError::Network(why) => write!(f, "network: {why}"),
            ConnectError::Protocol(why) => write!(f, "protocol: {why}"),
        }
    }
}

impl std::error::Error for ConnectError {}
