//! Synthetic captures that each drive the pipeline to one `inconclusive` reason.

use std::net::Ipv4Addr;

use crate::config::DetectConfig;
use crate::detect::synthetic::{CTL, MSG, Rng, SEG, Sim};

/// A capture and the thresholds it is judged with.
pub struct Run {
    pub sim: Sim,
    pub cfg: DetectConfig,
}

fn run(sim: Sim) -> Run {
    Run { sim, cfg: DetectConfig::default() }
}

/// One policed download from `server`: `bytes` through a bucket of `rate_bps` (16 kB burst),
/// the server sending at twice the rate.
fn policed_download(sim: &mut Sim, server: Ipv4Addr, start_ms: u64, bytes: u32, rate_bps: f64) {
    sim.policed_download(server, start_ms, bytes, 2.0 * rate_bps, (rate_bps, 16_384.0));
}

/// A lone datagram to the service: no transfer, call or connection attempt to judge.
pub fn lone_datagram() -> Run {
    let mut sim = Sim::default();
    sim.udp(0, true, (MSG, 5000), 50_000, &[1; 40]);
    run(sim)
}

/// Two policed downloads, one after the other, at 150 and 600 kbit/s; control transfers
/// policed at 3 Mbit/s lose as much (random loss finds nothing).
pub fn policed_rates_apart() -> Run {
    let mut sim = Sim::default();
    policed_download(&mut sim, MSG, 0, 300_000, 150_000.0);
    policed_download(&mut sim, MSG, 20_000, 300_000, 600_000.0);
    for start_ms in [0, 10_000, 20_000] {
        policed_download(&mut sim, CTL, start_ms, 1_000_000, 3e6);
    }
    run(sim)
}

/// A policed download and no control transfer.
pub fn policed_alone() -> Run {
    let mut sim = Sim::default();
    policed_download(&mut sim, MSG, 0, 400_000, 256_000.0);
    run(sim)
}

/// A policed download at 256 kbit/s beside control transfers at 300 kbit/s (far away, so not
/// comparable for the Wehe test).
pub fn policed_beside_slow_controls() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(21);
    policed_download(&mut sim, MSG, 0, 400_000, 256_000.0);
    sim.downloads(CTL, (0, 700, 3), 200, (150_000, 300_000.0, 0.0), &mut rng);
    run(sim)
}

/// A policed download at 256 kbit/s while a stream of the service runs at 1 Mbit/s beside
/// it, and control transfers reach 3 Mbit/s (far away, so not comparable for the Wehe test).
pub fn policed_beside_a_faster_stream() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(29);
    policed_download(&mut sim, MSG, 0, 400_000, 256_000.0);
    sim.downloads(MSG, (0, 1, 1), 40, (1_500_000, 1e6, 0.0), &mut rng);
    sim.downloads(CTL, (0, 2_000, 6), 200, (600_000, 3e6, 0.0), &mut rng);
    run(sim)
}

/// Short downloads behind a 300-ms round trip where another connection to the same server
/// saw 40 ms.
pub fn short_queued_downloads() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(22);
    sim.tcp(MSG, 0, 40).handshake().request(300).close();
    sim.downloads(MSG, (500, 1_500, 2), 300, (150_000, 4e6, 0.0), &mut rng);
    sim.downloads(CTL, (0, 700, 4), 30, (150_000, 4e6, 0.0), &mut rng);
    run(sim)
}

/// A download pinned at 1 Mbit/s behind a 300-ms round trip (40 ms on another connection)
/// while control transfers reach only 1.2 Mbit/s, with no queue.
pub fn shaped_beside_slow_controls() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(23);
    sim.tcp(MSG, 0, 40).handshake().request(300).close();
    sim.tcp(MSG, 500, 300)
        .handshake()
        .request(500)
        .download(1_250_000, 1e6, SEG, 0.0, &mut rng)
        .close();
    sim.downloads(CTL, (0, 700, 8), 30, (200_000, 1.2e6, 0.0), &mut rng);
    run(sim)
}

/// Downloads losing 6 % of their segments and no control connection.
pub fn lossy_downloads_alone() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(24);
    sim.downloads(MSG, (0, 900, 4), 40, (300_000, 4e6, 0.06), &mut rng);
    run(sim)
}

/// Nine fetches from the service, five of whose requests were sent again once (a dropper on
/// the way up, past the capture point), and nine from the control server, none sent again:
/// rare by chance, too few to be significant.
pub fn requests_sent_again() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(27);
    sim.fetches_resending((MSG, 5), (60_000, 4e6), &mut rng);
    sim.fetches_resending((CTL, 0), (60_000, 4e6), &mut rng);
    run(sim)
}

/// Downloads losing 6 % behind a 300-ms round trip (40 ms on another connection), control
/// connections nearly lossless.
pub fn lossy_queued_downloads() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(25);
    sim.tcp(MSG, 0, 40).handshake().request(300).download(30_000, 4e6, SEG, 0.0, &mut rng).close();
    sim.downloads(MSG, (500, 900, 3), 300, (300_000, 4e6, 0.06), &mut rng);
    sim.downloads(CTL, (0, 700, 4), 30, (300_000, 4e6, 0.002), &mut rng);
    run(sim)
}

/// A clean download from the service and no control transfer.
pub fn download_alone() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(26);
    sim.tcp(MSG, 0, 40)
        .handshake()
        .request(500)
        .download(2_000_000, 4e6, SEG, 0.0, &mut rng)
        .close();
    run(sim)
}

