//! Correctness as properties: random clusters, random jobs and random event streams, checked after every
//! cycle by an independent reading of the scheduler's public output.

mod common;

use common::{model, nodes, scheduler};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use wanka_model::{
    Catalog, JobId, JobSpec, Lease, LeaseId, NodeId, NodeSpec, PriorityClass, Span, Stack, Tenant,
    TenantId, Time, Within,
};
use wanka_sched::{Config, Decision, Plan, Scheduler};

#[derive(Clone, Debug)]
struct JobGen {
    replicas: u32,
    per_replica: u32,
    fraction: Option<u32>,
    class: PriorityClass,
    tenant: u32,
    estimate: Option<i64>,
    models: Vec<usize>,
    cann: bool,
    memory_gib: f64,
    cpu: u64,
    whole: bool,
}

#[derive(Clone, Debug)]
enum Step {
    Submit(JobGen),
    Cycle {
        advance: i64,
        full: bool,
    },
    Finish(usize),
    Requeue(usize),
    Health {
        node: usize,
        dev: u32,
        healthy: bool,
    },
    Cordon {
        node: usize,
        on: bool,
    },
}

const MODELS: [&str; 4] = ["H100", "A100-80G", "T4", "910B3"];

fn job_gen() -> impl Strategy<Value = JobGen> {
    (
        (
            1u32..=3,
            prop::sample::select(vec![1u32, 2, 4, 8]),
            prop::option::weighted(0.15, 100u32..=900),
        ),
        (0u8..3, 0u32..4, prop::option::weighted(0.7, 1i64..2000)),
        (
            prop::collection::vec(0usize..4, 0..3),
            any::<bool>(),
            prop::sample::select(vec![0.0, 16.0, 40.0, 70.0]),
        ),
        (
            prop::sample::select(vec![0u64, 8_000, 64_000]),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
        ),
    )
        .prop_map(
            |(
                (replicas, per_replica, fraction),
                (class, tenant, estimate),
                (models, cann, mem),
                (cpu, whole, host_only),
            )| {
                let fraction = fraction.filter(|_| replicas == 1);
                // A host-only job (no accelerator) needs some CPU.
                let host_only = host_only && fraction.is_none() && cpu > 0;
                JobGen {
                    replicas,
                    per_replica: match (fraction, host_only) {
                        (Some(_), _) => 1,
                        (None, true) => 0,
                        (None, false) => per_replica,
                    },
                    fraction,
                    class: [
                        PriorityClass::Preemptible,
                        PriorityClass::Standard,
                        PriorityClass::Guaranteed,
                    ][class as usize],
                    tenant,
                    estimate,
                    models,
                    cann,
                    memory_gib: mem,
                    cpu,
                    whole: whole && !host_only,
                }
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => job_gen().prop_map(Step::Submit),
        3 => (1i64..600, prop::bool::weighted(0.3)).prop_map(|(advance, full)| Step::Cycle { advance, full }),
        2 => (0usize..1000).prop_map(Step::Finish),
        1 => (0usize..1000).prop_map(Step::Requeue),
        1 => (0usize..1000, 0u32..8, any::<bool>()).prop_map(|(node, dev, healthy)| Step::Health { node, dev, healthy }),
        1 => (0usize..1000, any::<bool>()).prop_map(|(node, on)| Step::Cordon { node, on }),
    ]
}

/// Streams that fragment a cluster: many small standard jobs ending at random, a few large ones.
fn packing_step() -> impl Strategy<Value = Step> {
    let small = (
        1u32..=2,
        prop::sample::select(vec![1u32, 1, 1, 1, 2, 4, 8, 8]),
        0u32..4,
    )
        .prop_map(|(replicas, per_replica, tenant)| JobGen {
            replicas,
            per_replica,
            fraction: None,
            class: PriorityClass::Standard,
            tenant,
            estimate: None,
            models: Vec::new(),
            cann: false,
            memory_gib: 0.0,
            cpu: 0,
            whole: false,
        });
    prop_oneof![
        6 => small.prop_map(Step::Submit),
        3 => (30i64..400, prop::bool::weighted(0.5)).prop_map(|(advance, full)| Step::Cycle { advance, full }),
        3 => (0usize..1000).prop_map(Step::Finish),
        1 => (0usize..1000).prop_map(Step::Requeue),
    ]
}

fn cluster() -> impl Strategy<Value = Vec<NodeSpec>> {
    prop::collection::vec(
        (
            0usize..4,
            1u32..=3,
            1u32..=3,
            prop::sample::select(vec![2u32, 4, 8]),
        ),
        1..=3,
    )
    .prop_map(|groups| {
        let mut all = Vec::new();
        for (m, leaves, per_leaf, devices) in groups {
            let first_id = all.len() as u32;
            let first_leaf = first_id; // distinct leaves per group
            all.extend(nodes(
                MODELS[m], leaves, per_leaf, devices, first_id, first_leaf,
            ));
        }
        all
    })
}

/// The driver's own record of the world, kept apart from the scheduler's to check it.
struct World {
    s: Scheduler,
    now: Time,
    nodes: HashMap<NodeId, NodeSpec>,
    unhealthy: BTreeSet<(NodeId, u32)>,
    cordoned: BTreeSet<NodeId>,
    specs: HashMap<JobId, JobSpec>,
    next_id: u64,
    plans: Vec<Plan>,
}

fn spec_of(g: &JobGen, id: u64, now: Time) -> JobSpec {
    let mut j = JobSpec::gang(JobId(id), TenantId(g.tenant), g.replicas, g.per_replica);
    j.fraction_milli = g.fraction;
    j.class = g.class;
    j.estimated_runtime = g.estimate.map(Span::from_secs);
    j.models = g.models.iter().map(|&i| model(MODELS[i])).collect();
    if g.cann {
        j.stacks = vec![Stack::Cann];
    }
    j.device_memory_gib = g.memory_gib;
    j.cpu_milli = g.cpu;
    j.whole_nodes = g.whole && g.fraction.is_none();
    j.submitted = now;
    j
}

impl World {
    fn new(config: Config, nodes: Vec<NodeSpec>) -> World {
        let mut s = scheduler(config, nodes.clone());
        s.upsert_tenant(Tenant {
            quota_devices: Some(12),
            ..Tenant::new(TenantId(3), "capped")
        });
        World {
            s,
            now: Time(0),
            nodes: nodes.into_iter().map(|n| (n.id, n)).collect(),
            unhealthy: BTreeSet::new(),
            cordoned: BTreeSet::new(),
            specs: HashMap::new(),
            next_id: 1,
            plans: Vec::new(),
        }
    }

    /// Tenants 0 and 1 each lease a third of every model's devices for the whole run.
    fn with_leases(mut self) -> World {
        let mut per_model: BTreeMap<wanka_model::ModelId, u32> = BTreeMap::new();
        for n in self.nodes.values() {
            *per_model.entry(n.model).or_default() += n.devices;
        }
        let mut id = 0;
        for (m, devices) in per_model {
            for tenant in [0, 1] {
                id += 1;
                self.s
                    .admit_lease(Lease {
                        id: LeaseId(id),
                        tenant: TenantId(tenant),
                        model: m,
                        devices: (devices / 3).max(1),
                        start: Time(0),
                        end: Time::NEVER,
                        within: Within::Anywhere,
                        domain: None,
                    })
                    .unwrap();
            }
        }
        self
    }

    fn running(&self) -> Vec<JobId> {
        self.s
            .snapshot(self.now)
            .running
            .iter()
            .map(|r| r.spec.id)
            .collect()
    }

    fn node_at(&self, i: usize) -> NodeId {
        let mut ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        ids.sort();
        ids[i % ids.len()]
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Submit(g) => {
                let spec = spec_of(g, self.next_id, self.now);
                self.next_id += 1;
                self.specs.insert(spec.id, spec.clone());
                self.s.submit(spec).unwrap();
            }
            Step::Cycle { advance, full } => {
                self.now = self.now + Span::from_secs(*advance);
                let plan = if *full {
                    self.s.schedule_full(self.now)
                } else {
                    self.s.schedule(self.now)
                };
                self.check_plan(&plan)?;
                self.check_state(plan.stats.full)?;
                self.plans.push(plan);
            }
            Step::Finish(i) | Step::Requeue(i) => {
                let running = self.running();
                if !running.is_empty() {
                    let id = running[i % running.len()];
                    match step {
                        Step::Finish(_) => self.s.finished(id).unwrap(),
                        _ => self.s.requeue(id).unwrap(),
                    }
                }
            }
            Step::Health { node, dev, healthy } => {
                let id = self.node_at(*node);
                let dev = dev % self.nodes[&id].devices;
                self.s.set_device_health(id, dev, *healthy).unwrap();
                if *healthy {
                    self.unhealthy.remove(&(id, dev));
                } else {
                    self.unhealthy.insert((id, dev));
                }
            }
            Step::Cordon { node, on } => {
                let id = self.node_at(*node);
                self.s.set_schedulable(id, !on).unwrap();
                if *on {
                    self.cordoned.insert(id);
                } else {
                    self.cordoned.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Every start is a whole gang, on one accepted model, on healthy devices of schedulable nodes.
    fn check_plan(&self, plan: &Plan) -> Result<(), TestCaseError> {
        let catalog = Catalog::builtin();
        for d in &plan.decisions {
            let Decision::Start {
                job, allocation, ..
            } = d
            else {
                continue;
            };
            let spec = &self.specs[job];
            let m = catalog.model(allocation.model);
            if spec.devices_per_replica > 0 {
                prop_assert!(
                    spec.accepts(allocation.model, m),
                    "job {job} placed on unaccepted {}",
                    m.name
                );
                prop_assert!(
                    m.memory_gib >= spec.device_memory_gib,
                    "job {job}: too little device memory"
                );
            }
            prop_assert_eq!(
                allocation.replicas.len() as u32,
                spec.replicas,
                "job {} started partly",
                job
            );
            for r in &allocation.replicas {
                let node = &self.nodes[&r.node];
                if spec.devices_per_replica > 0 {
                    prop_assert_eq!(node.model, allocation.model, "a gang mixes models");
                }
                prop_assert!(
                    !self.cordoned.contains(&r.node),
                    "job {} on cordoned node",
                    job
                );
                let want = if spec.whole_nodes {
                    node.devices
                } else {
                    spec.devices_per_replica
                };
                prop_assert_eq!(r.devices.len() as u32, want, "job {} replica size", job);
                prop_assert_eq!(r.fraction_milli, spec.fraction_milli);
                for d in &r.devices {
                    prop_assert!(
                        !self.unhealthy.contains(&(r.node, *d)),
                        "job {} on unhealthy device",
                        job
                    );
                }
            }
        }
        Ok(())
    }

    /// No device, share or host is over-allocated; quotas hold; reserved devices are only occupied by jobs
    /// that will have left when the reservation starts.
    fn check_state(&self, full: bool) -> Result<(), TestCaseError> {
        let snap = self.s.snapshot(self.now);
        let mut whole: BTreeSet<(NodeId, u32)> = BTreeSet::new();
        let mut shared: BTreeMap<(NodeId, u32), u32> = BTreeMap::new();
        let mut cpu: BTreeMap<NodeId, u64> = BTreeMap::new();
        let mut per_tenant: BTreeMap<TenantId, u32> = BTreeMap::new();
        let mut ends: HashMap<(NodeId, u32), Vec<Time>> = HashMap::new();
        for r in &snap.running {
            // A preempted job leaves by its deadline or its own estimated end, whichever is first.
            let estimated = r
                .spec
                .estimated_runtime
                .map_or(Time::NEVER, |e| r.allocation.started + e);
            let end = r
                .preempting
                .map_or(estimated, |(_, deadline)| estimated.min(deadline));
            for rep in &r.allocation.replicas {
                *cpu.entry(rep.node).or_default() += r.spec.cpu_milli;
                *per_tenant.entry(r.spec.tenant).or_default() += rep.devices.len() as u32;
                for &d in &rep.devices {
                    ends.entry((rep.node, d)).or_default().push(end);
                    match rep.fraction_milli {
                        Some(milli) => *shared.entry((rep.node, d)).or_default() += milli,
                        None => prop_assert!(
                            whole.insert((rep.node, d)),
                            "device {:?}/{} allocated twice",
                            rep.node,
                            d
                        ),
                    }
                }
            }
        }
        for ((node, d), milli) in &shared {
            prop_assert!(
                *milli <= 1000,
                "device {node:?}/{d} shared beyond 1000 milli"
            );
            prop_assert!(
                !whole.contains(&(*node, *d)),
                "device {node:?}/{d} both whole and shared"
            );
        }
        for (node, used) in &cpu {
            prop_assert!(
                *used <= self.nodes[node].cpu_milli,
                "node {node:?} CPU over-allocated"
            );
        }
        prop_assert!(
            per_tenant.get(&TenantId(3)).copied().unwrap_or(0) <= 12,
            "quota of tenant 3 exceeded"
        );
        if full {
            for r in self.s.reservations() {
                for (node, devs) in &r.devices {
                    for d in devs {
                        for end in ends.get(&(*node, *d)).into_iter().flatten() {
                            prop_assert!(
                                *end <= r.start,
                                "device {node:?}/{d} reserved for job {} at {:?} is held until {end:?}",
                                r.job,
                                r.start
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn run(config: Config, nodes: &[NodeSpec], steps: &[Step]) -> Result<Vec<Plan>, TestCaseError> {
    run_in(World::new(config, nodes.to_vec()), steps)
}

fn run_in(mut w: World, steps: &[Step]) -> Result<Vec<Plan>, TestCaseError> {
    for s in steps {
        w.step(s)?;
    }
    w.step(&Step::Cycle {
        advance: 1,
        full: true,
    })?;
    Ok(w.plans)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_policy_keeps_the_invariants(nodes in cluster(), steps in prop::collection::vec(step(), 1..80), policy in 0usize..5) {
        let config = Config::preset(Config::PRESETS[policy]).unwrap();
        run(config, &nodes, &steps)?;
    }

    #[test]
    fn leases_lending_and_repacking_keep_the_invariants(steps in prop::collection::vec(packing_step(), 1..120)) {
        // Four 8-device nodes; runs may be moved a minute after they start, so that the streams repack often.
        let nodes = nodes("H100", 2, 2, 8, 0, 0);
        let mut config = Config::wanka();
        config.leases.repack_after = Some(Span::from_secs(60));
        let plans = run_in(World::new(config.clone(), nodes.clone()).with_leases(), &steps)?;
        prop_assert_eq!(plans, run_in(World::new(config, nodes).with_leases(), &steps)?);
    }

    #[test]
    fn the_same_input_gives_the_same_decisions(nodes in cluster(), steps in prop::collection::vec(step(), 1..60)) {
        let a = run(Config::wanka(), &nodes, &steps)?;
        let b = run(Config::wanka(), &nodes, &steps)?;
        prop_assert_eq!(a, b);
    }

    #[test]
    fn jobs_that_fit_an_empty_cluster_eventually_run(nodes in cluster(), jobs in prop::collection::vec(job_gen(), 1..20)) {
        // With every running job finishing each round, a job that fits the empty cluster must start: nothing
        // (reservations, claims, fair share) may starve it forever.
        let mut w = World::new(Config::wanka(), nodes);
        for g in &jobs {
            w.step(&Step::Submit(g.clone()))?;
        }
        for _ in 0..(jobs.len() * 3 + 3) {
            w.step(&Step::Cycle { advance: 10, full: false })?;
            for id in w.running() {
                w.s.finished(id).unwrap();
            }
        }
        let snap = w.s.snapshot(w.now);
        for p in &snap.pending {
            let status = w.s.status(p.id).unwrap();
            let wanka_sched::JobStatus::Pending { reason } = status else { unreachable!() };
            prop_assert!(
                matches!(reason, wanka_sched::PendingReason::ConstraintUnsatisfiable { .. } | wanka_sched::PendingReason::QuotaExceeded { .. }),
                "job {} still waits for {reason:?} in an idle cluster", p.id
            );
        }
    }
}
