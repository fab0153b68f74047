//! Accepting connections: load shedding and per-IP limits before any parsing, the HTTP routes,
//! WebSocket upgrades handed to [`connection`](crate::connection), and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use crate::auth::Authenticator;
use crate::budget::BytePool;
use crate::config::Config;
use crate::connection::{self, ServerContext};
use crate::document::Registry;
use crate::http::{self, Request};
use crate::limits::IpLimiter;
use crate::metrics::{Metrics, Reject};
use crate::storage::Storage;

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
}

impl<S: Storage> Server<S> {
    /// Binds the listener and starts accepting connections.
    pub async fn bind(config: Config, storage: Arc<S>) -> std::io::Result<Server<S>> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let metrics = Arc::new(Metrics::default());
        let registry = Registry::new(storage, Arc::clone(&metrics), config.limits.clone());
        registry.spawn_evictor(Duration::from_secs(1));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let auth = Authenticator::new(config.jwt_secret.as_deref());
        if auth.is_open() {
            tracing::warn!(
                listen = %local_addr,
                "no token secret configured: the server is OPEN to anyone who can reach it (allowed on loopback only)"
            );
        }
        let context = Arc::new(ServerContext {
            registry,
            metrics,
            limits: config.limits.clone(),
            auth,
            reassembly: Arc::new(BytePool::new(config.limits.reassembly_total)),
            shutdown: shutdown_rx,
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&context)));
        tracing::info!(listen = %local_addr, "sync server listening");
        Ok(Server {
            local_addr,
            context,
            shutdown,
            accept_task,
        })
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

async fn accept_loop<S: Storage>(
    listener: TcpListener,
    context: Arc<ServerContext<S>>,
) -> JoinSet<()> {
    let ip_limiter = IpLimiter::new(context.limits.max_connections_per_ip);
    let next_id = AtomicU64::new(1);
    let mut shutdown = context.shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = next_id.fetch_add(1, Relaxed);
        let slot = ip_limiter.acquire(peer.ip());
        let context = Arc::clone(&context);
        let span = tracing::info_span!("conn", id, peer = %peer, subject = tracing::field::Empty);
        connections.spawn(
            async move {
                let _slot = slot.as_ref();
                if slot.is_none() {
                    context.metrics.rejected(Reject::PerIpLimit);
                    let mut stream = stream;
                    let _ = http::respond(
                        &mut stream,
                        429,
                        "text/plain",
                        "too many connections from this address\n",
                    )
                    .await;
                    return;
                }
                handle(stream, context, id).await;
            }
            .instrument(span),
        );
    }
    connections
}

async fn handle<S: Storage>(mut stream: TcpStream, context: Arc<ServerContext<S>>, id: u64) {
    let limits = &context.limits;
    let deadline = Instant::now() + limits.handshake_timeout;
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
            let _ = http::respond(&mut stream, status, "text/plain", &format!("{error}\n")).await;
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
            let _ = http::respond(&mut stream, status, content_type, &body).await;
        }
        Request::Other { method } => {
            let _ = http::respond(
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
                let _ = http::respond(
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
    format!(
        "<!doctype html><meta charset=utf-8><title>sync-server</title>\
         <h1>sync-server {}</h1>\
         <p>WebSocket endpoint: <code>{}</code> (subprotocol <code>{}</code>)</p>\
         <ul><li>open connections: {}</li><li>documents loaded: {}</li></ul>\
         <p><a href=/metrics>/metrics</a> · <a href=/healthz>/healthz</a> · <a href=/readyz>/readyz</a></p>",
        env!("CARGO_PKG_VERSION"),
        http::SYNC_PATH,
        sync_protocol::SUBPROTOCOL,
        metrics.connections.load(Relaxed),
        context.registry.loaded(),
    )
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
