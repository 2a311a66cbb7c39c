//! One scheduling cycle: the pipeline of stages, applied to each pending job in queue order.
//!
//! For each job: admission (quota, "can this ever fit"), model choice, placement on free capacity, backfill
//! onto reserved capacity it would vacate in time, preemption of preemptible work, and finally a
//! reservation (or a reason to wait). A full cycle walks the whole queue and rebuilds reservations; between
//! full cycles, an arrivals-only cycle places new jobs against the standing reservations, which is what
//! keeps one arrival cheap in a busy cluster with a long queue.

use crate::backfill::{self, Reservation, hold_free, unhold};
use crate::choice::{self, ModelOption};
use crate::cluster::{Mask, NodeIdx};
use crate::decision::{Decision, PendingReason, Plan, PreemptCause};
use crate::fair_share::Usage;
use crate::fxhash::{FxHashMap, FxHashSet};
use crate::lease::placed_devices;
use crate::placement::{Part, Placer, Request};
use crate::preempt::{self, Candidate, Claim};
use crate::scheduler::{Job, Phase, Run, Scheduler};
use std::collections::BTreeSet;
use wanka_model::{JobId, ModelId, PriorityClass, TenantId, Time, UsageKind};

/// What a placement pass keeps out of reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Fence {
    /// Everything but the tenant's own lease pools.
    OwnPools,
    /// Every lease pool (now or later).
    AllPools,
    /// Nothing.
    Nothing,
}

/// Shapes that already failed a stage in this cycle: free capacity only shrinks during a cycle, so a later
/// job of the same shape fails the same way.
#[derive(Default)]
struct Failures {
    plain: FxHashSet<u32>,
    unreserved: FxHashSet<u32>,
    preempt: FxHashSet<u32>,
    /// Shapes that found no repacking: free capacity only shrinks during a cycle.
    repack: FxHashSet<u32>,
    /// Shapes whose reclaim of borrowed devices failed in this tenant's pools: later ones fail too (victims
    /// only leave during a cycle by being claimed).
    reclaim: FxHashSet<(u32, TenantId)>,
    /// Lease placement passes that found no room: (shape, the tenant for its own pools, pass).
    fenced: FxHashSet<(u32, Option<TenantId>, Fence)>,
    /// Shapes that found no reservation: later ones see more capacity promised, so they find none either.
    reserve: FxHashSet<u32>,
    /// Shapes found to fit once holds are lifted, with the number of starts in the cycle at that time (the
    /// answer stands until something else starts).
    unreserved_ok: FxHashMap<u32, u32>,
    /// The earliest estimated end with which a shape failed to backfill: a job of that shape ending no
    /// earlier may lift only fewer reservations, so it fails too.
    backfill: FxHashMap<u32, Time>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Started,
    /// Could not start for lack of devices (holds up a strict FIFO queue).
    Blocked,
    /// Not started for a reason of its own (quota, impossible request).
    Skipped,
}

fn parts_of(job: &Job) -> &[Part] {
    match &job.phase {
        Phase::Running(run) | Phase::Preempting { run, .. } => &run.parts,
        Phase::Pending => &[],
    }
}

/// The placement engine configured from the scheduler's fields (a free function so that borrowing it
/// leaves the cluster free to be changed).
fn placer_of<'a>(
    scorers: &'a [(Box<dyn crate::score::Scorer>, f64)],
    config: &crate::config::Config,
    profile: &'a crate::profile::Profile,
) -> Placer<'a> {
    Placer {
        scorers,
        topology_aware: config.placement.topology_aware,
        domain_fit: config.placement.domain_fit,
        profile,
    }
}

impl Scheduler {
    /// Runs a cycle: a full one when capacity was freed, the cluster changed, a reservation came due or the
    /// full-cycle interval passed; otherwise an arrivals-only one.
    pub fn schedule(&mut self, now: Time) -> Plan {
        let full = self.needs_full
            || self.config.stop_at_first_blocked
            || self
                .last_full
                .is_none_or(|t| now - t >= self.config.full_cycle_interval)
            || self
                .reservations
                .iter()
                .any(|r| self.last_full.is_some_and(|t| r.start > t) && r.start <= now)
            || self.lease_changed(now)
            // An arrival within its lease may need borrowers reclaimed, which only a full cycle does.
            || self
                .arrivals
                .iter()
                .any(|id| self.jobs.contains_key(id) && !self.lease_models(*id, now).is_empty());
        if full {
            self.schedule_full(now)
        } else {
            self.schedule_arrivals(now)
        }
    }

