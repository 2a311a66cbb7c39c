//! Calendar dates in UTC for the CLI and reports: `2026-11-01`, `2026-11-01T08:00:00Z`,
//! `2026-11-01 08:00`, or Unix seconds written `@1793491200`.

use thiserror::Error;
use wanka_model::calendar::{civil_from_days, days_from_civil};

/// A date that is not one of the accepted forms.
#[derive(Debug, Error, PartialEq)]
#[error("'{0}' is not a date: write YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z] (UTC) or @UNIX_SECONDS")]
pub struct BadDate(pub String);

/// Parses a date (UTC) into Unix seconds.
pub fn parse(text: &str) -> Result<i64, BadDate> {
    let bad = || BadDate(text.to_string());
    let s = text.trim();
    if let Some(secs) = s.strip_prefix('@') {
        return secs.parse().map_err(|_| bad());
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let num = |part: Option<&str>, len: usize| -> Result<i64, BadDate> {
        part.filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse().ok())
            .ok_or_else(bad)
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next(), 4)?, num(d.next(), 2)?, num(d.next(), 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let days = days_from_civil(y, m, day);
    if civil_from_days(days) != (y, m, day) {
        return Err(bad());
    }
    let mut secs = 0;
    if let Some(t) = time {
        let mut t = t.split(':');
        let (h, mi) = (num(t.next(), 2)?, num(t.next(), 2)?);
        let s = match t.next() {
            Some(s) => num(Some(s), 2)?,
            None => 0,
        };
        if t.next().is_some() || h > 23 || mi > 59 || s > 59 {
            return Err(bad());
        }
        secs = h * 3600 + mi * 60 + s;
    }
    Ok(days * 86_400 + secs)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_ones_are_named() {
        assert_eq!(parse("1970-01-01"), Ok(0));
        assert_eq!(parse("2026-11-24"), Ok(1_795_478_400));
        assert_eq!(parse("2024-02-29T12:30:00Z"), Ok(1_709_209_800));
        assert_eq!(parse("2024-02-29 12:30"), Ok(1_709_209_800));
        assert_eq!(parse("@42"), Ok(42));
        assert_eq!(format(1_709_209_800.0), "2024-02-29 12:30:00");
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "26-11-01",
            "2026-11-01T25:00",
            "tomorrow",
            "",
        ] {
            assert_eq!(parse(bad), Err(BadDate(bad.to_string())), "{bad}");
        }
        for day in [0i64, 59, 60, 365, 10_957, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }
}
