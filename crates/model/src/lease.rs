//! Leases: a tenant's reserved devices of one model for a time window (a month, a year), optionally kept
//! within one leaf or spine switch so that the tenant can run one gang of its whole lease.

use crate::{ModelId, TenantId, Time};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Identity of a lease.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct LeaseId(pub u64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How close together a lease's devices must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Within {
    /// Anywhere in the cluster.
    #[default]
    Anywhere,
    /// Under one leaf switch.
    Leaf,
    /// Under one spine switch.
    Spine,
}

impl Within {
    /// Parses `anywhere`, `leaf` or `spine`.
    pub fn parse(s: &str) -> Option<Within> {
        match s.trim().to_ascii_lowercase().as_str() {
            "anywhere" | "" => Some(Within::Anywhere),
            "leaf" => Some(Within::Leaf),
            "spine" => Some(Within::Spine),
            _ => None,
        }
    }

    /// The name as written in specs.
    pub fn name(self) -> &'static str {
        match self {
            Within::Anywhere => "anywhere",
            Within::Leaf => "leaf",
            Within::Spine => "spine",
        }
    }
}

/// A tenant's guaranteed devices of one model over `[start, end)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// Identity.
    pub id: LeaseId,
    /// Owner.
    pub tenant: TenantId,
    /// The accelerator model.
    pub model: ModelId,
    /// Devices guaranteed.
    pub devices: u32,
    /// First instant of the lease.
    pub start: Time,
    /// First instant after it.
    pub end: Time,
    /// Topology requirement.
    pub within: Within,
    /// The switch chosen at admission for a leaf or spine lease: `spine/leaf` or `spine`.
    pub domain: Option<String>,
}

impl Lease {
    /// True while the lease is in force.
    pub fn active(&self, now: Time) -> bool {
        self.start <= now && now < self.end
    }

    /// True when its window overlaps `[start, end)`.
    pub fn overlaps(&self, start: Time, end: Time) -> bool {
        self.start < end && start < self.end
    }
}

/// Which capacity a run of a job uses, which decides whether it may be reclaimed and how it is billed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum UsageKind {
    /// Within its tenant's lease.
    Leased,
    /// Capacity nobody leased.
    #[default]
    OnDemand,
    /// Another tenant's idle leased capacity, lent as preemptible work: reclaimed when the owner needs it.
    Borrowed,
}

impl UsageKind {
    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            UsageKind::Leased => "leased",
            UsageKind::OnDemand => "on-demand",
            UsageKind::Borrowed => "borrowed",
        }
    }
}
