//! Configuration: defaults that work out of the box, overridden by an optional TOML file, then by
//! environment variables, then by command-line flags (each later source wins).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use std::{fmt, fs};

use clap::Parser;
use serde::Deserialize;

/// Which storage backend holds the documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Embedded SQLite database in the data directory (the default).
    Sqlite,
    /// A PostgreSQL server shared by several nodes (`postgres_url`).
    Postgres,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The settings a source may override; every field optional so that sources layer. The same
/// struct is parsed from the TOML file and from flags/environment.
#[derive(Clone, Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SYNC_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the embedded store [default: ./data].
    #[arg(long, env = "SYNC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage backend [default: sqlite].
    #[arg(long, env = "SYNC_STORAGE", value_enum)]
    pub storage: Option<StorageKind>,
    /// PostgreSQL connection string (with `--storage postgres`).
    #[arg(long, env = "SYNC_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Secret of HS256 tokens. Without it the server runs open, on loopback addresses only.
    #[arg(long, env = "SYNC_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM file with the TLS certificate chain (leaf first). With `--tls-key`, the server
    /// speaks only TLS (`wss://`, `https://`) on its port [default: none, plain TCP].
    #[arg(long, env = "SYNC_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the TLS private key (PKCS#8, PKCS#1 or SEC1) matching `--tls-cert`.
    #[arg(long, env = "SYNC_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Seconds between checks of the certificate files for changes; a changed pair is loaded
    /// without a restart, as on SIGHUP [default: 10].
    #[arg(long, env = "SYNC_TLS_RELOAD_SECS")]
    pub tls_reload_secs: Option<u64>,
    /// Log format [default: text].
    #[arg(long, env = "SYNC_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Largest WebSocket message accepted, in bytes [default: 262144].
    #[arg(long, env = "SYNC_MAX_FRAME")]
    pub max_frame: Option<usize>,
    /// Largest message after reassembling fragments, in bytes [default: 67108864].
    #[arg(long, env = "SYNC_MAX_MESSAGE")]
    pub max_message: Option<usize>,
    /// Largest stored size of one document, in bytes [default: 268435456].
    #[arg(long, env = "SYNC_MAX_DOCUMENT")]
    pub max_document: Option<usize>,
    /// Documents one connection may subscribe to [default: 256].
    #[arg(long, env = "SYNC_MAX_DOCUMENTS_PER_CONNECTION")]
    pub max_documents_per_connection: Option<usize>,
    /// How deep containers may be nested in a document (1 to 4096); batches nesting deeper
    /// are refused as invalid [default: 512].
    #[arg(long, env = "SYNC_MAX_NESTING_DEPTH")]
    pub max_nesting_depth: Option<usize>,
    /// Open connections before new ones get HTTP 503 [default: 20000; lowered at start to
    /// what the file descriptor limit allows, keeping a reserve].
    #[arg(long, env = "SYNC_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections per client IP address [default: 1024].
    #[arg(long, env = "SYNC_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Messages per second one connection may send, sustained [default: 500].
    #[arg(long, env = "SYNC_MESSAGES_PER_SECOND")]
    pub messages_per_second: Option<u32>,
    /// Bytes per second one connection may send, sustained [default: 8388608].
    #[arg(long, env = "SYNC_BYTES_PER_SECOND")]
    pub bytes_per_second: Option<u64>,
    /// Frames queued to one connection before it counts as a slow consumer [default: 4096].
    #[arg(long, env = "SYNC_OUTGOING_QUEUE")]
    pub outgoing_queue: Option<usize>,
    /// Seconds a client has for the HTTP upgrade and the Hello frame [default: 10].
    #[arg(long, env = "SYNC_HANDSHAKE_TIMEOUT_SECS")]
    pub handshake_timeout_secs: Option<u64>,
    /// Seconds without any frame (pongs included) before a connection closes [default: 60].
    #[arg(long, env = "SYNC_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds between pings to each client [default: 20].
    #[arg(long, env = "SYNC_PING_INTERVAL_SECS")]
    pub ping_interval_secs: Option<u64>,
    /// Seconds a document without subscribers stays in memory [default: 60].
    #[arg(long, env = "SYNC_DOCUMENT_IDLE_SECS")]
    pub document_idle_secs: Option<u64>,
    /// Approximate memory for loaded documents before idle ones are evicted, in bytes
    /// [default: 1073741824].
    #[arg(long, env = "SYNC_MEMORY_CAP")]
    pub memory_cap: Option<usize>,
    /// Changes appended to a document's log before it is compacted into a snapshot
    /// [default: 1000].
    #[arg(long, env = "SYNC_COMPACT_AFTER")]
    pub compact_after: Option<u64>,
    /// Unfinished fragmented frames one connection may hold, in bytes; at least
    /// `max_message` [default: 67108864].
    #[arg(long, env = "SYNC_REASSEMBLY_PER_CONNECTION")]
    pub reassembly_per_connection: Option<usize>,
    /// Unfinished fragmented frames all connections together may hold, in bytes
    /// [default: 268435456].
    #[arg(long, env = "SYNC_REASSEMBLY_TOTAL")]
    pub reassembly_total: Option<usize>,
    /// Live presence entries (replica ids, over all its documents) one connection may hold
    /// [default: 256].
    #[arg(long, env = "SYNC_PRESENCE_ENTRIES_PER_CONNECTION")]
    pub presence_entries_per_connection: Option<usize>,
    /// Live presence one connection may hold over all its documents, in bytes [default: 262144].
    #[arg(long, env = "SYNC_PRESENCE_BYTES_PER_CONNECTION")]
    pub presence_bytes_per_connection: Option<usize>,
    /// Live presence entries one document may hold [default: 1024].
    #[arg(long, env = "SYNC_PRESENCE_ENTRIES_PER_DOCUMENT")]
    pub presence_entries_per_document: Option<usize>,
    /// Live presence one document may hold, in bytes [default: 4194304].
    #[arg(long, env = "SYNC_PRESENCE_BYTES_PER_DOCUMENT")]
    pub presence_bytes_per_document: Option<usize>,
    /// Documents one connection may cause to be loaded per second, sustained (bursts up to
    /// twice as many) [default: 20].
    #[arg(long, env = "SYNC_DOCUMENT_LOADS_PER_SECOND")]
    pub document_loads_per_second: Option<u32>,
    /// Address of this node's cluster port (node-to-node traffic); setting it makes the node
    /// join a cluster [default: none, a single node].
    #[arg(long, env = "SYNC_CLUSTER_LISTEN")]
    pub cluster_listen: Option<SocketAddr>,
    /// Address other nodes reach the cluster port at, if not `--cluster-listen`.
    #[arg(long, env = "SYNC_CLUSTER_ADVERTISE")]
    pub cluster_advertise: Option<SocketAddr>,
    /// Cluster addresses of nodes to join through, comma-separated (any live one will do).
    #[arg(long, env = "SYNC_CLUSTER_SEEDS", value_delimiter = ',')]
    pub cluster_seeds: Option<Vec<SocketAddr>>,
    /// Secret every node of the cluster shares (at least 16 bytes); node-to-node frames are
    /// authenticated with it.
    #[arg(long, env = "SYNC_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// Whether client changes are pushed at once to the other nodes holding the document, and
    /// a node loading a document pulls from them; `false` leaves it all to anti-entropy (for
    /// tests and diagnosis) [default: true].
    #[arg(long, env = "SYNC_CLUSTER_EAGER_PUSH")]
    pub cluster_eager_push: Option<bool>,
    /// Milliseconds between anti-entropy rounds (digest comparisons with a random member)
    /// [default: 1000].
    #[arg(long, env = "SYNC_CLUSTER_ANTI_ENTROPY_MS")]
    pub cluster_anti_entropy_ms: Option<u64>,
    /// This node's id, 1 to 16 hex digits [default: random at first start, kept in
    /// `<data_dir>/node-id`].
    #[arg(long, env = "SYNC_NODE_ID")]
    #[serde(default, deserialize_with = "node_id_from_text")]
    pub node_id: Option<crate::cluster::NodeId>,
}

