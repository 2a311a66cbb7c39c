//! A job's life in the server: submitted → pending → starting → running → completed / failed / cancelled, with
//! preempting → pending when a higher class takes its devices; every transition is an event with its reason.

use crate::auth::Caller;
use crate::spec;
use crate::state::{Core, DEFAULT_TENANT, JobRecord, Refused, stop_signal};
use std::collections::BTreeSet;
use wanka_api::{
    Assignment, JobState, JobView, ReplicaView, Role, SubmitJob, TaskReport, TaskState,
};
use wanka_model::{Allocation, JobId, Time, UsageKind};
use wanka_sched::{CycleStats, Decision, PendingReason, PreemptCause};

/// Which jobs a listing shows.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Only these states (empty: all).
    pub states: Vec<JobState>,
    /// Only this tenant's.
    pub tenant: Option<String>,
    /// Only jobs with this name.
    pub name: Option<String>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

impl Core {
    /// Checks submissions and numbers them; their rows are queued for the store. They join memory and the
    /// queue through [`Core::admit`] once durable, so a submission is acknowledged only after it is on disk.
    pub fn prepare_submit(
        &mut self,
        caller: &Caller,
        subs: Vec<SubmitJob>,
        now: i64,
    ) -> Result<Vec<JobRecord>, Refused> {
        let batch = subs.len() > 1;
        let mut records = Vec::with_capacity(subs.len());
        for (i, sub) in subs.into_iter().enumerate() {
            let at = |e: String| {
                if batch {
                    format!("job {i} of the batch: {e}")
                } else {
                    e
                }
            };
            let tenant = self.submitting_tenant(caller, &sub).map_err(|e| match e {
                Refused::Invalid(m) => Refused::Invalid(at(m)),
                Refused::Forbidden(m) => Refused::Forbidden(at(m)),
                other => other,
            })?;
            let tid = self.tenants[&tenant].id;
            let id = self.next_job + i as u64;
            let spec = spec::job_spec(self.sched.catalog(), id, tid, &sub, Time(now))
                .map_err(|e| Refused::Invalid(at(e)))?;
            records.push(JobRecord {
                id,
                tenant,
                name: spec.name,
                spec: sub,
                state: JobState::Pending,
                reason: Some(PendingReason::New.to_string()),
                submitted_us: now,
                started_us: None,
                run_started_us: None,
                ended_us: None,
                model: None,
                replicas: Vec::new(),
                exit_code: None,
                attempt: 0,
                done: Vec::new(),
                preempt: None,
                events: 0,
                progress: Default::default(),
                migrating: None,
                migrate_from_step: 0,
                leaving: None,
                usage: UsageKind::default(),
                segment: None,
            });
        }
        self.next_job += records.len() as u64;
        for r in &mut records {
            r.events = 1;
            self.fx
                .writes
                .push(crate::store::Write::Job(crate::state::job_row(r)));
            self.fx
                .writes
                .push(crate::store::Write::Event(crate::store::EventRow {
                    job: r.id,
                    seq: 1,
                    at_us: now,
                    state: JobState::Pending.name().to_string(),
                    reason: format!("submitted by the {} token", role_word(caller)),
                }));
        }
        Ok(records)
    }

    fn submitting_tenant(&self, caller: &Caller, sub: &SubmitJob) -> Result<String, Refused> {
        let tenant = match (caller.role, &sub.tenant, &caller.tenant) {
            (Role::Tenant, Some(t), Some(own)) if t != own => {
                return Err(Refused::Forbidden(format!(
                    "a token of tenant '{own}' cannot submit for tenant '{t}'"
                )));
            }
            (Role::Tenant, _, Some(own)) => own.clone(),
            (Role::Admin, Some(t), _) => t.clone(),
            (Role::Admin, None, _) => DEFAULT_TENANT.to_string(),
            _ => {
                return Err(Refused::Forbidden(
                    "agent tokens cannot submit jobs".to_string(),
                ));
            }
        };
        if !self.tenants.contains_key(&tenant) {
            return Err(Refused::Invalid(format!(
                "tenant '{tenant}' does not exist (an admin creates it with `wanka tenants put {tenant}`)"
            )));
        }
        Ok(tenant)
    }

