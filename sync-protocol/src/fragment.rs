//! Splitting frames larger than the maximum WebSocket message into fragments, and putting them
//! back together with a size bound and a timeout.
//!
//! Why: a proxy or the peer caps message sizes, and a large document sent as one message would be
//! refused again on every reconnect. Fragments keep every message under the cap; the receiver
//! bounds what it buffers, so a peer cannot make it hold unbounded memory.

use std::fmt;

use crate::frame::{Frame, FrameError};
use crate::vec_map::VecMap;

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
/// assert_eq!(whole.unwrap().frame, big);
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

/// Bytes charged for each buffered piece beyond its payload: the piece's vector header and the
/// allocator's rounding. Without it, a peer sending empty fragments would hold memory for free.
pub const PIECE_OVERHEAD: usize = 32;

/// A frame put back together: the decoded frame (never a [`Frame::Fragment`]) and its encoded
/// bytes (a server relays some frames byte for byte).
#[derive(Clone, Debug, PartialEq)]
pub struct Reassembled {
    /// The frame.
    pub frame: Frame,
    /// Its encoding, as received.
    pub encoded: Vec<u8>,
}

/// Collects fragments until a frame is whole, and hands back the decoded frame.
///
/// Bounds: at most `max_message` bytes per reassembled frame, at most `max_in_flight` frames
/// being reassembled at once, at most `max_buffered` bytes buffered over all of them (counted
/// from the bytes received, plus [`PIECE_OVERHEAD`] per piece, never from the counts a peer
/// announces), and each must complete within `timeout_ms` of its first fragment (checked on
/// every `push` and by [`Reassembler::expire`]). Fragments must arrive in order, which a
/// WebSocket guarantees.
///
/// A reassembled frame that is itself a fragment is refused ([`FragmentError::Nested`]): no
/// sender splits a fragment again, and handling one by recursion let a peer nest thousands of
/// levels in a few kilobytes and overflow the receiver's stack. [`Reassembler::receive`] is the
/// one path both ends use: any frame in, a whole non-fragment frame out.
#[derive(Debug)]
pub struct Reassembler {
    max_message: usize,
    max_in_flight: usize,
    max_buffered: usize,
    timeout_ms: u64,
    partial: VecMap<u32, Partial>,
    /// Bytes charged for every partial frame (payload plus overhead per piece).
    buffered: usize,
}

#[derive(Debug)]
struct Partial {
    next_index: u32,
    count: u32,
    /// The pieces as received: appending never reallocates (so never holds twice the bytes),
    /// and what is held is exactly what arrived.
    pieces: Vec<Vec<u8>>,
    len: usize,
    started_ms: u64,
}

impl Partial {
    fn charge(&self) -> usize {
        self.len + self.pieces.len() * PIECE_OVERHEAD
    }
}

impl Reassembler {
    /// A reassembler with the given bounds; the bytes buffered over all frames in flight are
    /// bounded by `max_message` until [`with_max_buffered`](Self::with_max_buffered) says
    /// otherwise (one frame of the largest size fits).
    ///
    /// ```
    /// let reassembler = sync_protocol::Reassembler::new(64 << 20, 4, 30_000);
    /// assert_eq!(reassembler.in_flight(), 0);
    /// ```
    pub fn new(max_message: usize, max_in_flight: usize, timeout_ms: u64) -> Reassembler {
        Reassembler {
            max_message,
            max_in_flight,
            max_buffered: max_message,
            timeout_ms,
            partial: VecMap::default(),
            buffered: 0,
        }
    }

    /// Bounds the bytes buffered over all frames in flight (see [`Reassembler::buffered_bytes`]).
    ///
    /// ```
    /// use sync_protocol::{FragmentError, Reassembler};
    /// let mut reassembler = Reassembler::new(1000, 4, 1_000).with_max_buffered(1000);
    /// assert_eq!(reassembler.push(1, 0, 2, vec![0; 600], 0), Ok(None));
    /// assert_eq!(reassembler.push(2, 0, 2, vec![0; 600], 0), Err(FragmentError::OverBudget));
    /// ```
    pub fn with_max_buffered(mut self, max_buffered: usize) -> Reassembler {
        self.max_buffered = max_buffered;
        self
    }

    /// Frames currently being reassembled.
    pub fn in_flight(&self) -> usize {
        self.partial.len()
    }