/// Reads a node id written as hex text in the TOML file.
fn node_id_from_text<'de, D>(deserializer: D) -> Result<Option<crate::cluster::NodeId>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

/// Command line of the `sync-server` binary.
#[derive(Debug, Parser)]
#[command(
    name = "sync-server",
    version,
    about = "WebSocket sync server for crdt-core documents"
)]
pub struct Cli {
    /// A TOML file with any of the settings below (keys in snake_case, e.g. `data_dir`).
    #[arg(long, env = "SYNC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Settings.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// The server's complete configuration.
///
/// ```
/// let config = sync_server::Config::default();
/// assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
/// assert_eq!(config.limits.max_frame, 256 * 1024);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// Storage backend.
    pub storage: StorageKind,
    /// PostgreSQL connection string.
    pub postgres_url: Option<String>,
    /// HS256 token secret; `None` runs open (loopback only).
    pub jwt_secret: Option<String>,
    /// TLS certificate and key files; `None` serves plain TCP.
    pub tls: Option<TlsFiles>,
    /// Time between checks of the TLS files for changes.
    pub tls_reload_interval: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Cluster membership; `None` runs a single node.
    pub cluster: Option<ClusterSettings>,
}

/// How this node joins a cluster, as configured (checked by [`Config::validate`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The cluster port's address (required).
    pub listen: Option<SocketAddr>,
    /// The address other nodes reach it at, if not `listen`.
    pub advertise: Option<SocketAddr>,
    /// Nodes to join through.
    pub seeds: Vec<SocketAddr>,
    /// The shared secret (required, at least 16 bytes).
    pub secret: Option<String>,
    /// This node's id, if not the one kept in the data directory.
    pub node_id: Option<crate::cluster::NodeId>,
    /// Whether changes are pushed at once (`None`: yes).
    pub eager_push: Option<bool>,
    /// Time between anti-entropy rounds (`None`: the default).
    pub anti_entropy_interval: Option<Duration>,
}

