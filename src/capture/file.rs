//! pcap and pcapng trace files, read by the project itself (no libpcap): from a path, or from
//! standard input (`-`, e.g. `tcpdump -w - | throttlewatch analyze -`). The format is
//! recognised by its magic bytes, never by the file name, so that a clear message can name a
//! file that is neither.
//!
//! Zero-copy: records are parsed where they lie in one reusable buffer ([`input`]) and each
//! frame is handed on as a slice of it; nothing is allocated per packet. The stream is read
//! forward only, so a pipe reads as a file does.
//!
//! pcap: microsecond and nanosecond files (times cut to microseconds, as libpcap delivers
//! them), both byte orders, seconds read as unsigned (until 2106). pcapng ([`pcapng`]):
//! sections of either byte order one after the other, each interface's link type, time
//! resolution and offset, enhanced, simple and obsolete packet blocks; other blocks skipped.
//!
//! A file that ends in the middle of a record or holds a corrupt one (a length beyond its
//! record or beyond [`MAX_CAPTURED_BYTES`], an impossible block length) stops the read with an
//! error naming the file and the packet number; the packets before it have been delivered.
//! No length read from the file makes anything allocate beyond a fixed cap.

mod input;
mod pcapng;

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::decode::LinkType;
use crate::time::{MICROS_PER_SEC, Timestamp};

#[cfg(feature = "jobs")]
use input::Shared;
use input::{Bytes, Input};
#[cfg(feature = "jobs")]
pub use input::{SharedBytes, SharedParts};

/// The most bytes one packet may carry in a file: libpcap's limit (`MAXIMUM_SNAPLEN`) for
/// every link type the decoder supports.
pub const MAX_CAPTURED_BYTES: u32 = 262_144;

/// The path that names standard input.
const STDIN_PATH: &str = "-";

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

/// Why a read stopped before the end of the file.
#[derive(Debug)]
enum Stop {
    /// The file ends inside a record, or a record cannot be right.
    Corrupt(String),
    /// A link type the decoder does not support (its number, as the file gives it).
    Link(u32),
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

/// An open trace file, read from a stream (the default) or from buffers other threads filled
/// (`analyze -j`, cargo feature `jobs`: `TraceFile::from_shared`).
pub struct TraceFile<I = Input> {
    /// The path, or `standard input`: what messages name.
    name: PathBuf,
    format: TraceFormat,
    link: LinkType,
    input: I,
    records: Records,
}

enum Records {
    Pcap(PcapRecords),
    PcapNg(pcapng::Blocks),
}

impl<I> fmt::Debug for TraceFile<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceFile")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("link", &self.link)
            .finish()
    }
}

impl TraceFile {
    /// Open a trace file; `-` is standard input.
    pub fn open(path: &Path) -> Result<TraceFile, CaptureError> {
        if path == Path::new(STDIN_PATH) {
            let source = Box::new(io::stdin().lock());
            return TraceFile::from_reader(PathBuf::from("standard input"), source);
        }
        TraceFile::from_reader(path.to_path_buf(), Box::new(open_file(path)?))
    }

    /// Read a trace from any byte stream (read forward only), named `name` in messages.
    pub fn from_reader(name: PathBuf, source: Box<dyn Read>) -> Result<TraceFile, CaptureError> {
        TraceFile::from_input(name, Input::new(source))
    }
}

#[cfg(feature = "jobs")]
impl TraceFile<Shared> {
    /// Read a trace that comes as buffers other threads filled, in the stream's order
    /// (`analyze -j`: the workers share the reading of a file; the records are parsed where
    /// they lie in the buffers), named `name` in messages.
    pub fn from_shared(
        name: PathBuf,
        parts: SharedParts,
    ) -> Result<TraceFile<Shared>, CaptureError> {
        TraceFile::from_input(name, Shared::new(parts))
    }
}

impl<I: Bytes> TraceFile<I> {
    fn from_input(name: PathBuf, mut input: I) -> Result<TraceFile<I>, CaptureError> {
        let open_err = |message: String| CaptureError::Open { path: name.clone(), message };
        let read_err = |e: io::Error| open_err(format!("cannot read: {e}"));
        let whole = input.fill(4).map_err(read_err)?;
        let magic = input.bytes();
        if magic.is_empty() {
            return Err(open_err("empty file, not a pcap or pcapng trace".into()));
        }
        let format = match magic.first_chunk::<4>().copied().and_then(TraceFormat::from_magic) {
            Some(f) if whole => f,
            _ => {
                let hint = match magic {
                    [0x1f, 0x8b, ..] => " (it is gzip-compressed: decompress it first)",
                    [0x28, 0xb5, 0x2f, 0xfd, ..] => " (it is zstd-compressed: decompress it first)",
                    _ => "",
                };
                let shown: Vec<String> =
                    magic[..magic.len().min(4)].iter().map(|b| format!("{b:02x}")).collect();
                return Err(open_err(format!(
                    "not a pcap or pcapng file: it starts with bytes {}{hint}",
                    shown.join(" ")
                )));
            }
        };
        let header_err = |stop: Stop| match stop {
            Stop::Corrupt(m) => open_err(format!("cannot read this {format} file: {m}")),
            Stop::Link(raw) => open_err(unsupported_link(raw)),
            Stop::Io(e) => read_err(e),
        };
        let (records, link) = match format {
            TraceFormat::Pcap | TraceFormat::PcapNano => {
                let pcap = PcapRecords::open(&mut input).map_err(header_err)?;
                (Records::Pcap(pcap), pcap.link)
            }
            TraceFormat::PcapNg => {
                let (blocks, link) = pcapng::Blocks::open(&mut input).map_err(header_err)?;
                (Records::PcapNg(blocks), link)
            }
        };
        Ok(TraceFile { name, format, link, input, records })
    }

