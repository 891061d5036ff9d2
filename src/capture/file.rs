//! pcap and pcapng files through libpcap. The format is recognised by its magic bytes, never by
//! the file name, so that a clear message can name a file that is neither; libpcap then reads
//! it. A file that ends in the middle of a record or holds a corrupt one stops the read with an
//! error naming the file and the packet number; the packets before it have been delivered.

use std::fmt;
use std::io::Read;
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
        loop {
            match self.capture.next_packet() {
                Ok(packet) => {
                    f(capture_time(packet.header), packet.data, packet.header.len);
                    delivered += 1;
                }
                Err(pcap::Error::NoMorePackets) => return Ok(delivered),
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

    #[test]
    fn magic_bytes() {
        assert_eq!(TraceFormat::from_magic([0xd4, 0xc3, 0xb2, 0xa1]), Some(TraceFormat::Pcap));
        assert_eq!(TraceFormat::from_magic([0xa1, 0xb2, 0xc3, 0xd4]), Some(TraceFormat::Pcap));
        assert_eq!(TraceFormat::from_magic([0x4d, 0x3c, 0xb2, 0xa1]), Some(TraceFormat::PcapNano));
        assert_eq!(TraceFormat::from_magic([0x0a, 0x0d, 0x0d, 0x0a]), Some(TraceFormat::PcapNg));
        assert_eq!(TraceFormat::from_magic(*b"GET "), None);
    }
}
