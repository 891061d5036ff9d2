//! pcap and pcapng files through libpcap. The format is recognised by its magic bytes, never by
//! the file name, so that a clear message can name a file that is neither; libpcap then reads
//! it. A file that ends in the middle of a record or holds a corrupt one stops the read with an
//! error naming the file and the packet number; the packets before it have been delivered.
//!
//! A pcapng file may hold sections of both byte orders (one per Section Header Block; files
//! concatenated from a big- and a little-endian machine), which libpcap reads as corrupt: when
//! libpcap stops, the sections are located ([`byte_order_runs`], a walk over the block headers
//! only) and, if every packet before the next section of the other byte order was delivered,
//! libpcap goes on from that section.

use std::fmt;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use crate::decode::LinkType;
use crate::time::Timestamp;

/// The container format of a trace file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    Pcap,
    /// pcap with nanosecond timestamps.
    PcapNano,
    PcapNg,
}

impl TraceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceFormat::Pcap => "pcap",
            TraceFormat::PcapNano => "pcap-ns",
            TraceFormat::PcapNg => "pcapng",
        }
    }

    /// Recognise the format from a file's first four bytes.
    pub fn from_magic(magic: [u8; 4]) -> Option<TraceFormat> {
        match magic {
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xd4, 0xc3, 0xb2, 0xa1] => Some(TraceFormat::Pcap),
            [0xa1, 0xb2, 0x3c, 0x4d] | [0x4d, 0x3c, 0xb2, 0xa1] => Some(TraceFormat::PcapNano),
            [0x0a, 0x0d, 0x0d, 0x0a] => Some(TraceFormat::PcapNg),
            _ => None,
        }
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trace file that cannot be opened or read to the end.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("{path}: packet {packet}: {message}")]
    Packet { path: PathBuf, packet: u64, message: String },
}

/// An open trace file.
pub struct TraceFile {
    path: PathBuf,
    format: TraceFormat,
    link: LinkType,
    capture: pcap::Capture<pcap::Offline>,
}

impl fmt::Debug for TraceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceFile")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("link", &self.link)
            .finish()
    }
}

impl TraceFile {
    pub fn open(path: &Path) -> Result<TraceFile, CaptureError> {
        let open_err = |message: String| CaptureError::Open { path: path.to_path_buf(), message };
        let mut file =
            std::fs::File::open(path).map_err(|e| open_err(format!("cannot open: {e}")))?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(open_err("is a directory, not a pcap or pcapng file".into()));
        }
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match file.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(open_err(format!("cannot read: {e}"))),
            }
        }
        if got == 0 {
            return Err(open_err("empty file, not a pcap or pcapng trace".into()));
        }
        let format = match TraceFormat::from_magic(magic) {
            Some(f) if got == 4 => f,
            _ => {
                let hint = match magic {
                    [0x1f, 0x8b, ..] => " (it is gzip-compressed: decompress it first)",
                    [0x28, 0xb5, 0x2f, 0xfd] => " (it is zstd-compressed: decompress it first)",
                    _ => "",
                };
                let shown: Vec<String> = magic[..got].iter().map(|b| format!("{b:02x}")).collect();
                return Err(open_err(format!(
                    "not a pcap or pcapng file: it starts with bytes {}{hint}",
                    shown.join(" ")
                )));
            }
        };
        drop(file);
        let capture = pcap::Capture::from_file(path).map_err(|e| {
            open_err(format!("libpcap cannot read this {format} file: {}", strip_libpcap(&e)))
        })?;
        let dlt = capture.get_datalink();
        let link = LinkType::from_dlt(dlt.0).ok_or_else(|| {
            let name = dlt.get_name().unwrap_or_else(|_| "unknown".into());
            open_err(format!(
                "link type {} ({name}) is not supported; supported: {}",
                dlt.0,
                LinkType::SUPPORTED
            ))
        })?;
        Ok(TraceFile { path: path.to_path_buf(), format, link, capture })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> TraceFormat {
        self.format
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Deliver every packet to `f(time, captured bytes, wire length)`. Returns the number of
    /// packets delivered, or the error that stopped the read (after the packets before it).
    pub fn for_each_packet(
        &mut self,
        mut f: impl FnMut(Timestamp, &[u8], u32),
    ) -> Result<u64, CaptureError> {
        let mut delivered = 0u64;
        // pcapng sections by byte order, located when libpcap first stops; the one being read
        // and the packets read from it.
        let mut runs: Option<Vec<ByteOrderRun>> = None;
        let (mut run, mut delivered_in_run) = (0, 0u64);
        loop {
            match self.capture.next_packet() {
                Ok(packet) => {
                    f(capture_time(packet.header), packet.data, packet.header.len);
                    delivered += 1;
                    delivered_in_run += 1;
                }
                Err(pcap::Error::NoMorePackets) => return Ok(delivered),
                Err(_)
                    if self.format == TraceFormat::PcapNg
                        && runs
                            .get_or_insert_with(|| byte_order_runs(&self.path))
                            .get(run)
                            .is_some_and(|r| r.packets == delivered_in_run)
                        && runs.as_ref().is_some_and(|r| r.len() > run + 1) =>
                {
                    run += 1;
                    delivered_in_run = 0;
                    let offset = runs.as_ref().map_or(0, |r| r[run].offset);
                    self.capture = self.open_section(offset, delivered)?;
                }
                Err(e) => {
                    return Err(CaptureError::Packet {
                        path: self.path.clone(),
                        packet: delivered + 1,
                        message: format!(
                            "{} (the file is truncated or corrupt; {delivered} packets before it were read)",
                            strip_libpcap(&e)
                        ),
                    });
                }
            }
        }
    }
}

