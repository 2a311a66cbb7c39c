//! Jobs as gangs: replicas × devices per replica, started all at once or not at all.

use crate::catalog::{AcceleratorModel, ModelId, Stack};
use crate::tenant::TenantId;
use crate::units::{Span, Time};
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Driver-assigned identity of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Priority class, the first key of queue order. Later variants outrank earlier ones.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum PriorityClass {
    /// Runs on idle capacity; checkpointed and preempted when a higher class needs the devices.
    Preemptible,
    /// The default class.
    #[default]
    Standard,
    /// Starts ahead of everything else and may preempt preemptible work.
    Guaranteed,
}

impl PriorityClass {
    /// The class's name as written in specs.
    pub fn name(self) -> &'static str {
        match self {
            PriorityClass::Preemptible => "preemptible",
            PriorityClass::Standard => "standard",
            PriorityClass::Guaranteed => "guaranteed",
        }
    }

    /// Parses a class name (case-insensitive).
    pub fn parse(name: &str) -> Option<PriorityClass> {
        [
            PriorityClass::Preemptible,
            PriorityClass::Standard,
            PriorityClass::Guaranteed,
        ]
        .into_iter()
        .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }
    /// Parses a class name, or says which names are known.
    pub fn resolve(name: &str) -> Result<PriorityClass, UnknownClass> {
        PriorityClass::parse(name).ok_or_else(|| UnknownClass(name.to_string()))
    }
}

/// A priority class name that is none of the three.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("unknown priority class '{0}' (guaranteed, standard or preemptible)")]
pub struct UnknownClass(pub String);

impl fmt::Display for PriorityClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a job asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Identity.
    pub id: JobId,
    /// Owner.
    pub tenant: TenantId,
    /// Human-readable name.
    pub name: String,
    /// Priority class.
    pub class: PriorityClass,
    /// Number of replicas; each replica's devices sit on one node.
    pub replicas: u32,
    /// Devices per replica; 0 for a host-only job that needs CPU and memory but no accelerator.
    pub devices_per_replica: u32,
    /// A fraction of one device, in thousandths (only for a single replica of a single device).
    pub fraction_milli: Option<u32>,
    /// Device memory needed per device, GiB (for a fractional job: the memory it uses on the shared device).
    pub device_memory_gib: f64,
    /// Host CPU per replica, thousandths of a core.
    pub cpu_milli: u64,
    /// Host memory per replica, MiB.
    pub memory_mib: u64,
    /// Accepted models; together with `stacks`, empty means any model.
    pub models: Vec<ModelId>,
    /// Accepted software stacks (a model is accepted if it is listed or its stack is).
    pub stacks: Vec<Stack>,
    /// Job class for the throughput matrix (e.g. a Gavel job type); `None` normalizes by peak.
    pub workload: Option<String>,
    /// The user's runtime estimate (like Slurm's --time); backfill relies on it.
    pub estimated_runtime: Option<Span>,
    /// Submission time; ties in queue order go to the older job.
    pub submitted: Time,
    /// Each replica takes a whole node to itself (Slurm's --exclusive).
    pub whole_nodes: bool,
}

/// A job spec that cannot be scheduled as written.
#[derive(Debug, Error, PartialEq)]
pub enum JobError {
    /// Zero replicas or zero devices.
    #[error("job {job}: {field} must be at least 1")]
    Zero {
        /// The job.
        job: JobId,
        /// The field.
        field: &'static str,
    },
    /// Fraction out of range or on a multi-device job.
    #[error(
        "job {job}: fraction_milli = {fraction}; a fraction must be 1..=999 and only a 1-replica, 1-device job can have one"
    )]
    Fraction {
        /// The job.
        job: JobId,
        /// The fraction given.
        fraction: u32,
    },
    /// A negative or non-finite memory request.
    #[error("job {job}: device_memory_gib = {value}; it must be a finite number >= 0")]
    Memory {
        /// The job.
        job: JobId,
        /// The value given.
        value: f64,
    },
    /// More devices than the scheduler can represent.
    #[error("job {job}: {replicas} replicas x {per_replica} devices is too large")]
    TooLarge {
        /// The job.
        job: JobId,
        /// Replicas asked for.
        replicas: u32,
        /// Devices per replica asked for.
        per_replica: u32,
    },
}

