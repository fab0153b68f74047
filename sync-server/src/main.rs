//! The `sync-server` binary: configuration from flags, environment and an optional TOML file;
//! then the server until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sync_server::config::{LogFormat, StorageKind};
use sync_server::server::Server;
use sync_server::storage::{AnyStorage, DataDirLock, PostgresStorage, SqliteStorage};
use sync_server::{Cli, Config};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = match Config::from_cli(Cli::parse()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sync-server: {error}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_env("SYNC_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    // Before the runtime exists, so that every descriptor it opens counts against the new
    // limit; the server derives its connection cap from the limit in force.
    let limit = sync_server::descriptors::raise_soft_limit();
    tracing::debug!(descriptor_limit = ?limit, "descriptor limit (soft, raised to the hard limit)");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sync-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: Config) -> ExitCode {
    // Held until the process exits: a second server on the same directory is refused.
    let _lock = match config.storage {
        StorageKind::Sqlite => match DataDirLock::acquire(&config.data_dir) {
            Ok(lock) => Some(lock),
            Err(error) => {
                tracing::error!(dir = %config.data_dir.display(), %error, "cannot lock the data directory");
                eprintln!("sync-server: {error}");
                return ExitCode::FAILURE;
            }
        },
        StorageKind::Postgres => None,
    };
    let storage = match config.storage {
        StorageKind::Sqlite => match SqliteStorage::open(&config.data_dir) {
            Ok(storage) => AnyStorage::Sqlite(storage),
            Err(error) => {
                tracing::error!(dir = %config.data_dir.display(), %error, "cannot open the embedded store");
                return ExitCode::FAILURE;
            }
        },
        StorageKind::Postgres => {
            let url = config.postgres_url.clone().unwrap_or_default();
            match PostgresStorage::connect(&url).await {
                Ok(storage) => AnyStorage::Postgres(storage),
                Err(error) => {
                    tracing::error!(%error, "cannot connect to PostgreSQL");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    tracing::info!(storage = ?config.storage, dir = %config.data_dir.display(), "storage ready");
    match Server::bind(config.clone(), Arc::new(storage)).await {
        Ok(server) => {
            server.run_until_signal().await;
            ExitCode::SUCCESS
        }
        Err(error) => {
            let tls = error
                .get_ref()
                .is_some_and(|inner| inner.is::<sync_server::tls::TlsError>());
            if tls {
                tracing::error!(%error, "cannot load the TLS certificate");
            } else {
                tracing::error!(listen = %config.listen, %error, "cannot listen");
            }
            ExitCode::FAILURE
        }
    }
}
