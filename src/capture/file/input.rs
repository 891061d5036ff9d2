//! A byte stream read through one reusable buffer: records are parsed in place, where they lie
//! in the buffer, and handed on as slices of it (nothing is copied per packet, nothing is
//! allocated once the buffer has its size). The stream is only ever read forward (standard
//! input works as a file does); skipped bytes are read and dropped, never sought over.
//!
//! Bounds: the buffer starts at [`INITIAL_BYTES`] and grows only while the bytes of one record
//! larger than it arrive (doubling), never beyond [`MAX_RECORD_BYTES`] whatever a length field
//! says; the callers check that limit before asking.
//!
//! Shared buffers (`analyze -j`, cargo feature `jobs`): the stream may instead come as buffers
//! another thread filled ([`Shared`]). Records are then parsed where they lie in those; only
//! a record that spans two of them is gathered into a buffer of its own (which holds then at
//! most that record, so never more than [`MAX_RECORD_BYTES`]). The readers of records take
//! either through [`Bytes`], each compiled for its own.

use std::io::{self, Read};
#[cfg(feature = "jobs")]
use std::sync::Arc;

/// What the readers of records need of a byte stream.
pub trait Bytes {
    /// Make `n` bytes (at most [`MAX_RECORD_BYTES`]) available in [`Bytes::bytes`]: false
    /// when the stream ends before (`bytes` then holds what was left).
    fn fill(&mut self, n: usize) -> io::Result<bool>;
    /// The bytes read and not consumed yet.
    fn bytes(&self) -> &[u8];
    /// Drop the first `n` bytes of [`Bytes::bytes`] (at most all of them).
    fn consume(&mut self, n: usize);
    /// Read and drop `n` bytes: false when the stream ends before.
    fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        loop {
            let here = usize::try_from(n).unwrap_or(usize::MAX).min(self.bytes().len());
            self.consume(here);
            n -= here as u64;
            if n == 0 {
                return Ok(true);
            }
            // On with what the next read brings.
            if !self.fill(1)? {
                return Ok(false);
            }
        }
    }
    /// Where [`Bytes::bytes`] begins in the stream.
    fn offset_bytes(&self) -> u64;
}

/// The buffer's first size: many packet records per `read`, and every pcap record (at most
/// 16 + 262,144 bytes) fits.
const INITIAL_BYTES: usize = 512 * 1024;

/// The largest record ever buffered whole (a pcapng block: libpcap's own limit is the same).
pub(super) const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

pub struct Input {
    source: Box<dyn Read>,
    buf: Vec<u8>,
    /// The first byte not consumed yet, and the end of the bytes read, in `buf`.
    start: usize,
    end: usize,
    /// The stream offset of `buf[start]`.
    offset_bytes: u64,
    at_end: bool,
}

impl Input {
    pub(super) fn new(source: Box<dyn Read>) -> Input {
        Input {
            source,
            buf: vec![0; INITIAL_BYTES],
            start: 0,
            end: 0,
            offset_bytes: 0,
            at_end: false,
        }
    }

    #[cold]
    #[inline(never)]
    fn fill_slow(&mut self, n: usize) -> io::Result<bool> {
        let n = n.min(MAX_RECORD_BYTES);
        if self.buf.len() - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < n {
            if self.at_end {
                return Ok(false);
            }
            if self.end == self.buf.len() {
                // A record larger than the buffer: it grows as the record's bytes arrive (a
                // length field alone, in a short file, allocates nothing), up to the cap.
                self.buf.resize((self.buf.len() * 2).min(MAX_RECORD_BYTES), 0);
            }
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => self.at_end = true,
                Ok(got) => self.end += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl Bytes for Input {
    #[inline(always)]
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.fill_slow(n)
    }

    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    #[inline(always)]
    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset_bytes += n as u64;
    }

    fn offset_bytes(&self) -> u64 {
        self.offset_bytes
    }
}

/// A part of a stream that another thread read (module docs), in the stream's order.
#[cfg(feature = "jobs")]
pub type SharedBytes = Arc<Vec<u8>>;

/// The parts of a stream, in order (module docs).
#[cfg(feature = "jobs")]
pub type SharedParts = Box<dyn Iterator<Item = io::Result<SharedBytes>>>;

/// A stream that comes as buffers another thread filled (module docs).
#[cfg(feature = "jobs")]
pub struct Shared {
    parts: SharedParts,
    /// The buffer that [`Bytes::bytes`] lies in (`None`: `gathered`); what is left of the next
    /// one after a record that spans the two was gathered.
    part: Option<SharedBytes>,
    next_part: Option<(SharedBytes, usize)>,
    /// A record that spans two buffers, gathered.
    gathered: Vec<u8>,
    /// The first byte not consumed yet, and the end of the bytes, in `part` (or `gathered`).
    start: usize,
    end: usize,
    /// The stream offset of the first byte not consumed yet.
    offset_bytes: u64,
    at_end: bool,
}

#[cfg(feature = "jobs")]
impl Shared {
    pub(super) fn new(parts: SharedParts) -> Shared {
        Shared {
            parts,
            part: None,
            next_part: None,
            gathered: Vec::new(),
            start: 0,
            end: 0,
            offset_bytes: 0,
            at_end: false,
        }
    }

