//! Several `sync-server` nodes as one service: membership, and changes pushed between the
//! nodes that hold a document live.
//!
//! - [`wire`] (`sync_protocol::node`): node frames, sealed with the cluster secret
//!   (HMAC-SHA256), versioned;
//! - [`transport`]: a TCP listener for node frames and a bounded outgoing link per peer;
//! - [`membership`]: SWIM by `foca` (suspicion, refutation), fed by the cluster task.
//!
//! # Data flow
//!
//! A document's actor that loads a document calls [`Cluster::hold`]: every member learns this
//! node holds it (`Holding`), and the members already holding it are asked for what this node
//! lacks (`Have`, answered with `Changes`). A batch a client sends is stored, acknowledged, and
//! then pushed by [`Cluster::push`] to the members holding the document, at most
//! [`PUSH_FANOUT`] of them: one message per holder per change, never relayed again by the
//! receivers (so N nodes cost N − 1 messages per change, not N²). Received `Changes` and `Have`
//! go to the server through the [`Inbound`] queue, which hands them to the document's actor.
//! Unloading calls [`Cluster::release`].
//!
//! Anti-entropy: every [`ClusterConfig::anti_entropy_interval`] the cluster task sends a
//! random live member the root of its [`digest::DigestIndex`] (every stored document's version
//! hash; built at start by scanning the store, then kept by the actors). Equal roots end the
//! round; otherwise the member answers its bucket hashes, this node sends its documents of the
//! differing buckets, and the member reconciles each differing document with a `Have` (which
//! the other side answers with what it lacks, asking back for what it lacks itself). This alone
//! makes the stores converge, with every push lost. With a shared storage (PostgreSQL) there is
//! nothing to reconcile and it is off.
//!
//! Not yet: write quorums; see issue 17.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crdt_core::VersionVector;
use foca::OwnedNotification;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub mod digest;
pub mod membership;
pub mod transport;

pub use sync_protocol::node::{self as wire, NodeId};

use membership::{MemberState, MemberView, Membership, NodeIdentity};
use transport::PeerLink;
use wire::{NodeBody, NodeMessage, Sealer};

use crate::metrics::Metrics;

/// Members a change is pushed to, at most (the others get it when they load the document).
pub const PUSH_FANOUT: usize = 8;

/// Documents named in one `Holding` message (a member that comes up is told every document
/// held here, in messages of this many).
const HOLDING_CHUNK: usize = 512;

/// Messages from other nodes waiting for the server (pushes are dropped past it, and counted).
pub const INBOUND_QUEUE: usize = 4096;

/// Documents one anti-entropy exchange reconciles at most (the rest in later rounds).
pub const RECONCILE_PER_ROUND: usize = 256;

/// How often a node compares its digest with a random member, unless configured.
pub const DEFAULT_ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(1);

/// A random node id (never zero: zero names a seed not met yet).
pub fn random_node_id() -> NodeId {
    let bits = crdt_core::ReplicaId::random().as_u128();
    NodeId((bits as u64).max(1))
}

/// The node id kept in `<dir>/node-id`, created there (random) at first start.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let first = sync_server::cluster::load_or_create_node_id(dir.path()).unwrap();
/// assert_eq!(sync_server::cluster::load_or_create_node_id(dir.path()).unwrap(), first);
/// ```
pub fn load_or_create_node_id(dir: &std::path::Path) -> std::io::Result<NodeId> {
    let path = dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.parse().map_err(|why: String| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {why}", path.display()),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            let id = random_node_id();
            let temporary = dir.join("node-id.tmp");
            std::fs::write(&temporary, format!("{id}\n"))?;
            std::fs::rename(&temporary, &path)?;
            Ok(id)
        }
        Err(error) => Err(error),
    }
}

/// How this node joins a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node's id; `None` loads (or creates) `<data_dir>/node-id`.
    pub node_id: Option<NodeId>,
    /// Where the cluster port listens.
    pub listen: SocketAddr,
    /// The address other nodes reach the cluster port at, if not `listen` (behind NAT or a
    /// proxy).
    pub advertise: Option<SocketAddr>,
    /// Cluster addresses of nodes to join through (any live member will do).
    pub seeds: Vec<SocketAddr>,
    /// The secret every node of the cluster shares; node frames are authenticated with it.
    pub secret: String,
    /// Whether client changes are pushed to the members holding their document and a node
    /// loading a document pulls from them (`true`); off, only anti-entropy moves changes
    /// between nodes (for tests and diagnosis).
    pub eager_push: bool,
    /// Time between anti-entropy rounds.
    pub anti_entropy_interval: Duration,
}

