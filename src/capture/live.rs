//! Live capture on one interface: a small snap length, a kernel buffer, non-blocking reads
//! (libpcap's read timeout may never fire on a quiet Linux interface) with `poll` on the
//! captures' descriptors to wait, woken as soon as the kernel hands over a buffer of packets,
//! and the kernel filter of [`super::filter`]. Packets carry the kernel's
//! capture time: reading late does not change what is measured.
//!
//! An interface may also have a narrow full-size classification capture ([`LiveInterface`]):
//! its copies are handed over in packet-time order with the measuring capture's packets, each
//! right after its measuring twin (both captures see the same packet with the same time
//! stamp), so a DNS answer is read before the flows it labels and after the query whose flow
//! it belongs to, however the kernel hands over the two captures' buffers. The copies wait in
//! a bounded queue of reused buffers.

use std::collections::VecDeque;
use std::fmt;

use crate::decode::LinkType;
use crate::time::Timestamp;

/// The kernel hands over a buffer of packets at the latest after this long.
pub const BUFFER_TIMEOUT_MS: i32 = 50;

/// How long a full-size copy waits for its measuring twin before it is read without it (the
/// measuring filter left the twin out, or the kernel dropped it): well beyond the time the
/// kernel takes to hand over the buffer holding the twin.
const TWIN_WAIT_US: u64 = 4 * BUFFER_TIMEOUT_MS as u64 * 1000;

/// Full-size copies held at most; beyond, the oldest is read without waiting for its twin.
const HELD_COPIES: usize = 256;

/// Kernel buffer of a classification capture: it carries few packets, read as they come.
const CLASSIFY_BUFFER_KIB: u32 = 512;

/// The kernel's counters for one capture (libpcap's `pcap_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub received: u64,
    /// Dropped because the capture buffer was full: the capture cannot keep up.
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub if_dropped: u64,
}

pub struct LiveCapture {
    interface: String,
    link: LinkType,
    capture: pcap::Capture<pcap::Active>,
    /// libpcap's counters are 32-bit and wrap: kept here as 64-bit totals.
    last: (u32, u32, u32),
    totals: LiveStats,
}

impl fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCapture").field("interface", &self.interface).finish()
    }
}

impl LiveCapture {
    /// Open `interface` (needs CAP_NET_RAW). `filter` is installed in the kernel when it fits
    /// there (libpcap falls back to filtering in userspace otherwise).
    pub fn open(
        interface: &str,
        snaplen: u32,
        buffer_kib: u32,
        filter: Option<&str>,
    ) -> Result<LiveCapture, String> {
        Self::open_with(interface, snaplen, buffer_kib, filter, false)
    }

    /// The full-size classification capture of `interface` (the filter of
    /// [`super::filter::classification_expression`]), in immediate mode: each copy is handed
    /// over as soon as it is captured, so it is already there when the measuring capture's
    /// buffer holding its twin is read.
    pub fn open_classification(interface: &str, snaplen: u32) -> Result<LiveCapture, String> {
        let filter = super::filter::classification_expression();
        Self::open_with(interface, snaplen, CLASSIFY_BUFFER_KIB, Some(&filter), true)
    }

    fn open_with(
        interface: &str,
        snaplen: u32,
        buffer_kib: u32,
        filter: Option<&str>,
        immediate: bool,
    ) -> Result<LiveCapture, String> {
        let err =
            |what: &str, e: pcap::Error| format!("{interface}: {what}: {}", strip_libpcap(&e));
        let inactive =
            pcap::Capture::from_device(interface).map_err(|e| err("no such device", e))?;
        let mut capture = inactive
            .snaplen(i32::try_from(snaplen).unwrap_or(i32::MAX))
            .buffer_size(i32::try_from(buffer_kib.saturating_mul(1024)).unwrap_or(i32::MAX))
            .timeout(BUFFER_TIMEOUT_MS)
            .promisc(false)
            .immediate_mode(immediate)
            .open()
            .map_err(|e| err("cannot capture", e))?
            .setnonblock()
            .map_err(|e| err("cannot make the capture non-blocking", e))?;
        let dlt = capture.get_datalink();
        let link = LinkType::from_dlt(dlt.0).ok_or_else(|| {
            format!(
                "{interface}: link type {} is not supported; supported: {}",
                dlt.0,
                LinkType::SUPPORTED
            )
        })?;
        if let Some(f) = filter {
            capture.filter(f, true).map_err(|e| err("the capture filter does not compile", e))?;
        }
        Ok(LiveCapture {
            interface: interface.to_string(),
            link,
            capture,
            last: (0, 0, 0),
            totals: LiveStats::default(),
        })
    }

