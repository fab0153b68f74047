//! Accepting connections: load shedding and per-IP limits before any parsing, TLS (optional,
//! see [`tls`](crate::tls)), the HTTP routes, WebSocket upgrades handed to
//! [`connection`], and graceful shutdown. Accept failures (out of file
//! descriptors) back off and are logged at most once per interval (see
//! [`descriptors`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use crate::auth::Authenticator;
use crate::budget::BytePool;
use crate::cluster::{Cluster, ClusterStatus};
use crate::config::Config;
use crate::connection::{self, ServerContext};
use crate::descriptors::{self, AcceptErrors};
use crate::document::Registry;
use crate::http::{self, Request};
use crate::limits::IpLimiter;
use crate::metrics::{Metrics, Reject};
use crate::storage::Storage;
use crate::tls::{CertReloader, TlsError};

/// A running server: its address, and how to stop it.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use sync_server::{Config, server::Server, storage::SqliteStorage};
///
/// let storage = Arc::new(SqliteStorage::open("./data".as_ref())?);
/// let server = Server::bind(Config::default(), storage).await?;
/// println!("listening on {}", server.local_addr());
/// server.shutdown().await; // or server.run_until_signal().await
/// # Ok(()) }
/// ```
pub struct Server<S: Storage> {
    local_addr: SocketAddr,
    context: Arc<ServerContext<S>>,
    shutdown: watch::Sender<bool>,
    accept_task: tokio::task::JoinHandle<JoinSet<()>>,
    tls: Option<Arc<CertReloader>>,
}

impl<S: Storage> Server<S> {
    /// Binds the listener and starts accepting connections.
    ///
    /// `max_connections` is lowered to what the process's file descriptor limit allows (see
    /// [`descriptors`]); with `config.tls`, the certificate is loaded now (an error if it does
    /// not load, wrapping a [`TlsError`]) and reloaded on SIGHUP and when
    /// the files change.
    pub async fn bind(mut config: Config, storage: Arc<S>) -> std::io::Result<Server<S>> {
        let tls = match &config.tls {
            Some(files) => Some(
                CertReloader::new(&files.cert, &files.key)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            ),
            None => None,
        };
        apply_descriptor_cap(&mut config.limits);
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let metrics = Arc::new(Metrics::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let cluster = match config.cluster.as_ref().map(|c| c.to_cluster_config()) {
            None => None,
            Some(None) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "incomplete cluster settings (Config::validate says what is missing)",
                ));
            }
            Some(Some(cluster_config)) => {
                let node = match cluster_config.node_id {
                    Some(node) => node,
                    None => crate::cluster::load_or_create_node_id(&config.data_dir)?,
                };
                Some(
                    Cluster::start(
                        &cluster_config,
                        node,
                        !storage.is_shared(),
                        config.limits.max_message,
                        Arc::clone(&metrics),
                        shutdown_rx.clone(),
                    )
                    .await?,
                )
            }
        };
        let registry = Registry::with_cluster(
            storage,
            Arc::clone(&metrics),
            config.limits.clone(),
            cluster.as_ref().map(|(cluster, _)| cluster.clone()),
        );
        registry.spawn_evictor(Duration::from_secs(1));
        let cluster = cluster.map(|(cluster, inbound)| {
            let registry = registry.clone();
            tokio::spawn(async move {
                if !registry.storage().is_shared() {
                    let indexing = registry.clone();
                    tokio::spawn(async move { indexing.index_stored_documents().await });
                }
                registry.follow_cluster(inbound).await
            });
            cluster
        });
        let auth = Authenticator::new(config.jwt_secret.as_deref());
        if auth.is_open() {
            tracing::warn!(
                listen = %local_addr,
                "no token secret configured: the server is OPEN to anyone who can reach it (allowed on loopback only)"
            );
        } else if tls.is_none() && !local_addr.ip().is_loopback() {
            tracing::warn!(
                listen = %local_addr,
                "no TLS configured: tokens and documents travel in clear (use --tls-cert and --tls-key, or a TLS proxy in front)"
            );
        }
        let context = Arc::new(ServerContext {
            registry,
            metrics,
            limits: config.limits.clone(),
            auth,
            reassembly: Arc::new(BytePool::new(config.limits.reassembly_total)),
            shutdown: shutdown_rx.clone(),
            cluster,
        });
        let acceptor = tls
            .as_ref()
            .map(|(_, server_config)| TlsAcceptor::from(Arc::clone(server_config)));
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&context), acceptor));
        if context.registry.storage().is_shared() {
            let (registry, stop) = (context.registry.clone(), shutdown_rx.clone());
            tokio::spawn(async move { registry.follow_storage_hints(stop).await });
        }
        let tls = tls.map(|(reloader, _)| reloader);
        if let Some(reloader) = &tls {
            // The handler is installed before `bind` returns, so a SIGHUP from then on
            // reloads rather than kills.
            tokio::spawn(reload_loop(
                Arc::clone(reloader),
                Hangup::new(),
                config.tls_reload_interval,
                shutdown_rx,
            ));
        }
        tracing::info!(listen = %local_addr, tls = tls.is_some(), "sync server listening");
        Ok(Server {
            local_addr,
            context,
            shutdown,
            accept_task,
            tls,
        })
    }

    /// Loads the TLS certificate files again now (as SIGHUP does). Without TLS, does nothing.
    /// On error the previous certificate stays in use.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        match &self.tls {
            Some(reloader) => reloader.reload(),
            None => Ok(()),
        }
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.context.metrics
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        self.shutdown().await;
    }

    /// Stops accepting, closes every connection with a close frame, persists every document's
    /// queued changes, and returns when all is done.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let connections = match self.accept_task.await {
            Ok(connections) => connections,
            Err(_) => JoinSet::new(),
        };
        let mut connections = connections;
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(15), drain)
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in 15 s; dropping them");
        }
        self.context.registry.shutdown().await;
        tracing::info!("sync server stopped");
    }
}