impl JobSpec {
    /// A standard-class job of `replicas` × `devices_per_replica` devices, accepting any model.
    pub fn gang(id: JobId, tenant: TenantId, replicas: u32, devices_per_replica: u32) -> JobSpec {
        JobSpec {
            id,
            tenant,
            name: format!("job-{}", id.0),
            class: PriorityClass::Standard,
            replicas,
            devices_per_replica,
            fraction_milli: None,
            device_memory_gib: 0.0,
            cpu_milli: 0,
            memory_mib: 0,
            models: Vec::new(),
            stacks: Vec::new(),
            workload: None,
            estimated_runtime: None,
            submitted: Time(0),
            whole_nodes: false,
        }
    }

    /// Devices the whole gang holds (a fractional job counts as one).
    pub fn total_devices(&self) -> u32 {
        self.replicas * self.devices_per_replica
    }

    /// Whether the job may run on this model.
    pub fn accepts(&self, id: ModelId, model: &AcceleratorModel) -> bool {
        (self.models.is_empty() && self.stacks.is_empty())
            || self.models.contains(&id)
            || self.stacks.contains(&model.stack)
    }

    /// Checks the spec's internal consistency.
    pub fn validate(&self) -> Result<(), JobError> {
        let job = self.id;
        if self.replicas == 0 {
            return Err(JobError::Zero {
                job,
                field: "replicas",
            });
        }
        if self.devices_per_replica == 0
            && (self.fraction_milli.is_some() || (self.cpu_milli == 0 && self.memory_mib == 0))
        {
            return Err(JobError::Zero {
                job,
                field: "devices_per_replica (or, for a host-only job, cpu_milli or memory_mib)",
            });
        }
        if self
            .replicas
            .checked_mul(self.devices_per_replica)
            .is_none_or(|n| n > 1 << 24)
        {
            return Err(JobError::TooLarge {
                job,
                replicas: self.replicas,
                per_replica: self.devices_per_replica,
            });
        }
        if let Some(fraction) = self.fraction_milli
            && (fraction == 0 || fraction >= 1000 || self.total_devices() != 1)
        {
            return Err(JobError::Fraction { job, fraction });
        }
        if !(self.device_memory_gib.is_finite() && self.device_memory_gib >= 0.0) {
            return Err(JobError::Memory {
                job,
                value: self.device_memory_gib,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_order_by_precedence() {
        assert!(PriorityClass::Guaranteed > PriorityClass::Standard);
        assert!(PriorityClass::Standard > PriorityClass::Preemptible);
        assert_eq!(
            PriorityClass::parse("Guaranteed"),
            Some(PriorityClass::Guaranteed)
        );
        assert_eq!(PriorityClass::parse("urgent"), None);
    }

    #[test]
    fn validation_rejects_impossible_gangs() {
        let ok = JobSpec::gang(JobId(1), TenantId(0), 2, 8);
        assert_eq!(ok.validate(), Ok(()));
        let mut j = ok.clone();
        j.replicas = 0;
        assert!(
            j.validate()
                .unwrap_err()
                .to_string()
                .contains("replicas must be at least 1")
        );
        let mut j = ok.clone();
        j.fraction_milli = Some(500);
        assert!(matches!(j.validate(), Err(JobError::Fraction { .. })));
        let mut cpu_only = JobSpec::gang(JobId(3), TenantId(0), 2, 0);
        assert!(
            cpu_only.validate().is_err(),
            "no devices and no host resources"
        );
        cpu_only.cpu_milli = 4000;
        assert_eq!(cpu_only.validate(), Ok(()));
        let mut j = JobSpec::gang(JobId(2), TenantId(0), 1, 1);
        j.fraction_milli = Some(500);
        assert_eq!(j.validate(), Ok(()));
        j.device_memory_gib = f64::NAN;
        assert!(matches!(j.validate(), Err(JobError::Memory { .. })));
    }
}
