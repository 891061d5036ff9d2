//! Packet time. Every stage below the daemon shell takes the capture timestamp of the packet
//! it works on and never reads the wall clock, so a trace replayed offline gives exactly what
//! the daemon would have said live (ARCHITECTURE.md, Pipeline).
//!
//! [`Timestamp`] is microseconds since the Unix epoch; durations are plain `u64` microseconds
//! in fields and variables whose names end in `_us`.

use std::fmt;

/// Microseconds in one second.
pub const MICROS_PER_SEC: u64 = 1_000_000;

/// A capture timestamp: microseconds since 1970-01-01T00:00:00Z.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// From a `struct timeval` as libpcap hands it over. The pcap format's seconds are an
    /// unsigned 32-bit count (until 2106), but libpcap reads them as signed, and a 32-bit
    /// `time_t` is signed too: a time after 2038-01-19 arrives as a negative number of at
    /// least -2^31, and is read back as the unsigned count it was. Anything earlier (a broken
    /// capture clock) clamps to the epoch instead of wrapping.
    pub fn from_timeval(sec: i64, usec: i64) -> Self {
        let sec = match u64::try_from(sec) {
            Ok(sec) => sec,
            Err(_) => i32::try_from(sec).map_or(0, |s| u64::from(s.cast_unsigned())),
        };
        let usec = u64::try_from(usec).unwrap_or(0).min(MICROS_PER_SEC - 1);
        Timestamp(sec.saturating_mul(MICROS_PER_SEC).saturating_add(usec))
    }

    pub const fn micros(self) -> u64 {
        self.0
    }

    /// Microseconds from `earlier` to `self`; zero when `earlier` is later (capture clocks do
    /// step backwards, and a negative gap must never wrap into a huge one).
    pub const fn since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    pub const fn add_micros(self, micros: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(micros))
    }
}

/// The low 32 bits of a [`Timestamp`]: measures intervals shorter than about 71 minutes in
/// four bytes, with wrapping arithmetic. Per-flow state keeps RTT probes and similar short-lived
/// times this way.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ShortTime(u32);

impl ShortTime {
    pub fn of(ts: Timestamp) -> Self {
        ShortTime(ts.0 as u32)
    }

    /// Microseconds from this time to `now`, correct while under 2^32 µs.
    pub fn until(self, now: Timestamp) -> u64 {
        u64::from((now.0 as u32).wrapping_sub(self.0))
    }

    /// Microseconds from this time to a later short time.
    pub fn until_short(self, later: ShortTime) -> u64 {
        u64::from(later.0.wrapping_sub(self.0))
    }
}

/// Bytes of a time's RFC 3339 text in the years 0-9999: `2024-05-10T09:01:28.673643Z`.
const RFC3339_LEN: usize = 27;

impl Timestamp {
    /// The RFC 3339 text of a time before the year 10000 (every capture's), digit by digit:
    /// the same text as [`fmt::Display`], without the formatting machinery, for reports that
    /// write thousands of times. `None` from the year 10000 on.
    fn rfc3339(self) -> Option<[u8; RFC3339_LEN]> {
        let secs = self.0 / MICROS_PER_SEC;
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days as i64);
        let year = u64::try_from(year).ok().filter(|&y| y <= 9999)?;
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        let fields = [
            (0..4, year),
            (5..7, u64::from(month)),
            (8..10, u64::from(day)),
            (11..13, rem / 3600),
            (14..16, rem % 3600 / 60),
            (17..19, rem % 60),
            (20..26, self.0 % MICROS_PER_SEC),
        ];
        for (digits, mut value) in fields {
            for digit in text[digits].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        Some(text)
    }
}

/// RFC 3339 in UTC with microseconds, e.g. `2024-05-10T09:01:28.673643Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.rfc3339() {
            // ASCII digits and separators: always UTF-8.
            return f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?);
        }
        let secs = self.0 / MICROS_PER_SEC;
        let micros = self.0 % MICROS_PER_SEC;
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days as i64);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339().as_ref().and_then(|text| std::str::from_utf8(text).ok()) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.collect_str(self),
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days` (chrono-compatible date algorithms).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(Timestamp::from_micros(0).to_string(), "1970-01-01T00:00:00.000000Z");
        // 2024-05-10T09:01:28.673643Z, the last packet of the nDPI viber capture (tshark).
        let ts = Timestamp::from_timeval(1_715_331_688, 673_643);
        assert_eq!(ts.to_string(), "2024-05-10T09:01:28.673643Z");
        // After 2038: pcap's unsigned seconds 0x9000_0000, sign-extended by libpcap.
        let ts = Timestamp::from_timeval(i64::from(0x9000_0000u32.cast_signed()), 5);
        assert_eq!(ts.to_string(), "2046-07-23T00:38:24.000005Z");
        assert_eq!(Timestamp::from_timeval(-(1 << 40), 0), Timestamp::from_micros(0));
        // A leap day.
        let ts = Timestamp::from_timeval(951_782_400, 0);
        assert_eq!(ts.to_string(), "2000-02-29T00:00:00.000000Z");
        // The last microsecond written digit by digit, and the first past it.
        let ts = Timestamp::from_micros(253_402_300_799_999_999);
        assert_eq!(ts.to_string(), "9999-12-31T23:59:59.999999Z");
        assert_eq!(ts.add_micros(1).to_string(), "10000-01-01T00:00:00.000000Z");
    }

    #[test]
    fn short_times_measure_across_the_wrap() {
        let before = Timestamp::from_micros((1 << 32) - 10);
        let after = Timestamp::from_micros((1 << 32) + 25);
        assert_eq!(ShortTime::of(before).until(after), 35);
        assert_eq!(ShortTime::of(before).until_short(ShortTime::of(after)), 35);
    }

    #[test]
    fn negative_and_backward_times_clamp() {
        // -5 is what libpcap makes of the unsigned seconds 0xffff_fffb: early 2106.
        assert_eq!(Timestamp::from_timeval(-5, 3).micros(), 0xffff_fffb * MICROS_PER_SEC + 3);
        // Below any 32-bit count: a broken clock, clamped.
        assert_eq!(Timestamp::from_timeval(i64::from(i32::MIN) - 1, 3), Timestamp::from_micros(3));
        let a = Timestamp::from_micros(10);
        let b = Timestamp::from_micros(25);
        assert_eq!(b.since(a), 15);
        assert_eq!(a.since(b), 0);
    }
}