    pub fn format(&self) -> TraceFormat {
        self.format
    }

    /// The link type of the file (pcapng: of its first interface).
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Deliver every packet to `f(link type, time, captured bytes, wire length)`. Returns the
    /// number of packets delivered, or the error that stopped the read (after the packets
    /// before it).
    pub fn for_each_packet(
        &mut self,
        mut f: impl FnMut(LinkType, Timestamp, &[u8], u32),
    ) -> Result<u64, CaptureError> {
        let mut delivered = 0u64;
        let read = match &mut self.records {
            Records::Pcap(pcap) => pcap.read(&mut self.input, &mut delivered, &mut f),
            Records::PcapNg(blocks) => blocks.read(&mut self.input, &mut delivered, &mut f),
        };
        read.map(|()| delivered).map_err(|stop| CaptureError::Packet {
            path: self.name.clone(),
            packet: delivered + 1,
            message: match stop {
                Stop::Corrupt(m) => format!(
                    "{m} (the file is truncated or corrupt; {delivered} packets before it were read)"
                ),
                Stop::Link(raw) => format!(
                    "{} ({delivered} packets before it were read)",
                    unsupported_link(raw)
                ),
                Stop::Io(e) => {
                    format!("cannot read: {e} ({delivered} packets before it were read)")
                }
            },
        })
    }
}

/// A trace file (not standard input) opened for reading, or the error [`TraceFile::open`]
/// gives for it.
pub fn open_file(path: &Path) -> Result<std::fs::File, CaptureError> {
    let open_err = |message: String| CaptureError::Open { path: path.to_path_buf(), message };
    let file = std::fs::File::open(path).map_err(|e| open_err(format!("cannot open: {e}")))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(open_err("is a directory, not a pcap or pcapng file".into()));
    }
    Ok(file)
}

/// The message for a link type the decoder does not support (`raw`: as the file gives it).
fn unsupported_link(raw: u32) -> String {
    // The names libpcap gives the link types a trace most often has when it is not one of ours.
    let name = match raw {
        0 => "NULL",
        6 => "IEEE802",
        9 => "PPP",
        50 => "PPP_HDLC",
        51 => "PPP_ETHER",
        104 => "C_HDLC",
        105 => "IEEE802_11",
        108 => "LOOP",
        119 => "PRISM_HEADER",
        127 => "IEEE802_11_RADIO",
        187 => "BLUETOOTH_HCI_H4",
        189 => "USB_LINUX",
        192 => "PPI",
        220 => "USB_LINUX_MMAPPED",
        239 => "NFLOG",
        249 => "USBPCAP",
        253 => "NETLINK",
        _ => "unknown",
    };
    format!("link type {raw} ({name}) is not supported; supported: {}", LinkType::SUPPORTED)
}

/// A link type as a file gives it, if the decoder supports it.
fn link_type(raw: u32) -> Result<LinkType, Stop> {
    i32::try_from(raw).ok().and_then(LinkType::from_dlt).ok_or(Stop::Link(raw))
}

/// Bytes of a pcap file header and of a record header.
const PCAP_FILE_HEADER: usize = 24;
const PCAP_RECORD_HEADER: usize = 16;

/// A classic pcap file's records.
#[derive(Debug, Clone, Copy)]
struct PcapRecords {
    big_endian: bool,
    nanos: bool,
    link: LinkType,
}

impl PcapRecords {
    /// Read the file header.
    fn open(input: &mut impl Bytes) -> Result<PcapRecords, Stop> {
        if !input.fill(PCAP_FILE_HEADER)? {
            return Err(Stop::Corrupt(format!(
                "the file ends inside its {PCAP_FILE_HEADER}-byte header ({} bytes)",
                input.bytes().len()
            )));
        }
        let Some(h) = input.bytes().first_chunk::<PCAP_FILE_HEADER>() else {
            return Err(Stop::Corrupt("short header".into()));
        };
        let big_endian = h[0] == 0xa1;
        let nanos = h[..2] == [0x4d, 0x3c] || h[2..4] == [0x3c, 0x4d];
        let half = |at: usize| {
            let b = [h[at], h[at + 1]];
            if big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
        };
        let (major, minor) = (half(4), half(6));
        if major != 2 {
            return Err(Stop::Corrupt(format!("unsupported pcap version {major}.{minor}")));
        }
        // The link type's upper 16 bits carry the FCS length and reserved bits.
        let link = link_type(word(h, 20, big_endian) & 0xffff)?;
        input.consume(PCAP_FILE_HEADER);
        Ok(PcapRecords { big_endian, nanos, link })
    }

