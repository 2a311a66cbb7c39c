//! Nodes, their devices and where they sit in the network.

use crate::catalog::ModelId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Driver-assigned identity of a node (stable across restarts of the server).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

/// Most devices one node may carry (device sets are 64-bit masks in the scheduler).
pub const MAX_DEVICES_PER_NODE: u32 = 64;

/// A node's place in the network: device interconnect domain → node → leaf switch → spine → center.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Topology {
    /// Spine (aggregation) switch or pod the leaf hangs off.
    pub spine: String,
    /// Leaf (top-of-rack) switch the node is cabled to.
    pub leaf: String,
}

/// A node as registered: its fixed shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Identity.
    pub id: NodeId,
    /// Host name.
    pub name: String,
    /// Accelerator model of every device on the node (nodes are homogeneous).
    pub model: ModelId,
    /// Number of devices.
    pub devices: u32,
    /// Interconnect domain of each device (e.g. two NVLink or HCCS islands of 4); empty means one domain.
    #[serde(default)]
    pub domains: Vec<u8>,
    /// Schedulable CPU in thousandths of a core.
    pub cpu_milli: u64,
    /// Schedulable host memory in MiB.
    pub memory_mib: u64,
    /// Network location.
    pub topology: Topology,
}

/// A node description that cannot be used.
#[derive(Debug, Error, PartialEq)]
pub enum NodeError {
    /// Device count out of range.
    #[error("node '{name}': {devices} devices; a node carries 0 to {MAX_DEVICES_PER_NODE}")]
    Devices {
        /// Node name.
        name: String,
        /// Given count.
        devices: u32,
    },
    /// Domain list of the wrong length.
    #[error("node '{name}': {given} interconnect domains listed for {devices} devices")]
    Domains {
        /// Node name.
        name: String,
        /// Entries in `domains`.
        given: usize,
        /// Device count.
        devices: u32,
    },
}

impl NodeSpec {
    /// Checks the spec's internal consistency.
    pub fn validate(&self) -> Result<(), NodeError> {
        if self.devices > MAX_DEVICES_PER_NODE {
            return Err(NodeError::Devices {
                name: self.name.clone(),
                devices: self.devices,
            });
        }
        if !self.domains.is_empty() && self.domains.len() != self.devices as usize {
            return Err(NodeError::Domains {
                name: self.name.clone(),
                given: self.domains.len(),
                devices: self.devices,
            });
        }
        Ok(())
    }
}