    /// Takes durable submissions into memory and the queue.
    pub fn admit(&mut self, records: Vec<JobRecord>, now: i64) {
        for r in records {
            let id = r.id;
            self.jobs.insert(id, r);
            if let Err(e) = self.enqueue(id) {
                self.transition(id, JobState::Failed, format!("cannot be queued: {e}"), now);
            }
        }
    }

    /// One scheduling cycle: starts and preemptions are recorded and their assignments dispatched; the
    /// reasons of waiting jobs are refreshed.
    pub fn schedule(&mut self, now: i64) -> CycleStats {
        let plan = self.sched.schedule(Time(now));
        for d in plan.decisions {
            match d {
                Decision::Start {
                    job,
                    allocation,
                    backfilled,
                    usage,
                    lease_wait,
                } => {
                    if let Some(wait) = lease_wait {
                        self.note_reclaim(wait);
                    }
                    self.start(job, allocation, backfilled, usage, now)
                }
                Decision::Preempt {
                    job,
                    by,
                    deadline,
                    cause,
                    ..
                } => self.preempt(job.0, by.0, deadline.0, cause, now),
            }
        }
        for (id, reason) in plan.reasons {
            if let Some(r) = self.jobs.get_mut(&id.0) {
                r.reason = Some(describe(&reason, now));
            }
        }
        plan.stats
    }

    fn start(
        &mut self,
        job: JobId,
        allocation: Allocation,
        backfilled: bool,
        usage: UsageKind,
        now: i64,
    ) {
        let id = job.0;
        let model = self.sched.catalog().model(allocation.model).name.clone();
        let replicas: Vec<ReplicaView> = allocation
            .replicas
            .iter()
            .map(|p| ReplicaView {
                node: self.node_names[p.node.0 as usize].clone(),
                devices: p.devices.clone(),
                fraction_milli: p.fraction_milli,
            })
            .collect();
        let nodes: BTreeSet<&str> = replicas.iter().map(|p| p.node.as_str()).collect();
        let reason = format!(
            "{} on {} {}device(s) of {model} across {} node(s){}",
            if backfilled {
                "backfilled"
            } else {
                "scheduled"
            },
            allocation.device_count(),
            // Whose capacity matters only once leases exist; without them every run is on demand.
            if self.sched.leases().is_empty() {
                String::new()
            } else {
                format!("{} ", usage.name())
            },
            nodes.len(),
            if backfilled {
                " ahead of a reserved job, within its time limit"
            } else {
                ""
            }
        );
        let r = self
            .jobs
            .get_mut(&id)
            .expect("the scheduler starts known jobs");
        r.attempt += 1;
        r.done.clear();
        r.exit_code = None;
        r.usage = usage;
        r.model = Some(model);
        r.replicas = replicas;
        r.started_us.get_or_insert(now);
        r.run_started_us = Some(now);
        self.transition(id, JobState::Starting, reason, now);
        self.dispatch_starts(id);
    }

