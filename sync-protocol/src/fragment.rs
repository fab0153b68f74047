//! Splitting frames larger than the maximum WebSocket message into fragments, and putting them
//! back together with a size bound and a timeout.
//!
//! Why: a proxy or the peer caps message sizes, and a large document sent as one message would be
//! refused again on every reconnect. Fragments keep every message under the cap; the receiver
//! bounds what it buffers, so a peer cannot make it hold unbounded memory.

use std::collections::BTreeMap;
use std::fmt;

use crate::frame::Frame;

/// Bytes of a `Fragment` frame beyond its payload: header, variant tag and three varints. The
/// split leaves this much room under `max_frame`.
const FRAGMENT_OVERHEAD: usize = 4 + 1 + 3 * 5 + 5;

/// Encodes `frame`; if the result exceeds `max_frame` bytes, splits it into encoded `Fragment`
/// frames that each fit (identified by `id`). Returns the WebSocket messages to send, in order.
///
/// ```
/// use crdt_core::VersionVector;
/// use sync_protocol::{Frame, Reassembler, split_into_fragments};
///
/// let big = Frame::Changes {
///     doc: "d".into(), batch: 1, update: vec![7; 10_000], version: VersionVector::new(),
/// };
/// let messages = split_into_fragments(&big, 1024, 1);
/// assert!(messages.len() > 1 && messages.iter().all(|m| m.len() <= 1024));
///
/// let mut reassembler = Reassembler::new(1 << 20, 4, 10_000);
/// let mut whole = None;
/// for message in &messages {
///     if let Frame::Fragment { id, index, count, bytes } = Frame::decode(message).unwrap() {
///         whole = reassembler.push(id, index, count, bytes, 0).unwrap();
///     }
/// }
/// assert_eq!(Frame::decode(&whole.unwrap()).unwrap(), big);
/// ```
pub fn split_into_fragments(frame: &Frame, max_frame: usize, id: u32) -> Vec<Vec<u8>> {
    split_encoded(frame.encode(), max_frame, id)
}

/// [`split_into_fragments`] for a frame that is already encoded (a server relays one encoded
/// frame to many connections).
///
/// ```
/// use sync_protocol::{Frame, split_encoded};
/// let encoded = Frame::Auth { token: "x".repeat(5000) }.encode();
/// assert_eq!(split_encoded(encoded.clone(), 1 << 20, 0), vec![encoded.clone()]);
/// assert!(split_encoded(encoded, 1024, 0).len() > 4);
/// ```
pub fn split_encoded(encoded: Vec<u8>, max_frame: usize, id: u32) -> Vec<Vec<u8>> {
    if encoded.len() <= max_frame {
        return vec![encoded];
    }
    let piece = max_frame.saturating_sub(FRAGMENT_OVERHEAD).max(1);
    let count = encoded.len().div_ceil(piece);
    encoded
        .chunks(piece)
        .enumerate()
        .map(|(index, bytes)| {
            Frame::Fragment {
                id,
                index: index as u32,
                count: count as u32,
                bytes: bytes.to_vec(),
            }
            .encode()
        })
        .collect()
}

/// Collects fragments until a frame is whole.
///
/// Bounds: at most `max_message` bytes per reassembled frame, at most `max_in_flight` frames
/// being reassembled at once, and each must complete within `timeout_ms` of its first fragment
/// (checked on every `push` and by [`Reassembler::expire`]). Fragments must arrive in order,
/// which a WebSocket guarantees.
#[derive(Debug)]
pub struct Reassembler {
    max_message: usize,
    max_in_flight: usize,
    timeout_ms: u64,
    partial: BTreeMap<u32, Partial>,
}

#[derive(Debug)]
struct Partial {
    next_index: u32,
    count: u32,
    bytes: Vec<u8>,
    started_ms: u64,
}

impl Reassembler {
    /// A reassembler with the given bounds.
    ///
    /// ```
    /// let reassembler = sync_protocol::Reassembler::new(64 << 20, 4, 30_000);
    /// assert_eq!(reassembler.in_flight(), 0);
    /// ```
    pub fn new(max_message: usize, max_in_flight: usize, timeout_ms: u64) -> Reassembler {
        Reassembler {
            max_message,
            max_in_flight,
            timeout_ms,
            partial: BTreeMap::new(),
        }
    }

    /// Frames currently being reassembled.
    pub fn in_flight(&self) -> usize {
        self.partial.len()
    }

    /// Bytes currently buffered.
    pub fn buffered_bytes(&self) -> usize {
        self.partial.values().map(|p| p.bytes.len()).sum()
    }

