//! Performance normalization: how fast a job class runs on each accelerator model, in one common unit.
//!
//! The unit is the **normalized device-second (nds)**: the work one A100-SXM4-80GB does in one second for the
//! same job class. A job with no measured class is normalized by dense half-precision peak × the stack's
//! efficiency, so for it one nds is one second of an A100-SXM4-80GB's 312 dense BF16 TFLOPS.

use crate::catalog::{Catalog, ModelId};
use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// The model whose second is the normalized unit.
pub const REFERENCE_MODEL: &str = "A100-SXM4-80GB";

/// Measured throughput (work units per second, any unit consistent within a class) of job classes on models.
#[derive(Clone, Debug, Default)]
pub struct ThroughputMatrix {
    entries: BTreeMap<String, BTreeMap<ModelId, f64>>,
}

/// A problem with a throughput source.
#[derive(Debug, Error)]
pub enum ThroughputError {
    /// The file is not the JSON shape expected.
    #[error("{origin}: {problem}")]
    Format {
        /// File the text came from.
        origin: String,
        /// What is wrong and where.
        problem: String,
    },
    /// A value that is not a finite, non-negative number.
    #[error(
        "{origin}: throughput of '{class}' on '{model}' is {value}; it must be a finite number >= 0"
    )]
    Value {
        /// File the text came from.
        origin: String,
        /// Job class.
        class: String,
        /// Model name.
        model: String,
        /// Rejected value.
        value: f64,
    },
    /// A model name the catalog does not know.
    #[error("{origin}: {source}")]
    Model {
        /// File the text came from.
        origin: String,
        /// The lookup error.
        source: crate::catalog::UnknownModel,
    },
}

/// The class name wanka uses for a Gavel job type run with `scale` devices.
pub fn gavel_class(job_type: &str, scale: u32) -> String {
    format!("{job_type} @{scale}")
}

impl ThroughputMatrix {
    /// An empty matrix (every pair falls back to peak × efficiency).
    pub fn new() -> ThroughputMatrix {
        ThroughputMatrix::default()
    }

    /// Records a measurement; 0 means the class cannot run on the model (e.g. out of memory).
    pub fn insert(
        &mut self,
        class: &str,
        model: ModelId,
        throughput: f64,
    ) -> Result<(), ThroughputError> {
        if !(throughput.is_finite() && throughput >= 0.0) {
            return Err(ThroughputError::Value {
                origin: "insert".into(),
                class: class.into(),
                model: format!("{model:?}"),
                value: throughput,
            });
        }
        self.entries
            .entry(class.to_string())
            .or_default()
            .insert(model, throughput);
        Ok(())
    }

    /// The measurement for a pair, if any.
    pub fn get(&self, class: &str, model: ModelId) -> Option<f64> {
        self.entries.get(class)?.get(&model).copied()
    }

    /// Measurements of one class.
    pub fn class(&self, class: &str) -> Option<&BTreeMap<ModelId, f64>> {
        self.entries.get(class)
    }

    /// All class names, sorted.
    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Number of measured (class, model) pairs.
    pub fn len(&self) -> usize {
        self.entries.values().map(BTreeMap::len).sum()
    }

    /// True when nothing is measured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads Gavel's `simulation_throughputs.json`: `{gpu: {"('<job type>', <scale>)": {"null": steps/s, ...}}}`.
    ///
    /// Only the isolated throughput (`"null"`) is kept: wanka does not co-locate jobs on a device. The
    /// `*_unconsolidated` tables (a job spread over servers) are skipped. Classes are named by [`gavel_class`].
    pub fn from_gavel_json(
        text: &str,
        origin: &str,
        catalog: &Catalog,
    ) -> Result<ThroughputMatrix, ThroughputError> {
        let format = |problem: String| ThroughputError::Format {
            origin: origin.to_string(),
            problem,
        };
        let root: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format(format!("not valid JSON: {e}")))?;
        let gpus = root
            .as_object()
            .ok_or_else(|| format("the top level must be an object keyed by GPU type".into()))?;
        let mut matrix = ThroughputMatrix::new();
        for (gpu, jobs) in gpus {
            if gpu.ends_with("_unconsolidated") {
                continue;
            }
            let model = catalog
                .lookup(gpu)
                .map_err(|source| ThroughputError::Model {
                    origin: origin.to_string(),
                    source,
                })?;
            let jobs = jobs
                .as_object()
                .ok_or_else(|| format(format!("'{gpu}' must map to an object keyed by job")))?;
            for (job, cell) in jobs {
                let (job_type, scale) = parse_gavel_key(job).ok_or_else(|| {
                    format(format!("'{gpu}': job key {job} is not ('<type>', <scale>)"))
                })?;
                let value = cell
                    .get("null")
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(|| {
                        format(format!(
                            "'{gpu}' / {job}: no numeric \"null\" (isolated) throughput"
                        ))
                    })?;
                let class = gavel_class(job_type, scale);
                if !(value.is_finite() && value >= 0.0) {
                    return Err(ThroughputError::Value {
                        origin: origin.to_string(),
                        class,
                        model: gpu.clone(),
                        value,
                    });
                }
                matrix
                    .entries
                    .entry(class)
                    .or_default()
                    .insert(model, value);
            }
        }
        Ok(matrix)
    }
}

