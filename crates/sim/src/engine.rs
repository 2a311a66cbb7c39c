//! The discrete-event simulation around the scheduler core: arrivals, scheduling cycles, starts, completions,
//! preemptions (checkpoint, exit, requeue, restart). The core is the very `wanka_sched::Scheduler` the server
//! runs; the engine only plays the world around it. Same inputs, same outcome: no clock, no randomness.

use crate::workload::{SimJob, Speed, Workload};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use wanka_model::{
    Catalog, JobId, ModelId, NodeSpec, Performance, Span, TenantId, Time, UsageKind,
};
use wanka_sched::{Config, CoreError, Decision, PreemptCause, Scheduler};

/// How one policy is simulated.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Policy name for the report.
    pub name: String,
    /// The scheduler configuration.
    pub config: Config,
    /// Scheduling cadence: a cycle at most every `cycle` (0: after every batch of simultaneous events).
    pub cycle: Span,
    /// Time a preempted job takes to write its checkpoint and exit.
    pub checkpoint: Span,
    /// Time a restarted job takes before it makes progress again (loading its checkpoint).
    pub restart: Span,
    /// How run time depends on the model.
    pub speed: Speed,
}

/// What happened to one job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobOutcome {
    /// Arrival.
    pub arrival: Time,
    /// First start.
    pub first_start: Option<Time>,
    /// Completion.
    pub end: Option<Time>,
    /// Devices held (thousandths, so that a fractional job counts for its share).
    pub device_milli: u64,
    /// Seconds it held devices in all.
    pub held_s: f64,
    /// Times it was preempted.
    pub preemptions: u32,
    /// Owner.
    pub tenant: TenantId,
    /// Model of its last start.
    pub model: Option<ModelId>,
}

/// The cluster after a scheduling cycle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// When.
    pub t: Time,
    /// Allocated devices, thousandths.
    pub alloc_milli: u64,
    /// Normalized work being done: normalized device-seconds per second.
    pub goodput: f64,
    /// Free devices while jobs wait (thousandths): capacity no pending job could use.
    pub idle_while_waiting_milli: u64,
    /// Pending jobs.
    pub pending: u32,
    /// Devices the pending jobs ask for, thousandths.
    pub demand_milli: u64,
}

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Policy name.
    pub name: String,
    /// Per job, by job id.
    pub jobs: Vec<JobOutcome>,
    /// One sample per cycle.
    pub samples: Vec<Sample>,
    /// Devices in the cluster, thousandths.
    pub capacity_milli: u64,
    /// Normalized capacity: devices × peak rate, normalized device-seconds per second.
    pub capacity_nds: f64,
    /// Scheduling cycles run (and how many were full).
    pub cycles: (u64, u64),
    /// Per model (by name): the mean share of its devices allocated while the cluster was saturated (as
    /// [`crate::report::PolicyReport::allocation_saturated`] counts it), to show where idle capacity sat.
    pub saturated_by_model: BTreeMap<String, f64>,
    /// Device-seconds spent checkpointing and restarting because of preemption.
    pub lost_device_s: f64,
    /// Device-seconds held, by whose capacity the runs used.
    pub device_s_by_kind: BTreeMap<UsageKind, f64>,
    /// For each start within a lease that had to wait: seconds since the lease had room for the job.
    pub lease_waits: Vec<f64>,
    /// Borrowed runs reclaimed by their lessee.
    pub reclaims: u64,
    /// Runs moved to let a blocked job find its devices together.
    pub repacks: u64,
    /// The reclaim grace, when the workload had leases.
    pub lease_grace: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A preempted job has checkpointed and exits.
    Leave,
    /// A job completes (valid only if its generation still matches).
    Complete(u32),
}

/// Running state of one job.
#[derive(Clone, Debug, Default)]
struct Live {
    /// Work left, in seconds at the speed of the job's base model.
    remaining: f64,
    /// When progress (re)started, and at what rate (work seconds per second).
    progress_from: Option<(Time, f64)>,
    /// Normalized device-seconds per second while running.
    goodput: f64,
    /// Bumped on preemption so that a stale completion event is ignored.
    generation: u32,
    /// Has run before (a restart pays the restart overhead).
    restarted: bool,
    held_since: Option<Time>,
    /// Whose capacity the current run uses.
    kind: UsageKind,
}

/// Devices allocated now (thousandths), in all and per model.
#[derive(Default)]
struct Allocated {
    milli: u64,
    by_model: BTreeMap<ModelId, u64>,
}

impl Allocated {
    fn take(&mut self, model: ModelId, milli: u64) {
        self.milli += milli;
        *self.by_model.entry(model).or_default() += milli;
    }