    fn read(
        &self,
        input: &mut impl Bytes,
        delivered: &mut u64,
        f: &mut impl FnMut(LinkType, Timestamp, &[u8], u32),
    ) -> Result<(), Stop> {
        let (link, be, nanos) = (self.link, self.big_endian, self.nanos);
        loop {
            // Every whole record in the buffer, in one pass that does not touch the stream.
            // The usual file (little-endian, microseconds) has a copy of its own, in which
            // neither test is made per record (about 10 instructions a packet), in builds for
            // large traces (feature `jobs`; router builds spare the 800 bytes).
            let (used, stop) = if cfg!(feature = "jobs") && !be && !nanos {
                whole_records(input.bytes(), link, false, false, delivered, f)
            } else {
                whole_records(input.bytes(), link, be, nanos, delivered, f)
            };
            input.consume(used);
            if let Some(stop) = stop {
                return Err(stop);
            }
            // The next record runs past the buffer's end: read on, or find the stream's end.
            let whole = input.fill(PCAP_RECORD_HEADER)?;
            let Some(h) = input.bytes().first_chunk::<PCAP_RECORD_HEADER>().filter(|_| whole)
            else {
                return match input.bytes().len() {
                    0 => Ok(()),
                    got => Err(Stop::Corrupt(format!(
                        "the file ends inside a record header ({got} of {PCAP_RECORD_HEADER} bytes)"
                    ))),
                };
            };
            let [_, _, captured_len, _] = record_words(h, be);
            let record = record_len(captured_len)?;
            if !input.fill(record)? {
                return Err(Stop::Corrupt(format!(
                    "the file ends inside a packet record ({} of {record} bytes)",
                    input.bytes().len()
                )));
            }
        }
    }
}

/// The whole records at the start of `bytes`, handed to `f`: the bytes they take, and what
/// stopped the pass early (a record too large), if anything.
#[inline(always)]
fn whole_records(
    bytes: &[u8],
    link: LinkType,
    be: bool,
    nanos: bool,
    delivered: &mut u64,
    f: &mut impl FnMut(LinkType, Timestamp, &[u8], u32),
) -> (usize, Option<Stop>) {
    let (mut rest, mut used, mut records) = (bytes, 0, 0);
    // Counted here and added once: a store to `delivered` per record costs two instructions.
    let stop = loop {
        let Some(h) = rest.first_chunk::<PCAP_RECORD_HEADER>() else { break None };
        let [sec, frac, captured_len, wire_len] = record_words(h, be);
        let record = match record_len(captured_len) {
            Ok(len) => len,
            Err(e) => break Some(e),
        };
        let Some(frame) = rest.get(PCAP_RECORD_HEADER..record) else { break None };
        let usec = if nanos { frac / 1000 } else { frac };
        // Unsigned seconds (until 2106); a fraction beyond a second is cut to one.
        let usec = u64::from(usec).min(MICROS_PER_SEC - 1);
        let time = Timestamp::from_micros(u64::from(sec) * MICROS_PER_SEC + usec);
        f(link, time, frame, wire_len);
        records += 1;
        used += record;
        rest = &rest[record..];
    };
    *delivered += records;
    (used, stop)
}

/// A record header's four words (seconds, fraction of a second, captured length, wire
/// length) in the file's byte order: read at once, with one test of the byte order.
#[inline(always)]
fn record_words(h: &[u8; PCAP_RECORD_HEADER], big_endian: bool) -> [u32; 4] {
    let bits = u128::from_le_bytes(*h);
    let words = [bits as u32, (bits >> 32) as u32, (bits >> 64) as u32, (bits >> 96) as u32];
    if big_endian { words.map(u32::swap_bytes) } else { words }
}

/// The bytes of the record whose header states `captured_len`: checked against
/// [`MAX_CAPTURED_BYTES`] before anything is read or buffered for it.
#[inline(always)]
fn record_len(captured_len: u32) -> Result<usize, Stop> {
    if captured_len > MAX_CAPTURED_BYTES {
        return Err(Stop::Corrupt(format!(
            "captured length {captured_len} is larger than the limit of {MAX_CAPTURED_BYTES} bytes"
        )));
    }
    Ok(PCAP_RECORD_HEADER + captured_len as usize)
}

/// The 32-bit word at `at` in `bytes` (which holds it) in the file's byte order. (Inlined
/// even where the binary is compiled for size: pcapng reads several a packet.)
#[inline(always)]
fn word(bytes: &[u8], at: usize, big_endian: bool) -> u32 {
    let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
    if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
}

#[cfg(test)]
mod tests;
