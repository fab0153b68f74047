//! Typed errors about one open document: what the server refused, what did not apply, what
//! could not be stored locally, and why waiting for the server's acknowledgement failed.

use std::fmt;
use std::path::PathBuf;

use sync_protocol::{AckStatus, ErrorCode};

use crate::client::{ConnectError, Status};

/// Something that went wrong while syncing one document, as
/// [`DocHandle::last_error`](crate::DocHandle::last_error) reports it and
/// [`DocEvent::Error`](crate::DocEvent::Error) delivers it.
///
/// ```
/// use sync_client::DocSyncError;
/// use sync_protocol::AckStatus;
///
/// let error = DocSyncError::BatchRefused { batch: 3, status: AckStatus::TooLarge };
/// assert_eq!(error.to_string(), "the server refused batch 3: too large");
/// assert!(!error.is_retried());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocSyncError {
    /// The server did not apply a batch of local changes. Retryable statuses
    /// ([`AckStatus::is_retryable`]) are resent after a pause; the others stay unsaved (the
    /// changes stay local) until the next connection tries again.
    BatchRefused {
        /// The batch number (counted per connection).
        batch: u64,
        /// Why.
        status: AckStatus,
    },
    /// The server reported an error about this document (a denied subscription, an overload).
    Server {
        /// What kind of error.
        code: ErrorCode,
        /// The server's words.
        message: String,
    },
    /// Changes from the server did not apply to the local replica (nothing of them was
    /// applied); the client subscribes again after a pause.
    RemoteUpdate(crdt_core::sync::SyncError),
    /// Writing the local copy of the document failed (the change is in memory and is still
    /// sent to the server).
    LocalStorage {
        /// The file.
        path: PathBuf,
        /// The kind of I/O error.
        kind: std::io::ErrorKind,
        /// The operating system's words.
        message: String,
    },
}

impl DocSyncError {
    /// Whether the client tries again by itself (a retryable refusal, an update that did not
    /// apply, a server error other than a denied permission).
    pub fn is_retried(&self) -> bool {
        match self {
            DocSyncError::BatchRefused { status, .. } => status.is_retryable(),
            DocSyncError::Server { code, .. } => *code != ErrorCode::PermissionDenied,
            DocSyncError::RemoteUpdate(_) => true,
            DocSyncError::LocalStorage { .. } => false,
        }
    }
}

impl fmt::Display for DocSyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocSyncError::BatchRefused { batch, status } => {
                write!(f, "the server refused batch {batch}: {status}")
            }
            DocSyncError::Server { code, message } => {
                write!(f, "the server reported {code}: {message}")
            }
            DocSyncError::RemoteUpdate(error) => {
                write!(f, "changes from the server did not apply: {error}")
            }
            DocSyncError::LocalStorage { path, message, .. } => {
                write!(
                    f,
                    "saving the local copy {} failed: {message}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for DocSyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DocSyncError::RemoteUpdate(error) => Some(error),
            _ => None,
        }
    }
}

/// Why [`DocHandle::wait_saved`](crate::DocHandle::wait_saved) returned before the document
/// was saved.
///
/// ```
/// use sync_client::{Status, WaitSavedError};
///
/// let error = WaitSavedError::TimedOut { status: Status::Disconnected };
/// assert!(error.is_offline());
/// assert_eq!(error.to_string(), "not saved in time: offline (reconnecting)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitSavedError {
    /// The timeout passed first; `status` is the connection's status then (offline, connected
    /// but not yet acknowledged, or the token refused). The changes stay local and are sent
    /// when possible.
    TimedOut {
        /// The connection's status at the timeout.
        status: Status,
    },
    /// Connecting failed in a way retrying cannot fix ([`Status::Failed`]); nothing is sent
    /// until [`Client::reconnect`](crate::Client::reconnect).
    ConnectionFailed(ConnectError),
    /// The server refused this document's changes and will not take them on this connection
    /// ([`DocSyncError::BatchRefused`] with a status that is not retryable, or
    /// [`DocSyncError::Server`] with [`ErrorCode::PermissionDenied`]).
    Refused(DocSyncError),
    /// The token only allows reading this document: local changes cannot be saved.
    ReadOnly,
    /// The client was closed ([`Client::close`](crate::Client::close)).
    Closed,
}

impl WaitSavedError {
    /// Whether the wait timed out while the client was not connected.
    pub fn is_offline(&self) -> bool {
        matches!(self, WaitSavedError::TimedOut { status } if *status != Status::Connected)
    }
}

impl fmt::Display for WaitSavedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitSavedError::TimedOut { status } => match status {
                Status::Connected => {
                    f.write_str("not saved in time: connected, not acknowledged yet")
                }
                Status::Unauthorized(why) => {
                    write!(f, "not saved in time: the server refused the token: {why}")
                }
                Status::Failed(error) => write!(f, "not saved in time: {error}"),
                Status::Closed => f.write_str("not saved in time: the client is closed"),
                Status::Disconnected => f.write_str("not saved in time: offline (reconnecting)"),
            },
            WaitSavedError::ConnectionFailed(error) => {
                write!(f, "cannot connect, not retrying: {error}")
            }
            WaitSavedError::Refused(error) => write!(f, "not saved: {error}"),
            WaitSavedError::ReadOnly => {
                f.write_str("not saved: the token only allows reading this document")
            }
            WaitSavedError::Closed => f.write_str("not saved: the client is closed"),
        }
    }
}

impl std::error::Error for WaitSavedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WaitSavedError::ConnectionFailed(error) => Some(error),
            WaitSavedError::Refused(error) => Some(error),
            _ => None,
        }
    }
}