    fn release(&mut self, model: Option<ModelId>, milli: u64) {
        self.milli -= milli;
        if let Some(m) = model {
            *self.by_model.entry(m).or_default() -= milli;
        }
    }
}

/// Runs one policy over the workload. `progress(done, total)` is called now and then.
pub fn run(
    nodes: &[NodeSpec],
    workload: &Workload,
    catalog: &Catalog,
    perf: &Performance,
    cfg: &SimConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Outcome, CoreError> {
    let mut s = Scheduler::new(cfg.config.clone(), catalog.clone(), perf.clone())?;
    for t in &workload.tenants {
        s.upsert_tenant(t.clone());
    }
    for n in nodes {
        s.add_node(n.clone())?;
    }
    for l in &workload.leases {
        s.admit_lease(l.clone())?;
    }
    let capacity_milli: u64 = nodes.iter().map(|n| n.devices as u64 * 1000).sum();
    let mut installed: BTreeMap<ModelId, u64> = BTreeMap::new();
    for n in nodes {
        *installed.entry(n.model).or_default() += u64::from(n.devices) * 1000;
    }
    // While saturated: allocated thousandths per model integrated over time, and the time itself.
    let mut saturated_ms: BTreeMap<ModelId, f64> = BTreeMap::new();
    let mut saturated_s = 0.0f64;
    let mut last_saturated: Option<(Time, BTreeMap<ModelId, u64>)> = None;
    let capacity_nds: f64 = nodes
        .iter()
        .map(|n| n.devices as f64 * perf.peak_rate(n.model))
        .sum();
    let jobs = &workload.jobs;
    let mut live: Vec<Live> = jobs
        .iter()
        .map(|j| Live {
            remaining: j.work,
            ..Live::default()
        })
        .collect();
    let mut out: Vec<JobOutcome> = jobs
        .iter()
        .map(|j| JobOutcome {
            arrival: j.spec.submitted,
            tenant: j.spec.tenant,
            ..JobOutcome::default()
        })
        .collect();
    let mut heap: BinaryHeap<Reverse<(Time, Kind, u64)>> = BinaryHeap::new();
    let mut next_arrival = 0usize;
    let mut next_cycle: Option<Time> = None;
    let mut samples = Vec::new();
    let (mut cycles, mut full_cycles) = (0u64, 0u64);
    let (mut alloc, mut goodput, mut lost) = (Allocated::default(), 0.0f64, 0.0f64);
    let mut by_kind: BTreeMap<UsageKind, f64> = BTreeMap::new();
    // Devices asked for by the jobs waiting: a job's whole request from arrival (or requeue) to start.
    let asks = |j: &SimJob| {
        j.spec
            .fraction_milli
            .map_or(u64::from(j.spec.total_devices()) * 1000, u64::from)
    };
    let mut demand = 0u64;
    let (mut lease_waits, mut reclaims, mut repacks) = (Vec::new(), 0u64, 0u64);
    let mut done = 0usize;
    let rate_on = |job: &SimJob, model: ModelId| match cfg.speed {
        Speed::Uniform => 1.0,
        Speed::Normalized => {
            let class = job.spec.workload.as_deref();
            perf.rate(class, model) / perf.rate(class, job.base)
        }
    };
    let mut release =
        |o: &mut JobOutcome, l: &mut Live, t: Time, alloc: &mut Allocated, good: &mut f64| {
            alloc.release(o.model, o.device_milli);
            *good -= l.goodput;
            if let Some(since) = l.held_since.take() {
                let held = (t - since).as_secs_f64();
                o.held_s += held;
                *by_kind.entry(l.kind).or_default() += held * o.device_milli as f64 / 1000.0;
            }
        };

    loop {
        let t = [
            heap.peek().map(|Reverse((t, _, _))| *t),
            jobs.get(next_arrival).map(|j| j.spec.submitted),
            next_cycle,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(t) = t else { break };
        let mut dirty = false;
        while let Some(&Reverse((at, kind, id))) = heap.peek() {
            if at != t {
                break;
            }
            heap.pop();
            let i = id as usize;
            match kind {
                Kind::Complete(generation) if generation == live[i].generation => {
                    s.finished(JobId(id))?;
                    release(&mut out[i], &mut live[i], t, &mut alloc, &mut goodput);
                    out[i].end = Some(t);
                    done += 1;
                    dirty = true;
                }
                Kind::Complete(_) => {}
                Kind::Leave => {
                    s.requeue(JobId(id))?;
                    demand += asks(&jobs[i]);
                    release(&mut out[i], &mut live[i], t, &mut alloc, &mut goodput);
                    dirty = true;
                }
            }
        }
        while let Some(j) = jobs.get(next_arrival).filter(|j| j.spec.submitted == t) {
            s.submit(j.spec.clone())?;
            demand += asks(j);
            next_arrival += 1;
            dirty = true;
        }
        if dirty && next_cycle.is_none() {
            let step = cfg.cycle.0.max(1);
            next_cycle = Some(if cfg.cycle.0 == 0 {
                t
            } else {
                Time((t.0 + step - 1) / step * step)
            });
        }
        if next_cycle != Some(t) {
            continue;
        }
        next_cycle = None;
        let plan = s.schedule(t);
        cycles += 1;
        full_cycles += u64::from(plan.stats.full);
        for d in plan.decisions {
            match d {
                Decision::Start {
                    job,
                    allocation,
                    usage,
                    lease_wait,
                    ..
                } => {
                    let i = job.0 as usize;
                    let (l, o, sim) = (&mut live[i], &mut out[i], &jobs[i]);
                    l.kind = usage;
                    demand -= asks(sim);
                    lease_waits.extend(lease_wait.map(Span::as_secs_f64));
                    let rate = rate_on(sim, allocation.model);
                    let begin = if l.restarted { t + cfg.restart } else { t };
                    if l.restarted {
                        lost +=
                            cfg.restart.as_secs_f64() * allocation.device_milli() as f64 / 1000.0;
                    }
                    l.progress_from = Some((begin, rate));
                    l.restarted = true;
                    l.held_since = Some(t);
                    o.first_start.get_or_insert(t);
                    o.model = Some(allocation.model);
                    o.device_milli = allocation.device_milli();
                    let class = sim.spec.workload.as_deref();
                    l.goodput = o.device_milli as f64 / 1000.0 * perf.rate(class, allocation.model);
                    alloc.take(allocation.model, o.device_milli);
                    goodput += l.goodput;
                    let run = Span::from_secs_f64(l.remaining / rate).max(Span(1));
                    heap.push(Reverse((begin + run, Kind::Complete(l.generation), job.0)));
                }
                Decision::Preempt {
                    job,
                    deadline,
                    cause,
                    ..
                } => {
                    reclaims += u64::from(cause == PreemptCause::Reclaim);
                    repacks += u64::from(cause == PreemptCause::Repack);
                    let i = job.0 as usize;
                    let l = &mut live[i];
                    if let Some((from, rate)) = l.progress_from.take() {
                        l.remaining =
                            (l.remaining - (t - from).as_secs_f64().max(0.0) * rate).max(0.0);
                    }
                    l.generation += 1;
                    out[i].preemptions += 1;
                    let leave = (t + cfg.checkpoint).min(deadline);
                    lost += (leave - t).as_secs_f64() * out[i].device_milli as f64 / 1000.0;
                    heap.push(Reverse((leave, Kind::Leave, job.0)));
                }
            }
        }
        let pending = s.pending_len() as u32;
        if let Some((since, alloc)) = last_saturated.take() {
            let dt = (t - since).as_secs_f64();
            saturated_s += dt;
            for (m, a) in alloc {
                *saturated_ms.entry(m).or_default() += a as f64 * dt;
            }
        }
        if pending > 0 && demand >= capacity_milli - alloc.milli {
            last_saturated = Some((t, alloc.by_model.clone()));
        }
        samples.push(Sample {
            t,
            alloc_milli: alloc.milli,
            goodput,
            idle_while_waiting_milli: if pending > 0 {
                capacity_milli - alloc.milli
            } else {
                0
            },
            pending,
            demand_milli: demand,
        });
        if cycles.is_multiple_of(1024) {
            progress(done, jobs.len());
        }
    }
    progress(done, jobs.len());
    Ok(Outcome {
        name: cfg.name.clone(),
        jobs: out,
        samples,
        capacity_milli,
        capacity_nds,
        cycles: (cycles, full_cycles),
        lost_device_s: lost,
        device_s_by_kind: by_kind,
        lease_waits,
        reclaims,
        repacks,
        lease_grace: (!workload.leases.is_empty()).then_some(cfg.config.leases.reclaim_grace),
        saturated_by_model: installed
            .iter()
            .map(|(m, cap)| {
                let held = saturated_ms.get(m).copied().unwrap_or(0.0);
                let share = if saturated_s > 0.0 {
                    held / (*cap as f64 * saturated_s)
                } else {
                    0.0
                };
                (catalog.model(*m).name.clone(), share)
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wanka_model::{JobSpec, NodeId, Tenant, ThroughputMatrix, Topology};

    fn setup() -> (Catalog, Performance, Vec<NodeSpec>) {
        let c = Catalog::builtin();
        let p = Performance::new(&c, ThroughputMatrix::new()).unwrap();
        let mk = |id: u32, model: &str| NodeSpec {
            id: NodeId(id),
            name: format!("n{id}"),
            model: c.lookup(model).unwrap(),
            devices: 8,
            domains: vec![],
            cpu_milli: 1 << 20,
            memory_mib: 1 << 30,
            topology: Topology {
                spine: "s".into(),
                leaf: "l".into(),
            },
        };
        let nodes = vec![mk(0, "A100-80G"), mk(1, "T4")];
        (c, p, nodes)
    }

    fn workload(c: &Catalog, jobs: &[(i64, u32, &str, f64)]) -> Workload {
        let reference = c.lookup("A100-80G").unwrap();
        Workload {
            jobs: jobs
                .iter()
                .enumerate()
                .map(|(i, (arrive, gpus, model, work))| {
                    let mut spec = JobSpec::gang(JobId(i as u64), TenantId(0), 1, *gpus);
                    spec.submitted = Time::from_secs(*arrive);
                    spec.models = vec![c.lookup(model).unwrap()];
                    SimJob {
                        spec,
                        work: *work,
                        base: reference,
                    }
                })
                .collect(),
            tenants: vec![Tenant::new(TenantId(0), "t")],
            notes: vec![],
            leases: vec![],
        }
    }

    fn cfg(speed: Speed) -> SimConfig {
        SimConfig {
            name: "wanka".into(),
            config: Config::wanka(),
            cycle: Span(0),
            checkpoint: Span::from_secs(30),
            restart: Span::from_secs(60),
            speed,
        }
    }

    #[test]
    fn run_time_follows_the_model_a_job_gets() {
        let (c, p, nodes) = setup();
        // 100 s of A100 work: 100 s on the A100, 100 × 312/65 = 480 s on a T4.
        let w = workload(&c, &[(0, 8, "A100-80G", 100.0), (0, 8, "T4", 100.0)]);
        let o = run(&nodes, &w, &c, &p, &cfg(Speed::Normalized), &mut |_, _| {}).unwrap();
        assert_eq!(o.jobs[0].end, Some(Time::from_secs(100)));
        assert_eq!(o.jobs[1].end, Some(Time::from_secs(480)));
        let o = run(&nodes, &w, &c, &p, &cfg(Speed::Uniform), &mut |_, _| {}).unwrap();
        assert_eq!(o.jobs[1].end, Some(Time::from_secs(100)));
    }

    #[test]
    fn queued_jobs_start_when_devices_free_up() {
        let (c, p, nodes) = setup();
        let w = workload(&c, &[(0, 6, "A100-80G", 50.0), (10, 4, "A100-80G", 20.0)]);
        let o = run(&nodes, &w, &c, &p, &cfg(Speed::Normalized), &mut |_, _| {}).unwrap();
        assert_eq!(o.jobs[1].first_start, Some(Time::from_secs(50)));
        assert_eq!(o.jobs[1].end, Some(Time::from_secs(70)));
        assert!(
            o.samples
                .iter()
                .any(|s| s.pending == 1 && s.idle_while_waiting_milli == 10_000)
        );
    }

    #[test]
    fn a_preempted_job_keeps_its_progress_and_pays_checkpoint_and_restart() {
        let (c, p, nodes) = setup();
        let mut w = workload(
            &c,
            &[(0, 8, "A100-80G", 1000.0), (100, 8, "A100-80G", 10.0)],
        );
        w.jobs[0].spec.class = wanka_model::PriorityClass::Preemptible;
        w.jobs[1].spec.class = wanka_model::PriorityClass::Guaranteed;
        let o = run(&nodes, &w, &c, &p, &cfg(Speed::Normalized), &mut |_, _| {}).unwrap();
        // Preempted at 100, leaves at 130 (checkpoint); the guaranteed job runs 130..140; the victim restarts
        // at 140, loads for 60 s and does its remaining 900 s: done at 1100.
        assert_eq!(o.jobs[0].preemptions, 1);
        assert_eq!(o.jobs[1].first_start, Some(Time::from_secs(130)));
        assert_eq!(o.jobs[0].end, Some(Time::from_secs(1100)));
        assert!((o.lost_device_s - (30.0 * 8.0 + 60.0 * 8.0)).abs() < 1e-6);
    }
}