    /// Runs a full cycle over the whole queue, rebuilding reservations.
    pub fn schedule_full(&mut self, now: Time) -> Plan {
        self.refresh_pools(now);
        let mut plan = Plan::default();
        plan.stats.full = true;
        for r in std::mem::take(&mut self.reservations) {
            unhold(&mut self.cluster, &r.holds);
        }
        self.cluster.commit();
        let mut fails = Failures::default();
        let mut cursor = self.queue.cursor(|t| self.queue_share(t, now));
        while let Some(id) = self.queue.next(
            &mut cursor,
            |t| self.queue_share(t, now),
            |j| self.jobs[&j].spec.tenant,
        ) {
            plan.stats.considered += 1;
            let outcome = self.try_job(id, now, true, &mut fails, &mut plan);
            let blocked = outcome == Outcome::Blocked && self.config.stop_at_first_blocked;
            if blocked || (outcome == Outcome::Blocked && self.nothing_can_start()) {
                // The rest of the queue would be walked for nothing (or, in strict FIFO, must wait behind this
                // job); new arrivals get their reason now, the others keep theirs.
                let reason = if blocked {
                    PendingReason::Priority
                } else {
                    PendingReason::Resources {
                        estimated_start: None,
                    }
                };
                for id in std::mem::take(&mut self.arrivals) {
                    if self
                        .jobs
                        .get(&id)
                        .is_some_and(|j| j.reason == PendingReason::New)
                    {
                        self.set_reason(id, reason.clone());
                    }
                }
                break;
            }
        }
        self.arrivals.clear();
        self.needs_full = false;
        self.last_full = Some(now);
        self.finish(plan)
    }

    /// True when no pending job could start or change anything in the rest of this cycle: no free or
    /// shareable device, nothing held that backfill could use, nothing to preempt, no reservation left to
    /// make and no host-only job waiting.
    fn nothing_can_start(&self) -> bool {
        let no_devices = self.cluster.model_ids().all(|m| {
            let index = self.cluster.model(m).expect("listed model");
            index.free == 0 && index.shared.is_empty()
        });
        no_devices
            && self.host_only_pending == 0
            && self.reservations.iter().all(|r| r.holds.is_empty())
            && self.claims.values().all(|c| c.holds.is_empty())
            && (self.config.preemption.is_none() || self.preemptible.values().all(|n| *n == 0))
            && !self.kinds.any_borrowed()
            && self
                .config
                .backfill
                .as_ref()
                .is_none_or(|b| self.reservations.len() >= b.reservations)
    }

    /// Places only the jobs that arrived since the last cycle, in queue order, against standing reservations.
    pub fn schedule_arrivals(&mut self, now: Time) -> Plan {
        self.refresh_pools(now);
        let mut plan = Plan::default();
        let mut ids = std::mem::take(&mut self.arrivals);
        ids.retain(|id| {
            self.jobs
                .get(id)
                .is_some_and(|j| matches!(j.phase, Phase::Pending))
        });
        ids.sort_by_key(|id| self.queue.key(&self.jobs[id].spec));
        ids.dedup();
        let mut fails = Failures::default();
        for id in ids {
            plan.stats.considered += 1;
            self.try_job(id, now, false, &mut fails, &mut plan);
        }
        self.finish(plan)
    }

    fn finish(&mut self, mut plan: Plan) -> Plan {
        for id in std::mem::take(&mut self.changed) {
            if let Some(job) = self.jobs.get(&id)
                && matches!(job.phase, Phase::Pending)
            {
                plan.reasons.push((id, job.reason.clone()));
            }
        }
        plan
    }

    pub(crate) fn set_reason(&mut self, id: JobId, reason: PendingReason) {
        if let Some(job) = self.jobs.get_mut(&id)
            && job.reason != reason
        {
            job.reason = reason;
            self.changed.insert(id);
        }
    }

    /// The job's accepted models present in the cluster, in the order the model-choice rule gives.
    fn model_order(&self, job: &Job) -> Vec<ModelId> {
        let mut options: Vec<ModelOption> = job
            .accepted
            .iter()
            .filter_map(|&(model, rate)| {
                let index = self.cluster.model(model)?;
                Some(ModelOption {
                    model,
                    rate,
                    peak_rate: self.perf.peak_rate(model),
                    free: index.free,
                })
            })
            .collect();
        choice::order(self.config.model_choice, &mut options);
        options.into_iter().map(|o| o.model).collect()
    }

    /// Tries the models in order; the first that fits is taken (changes applied, not committed).
    fn place_any(&mut self, models: &[ModelId], req: &Request) -> Option<(ModelId, Vec<Part>)> {
        let placer = placer_of(&self.scorers, &self.config, &self.profile);
        if req.per_replica == 0 && req.fraction.is_none() {
            let parts = placer.place_host_only(&mut self.cluster, req)?;
            return Some((self.cluster.nodes[parts[0].node as usize].model, parts));
        }
        if self.config.placement.across_models {
            return placer.place_across(&mut self.cluster, models, req);
        }
        models
            .iter()
            .find_map(|&m| placer.place(&mut self.cluster, m, req).map(|p| (m, p)))
    }