/// Bytes a connection buffers before writing to the socket (frames of a burst go out together).
const WRITE_BUFFER: usize = 16 * 1024;

/// Lowers `max_connections` to what the descriptor limit leaves after the reserve, and says so.
fn apply_descriptor_cap(limits: &mut crate::config::Limits) {
    let limit = descriptors::soft_limit();
    let configured = limits.max_connections;
    let cap = descriptors::connection_cap(configured, limit);
    limits.max_connections = cap;
    if cap < configured {
        tracing::warn!(
            configured,
            max_connections = cap,
            descriptor_limit = limit,
            "max_connections lowered to fit the file descriptor limit (raise it with `ulimit -n` or LimitNOFILE=)"
        );
    } else {
        tracing::info!(
            max_connections = cap,
            descriptor_limit = limit,
            "connection cap"
        );
    }
}

/// What a client shed at the descriptor limit reads (if it reads anything before the close).
const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 40\r\nConnection: close\r\n\r\nthe server is out of file descriptors.\r\n";

/// A descriptor held in reserve: closed to accept (and at once refuse) a waiting client when
/// the process has run out, so that clients are told instead of waiting in the backlog.
fn spare_descriptor() -> Option<std::fs::File> {
    #[cfg(unix)]
    {
        std::fs::File::open("/dev/null").ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

async fn accept_loop<S: Storage>(
    listener: TcpListener,
    context: Arc<ServerContext<S>>,
    tls: Option<TlsAcceptor>,
) -> JoinSet<()> {
    let ip_limiter = IpLimiter::new(context.limits.max_connections_per_ip);
    let next_id = AtomicU64::new(1);
    let mut shutdown = context.shutdown.clone();
    let mut connections = JoinSet::new();
    let mut errors = AcceptErrors::new();
    let mut spare = spare_descriptor();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                errors.succeeded();
                // Lost earlier (reopening failed while out of descriptors): try again now.
                if spare.is_none() {
                    spare = spare_descriptor();
                }
                accepted
            }
            Err(error) => {
                let exhausted = descriptors::is_resource_exhaustion(&error);
                let failure = errors.failed(Instant::now());
                if let Some(suppressed) = failure.log {
                    tracing::warn!(
                        %error,
                        suppressed,
                        open = context.metrics.connections.load(Relaxed),
                        "accept failed (at most one such line per 10 s; `suppressed` counts the others)"
                    );
                }
                // Out of descriptors: free the spare one to refuse a waiting client at once,
                // then keep going while that works (each round clears one client).
                if exhausted && spare.take().is_some() {
                    let shed = shed_one(&listener, tls.is_none()).await;
                    spare = spare_descriptor();
                    if shed {
                        context.metrics.rejected(Reject::Overloaded);
                        continue;
                    }
                }
                // Back off instead of spinning.
                tokio::select! {
                    _ = tokio::time::sleep(failure.pause) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = next_id.fetch_add(1, Relaxed);
        let slot = ip_limiter.acquire(peer.ip());
        let context = Arc::clone(&context);
        let tls = tls.clone();
        let span = tracing::info_span!("conn", id, peer = %peer, subject = tracing::field::Empty);
        connections.spawn(
            async move {
                let _slot = slot.as_ref();
                let deadline = Instant::now() + context.limits.handshake_timeout;
                let Some(tls) = tls else {
                    if slot.is_none() {
                        refuse_per_ip(stream, &context).await;
                    } else {
                        handle(stream, context, id, deadline).await;
                    }
                    return;
                };
                if slot.is_none() {
                    // A refusal is not worth a TLS handshake: close at once.
                    context.metrics.rejected(Reject::PerIpLimit);
                    return;
                }
                // Bounded by the same deadline as the HTTP head and the Hello; no connection
                // slot is taken before the upgrade, so failures cost none.
                match tokio::time::timeout_at(deadline.into(), tls.accept(stream)).await {
                    Ok(Ok(stream)) => handle(stream, context, id, deadline).await,
                    Ok(Err(error)) => {
                        context.metrics.rejected(Reject::BadHandshake);
                        tracing::debug!(%error, "TLS handshake failed");
                    }
                    Err(_) => {
                        context.metrics.rejected(Reject::BadHandshake);
                        tracing::debug!("TLS handshake timed out");
                    }
                }
            }
            .instrument(span),
        );
    }
    connections
}

/// Accepts one waiting client with the descriptor just freed and closes it at once (after a
/// 503 on plain connections). Returns whether there was one.
async fn shed_one(listener: &TcpListener, plain: bool) -> bool {
    match tokio::time::timeout(Duration::from_millis(1), listener.accept()).await {
        Ok(Ok((stream, _))) => {
            if plain {
                // Best effort, without waiting: a fresh socket's buffer takes it.
                let _ = stream.try_write(SHED_RESPONSE);
            }
            true
        }
        _ => false,
    }
}

async fn refuse_per_ip<S: Storage>(mut stream: TcpStream, context: &ServerContext<S>) {
    context.metrics.rejected(Reject::PerIpLimit);
    let _ = http::respond(
        &mut stream,
        429,
        "text/plain",
        "too many connections from this address\n",
    )
    .await;
}

/// Reloads the certificate on SIGHUP and when its files change, until shutdown.
async fn reload_loop(
    reloader: Arc<CertReloader>,
    mut hangup: Hangup,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut poll = tokio::time::interval(every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = hangup.recv() => reloader.reload_and_log("SIGHUP"),
            _ = poll.tick() => {
                if reloader.changed() {
                    reloader.reload_and_log("files changed");
                }
            }
        }
    }
}

/// SIGHUP where there is such a thing; never elsewhere.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Hangup {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|error| tracing::warn!(%error, "cannot listen for SIGHUP"))
                .ok();
            Hangup { signal }
        }
        #[cfg(not(unix))]
        {
            Hangup {}
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
            self.signal = None;
        }
        std::future::pending::<()>().await;
    }
}

