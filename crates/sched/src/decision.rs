//! What a scheduling cycle returns: decisions to carry out and why waiting jobs wait.

use serde::{Deserialize, Serialize};
use std::fmt;
use wanka_model::{Allocation, JobId, Span, Time, UsageKind};

/// An action the driver (server or simulator) must carry out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Decision {
    /// Start the job on exactly these devices.
    Start {
        /// The job.
        job: JobId,
        /// Where it runs.
        allocation: Allocation,
        /// Started ahead of a blocked higher-ranked job, on the strength of its runtime estimate.
        backfilled: bool,
        /// Whose capacity it uses (its tenant's lease, unleased capacity, or borrowed).
        usage: UsageKind,
        /// For a start within the lease: how long the owner waited since its lease had room for the job.
        lease_wait: Option<Span>,
    },
    /// Ask the job to checkpoint now and exit by `deadline` (then kill it); it goes back to the queue.
    Preempt {
        /// The victim.
        job: JobId,
        /// The job its devices are for.
        by: JobId,
        /// Checkpoint first (always true today: wanka never kills without asking for a checkpoint).
        checkpoint: bool,
        /// When the grace period ends.
        deadline: Time,
        /// Why its devices are needed.
        cause: PreemptCause,
    },
}

/// Why a running job is asked to checkpoint and leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreemptCause {
    /// A job of a higher priority class needs the devices of this preemptible one.
    Priority,
    /// The victim runs on borrowed capacity and its lessee takes it back.
    Reclaim,
    /// The victim is moved to devices held for it elsewhere (capacity of the same kind: a run within its lease
    /// stays in its tenant's pools), so that a blocked job finds its devices together (repacking the cluster).
    Repack,
}

/// Why a job is not running, like Slurm's Reason column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum PendingReason {
    /// Submitted; no cycle has considered it yet.
    New,
    /// Not enough free devices of an accepted model; `estimated_start` when a reservation exists.
    Resources {
        /// When the job is expected to start, if it holds a reservation.
        estimated_start: Option<Time>,
    },
    /// It would fit, but the devices are reserved for higher-ranked jobs (or strict FIFO holds it back).
    Priority,
    /// The tenant's quota would be exceeded.
    QuotaExceeded {
        /// Devices the tenant holds now.
        used: u32,
        /// Its quota.
        quota: u32,
    },
    /// No node in the cluster, even empty, could run it.
    ConstraintUnsatisfiable {
        /// What rules every node out.
        detail: String,
    },
    /// It would have to borrow another tenant's leased capacity and lending is off (or it would hold more than
    /// its lease and the unleased capacity left).
    LeaseLimit,
    /// Preemptible jobs are checkpointing to make room for it.
    Preempting {
        /// How many jobs are being preempted.
        victims: u32,
    },
}

impl PendingReason {
    /// Short name for tables (Slurm style).
    pub fn name(&self) -> &'static str {
        match self {
            PendingReason::New => "New",
            PendingReason::Resources { .. } => "Resources",
            PendingReason::Priority => "Priority",
            PendingReason::QuotaExceeded { .. } => "QuotaExceeded",
            PendingReason::ConstraintUnsatisfiable { .. } => "ConstraintUnsatisfiable",
            PendingReason::LeaseLimit => "LeaseLimit",
            PendingReason::Preempting { .. } => "Preempting",
        }
    }
}

impl fmt::Display for PendingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PendingReason::Resources {
                estimated_start: Some(t),
            } => write!(
                f,
                "Resources (reserved, starts by t={:.0}s)",
                t.as_secs_f64()
            ),
            PendingReason::QuotaExceeded { used, quota } => {
                write!(f, "QuotaExceeded ({used} of {quota} devices in use)")
            }
            PendingReason::ConstraintUnsatisfiable { detail } => {
                write!(f, "ConstraintUnsatisfiable ({detail})")
            }
            PendingReason::Preempting { victims } => {
                write!(f, "Preempting ({victims} jobs checkpointing)")
            }
            other => f.write_str(other.name()),
        }
    }
}

/// Counters of one cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleStats {
    /// True for a full cycle over the whole queue, false for an arrivals-only cycle.
    pub full: bool,
    /// Jobs looked at.
    pub considered: u32,
    /// Jobs started.
    pub started: u32,
    /// Of those, started by backfill.
    pub backfilled: u32,
    /// Preemptions asked for.
    pub preempted: u32,
    /// Reservations made.
    pub reservations: u32,
}

/// The result of one cycle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Actions, in the order they were decided.
    pub decisions: Vec<Decision>,
    /// Pending jobs whose reason changed in this cycle.
    pub reasons: Vec<(JobId, PendingReason)>,
    /// Counters.
    pub stats: CycleStats,
}
