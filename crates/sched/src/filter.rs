//! Feasibility stage: named filters that decide whether a node can take one replica of a job.
//!
//! The hot path does not run them node by node: the capacity index already holds only healthy, schedulable,
//! unreserved free devices, and the model-level filters are evaluated once per job. `explain` runs the
//! whole chain over every node so that "why is my job pending" has an exact answer, like Nomad's
//! per-filter rejection counts.

use crate::cluster::NodeState;
use serde::Serialize;
use wanka_model::ModelId;

/// What the filters see of a job.
#[derive(Clone, Debug)]
pub struct JobNeeds<'a> {
    /// Accepted models (with a non-zero rate).
    pub models: &'a [ModelId],
    /// Devices per replica (1 for a fractional job).
    pub per_replica: u32,
    /// Thousandths of one device for a fractional job.
    pub fraction_milli: Option<u32>,
    /// Device memory needed per device, MiB.
    pub device_mem_mib: u32,
    /// Host CPU per replica.
    pub cpu: u64,
    /// Host memory per replica.
    pub mem: u64,
    /// Each replica needs a whole node.
    pub whole_nodes: bool,
}

/// A named feasibility check of one node for one replica.
pub trait NodeFilter: Send + Sync {
    /// Name shown in explanations.
    fn name(&self) -> &'static str;
    /// True when the node passes.
    fn passes(&self, job: &JobNeeds<'_>, node: &NodeState) -> bool;
}

/// The node's model is one the job accepts.
pub struct AcceptedModel;
impl NodeFilter for AcceptedModel {
    fn name(&self) -> &'static str {
        "model not accepted"
    }
    fn passes(&self, job: &JobNeeds<'_>, node: &NodeState) -> bool {
        (job.per_replica == 0 && job.fraction_milli.is_none()) || job.models.contains(&node.model)
    }
}

/// Each device has the memory the job needs.
pub struct DeviceMemory;
impl NodeFilter for DeviceMemory {
    fn name(&self) -> &'static str {
        "device memory too small"
    }
    fn passes(&self, job: &JobNeeds<'_>, node: &NodeState) -> bool {
        node.dev_mem_mib >= job.device_mem_mib
    }
}

/// The node is not cordoned, draining or lost.
pub struct Schedulable;
impl NodeFilter for Schedulable {
    fn name(&self) -> &'static str {
        "node cordoned or lost"
    }
    fn passes(&self, _: &JobNeeds<'_>, node: &NodeState) -> bool {
        node.schedulable
    }
}

/// Enough healthy devices for one replica.
pub struct HealthyDevices;
impl NodeFilter for HealthyDevices {
    fn name(&self) -> &'static str {
        "too few healthy devices"
    }
    fn passes(&self, job: &JobNeeds<'_>, node: &NodeState) -> bool {
        let healthy = node.healthy.count_ones();
        if job.whole_nodes {
            healthy == node.devices as u32 && healthy >= job.per_replica
        } else {
            healthy >= job.per_replica
        }
    }
}

/// Enough host CPU and memory for one replica.
pub struct HostResources;
impl NodeFilter for HostResources {
    fn name(&self) -> &'static str {
        "host CPU or memory short"
    }
    fn passes(&self, job: &JobNeeds<'_>, node: &NodeState) -> bool {
        node.host_room(job.cpu, job.mem) >= 1
    }
}

/// Whether `free` devices (and the node's shared devices, held ones too if `count_held`) fit one replica.
fn room(job: &JobNeeds<'_>, node: &NodeState, free: u32, count_held: bool) -> bool {
    if let Some(milli) = job.fraction_milli {
        let shared = node.shared.iter().any(|s| {
            (count_held || node.held & (1 << s.dev) == 0)
                && 1000 - s.used_milli >= milli
                && node.dev_mem_mib - s.used_mem_mib >= job.device_mem_mib
        });
        return free >= 1 || shared;
    }
    if job.whole_nodes {
        free == node.devices as u32
    } else {
        free >= job.per_replica
    }
}

/// Enough free devices for one replica, counting devices held for others.
pub struct FreeDevices;
impl NodeFilter for FreeDevices {
    fn name(&self) -> &'static str {
        "devices in use"
    }
    fn passes(&self, job: &JobNeeds<'_>, node: &NodeState) -> bool {
        let held_free = node.held & node.healthy & !node.shared_mask();
        room(job, node, (node.free() | held_free).count_ones(), true)
    }
}

/// Enough free devices once those reserved for higher-ranked jobs are set aside.
pub struct NotReserved;
impl NodeFilter for NotReserved {
    fn name(&self) -> &'static str {
        "devices reserved for other jobs"
    }
    fn passes(&self, job: &JobNeeds<'_>, node: &NodeState) -> bool {
        room(job, node, node.free().count_ones(), false)
    }
}

/// The chain, in the order an explanation reports it: static constraints first, then the current state.
pub fn chain() -> [&'static dyn NodeFilter; 7] {
    [
        &AcceptedModel,
        &DeviceMemory,
        &Schedulable,
        &HealthyDevices,
        &FreeDevices,
        &NotReserved,
        &HostResources,
    ]
}

/// How many nodes each filter rejected (the first filter a node fails is charged).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Explanation {
    /// Nodes examined.
    pub nodes: u32,
    /// Nodes that could take at least one replica now.
    pub feasible: u32,
    /// (filter, nodes it rejected), in chain order, only filters that rejected something.
    pub rejected: Vec<(String, u32)>,
}

/// Runs the whole chain over `nodes`.
pub fn explain<'a>(job: &JobNeeds<'_>, nodes: impl Iterator<Item = &'a NodeState>) -> Explanation {
    let chain = chain();
    let mut counts = [0u32; 7];
    let mut out = Explanation::default();
    for node in nodes {
        out.nodes += 1;
        match chain.iter().position(|f| !f.passes(job, node)) {
            Some(i) => counts[i] += 1,
            None => out.feasible += 1,
        }
    }
    out.rejected = chain
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(f, n)| (f.name().to_string(), n))
        .collect();
    out
}
