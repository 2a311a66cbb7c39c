//! Time as the core sees it: plain integers handed in by the driver, never read from a clock.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};

/// A point in time in microseconds since the driver's epoch (Unix time in the server, 0 in a simulation).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Time(pub i64);

/// A length of time in microseconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Span(pub i64);

impl Time {
    /// A time later than any real event: "never" for jobs without an estimated end.
    pub const NEVER: Time = Time(i64::MAX);

    /// Seconds since the epoch as a float, for reports.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// The time `secs` seconds after the epoch.
    pub fn from_secs(secs: i64) -> Time {
        Time(secs.saturating_mul(1_000_000))
    }
}

impl Span {
    /// A span of whole seconds.
    pub fn from_secs(secs: i64) -> Span {
        Span(secs.saturating_mul(1_000_000))
    }

    /// A span of fractional seconds, rounded to the microsecond.
    pub fn from_secs_f64(secs: f64) -> Span {
        Span((secs * 1e6).round() as i64)
    }

    /// The span in seconds as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Add<Span> for Time {
    type Output = Time;
    fn add(self, rhs: Span) -> Time {
        Time(self.0.saturating_add(rhs.0))
    }
}

impl Sub<Time> for Time {
    type Output = Span;
    fn sub(self, rhs: Time) -> Span {
        Span(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0 / 1_000_000;
        if s >= 86_400 {
            write!(f, "{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
        } else if s >= 3600 {
            write!(f, "{}h{:02}m", s / 3600, (s % 3600) / 60)
        } else if s >= 60 {
            write!(f, "{}m{:02}s", s / 60, s % 60)
        } else {
            write!(f, "{:.3}s", self.as_secs_f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Time::NEVER + Span::from_secs(10), Time::NEVER);
        assert_eq!(Time::from_secs(5) - Time::from_secs(2), Span::from_secs(3));
    }

    #[test]
    fn spans_print_in_human_units() {
        assert_eq!(Span::from_secs(90).to_string(), "1m30s");
        assert_eq!(Span::from_secs(2 * 86_400 + 3 * 3600).to_string(), "2d03h");
        assert_eq!(Span(1_500_000).to_string(), "1.500s");
    }
}