    /// Wait until one of `captures` has packets to hand over, or `timeout_ms` passed.
    pub fn wait_any(captures: &[&LiveCapture], timeout_ms: i32) {
        use std::os::fd::AsRawFd;
        let mut fds: Vec<libc::pollfd> = captures
            .iter()
            .map(|c| libc::pollfd { fd: c.capture.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs
        // for the duration of the call; poll only writes their `revents`.
        #[allow(unsafe_code)]
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms);
        }
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Deliver up to `max` waiting packets to `f(time, captured bytes, wire length)`, without
    /// waiting for more. Returns how many were delivered.
    pub fn poll(
        &mut self,
        max: usize,
        mut f: impl FnMut(Timestamp, &[u8], u32),
    ) -> Result<usize, String> {
        let mut delivered = 0;
        while delivered < max {
            match self.capture.next_packet() {
                Ok(packet) => {
                    f(capture_time(packet.header), packet.data, packet.header.len);
                    delivered += 1;
                }
                Err(pcap::Error::TimeoutExpired) => break,
                Err(e) => return Err(format!("{}: {}", self.interface, strip_libpcap(&e))),
            }
        }
        Ok(delivered)
    }

    /// The kernel's counters since the capture opened.
    pub fn stats(&mut self) -> LiveStats {
        if let Ok(s) = self.capture.stats() {
            let step = |now: u32, before: u32| u64::from(now.wrapping_sub(before));
            self.totals.received += step(s.received, self.last.0);
            self.totals.dropped += step(s.dropped, self.last.1);
            self.totals.if_dropped += step(s.if_dropped, self.last.2);
            self.last = (s.received, s.dropped, s.if_dropped);
        }
        self.totals
    }
}

/// Which capture of an interface a frame comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The measuring capture: every packet the kernel filter keeps, at the snap length.
    Measured,
    /// A full-size copy from the classification capture, for the classifier only.
    FullCopy,
}

/// What one [`LiveInterface::poll`] took from the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    pub measured: usize,
    pub copies: usize,
}

/// The captures of one interface, read as one stream in packet-time order: the measuring
/// capture, and optionally the narrow full-size classification capture.
#[derive(Debug)]
pub struct LiveInterface {
    measure: LiveCapture,
    classify: Option<(LiveCapture, HeldFrames)>,
}

impl LiveInterface {
    pub fn new(measure: LiveCapture, classify: Option<LiveCapture>) -> LiveInterface {
        let classify = classify.map(|c| (c, HeldFrames::new(HELD_COPIES)));
        LiveInterface { measure, classify }
    }

    pub fn measure(&mut self) -> &mut LiveCapture {
        &mut self.measure
    }

    /// Every capture of the interface, to wait on.
    pub fn captures(&self) -> impl Iterator<Item = &LiveCapture> {
        std::iter::once(&self.measure).chain(self.classify.as_ref().map(|(c, _)| c))
    }

