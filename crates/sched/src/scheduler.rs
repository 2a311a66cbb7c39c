//! The scheduler: cluster, queue and tenants in memory, changed by events, asked for decisions by cycles.
//!
//! It is a pure state machine (quinn-proto style): the driver feeds it events and the current time and
//! carries out the decisions it returns. Nothing inside reads a clock, touches a file or draws a random
//! number, so the server and the simulator get identical decisions from identical inputs.

use crate::backfill::{Reservation, unhold};
use crate::cluster::{ClusterState, NodeIdx, NodeState, bits, mask_of};
use crate::config::{Config, ConfigError};
use crate::decision::PendingReason;
use crate::fair_share::{FairShare, Usage};
use crate::filter::{self, Explanation, JobNeeds};
use crate::fxhash::FxHashMap;
use crate::lease::{KindUse, LeaseBook, Shortfall};
use crate::placement::{Fraction, Part, Request};
use crate::preempt::Claim;
use crate::queue::Queue;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;
use wanka_model::{
    Allocation, Catalog, JobError, JobId, JobSpec, Lease, LeaseId, ModelId, NodeError, NodeId,
    NodeSpec, Performance, PriorityClass, ReplicaPlacement, Span, Tenant, TenantId, Time,
    UsageKind,
};

/// An event that changes what the scheduler knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A node joined (all devices healthy, schedulable).
    AddNode(NodeSpec),
    /// A node was cordoned/drained/lost (false) or resumed (true).
    SetSchedulable {
        /// The node.
        node: NodeId,
        /// Whether new work may land there.
        schedulable: bool,
    },
    /// A device turned unhealthy or healthy again.
    SetDeviceHealth {
        /// The node.
        node: NodeId,
        /// Device index.
        device: u32,
        /// New health.
        healthy: bool,
    },
    /// A tenant was created or its weight/quota changed.
    UpsertTenant(Tenant),
    /// A job was submitted.
    Submit(JobSpec),
    /// A job was cancelled (pending or running).
    Cancel(JobId),
    /// A running job ended (success or failure); its devices are free.
    Finished(JobId),
    /// A running or preempted job stopped and goes back to the queue (after a checkpoint).
    Requeue(JobId),
    /// An admitted lease is restored (not checked again).
    AddLease(Lease),
    /// A lease was withdrawn.
    RemoveLease(LeaseId),
}

/// An event or snapshot the scheduler cannot accept. Nothing is changed when one is returned.
#[derive(Debug, Error, PartialEq)]
pub enum CoreError {
    /// The configuration does not build.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An invalid job spec.
    #[error(transparent)]
    Job(#[from] JobError),
    /// An invalid node spec.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A node id registered twice.
    #[error("node {0:?} is already registered")]
    DuplicateNode(NodeId),
    /// A node id never registered.
    #[error("node {0:?} is not registered")]
    UnknownNode(NodeId),
    /// A device index beyond the node's devices.
    #[error("node {node:?} has no device {device}")]
    UnknownDevice {
        /// The node.
        node: NodeId,
        /// The index given.
        device: u32,
    },
    /// A model id the catalog does not have.
    #[error("model id {0:?} is not in the catalog")]
    UnknownModel(ModelId),
    /// A tenant id never registered.
    #[error("tenant {0:?} is not registered")]
    UnknownTenant(TenantId),
    /// A job id submitted twice.
    #[error("job {0} already exists")]
    DuplicateJob(JobId),
    /// A job id the scheduler does not have.
    #[error("job {0} is unknown")]
    UnknownJob(JobId),
    /// A finish/requeue for a job that is not running.
    #[error("job {0} is not running")]
    NotRunning(JobId),
    /// A lease that makes no sense (empty window, no devices).
    #[error("lease {id}: {problem}")]
    BadLease {
        /// The lease.
        id: LeaseId,
        /// What is wrong.
        problem: String,
    },
    /// A lease the installed capacity cannot honor beside those already admitted.
    #[error("{0}")]
    Shortfall(Box<Shortfall>),
    /// A restored allocation that conflicts with the cluster.
    #[error("allocation of job {job} cannot be restored: {problem}")]
    Allocation {
        /// The job.
        job: JobId,
        /// What conflicts.
        problem: String,
    },
}

/// A running job's holdings.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub model: ModelId,
    pub parts: Vec<Part>,
    pub started: Time,
    /// Estimated end (or the preemption deadline), used by reservations.
    pub ends: Time,
    pub usage: Usage,
    /// Whose capacity it uses.
    pub kind: UsageKind,
    /// How long it waited for its tenant's leased capacity, when it did.
    pub lease_wait: Option<Span>,
}

