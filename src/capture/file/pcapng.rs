//! pcapng blocks (the IETF draft "PCAP Next Generation Dump File Format"), read forward.
//!
//! Each Section Header Block sets its section's byte order (a file may hold sections of both,
//! concatenated from machines of either) and starts a new list of interfaces. An Interface
//! Description Block gives its interface's link type, snap length, time resolution
//! (`if_tsresol`: a power of 10 or of 2) and offset (`if_tsoffset`, seconds). Packets come in
//! Enhanced, Simple (interface 0, no time: it gets the previous packet's) and obsolete Packet
//! Blocks; every other block is skipped unread.
//!
//! Bounds: a block that is delivered or parsed is buffered whole, at most
//! [`MAX_RECORD_BYTES`](super::input::MAX_RECORD_BYTES); a larger one is refused, a skipped one
//! is read through the buffer whatever its length. At most [`MAX_INTERFACES`] per section.

use super::input::{Bytes, MAX_RECORD_BYTES};
use super::{LinkType, Stop, link_type, word};
use crate::time::{MICROS_PER_SEC, Timestamp};

const SECTION_HEADER: u32 = 0x0a0d_0d0a;
const INTERFACE_DESCRIPTION: u32 = 1;
const OBSOLETE_PACKET: u32 = 2;
const SIMPLE_PACKET: u32 = 3;
const ENHANCED_PACKET: u32 = 6;

/// The byte-order magic of a section header, as read in the section's own order.
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// Interfaces one section may describe (a file names a handful; the bound keeps a hostile
/// one's table small).
pub(super) const MAX_INTERFACES: usize = 4096;

/// A block's type and length words before its body, and its length word after it.
const BLOCK_HEADER: usize = 8;
const BLOCK_OVERHEAD: usize = 12;

/// `if_tsresol` and `if_tsoffset`, interface description options.
const OPTION_END: u16 = 0;
const OPTION_TS_RESOLUTION: u16 = 9;
const OPTION_TS_OFFSET: u16 = 14;

/// The pcapng reader's state: the section being read.
pub(super) struct Blocks {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// The last packet's time: a simple packet block's.
    last_time: Timestamp,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    /// Its link type, or the raw number of one the decoder does not support.
    link: Result<LinkType, u32>,
    /// Bytes captured at most per packet; 0: no limit given.
    snap_len: u32,
    clock: Clock,
}

/// How an interface's time stamps become microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clock {
    scale: Scale,
    /// `if_tsoffset`, in microseconds.
    offset_us: i64,
}

/// Ticks to microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// Ticks of 10^-6 s (the default).
    Micros,
    /// Ticks of 10^-n s, n > 6: divide by 10^(n-6).
    Divide(u64),
    /// Ticks of 10^-n s, n < 6: multiply by 10^(6-n).
    Multiply(u64),
    /// Ticks of 2^-n s.
    Binary(u32),
}

impl Clock {
    /// `if_tsresol`'s byte: bit 7 set, a power of 2, else of 10 (at most 10^-19 s, the finest
    /// a 64-bit count can hold a second of).
    fn from_resolution(byte: u8, offset_s: i64) -> Result<Clock, String> {
        let exponent = u32::from(byte & 0x7f);
        let scale = if byte & 0x80 != 0 {
            Scale::Binary(exponent)
        } else {
            match exponent {
                6 => Scale::Micros,
                0..6 => Scale::Multiply(10u64.pow(6 - exponent)),
                7..=19 => Scale::Divide(10u64.pow(exponent - 6)),
                _ => return Err(format!("time resolution 10^-{exponent} s is not supported")),
            }
        };
        Ok(Clock { scale, offset_us: offset_s.saturating_mul(MICROS_PER_SEC as i64) })
    }

    /// A time stamp of `ticks`, cut to microseconds (as libpcap delivers them).
    #[inline(always)]
    fn time(self, ticks: u64) -> Timestamp {
        let micros = match self.scale {
            Scale::Micros => ticks,
            Scale::Divide(d) => ticks / d,
            Scale::Multiply(m) => ticks.saturating_mul(m),
            Scale::Binary(exponent) => {
                let scaled = (u128::from(ticks) * u128::from(MICROS_PER_SEC)) >> exponent;
                u64::try_from(scaled).unwrap_or(u64::MAX)
            }
        };
        Timestamp::from_micros(micros.saturating_add_signed(self.offset_us))
    }
}