/// A change or a request from another node, for the server to hand to the document's actor.
#[derive(Debug)]
pub enum Inbound {
    /// Changes a member stored (a push, or the answer to this node's `Have`).
    Changes {
        /// The member's cluster address (where an answer goes).
        from: SocketAddr,
        /// The document.
        doc: String,
        /// The encoded update.
        update: Vec<u8>,
        /// The member's durable version after it.
        version: VersionVector,
    },
    /// Anti-entropy found the document differs from the member's: reconcile with it.
    Reconcile {
        /// The member's cluster address.
        from: SocketAddr,
        /// The document.
        doc: String,
    },
    /// A member loaded the document at `version` and asks for what it lacks.
    Have {
        /// The member's cluster address.
        from: SocketAddr,
        /// The document.
        doc: String,
        /// The member's version.
        version: VersionVector,
    },
}

/// This node's view of the cluster, for the status page.
#[derive(Clone, Debug)]
pub struct ClusterStatus {
    /// This node's id.
    pub node: NodeId,
    /// Its cluster address.
    pub addr: SocketAddr,
    /// The other members it knows of.
    pub members: Vec<MemberView>,
    /// Documents held live here.
    pub held: usize,
}

/// The handle actors, the registry and the server use; cheap to clone.
#[derive(Clone, Debug)]
pub struct Cluster {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    me: NodeIdentity,
    sealer: Sealer,
    metrics: Arc<Metrics>,
    links: Mutex<HashMap<SocketAddr, PeerLink>>,
    /// Members (by cluster address) as SWIM last reported them.
    members: Mutex<Vec<MemberView>>,
    /// Which members hold which documents live.
    holders: Mutex<HashMap<String, BTreeSet<SocketAddr>>>,
    /// Documents held live here.
    held: Mutex<BTreeSet<String>>,
    /// Every stored document's version hash, for anti-entropy.
    index: Mutex<digest::DigestIndex>,
    /// Whether the start-up scan filled the index (before, a digest would differ for nothing).
    index_ready: std::sync::atomic::AtomicBool,
    /// Whether anti-entropy runs (not with a shared storage).
    anti_entropy: bool,
    eager_push: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Resolves once `stop` turns true (or its sender is gone), holding no borrow of it.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Cluster {
    /// Binds the cluster port, starts membership (announcing to the seeds until some member
    /// answers) and returns the handle and the queue of what other nodes send for documents.
    /// Everything stops when `stop` turns true (this node then leaves the cluster cleanly).
    pub async fn start(
        config: &ClusterConfig,
        node: NodeId,
        anti_entropy: bool,
        max_message: usize,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<(Cluster, mpsc::Receiver<Inbound>)> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = match config.advertise {
            Some(addr) => addr,
            None => listener.local_addr()?,
        };
        let me = NodeIdentity {
            addr,
            id: node,
            bump: 1,
        };
        let shared = Arc::new(Shared {
            me: me.clone(),
            sealer: Sealer::new(config.secret.as_bytes()),
            metrics: Arc::clone(&metrics),
            links: Mutex::new(HashMap::new()),
            members: Mutex::new(Vec::new()),
            holders: Mutex::new(HashMap::new()),
            held: Mutex::new(BTreeSet::new()),
            index: Mutex::new(digest::DigestIndex::default()),
            index_ready: std::sync::atomic::AtomicBool::new(false),
            anti_entropy,
            eager_push: config.eager_push,
        });
        let cluster = Cluster { shared };
        let (frames_in, frames) = mpsc::channel(INBOUND_QUEUE);
        tokio::spawn(transport::listen(
            listener,
            cluster.shared.sealer.clone(),
            transport::frame_limit(max_message),
            metrics,
            frames_in,
            stop.clone(),
        ));
        let (inbound_in, inbound) = mpsc::channel(INBOUND_QUEUE);
        let membership = Membership::new(me, node.0 ^ now_ms());
        tokio::spawn(run(
            cluster.clone(),
            membership,
            config.seeds.clone(),
            config.anti_entropy_interval,
            frames,
            inbound_in,
            stop,
        ));
        tracing::info!(node = %node, cluster_addr = %addr, seeds = ?config.seeds, "cluster port listening");
        Ok((cluster, inbound))
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.shared.me.id
    }

    /// The members and their states as this node sees them.
    pub fn status(&self) -> ClusterStatus {
        ClusterStatus {
            node: self.shared.me.id,
            addr: self.shared.me.addr,
            members: lock(&self.shared.members).clone(),
            held: lock(&self.shared.held).len(),
        }
    }

    /// This node loaded `doc` at `version`: every member learns it holds it, and the members
    /// holding it are asked for what this node lacks.
    pub fn hold(&self, doc: &str, version: &VersionVector) {
        lock(&self.shared.held).insert(doc.to_owned());
        let holding = NodeBody::Holding {
            docs: vec![doc.to_owned()],
            holding: true,
        };
        for member in self.alive_members() {
            self.send(member, holding.clone());
        }
        if !self.shared.eager_push {
            return;
        }
        let have = NodeBody::Have {
            doc: doc.to_owned(),
            version: version.clone(),
        };
        for holder in self.holders_of(doc) {
            self.send(holder, have.clone());
        }
    }

    /// This node unloaded `doc`.
    pub fn release(&self, doc: &str) {
        lock(&self.shared.held).remove(doc);
        let released = NodeBody::Holding {
            docs: vec![doc.to_owned()],
            holding: false,
        };
        for member in self.alive_members() {
            self.send(member, released.clone());
        }
    }

    /// Changes this node's clients made to `doc`, now stored here: sent to the members that
    /// hold the document (at most [`PUSH_FANOUT`]).
    pub fn push(&self, doc: &str, update: Vec<u8>, version: &VersionVector) {
        if !self.shared.eager_push {
            return;
        }
        let holders = self.holders_of(doc);
        if holders.is_empty() {
            return;
        }
        let body = NodeBody::Changes {
            doc: doc.to_owned(),
            update,
            version: version.clone(),
            stored_at_ms: now_ms(),
        };
        for holder in holders.into_iter().take(PUSH_FANOUT) {
            self.send(holder, body.clone());
        }
        self.shared.metrics.cluster_pushes.fetch_add(1, Relaxed);
    }

    /// Answers a member's `Have` with what it lacks.
    pub fn answer(&self, to: SocketAddr, doc: &str, update: Vec<u8>, version: &VersionVector) {
        self.send(
            to,
            NodeBody::Changes {
                doc: doc.to_owned(),
                update,
                version: version.clone(),
                stored_at_ms: now_ms(),
            },
        );
    }

    /// A document's durable version changed (or was loaded): the anti-entropy index follows.
    /// Empty versions are not indexed (a document nobody wrote exists nowhere).
    pub fn note_version(&self, doc: &str, version: &VersionVector) {
        if !version.is_empty() {
            lock(&self.shared.index).set(doc, digest::version_hash(version));
        }
    }

    /// The start-up scan found `doc` stored at `version` (kept unless an actor noted a newer
    /// one meanwhile).
    pub fn note_stored_version(&self, doc: &str, version: &VersionVector) {
        if !version.is_empty() {
            lock(&self.shared.index).set_if_absent(doc, digest::version_hash(version));
        }
    }

    /// The start-up scan is done: anti-entropy may compare digests.
    pub fn index_ready(&self) {
        self.shared.index_ready.store(true, Relaxed);
        tracing::info!(
            documents = lock(&self.shared.index).len(),
            "anti-entropy index ready"
        );
    }

    fn comparable(&self) -> bool {
        self.shared.anti_entropy && self.shared.index_ready.load(Relaxed)
    }

    /// Asks a member for what this node lacks of `doc` (its changes did not apply here).
    pub fn ask(&self, to: SocketAddr, doc: &str, version: &VersionVector) {
        self.send(
            to,
            NodeBody::Have {
                doc: doc.to_owned(),
                version: version.clone(),
            },
        );
    }

    /// Alive members holding `doc`, in a per-call random order (spreads the fan-out).
    fn holders_of(&self, doc: &str) -> Vec<SocketAddr> {
        let holders = lock(&self.shared.holders);
        let Some(set) = holders.get(doc) else {
            return Vec::new();
        };
        let alive = self.alive_members();
        let mut chosen: Vec<SocketAddr> =
            set.iter().copied().filter(|a| alive.contains(a)).collect();
        if chosen.len() > PUSH_FANOUT {
            let start = (now_ms() as usize) % chosen.len();
            chosen.rotate_left(start);
        }
        chosen
    }

    fn alive_members(&self) -> Vec<SocketAddr> {
        lock(&self.shared.members)
            .iter()
            .filter(|m| m.state != MemberState::Down)
            .map(|m| m.addr)
            .collect()
    }

    fn send(&self, to: SocketAddr, body: NodeBody) {
        let frame = self.shared.sealer.seal(&NodeMessage {
            from: self.shared.me.id,
            from_addr: self.shared.me.addr,
            body,
        });
        let mut links = lock(&self.shared.links);
        let link = links
            .entry(to)
            .or_insert_with(|| PeerLink::start(to, Arc::clone(&self.shared.metrics)));
        link.send(frame, &self.shared.metrics);
    }

    /// Whether a message claiming to be from `id` at `addr` fits what SWIM knows: refused if a
    /// member at another address holds that id (two nodes with one id, or an impostor).
    fn plausible(&self, id: NodeId, addr: SocketAddr) -> bool {
        id != self.shared.me.id
            && !lock(&self.shared.members)
                .iter()
                .any(|m| m.id == id && m.addr != addr && m.state != MemberState::Down)
    }

    /// A member came up: it learns what this node holds.
    fn member_up(&self, addr: SocketAddr) {
        let held: Vec<String> = lock(&self.shared.held).iter().cloned().collect();
        for docs in held.chunks(HOLDING_CHUNK) {
            self.send(
                addr,
                NodeBody::Holding {
                    docs: docs.to_vec(),
                    holding: true,
                },
            );
        }
    }

    /// A member went down: it holds nothing any more.
    fn member_down(&self, addr: SocketAddr) {
        let mut holders = lock(&self.shared.holders);
        holders.retain(|_, set| {
            set.remove(&addr);
            !set.is_empty()
        });
        lock(&self.shared.links).remove(&addr);
    }

    fn set_holding(&self, from: SocketAddr, docs: Vec<String>, holding: bool) {
        let mut holders = lock(&self.shared.holders);
        for doc in docs {
            if holding {
                holders.entry(doc).or_default().insert(from);
            } else if let Some(set) = holders.get_mut(&doc) {
                set.remove(&from);
                if set.is_empty() {
                    holders.remove(&doc);
                }
            }
        }
    }
}

/// The cluster task: feeds SWIM, applies its outputs, sorts frames from other nodes.
async fn run(
    cluster: Cluster,
    mut membership: Membership,
    seeds: Vec<SocketAddr>,
    anti_entropy_interval: Duration,
    mut frames: mpsc::Receiver<NodeMessage>,
    inbound: mpsc::Sender<Inbound>,
    mut stop: watch::Receiver<bool>,
) {
    // SWIM's timers, fed back when they fire.
    let (ticks_in, mut ticks) = mpsc::unbounded_channel::<foca::Timer<NodeIdentity>>();
    let mut announce = tokio::time::interval(Duration::from_secs(1));
    announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut anti_entropy = tokio::time::interval(anti_entropy_interval);
    anti_entropy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round: u64 = cluster.shared.me.id.0 ^ now_ms();
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(message) = frame else { break };
                receive(&cluster, &mut membership, message, &inbound);
            }
            tick = ticks.recv() => match tick {
                Some(timer) => membership.handle_timer(timer),
                None => break,
            },
            _ = announce.tick() => {
                // Until some member answers, knock at every seed each second; foca's periodic
                // announcements take over once the node is in.
                if cluster.alive_members().is_empty() {
                    for seed in seeds.iter().filter(|s| **s != cluster.shared.me.addr) {
                        membership.announce(*seed);
                    }
                }
            }
            _ = anti_entropy.tick(), if cluster.comparable() => {
                let alive = cluster.alive_members();
                if !alive.is_empty() {
                    // A random member each round (a linear congruential step is enough here).
                    round = round
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let peer = alive[((round >> 33) as usize) % alive.len()];
                    let root = lock(&cluster.shared.index).root();
                    cluster.send(peer, NodeBody::Digest { root });
                    cluster.shared.metrics.anti_entropy_rounds.fetch_add(1, Relaxed);
                }
            }
            _ = stopped(&mut stop) => {
                membership.leave();
                apply(&cluster, &mut membership, &ticks_in, true);
                break;
            }
        }
        apply(&cluster, &mut membership, &ticks_in, false);
    }
}