    /// Deliver up to `max` measuring packets to `f`, and the full copies in packet-time order
    /// with them: a copy goes right after the last measuring packet stamped no later than it
    /// (its twin), or once it waited 200 ms by `clock` (the clock the kernel stamps packets
    /// with) for a twin that the measuring capture never handed over.
    pub fn poll(
        &mut self,
        max: usize,
        clock: fn() -> Timestamp,
        mut f: impl FnMut(Stream, Timestamp, &[u8], u32),
    ) -> Result<Polled, String> {
        let Some((copies, held)) = &mut self.classify else {
            let measured = self.measure.poll(max, |ts, frame, len| {
                f(Stream::Measured, ts, frame, len);
            })?;
            return Ok(Polled { measured, copies: 0 });
        };
        // Every copy captured before `complete` is held: the classification capture hands
        // each over at once.
        let started = clock();
        let mut complete = started;
        let mut taken = hold(copies, held, max, &mut f)?;
        let mut failed = None;
        let mut last = None;
        let measured = self.measure.poll(max, |ts, frame, len| {
            if ts > complete && failed.is_none() {
                // Captured after the copies were read: read those that came since.
                complete = clock();
                match hold(copies, held, max, &mut f) {
                    Ok(n) => taken += n,
                    Err(e) => failed = Some(e),
                }
            }
            held.release_while(|t| t < ts, |t, c, l| f(Stream::FullCopy, t, c, l));
            f(Stream::Measured, ts, frame, len);
            last = Some(ts);
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if let Some(last) = last {
            held.release_while(|t| t <= last, |t, c, l| f(Stream::FullCopy, t, c, l));
        }
        // The measuring capture is drained, and the buffers that held any twin of the older
        // copies were handed over long ago.
        if measured < max {
            let waited = |t: Timestamp| t.add_micros(TWIN_WAIT_US) < started;
            held.release_while(waited, |t, c, l| f(Stream::FullCopy, t, c, l));
        }
        Ok(Polled { measured, copies: taken })
    }

    /// Deliver every held copy (the capture stops).
    pub fn flush(&mut self, mut f: impl FnMut(Stream, Timestamp, &[u8], u32)) {
        if let Some((_, held)) = &mut self.classify {
            held.release_while(|_| true, |t, c, l| f(Stream::FullCopy, t, c, l));
        }
    }
}

/// Take up to `max` waiting copies from `copies` into `held`.
fn hold(
    copies: &mut LiveCapture,
    held: &mut HeldFrames,
    max: usize,
    f: &mut impl FnMut(Stream, Timestamp, &[u8], u32),
) -> Result<usize, String> {
    copies.poll(max, |ts, frame, len| {
        held.push(ts, frame, len, |t, c, l| f(Stream::FullCopy, t, c, l));
    })
}

/// Frames copied out of the kernel's ring to be read later, oldest first: at most `capacity`,
/// in buffers that are reused once allocated.
#[derive(Debug)]
struct HeldFrames {
    frames: VecDeque<HeldFrame>,
    spare: Vec<Vec<u8>>,
    capacity: usize,
}

#[derive(Debug)]
struct HeldFrame {
    ts: Timestamp,
    wire_len: u32,
    data: Vec<u8>,
}

impl HeldFrames {
    fn new(capacity: usize) -> HeldFrames {
        HeldFrames { frames: VecDeque::with_capacity(capacity), spare: Vec::new(), capacity }
    }

    /// Hold a copy of `frame`; when full, the oldest held frame goes to `overflow` first.
    fn push(
        &mut self,
        ts: Timestamp,
        frame: &[u8],
        wire_len: u32,
        mut overflow: impl FnMut(Timestamp, &[u8], u32),
    ) {
        while self.frames.len() >= self.capacity.max(1) {
            let Some(oldest) = self.frames.pop_front() else { break };
            overflow(oldest.ts, &oldest.data, oldest.wire_len);
            self.spare.push(oldest.data);
        }
        let mut data = self.spare.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(frame);
        self.frames.push_back(HeldFrame { ts, wire_len, data });
    }

    /// Give `f` the held frames, oldest first, as long as `due` says so of their time.
    fn release_while(
        &mut self,
        mut due: impl FnMut(Timestamp) -> bool,
        mut f: impl FnMut(Timestamp, &[u8], u32),
    ) {
        while let Some(front) = self.frames.front() {
            if !due(front.ts) {
                break;
            }
            let Some(held) = self.frames.pop_front() else { break };
            f(held.ts, &held.data, held.wire_len);
            self.spare.push(held.data);
        }
    }
}

/// A packet's capture time, as libpcap hands it over.
fn capture_time(h: &pcap::PacketHeader) -> Timestamp {
    // time_t and suseconds_t are 32 bits on some router targets.
    #[allow(clippy::useless_conversion)]
    Timestamp::from_timeval(i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec))
}

/// libpcap's message without the crate's "libpcap error: " prefix.
fn strip_libpcap(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(held: &mut HeldFrames, due: impl FnMut(Timestamp) -> bool) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        held.release_while(due, |ts, frame, len| {
            assert_eq!(len as usize, frame.len() + 100);
            out.push((ts.micros(), frame.to_vec()));
        });
        out
    }

    fn push(held: &mut HeldFrames, us: u64, frame: &[u8]) -> Vec<u64> {
        let mut overflow = Vec::new();
        held.push(Timestamp::from_micros(us), frame, frame.len() as u32 + 100, |ts, _, _| {
            overflow.push(ts.micros())
        });
        overflow
    }

    /// Held copies come out oldest first, up to the first that is not due, with their bytes.
    #[test]
    fn held_frames_come_out_in_order_while_due() {
        let mut held = HeldFrames::new(8);
        for (us, frame) in [(10, &b"ab"[..]), (20, b"cde"), (30, b"f")] {
            assert!(push(&mut held, us, frame).is_empty());
        }
        let early = taken(&mut held, |t| t < Timestamp::from_micros(25));
        assert_eq!(early, vec![(10, b"ab".to_vec()), (20, b"cde".to_vec())]);
        assert!(taken(&mut held, |t| t < Timestamp::from_micros(30)).is_empty());
        assert_eq!(taken(&mut held, |_| true), vec![(30, b"f".to_vec())]);
    }

    /// At most `capacity` copies wait: a further one pushes the oldest out first, and the
    /// buffers are reused rather than allocated again.
    #[test]
    fn held_frames_are_bounded() {
        let mut held = HeldFrames::new(2);
        assert!(push(&mut held, 1, b"x").is_empty());
        assert!(push(&mut held, 2, b"y").is_empty());
        assert_eq!(push(&mut held, 3, b"z"), vec![1]);
        assert_eq!(push(&mut held, 4, b"w"), vec![2]);
        assert_eq!(held.frames.len(), 2);
        assert!(held.spare.is_empty(), "the pushed-out buffers were reused");
        assert_eq!(taken(&mut held, |_| true), vec![(3, b"z".to_vec()), (4, b"w".to_vec())]);
        assert_eq!(held.spare.len(), 2);
        assert!(push(&mut held, 5, b"v").is_empty());
        assert_eq!(held.spare.len(), 1);
    }
}
