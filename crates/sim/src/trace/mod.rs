//! Trace readers. Each turns one public trace format into plain records; a malformed line is an error that
//! names the file, the line and the field.

pub mod gavel;
pub mod jobfile;
pub mod openb;
pub mod philly;

use std::fmt;
use thiserror::Error;

/// Where in a trace file something went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// File name as given.
    pub file: String,
    /// 1-based line number (the header is line 1).
    pub line: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A trace that cannot be read.
#[derive(Debug, Error)]
pub enum TraceError {
    /// A field's value is wrong.
    #[error("{at}: field '{field}': {problem}")]
    Field {
        /// Where.
        at: Location,
        /// Column name.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The file does not have the expected columns, or a line cannot be split into them.
    #[error("{at}: {problem}")]
    Format {
        /// Where.
        at: Location,
        /// What is wrong.
        problem: String,
    },
    /// The file cannot be read at all.
    #[error("{file}: {source}")]
    Io {
        /// File name.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A CSV-level error (a line with the wrong number of fields, bad UTF-8) at its line.
pub(crate) fn csv_error(file: &str, e: csv::Error) -> TraceError {
    TraceError::Format {
        at: Location {
            file: file.to_string(),
            line: e.position().map_or(0, |p| p.line()),
        },
        problem: e.to_string(),
    }
}

/// Reads a CSV header and checks that the wanted columns are there, returning their positions.
pub(crate) fn columns<R: std::io::Read>(
    rdr: &mut csv::Reader<R>,
    file: &str,
    wanted: &[&'static str],
) -> Result<Vec<usize>, TraceError> {
    let at = Location {
        file: file.to_string(),
        line: 1,
    };
    let header = rdr.headers().map_err(|e| TraceError::Format {
        at: at.clone(),
        problem: format!("cannot read the header: {e}"),
    })?;
    wanted
        .iter()
        .map(|w| {
            header
                .iter()
                .position(|h| h.trim() == *w)
                .ok_or_else(|| TraceError::Format {
                    at: at.clone(),
                    problem: format!(
                        "no column '{w}' in the header ({})",
                        header.iter().collect::<Vec<_>>().join(",")
                    ),
                })
        })
        .collect()
}

/// Seconds since 1970-01-01 of a civil date and time (proleptic Gregorian, UTC).
pub fn unix_seconds(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> i64 {
    let days = wanka_model::calendar::days_from_civil(year, month as i64, day as i64);
    days * 86_400 + (h * 3600 + m * 60 + s) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_convert_to_unix_time() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_seconds(2017, 10, 9, 7, 1, 55), 1_507_532_515);
        assert_eq!(unix_seconds(2000, 3, 1, 0, 0, 0), 951_868_800);
    }
}