impl ClusterSettings {
    /// The settings as the cluster takes them (`None` if incomplete; `validate` says why).
    pub fn to_cluster_config(&self) -> Option<crate::cluster::ClusterConfig> {
        Some(crate::cluster::ClusterConfig {
            node_id: self.node_id,
            listen: self.listen?,
            advertise: self.advertise,
            seeds: self.seeds.clone(),
            secret: self.secret.clone()?,
            eager_push: self.eager_push.unwrap_or(true),
            anti_entropy_interval: self
                .anti_entropy_interval
                .unwrap_or(crate::cluster::DEFAULT_ANTI_ENTROPY_INTERVAL),
        })
    }
}

/// The PEM files the server's TLS certificate is loaded (and reloaded) from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key of the leaf certificate.
    pub key: PathBuf,
}

/// Limits and timeouts: what protects the server from large, fast or slow peers.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest WebSocket message accepted.
    pub max_frame: usize,
    /// Largest message after reassembling fragments.
    pub max_message: usize,
    /// Largest stored size of one document.
    pub max_document: usize,
    /// Documents one connection may subscribe to.
    pub max_documents_per_connection: usize,
    /// How deep containers may be nested in a document (`Document::max_depth`): the cost of
    /// a change grows with the depth it reaches, so a peer may not choose it freely.
    pub max_nesting_depth: usize,
    /// Open connections before new ones get HTTP 503.
    pub max_connections: usize,
    /// Open connections per client IP address.
    pub max_connections_per_ip: usize,
    /// Sustained messages per second per connection (bursts up to twice as many).
    pub messages_per_second: u32,
    /// Sustained bytes per second per connection (bursts up to twice as many).
    pub bytes_per_second: u64,
    /// Frames queued to one connection before it counts as a slow consumer.
    pub outgoing_queue: usize,
    /// Time for the HTTP upgrade and the Hello frame.
    pub handshake_timeout: Duration,
    /// Time without any frame before a connection closes.
    pub idle_timeout: Duration,
    /// Time between pings.
    pub ping_interval: Duration,
    /// Time a document without subscribers stays loaded.
    pub document_idle: Duration,
    /// Approximate memory for loaded documents before idle ones are evicted.
    pub memory_cap: usize,
    /// Changes appended before a document's log is compacted into a snapshot.
    pub compact_after: u64,
    /// Largest HTTP request head (before the WebSocket upgrade).
    pub max_request_head: usize,
    /// Bytes of unfinished fragmented frames one connection may hold. Without it a connection
    /// could keep several frames of `max_message` half-sent; at least `max_message`, so that
    /// one frame of the advertised size always fits.
    pub reassembly_per_connection: usize,
    /// Bytes of unfinished fragmented frames all connections together may hold: many
    /// connections that each stay within their own bound must not add up to the machine's
    /// memory. A fragment over it closes its connection with `Overloaded`.
    pub reassembly_total: usize,
    /// Live presence entries (distinct replica ids, over all its documents) one connection may
    /// hold: an app speaks for one replica per document, so one per document it may subscribe
    /// to (`max_documents_per_connection`) is enough.
    pub presence_entries_per_connection: usize,
    /// Bytes of live presence (encoded frames) one connection may hold over all its documents:
    /// presence is a cursor and a name, not content.
    pub presence_bytes_per_connection: usize,
    /// Live presence entries one document may hold (bounds what every new subscriber is sent).
    pub presence_entries_per_document: usize,
    /// Bytes of live presence one document may hold.
    pub presence_bytes_per_document: usize,
    /// Documents one connection may cause to be loaded per second (bursts up to twice as
    /// many): loading is the expensive part of a subscription, and churning through fresh ids
    /// would otherwise fill memory with documents faster than eviction frees it.
    pub document_loads_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: sync_protocol::DEFAULT_MAX_FRAME,
            max_message: 64 << 20,
            max_document: 256 << 20,
            max_documents_per_connection: 256,
            max_nesting_depth: crdt_core::Document::DEFAULT_MAX_DEPTH,
            max_connections: 20_000,
            max_connections_per_ip: 1024,
            messages_per_second: 500,
            bytes_per_second: 8 << 20,
            outgoing_queue: 4096,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            document_idle: Duration::from_secs(60),
            memory_cap: 1 << 30,
            compact_after: 1000,
            max_request_head: 16 * 1024,
            reassembly_per_connection: 64 << 20,
            reassembly_total: 256 << 20,
            presence_entries_per_connection: 256,
            presence_bytes_per_connection: 256 * 1024,
            presence_entries_per_document: 1024,
            presence_bytes_per_document: 4 << 20,
            document_loads_per_second: 20,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            storage: StorageKind::Sqlite,
            postgres_url: None,
            jwt_secret: None,
            tls: None,
            tls_reload_interval: Duration::from_secs(10),
            log_format: LogFormat::Text,
            limits: Limits::default(),
            cluster: None,
        }
    }
}