impl TraceFile {
    /// libpcap on this file from byte `offset`, where a section begins; its link type must be
    /// the first section's.
    fn open_section(
        &self,
        offset: u64,
        delivered: u64,
    ) -> Result<pcap::Capture<pcap::Offline>, CaptureError> {
        use std::os::fd::IntoRawFd;
        let err = |message: String| CaptureError::Packet {
            path: self.path.clone(),
            packet: delivered + 1,
            message,
        };
        let mut file = std::fs::File::open(&self.path)
            .map_err(|e| err(format!("cannot open again for the next section: {e}")))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| err(format!("cannot seek to the section at byte {offset}: {e}")))?;
        // SAFETY: the descriptor is open and handed over: the capture owns it (and closes it).
        #[allow(unsafe_code)]
        let capture = unsafe { pcap::Capture::from_raw_fd(file.into_raw_fd()) }.map_err(|e| {
            err(format!("the section at byte {offset} cannot be read: {}", strip_libpcap(&e)))
        })?;
        let dlt = capture.get_datalink().0;
        if LinkType::from_dlt(dlt) != Some(self.link) {
            return Err(err(format!(
                "the section at byte {offset} has link type {dlt}, the file began with {}; \
                 a file of several link types is not supported",
                self.link.name()
            )));
        }
        Ok(capture)
    }
}

/// A run of pcapng sections in one byte order: where it begins, and its packet blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByteOrderRun {
    offset: u64,
    packets: u64,
}