    /// Adds one fragment received at `now_ms`; returns the encoded frame once its last fragment
    /// arrived. On error the partial frame is dropped.
    ///
    /// ```
    /// use sync_protocol::{FragmentError, Reassembler};
    /// let mut reassembler = Reassembler::new(100, 1, 1_000);
    /// assert_eq!(reassembler.push(1, 0, 2, vec![0; 60], 0), Ok(None));
    /// assert_eq!(reassembler.push(1, 1, 2, vec![0; 60], 0), Err(FragmentError::TooLarge));
    /// ```
    pub fn push(
        &mut self,
        id: u32,
        index: u32,
        count: u32,
        bytes: Vec<u8>,
        now_ms: u64,
    ) -> Result<Option<Vec<u8>>, FragmentError> {
        self.expire(now_ms)?;
        if count == 0 || index >= count {
            self.partial.remove(&id);
            return Err(FragmentError::OutOfOrder);
        }
        if index == 0 {
            if self.partial.contains_key(&id) {
                self.partial.remove(&id);
                return Err(FragmentError::OutOfOrder);
            }
            if self.partial.len() >= self.max_in_flight {
                return Err(FragmentError::TooManyInFlight);
            }
            self.partial.insert(
                id,
                Partial {
                    next_index: 0,
                    count,
                    bytes: Vec::new(),
                    started_ms: now_ms,
                },
            );
        }
        let Some(partial) = self.partial.get_mut(&id) else {
            return Err(FragmentError::OutOfOrder);
        };
        if partial.next_index != index || partial.count != count {
            self.partial.remove(&id);
            return Err(FragmentError::OutOfOrder);
        }
        if partial.bytes.len() + bytes.len() > self.max_message {
            self.partial.remove(&id);
            return Err(FragmentError::TooLarge);
        }
        partial.bytes.extend_from_slice(&bytes);
        partial.next_index += 1;
        if partial.next_index < partial.count {
            return Ok(None);
        }
        Ok(self.partial.remove(&id).map(|p| p.bytes))
    }

    /// Drops partial frames older than the timeout; an error says that one was dropped.
    pub fn expire(&mut self, now_ms: u64) -> Result<(), FragmentError> {
        let before = self.partial.len();
        let timeout = self.timeout_ms;
        self.partial
            .retain(|_, p| now_ms.saturating_sub(p.started_ms) <= timeout);
        if self.partial.len() < before {
            Err(FragmentError::TimedOut)
        } else {
            Ok(())
        }
    }
}

/// Why a fragmented frame could not be put back together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FragmentError {
    /// The whole frame would exceed the maximum message size.
    TooLarge,
    /// Too many fragmented frames at once.
    TooManyInFlight,
    /// A fragment arrived out of sequence, or with inconsistent counts.
    OutOfOrder,
    /// A fragmented frame did not complete in time.
    TimedOut,
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FragmentError::TooLarge => "fragmented frame exceeds the maximum message size",
            FragmentError::TooManyInFlight => "too many fragmented frames in flight",
            FragmentError::OutOfOrder => "fragment out of sequence",
            FragmentError::TimedOut => "fragmented frame did not complete in time",
        })
    }
}

impl std::error::Error for FragmentError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt_core::VersionVector;

    fn changes(len: usize) -> Frame {
        Frame::Changes {
            doc: "doc".into(),
            batch: 3,
            update: (0..len).map(|i| i as u8).collect(),
            version: VersionVector::new(),
        }
    }

    fn reassemble(messages: &[Vec<u8>], reassembler: &mut Reassembler) -> Option<Frame> {
        let mut whole = None;
        for message in messages {
            match Frame::decode(message).unwrap() {
                Frame::Fragment {
                    id,
                    index,
                    count,
                    bytes,
                } => whole = reassembler.push(id, index, count, bytes, 0).unwrap(),
                frame => return Some(frame),
            }
        }
        whole.map(|bytes| Frame::decode(&bytes).unwrap())
    }

    #[test]
    fn small_frames_are_not_fragmented() {
        let messages = split_into_fragments(&changes(10), 1024, 0);
        assert_eq!(messages.len(), 1);
        assert_eq!(Frame::decode(&messages[0]).unwrap(), changes(10));
    }

    #[test]
    fn every_size_near_the_limit_round_trips_and_fits() {
        let mut reassembler = Reassembler::new(1 << 20, 2, 1000);
        for len in 900..1200 {
            let messages = split_into_fragments(&changes(len), 1024, len as u32);
            assert!(messages.iter().all(|m| m.len() <= 1024), "len {len}");
            assert_eq!(reassemble(&messages, &mut reassembler), Some(changes(len)));
            assert_eq!(reassembler.in_flight(), 0);
        }
    }

    #[test]
    fn bounds_are_enforced() {
        let mut reassembler = Reassembler::new(1000, 1, 50);
        assert_eq!(reassembler.push(1, 0, 3, vec![0; 10], 0), Ok(None));
        assert_eq!(
            reassembler.push(2, 0, 3, vec![0; 10], 0),
            Err(FragmentError::TooManyInFlight)
        );
        assert_eq!(
            reassembler.push(1, 2, 3, vec![0; 10], 0),
            Err(FragmentError::OutOfOrder)
        );
        assert_eq!(reassembler.in_flight(), 0);
        assert_eq!(reassembler.push(3, 0, 3, vec![0; 10], 0), Ok(None));
        assert_eq!(
            reassembler.push(3, 1, 3, vec![0; 10], 51),
            Err(FragmentError::TimedOut)
        );
        assert_eq!(reassembler.in_flight(), 0);
        assert_eq!(
            reassembler.push(4, 0, 0, vec![], 60),
            Err(FragmentError::OutOfOrder)
        );
        assert_eq!(reassembler.buffered_bytes(), 0);
    }
}
