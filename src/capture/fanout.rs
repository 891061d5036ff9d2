//! A live capture spread over the daemon's capture workers (Linux `PACKET_FANOUT`,
//! ARCHITECTURE.md, Capture and decode): each worker opens its own measuring capture of an
//! interface and joins the interface's fanout group, whose classic BPF program
//! ([`super::bpf::fanout_program`]) hands every packet to one member: all packets of a TCP
//! flow, both ways, to the same member, every other packet to the first.
//!
//! Guarantees:
//! - the first member of a group has the kernel choose its id
//!   (`PACKET_FANOUT_FLAG_UNIQUEID`): no other program's group is joined; the others join by
//!   that id, which [`FanoutGroups`] keeps per interface for the workers;
//! - a capture reopened after its interface came back joins the group of the interface's
//!   other reopened captures: the kernel refuses the old id when that group is of the
//!   interface's vanished device, and a new group is made;
//! - the kernel picks a member modulo the group's size and in the order the members joined:
//!   while a worker's capture is closed or reopened, the flows move between the others.
//!   A packet reaches one member only once both joined; the capture leaves out the packets
//!   stamped before its own join ([`super::LiveCapture::open`]).

use std::os::fd::RawFd;
use std::sync::Mutex;

use super::bpf::{Instruction, fanout_program};

/// The fanout groups of the daemon's measuring captures, by interface, shared by the workers.
#[derive(Debug)]
pub struct FanoutGroups {
    program: Vec<Instruction>,
    /// (interface, group id): a few interfaces.
    ids: Mutex<Vec<(String, u16)>>,
}

impl Default for FanoutGroups {
    fn default() -> Self {
        FanoutGroups { program: fanout_program(), ids: Mutex::new(Vec::new()) }
    }
}

