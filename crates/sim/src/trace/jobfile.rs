//! wanka's own job file: JSON Lines, one job per line, with the field names of the server's submission API
//! (`wanka_api::SubmitJob`) for what a job asks for, plus the trace's own timing fields. Blank lines and lines starting with `#` are skipped. Fields:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `name` | string, optional | job name |
//! | `tenant` | string | owner |
//! | `submit` | seconds | submission time from the trace start |
//! | `replicas` | integer, default 1 | replicas of the gang |
//! | `devices_per_replica` | integer, default 1 | devices per replica (0: host-only job) |
//! | `fraction_milli` | integer, optional | share of one device, 1-999 |
//! | `models` / `stacks` | strings, optional | accepted accelerator models / software stacks |
//! | `class` | `guaranteed`, `standard` (default), `preemptible` | priority class |
//! | `duration` | seconds | run time on `duration_model` |
//! | `duration_model` | string, default the reference model | the model `duration` was measured on |
//! | `estimate` | seconds, optional | the user's runtime estimate (backfill) |
//! | `workload` | string, optional | job class for the throughput matrix |
//! | `cpu_milli`, `memory_mib`, `device_memory_gib` | numbers, default 0 | per replica / per device needs |
//! | `whole_nodes` | bool, default false | each replica takes a whole node |

use super::{Location, TraceError};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read};

fn one() -> u32 {
    1
}

/// One job as written in the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRecord {
    /// Job name.
    #[serde(default)]
    pub name: Option<String>,
    /// Owner.
    pub tenant: String,
    /// Submission, seconds.
    pub submit: f64,
    /// Replicas.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Devices per replica.
    #[serde(default = "one")]
    pub devices_per_replica: u32,
    /// Share of one device.
    #[serde(default)]
    pub fraction_milli: Option<u32>,
    /// Accepted models.
    #[serde(default)]
    pub models: Vec<String>,
    /// Accepted stacks.
    #[serde(default)]
    pub stacks: Vec<String>,
    /// Priority class.
    #[serde(default)]
    pub class: Option<String>,
    /// Run time, seconds, on `duration_model`.
    pub duration: f64,
    /// Model the duration was measured on.
    #[serde(default)]
    pub duration_model: Option<String>,
    /// Runtime estimate, seconds.
    #[serde(default)]
    pub estimate: Option<f64>,
    /// Job class for the throughput matrix.
    #[serde(default)]
    pub workload: Option<String>,
    /// Host CPU per replica.
    #[serde(default)]
    pub cpu_milli: u64,
    /// Host memory per replica.
    #[serde(default)]
    pub memory_mib: u64,
    /// Device memory per device.
    #[serde(default)]
    pub device_memory_gib: f64,
    /// Whole nodes per replica.
    #[serde(default)]
    pub whole_nodes: bool,
}

/// Reads a job file.
pub fn read(input: impl Read, file: &str) -> Result<Vec<(Location, JobRecord)>, TraceError> {
    let mut out = Vec::new();
    for (i, line) in BufReader::new(input).lines().enumerate() {
        let at = Location {
            file: file.to_string(),
            line: i as u64 + 1,
        };
        let line = line.map_err(|source| TraceError::Io {
            file: file.to_string(),
            source,
        })?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let rec: JobRecord = serde_json::from_str(text).map_err(|e| TraceError::Format {
            at: at.clone(),
            problem: e.to_string(),
        })?;
        for (field, v) in [
            ("submit", Some(rec.submit)),
            ("duration", Some(rec.duration)),
            ("estimate", rec.estimate),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(TraceError::Field {
                    at,
                    field,
                    problem: format!("{v} is not a number of seconds >= 0"),
                });
            }
        }
        out.push((at, rec));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# two jobs
{"name": "pretrain", "tenant": "lab-a", "submit": 0, "replicas": 4, "devices_per_replica": 8, "models": ["H800", "A800"], "duration": 7200, "estimate": 9000}

{"tenant": "lab-b", "submit": 30.5, "fraction_milli": 250, "class": "preemptible", "duration": 60}
"#;

    #[test]
    fn reads_jobs_with_defaults() {
        let jobs = read(SAMPLE.as_bytes(), "jobs.jsonl").unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].0.line, 2);
        assert_eq!(jobs[0].1.replicas, 4);
        assert_eq!(jobs[1].1.replicas, 1);
        assert_eq!(jobs[1].1.fraction_milli, Some(250));
    }

    #[test]
    fn unknown_fields_and_bad_values_name_the_line() {
        let err = read(
            r#"{"tenant": "a", "submit": 0, "duration": 1, "gpus": 8}"#.as_bytes(),
            "j.jsonl",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("j.jsonl:1: unknown field `gpus`"), "{err}");
        let err = read(
            "\n{\"tenant\": \"a\", \"submit\": -5, \"duration\": 1}".as_bytes(),
            "j.jsonl",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "j.jsonl:2: field 'submit': -5 is not a number of seconds >= 0"
        );
    }
}