/// Where a job is in its life inside the scheduler.
#[derive(Clone, Debug)]
pub(crate) enum Phase {
    Pending,
    Running(Run),
    /// Asked to checkpoint and leave for `by`.
    Preempting {
        run: Run,
        by: JobId,
        deadline: Time,
    },
}

/// Shape of a job: two jobs of the same shape fit in exactly the same places, so a failed placement of one
/// answers for the other within a cycle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Shape {
    pub models: Vec<ModelId>,
    pub request: Request,
}

/// A job and what the scheduler derived from its spec.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub spec: JobSpec,
    /// Accepted models with the job's normalized rate there (rate > 0, device memory sufficient).
    pub accepted: Vec<(ModelId, f64)>,
    pub shape: Shape,
    /// The shape's number (shapes are interned, so that per-cycle caches hash a number).
    pub shape_id: u32,
    pub phase: Phase,
    pub reason: PendingReason,
    /// The installed-capacity version the "can this ever fit" check last ran against, and its answer.
    pub checked: Option<(u64, bool)>,
    /// Since when its tenant's lease has had room for it while it waited.
    pub lease_since: Option<Time>,
}

/// A job's state as the driver sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum JobStatus {
    /// Waiting, with the reason.
    Pending {
        /// Why it waits.
        reason: PendingReason,
    },
    /// Running on this allocation.
    Running {
        /// Its devices.
        allocation: Allocation,
    },
    /// Asked to checkpoint and leave.
    Preempting {
        /// Its devices until it leaves.
        allocation: Allocation,
        /// The job the devices are for.
        by: JobId,
        /// Grace deadline.
        deadline: Time,
    },
}

/// A reservation as reported to the driver and tests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReservationView {
    /// The blocked job.
    pub job: JobId,
    /// When it is expected to start.
    pub start: Time,
    /// Devices reserved, per node.
    pub devices: Vec<(NodeId, Vec<u32>)>,
}

/// What the scheduler knows about the installed capacity of one model (used for "can this ever fit"):
/// node count by shape (devices, CPU, memory).
pub(crate) type Installed = BTreeMap<(u8, u64, u64), u32>;

