//! Node-to-node TCP: one listener for frames from other nodes, and one outgoing link per peer
//! address with a bounded queue.
//!
//! Links are one-way (a node sends on the connection it opened and reads on the ones it
//! accepted), so no connection is ever shared by two writers. A frame that does not open (bad
//! tag, other version, garbage) closes its connection, with a log line and a count in
//! `sync_cluster_refused_total`. Nothing waits on a slow peer: a full queue drops the frame
//! (SWIM tolerates loss, and a dropped change is recovered by the pull on load and later by
//! anti-entropy) and counts it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::wire::{NodeMessage, Sealer};
use crate::metrics::Metrics;

/// Frames queued to one peer before new ones are dropped.
pub const PEER_QUEUE: usize = 4096;

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest pause between attempts to reach a peer that does not answer.
const MAX_RECONNECT_PAUSE: Duration = Duration::from_secs(2);

/// A frame longer than this (its length prefix) closes the connection before it is read.
pub fn frame_limit(max_message: usize) -> usize {
    max_message.saturating_add(64 * 1024)
}

/// Accepts connections from other nodes and hands each opened frame to `deliver`, until
/// `stop` turns true.
pub async fn listen(
    listener: TcpListener,
    sealer: Sealer,
    limit: usize,
    metrics: Arc<Metrics>,
    deliver: mpsc::Sender<NodeMessage>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a cluster connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = super::stopped(&mut stop) => return,
        };
        let _ = stream.set_nodelay(true);
        let (sealer, metrics, deliver, stop) = (
            sealer.clone(),
            Arc::clone(&metrics),
            deliver.clone(),
            stop.clone(),
        );
        tokio::spawn(read_frames(
            stream, peer, sealer, limit, metrics, deliver, stop,
        ));
    }
}

async fn read_frames(
    mut stream: TcpStream,
    peer: SocketAddr,
    sealer: Sealer,
    limit: usize,
    metrics: Arc<Metrics>,
    deliver: mpsc::Sender<NodeMessage>,
    mut stop: watch::Receiver<bool>,
) {
    let mut frame = Vec::new();
    loop {
        let length = tokio::select! {
            length = stream.read_u32() => match length {
                Ok(length) => length as usize,
                Err(_) => return, // Closed.
            },
            _ = super::stopped(&mut stop) => return,
        };
        if length > limit {
            metrics.cluster_refused.fetch_add(1, Relaxed);
            tracing::warn!(%peer, length, limit, "cluster frame too large; closing the connection");
            return;
        }
        frame.resize(length, 0);
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        metrics
            .cluster_bytes_in
            .fetch_add(length as u64 + 4, Relaxed);
        match sealer.open(&frame) {
            Ok(message) => {
                metrics.cluster_messages_in.fetch_add(1, Relaxed);
                if deliver.send(message).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                metrics.cluster_refused.fetch_add(1, Relaxed);
                tracing::warn!(%peer, %error, "refused a cluster frame; closing the connection");
                return;
            }
        }
    }
}

/// The sending side of one peer: frames go into a bounded queue that a task writes out,
/// (re)connecting as needed.
#[derive(Clone, Debug)]
pub struct PeerLink {
    queue: mpsc::Sender<Vec<u8>>,
}

impl PeerLink {
    /// Starts the link's writer task for `addr`; it ends when every clone of the link is
    /// dropped.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> PeerLink {
        let (queue, frames) = mpsc::channel(PEER_QUEUE);
        tokio::spawn(write_frames(addr, frames, metrics));
        PeerLink { queue }
    }

    /// Queues a sealed frame; `false` (and counted) if the queue is full.
    pub fn send(&self, frame: Vec<u8>, metrics: &Metrics) -> bool {
        match self.queue.try_send(frame) {
            Ok(()) => true,
            Err(_) => {
                metrics.cluster_dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }
}

async fn write_frames(
    addr: SocketAddr,
    mut frames: mpsc::Receiver<Vec<u8>>,
    metrics: Arc<Metrics>,
) {
    let mut pause = Duration::from_millis(50);
    let mut stream: Option<TcpStream> = None;
    while let Some(frame) = frames.recv().await {
        let mut sent = false;
        for _attempt in 0..2 {
            if stream.is_none() {
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                    Ok(Ok(connected)) => {
                        let _ = connected.set_nodelay(true);
                        stream = Some(connected);
                        pause = Duration::from_millis(50);
                    }
                    _ => break,
                }
            }
            let Some(open) = stream.as_mut() else { break };
            let length = (frame.len() as u32).to_be_bytes();
            if open.write_all(&length).await.is_ok() && open.write_all(&frame).await.is_ok() {
                metrics.cluster_messages_out.fetch_add(1, Relaxed);
                metrics
                    .cluster_bytes_out
                    .fetch_add(frame.len() as u64 + 4, Relaxed);
                sent = true;
                break;
            }
            stream = None; // Broken: reconnect once for this frame.
        }
        if !sent {
            // The peer is unreachable: what waits behind this frame is stale by the time it
            // answers (probes, pushes the pull on load recovers), so it goes too.
            let mut dropped = 1;
            while frames.try_recv().is_ok() {
                dropped += 1;
            }
            metrics.cluster_dropped.fetch_add(dropped, Relaxed);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
        }
    }
}
