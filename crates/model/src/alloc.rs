//! Allocations: which devices a started job holds.

use crate::catalog::ModelId;
use crate::job::JobId;
use crate::node::NodeId;
use crate::units::Time;
use serde::{Deserialize, Serialize};

/// The devices one replica (one node's share of a gang) holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaPlacement {
    /// Node the replica runs on.
    pub node: NodeId,
    /// Device indices on that node, ascending.
    pub devices: Vec<u32>,
    /// For a fractional job: thousandths of the single device it shares.
    pub fraction_milli: Option<u32>,
}

/// Everything a running job holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The job.
    pub job: JobId,
    /// Model of every device in the allocation (a gang never mixes models).
    pub model: ModelId,
    /// One entry per replica, in rank order.
    pub replicas: Vec<ReplicaPlacement>,
    /// When it started.
    pub started: Time,
}

impl Allocation {
    /// Devices held, counting a fractional share as one device.
    pub fn device_count(&self) -> u32 {
        self.replicas.iter().map(|r| r.devices.len() as u32).sum()
    }

    /// Devices held in thousandths (a fractional job holds less than 1000).
    pub fn device_milli(&self) -> u64 {
        self.replicas
            .iter()
            .map(|r| {
                r.fraction_milli
                    .map_or(r.devices.len() as u64 * 1000, u64::from)
            })
            .sum()
    }
}
