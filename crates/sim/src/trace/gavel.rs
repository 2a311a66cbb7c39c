//! Gavel (OSDI'20) job traces, tab-separated, no header. Two layouts exist:
//! - 10 columns (Gavel's generator): job_type, command, working_directory, num_steps_arg, needs_data_dir,
//!   total_steps, scale_factor, priority_weight, SLO, arrival_time;
//! - 7 columns (the older `traces/msr/seed=*/<vc>.trace` files): job_type, command, num_steps_arg,
//!   needs_data_dir, total_steps, arrival_time, scale_factor.
//!
//! A job's duration on a GPU type is total_steps / throughput of (job_type, scale_factor) on that type.

use super::{Location, TraceError};
use std::io::Read;

/// One Gavel job.
#[derive(Clone, Debug, PartialEq)]
pub struct GavelJob {
    /// Model and batch size, e.g. "ResNet-18 (batch size 64)": the throughput matrix's key.
    pub job_type: String,
    /// Steps to run.
    pub total_steps: u64,
    /// GPUs (all of one type).
    pub scale_factor: u32,
    /// Arrival, seconds from the trace start.
    pub arrival: f64,
    /// Priority weight (1 in the 7-column layout).
    pub priority_weight: f64,
}

/// Reads a trace in either layout; every line must have the same layout as the first.
pub fn read(input: impl Read, file: &str) -> Result<Vec<GavelJob>, TraceError> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .has_headers(false)
        .quoting(false)
        .flexible(true)
        .from_reader(input);
    let mut out = Vec::new();
    let mut layout = None;
    for rec in rdr.records() {
        let rec = rec.map_err(|e| super::csv_error(file, e))?;
        let at = Location {
            file: file.to_string(),
            line: rec.position().map_or(0, |p| p.line()),
        };
        let width = *layout.get_or_insert(rec.len());
        // Column positions of (total_steps, scale_factor, arrival_time, priority_weight) per layout.
        let (steps, scale, arrival, weight) = match (width, rec.len()) {
            (10, 10) => (5, 6, 9, Some(7)),
            (7, 7) => (4, 6, 5, None),
            _ => {
                return Err(TraceError::Format {
                    at,
                    problem: format!(
                        "{} tab-separated columns; a Gavel trace has 10 (or 7 in the old layout) on every line, and this file started with {width}",
                        rec.len()
                    ),
                });
            }
        };
        let field = |i: usize, name: &'static str, problem: &str| TraceError::Field {
            at: at.clone(),
            field: name,
            problem: format!("'{}' {problem}", &rec[i]),
        };
        let num = |i: usize, name: &'static str| -> Result<f64, TraceError> {
            rec[i]
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| field(i, name, "is not a number >= 0"))
        };
        let job_type = rec[0].trim().to_string();
        if job_type.is_empty() {
            return Err(field(0, "job_type", "is empty"));
        }
        let total_steps = rec[steps]
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| field(steps, "total_steps", "is not a whole number of steps >= 1"))?;
        let scale_factor = rec[scale]
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| field(scale, "scale_factor", "is not a whole number of GPUs >= 1"))?;
        out.push(GavelJob {
            job_type,
            total_steps,
            scale_factor,
            arrival: num(arrival, "arrival_time")?,
            priority_weight: weight.map_or(Ok(1.0), |w| num(w, "priority_weight"))?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First lines of Gavel's generated philly_multi_n100_r1.0_s0.trace and of traces/msr/seed=0/0e4a51.trace
    /// (stanford-futuredata/gavel, MIT licence; see ../shared/traces/gavel-philly-derived).
    const NEW: &str = "ResNet-18 (batch size 64)\tpython3 main.py --data_dir=%s/cifar10 --batch_size 64\timage_classification/cifar10\t--num_steps\t1\t17484476\t8\t1\t-1.000000\t0.000000
Transformer (batch size 16)\tpython3 train.py -data %s/translation/multi30k.atok.low.pt -batch_size 16 -proj_share_weight\ttranslation\t-step\t1\t343170\t1\t1\t-1.000000\t978.344292
";
    const OLD: &str = "Transformer (batch size 128)\tcd %s/gpusched/workloads/pytorch/translation && python3 train.py -data %s/data/translation/multi30k.atok.low.pt -batch_size 128 -proj_share_weight\t-step\t1\t95121\t0.000000\t1
Recommendation (batch size 8192)\tcd %s/gpusched/workloads/pytorch/recommendation/scripts/ml-20m && python3 train.py --data_dir %s/data/ml-20m/pro_sg/ --batch_size 8192\t-n\t1\t10000\t6.000000\t1
";

    #[test]
    fn reads_both_layouts() {
        let jobs = read(NEW.as_bytes(), "multi.trace").unwrap();
        assert_eq!(jobs[0].total_steps, 17_484_476);
        assert_eq!(jobs[0].scale_factor, 8);
        assert_eq!(jobs[1].arrival, 978.344292);
        let jobs = read(OLD.as_bytes(), "0e4a51.trace").unwrap();
        assert_eq!(jobs[1].job_type, "Recommendation (batch size 8192)");
        assert_eq!(
            (jobs[1].total_steps, jobs[1].arrival, jobs[1].scale_factor),
            (10000, 6.0, 1)
        );
    }

    #[test]
    fn malformed_lines_are_named() {
        let text = NEW.replace("\t343170\t", "\tmany\t");
        let err = read(text.as_bytes(), "m.trace").unwrap_err().to_string();
        assert_eq!(
            err,
            "m.trace:2: field 'total_steps': 'many' is not a whole number of steps >= 1"
        );
        let mixed = format!("{NEW}{OLD}");
        let err = read(mixed.as_bytes(), "x.trace").unwrap_err().to_string();
        assert!(
            err.starts_with("x.trace:3: 7 tab-separated columns"),
            "{err}"
        );
    }
}