/// Serves one connection (plain or TLS): its HTTP request, or its WebSocket session until it
/// ends. `deadline` bounds the handshake (TLS, HTTP head, Hello).
async fn handle<S: Storage, T: AsyncRead + AsyncWrite + Unpin>(
    mut stream: T,
    context: Arc<ServerContext<S>>,
    id: u64,
    deadline: Instant,
) {
    let limits = &context.limits;
    let read = tokio::time::timeout_at(
        deadline.into(),
        http::read_request(&mut stream, limits.max_request_head),
    )
    .await;
    let (request, leftover) = match read {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(error)) => {
            context.metrics.rejected(Reject::BadHandshake);
            let status = match error {
                http::HttpError::HeadTooLarge => 431,
                _ => 400,
            };
            let _ =
                respond_and_close(&mut stream, status, "text/plain", &format!("{error}\n")).await;
            return;
        }
        Err(_) => {
            context.metrics.rejected(Reject::BadHandshake);
            return;
        }
    };
    match request {
        Request::Get(path) => {
            let (status, content_type, body) = route(&path, &context).await;
            let _ = respond_and_close(&mut stream, status, content_type, &body).await;
        }
        Request::Other { method } => {
            let _ = respond_and_close(
                &mut stream,
                405,
                "text/plain",
                &format!("{method} is not supported\n"),
            )
            .await;
        }
        Request::Upgrade {
            key,
            offers_subprotocol,
        } => {
            let open = context.metrics.connections.load(Relaxed);
            if open >= limits.max_connections as i64 {
                context.metrics.rejected(Reject::Overloaded);
                let _ = respond_and_close(
                    &mut stream,
                    503,
                    "text/plain",
                    "the server is at its connection limit; retry later\n",
                )
                .await;
                return;
            }
            if http::accept_upgrade(&mut stream, &key, offers_subprotocol)
                .await
                .is_err()
            {
                return;
            }
            let config = WebSocketConfig::default()
                .max_frame_size(Some(limits.max_frame))
                .max_message_size(Some(limits.max_frame))
                .read_buffer_size(8 * 1024)
                // Frames written in a burst are flushed together (see `write_queued`). The
                // maximum must exceed the target, or tungstenite panics.
                .write_buffer_size(WRITE_BUFFER)
                .max_write_buffer_size(WRITE_BUFFER + limits.max_frame.saturating_mul(4));
            let socket =
                WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(config))
                    .await;
            context.metrics.connections.fetch_add(1, Relaxed);
            context.metrics.connections_total.fetch_add(1, Relaxed);
            connection::serve(socket, Arc::clone(&context), id, deadline).await;
            context.metrics.connections.fetch_sub(1, Relaxed);
        }
    }
}