/// Sends what SWIM asked to send, sets its timers, and follows its notifications.
fn apply(
    cluster: &Cluster,
    membership: &mut Membership,
    ticks: &mpsc::UnboundedSender<foca::Timer<NodeIdentity>>,
    leaving: bool,
) {
    let outputs = membership.drain();
    for (to, bytes) in outputs.sends {
        cluster.send(to, NodeBody::Swim(bytes));
    }
    for (after, timer) in outputs.timers {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = ticks.send(timer);
        });
    }
    for notification in outputs.notifications {
        match notification {
            OwnedNotification::MemberUp(member) => {
                tracing::info!(node = %member.id, addr = %member.addr, "cluster member up");
                cluster.member_up(member.addr);
            }
            OwnedNotification::MemberDown(member) => {
                tracing::warn!(node = %member.id, addr = %member.addr, "cluster member down");
                cluster.member_down(member.addr);
            }
            OwnedNotification::Idle => {
                tracing::warn!("this node sees no live cluster member");
            }
            OwnedNotification::Defunct if !leaving => {
                tracing::warn!("the cluster declared this node down; rejoining");
            }
            _ => {}
        }
    }
    // Suspicion comes and goes without notifications: refresh the view every time.
    let members = membership.members();
    for (gauge, state) in cluster.shared.metrics.cluster_members.iter().zip([
        MemberState::Alive,
        MemberState::Suspect,
        MemberState::Down,
    ]) {
        gauge.store(
            members.iter().filter(|m| m.state == state).count() as i64,
            Relaxed,
        );
    }
    *lock(&cluster.shared.members) = members;
}