impl Config {
    /// Builds the configuration from the command line (and the environment, which clap reads
    /// for each flag), layered over the TOML file it names, over the defaults.
    pub fn from_cli(cli: Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => Overrides::from_toml_file(path)?,
            None => Overrides::default(),
        };
        let mut config = Config::default();
        config.apply(file);
        config.apply(cli.overrides);
        config.validate()?;
        Ok(config)
    }

    /// Applies every setting `overrides` has.
    pub fn apply(&mut self, o: Overrides) {
        let secs = Duration::from_secs;
        let limits = &mut self.limits;
        macro_rules! take {
            ($target:expr, $value:expr) => {
                if let Some(value) = $value {
                    $target = value;
                }
            };
        }
        take!(self.listen, o.listen);
        take!(self.data_dir, o.data_dir);
        take!(self.storage, o.storage);
        take!(self.log_format, o.log_format);
        if o.postgres_url.is_some() {
            self.postgres_url = o.postgres_url;
        }
        if o.jwt_secret.is_some() {
            self.jwt_secret = o.jwt_secret;
        }
        match (o.tls_cert, o.tls_key) {
            (Some(cert), Some(key)) => self.tls = Some(TlsFiles { cert, key }),
            // Half a pair (possible in a TOML file) replaces half of what is configured;
            // `validate` refuses what stays incomplete.
            (Some(cert), None) => {
                self.tls = Some(TlsFiles {
                    key: self.tls.take().map(|t| t.key).unwrap_or_default(),
                    cert,
                })
            }
            (None, Some(key)) => {
                self.tls = Some(TlsFiles {
                    cert: self.tls.take().map(|t| t.cert).unwrap_or_default(),
                    key,
                })
            }
            (None, None) => {}
        }
        take!(self.tls_reload_interval, o.tls_reload_secs.map(secs));
        take!(limits.max_frame, o.max_frame);
        take!(limits.max_message, o.max_message);
        take!(limits.max_document, o.max_document);
        take!(
            limits.max_documents_per_connection,
            o.max_documents_per_connection
        );
        take!(limits.max_nesting_depth, o.max_nesting_depth);
        take!(limits.max_connections, o.max_connections);
        take!(limits.max_connections_per_ip, o.max_connections_per_ip);
        take!(limits.messages_per_second, o.messages_per_second);
        take!(limits.bytes_per_second, o.bytes_per_second);
        take!(limits.outgoing_queue, o.outgoing_queue);
        take!(limits.handshake_timeout, o.handshake_timeout_secs.map(secs));
        take!(limits.idle_timeout, o.idle_timeout_secs.map(secs));
        take!(limits.ping_interval, o.ping_interval_secs.map(secs));
        take!(limits.document_idle, o.document_idle_secs.map(secs));
        take!(limits.memory_cap, o.memory_cap);
        take!(limits.compact_after, o.compact_after);
        take!(
            limits.reassembly_per_connection,
            o.reassembly_per_connection
        );
        take!(limits.reassembly_total, o.reassembly_total);
        take!(
            limits.presence_entries_per_connection,
            o.presence_entries_per_connection
        );
        take!(
            limits.presence_bytes_per_connection,
            o.presence_bytes_per_connection
        );
        take!(
            limits.presence_entries_per_document,
            o.presence_entries_per_document
        );
        take!(
            limits.presence_bytes_per_document,
            o.presence_bytes_per_document
        );
        take!(
            limits.document_loads_per_second,
            o.document_loads_per_second
        );
        let any_cluster_setting = o.cluster_listen.is_some()
            || o.cluster_advertise.is_some()
            || o.cluster_seeds.is_some()
            || o.cluster_secret.is_some()
            || o.node_id.is_some()
            || o.cluster_eager_push.is_some()
            || o.cluster_anti_entropy_ms.is_some();
        if any_cluster_setting {
            let cluster = self.cluster.get_or_insert_with(ClusterSettings::default);
            take!(cluster.listen, o.cluster_listen.map(Some));
            take!(cluster.advertise, o.cluster_advertise.map(Some));
            take!(cluster.seeds, o.cluster_seeds);
            take!(cluster.secret, o.cluster_secret.map(Some));
            take!(cluster.node_id, o.node_id.map(Some));
            take!(cluster.eager_push, o.cluster_eager_push.map(Some));
            take!(
                cluster.anti_entropy_interval,
                o.cluster_anti_entropy_ms
                    .map(|ms| Some(Duration::from_millis(ms.max(10))))
            );
        }
    }

    /// Checks combinations no single setting can: open mode off loopback, a missing URL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.jwt_secret.is_none() && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "no token secret is configured, so the server would accept anyone; it runs \
                 open only on a loopback address, not on {}. Set SYNC_JWT_SECRET (or \
                 --jwt-secret) or listen on 127.0.0.1",
                self.listen
            )));
        }
        if self.jwt_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(ConfigError::Invalid(
                "the token secret is shorter than 16 bytes; use a long random secret".into(),
            ));
        }
        if let Some(tls) = &self.tls
            && (tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty())
        {
            return Err(ConfigError::Invalid(
                "TLS needs both a certificate (--tls-cert) and a key (--tls-key)".into(),
            ));
        }
        if self.tls_reload_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "tls_reload_secs must be at least 1".into(),
            ));
        }
        if let Some(cluster) = &self.cluster {
            if cluster.listen.is_none() {
                return Err(ConfigError::Invalid(
                    "cluster settings were given but no --cluster-listen (SYNC_CLUSTER_LISTEN): \
                     the address of this node's cluster port"
                        .into(),
                ));
            }
            if cluster.secret.as_ref().is_none_or(|s| s.len() < 16) {
                return Err(ConfigError::Invalid(
                    "a cluster needs --cluster-secret (SYNC_CLUSTER_SECRET) of at least 16 \
                     bytes, the same on every node: node-to-node frames are authenticated \
                     with it"
                        .into(),
                ));
            }
        }
        if self.storage == StorageKind::Postgres && self.postgres_url.is_none() {
            return Err(ConfigError::Invalid(
                "--storage postgres needs --postgres-url (or SYNC_POSTGRES_URL)".into(),
            ));
        }
        let l = &self.limits;
        if l.max_frame < 1024 || l.max_message < l.max_frame {
            return Err(ConfigError::Invalid(
                "max_frame must be at least 1024 and max_message at least max_frame".into(),
            ));
        }
        if !(1..=crdt_core::Document::MAX_DEPTH_CEILING).contains(&l.max_nesting_depth) {
            return Err(ConfigError::Invalid(format!(
                "max_nesting_depth must be between 1 and {}, not {}",
                crdt_core::Document::MAX_DEPTH_CEILING,
                l.max_nesting_depth
            )));
        }
        if l.reassembly_per_connection < l.max_message
            || l.reassembly_total < l.reassembly_per_connection
        {
            return Err(ConfigError::Invalid(
                "reassembly_per_connection must be at least max_message (a frame of the \
                 advertised size must fit), and reassembly_total at least \
                 reassembly_per_connection"
                    .into(),
            ));
        }
        if l.messages_per_second == 0
            || l.bytes_per_second == 0
            || l.outgoing_queue == 0
            || l.document_loads_per_second == 0
        {
            return Err(ConfigError::Invalid(
                "rates and queue sizes must be positive".into(),
            ));
        }
        Ok(())
    }
}