    /// Queues the start of every replica of a job's current run.
    pub(crate) fn dispatch_starts(&mut self, id: u64) {
        let r = &self.jobs[&id];
        let Some(model) = r
            .model
            .as_deref()
            .and_then(|m| self.sched.catalog().lookup(m).ok())
        else {
            return;
        };
        let model = self.sched.catalog().model(model);
        let nodes: Vec<String> = r.replicas.iter().map(|p| p.node.clone()).collect();
        let master = nodes
            .first()
            .and_then(|n| self.nodes.get(n))
            .map(|n| {
                n.registration
                    .address
                    .clone()
                    .unwrap_or_else(|| n.registration.name.clone())
            })
            .unwrap_or_default();
        let run = spec::Run {
            checkpoint_dir: self
                .settings
                .checkpoint_root
                .as_ref()
                .map(|root| root.join(id.to_string()).display().to_string())
                .unwrap_or_default(),
            restarts: r.attempt.saturating_sub(1),
        };
        let starts: Vec<(String, Assignment)> = r
            .replicas
            .iter()
            .enumerate()
            .map(|(rank, p)| {
                let env = spec::replica_env(
                    id,
                    &r.name,
                    &r.spec,
                    model,
                    rank as u32,
                    &p.devices,
                    &nodes,
                    &master,
                    &run,
                );
                (
                    p.node.clone(),
                    Assignment::Start {
                        job: id,
                        attempt: r.attempt,
                        rank: rank as u32,
                        replicas: nodes.len() as u32,
                        devices: p.devices.clone(),
                        tasks: r.spec.tasks_per_node,
                        env,
                        script: r.spec.script.clone(),
                        command: r.spec.command.clone(),
                    },
                )
            })
            .collect();
        self.fx.dispatch.extend(starts);
    }

    fn preempt(&mut self, id: u64, by: u64, deadline: i64, cause: PreemptCause, now: i64) {
        let grace = ((deadline - now) / 1_000_000).max(0) as u64;
        let why = match self.jobs.get(&by) {
            Some(b) if cause == PreemptCause::Reclaim => {
                format!("tenant '{}' reclaims its leased devices", b.tenant)
            }
            Some(_) if cause == PreemptCause::Repack => {
                "moved to devices held for it elsewhere, so that the job finds its devices together"
                    .to_string()
            }
            Some(b) => b
                .spec
                .class
                .clone()
                .unwrap_or_else(|| "standard".to_string()),
            None => "standard".to_string(),
        };
        let r = self
            .jobs
            .get_mut(&id)
            .expect("the scheduler preempts known jobs");
        r.preempt = Some((by, deadline));
        let signal = stop_signal(&r.spec);
        self.transition(
            id,
            JobState::Preempting,
            format!(
                "preempted for job {by} ({why}): sent {signal} to checkpoint, leaves within {grace} s"
            ),
            now,
        );
        self.stop_everywhere(id, &signal, grace);
    }