/// The scheduler core.
pub struct Scheduler {
    pub(crate) config: Config,
    pub(crate) scorers: crate::score::Chain,
    pub(crate) catalog: Catalog,
    pub(crate) perf: Performance,
    pub(crate) cluster: ClusterState,
    pub(crate) node_idx: FxHashMap<NodeId, NodeIdx>,
    /// Registered node specs, by node index.
    pub(crate) node_specs: Vec<NodeSpec>,
    pub(crate) installed: BTreeMap<ModelId, Installed>,
    /// Bumped whenever `installed` changes.
    pub(crate) installed_version: u64,
    /// Every shape seen, numbered.
    pub(crate) shapes: FxHashMap<Shape, u32>,
    leaves: BTreeMap<String, u32>,
    spines: BTreeMap<String, u32>,
    pub(crate) fair: FairShare,
    capacity: Usage,
    pub(crate) leases: LeaseBook,
    pub(crate) kinds: KindUse,
    pub(crate) pools: crate::pool::Pools,
    pub(crate) jobs: FxHashMap<JobId, Job>,
    pub(crate) queue: Queue,
    /// Running jobs by model and estimated end: the release order reservations sweep through.
    pub(crate) ends: BTreeMap<ModelId, BTreeSet<(Time, JobId)>>,
    /// Running preemptible devices per model: a quick "preemption cannot help" test.
    pub(crate) preemptible: BTreeMap<ModelId, u32>,
    pub(crate) reservations: Vec<Reservation>,
    /// Kinds of requests seen, for fragmentation-aware scoring.
    pub(crate) profile: crate::profile::Profile,
    pub(crate) claims: BTreeMap<JobId, Claim>,
    pub(crate) arrivals: Vec<JobId>,
    /// Pending jobs that need no device (they may start while every device is busy).
    pub(crate) host_only_pending: usize,
    pub(crate) needs_full: bool,
    pub(crate) last_full: Option<Time>,
    pub(crate) changed: BTreeSet<JobId>,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new(
        config: Config,
        catalog: Catalog,
        perf: Performance,
    ) -> Result<Scheduler, CoreError> {
        let scorers = config.scorers()?;
        let queue = Queue::new(config.queue_order);
        Ok(Scheduler {
            config,
            scorers,
            catalog,
            perf,
            cluster: ClusterState::default(),
            node_idx: FxHashMap::default(),
            node_specs: Vec::new(),
            installed: BTreeMap::new(),
            installed_version: 0,
            shapes: FxHashMap::default(),
            leaves: BTreeMap::new(),
            spines: BTreeMap::new(),
            fair: FairShare::default(),
            capacity: Usage::default(),
            leases: LeaseBook::default(),
            kinds: KindUse::default(),
            pools: crate::pool::Pools::default(),
            jobs: FxHashMap::default(),
            queue,
            ends: BTreeMap::new(),
            preemptible: BTreeMap::new(),
            reservations: Vec::new(),
            profile: crate::profile::Profile::default(),
            claims: BTreeMap::new(),
            arrivals: Vec::new(),
            host_only_pending: 0,
            needs_full: true,
            last_full: None,
            changed: BTreeSet::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The catalog the scheduler resolves models with.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The normalizer.
    pub fn performance(&self) -> &Performance {
        &self.perf
    }

    /// Applies one event.
    pub fn apply(&mut self, event: Event) -> Result<(), CoreError> {
        match event {
            Event::AddNode(spec) => self.add_node(spec),
            Event::SetSchedulable { node, schedulable } => self.set_schedulable(node, schedulable),
            Event::SetDeviceHealth {
                node,
                device,
                healthy,
            } => self.set_device_health(node, device, healthy),
            Event::UpsertTenant(t) => {
                self.upsert_tenant(t);
                Ok(())
            }
            Event::Submit(spec) => self.submit(spec),
            Event::Cancel(id) => self.cancel(id),
            Event::Finished(id) => self.finished(id),
            Event::Requeue(id) => self.requeue(id),
            Event::AddLease(lease) => self.add_lease(lease),
            Event::RemoveLease(id) => {
                self.remove_lease(id);
                Ok(())
            }
        }
    }

    fn intern(map: &mut BTreeMap<String, u32>, name: &str) -> u32 {
        let next = map.len() as u32;
        *map.entry(name.to_string()).or_insert(next)
    }

    /// Registers a node.
    pub fn add_node(&mut self, spec: NodeSpec) -> Result<(), CoreError> {
        spec.validate()?;
        if self.node_idx.contains_key(&spec.id) {
            return Err(CoreError::DuplicateNode(spec.id));
        }
        if spec.model.0 as usize >= self.catalog.len() {
            return Err(CoreError::UnknownModel(spec.model));
        }
        let model = self.catalog.model(spec.model);
        let leaf = Self::intern(
            &mut self.leaves,
            &format!("{}/{}", spec.topology.spine, spec.topology.leaf),
        );
        let spine = Self::intern(&mut self.spines, &spec.topology.spine);
        let all = mask_of(spec.devices);
        let domains = if spec.domains.is_empty() {
            vec![all]
        } else {
            let mut d: BTreeMap<u8, u64> = BTreeMap::new();
            for (i, dom) in spec.domains.iter().enumerate() {
                *d.entry(*dom).or_default() |= 1 << i;
            }
            d.into_values().collect()
        };
        let state = NodeState {
            id: spec.id,
            model: spec.model,
            leaf,
            spine,
            devices: spec.devices as u8,
            domains,
            dev_mem_mib: (model.memory_gib * 1024.0) as u32,
            healthy: all,
            schedulable: true,
            alloc: 0,
            held: 0,
            shared: Vec::new(),
            cpu: [spec.cpu_milli, 0, 0],
            mem: [spec.memory_mib, 0, 0],
        };
        let shape = (spec.devices as u8, spec.cpu_milli, spec.memory_mib);
        *self
            .installed
            .entry(spec.model)
            .or_default()
            .entry(shape)
            .or_default() += 1;
        self.installed_version += 1;
        let idx = self.cluster.add_node(state);
        self.cluster.commit();
        self.node_idx.insert(spec.id, idx);
        self.node_specs.push(spec);
        self.count_capacity(idx, 1.0);
        self.pools.invalidate();
        self.needs_full = true;
        Ok(())
    }

    /// Adds (sign 1) or removes (sign -1) a node's usable devices from the fair-share denominators.
    fn count_capacity(&mut self, idx: NodeIdx, sign: f64) {
        let n = &self.cluster.nodes[idx as usize];
        let usable = n.usable().count_ones();
        let m = self.catalog.model(n.model);
        self.capacity.compute += sign * usable as f64 * self.perf.peak_rate(n.model);
        self.capacity.memory_gib += sign * usable as f64 * m.memory_gib;
        self.fair.set_capacity(self.capacity);
    }

    fn node(&self, id: NodeId) -> Result<NodeIdx, CoreError> {
        self.node_idx
            .get(&id)
            .copied()
            .ok_or(CoreError::UnknownNode(id))
    }

    fn set_condition(&mut self, idx: NodeIdx, healthy: u64, schedulable: bool) {
        let before = self.cluster.nodes[idx as usize].usable();
        self.count_capacity(idx, -1.0);
        self.cluster.set_condition(idx, healthy, schedulable);
        self.count_capacity(idx, 1.0);
        if self.cluster.nodes[idx as usize].usable() & !before != 0 {
            self.needs_full = true;
        }
    }

    /// Cordons (false) or resumes (true) a node. Running work stays; the driver decides about it.
    pub fn set_schedulable(&mut self, node: NodeId, schedulable: bool) -> Result<(), CoreError> {
        let idx = self.node(node)?;
        let healthy = self.cluster.nodes[idx as usize].healthy;
        self.set_condition(idx, healthy, schedulable);
        Ok(())
    }

    /// Marks one device healthy or unhealthy.
    pub fn set_device_health(
        &mut self,
        node: NodeId,
        device: u32,
        healthy: bool,
    ) -> Result<(), CoreError> {
        let idx = self.node(node)?;
        let n = &self.cluster.nodes[idx as usize];
        if device >= n.devices as u32 {
            return Err(CoreError::UnknownDevice { node, device });
        }
        let mask = if healthy {
            n.healthy | 1 << device
        } else {
            n.healthy & !(1 << device)
        };
        let schedulable = n.schedulable;
        self.set_condition(idx, mask, schedulable);
        Ok(())
    }

    /// Adds a tenant or changes its weight and quota.
    pub fn upsert_tenant(&mut self, tenant: Tenant) {
        self.fair.upsert(tenant);
        self.needs_full = true;
    }

    /// Normalized rate and fit of every catalog model the job accepts.
    fn accepted(&self, spec: &JobSpec) -> Vec<(ModelId, f64)> {
        let need_mib = (spec.device_memory_gib * 1024.0).ceil() as u32;
        self.catalog
            .models()
            .filter(|(id, m)| spec.accepts(*id, m) && (m.memory_gib * 1024.0) as u32 >= need_mib)
            .map(|(id, _)| (id, self.perf.rate(spec.workload.as_deref(), id)))
            .filter(|(_, rate)| *rate > 0.0)
            .collect()
    }

    /// Queues a job.
    pub fn submit(&mut self, spec: JobSpec) -> Result<(), CoreError> {
        spec.validate()?;
        if self.jobs.contains_key(&spec.id) {
            return Err(CoreError::DuplicateJob(spec.id));
        }
        if !self.fair.contains(spec.tenant) {
            return Err(CoreError::UnknownTenant(spec.tenant));
        }
        if let Some(m) = spec
            .models
            .iter()
            .find(|m| m.0 as usize >= self.catalog.len())
        {
            return Err(CoreError::UnknownModel(*m));
        }
        let accepted = self.accepted(&spec);
        let request = Request {
            replicas: spec.replicas,
            per_replica: spec.devices_per_replica,
            fraction: spec.fraction_milli.map(|milli| Fraction {
                milli,
                mem_mib: (spec.device_memory_gib * 1024.0).ceil() as u32,
            }),
            cpu: spec.cpu_milli,
            mem: spec.memory_mib,
            whole_nodes: spec.whole_nodes,
        };
        let shape = Shape {
            models: accepted.iter().map(|(m, _)| *m).collect(),
            request,
        };
        self.profile.record(&request);
        let next = self.shapes.len() as u32;
        let shape_id = *self.shapes.entry(shape.clone()).or_insert(next);
        self.enqueue(&spec);
        self.arrivals.push(spec.id);
        self.changed.insert(spec.id);
        self.jobs.insert(
            spec.id,
            Job {
                spec,
                accepted,
                shape,
                shape_id,
                phase: Phase::Pending,
                reason: PendingReason::New,
                checked: None,
                lease_since: None,
            },
        );
        Ok(())
    }

    /// Cancels a job wherever it is.
    pub fn cancel(&mut self, id: JobId) -> Result<(), CoreError> {
        let job = self.jobs.get(&id).ok_or(CoreError::UnknownJob(id))?;
        if matches!(job.phase, Phase::Pending) {
            let spec = job.spec.clone();
            self.queue.remove(&spec);
            if spec.devices_per_replica == 0 && spec.fraction_milli.is_none() {
                self.host_only_pending -= 1;
            }
            self.drop_claims_of(id);
            self.jobs.remove(&id);
            self.changed.remove(&id);
            return Ok(());
        }
        self.forget_run(id);
        Ok(())
    }

    /// Records that a running job ended.
    pub fn finished(&mut self, id: JobId) -> Result<(), CoreError> {
        let job = self.jobs.get(&id).ok_or(CoreError::UnknownJob(id))?;
        if matches!(job.phase, Phase::Pending) {
            return Err(CoreError::NotRunning(id));
        }
        self.forget_run(id);
        Ok(())
    }

    /// Puts a running or preempted job back in the queue, keeping its submission time.
    pub fn requeue(&mut self, id: JobId) -> Result<(), CoreError> {
        let job = self.jobs.get(&id).ok_or(CoreError::UnknownJob(id))?;
        if matches!(job.phase, Phase::Pending) {
            return Err(CoreError::NotRunning(id));
        }
        self.release(id);
        let job = self.jobs.get_mut(&id).expect("checked above");
        job.phase = Phase::Pending;
        job.reason = PendingReason::New;
        let spec = job.spec.clone();
        self.enqueue(&spec);
        self.arrivals.push(id);
        self.changed.insert(id);
        Ok(())
    }

    /// Puts a job in the queue.
    fn enqueue(&mut self, spec: &JobSpec) {
        if spec.devices_per_replica == 0 && spec.fraction_milli.is_none() {
            self.host_only_pending += 1;
        }
        self.queue.insert(spec);
    }

    fn drop_claims_of(&mut self, id: JobId) {
        if let Some(claim) = self.claims.remove(&id) {
            unhold(&mut self.cluster, &claim.holds);
        }
        if let Some(pos) = self.reservations.iter().position(|r| r.job == id) {
            let r = self.reservations.remove(pos);
            unhold(&mut self.cluster, &r.holds);
        }
        self.cluster.commit();
        self.needs_full = true;
    }

    /// Frees a running job's devices and forgets the job.
    fn forget_run(&mut self, id: JobId) {
        self.release(id);
        // A run moved by a repack holds its destination while it checkpoints; it may end before it leaves.
        self.drop_claims_of(id);
        self.jobs.remove(&id);
    }

    /// Frees a running job's devices; devices a claim waits for are held for the claimant.
    fn release(&mut self, id: JobId) {
        let job = self.jobs.get_mut(&id).expect("caller checked");
        let phase = std::mem::replace(&mut job.phase, Phase::Pending);
        let run = match phase {
            Phase::Running(run) | Phase::Preempting { run, .. } => run,
            Phase::Pending => return,
        };
        if let Some(set) = self.ends.get_mut(&run.model) {
            set.remove(&(run.ends, id));
        }
        if job.spec.class == PriorityClass::Preemptible
            && let Some(n) = self.preemptible.get_mut(&run.model)
        {
            *n -= run.usage.devices;
        }
        *self.kinds.count(job.spec.tenant, run.model, run.kind) -= run.usage.devices;
        self.fair.refund(job.spec.tenant, run.usage);
        for p in &run.parts {
            for op in p.release_ops() {
                self.cluster.apply(op);
            }
        }
        for claim in self.claims.values_mut() {
            let more = crate::backfill::hold_free(&mut self.cluster, &claim.parts, false);
            claim.holds.extend(more);
            claim.victims.retain(|v| *v != id);
        }
        self.cluster.commit();
        self.needs_full = true;
    }

    /// The job's state, if the scheduler has it.
    pub fn status(&self, id: JobId) -> Option<JobStatus> {
        let job = self.jobs.get(&id)?;
        Some(match &job.phase {
            Phase::Pending => JobStatus::Pending {
                reason: job.reason.clone(),
            },
            Phase::Running(run) => JobStatus::Running {
                allocation: self.allocation(id, run),
            },
            Phase::Preempting { run, by, deadline } => JobStatus::Preempting {
                allocation: self.allocation(id, run),
                by: *by,
                deadline: *deadline,
            },
        })
    }

    /// The public form of a run's parts.
    pub(crate) fn allocation(&self, id: JobId, run: &Run) -> Allocation {
        Allocation {
            job: id,
            model: run.model,
            replicas: run
                .parts
                .iter()
                .map(|p| ReplicaPlacement {
                    node: self.cluster.nodes[p.node as usize].id,
                    devices: match p.share {
                        Some((dev, _, _)) => vec![dev as u32],
                        None => bits(p.mask).collect(),
                    },
                    fraction_milli: p.share.map(|(_, milli, _)| milli),
                })
                .collect(),
            started: run.started,
        }
    }

    /// Number of pending jobs.
    pub fn pending_len(&self) -> usize {
        self.queue.len()
    }

    /// Number of running (and preempting) jobs.
    pub fn running_len(&self) -> usize {
        self.jobs.len() - self.queue.len()
    }

    /// Free devices of a model (healthy, schedulable, unallocated, not held).
    pub fn free_devices(&self, model: ModelId) -> u32 {
        self.cluster.model(model).map_or(0, |m| m.free)
    }

    /// Usable devices of every model, and how many are allocated (whole or shared).
    pub fn device_counts(&self) -> BTreeMap<ModelId, (u32, u32)> {
        let mut out: BTreeMap<ModelId, (u32, u32)> = BTreeMap::new();
        for n in &self.cluster.nodes {
            let e = out.entry(n.model).or_default();
            e.0 += n.usable().count_ones();
            e.1 += ((n.alloc | n.shared_mask()) & n.usable()).count_ones();
        }
        out
    }

    /// A tenant's weighted dominant share now.
    pub fn share(&self, tenant: TenantId) -> f64 {
        self.fair.share(tenant)
    }

    /// The reservations standing after the last full cycle.
    pub fn reservations(&self) -> Vec<ReservationView> {
        self.reservations
            .iter()
            .map(|r| ReservationView {
                job: r.job,
                start: r.start,
                devices: r
                    .parts
                    .iter()
                    .map(|p| {
                        (
                            self.cluster.nodes[p.node as usize].id,
                            bits(p.mask).collect(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    /// Why a job is pending, node by node: how many nodes each feasibility filter rules out.
    pub fn explain(&self, id: JobId) -> Option<Explanation> {
        let job = self.jobs.get(&id)?;
        let models: Vec<ModelId> = job.accepted.iter().map(|(m, _)| *m).collect();
        let r = &job.shape.request;
        let needs = JobNeeds {
            models: &models,
            per_replica: r.per_replica,
            fraction_milli: r.fraction.map(|f| f.milli),
            device_mem_mib: (job.spec.device_memory_gib * 1024.0).ceil() as u32,
            cpu: r.cpu,
            mem: r.mem,
            whole_nodes: r.whole_nodes,
        };
        Some(filter::explain(&needs, self.cluster.nodes.iter()))
    }
}