/// Walk a pcapng file's block headers (8 bytes each, and a section header's byte-order
/// magic): the runs of sections of one byte order, with their packet blocks (enhanced, simple
/// and obsolete). Stops at the first block that does not fit: libpcap reports that.
fn byte_order_runs(path: &Path) -> Vec<ByteOrderRun> {
    const SECTION_HEADER: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
    let mut runs: Vec<ByteOrderRun> = Vec::new();
    let Ok(file) = std::fs::File::open(path) else { return runs };
    let size = file.metadata().map_or(0, |m| m.len());
    let mut reader = BufReader::new(file);
    let (mut offset, mut big_endian) = (0u64, None);
    let mut head = [0u8; 12];
    while offset.saturating_add(12) <= size && reader.read_exact(&mut head).is_ok() {
        if head[..4] == SECTION_HEADER {
            let be = match head[8..12] {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                _ => break,
            };
            if big_endian != Some(be) {
                runs.push(ByteOrderRun { offset, packets: 0 });
                big_endian = Some(be);
            }
        }
        let Some(be) = big_endian else { break };
        let word = |b: &[u8]| {
            let b = [b[0], b[1], b[2], b[3]];
            if be { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        let (kind, length) = (word(&head[..4]), u64::from(word(&head[4..8])));
        if length < 12 || length % 4 != 0 || offset.saturating_add(length) > size {
            break;
        }
        if let (2 | 3 | 6, Some(last)) = (kind, runs.last_mut()) {
            last.packets += 1;
        }
        if reader.seek_relative(length.cast_signed() - 12).is_err() {
            break;
        }
        offset += length;
    }
    runs
}

/// A packet's capture time, as libpcap hands it over.
pub(super) fn capture_time(h: &pcap::PacketHeader) -> Timestamp {
    // time_t and suseconds_t are 32 bits on some router targets.
    #[allow(clippy::useless_conversion)]
    Timestamp::from_timeval(i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec))
}

/// libpcap's message without the crate's "libpcap error: " prefix.
pub(super) fn strip_libpcap(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian pcap of raw-IP frames stamped `(seconds, microseconds)`.
    pub(crate) fn pcap_file(path: &Path, stamps: &[(u32, u32)]) {
        let mut bytes = Vec::new();
        for word in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 101] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        let frame = [0x45, 0, 0, 20, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        for &(sec, usec) in stamps {
            for word in [sec, usec, 20, 20] {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            bytes.extend_from_slice(&frame);
        }
        std::fs::write(path, bytes).unwrap();
    }

    /// Issue 11: a packet stamped after 2038 (pcap's seconds are unsigned) showed as 1970.
    #[test]
    fn times_after_2038_are_read_as_such() {
        let path = std::env::temp_dir().join(format!("tw-2038-{}.pcap", std::process::id()));
        pcap_file(&path, &[(0x7fff_ffff, 0), (0x9000_0000, 5), (u32::MAX, 999_999)]);
        let mut file = TraceFile::open(&path).unwrap();
        let mut times = Vec::new();
        file.for_each_packet(|ts, _, _| times.push(ts.to_string())).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            times,
            [
                "2038-01-19T03:14:07.000000Z",
                "2046-07-23T00:38:24.000005Z",
                "2106-02-07T06:28:15.999999Z"
            ]
        );
    }

    /// A pcapng block in byte order `be`.
    fn block(be: bool, kind: u32, body: &[u8]) -> Vec<u8> {
        let word = |w: u32| if be { w.to_be_bytes() } else { w.to_le_bytes() };
        let length = 12 + body.len() as u32;
        [&word(kind)[..], &word(length), body, &word(length)].concat()
    }

    /// A section (header, one Ethernet interface) with UDP packets stamped at `micros`.
    /// (Ethernet: libpcap compares a later section's raw-IP link type, 101, with the first
    /// one's as it maps it, 12, and calls them different.)
    fn section(be: bool, micros: &[u64]) -> Vec<u8> {
        let (w16, w32) = (
            |w: u16| if be { w.to_be_bytes() } else { w.to_le_bytes() },
            |w: u32| if be { w.to_be_bytes() } else { w.to_le_bytes() },
        );
        let mut out =
            block(be, 0x0a0d_0d0a, &[&w32(0x1a2b_3c4d)[..], &w16(1), &w16(0), &[0xff; 8]].concat());
        out.extend(block(be, 1, &[&w16(1)[..], &w16(0), &w32(65_535)].concat()));
        let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        frame.extend([0x45, 0, 0, 20, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        for &t in micros {
            let fields = [0, (t >> 32) as u32, t as u32, 34, 34].map(w32).concat();
            out.extend(block(be, 6, &[&fields[..], &frame, &[0, 0]].concat())); // padded to 4
        }
        out
    }

    /// Issue 11: a pcapng whose second section has the other byte order was rejected as
    /// corrupt after the first section's packets.
    #[test]
    fn sections_of_both_byte_orders_are_read() {
        let t = 1_700_000_000_000_000u64;
        let path = std::env::temp_dir().join(format!("tw-mixed-{}.pcapng", std::process::id()));
        let mut bytes = section(false, &[t]);
        bytes.extend(section(true, &[t + 1, t + 2]));
        bytes.extend(section(true, &[t + 3]));
        bytes.extend(section(false, &[t + 4]));
        std::fs::write(&path, &bytes).unwrap();
        let runs = byte_order_runs(&path);
        assert_eq!(runs.iter().map(|r| r.packets).collect::<Vec<_>>(), [1, 3, 1]);
        let mut file = TraceFile::open(&path).unwrap();
        let mut times = Vec::new();
        let read = file.for_each_packet(|ts, _, _| times.push(ts.micros() - t));
        assert_eq!(read.unwrap(), 5);
        assert_eq!(times, [0, 1, 2, 3, 4]);
        // A block cut short in the second run is still an error, after what came before it.
        bytes.truncate(bytes.len() - section(false, &[t + 4]).len() - 10);
        std::fs::write(&path, &bytes).unwrap();
        let mut file = TraceFile::open(&path).unwrap();
        let err = file.for_each_packet(|_, _, _| {}).unwrap_err().to_string();
        assert!(err.contains("packet 4:"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn magic_bytes() {
        assert_eq!(TraceFormat::from_magic([0xd4, 0xc3, 0xb2, 0xa1]), Some(TraceFormat::Pcap));
        assert_eq!(TraceFormat::from_magic([0xa1, 0xb2, 0xc3, 0xd4]), Some(TraceFormat::Pcap));
        assert_eq!(TraceFormat::from_magic([0x4d, 0x3c, 0xb2, 0xa1]), Some(TraceFormat::PcapNano));
        assert_eq!(TraceFormat::from_magic([0x0a, 0x0d, 0x0d, 0x0a]), Some(TraceFormat::PcapNg));
        assert_eq!(TraceFormat::from_magic(*b"GET "), None);
    }
}