/// One frame from another node.
fn receive(
    cluster: &Cluster,
    membership: &mut Membership,
    message: NodeMessage,
    inbound: &mpsc::Sender<Inbound>,
) {
    let metrics = &cluster.shared.metrics;
    if !cluster.plausible(message.from, message.from_addr) {
        metrics.cluster_refused.fetch_add(1, Relaxed);
        tracing::warn!(
            claimed = %message.from,
            addr = %message.from_addr,
            "refused a cluster message: its node id belongs to another member (or to this node)"
        );
        return;
    }
    match message.body {
        NodeBody::Swim(bytes) => {
            if let Err(error) = membership.handle_data(&bytes) {
                metrics.cluster_refused.fetch_add(1, Relaxed);
                tracing::debug!(%error, from = %message.from_addr, "SWIM message refused");
            }
        }
        NodeBody::Holding { docs, holding } => {
            cluster.set_holding(message.from_addr, docs, holding)
        }
        NodeBody::Changes {
            doc,
            update,
            version,
            stored_at_ms,
        } => {
            let lag = now_ms().saturating_sub(stored_at_ms);
            metrics.replication_lag.observe(Duration::from_millis(lag));
            let changes = Inbound::Changes {
                from: message.from_addr,
                doc,
                update,
                version,
            };
            if inbound.try_send(changes).is_err() {
                metrics.cluster_dropped.fetch_add(1, Relaxed);
            }
        }
        NodeBody::Digest { root } => {
            if !cluster.comparable() {
                return;
            }
            let index = lock(&cluster.shared.index);
            if index.root() != root {
                let hashes = index.bucket_hashes().to_vec();
                drop(index);
                cluster.send(message.from_addr, NodeBody::Buckets { hashes });
            }
        }
        NodeBody::Buckets { hashes } => {
            if !cluster.comparable() || hashes.len() != digest::BUCKETS {
                return;
            }
            let index = lock(&cluster.shared.index);
            let differing: Vec<(u16, Vec<(String, u64)>)> = (0..digest::BUCKETS)
                .filter(|&k| index.bucket_hashes()[k] != hashes[k])
                .map(|k| (k as u16, index.bucket(k)))
                .collect();
            drop(index);
            metrics
                .anti_entropy_buckets
                .fetch_add(differing.len() as u64, Relaxed);
            for (bucket, docs) in differing {
                cluster.send(message.from_addr, NodeBody::BucketDocs { bucket, docs });
            }
        }
        NodeBody::BucketDocs { bucket, docs } => {
            if !cluster.comparable() {
                return;
            }
            let differing = lock(&cluster.shared.index).differing(usize::from(bucket), &docs);
            metrics
                .anti_entropy_differing
                .fetch_add(differing.len() as u64, Relaxed);
            for doc in differing.into_iter().take(RECONCILE_PER_ROUND) {
                let reconcile = Inbound::Reconcile {
                    from: message.from_addr,
                    doc,
                };
                if inbound.try_send(reconcile).is_err() {
                    metrics.cluster_dropped.fetch_add(1, Relaxed);
                }
            }
        }
        NodeBody::Have { doc, version } => {
            let have = Inbound::Have {
                from: message.from_addr,
                doc,
                version,
            };
            if inbound.try_send(have).is_err() {
                metrics.cluster_dropped.fetch_add(1, Relaxed);
            }
        }
    }
}