    /// Bytes currently held: the payload received for unfinished frames plus
    /// [`PIECE_OVERHEAD`] per piece.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Drops every unfinished frame (the connection is ending).
    pub fn clear(&mut self) {
        self.partial.clear();
        self.buffered = 0;
    }

    /// Takes any received frame and its encoding: a fragment is buffered (and, if it was the
    /// last, the whole frame comes back); any other frame comes straight back. What comes back
    /// is never a fragment, so the caller handles it without recursion. A whole frame's
    /// `encoded` is passed through untouched: a caller that never needs the encoding may pass
    /// an empty vector (a reassembled frame always carries its own).
    ///
    /// ```
    /// use sync_protocol::{Frame, Reassembler, split_into_fragments};
    ///
    /// let frame = Frame::Auth { token: "t".repeat(3000) };
    /// let mut reassembler = Reassembler::new(1 << 20, 4, 10_000);
    /// let mut whole = None;
    /// for message in split_into_fragments(&frame, 1024, 1) {
    ///     let decoded = Frame::decode(&message).unwrap();
    ///     whole = reassembler.receive(decoded, message, 0).unwrap();
    /// }
    /// assert_eq!(whole.unwrap().frame, frame);
    /// ```
    pub fn receive(
        &mut self,
        frame: Frame,
        encoded: Vec<u8>,
        now_ms: u64,
    ) -> Result<Option<Reassembled>, FragmentError> {
        match frame {
            Frame::Fragment {
                id,
                index,
                count,
                bytes,
            } => self.push(id, index, count, bytes, now_ms),
            frame => Ok(Some(Reassembled { frame, encoded })),
        }
    }

    /// Adds one fragment received at `now_ms`; returns the decoded frame once its last fragment
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
    ) -> Result<Option<Reassembled>, FragmentError> {
        self.expire(now_ms)?;
        if count == 0 || index >= count {
            self.drop_partial(id);
            return Err(FragmentError::OutOfOrder);
        }
        if index == 0 {
            if self.partial.contains_key(&id) {
                self.drop_partial(id);
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
                    pieces: Vec::new(),
                    len: 0,
                    started_ms: now_ms,
                },
            );
        }
        let Some(partial) = self.partial.get(&id) else {
            return Err(FragmentError::OutOfOrder);
        };
        if partial.next_index != index || partial.count != count {
            self.drop_partial(id);
            return Err(FragmentError::OutOfOrder);
        }
        if partial.len.saturating_add(bytes.len()) > self.max_message {
            self.drop_partial(id);
            return Err(FragmentError::TooLarge);
        }
        let charge = bytes.len().saturating_add(PIECE_OVERHEAD);
        if self.buffered.saturating_add(charge) > self.max_buffered {
            self.drop_partial(id);
            return Err(FragmentError::OverBudget);
        }
        let Some(partial) = self.partial.get_mut(&id) else {
            return Err(FragmentError::OutOfOrder);
        };
        partial.len += bytes.len();
        partial.pieces.push(bytes);
        partial.next_index += 1;
        self.buffered += charge;
        if partial.next_index < partial.count {
            return Ok(None);
        }
        let Some(done) = self.remove_partial(id) else {
            return Err(FragmentError::OutOfOrder);
        };
        let mut encoded = Vec::with_capacity(done.len);
        for piece in done.pieces {
            encoded.extend_from_slice(&piece);
        }
        match Frame::decode(&encoded) {
            Ok(Frame::Fragment { .. }) => Err(FragmentError::Nested),
            Ok(frame) => Ok(Some(Reassembled { frame, encoded })),
            Err(error) => Err(FragmentError::Frame(error)),
        }
    }

    /// Drops partial frames older than the timeout; an error says that one was dropped.
    pub fn expire(&mut self, now_ms: u64) -> Result<(), FragmentError> {
        let timeout = self.timeout_ms;
        let expired: Vec<u32> = self
            .partial
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.started_ms) > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.drop_partial(*id);
        }
        if expired.is_empty() {
            Ok(())
        } else {
            Err(FragmentError::TimedOut)
        }
    }

    fn remove_partial(&mut self, id: u32) -> Option<Partial> {
        let partial = self.partial.remove(&id)?;
        self.buffered = self.buffered.saturating_sub(partial.charge());
        Some(partial)
    }

    fn drop_partial(&mut self, id: u32) {
        self.remove_partial(id);
    }
}

