//! Live capture on one interface: a small snap length, a kernel buffer, non-blocking reads
//! (libpcap's read timeout may never fire on a quiet Linux interface) with `poll` on the
//! captures' descriptors to wait, woken as soon as the kernel hands over a buffer of packets,
//! and the kernel filter of [`super::filter`]. Packets carry the kernel's
//! capture time: reading late does not change what is measured.

use std::fmt;

use super::file::{capture_time, strip_libpcap};
use crate::decode::LinkType;
use crate::time::Timestamp;

/// The kernel hands over a buffer of packets at the latest after this long.
pub const BUFFER_TIMEOUT_MS: i32 = 50;

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
        let err =
            |what: &str, e: pcap::Error| format!("{interface}: {what}: {}", strip_libpcap(&e));
        let inactive =
            pcap::Capture::from_device(interface).map_err(|e| err("no such device", e))?;
        let mut capture = inactive
            .snaplen(i32::try_from(snaplen).unwrap_or(i32::MAX))
            .buffer_size(i32::try_from(buffer_kib.saturating_mul(1024)).unwrap_or(i32::MAX))
            .timeout(BUFFER_TIMEOUT_MS)
            .promisc(false)
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
