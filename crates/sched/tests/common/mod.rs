//! Builders shared by the scheduler's integration and property tests.
#![allow(dead_code)]

use wanka_model::{
    Catalog, JobId, JobSpec, ModelId, NodeId, NodeSpec, Performance, Tenant, TenantId,
    ThroughputMatrix, Topology,
};
use wanka_sched::{Config, Scheduler};

/// The built-in catalog and a peak-only normalizer.
pub fn catalog() -> (Catalog, Performance) {
    let c = Catalog::builtin();
    let p = Performance::new(&c, ThroughputMatrix::new()).unwrap();
    (c, p)
}

/// The id of a catalog model by name.
pub fn model(name: &str) -> ModelId {
    Catalog::builtin().lookup(name).unwrap()
}

/// `leaves` leaf switches of `per_leaf` nodes with `devices` devices of `model`, two leaves per spine;
/// ids and leaf numbers continue from `first_id`/`first_leaf`.
pub fn nodes(
    model_name: &str,
    leaves: u32,
    per_leaf: u32,
    devices: u32,
    first_id: u32,
    first_leaf: u32,
) -> Vec<NodeSpec> {
    let m = model(model_name);
    let mut out = Vec::new();
    for l in 0..leaves {
        for i in 0..per_leaf {
            let id = first_id + l * per_leaf + i;
            let leaf = first_leaf + l;
            out.push(NodeSpec {
                id: NodeId(id),
                name: format!("node-{id}"),
                model: m,
                devices,
                domains: Vec::new(),
                cpu_milli: 128_000,
                memory_mib: 1 << 20,
                topology: Topology {
                    spine: format!("spine-{}", leaf / 2),
                    leaf: format!("leaf-{leaf}"),
                },
            });
        }
    }
    out
}

/// A scheduler over `nodes` with tenants 0..4 of weight 1.
pub fn scheduler(config: Config, nodes: Vec<NodeSpec>) -> Scheduler {
    let (c, p) = catalog();
    let mut s = Scheduler::new(config, c, p).unwrap();
    for t in 0..4 {
        s.upsert_tenant(Tenant::new(TenantId(t), format!("tenant-{t}")));
    }
    for n in nodes {
        s.add_node(n).unwrap();
    }
    s
}

/// A standard job of tenant 0.
pub fn job(id: u64, replicas: u32, per_replica: u32) -> JobSpec {
    JobSpec::gang(JobId(id), TenantId(0), replicas, per_replica)
}
