//! A snapshot of everything the scheduler needs, and the "snapshot in, decisions out" entry point.
//!
//! The server rebuilds its scheduler from a snapshot after a restart; tests and property checks use
//! [`decide`] directly.

use crate::config::Config;
use crate::decision::Plan;
use crate::placement::Part;
use crate::scheduler::{CoreError, Job, Phase, Scheduler};
use serde::{Deserialize, Serialize};
use wanka_model::{
    Allocation, Catalog, JobId, JobSpec, Lease, NodeSpec, Performance, Tenant, Time, UsageKind,
};

/// A node and its condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The node's shape.
    pub spec: NodeSpec,
    /// False while cordoned, draining or lost.
    pub schedulable: bool,
    /// Indices of unhealthy devices.
    pub unhealthy: Vec<u32>,
}

/// A job holding devices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningJob {
    /// What it asked for.
    pub spec: JobSpec,
    /// What it holds.
    pub allocation: Allocation,
    /// Set while it checkpoints to leave: (the job its devices are for, grace deadline).
    pub preempting: Option<(JobId, Time)>,
    /// Whose capacity it uses.
    #[serde(default)]
    pub usage: UsageKind,
}

/// Everything the scheduler decides from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The current time.
    pub now: Time,
    /// Nodes.
    pub nodes: Vec<NodeSnapshot>,
    /// Tenants.
    pub tenants: Vec<Tenant>,
    /// Running allocations.
    pub running: Vec<RunningJob>,
    /// The queue.
    pub pending: Vec<JobSpec>,
    /// Admitted leases.
    #[serde(default)]
    pub leases: Vec<Lease>,
}

/// Builds a scheduler from the snapshot and runs one full cycle.
pub fn decide(
    config: Config,
    catalog: Catalog,
    perf: Performance,
    snapshot: &Snapshot,
) -> Result<Plan, CoreError> {
    let mut s = Scheduler::from_snapshot(config, catalog, perf, snapshot)?;
    Ok(s.schedule_full(snapshot.now))
}

impl Scheduler {
    /// A scheduler holding exactly the snapshot's state.
    pub fn from_snapshot(
        config: Config,
        catalog: Catalog,
        perf: Performance,
        snap: &Snapshot,
    ) -> Result<Scheduler, CoreError> {
        let mut s = Scheduler::new(config, catalog, perf)?;
        for t in &snap.tenants {
            s.upsert_tenant(t.clone());
        }
        for n in &snap.nodes {
            s.add_node(n.spec.clone())?;
            for &d in &n.unhealthy {
                s.set_device_health(n.spec.id, d, false)?;
            }
            if !n.schedulable {
                s.set_schedulable(n.spec.id, false)?;
            }
        }
        for l in &snap.leases {
            s.add_lease(l.clone())?;
        }
        for r in &snap.running {
            s.restore(r)?;
        }
        for p in &snap.pending {
            s.submit(p.clone())?;
        }
        Ok(s)
    }