/// One slow lossy download from the service (1 Mbit/s, 6 %) against fast control transfers
/// that lose a third as much: what the Wehe test compares.
fn slow_lossy_download(sim: &mut Sim, rng: &mut Rng) {
    sim.tcp(MSG, 0, 40).handshake().request(500).download(1_000_000, 1e6, SEG, 0.06, rng).close();
    sim.downloads(CTL, (0, 700, 6), 30, (2_000_000, 8e6, 0.022), rng);
}

/// [`slow_lossy_download`] judged at a significance level no KS test on a few samples
/// reaches.
pub fn slower_without_significance() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(27);
    slow_lossy_download(&mut sim, &mut rng);
    Run { sim, cfg: DetectConfig { alpha: 1e-12, ..DetectConfig::default() } }
}

/// [`slow_lossy_download`] with resamples of a tenth of the samples: too few to agree.
pub fn slower_in_tiny_resamples() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(27);
    slow_lossy_download(&mut sim, &mut rng);
    Run { sim, cfg: DetectConfig { wehe_jackknife_fraction: 0.1, ..DetectConfig::default() } }
}

/// Connections the server side resets after the request, and no control connection.
pub fn resets_alone() -> Run {
    let mut sim = Sim::default();
    for i in 0..3 {
        sim.tcp(MSG, i * 400, 40).handshake().request(517).wait_us(5_000).server_reset();
    }
    run(sim)
}

/// One of the service's connections is reset 50 µs after the client's packet, where the
/// round trip is 40 ms (an injector's RST); the control transfers complete.
pub fn one_injected_reset() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(30);
    sim.tcp(MSG, 0, 40).handshake().request(517).wait_us(200_000).injected_reset();
    sim.downloads(CTL, (0, 700, 4), 30, (150_000, 4e6, 0.0), &mut rng);
    run(sim)
}

/// One connection freezes at ~14 kB (GRO super-segments), the control transfers complete.
pub fn one_freeze() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(28);
    sim.tcp(MSG, 0, 40)
        .handshake()
        .request(300)
        .download(10 * SEG, 8e6, 4 * SEG, 0.0, &mut rng)
        .wait_us(6_000_000)
        .abort();
    sim.downloads(CTL, (0, 700, 4), 30, (150_000, 4e6, 0.0), &mut rng);
    run(sim)
}

/// "N packets then drop" on the service's connections, and no control connection.
pub fn stalls_alone() -> Run {
    let mut sim = Sim::default();
    for i in 0..3 {
        sim.tcp(MSG, i * 300, 40).handshake().unacknowledged_request(517, 4);
    }
    run(sim)
}

/// One of the service's connections stalled, and two more that began as the window was ending
/// resend their requests unanswered (at Linux's pace: 300 ms, then 600 ms), for under the 3 s
/// a stall needs; the control connections went through.
pub fn stalls_under_way() -> Run {
    let mut sim = Sim::default();
    let mut rng = Rng::new(29);
    sim.tcp(MSG, 0, 40).handshake().unacknowledged_request(517, 4);
    for start_ms in [57_500, 57_700] {
        sim.tcp(MSG, start_ms, 40).handshake().resent_request(517, 3, 300_000);
    }
    sim.downloads(CTL, (0, 700, 4), 30, (150_000, 4e6, 0.0), &mut rng);
    run(sim)
}

/// "N packets then drop" on the service's connections beside one control connection that went
/// through: too few controls for the share to be significant, and no "no interference" either.
pub fn stalls_beside_one_control() -> Run {
    let mut sim = Sim::default();
    for i in 0..3 {
        sim.tcp(MSG, i * 300, 40).handshake().unacknowledged_request(517, 4);
    }
    sim.tcp(CTL, 100, 30).handshake().request(517).wait_us(4_000_000).request(517).close();
    run(sim)
}

/// A mobile allowlist (Russia 2025–26): every foreign destination fails the same way, the
/// controls too; not "no interference", and not this service singled out.
pub fn stalls_everywhere() -> Run {
    let mut sim = Sim::default();
    for i in 0..3 {
        sim.tcp(MSG, i * 300, 40).handshake().unacknowledged_request(517, 4);
        sim.tcp(CTL, i * 300 + 100, 30).handshake().unacknowledged_request(517, 4);
    }
    run(sim)
}

/// STUN to the service's relay never answered, and no control attempt.
pub fn unanswered_stun_alone() -> Run {
    let mut sim = Sim::default();
    sim.stun_probe(MSG, 3478, 0, 10, |_| false);
    sim.stun_probe(MSG, 3478, 200, 10, |_| false);
    run(sim)
}

/// A call losing every tenth media packet towards the client, and no control call.
pub fn lossy_call_alone() -> Run {
    let mut sim = Sim::default();
    sim.call(MSG, 0, 10, |i| i % 10 != 0);
    run(sim)
}

/// A call whose media towards the client dies after five packets (August 2025), and no control
/// call: `inconclusive` saying what was seen, never silence.
pub fn one_way_call_alone() -> Run {
    let mut sim = Sim::default();
    sim.call(MSG, 0, 10, |i| i < 5);
    run(sim)
}

/// The service's call and the control call both one-way.
pub fn one_way_calls_everywhere() -> Run {
    let mut sim = Sim::default();
    sim.call(MSG, 0, 10, |i| i < 5);
    sim.call(CTL, 0, 10, |i| i < 5);
    run(sim)
}