    /// [`Bytes::fill`] beyond the current buffer: on in the next one where its bytes lie, or
    /// what is left here and the next ones' first bytes gathered.
    #[cold]
    #[inline(never)]
    fn fill_slow(&mut self, n: usize) -> io::Result<bool> {
        let n = n.min(MAX_RECORD_BYTES);
        while self.end - self.start < n {
            if self.start == self.end {
                let Some((part, at)) = self.next_shared()? else { return Ok(false) };
                (self.start, self.end) = (at, part.len());
                self.part = Some(part);
                continue;
            }
            match self.part.take() {
                Some(part) => {
                    self.gathered.clear();
                    self.gathered.extend_from_slice(&part[self.start..self.end]);
                }
                None => {
                    self.gathered.truncate(self.end);
                    self.gathered.drain(..self.start);
                }
            }
            (self.start, self.end) = (0, self.gathered.len());
            let Some((part, at)) = self.next_shared()? else { return Ok(false) };
            let take = (n - self.end).min(part.len() - at);
            self.gathered.extend_from_slice(&part[at..at + take]);
            self.end += take;
            if at + take < part.len() {
                self.next_part = Some((part, at + take));
            }
        }
        Ok(true)
    }

    /// The next shared buffer that holds bytes, and where its unread bytes begin.
    fn next_shared(&mut self) -> io::Result<Option<(SharedBytes, usize)>> {
        if let Some(next) = self.next_part.take() {
            return Ok(Some(next));
        }
        while !self.at_end {
            match self.parts.next() {
                None => self.at_end = true,
                Some(Err(e)) => return Err(e),
                Some(Ok(part)) if part.is_empty() => {}
                Some(Ok(part)) => return Ok(Some((part, 0))),
            }
        }
        Ok(None)
    }
}

#[cfg(feature = "jobs")]
impl Bytes for Shared {
    #[inline(always)]
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.fill_slow(n)
    }

    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        match &self.part {
            Some(part) => &part[self.start..self.end],
            None => &self.gathered[self.start..self.end],
        }
    }

    #[inline(always)]
    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset_bytes += n as u64;
    }

    fn offset_bytes(&self) -> u64 {
        self.offset_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes a call, as a pipe does.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn trickle(len: usize, step: usize) -> Input {
        let data = (0..len).map(|i| i as u8).collect();
        Input::new(Box::new(Trickle { data, at: 0, step }))
    }

    #[test]
    fn fill_gathers_short_reads_and_reports_the_end() {
        let mut input = trickle(1000, 7);
        assert!(input.fill(100).unwrap());
        assert_eq!(&input.bytes()[..3], [0, 1, 2]);
        assert!(input.fill(998).unwrap());
        input.consume(998);
        assert_eq!(input.offset_bytes(), 998);
        assert!(!input.fill(3).unwrap());
        assert_eq!(input.bytes(), [998u32 as u8, 999u32 as u8]);
    }

    #[test]
    fn records_across_the_buffer_end_are_whole_and_large_ones_grow_it_to_the_cap() {
        let len = INITIAL_BYTES * 3;
        let mut input = trickle(len, 100_000);
        assert!(input.fill(INITIAL_BYTES - 10).unwrap());
        input.consume(INITIAL_BYTES - 10);
        // 20 bytes straddling the first buffer's end.
        assert!(input.fill(20).unwrap());
        assert_eq!(input.bytes()[0], (INITIAL_BYTES - 10) as u8);
        // A record larger than the buffer.
        assert!(input.fill(INITIAL_BYTES + 5).unwrap());
        assert!(input.bytes().len() >= INITIAL_BYTES + 5);
        // Asking beyond the cap gets at most the cap.
        assert!(input.buf.len() <= INITIAL_BYTES * 2);
        // A length that the stream does not hold allocates nothing.
        let mut short = trickle(10, 10);
        assert!(!short.fill(usize::MAX).unwrap());
        assert_eq!(short.buf.len(), INITIAL_BYTES);
        // Nor beyond the cap, however long the record.
        let mut long = trickle(MAX_RECORD_BYTES + 10, 1 << 20);
        assert!(long.fill(usize::MAX).unwrap());
        assert_eq!(long.buf.len(), MAX_RECORD_BYTES);
    }

    #[test]
    fn skip_reads_forward_past_the_buffer() {
        let mut input = trickle(INITIAL_BYTES * 2 + 50, 4096);
        assert!(input.skip((INITIAL_BYTES * 2) as u64).unwrap());
        assert!(input.fill(1).unwrap());
        assert_eq!(input.bytes()[0], (INITIAL_BYTES * 2) as u8);
        assert_eq!(input.offset_bytes(), (INITIAL_BYTES * 2) as u64);
        assert!(!input.skip(51).unwrap());
    }
}