impl FanoutGroups {
    /// Make the packet socket `fd`, open on `interface`, a member of the interface's group.
    pub fn join(&self, interface: &str, fd: RawFd) -> std::io::Result<()> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        let kind = libc::PACKET_FANOUT_CBPF;
        let known = ids.iter().find(|(name, _)| name == interface).map(|&(_, id)| id);
        let joined = match known {
            Some(id) => match set_option(fd, libc::PACKET_FANOUT, &(u32::from(id) | kind << 16)) {
                Ok(()) => true,
                // The group is of another device (the interface's vanished one), or another
                // program took its id.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => false,
                Err(e) => return Err(e),
            },
            None => false,
        };
        if !joined {
            let unique = (kind | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16;
            set_option(fd, libc::PACKET_FANOUT, &unique)?;
            let id = group_id(fd)?;
            ids.retain(|(name, _)| name != interface);
            ids.push((interface.to_string(), id));
        }
        let len =
            u16::try_from(self.program.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        let fprog = libc::sock_fprog { len, filter: self.program.as_ptr().cast_mut().cast() };
        set_option(fd, libc::PACKET_FANOUT_DATA, &fprog)
    }
}

/// `setsockopt(fd, SOL_PACKET, option, value)`.
fn set_option<T>(fd: RawFd, option: libc::c_int, value: &T) -> std::io::Result<()> {
    // SAFETY: `value` is a valid, initialised `T` for the duration of the call, and its size
    // is given; the kernel only reads it (a `sock_fprog`'s instructions are `repr(C)` as
    // `struct sock_filter`, and outlive the call).
    #[allow(unsafe_code)]
    let status = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            option,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if status == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// The id of the group `fd` is a member of (`getsockopt(PACKET_FANOUT)`: the id in the low
/// 16 bits).
fn group_id(fd: RawFd) -> std::io::Result<u16> {
    let mut value: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid and exclusively borrowed for the call; the kernel
    // writes at most `len` bytes into `value`.
    #[allow(unsafe_code)]
    let status = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if status == 0 { Ok((value & 0xffff) as u16) } else { Err(std::io::Error::last_os_error()) }
}

/// The member of a group of `members` that the kernel would hand this Ethernet `frame` to
/// (an untagged frame's ethertype is the kernel's protocol), for the daemon's tests.
#[cfg(test)]
pub fn member_of(frame: &[u8], members: u32) -> u32 {
    let ethertype = frame.get(12..14).map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
    let net = frame.get(14..).unwrap_or_default();
    super::bpf::tests::run(&fanout_program(), net, ethertype) % members
}

#[cfg(test)]
mod tests {
    use super::super::bpf::tests::{kernel_accepts, run};
    use super::super::bpf::{FANOUT_MULTIPLIER, fanout_program};

    /// The member the program is meant to pick among `members` for a TCP packet with these
    /// addresses (as 32-bit words) and ports.
    fn expected(words: &[u32], ports: (u16, u16), members: u32) -> u32 {
        let sum =
            words.iter().fold(u32::from(ports.0) + u32::from(ports.1), |s, &w| s.wrapping_add(w));
        (sum.wrapping_mul(FANOUT_MULTIPLIER) >> 16) % members
    }

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], ports: (u16, u16), flags_frag: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0];
        p[6..8].copy_from_slice(&flags_frag.to_be_bytes());
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&ports.0.to_be_bytes());
        p.extend_from_slice(&ports.1.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p
    }

    fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], ports: (u16, u16)) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 20, next, 64];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&ports.0.to_be_bytes());
        p.extend_from_slice(&ports.1.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p
    }

    fn words(bytes: &[u8]) -> Vec<u32> {
        bytes.chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect()
    }

    /// The kernel takes the program; TCP goes by the hash of the sum, the same both ways,
    /// also behind IPv4 options; everything else to the first member.
    #[test]
    fn the_fanout_program_keeps_a_tcp_flow_on_one_member() {
        let program = fanout_program();
        kernel_accepts(&program).unwrap();
        let member = |packet: &[u8], ethertype: u16, members: u32| {
            run(&program, packet, ethertype) % members
        };
        let (a, b) = ([10, 0, 0, 2], [198, 51, 100, 10]);
        for members in [2, 3, 4] {
            for port in 40_000..40_100 {
                let up = ipv4(6, a, b, (port, 443), 0x4000);
                let down = ipv4(6, b, a, (443, port), 0);
                let want = expected(&words(&[a, b].concat()), (port, 443), members);
                assert_eq!(member(&up, 0x0800, members), want, "port {port}");
                assert_eq!(member(&down, 0x0800, members), want, "port {port}, the reply");
                // Four bytes of IPv4 options: the ports come after them.
                let mut options = up.clone();
                options[0] = 0x46;
                options.splice(20..20, [1, 1, 1, 0]);
                assert_eq!(member(&options, 0x0800, members), want, "port {port}, options");
                let (x, y) = (
                    [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                    [0x2a, 3, 0x28, 0x80, 0xf0, 0x2d, 0, 0, 0, 0, 0, 0, 0, 0, 0, (port % 7) as u8],
                );
                let want6 = expected(&words(&[x, y].concat()), (port, 443), members);
                assert_eq!(member(&ipv6(6, x, y, (port, 443)), 0x86dd, members), want6);
                assert_eq!(member(&ipv6(6, y, x, (443, port)), 0x86dd, members), want6);
                // To the first member: UDP, fragments, IPv6 behind an extension header, ARP.
                assert_eq!(member(&ipv4(17, a, b, (port, 443), 0), 0x0800, members), 0);
                assert_eq!(member(&ipv4(6, a, b, (port, 443), 0x2000), 0x0800, members), 0);
                assert_eq!(member(&ipv4(6, a, b, (port, 443), 0x0010), 0x0800, members), 0);
                assert_eq!(member(&ipv6(17, x, y, (port, 443)), 0x86dd, members), 0);
                assert_eq!(member(&ipv6(0, x, y, (port, 443)), 0x86dd, members), 0);
                assert_eq!(member(&up, 0x0806, members), 0);
            }
        }
    }

    /// Flows spread evenly over the members on realistic port choices: Linux's even client
    /// ports to one server's HTTPS port, and those sampled as control flows (the kernel
    /// filter's hash of the ports) spread as the others do.
    #[test]
    fn the_fanout_program_spreads_flows_evenly() {
        let program = fanout_program();
        let (a, b) = ([192, 168, 1, 23], [157, 240, 1, 35]);
        for members in [2u32, 3, 4] {
            for sampled_only in [false, true] {
                let mut counts = vec![0usize; members as usize];
                let ports = (32_768u16..60_999)
                    .step_by(2)
                    .filter(|&p| !sampled_only || super::super::filter::control_sampled(p, 443, 4));
                for port in ports {
                    let packet = ipv4(6, a, b, (port, 443), 0);
                    counts[(run(&program, &packet, 0x0800) % members) as usize] += 1;
                }
                let n: usize = counts.iter().sum();
                let share = n as f64 / f64::from(members);
                // Four binomial standard deviations.
                let spread = 4.0 * (share * (1.0 - 1.0 / f64::from(members))).sqrt();
                for &c in &counts {
                    assert!(
                        (c as f64 - share).abs() <= spread,
                        "{members} members, sampled only {sampled_only}: {counts:?} of {n}"
                    );
                }
            }
        }
    }
}