    /// Takes back a running job's allocation, checking it against the cluster.
    pub fn restore(&mut self, running: &RunningJob) -> Result<(), CoreError> {
        let spec = &running.spec;
        let alloc = &running.allocation;
        let bad = |problem: String| CoreError::Allocation {
            job: spec.id,
            problem,
        };
        if alloc.job != spec.id {
            return Err(bad(format!("the allocation names job {}", alloc.job)));
        }
        if alloc.replicas.len() != spec.replicas as usize {
            return Err(bad(format!(
                "{} replicas placed, {} asked for",
                alloc.replicas.len(),
                spec.replicas
            )));
        }
        let mut parts = Vec::with_capacity(alloc.replicas.len());
        for r in &alloc.replicas {
            let idx = *self
                .node_idx
                .get(&r.node)
                .ok_or(CoreError::UnknownNode(r.node))?;
            let node = &self.cluster.nodes[idx as usize];
            if node.model != alloc.model {
                return Err(bad(format!("node {:?} carries another model", r.node)));
            }
            if let Some(d) = r.devices.iter().find(|d| **d >= node.devices as u32) {
                return Err(bad(format!("node {:?} has no device {d}", r.node)));
            }
            let share = match (r.fraction_milli, spec.fraction_milli) {
                (Some(milli), Some(_)) if r.devices.len() == 1 => {
                    let mem_mib = (spec.device_memory_gib * 1024.0).ceil() as u32;
                    Some((r.devices[0] as u8, milli, mem_mib))
                }
                (None, None)
                    if r.devices.len() == spec.devices_per_replica as usize || spec.whole_nodes =>
                {
                    None
                }
                _ => {
                    return Err(bad(format!(
                        "replica on {:?} does not match the job's shape",
                        r.node
                    )));
                }
            };
            let mask = if share.is_some() {
                0
            } else {
                r.devices.iter().fold(0u64, |m, d| m | 1 << d)
            };
            parts.push(Part {
                node: idx,
                mask,
                share,
                cpu: spec.cpu_milli,
                mem: spec.memory_mib,
            });
        }
        // Check every part against the current state before taking anything.
        let mark = self.cluster.mark();
        for p in &parts {
            let node = &self.cluster.nodes[p.node as usize];
            let busy = node.alloc | node.shared_mask();
            let clash = match p.share {
                Some((dev, milli, _)) => {
                    node.alloc & (1 << dev) != 0
                        || node.shared.iter().any(|s| {
                            s.dev == dev && s.used_milli + milli > crate::cluster::FULL_MILLI
                        })
                }
                None => p.mask & busy != 0,
            };
            if clash {
                let id = node.id;
                self.cluster.rollback(mark);
                return Err(bad(format!("devices on node {id:?} are already allocated")));
            }
            for op in p.take_ops() {
                self.cluster.apply(op);
            }
        }
        if self.jobs.contains_key(&spec.id) {
            self.cluster.rollback(mark);
            return Err(CoreError::DuplicateJob(spec.id));
        }
        if let Err(e) = self.submit(spec.clone()) {
            self.cluster.rollback(mark);
            return Err(e);
        }
        self.arrivals.retain(|j| *j != spec.id);
        self.begin_run(spec.id, alloc.model, parts, alloc.started, running.usage);
        if let Some((by, deadline)) = running.preempting {
            self.mark_preempting(spec.id, by, deadline);
        }
        Ok(())
    }

    /// Everything the scheduler holds, as a snapshot taken at `now` (for persistence and debugging).
    pub fn snapshot(&self, now: Time) -> Snapshot {
        let mut ids: Vec<&JobId> = self.jobs.keys().collect();
        ids.sort();
        let mut running = Vec::new();
        let mut pending = Vec::new();
        for id in ids {
            let job: &Job = &self.jobs[id];
            match &job.phase {
                Phase::Pending => pending.push(job.spec.clone()),
                Phase::Running(run) => running.push(RunningJob {
                    spec: job.spec.clone(),
                    allocation: self.allocation(*id, run),
                    preempting: None,
                    usage: run.kind,
                }),
                Phase::Preempting { run, by, deadline } => running.push(RunningJob {
                    spec: job.spec.clone(),
                    allocation: self.allocation(*id, run),
                    preempting: Some((*by, *deadline)),
                    usage: run.kind,
                }),
            }
        }
        Snapshot {
            now,
            nodes: self
                .node_specs
                .iter()
                .zip(&self.cluster.nodes)
                .map(|(spec, n)| NodeSnapshot {
                    spec: spec.clone(),
                    schedulable: n.schedulable,
                    unhealthy: (0..n.devices as u32)
                        .filter(|d| n.healthy & (1 << d) == 0)
                        .collect(),
                })
                .collect(),
            tenants: self.fair.tenants().cloned().collect(),
            running,
            pending,
            leases: self.leases.iter().cloned().collect(),
        }
    }
}