/// Splits Gavel's `"('ResNet-18 (batch size 16)', 1)"` into its job type and scale factor.
fn parse_gavel_key(key: &str) -> Option<(&str, u32)> {
    let inner = key.strip_prefix("('")?.strip_suffix(')')?;
    let (job_type, scale) = inner.rsplit_once("',")?;
    Some((job_type, scale.trim().parse().ok()?))
}

/// How an estimate was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// Measured for this (class, model) pair.
    Measured,
    /// The class is measured on other models; scaled by the ratio of effective peaks.
    Scaled,
    /// Nothing measured for the class: effective peak (peak × stack efficiency).
    Peak,
}

/// A throughput estimate and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// Work per second (class units for measured/scaled, effective TFLOPS for peak).
    pub value: f64,
    /// How it was obtained.
    pub basis: Basis,
}

/// Converts throughput to normalized device-seconds for every (class, model) pair.
#[derive(Clone, Debug)]
pub struct Performance {
    reference: ModelId,
    effective_peak: Vec<f64>,
    matrix: ThroughputMatrix,
}

impl Performance {
    /// Builds the normalizer; the reference model is [`REFERENCE_MODEL`], which every catalog must contain.
    pub fn new(
        catalog: &Catalog,
        matrix: ThroughputMatrix,
    ) -> Result<Performance, crate::catalog::UnknownModel> {
        let reference = catalog.lookup(REFERENCE_MODEL)?;
        let effective_peak = catalog
            .models()
            .map(|(_, m)| m.peak_tflops() * catalog.efficiency(m.stack))
            .collect();
        Ok(Performance {
            reference,
            effective_peak,
            matrix,
        })
    }

    /// The reference model.
    pub fn reference(&self) -> ModelId {
        self.reference
    }

    /// The measured matrix behind the estimates.
    pub fn matrix(&self) -> &ThroughputMatrix {
        &self.matrix
    }