    /// Why no cluster of the current shape could ever run the job, if that is so.
    fn unsatisfiable(&self, job: &Job) -> Option<String> {
        let r = &job.shape.request;
        let host_only = r.per_replica == 0 && r.fraction.is_none();
        // Replicas the installed nodes of `shapes` could hold if they were all free.
        let capacity = |shapes: &crate::scheduler::Installed| -> u64 {
            shapes
                .iter()
                .map(|(&(devices, cpu, mem), &nodes)| {
                    let devices = devices as u32;
                    let by_devices = match (host_only, r.fraction, r.whole_nodes) {
                        (true, _, _) => u32::MAX,
                        (false, Some(_), _) => u32::from(devices >= 1),
                        (false, None, true) => u32::from(devices >= r.per_replica),
                        (false, None, false) => devices / r.per_replica,
                    };
                    let by_host = |have: u64, need: u64| {
                        have.checked_div(need)
                            .map_or(u32::MAX, |n| n.min(u32::MAX as u64) as u32)
                    };
                    let each = by_devices.min(by_host(cpu, r.cpu)).min(by_host(mem, r.mem));
                    nodes as u64 * each as u64
                })
                .sum()
        };
        let too_small = || {
            format!(
                "the installed nodes of its accepted models cannot hold {} x {} devices{} with {} mCPU and {} MiB per replica",
                r.replicas,
                r.per_replica,
                if r.whole_nodes { " on whole nodes" } else { "" },
                r.cpu,
                r.mem
            )
        };
        if host_only {
            let cap: u64 = self.installed.values().map(capacity).sum();
            return (cap < r.replicas as u64).then(too_small);
        }
        if job.accepted.is_empty() {
            return Some(format!(
                "no catalog model matches its accepted models/stacks with {} GiB of device memory",
                job.spec.device_memory_gib
            ));
        }
        let present: Vec<ModelId> = job
            .accepted
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| self.installed.contains_key(m))
            .collect();
        if present.is_empty() {
            let names: Vec<&str> = job
                .accepted
                .iter()
                .take(4)
                .map(|(m, _)| self.catalog.model(*m).name.as_str())
                .collect();
            let memory = if job.spec.device_memory_gib > 0.0 {
                format!(" with {} GiB of device memory", job.spec.device_memory_gib)
            } else {
                String::new()
            };
            let more = if job.accepted.len() > names.len() {
                ", ..."
            } else {
                ""
            };
            return Some(format!(
                "none of the models it accepts{memory} is installed ({}{more})",
                names.join(", ")
            ));
        }
        let fits = present
            .iter()
            .any(|m| capacity(&self.installed[m]) >= r.replicas as u64);
        (!fits).then(too_small)
    }

    fn try_job(
        &mut self,
        id: JobId,
        now: Time,
        full: bool,
        fails: &mut Failures,
        plan: &mut Plan,
    ) -> Outcome {
        let Some(job) = self
            .jobs
            .get(&id)
            .filter(|j| matches!(j.phase, Phase::Pending))
        else {
            return Outcome::Skipped;
        };
        // A job no node could ever hold waits without cost until the cluster's shape changes.
        let version = self.installed_version;
        match job.checked {
            Some((v, true)) if v == version => return Outcome::Skipped,
            Some((v, false)) if v == version => {}
            _ => {
                let detail = self.unsatisfiable(job);
                self.jobs.get_mut(&id).expect("pending job").checked =
                    Some((version, detail.is_some()));
                if let Some(detail) = detail {
                    self.set_reason(id, PendingReason::ConstraintUnsatisfiable { detail });
                    return Outcome::Skipped;
                }
            }
        }
        let job = &self.jobs[&id];
        if let Err((used, quota)) = self
            .fair
            .check_quota(job.spec.tenant, job.spec.total_devices())
        {
            self.set_reason(id, PendingReason::QuotaExceeded { used, quota });
            return Outcome::Skipped;
        }
        let shape = job.shape_id;
        if !self.claims.contains_key(&id) && !self.lease_allows(id, now) {
            self.set_reason(id, PendingReason::LeaseLimit);
            return Outcome::Skipped;
        }
        // Accepted models on which the tenant's lease has room for the job: the same for every stage below.
        let lease_models = self.lease_models(id, now);
        let job = &self.jobs[&id];
        let (class, estimate) = (job.spec.class, job.spec.estimated_runtime);
        let models = self.model_order(job);
        let req = job.shape.request;

        // Placement on free capacity (a preemptor first gets back what was held for it).
        let claim_holds = self.claims.get(&id).map(|c| c.holds.clone());
        if claim_holds.is_some() || !fails.plain.contains(&shape) {
            let mark = self.cluster.mark();
            if let Some(holds) = &claim_holds {
                unhold(&mut self.cluster, holds);
            }
            match self.place_admitted(
                id,
                &models,
                &lease_models,
                &req,
                now,
                Some(&mut fails.fenced),
            ) {
                Ok(Some(placed)) => {
                    self.claims.remove(&id);
                    self.start(id, placed, now, false, plan);
                    return Outcome::Started;
                }
                Ok(None) => {}
                Err(reason) => {
                    self.cluster.rollback(mark);
                    return self.refuse(id, reason);
                }
            }
            self.cluster.rollback(mark);
            // With leases the answer depends on the tenant (its pools), not on the shape alone.
            if claim_holds.is_none() && self.leases.is_empty() {
                fails.plain.insert(shape);
            }
        }

        // Backfill onto reserved devices that this job vacates before the reservation starts.
        if let Some(est) = estimate
            && self.config.backfill.is_some()
            && fails
                .backfill
                .get(&shape)
                .is_none_or(|failed| now + est < *failed)
        {
            let end = now + est;
            let lift: Vec<usize> = (0..self.reservations.len())
                .filter(|&i| {
                    self.reservations[i].start >= end && !self.reservations[i].holds.is_empty()
                })
                .collect();
            if !lift.is_empty() {
                let mark = self.cluster.mark();
                for &i in &lift {
                    unhold(&mut self.cluster, &self.reservations[i].holds);
                }
                let placed = match self.place_admitted(id, &models, &lease_models, &req, now, None)
                {
                    Err(reason) => {
                        self.cluster.rollback(mark);
                        return self.refuse(id, reason);
                    }
                    Ok(placed) => placed,
                };
                if let Some(placed) = placed {
                    for &i in &lift {
                        let r = &mut self.reservations[i];
                        r.holds = hold_free(&mut self.cluster, &r.parts, true);
                    }
                    if let Some(claim) = self.claims.remove(&id) {
                        unhold(&mut self.cluster, &claim.holds);
                    }
                    self.start(id, placed, now, true, plan);
                    return Outcome::Started;
                }
                self.cluster.rollback(mark);
            }
            fails.backfill.insert(shape, end);
        }

        // Preemption: wait for an existing claim, or make one.
        if let Some(claim) = self.claims.get(&id) {
            if !claim.victims.is_empty() {
                let victims = claim.victims.len() as u32;
                self.set_reason(id, PendingReason::Preempting { victims });
                return Outcome::Blocked;
            }
            // Every victim left and it still does not fit (a device failed meanwhile): start over.
            let claim = self.claims.remove(&id).expect("just seen");
            unhold(&mut self.cluster, &claim.holds);
            self.cluster.commit();
        }
        // Within its lease: reclaim the borrowed devices (whatever their class) of its own pools. The lease owes
        // the job a start from the moment its pools, without borrowers, could hold it.
        let tenant = self.jobs[&id].spec.tenant;
        if !lease_models.is_empty() && !fails.reclaim.contains(&(shape, tenant)) {
            if let Some(victims) = self.preempt_for(
                id,
                class,
                &lease_models,
                &req,
                now,
                PreemptCause::Reclaim,
                plan,
            ) {
                self.note_lease_wait(id, true, now);
                self.set_reason(id, PendingReason::Preempting { victims });
                return Outcome::Blocked;
            }
            fails.reclaim.insert((shape, tenant));
        }
        self.note_lease_wait(id, false, now);
        // Preemption of lower classes; then repacking: when free devices are scattered where the job needs them
        // together, movable runs go to free devices held for them elsewhere (a full cycle only: it weighs the
        // whole queue's claims).
        let stages = [
            (
                PreemptCause::Priority,
                self.config.preemption.is_some() && class > PriorityClass::Preemptible,
                &mut fails.preempt,
            ),
            (
                PreemptCause::Repack,
                full && !self.leases.is_empty()
                    && self.config.leases.lending
                    && self.config.leases.repack_after.is_some()
                    && req.fraction.is_none(),
                &mut fails.repack,
            ),
        ];
        for (cause, enabled, failed) in stages {
            if !enabled || failed.contains(&shape) {
                continue;
            }
            if let Some(victims) = self.preempt_for(id, class, &models, &req, now, cause, plan) {
                self.set_reason(id, PendingReason::Preempting { victims });
                return Outcome::Blocked;
            }
            failed.insert(shape);
        }

        // Reservation for the blocked job, or the reason it waits.
        let room = self
            .config
            .backfill
            .as_ref()
            .is_some_and(|b| self.reservations.len() < b.reservations);
        if full
            && room
            && req.fraction.is_none()
            && !fails.reserve.contains(&shape)
            && let Some(start) = self.reserve(id, &models, &req, now).or_else(|| {
                fails.reserve.insert(shape);
                None
            })
        {
            plan.stats.reservations += 1;
            self.set_reason(
                id,
                PendingReason::Resources {
                    estimated_start: Some(start),
                },
            );
            return Outcome::Blocked;
        }
        let reason = if self.fits_unreserved(&models, &req, shape, fails, plan.stats.started) {
            PendingReason::Priority
        } else {
            PendingReason::Resources {
                estimated_start: None,
            }
        };
        self.set_reason(id, reason);
        Outcome::Blocked
    }

    /// Places the job where its quota and its tenant's leases let it run (`room`: the accepted models on which
    /// its lease has room for it). Without leases: anywhere. With them, in passes: a job within its lease first
    /// in its own pools, then anyone's job on capacity outside
    /// every pool (on demand), then, with lending on, anywhere (borrowed: idle capacity is used at once; a job
    /// within its lease that finds nothing free reclaims its pools after this). `Ok(None)`: nothing fits;
    /// `Err`: placements exist but every one was refused. On success the placement is taken in the cluster
    /// (not committed).
    fn place_admitted(
        &mut self,
        id: JobId,
        models: &[ModelId],
        room: &[ModelId],
        req: &Request,
        now: Time,
        mut tried: Option<&mut FxHashSet<(u32, Option<TenantId>, Fence)>>,
    ) -> Result<Option<(ModelId, Vec<Part>, UsageKind)>, PendingReason> {
        let host_only = req.per_replica == 0 && req.fraction.is_none();
        if self.leases.is_empty() || host_only {
            return self.place_fenced(id, models, req, now, None);
        }
        let own: Vec<ModelId> = models
            .iter()
            .copied()
            .filter(|m| room.contains(m))
            .collect();
        let mut passes: Vec<(Fence, &[ModelId])> =
            vec![(Fence::OwnPools, &own), (Fence::AllPools, models)];
        if self.config.leases.lending {
            passes.push((Fence::Nothing, models));
        }
        let mut refused = None;
        let (shape, tenant) = (self.jobs[&id].shape_id, self.jobs[&id].spec.tenant);
        for (fence, ms) in passes {
            // Free capacity only shrinks during a cycle: a pass that found no room for a shape finds none
            // later (its own-pool pass, for the same tenant).
            let key = (shape, (fence == Fence::OwnPools).then_some(tenant), fence);
            if ms.is_empty() || tried.as_ref().is_some_and(|t| t.contains(&key)) {
                continue;
            }
            match self.place_fenced(id, ms, req, now, Some(fence)) {
                Ok(Some(placed)) => return Ok(Some(placed)),
                Ok(None) => {
                    if let Some(t) = tried.as_mut() {
                        t.insert(key);
                    }
                }
                Err(reason) => refused = Some(reason),
            }
        }
        refused.map_or(Ok(None), Err)
    }

    /// One placement pass with the devices outside `fence` held: models whose placement is refused are left
    /// out and the others tried. On success the fence is lifted and the placement stays taken.
    fn place_fenced(
        &mut self,
        id: JobId,
        models: &[ModelId],
        req: &Request,
        now: Time,
        fence: Option<Fence>,
    ) -> Result<Option<(ModelId, Vec<Part>, UsageKind)>, PendingReason> {
        let outer = self.cluster.mark();
        let tenant = self.jobs[&id].spec.tenant;
        let holds = fence.map_or_else(Vec::new, |f| self.hold_fence(tenant, f));
        let (mut refused, mut left_out) = (None, Vec::new());
        loop {
            let candidates: Vec<ModelId> = models
                .iter()
                .copied()
                .filter(|m| !left_out.contains(m))
                .collect();
            // (A host-only job places with no model at all; only leaving models out can empty the list.)
            if candidates.is_empty() && !left_out.is_empty() {
                break;
            }
            let mark = self.cluster.mark();
            let Some((m, parts)) = self.place_any(&candidates, req) else {
                break;
            };
            match self.admit_run(id, m, &parts, now) {
                Ok(kind) => {
                    unhold(&mut self.cluster, &holds);
                    return Ok(Some((m, parts, kind)));
                }
                Err(reason) => {
                    self.cluster.rollback(mark);
                    refused = Some(reason);
                    if !candidates.contains(&m) {
                        break;
                    }
                    left_out.push(m);
                }
            }
        }
        self.cluster.rollback(outer);
        refused.map_or(Ok(None), Err)
    }

    /// Holds every takeable device outside what `fence` leaves to `tenant`; returns the holds.
    fn hold_fence(&mut self, tenant: TenantId, fence: Fence) -> Vec<crate::backfill::Hold> {
        let parts: Vec<Part> = (0..self.cluster.nodes.len() as NodeIdx)
            .filter_map(|n| {
                let node = &self.cluster.nodes[n as usize];
                // Only what a placement could take needs fencing (a full node needs nothing held).
                let takeable = node.free() | (node.shared_mask() & !node.held);
                if takeable == 0 {
                    return None;
                }
                let out = match fence {
                    Fence::OwnPools => node.all() & !self.pools.own(n, tenant),
                    Fence::AllPools => self.pools.any(n),
                    Fence::Nothing => 0,
                } & takeable;
                (out != 0).then_some(Part {
                    node: n,
                    mask: out,
                    share: None,
                    cpu: 0,
                    mem: 0,
                })
            })
            .collect();
        hold_free(&mut self.cluster, &parts, false)
    }

    /// Quota against the devices a placement really takes (a whole-node replica takes the whole node), then
    /// the capacity the run would use under the tenants' leases.
    fn admit_run(
        &self,
        id: JobId,
        model: ModelId,
        parts: &[Part],
        now: Time,
    ) -> Result<UsageKind, PendingReason> {
        let tenant = self.jobs[&id].spec.tenant;
        self.fair
            .check_quota(tenant, placed_devices(parts))
            .map_err(|(used, quota)| PendingReason::QuotaExceeded { used, quota })?;
        self.usage_kind(tenant, model, parts, now)
            .ok_or(PendingReason::LeaseLimit)
    }

    /// A placement found but refused (quota, leases): the job waits for a reason of its own.
    fn refuse(&mut self, id: JobId, reason: PendingReason) -> Outcome {
        self.set_reason(id, reason);
        Outcome::Skipped
    }

    /// Keeps the time since which a waiting job has been owed a start by its tenant's lease.
    fn note_lease_wait(&mut self, id: JobId, within: bool, now: Time) {
        let job = self.jobs.get_mut(&id).expect("pending job");
        job.lease_since = if within {
            Some(job.lease_since.unwrap_or(now))
        } else {
            None
        };
    }

    /// Whether the job would fit if nothing were held for others.
    fn fits_unreserved(
        &mut self,
        models: &[ModelId],
        req: &Request,
        shape: u32,
        fails: &mut Failures,
        started: u32,
    ) -> bool {
        if (self.reservations.is_empty() && self.claims.is_empty())
            || fails.unreserved.contains(&shape)
        {
            return false;
        }
        if fails.unreserved_ok.get(&shape) == Some(&started) {
            return true;
        }
        let mark = self.cluster.mark();
        for r in &self.reservations {
            unhold(&mut self.cluster, &r.holds);
        }
        for c in self.claims.values() {
            unhold(&mut self.cluster, &c.holds);
        }
        let fits = self.place_any(models, req).is_some();
        self.cluster.rollback(mark);
        if fits {
            fails.unreserved_ok.insert(shape, started);
        } else {
            fails.unreserved.insert(shape);
        }
        fits
    }

    /// Commits a placement (model, parts, whose capacity): the job runs.
    fn start(
        &mut self,
        id: JobId,
        (model, parts, kind): (ModelId, Vec<Part>, UsageKind),
        now: Time,
        backfilled: bool,
        plan: &mut Plan,
    ) {
        self.begin_run(id, model, parts, now, kind);
        let Phase::Running(run) = &self.jobs[&id].phase else {
            unreachable!("set by begin_run")
        };
        let allocation = self.allocation(id, run);
        plan.decisions.push(Decision::Start {
            job: id,
            allocation,
            backfilled,
            usage: kind,
            lease_wait: run.lease_wait,
        });
        plan.stats.started += 1;
        plan.stats.backfilled += u32::from(backfilled);
    }

    /// Books a pending job as running on `parts` (already taken in the cluster): usage, indexes, queue.
    pub(crate) fn begin_run(
        &mut self,
        id: JobId,
        model: ModelId,
        parts: Vec<Part>,
        started: Time,
        kind: UsageKind,
    ) {
        let job = self.jobs.get_mut(&id).expect("pending job exists");
        let rate = job
            .accepted
            .iter()
            .find(|(m, _)| *m == model)
            .map_or(0.0, |(_, r)| *r);
        let mem_gib = self.catalog.model(model).memory_gib;
        let mut usage = Usage::default();
        for p in &parts {
            match p.share {
                Some((_, milli, mem_mib)) => {
                    usage.devices += 1;
                    usage.compute += rate * milli as f64 / 1000.0;
                    usage.memory_gib += mem_mib as f64 / 1024.0;
                }
                None => {
                    let n = p.mask.count_ones();
                    usage.devices += n;
                    usage.compute += rate * n as f64;
                    usage.memory_gib += mem_gib * n as f64;
                }
            }
        }
        let ends = job
            .spec
            .estimated_runtime
            .map_or(Time::NEVER, |e| started + e);
        if job.spec.class == PriorityClass::Preemptible {
            *self.preemptible.entry(model).or_default() += usage.devices;
        }
        self.ends.entry(model).or_default().insert((ends, id));
        *self.kinds.count(job.spec.tenant, model, kind) += usage.devices;
        // Only a start within the lease shows how long the owner waited for its capacity.
        let lease_wait = job
            .lease_since
            .take()
            .filter(|_| kind == UsageKind::Leased)
            .map(|since| started - since);
        self.fair.charge(job.spec.tenant, usage);
        self.queue.remove(&job.spec);
        if job.shape.request.per_replica == 0 && job.shape.request.fraction.is_none() {
            self.host_only_pending -= 1;
        }
        job.phase = Phase::Running(Run {
            model,
            parts,
            started,
            ends,
            usage,
            kind,
            lease_wait,
        });
        self.changed.remove(&id);
        self.cluster.commit();
    }

    /// Turns a running job into one that is checkpointing to leave by `deadline` for `by`.
    pub(crate) fn mark_preempting(&mut self, victim: JobId, by: JobId, deadline: Time) {
        let job = self.jobs.get_mut(&victim).expect("victim exists");
        let Phase::Running(mut run) = std::mem::replace(&mut job.phase, Phase::Pending) else {
            unreachable!("victims are running")
        };
        // A victim leaves at its deadline or at its own estimated end, whichever comes first: reservations
        // that counted on the earlier end stay valid.
        let ends = run.ends.min(deadline);
        let set = self
            .ends
            .get_mut(&run.model)
            .expect("running model indexed");
        set.remove(&(run.ends, victim));
        set.insert((ends, victim));
        run.ends = ends;
        job.phase = Phase::Preempting { run, by, deadline };
    }

    /// Devices already promised to other reservations and claims, by node index.
    fn promised(&self) -> Vec<Mask> {
        let mut keep = vec![0; self.cluster.nodes.len()];
        let parts = self
            .reservations
            .iter()
            .flat_map(|r| &r.parts)
            .chain(self.claims.values().flat_map(|c| &c.parts));
        for p in parts {
            keep[p.node as usize] |= p.mask;
        }
        keep
    }

    /// Finds when and where the job could start as running jobs end at their estimates, and holds it.
    fn reserve(&mut self, id: JobId, models: &[ModelId], req: &Request, now: Time) -> Option<Time> {
        let keep = self.promised();
        let keep = |n: NodeIdx| keep[n as usize];
        let mut best: Option<(Time, ModelId, Vec<Part>)> = None;
        for &m in models {
            let Some(ends) = self.ends.get(&m) else {
                continue;
            };
            let jobs = &self.jobs;
            let bound = best.as_ref().map_or(Time::NEVER, |b| b.0);
            let releases = ends
                .iter()
                .take_while(|(t, _)| *t < bound)
                // A job past its estimate may end any moment: it counts as ending now.
                .map(|(t, j)| ((*t).max(now), parts_of(&jobs[j])));
            if let Some((start, parts)) =
                backfill::reservation(&self.cluster, m, req, releases, &keep)
            {
                best = Some((start, m, parts));
            }
        }
        let (start, model, parts) = best?;
        let holds = hold_free(&mut self.cluster, &parts, true);
        self.cluster.commit();
        self.reservations.push(Reservation {
            job: id,
            start,
            model,
            parts,
            holds,
        });
        Some(start)
    }

    /// Picks victims whose devices would let the job start, asks them to checkpoint and leave, and claims the
    /// room. Victims are, by `cause`: preemptible jobs of a lower class; borrowed runs of any class in the
    /// tenant's own pools (reclaim); borrowed runs (and, when configured, runs within their lease) that have run
    /// long enough and fit on free devices elsewhere, which are held for them (repack). Returns the number of
    /// victims.
    #[allow(clippy::too_many_arguments)]
    fn preempt_for(
        &mut self,
        id: JobId,
        class: PriorityClass,
        models: &[ModelId],
        req: &Request,
        now: Time,
        cause: PreemptCause,
        plan: &mut Plan,
    ) -> Option<u32> {
        let grace = match cause {
            PreemptCause::Priority => self.config.preemption.as_ref()?.grace,
            PreemptCause::Reclaim | PreemptCause::Repack => self.config.leases.reclaim_grace,
        };
        // Runs started after this are not moved: a run moved once settles before it can be moved again.
        let settled = match cause {
            PreemptCause::Repack => Time(now.0.saturating_sub(self.config.leases.repack_after?.0)),
            _ => Time::NEVER,
        };
        let need = req.devices();
        let promised = self.promised();
        // A reclaim frees devices of the tenant's own pools only.
        let tenant = self.jobs[&id].spec.tenant;
        let pools = &self.pools;
        let nodes = &self.cluster.nodes;
        let fenced: Vec<Mask> = (0..nodes.len() as NodeIdx)
            .map(|n| {
                let outside = if cause == PreemptCause::Reclaim {
                    nodes[n as usize].all() & !pools.own(n, tenant)
                } else {
                    0
                };
                promised[n as usize] | outside
            })
            .collect();
        let keep = |n: NodeIdx| fenced[n as usize];
        for &m in models {
            let worth = match cause {
                PreemptCause::Priority => {
                    let n = self.preemptible.get(&m).copied().unwrap_or(0);
                    n > 0 && self.free_devices(m) + n >= need
                }
                PreemptCause::Reclaim => {
                    let n = self.kinds.borrowed(m);
                    n > 0 && self.free_devices(m) + n >= need
                }
                // The moved runs go to free devices, so the free devices alone must add up to the job.
                PreemptCause::Repack => self.free_devices(m) >= need,
            };
            if !worth {
                continue;
            }
            let mut candidates: Vec<Candidate> = self
                .ends
                .get(&m)
                .into_iter()
                .flatten()
                .filter_map(|(_, j)| {
                    let job = &self.jobs[j];
                    match &job.phase {
                        Phase::Running(run)
                            if match cause {
                                PreemptCause::Priority => {
                                    job.spec.class == PriorityClass::Preemptible
                                        && job.spec.class < class
                                }
                                PreemptCause::Reclaim => run.kind == UsageKind::Borrowed,
                                PreemptCause::Repack => {
                                    run.started <= settled
                                        && (run.kind == UsageKind::Borrowed
                                            || run.kind == UsageKind::Leased
                                                && self.config.leases.repack_leased)
                                }
                            } =>
                        {
                            Some(Candidate {
                                started: run.started,
                                job: *j,
                            })
                        }
                        _ => None,
                    }
                })
                .collect();
            if cause == PreemptCause::Repack {
                self.order_for_repack(&mut candidates, req);
            } else {
                preempt::order(&mut candidates);
            }
            let jobs = &self.jobs;
            let releases = candidates
                .iter()
                .enumerate()
                .map(|(i, c)| (Time(i as i64), parts_of(&jobs[&c.job])));
            let bound = crate::placement::bound(&self.cluster, m, req);
            let placer = placer_of(&self.scorers, &self.config, &self.profile);
            let found = backfill::sweep(&mut self.cluster, releases, &keep, bound, |c| {
                placer.trial(c, m, req)
            });
            let Some((last, parts)) = found else { continue };
            let nodes: BTreeSet<NodeIdx> = parts.iter().map(|p| p.node).collect();
            let victims: Vec<JobId> = candidates[..=last.0 as usize]
                .iter()
                .filter(|c| {
                    parts_of(&self.jobs[&c.job])
                        .iter()
                        .any(|p| nodes.contains(&p.node))
                })
                .map(|c| c.job)
                .collect();
            if victims.is_empty() {
                continue;
            }
            let moves = if cause == PreemptCause::Repack {
                match self.destinations(&victims, &parts, need) {
                    Some(moves) => moves,
                    None => continue,
                }
            } else {
                Vec::new()
            };
            let deadline = now + grace;
            for v in &victims {
                self.mark_preempting(*v, id, deadline);
                plan.decisions.push(Decision::Preempt {
                    job: *v,
                    by: id,
                    checkpoint: true,
                    deadline,
                    cause,
                });
                plan.stats.preempted += 1;
            }
            let holds = hold_free(&mut self.cluster, &parts, false);
            for (victim, model, parts) in moves {
                let holds = hold_free(&mut self.cluster, &parts, false);
                self.claims.insert(
                    victim,
                    Claim {
                        model,
                        parts,
                        victims: Vec::new(),
                        holds,
                    },
                );
            }
            self.cluster.commit();
            let n = victims.len() as u32;
            self.claims.insert(
                id,
                Claim {
                    model: m,
                    parts,
                    victims,
                    holds,
                },
            );
            return Some(n);
        }
        None
    }

    /// Orders repack candidates node by node, the nodes that need the fewest devices moved to hold a replica
    /// first (nodes whose movable runs cannot make room last), the smallest runs of each node first: the
    /// sweep then stops at the cheapest room it finds.
    fn order_for_repack(&self, candidates: &mut [Candidate], req: &Request) {
        let nodes = &self.cluster.nodes;
        let first_node = |c: &Candidate| parts_of(&self.jobs[&c.job])[0].node;
        let mut movable: FxHashMap<NodeIdx, u32> = FxHashMap::default();
        for c in candidates.iter() {
            for p in parts_of(&self.jobs[&c.job]) {
                *movable.entry(p.node).or_default() += p.mask.count_ones();
            }
        }
        candidates.sort_by_cached_key(|c| {
            let n = first_node(c);
            let node = &nodes[n as usize];
            let replica = if req.whole_nodes {
                u32::from(node.devices)
            } else {
                req.per_replica.min(u32::from(node.devices))
            };
            let short = replica.saturating_sub(node.free().count_ones());
            (
                movable[&n] < short,
                short,
                n,
                placed_devices(parts_of(&self.jobs[&c.job])),
                c.job,
            )
        });
    }

    /// Where each victim of a repack would restart: free devices off the claimed `parts` and off every promise,
    /// one victim after another. `None` when one does not fit or the moves would be larger than the job (`need`
    /// devices) they make room for. The cluster is left as it was.
    fn destinations(
        &mut self,
        victims: &[JobId],
        parts: &[Part],
        need: u32,
    ) -> Option<Vec<(JobId, ModelId, Vec<Part>)>> {
        let moved: u32 = victims
            .iter()
            .map(|v| placed_devices(parts_of(&self.jobs[v])))
            .sum();
        if moved > need {
            return None;
        }
        let mark = self.cluster.mark();
        hold_free(&mut self.cluster, parts, false);
        let mut moves = Vec::with_capacity(victims.len());
        for v in victims {
            let job = &self.jobs[v];
            let Phase::Running(run) = &job.phase else {
                unreachable!("victims are running")
            };
            let (tenant, model, req) = (job.spec.tenant, run.model, job.shape.request);
            // A run within its lease moves within its tenant's pools, so that it stays leased.
            let fence = match run.kind {
                UsageKind::Leased => Fence::OwnPools,
                UsageKind::OnDemand => Fence::AllPools,
                UsageKind::Borrowed => Fence::Nothing,
            };
            let fenced = self.hold_fence(tenant, fence);
            let placer = placer_of(&self.scorers, &self.config, &self.profile);
            let to = placer.place(&mut self.cluster, model, &req);
            unhold(&mut self.cluster, &fenced);
            match to {
                Some(to) => moves.push((*v, model, to)),
                None => break,
            }
        }
        self.cluster.rollback(mark);
        (moves.len() == victims.len()).then_some(moves)
    }
}