impl Overrides {
    /// Reads settings from a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Overrides, ConfigError> {
        let text = fs::read_to_string(path)
            .map_err(|e| ConfigError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))
    }
}

/// A configuration that cannot work, with what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// What is wrong and how to fix it.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid(why) => write!(f, "invalid configuration: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_sources_win() {
        let file: Overrides = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nmax_frame = 4096\ndata_dir = \"/tmp/x\"\n",
        )
        .unwrap();
        let cli = Overrides {
            max_frame: Some(8192),
            ..Overrides::default()
        };
        let mut config = Config::default();
        config.apply(file);
        config.apply(cli);
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.limits.max_frame, 8192);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn open_mode_is_refused_off_loopback() {
        let mut config = Config {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        config.jwt_secret = Some("a secret of enough length".into());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn reassembly_budgets_must_hold_one_largest_frame() {
        let mut config = Config::default();
        config.limits.reassembly_per_connection = config.limits.max_message - 1;
        assert!(config.validate().is_err());
        config.limits.reassembly_per_connection = config.limits.max_message;
        config.limits.reassembly_total = config.limits.max_message - 1;
        assert!(config.validate().is_err());
        config.limits.reassembly_total = config.limits.max_message;
        assert!(config.validate().is_ok());
        config.limits.document_loads_per_second = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn new_limits_are_read_from_the_file() {
        let file: Overrides = toml::from_str(
            "reassembly_total = 134217728\npresence_bytes_per_document = 1024\n\
             document_loads_per_second = 3\n",
        )
        .unwrap();
        let mut config = Config::default();
        config.apply(file);
        assert_eq!(config.limits.reassembly_total, 128 << 20);
        assert_eq!(config.limits.presence_bytes_per_document, 1024);
        assert_eq!(config.limits.document_loads_per_second, 3);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_cluster_needs_its_port_and_a_long_secret() {
        let mut config = Config::default();
        config.apply(
            toml::from_str("cluster_seeds = [\"127.0.0.2:7946\"]\nnode_id = \"ab12\"").unwrap(),
        );
        let why = config.validate().unwrap_err().to_string();
        assert!(why.contains("--cluster-listen"), "{why}");
        config.apply(toml::from_str("cluster_listen = \"127.0.0.1:7946\"").unwrap());
        config.apply(toml::from_str("cluster_secret = \"short\"").unwrap());
        let why = config.validate().unwrap_err().to_string();
        assert!(why.contains("--cluster-secret"), "{why}");
        config.apply(toml::from_str("cluster_secret = \"sixteen bytes or more\"").unwrap());
        assert!(config.validate().is_ok());
        let cluster = config.cluster.unwrap().to_cluster_config().unwrap();
        assert_eq!(cluster.node_id, Some(crate::cluster::NodeId(0xab12)));
        assert_eq!(cluster.seeds, ["127.0.0.2:7946".parse().unwrap()]);
    }

    #[test]
    fn tls_needs_both_files() {
        let mut config = Config::default();
        config.apply(toml::from_str("tls_cert = \"/etc/cert.pem\"").unwrap());
        assert!(config.validate().is_err());
        config.apply(toml::from_str("tls_key = \"/etc/key.pem\"").unwrap());
        assert!(config.validate().is_ok());
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert: "/etc/cert.pem".into(),
                key: "/etc/key.pem".into()
            })
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        assert!(toml::from_str::<Overrides>("max_frmae = 1").is_err());
    }
}