    /// Throughput of one job class on one model: measured, scaled from other models of the class, or peak.
    pub fn throughput(&self, class: Option<&str>, model: ModelId) -> Estimate {
        let peak = self.effective_peak[model.0 as usize];
        let Some(measured) = class.and_then(|c| self.matrix.class(c)) else {
            return Estimate {
                value: peak,
                basis: Basis::Peak,
            };
        };
        if let Some(&value) = measured.get(&model) {
            return Estimate {
                value,
                basis: Basis::Measured,
            };
        }
        let scaled: Vec<f64> = measured
            .iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, v)| v * peak / self.effective_peak[k.0 as usize])
            .collect();
        if scaled.is_empty() {
            return Estimate {
                value: peak,
                basis: Basis::Peak,
            };
        }
        Estimate {
            value: scaled.iter().sum::<f64>() / scaled.len() as f64,
            basis: Basis::Scaled,
        }
    }

    /// Normalized device-seconds per device-second of this class on this model (0 when it cannot run there).
    pub fn rate(&self, class: Option<&str>, model: ModelId) -> f64 {
        let own = self.throughput(class, model);
        let reference = self.throughput(class, self.reference);
        if reference.value > 0.0 {
            own.value / reference.value
        } else {
            // The class cannot run on the reference model: fall back to the peak ratio so that it still has a unit.
            let peak_ratio = self.effective_peak[model.0 as usize]
                / self.effective_peak[self.reference.0 as usize];
            if own.value > 0.0 { peak_ratio } else { 0.0 }
        }
    }

    /// Normalized rate of a model for a job of unknown class: its effective peak relative to the reference.
    pub fn peak_rate(&self, model: ModelId) -> f64 {
        self.effective_peak[model.0 as usize] / self.effective_peak[self.reference.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAVEL_SAMPLE: &str = r#"{
        "k80": {"('ResNet-18 (batch size 32)', 1)": {"null": 2.5, "('ResNet-18 (batch size 32)', 1)": [1.0, 1.0]},
                "('ResNet-50 (batch size 128)', 2)": {"null": 0.0}},
        "v100": {"('ResNet-18 (batch size 32)', 1)": {"null": 10.0},
                 "('ResNet-50 (batch size 128)', 2)": {"null": 4.0}},
        "v100_unconsolidated": {"('ResNet-18 (batch size 32)', 1)": {"null": 9.0}}
    }"#;

    fn perf() -> (Catalog, Performance) {
        let c = Catalog::builtin();
        let m = ThroughputMatrix::from_gavel_json(GAVEL_SAMPLE, "sample.json", &c).unwrap();
        let p = Performance::new(&c, m).unwrap();
        (c, p)
    }

    #[test]
    fn gavel_matrix_keeps_isolated_consolidated_throughput() {
        let (c, p) = perf();
        let k80 = c.lookup("k80").unwrap();
        let v100 = c.lookup("v100").unwrap();
        let class = gavel_class("ResNet-18 (batch size 32)", 1);
        assert_eq!(p.matrix().get(&class, k80), Some(2.5));
        assert_eq!(p.matrix().get(&class, v100), Some(10.0));
        assert_eq!(p.matrix().len(), 4);
    }

    #[test]
    fn measured_pairs_keep_their_ratio_in_normalized_units() {
        let (c, p) = perf();
        let k80 = c.lookup("k80").unwrap();
        let v100 = c.lookup("v100").unwrap();
        let class = gavel_class("ResNet-18 (batch size 32)", 1);
        let ratio = p.rate(Some(&class), v100) / p.rate(Some(&class), k80);
        assert!((ratio - 4.0).abs() < 1e-9, "{ratio}");
        // The reference itself is unmeasured: scaled from the measured models by effective peak.
        assert_eq!(
            p.throughput(Some(&class), p.reference()).basis,
            Basis::Scaled
        );
        assert!((p.rate(Some(&class), p.reference()) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn zero_throughput_means_cannot_run_there() {
        let (c, p) = perf();
        let class = gavel_class("ResNet-50 (batch size 128)", 2);
        assert_eq!(p.rate(Some(&class), c.lookup("k80").unwrap()), 0.0);
        assert!(p.rate(Some(&class), c.lookup("v100").unwrap()) > 0.0);
    }

    #[test]
    fn unknown_classes_fall_back_to_peak_times_efficiency() {
        let mut c = Catalog::builtin();
        c.extend_toml("[stacks]\ncann = 0.5\n", "eff.toml").unwrap();
        let p = Performance::new(&c, ThroughputMatrix::new()).unwrap();
        let t4 = c.lookup("T4").unwrap();
        let est = p.throughput(Some("never-measured"), t4);
        assert_eq!(est.basis, Basis::Peak);
        assert!((p.rate(None, t4) - 65.0 / 312.0).abs() < 1e-12);
        // "20 T4s are not 20 A100s".
        assert!(20.0 * p.rate(None, t4) < 5.0);
        let b3 = c.lookup("910B3").unwrap();
        assert!((p.rate(None, b3) - 313.0 * 0.5 / 312.0).abs() < 1e-12);
    }

    #[test]
    fn malformed_gavel_files_name_the_problem() {
        let c = Catalog::builtin();
        let err =
            ThroughputMatrix::from_gavel_json(r#"{"k80": {"oops": {"null": 1}}}"#, "t.json", &c)
                .unwrap_err();
        assert!(
            err.to_string().contains("t.json: 'k80': job key oops"),
            "{err}"
        );
        let err = ThroughputMatrix::from_gavel_json(r#"{"tpu": {}}"#, "t.json", &c).unwrap_err();
        assert!(
            err.to_string().contains("unknown accelerator model 'tpu'"),
            "{err}"
        );
        let err = ThroughputMatrix::from_gavel_json(r#"{"k80": {"('A', 1)": {}}}"#, "t.json", &c)
            .unwrap_err();
        assert!(err.to_string().contains("no numeric \"null\""), "{err}");
    }
}