/// Why a fragmented frame could not be put back together.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FragmentError {
    /// The whole frame would exceed the maximum message size.
    TooLarge,
    /// Too many fragmented frames at once.
    TooManyInFlight,
    /// The bytes buffered over all unfinished frames would exceed their bound.
    OverBudget,
    /// A fragment arrived out of sequence, or with inconsistent counts.
    OutOfOrder,
    /// A fragmented frame did not complete in time.
    TimedOut,
    /// The reassembled frame is itself a fragment; nobody splits a fragment again.
    Nested,
    /// The reassembled bytes are not a frame this build reads.
    Frame(FrameError),
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragmentError::TooLarge => {
                f.write_str("fragmented frame exceeds the maximum message size")
            }
            FragmentError::TooManyInFlight => f.write_str("too many fragmented frames in flight"),
            FragmentError::OverBudget => {
                f.write_str("unfinished fragmented frames exceed the bytes allowed in flight")
            }
            FragmentError::OutOfOrder => f.write_str("fragment out of sequence"),
            FragmentError::TimedOut => f.write_str("fragmented frame did not complete in time"),
            FragmentError::Nested => f.write_str("a fragment inside a fragmented frame"),
            FragmentError::Frame(error) => {
                write!(f, "a reassembled frame does not decode: {error}")
            }
        }
    }
}

impl std::error::Error for FragmentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FragmentError::Frame(error) => Some(error),
            _ => None,
        }
    }
}

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
        whole.map(|whole| whole.frame)
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

    #[test]
    fn a_fragment_inside_a_reassembled_frame_is_refused() {
        // 20,000 levels in about 240 KB: refused at the first level, without recursion.
        let mut nested = Frame::Unsubscribe { doc: "d".into() }.encode();
        for _ in 0..20_000 {
            nested = Frame::Fragment {
                id: 1,
                index: 0,
                count: 1,
                bytes: nested,
            }
            .encode();
        }
        let mut reassembler = Reassembler::new(1 << 20, 4, 1000);
        let frame = Frame::decode(&nested).unwrap();
        assert_eq!(
            reassembler.receive(frame, nested, 0),
            Err(FragmentError::Nested)
        );
        assert_eq!(reassembler.buffered_bytes(), 0);
        // A reassembled frame that does not decode is a typed error too.
        assert!(matches!(
            reassembler.push(2, 0, 1, vec![0xC7, b'W', 9, 0], 0),
            Err(FragmentError::Frame(FrameError::UnsupportedVersion {
                found: 9,
                ..
            }))
        ));
    }

    #[test]
    fn buffered_bytes_count_what_arrived_and_are_bounded() {
        let mut reassembler = Reassembler::new(10_000, 8, 1000).with_max_buffered(1000);
        // A huge announced count reserves nothing.
        assert_eq!(reassembler.push(1, 0, u32::MAX, vec![1; 100], 0), Ok(None));
        assert_eq!(reassembler.buffered_bytes(), 100 + PIECE_OVERHEAD);
        // Empty pieces are not free.
        for index in 1..=20 {
            assert_eq!(reassembler.push(1, index, u32::MAX, vec![], 0), Ok(None));
        }
        assert_eq!(reassembler.buffered_bytes(), 100 + 21 * PIECE_OVERHEAD);
        assert_eq!(
            reassembler.push(2, 0, 2, vec![0; 300], 0),
            Err(FragmentError::OverBudget)
        );
        assert_eq!(reassembler.in_flight(), 1);
        // Completing, failing and expiring give the bytes back.
        assert_eq!(
            reassembler.push(1, 22, u32::MAX, vec![], 0),
            Err(FragmentError::OutOfOrder)
        );
        assert_eq!(reassembler.buffered_bytes(), 0);
        let whole = Frame::Unsubscribe { doc: "d".into() }.encode();
        let (a, b) = whole.split_at(3);
        assert_eq!(reassembler.push(3, 0, 2, a.to_vec(), 0), Ok(None));
        assert!(reassembler.push(3, 1, 2, b.to_vec(), 0).unwrap().is_some());
        assert_eq!(reassembler.push(4, 0, 2, vec![0; 10], 0), Ok(None));
        assert_eq!(reassembler.expire(5000), Err(FragmentError::TimedOut));
        assert_eq!(reassembler.buffered_bytes(), 0);
    }
}