    /// An agent's report on one replica.
    pub fn report(&mut self, rep: &TaskReport, now: i64) -> Result<(), Refused> {
        let r = self
            .jobs
            .get(&rep.job)
            .ok_or_else(|| Refused::NotFound(format!("job {} does not exist", rep.job)))?;
        if !r.replicas.iter().any(|p| p.node == rep.node) {
            return Err(Refused::Invalid(format!(
                "job {} has no replica on node '{}'",
                rep.job, rep.node
            )));
        }
        if rep.attempt != r.attempt || r.state.is_final() || r.state == JobState::Pending {
            // A report on an earlier run, or on a run the server has already closed: nothing to change.
            return Ok(());
        }
        let id = rep.job;
        match (rep.state, r.state) {
            (TaskState::Running, JobState::Starting) => {
                self.transition(
                    id,
                    JobState::Running,
                    format!("rank {} running on {}", rep.rank, rep.node),
                    now,
                );
            }
            (TaskState::Running, _) => {}
            (TaskState::Lost, _) => {
                let why = format!(
                    "rank {} on {} was lost: its agent restarted and found neither the process nor its \
                     exit code",
                    rep.rank, rep.node
                );
                let node = rep.node.clone();
                self.interrupt(id, why, Some(&node), now);
            }
            (TaskState::Exited, JobState::Preempting) if r.migrating.is_some() => {
                let code = code_text(rep.exit_code);
                let leaving = r.leaving.clone();
                let wait = self.count_restart(id).unwrap_or(0);
                let why = format!(
                    "moved off {}: left with {code}",
                    leaving.as_deref().unwrap_or("?")
                );
                if wait == 0
                    && let Some(node) = leaving
                    && self.restart_on_spares(id, &node, &why, now)
                {
                    return Ok(());
                }
                self.requeue_after(id, wait, now);
                let r = self.jobs.get_mut(&id).expect("checked");
                r.migrating = None;
                r.exit_code = rep.exit_code;
                let from = r.progress.from_checkpoint();
                self.transition(
                    id,
                    JobState::Pending,
                    format!(
                        "moved: left with {code}; requeued to restart{from} on healthy devices"
                    ),
                    now,
                );
            }
            (TaskState::Exited, JobState::Preempting) => {
                let by = r.preempt.map_or(0, |p| p.0);
                let code = code_text(rep.exit_code);
                let _ = self.sched.requeue(JobId(id));
                let r = self.jobs.get_mut(&id).expect("checked");
                r.preempt = None;
                r.exit_code = rep.exit_code;
                self.transition(
                    id,
                    JobState::Pending,
                    format!("preempted by job {by}: left with {code} and is requeued"),
                    now,
                );
                self.fx.kick = true;
            }
            (TaskState::Exited, _) if rep.exit_code == Some(0) => {
                let r = self.jobs.get_mut(&id).expect("checked");
                if !r.done.contains(&rep.rank) {
                    r.done.push(rep.rank);
                }
                if r.done.len() == r.replicas.len() {
                    r.exit_code = Some(0);
                    self.end(
                        id,
                        JobState::Completed,
                        "every rank exited with code 0".into(),
                        now,
                    );
                } else {
                    self.persist_job(id);
                }
            }
            (TaskState::Exited, _) => {
                self.jobs.get_mut(&id).expect("checked").exit_code = rep.exit_code;
                let reason = format!(
                    "rank {} on {} exited with {}",
                    rep.rank,
                    rep.node,
                    code_text(rep.exit_code)
                );
                self.end(id, JobState::Failed, reason, now);
            }
        }
        Ok(())
    }

    /// Ends a job holding devices: frees them, records the end and stops what may still run.
    pub(crate) fn end(&mut self, id: u64, state: JobState, reason: String, now: i64) {
        // The scheduler lacks the job only if it was never admitted; there is nothing to free then.
        let _ = self.sched.finished(JobId(id));
        // A completed run has exited everywhere; anything else may still have processes to stop.
        let stops_needed = self.jobs[&id].holds_devices() && state != JobState::Completed;
        self.transition(id, state, reason, now);
        if stops_needed {
            let signal = stop_signal(&self.jobs[&id].spec);
            self.stop_everywhere(id, &signal, self.settings.kill_grace_s);
        }
        self.fx.kick = true;
    }

    /// A run that lost its node: back to the queue unless the job asked not to be requeued.
    /// A run that lost its node or a device: back to the queue (from its checkpoint, after the backoff of
    /// its restart count) unless the job asked not to be requeued or has used all its restarts.
    pub(crate) fn interrupt(&mut self, id: u64, why: String, bad_node: Option<&str>, now: i64) {
        let r = &self.jobs[&id];
        if r.spec.requeue == Some(false) {
            self.end(
                id,
                JobState::Failed,
                format!("{why}; not requeued (--no-requeue)"),
                now,
            );
            return;
        }
        let signal = stop_signal(&r.spec);
        self.stop_everywhere(id, &signal, self.settings.kill_grace_s);
        let Some(wait) = self.count_restart(id) else {
            let max = self.settings.max_fault_restarts;
            self.end(
                id,
                JobState::Failed,
                format!("{why}; not restarted: {max} restarts used"),
                now,
            );
            return;
        };
        if wait == 0
            && let Some(node) = bad_node
            && self.restart_on_spares(id, node, &why, now)
        {
            return;
        }
        self.requeue_after(id, wait, now);
        let r = self.jobs.get_mut(&id).expect("checked");
        r.preempt = None;
        r.migrating = None;
        let from = r.progress.from_checkpoint();
        let when = if wait > 0 {
            format!(" in {} s", wait / 1_000_000)
        } else {
            String::new()
        };
        let k = r.progress.restarts;
        self.transition(
            id,
            JobState::Pending,
            format!("{why}; requeued to restart{from}{when} (restart {k})"),
            now,
        );
    }

