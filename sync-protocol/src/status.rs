//! Status and error codes, and access levels: what the server tells a client about its requests.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a client may do with a document, as its token grants.
///
/// ```
/// use sync_protocol::Access;
/// assert!(Access::ReadWrite.can_write());
/// assert!(!Access::ReadOnly.can_write());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Access {
    /// May subscribe and receive changes and presence; writes are refused.
    ReadOnly,
    /// May also send changes.
    ReadWrite,
}

impl Access {
    /// Whether this access level allows sending changes.
    pub fn can_write(self) -> bool {
        self == Access::ReadWrite
    }
}

/// The outcome of one batch of changes a client sent, in the server's `Ack`.
///
/// Only [`AckStatus::Ok`] means the batch is durable. Every other status means the server did not
/// apply it; the client keeps the changes and decides, by status, whether to resend later.
///
/// ```
/// use sync_protocol::AckStatus;
/// assert!(AckStatus::RateLimited.is_retryable());
/// assert!(!AckStatus::PermissionDenied.is_retryable());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AckStatus {
    /// Applied and committed to storage.
    Ok,
    /// The token does not allow writing this document.
    PermissionDenied,
    /// The batch, or the document it would produce, exceeds the server's size limit.
    TooLarge,
    /// The connection sent more than its rate allows; resend after a pause.
    RateLimited,
    /// The batch does not decode or breaks the document's rules; resending will not help.
    Invalid,
    /// The server cannot take writes now (queue full, storage failing); resend after a pause.
    Overloaded,
    /// The batch depends on changes the server does not have: subscribe again so that the sync
    /// sessions recompute what each side lacks.
    MissingDependencies,
}

impl AckStatus {
    /// Whether sending the same changes again later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            AckStatus::RateLimited | AckStatus::Overloaded | AckStatus::MissingDependencies
        )
    }
}

impl fmt::Display for AckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AckStatus::Ok => "ok",
            AckStatus::PermissionDenied => "permission denied",
            AckStatus::TooLarge => "too large",
            AckStatus::RateLimited => "rate limited",
            AckStatus::Invalid => "invalid",
            AckStatus::Overloaded => "overloaded",
            AckStatus::MissingDependencies => "missing dependencies",
        })
    }
}

/// Why the server refused a request or is closing the connection, in an `Error` frame.
///
/// ```
/// use sync_protocol::ErrorCode;
/// assert_eq!(ErrorCode::Unauthorized.to_string(), "unauthorized");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// No wire version in common; the connection closes.
    UnsupportedVersion,
    /// The token is missing, malformed, badly signed or expired.
    Unauthorized,
    /// The token does not grant access to this document.
    PermissionDenied,
    /// A frame or reassembled message exceeds the limits in `Welcome`.
    TooLarge,
    /// The connection exceeds its message or byte rate.
    RateLimited,
    /// A frame does not decode, or breaks the protocol (for example a frame out of order).
    Invalid,
    /// The server sheds load; try again later.
    Overloaded,
    /// The connection already subscribes to the maximum number of documents.
    TooManyDocuments,
    /// A frame names a document the connection has not subscribed to.
    NotSubscribed,
    /// The server failed on its side (storage error); the request may be retried.
    Internal,
    /// The server is shutting down; reconnect later (possibly to another node).
    ShuttingDown,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorCode::UnsupportedVersion => "unsupported version",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::PermissionDenied => "permission denied",
            ErrorCode::TooLarge => "too large",
            ErrorCode::RateLimited => "rate limited",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::TooManyDocuments => "too many documents",
            ErrorCode::NotSubscribed => "not subscribed",
            ErrorCode::Internal => "internal error",
            ErrorCode::ShuttingDown => "shutting down",
        })
    }
}
