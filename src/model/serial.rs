//! How a zone's SOA serial grows (RFC 1982 arithmetic; secondaries compare
//! serials to decide whether to transfer, so they only ever grow).

use std::fmt;
use std::str::FromStr;

/// A zone's serial policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerialPolicy {
    /// `max(old + 1, unix time)`: the serial says when the zone last
    /// changed, and a zone created again never goes back.
    #[default]
    UnixTime,
    /// `old + 1`: one step per change (the first serial is the unix time of
    /// the zone's creation, so a zone created again starts above the old
    /// one unless it had changed more than once a second on average).
    Increment,
}

impl SerialPolicy {
    /// The serial after `old` at unix time `now`.
    pub fn next(self, old: u32, now: u32) -> u32 {
        match self {
            SerialPolicy::UnixTime => {
                let step = old.wrapping_add(1);
                // RFC 1982: `now` is "greater" than `step` when ahead of it
                // by less than 2^31; otherwise the old serial is in the
                // future (an import, a clock step back) and keeps counting.
                if now != step && now.wrapping_sub(step) < (1 << 31) {
                    now
                } else {
                    step
                }
            }
            SerialPolicy::Increment => old.wrapping_add(1),
        }
    }

    /// Storage and configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SerialPolicy::UnixTime => "unixtime",
            SerialPolicy::Increment => "increment",
        }
    }
}

impl fmt::Display for SerialPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SerialPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "unixtime" => Ok(SerialPolicy::UnixTime),
            "increment" => Ok(SerialPolicy::Increment),
            other => Err(format!(
                "serial policy {other:?}: want unixtime or increment"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_only_grow() {
        let u = SerialPolicy::UnixTime;
        assert_eq!(u.next(0, 1_700_000_000), 1_700_000_000);
        assert_eq!(u.next(1_700_000_000, 1_700_000_000), 1_700_000_001);
        assert_eq!(
            u.next(1_700_000_005, 1_700_000_001),
            1_700_000_006,
            "ahead of the clock: +1"
        );
        assert_eq!(u.next(u32::MAX, 5), 5, "wraps forward (RFC 1982)");
        let i = SerialPolicy::Increment;
        assert_eq!(i.next(1_700_000_000, 1_800_000_000), 1_700_000_001);
        assert_eq!(i.next(u32::MAX, 5), 0);
        assert_eq!(
            "Increment".parse::<SerialPolicy>(),
            Ok(SerialPolicy::Increment)
        );
        assert!("date".parse::<SerialPolicy>().is_err());
    }
}
