//! Microsoft Philly jobs as processed by the Pollux artifact (`philly_jobs_pollux.csv`):
//! `timestamp,duration,num_gpus,gpu_time,cluster` with timestamp `YYYY-MM-DD HH:MM:SS` (submission),
//! duration in seconds, and cluster = the virtual cluster (a tenant).

use super::{Location, TraceError, columns, unix_seconds};
use std::io::Read;

/// One Philly job.
#[derive(Clone, Debug, PartialEq)]
pub struct PhillyJob {
    /// Submission, Unix seconds.
    pub submit: i64,
    /// Run time in seconds.
    pub duration: f64,
    /// GPUs (the gang size).
    pub gpus: u32,
    /// Virtual cluster.
    pub vc: String,
}

fn parse_time(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once(' ')?;
    let mut d = date.split('-').map(str::parse::<u32>);
    let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':').map(str::parse::<u32>);
    let (h, mi, se) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let valid = (1..=12).contains(&mo) && (1..=31).contains(&da) && h < 24 && mi < 60 && se < 61;
    valid.then(|| unix_seconds(y as i64, mo, da, h, mi, se))
}

/// Reads the whole file. Blank lines are skipped; any malformed line is an error.
pub fn read(input: impl Read, file: &str) -> Result<Vec<PhillyJob>, TraceError> {
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let cols = columns(
        &mut rdr,
        file,
        &["timestamp", "duration", "num_gpus", "cluster"],
    )?;
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| super::csv_error(file, e))?;
        let at = Location {
            file: file.to_string(),
            line: rec.position().map_or(0, |p| p.line()),
        };
        let field = |i: usize, name: &'static str, problem: &str| TraceError::Field {
            at: at.clone(),
            field: name,
            problem: format!("'{}' {problem}", &rec[cols[i]]),
        };
        let submit = parse_time(&rec[cols[0]])
            .ok_or_else(|| field(0, "timestamp", "is not YYYY-MM-DD HH:MM:SS"))?;
        let duration: f64 = rec[cols[1]]
            .trim()
            .parse()
            .ok()
            .filter(|d: &f64| d.is_finite() && *d >= 0.0)
            .ok_or_else(|| field(1, "duration", "is not a non-negative number of seconds"))?;
        let gpus: u32 = rec[cols[2]]
            .trim()
            .parse()
            .ok()
            .filter(|g| *g > 0)
            .ok_or_else(|| field(2, "num_gpus", "is not a whole number of GPUs >= 1"))?;
        let vc = rec[cols[3]].trim().to_string();
        if vc.is_empty() {
            return Err(field(3, "cluster", "is empty"));
        }
        out.push(PhillyJob {
            submit,
            duration,
            gpus,
            vc,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first lines of philly_jobs_pollux.csv (petuum/adaptdl osdi21-artifact, simulator/traces/philly.csv;
    /// Philly traces © Microsoft, CC BY 4.0), with the trace's own trailing blank line.
    const HEAD: &str = "timestamp,duration,num_gpus,gpu_time,cluster
2017-10-09 07:01:55,66.0,1,66.0,11cb48
2017-10-09 06:13:03,2951.0,1,2951.0,6214e9
2017-09-29 07:58:32,860662.0,1,860662.0,6c71a0

";

    #[test]
    fn reads_the_real_format() {
        let jobs = read(HEAD.as_bytes(), "philly.csv").unwrap();
        assert_eq!(jobs.len(), 3);
        assert_eq!(
            jobs[0],
            PhillyJob {
                submit: 1_507_532_515,
                duration: 66.0,
                gpus: 1,
                vc: "11cb48".into()
            }
        );
    }

    #[test]
    fn a_bad_line_names_file_line_and_field() {
        let text = HEAD.replace("2951.0,1,2951.0", "2951.0,two,2951.0");
        let err = read(text.as_bytes(), "philly.csv").unwrap_err().to_string();
        assert_eq!(
            err,
            "philly.csv:3: field 'num_gpus': 'two' is not a whole number of GPUs >= 1"
        );
        let text = HEAD.replace("2017-09-29 07:58:32", "yesterday");
        let err = read(text.as_bytes(), "philly.csv").unwrap_err().to_string();
        assert!(err.starts_with("philly.csv:4: field 'timestamp'"), "{err}");
        let err = read("when,gpus\n".as_bytes(), "x.csv")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no column 'timestamp'"), "{err}");
        let err = read(
            "timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 07:01:55,66.0\n".as_bytes(),
            "y.csv",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("y.csv:2"), "{err}");
    }
}
