//! The start and the end of a connection: the Hello/Welcome handshake (version, token) and
//! closing with an `Error` frame and a close code.

use std::sync::atomic::Ordering::Relaxed;

use futures_util::{SinkExt, StreamExt};
use sync_protocol::{ErrorCode, Frame, WIRE_VERSION};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{ServerContext, WRITE_TIMEOUT};
use crate::auth::Grant;
use crate::metrics::{Metrics, Reject};
use crate::storage::Storage;

/// Reads the Hello, negotiates the version, verifies the token, answers Welcome.
pub(super) async fn handshake<S: Storage, T: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<T>,
    context: &ServerContext<S>,
) -> Result<Grant, (ErrorCode, String)> {
    let metrics = &context.metrics;
    let bytes = loop {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => break bytes,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(_)) => {
                metrics.rejected(Reject::Invalid);
                return Err((ErrorCode::Invalid, "expected a binary Hello frame".into()));
            }
            Some(Err(error)) => {
                metrics.rejected(Reject::Invalid);
                return Err((ErrorCode::Invalid, format!("transport error: {error}")));
            }
            None => return Err((ErrorCode::Invalid, "closed before Hello".into())),
        }
    };
    metrics.messages_in.fetch_add(1, Relaxed);
    metrics.bytes_in.fetch_add(bytes.len() as u64, Relaxed);
    let frame = Frame::decode(&bytes).map_err(|error| {
        let code = match error {
            sync_protocol::FrameError::UnsupportedVersion { .. } => {
                metrics.rejected(Reject::UnsupportedVersion);
                ErrorCode::UnsupportedVersion
            }
            _ => {
                metrics.rejected(Reject::Invalid);
                ErrorCode::Invalid
            }
        };
        (code, format!("the first frame does not decode: {error}"))
    })?;
    let Frame::Hello {
        min_version,
        max_version,
        token,
        agent,
    } = frame
    else {
        metrics.rejected(Reject::Invalid);
        return Err((ErrorCode::Invalid, "the first frame must be Hello".into()));
    };
    if !(min_version..=max_version).contains(&WIRE_VERSION) {
        metrics.rejected(Reject::UnsupportedVersion);
        return Err((
            ErrorCode::UnsupportedVersion,
            format!(
                "the client speaks wire versions {min_version}..={max_version}; this server speaks {WIRE_VERSION}"
            ),
        ));
    }
    let grant = context.auth.verify(token.as_deref()).map_err(|error| {
        metrics.rejected(Reject::Unauthorized);
        tracing::info!(%error, "token refused");
        (ErrorCode::Unauthorized, error.client_message().to_owned())
    })?;
    tracing::debug!(agent = %agent.chars().take(128).collect::<String>(), "hello");
    let limits = &context.limits;
    let welcome = Frame::Welcome {
        version: WIRE_VERSION,
        server: concat!("sync-server/", env!("CARGO_PKG_VERSION")).into(),
        max_frame: limits.max_frame.min(u32::MAX as usize) as u32,
        max_message: limits.max_message.min(u32::MAX as usize) as u32,
        max_documents: limits.max_documents_per_connection.min(u32::MAX as usize) as u32,
    };
    let bytes = welcome.encode();
    metrics.messages_out.fetch_add(1, Relaxed);
    metrics.bytes_out.fetch_add(bytes.len() as u64, Relaxed);
    socket
        .send(Message::Binary(bytes.into()))
        .await
        .map_err(|e| (ErrorCode::Invalid, format!("transport error: {e}")))?;
    Ok(grant)
}

/// Sends an Error frame and a close frame, best effort.
pub(super) async fn close_with_error<T: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<T>,
    code: ErrorCode,
    message: String,
    metrics: &Metrics,
) {
    let frame = Frame::Error {
        code,
        doc: None,
        message: message.clone(),
    }
    .encode();
    metrics.messages_out.fetch_add(1, Relaxed);
    metrics.bytes_out.fetch_add(frame.len() as u64, Relaxed);
    let close = CloseFrame {
        code: close_code(code),
        reason: message.chars().take(100).collect::<String>().into(),
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = socket.send(Message::Binary(frame.into())).await;
        let _ = socket.close(Some(close)).await;
    })
    .await;
}

fn close_code(code: ErrorCode) -> CloseCode {
    match code {
        ErrorCode::ShuttingDown => CloseCode::Away,
        ErrorCode::TooLarge => CloseCode::Size,
        ErrorCode::Internal => CloseCode::Error,
        ErrorCode::Overloaded => CloseCode::Again,
        _ => CloseCode::Policy,
    }
}