impl Blocks {
    /// Read the first section header and the blocks up to the first interface description:
    /// the reader, and the first interface's link type (the file's, as reported).
    pub(super) fn open(input: &mut impl Bytes) -> Result<(Blocks, LinkType), Stop> {
        let mut blocks =
            Blocks { big_endian: false, interfaces: Vec::new(), last_time: Timestamp::default() };
        loop {
            let Some(block) = blocks.next_block(input)? else {
                return Err(Stop::Corrupt(
                    "the file has no interface description block (and so no packets)".into(),
                ));
            };
            match block.kind {
                INTERFACE_DESCRIPTION => {
                    blocks.interface(block.body(input))?;
                    input.consume(block.len);
                    let link = blocks.interfaces[0].link.map_err(Stop::Link)?;
                    return Ok((blocks, link));
                }
                ENHANCED_PACKET | SIMPLE_PACKET | OBSOLETE_PACKET => {
                    return Err(Stop::Corrupt(format!(
                        "a packet block at byte {} comes before any interface description block",
                        input.offset_bytes()
                    )));
                }
                SECTION_HEADER => {
                    blocks.section(block.body(input))?;
                    input.consume(block.len);
                }
                _ => {}
            }
        }
    }

    /// Deliver every packet to `f`, counting them in `delivered`.
    pub(super) fn read(
        &mut self,
        input: &mut impl Bytes,
        delivered: &mut u64,
        f: &mut impl FnMut(LinkType, Timestamp, &[u8], u32),
    ) -> Result<(), Stop> {
        loop {
            self.read_whole_enhanced(input, delivered, f);
            // Anything else, or a block that runs past the buffer's end or may be wrong, one
            // block at a time with every check and its message.
            let Some(block) = self.next_block(input)? else { return Ok(()) };
            let be = self.big_endian;
            let body = block.body(input);
            match block.kind {
                ENHANCED_PACKET | OBSOLETE_PACKET => {
                    // Interface (32 bits; the obsolete block: 16, then 16 of drop count), time
                    // (high, low), captured length, wire length, data.
                    let Some(fields) = body.first_chunk::<20>() else {
                        return Err(short(block.kind, body.len()));
                    };
                    let interface = if block.kind == ENHANCED_PACKET {
                        word(fields, 0, be)
                    } else {
                        let b = [fields[0], fields[1]];
                        u32::from(if be { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
                    };
                    let ticks =
                        u64::from(word(fields, 4, be)) << 32 | u64::from(word(fields, 8, be));
                    let (captured_len, wire_len) = (word(fields, 12, be), word(fields, 16, be));
                    let data = &body[20..];
                    let Some(frame) = data.get(..captured_len as usize) else {
                        return Err(Stop::Corrupt(format!(
                            "captured length {captured_len} is larger than its block's {} \
                             bytes of packet data",
                            data.len()
                        )));
                    };
                    let iface = self.interface_of(interface)?;
                    let link = iface.link.map_err(Stop::Link)?;
                    let time = iface.clock.time(ticks);
                    self.last_time = time;
                    f(link, time, frame, wire_len);
                    *delivered += 1;
                }
                SIMPLE_PACKET => {
                    let Some(fields) = body.first_chunk::<4>() else {
                        return Err(short(block.kind, body.len()));
                    };
                    let wire_len = word(fields, 0, be);
                    let iface = self.interface_of(0)?;
                    let link = iface.link.map_err(Stop::Link)?;
                    let data = &body[4..];
                    let mut captured_len = (wire_len as usize).min(data.len());
                    if iface.snap_len != 0 {
                        captured_len = captured_len.min(iface.snap_len as usize);
                    }
                    f(link, self.last_time, &data[..captured_len], wire_len);
                    *delivered += 1;
                }
                INTERFACE_DESCRIPTION => self.interface(body)?,
                SECTION_HEADER => self.section(body)?,
                _ => {}
            }
            input.consume(block.len);
        }
    }

    /// The fast path: deliver the enhanced packet blocks that lie whole in the buffer and are
    /// plainly right, in one pass that does not touch the stream; stop at the first other or
    /// doubtful one, and leave it to [`Blocks::read`]'s careful path.
    #[inline(always)]
    fn read_whole_enhanced(
        &mut self,
        input: &mut impl Bytes,
        delivered: &mut u64,
        f: &mut impl FnMut(LinkType, Timestamp, &[u8], u32),
    ) {
        /// Block header and the enhanced packet block's fixed fields.
        const HEAD: usize = BLOCK_HEADER + 20;
        let be = self.big_endian;
        let (mut rest, mut used, mut last_time) = (input.bytes(), 0, self.last_time);
        while let Some(head) = rest.first_chunk::<HEAD>() {
            let len = word(head, 4, be) as usize;
            if word(head, 0, be) != ENHANCED_PACKET || !len.is_multiple_of(4) {
                break;
            }
            let Some(block) = rest.get(..len).filter(|b| b.len() >= HEAD + 4) else { break };
            if word(block, len - 4, be) as usize != len {
                break;
            }
            let Some(iface) = self.interfaces.get(word(head, 8, be) as usize) else { break };
            let Ok(link) = iface.link else { break };
            let captured_len = word(head, 20, be) as usize;
            let Some(frame) = block[HEAD..len - 4].get(..captured_len) else { break };
            let ticks = u64::from(word(head, 12, be)) << 32 | u64::from(word(head, 16, be));
            last_time = iface.clock.time(ticks);
            f(link, last_time, frame, word(head, 24, be));
            *delivered += 1;
            used += len;
            rest = &rest[len..];
        }
        self.last_time = last_time;
        input.consume(used);
    }

    fn interface_of(&self, id: u32) -> Result<Interface, Stop> {
        self.interfaces.get(id as usize).copied().ok_or_else(|| {
            Stop::Corrupt(format!(
                "the packet names interface {id}, and its section describes {}",
                self.interfaces.len()
            ))
        })
    }

    /// The next block, whole in `input` unless it is skipped (then already consumed, and
    /// the next one read). `None` at the end of the file.
    fn next_block(&mut self, input: &mut impl Bytes) -> Result<Option<Block>, Stop> {
        loop {
            let whole = input.fill(BLOCK_HEADER)?;
            let Some(head) = input.bytes().first_chunk::<BLOCK_HEADER>().filter(|_| whole) else {
                return match input.bytes().len() {
                    0 => Ok(None),
                    got => Err(Stop::Corrupt(format!(
                        "the file ends inside a block header ({got} of {BLOCK_HEADER} bytes)"
                    ))),
                };
            };
            if head[..4] == SECTION_HEADER.to_be_bytes() {
                // The type reads the same in both byte orders; the magic after the length tells
                // the section's.
                if !input.fill(BLOCK_OVERHEAD)? {
                    return Err(Stop::Corrupt("the file ends inside a section header".into()));
                }
                let b = input.bytes();
                self.big_endian = match [b[8], b[9], b[10], b[11]] {
                    m if u32::from_be_bytes(m) == BYTE_ORDER_MAGIC => true,
                    m if u32::from_le_bytes(m) == BYTE_ORDER_MAGIC => false,
                    m => {
                        return Err(Stop::Corrupt(format!(
                            "section header at byte {} has no byte-order magic ({m:02x?})",
                            input.offset_bytes()
                        )));
                    }
                };
            }
            let Some(head) = input.bytes().first_chunk::<BLOCK_HEADER>() else {
                return Err(Stop::Corrupt("short block header".into()));
            };
            let (kind, len) = (word(head, 0, self.big_endian), word(head, 4, self.big_endian));
            let at = input.offset_bytes();
            if (len as usize) < BLOCK_OVERHEAD || len % 4 != 0 {
                return Err(Stop::Corrupt(format!(
                    "block at byte {at} has an impossible length of {len} bytes"
                )));
            }
            let buffered = matches!(
                kind,
                SECTION_HEADER
                    | INTERFACE_DESCRIPTION
                    | ENHANCED_PACKET
                    | SIMPLE_PACKET
                    | OBSOLETE_PACKET
            );
            if !buffered {
                if !input.skip(u64::from(len))? {
                    return Err(Stop::Corrupt(format!(
                        "the file ends inside the block of {len} bytes at byte {at}"
                    )));
                }
                continue;
            }
            let len = len as usize;
            if len > MAX_RECORD_BYTES {
                return Err(Stop::Corrupt(format!(
                    "block at byte {at} is {len} bytes long, more than the limit of \
                     {MAX_RECORD_BYTES} bytes"
                )));
            }
            if !input.fill(len)? {
                return Err(Stop::Corrupt(format!(
                    "the file ends inside the block of {len} bytes at byte {at} ({} read)",
                    input.bytes().len()
                )));
            }
            let trailer = word(input.bytes(), len - 4, self.big_endian);
            if trailer as usize != len {
                return Err(Stop::Corrupt(format!(
                    "block at byte {at} gives its length as {len} bytes at its start and \
                     {trailer} at its end"
                )));
            }
            return Ok(Some(Block { kind, len }));
        }
    }

    /// A section header's body: byte-order magic, version, section length, options.
    fn section(&mut self, body: &[u8]) -> Result<(), Stop> {
        let Some(fields) = body.first_chunk::<16>() else {
            return Err(short(SECTION_HEADER, body.len()));
        };
        let half = |at: usize| {
            let b = [fields[at], fields[at + 1]];
            if self.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
        };
        let (major, minor) = (half(4), half(6));
        if major != 1 {
            return Err(Stop::Corrupt(format!("unsupported pcapng version {major}.{minor}")));
        }
        self.interfaces.clear();
        Ok(())
    }

    /// An interface description's body: link type, reserved, snap length, options.
    fn interface(&mut self, body: &[u8]) -> Result<(), Stop> {
        let Some(fields) = body.first_chunk::<8>() else {
            return Err(short(INTERFACE_DESCRIPTION, body.len()));
        };
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(Stop::Corrupt(format!(
                "more than {MAX_INTERFACES} interfaces in one section"
            )));
        }
        let be = self.big_endian;
        let half = |b: &[u8]| {
            let b = [b[0], b[1]];
            if be { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
        };
        let link = match link_type(u32::from(half(&fields[..2]))) {
            Ok(link) => Ok(link),
            Err(Stop::Link(raw)) => Err(raw),
            Err(other) => return Err(other),
        };
        let snap_len = word(fields, 4, be);
        let (mut resolution, mut offset_s) = (6u8, 0i64);
        let mut options = &body[8..];
        while let Some((head, rest)) = options.split_first_chunk::<4>() {
            let (code, len) = (half(&head[..2]), usize::from(half(&head[2..])));
            if code == OPTION_END {
                break;
            }
            let Some(value) = rest.get(..len) else {
                return Err(Stop::Corrupt(format!(
                    "interface option {code} of {len} bytes runs past its block"
                )));
            };
            match (code, value) {
                (OPTION_TS_RESOLUTION, &[byte]) => resolution = byte,
                (OPTION_TS_OFFSET, &[a, b, c, d, e, f, g, h]) => {
                    let bytes = [a, b, c, d, e, f, g, h];
                    offset_s =
                        if be { i64::from_be_bytes(bytes) } else { i64::from_le_bytes(bytes) };
                }
                (OPTION_TS_RESOLUTION | OPTION_TS_OFFSET, _) => {
                    return Err(Stop::Corrupt(format!(
                        "interface option {code} has {len} bytes, not {}",
                        if code == OPTION_TS_RESOLUTION { 1 } else { 8 }
                    )));
                }
                _ => {}
            }
            options = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        }
        let clock = Clock::from_resolution(resolution, offset_s)
            .map_err(|m| Stop::Corrupt(format!("interface {}: {m}", self.interfaces.len())))?;
        self.interfaces.push(Interface { link, snap_len, clock });
        Ok(())
    }
}

/// A block buffered whole at the front of the input.
#[derive(Debug, Clone, Copy)]
struct Block {
    kind: u32,
    len: usize,
}

impl Block {
    /// The bytes between the length words.
    fn body(self, input: &impl Bytes) -> &[u8] {
        input.bytes().get(BLOCK_HEADER..self.len - 4).unwrap_or(&[])
    }
}

fn short(kind: u32, body_len: usize) -> Stop {
    Stop::Corrupt(format!("block of type {kind:#x} is too short ({body_len} bytes of body)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_of_every_resolution() {
        let t = 1_700_000_000_123_456u64;
        assert_eq!(Clock::from_resolution(6, 0).unwrap().time(t), Timestamp::from_micros(t));
        let nanos = Clock::from_resolution(9, 0).unwrap();
        assert_eq!(nanos.time(t * 1000 + 999), Timestamp::from_micros(t));
        let millis = Clock::from_resolution(3, 0).unwrap();
        assert_eq!(millis.time(1_700_000_000_123), Timestamp::from_micros(1_700_000_000_123_000));
        let seconds = Clock::from_resolution(0, 0).unwrap();
        assert_eq!(seconds.time(u64::MAX), Timestamp::from_micros(u64::MAX), "saturates");
        // 2^-20 s: 1,048,576 ticks a second.
        let binary = Clock::from_resolution(0x80 | 20, 0).unwrap();
        assert_eq!(binary.time(3 << 20 | 1 << 19), Timestamp::from_micros(3_500_000));
        assert_eq!(Clock::from_resolution(0x80 | 127, 0).unwrap().time(u64::MAX).micros(), 0);
        assert_eq!(Clock::from_resolution(0x80, 0).unwrap().time(5).micros(), 5_000_000);
        assert!(Clock::from_resolution(20, 0).is_err());
        let offset = Clock::from_resolution(6, -10).unwrap();
        assert_eq!(offset.time(12_000_000).micros(), 2_000_000);
        assert_eq!(offset.time(1).micros(), 0, "before the epoch clamps to it");
    }
}