/// Answers a plain HTTP request and ends the connection cleanly: with TLS, `shutdown` sends
/// close_notify, without which HTTPS clients report a truncated response.
async fn respond_and_close<T: AsyncWrite + Unpin>(
    stream: &mut T,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    http::respond(stream, status, content_type, body).await?;
    // Bounded: a client that does not read must not hold the task.
    tokio::time::timeout(Duration::from_secs(1), stream.shutdown())
        .await
        .unwrap_or(Ok(()))
}

async fn route<S: Storage>(path: &str, context: &ServerContext<S>) -> (u16, &'static str, String) {
    match path {
        "/healthz" => (200, "text/plain", "ok\n".into()),
        "/readyz" => match context.registry.storage().check().await {
            Ok(()) => (200, "text/plain", "ready\n".into()),
            Err(error) => (503, "text/plain", format!("storage unreachable: {error}\n")),
        },
        "/metrics" => (200, "text/plain; version=0.0.4", context.metrics.render()),
        "/" => (200, "text/html; charset=utf-8", status_page(context)),
        _ => (404, "text/plain", "not found\n".into()),
    }
}

fn status_page<S: Storage>(context: &ServerContext<S>) -> String {
    let metrics = &context.metrics;
    let mut page = format!(
        "<!doctype html><meta charset=utf-8><title>sync-server</title>\
         <h1>sync-server {}</h1>\
         <p>WebSocket endpoint: <code>{}</code> (subprotocol <code>{}</code>)</p>\
         <ul><li>open connections: {} (cap {})</li><li>documents loaded: {}</li></ul>\
         <p><a href=/metrics>/metrics</a> · <a href=/healthz>/healthz</a> · <a href=/readyz>/readyz</a></p>",
        env!("CARGO_PKG_VERSION"),
        http::SYNC_PATH,
        sync_protocol::SUBPROTOCOL,
        metrics.connections.load(Relaxed),
        context.limits.max_connections,
        context.registry.loaded(),
    );
    if let Some(cluster) = &context.cluster {
        page.push_str(&cluster_section(&cluster.status()));
    }
    page
}

/// The status page's view of the cluster (ids, addresses and states are not user input, but
/// are escaped anyway since they come from other nodes).
fn cluster_section(status: &ClusterStatus) -> String {
    let escape = |text: String| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut section = format!(
        "<h2>Cluster</h2><p>this node: <code>{}</code> at <code>{}</code>, holding {} documents live</p>\
         <table><tr><th>node</th><th>address</th><th>state</th></tr>",
        status.node,
        escape(status.addr.to_string()),
        status.held,
    );
    if status.members.is_empty() {
        section.push_str("<tr><td colspan=3>no other member known yet</td></tr>");
    }
    for member in &status.members {
        section.push_str(&format!(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            member.id,
            escape(member.addr.to_string()),
            member.state.label()
        ));
    }
    section.push_str("</table>");
    section
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