    /// Cancels a job the caller may touch.
    pub fn cancel(
        &mut self,
        caller: &Caller,
        id: u64,
        why: Option<String>,
        now: i64,
    ) -> Result<JobView, Refused> {
        let r = self.visible_job(caller, id)?;
        if r.state.is_final() {
            return Err(Refused::Conflict(format!(
                "job {id} is already {}",
                r.state.name()
            )));
        }
        let reason = match why {
            Some(w) => format!("cancelled by the {} token: {w}", role_word(caller)),
            None => format!("cancelled by the {} token", role_word(caller)),
        };
        if r.state == JobState::Pending {
            let _ = self.sched.cancel(JobId(id));
            self.transition(id, JobState::Cancelled, reason, now);
            self.fx.kick = true;
        } else {
            self.end(id, JobState::Cancelled, reason, now);
        }
        Ok(self.jobs[&id].view())
    }

    /// Stops runs past their time limit (Slurm's TIMEOUT).
    pub fn enforce_time_limits(&mut self, now: i64) {
        let over: Vec<(u64, u64)> = self
            .active
            .iter()
            .filter_map(|id| {
                let r = &self.jobs[id];
                let limit = r.spec.time_limit_s?;
                let started = r.run_started_us?;
                let over = matches!(r.state, JobState::Starting | JobState::Running)
                    && now - started > (limit as i64).saturating_mul(1_000_000);
                over.then_some((*id, limit))
            })
            .collect();
        for (id, limit) in over {
            self.end(
                id,
                JobState::Failed,
                format!("time limit of {limit} s reached (TIMEOUT)"),
                now,
            );
        }
    }

    /// A job the caller may see.
    pub fn visible_job(&self, caller: &Caller, id: u64) -> Result<&JobRecord, Refused> {
        match self.jobs.get(&id) {
            Some(r) if caller.may_touch(&r.tenant) => Ok(r),
            // A tenant learns nothing about other tenants' jobs, not even that they exist.
            _ => Err(Refused::NotFound(format!("job {id} does not exist"))),
        }
    }

    /// Jobs the caller may see, newest first.
    pub fn list_jobs(&self, caller: &Caller, f: &JobFilter) -> Vec<JobView> {
        self.jobs
            .values()
            .rev()
            .filter(|r| caller.may_touch(&r.tenant))
            .filter(|r| f.states.is_empty() || f.states.contains(&r.state))
            .filter(|r| f.tenant.as_ref().is_none_or(|t| *t == r.tenant))
            .filter(|r| f.name.as_ref().is_none_or(|n| *n == r.name))
            .take(f.limit.unwrap_or(usize::MAX))
            .map(JobRecord::view)
            .collect()
    }
}

fn role_word(caller: &Caller) -> String {
    match (&caller.role, &caller.tenant) {
        (Role::Tenant, Some(t)) => format!("tenant '{t}'"),
        (Role::Admin, _) => "admin".to_string(),
        _ => "agent".to_string(),
    }
}

fn code_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("code {c}"),
        None => "no exit code (killed by a signal)".to_string(),
    }
}

/// A pending reason for people: an estimated start as seconds from now rather than an absolute clock.
fn describe(reason: &PendingReason, now: i64) -> String {
    match reason {
        PendingReason::Resources {
            estimated_start: Some(t),
        } => format!(
            "Resources (reserved; expected to start in {} s)",
            ((t.0 - now) / 1_000_000).max(0)
        ),
        other => other.to_string(),
    }
}
