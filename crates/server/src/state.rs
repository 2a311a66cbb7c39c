//! The server's authoritative state in memory: the scheduler core and the records around it (jobs with their
//! history, nodes with their agents' reports, tenants, tokens, work waiting for agents).
//!
//! Like the scheduler core, this is a state machine without a clock or I/O: every method takes the time, and
//! the changes to persist and the assignments to hand out accumulate in [`Effects`], which the HTTP layer
//! writes to the store (under the lock, so commit order is memory order) and dispatches once durable.

use crate::auth::{self, Caller};
use crate::spec;
use crate::store::{EventRow, JobRow, Loaded, NodeRow, StoreError, TenantRow, TokenRow, Write};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::Notify;
use wanka_api::{
    Assignment, DeviceTelemetry, JobState, JobView, NodeState, Numbered, RegisterNode, ReplicaView,
    Role, SubmitJob, TenantView,
};
use wanka_model::{JobId, NodeId, Tenant, TenantId, Time, UsageKind};
use wanka_sched::Scheduler;
use wanka_sched::snapshot::RunningJob;

/// The tenant every installation starts with; an admin's submission without a tenant goes here.
pub const DEFAULT_TENANT: &str = "default";

/// Knobs of the server's behaviour (not of the scheduling policy).
#[derive(Clone, Debug)]
pub struct Settings {
    /// A node that has not sent a heartbeat for this long is lost, microseconds.
    pub node_timeout_us: i64,
    /// Seconds between the stop signal and the kill when a job is cancelled or fails elsewhere.
    pub kill_grace_s: u64,
    /// Where jobs' checkpoint directories are made (`<root>/<job>`, WANKA_CHECKPOINT_DIR): storage every
    /// node mounts at the same path. `None`: `<data-dir>/checkpoints` (right for one machine only).
    pub checkpoint_root: Option<std::path::PathBuf>,
    /// Seconds a job gets to write its checkpoint after the "checkpoint now" signal before it is moved anyway.
    pub checkpoint_grace_s: u64,
    /// Restarts after faults before a job is failed for good.
    pub max_fault_restarts: u32,
    /// What faults mean (the built-in book and the operator's overrides).
    pub faults: wanka_model::FaultBook,
    /// Move a job off the node of a straggling member (and cordon that node).
    pub replace_stragglers: bool,
    /// Hot spares kept per model: when a model has fewer (a spare took a failed node's place), an idle,
    /// healthy, ready node of it is set aside. 0: only the nodes operators set aside.
    pub hot_spares: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            node_timeout_us: 30_000_000,
            kill_grace_s: 30,
            checkpoint_root: None,
            checkpoint_grace_s: 120,
            max_fault_restarts: 5,
            faults: wanka_model::FaultBook::builtin(),
            replace_stragglers: false,
            hot_spares: 0,
        }
    }
}

/// A request the server turns down, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// The request is malformed or asks for something impossible.
    Invalid(String),
    /// The caller's role or tenant does not allow it.
    Forbidden(String),
    /// No such thing.
    NotFound(String),
    /// The thing is not in a state that allows it.
    Conflict(String),
}

/// The server's record of a job, persisted as JSON in the job's row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Id.
    pub id: u64,
    /// Owner.
    pub tenant: String,
    /// Name.
    pub name: String,
    /// The submission as accepted.
    pub spec: SubmitJob,
    /// State.
    pub state: JobState,
    /// Why it waits or why it ended.
    pub reason: Option<String>,
    /// Unix microseconds.
    pub submitted_us: i64,
    /// First start.
    pub started_us: Option<i64>,
    /// Start of the current or last run.
    #[serde(default)]
    pub run_started_us: Option<i64>,
    /// End.
    pub ended_us: Option<i64>,
    /// Model of the current or last allocation.
    pub model: Option<String>,
    /// Where the current or last run is placed.
    pub replicas: Vec<ReplicaView>,
    /// Exit code of the last run.
    pub exit_code: Option<i32>,
    /// Runs started so far; the current run's number.
    pub attempt: u32,
    /// Ranks of the current run that exited cleanly.
    pub done: Vec<u32>,
    /// While preempting: the job the devices go to, and the grace deadline (Unix microseconds).
    pub preempt: Option<(u64, i64)>,
    /// Events recorded so far.
    pub events: u32,
    /// Training progress and effective-time accounting.
    #[serde(default)]
    pub progress: crate::progress::Progress,
    /// While being moved off a failing node: when it is stopped even without a checkpoint (Unix
    /// microseconds; `i64::MAX` once the stop is sent).
    #[serde(default)]
    pub migrating: Option<i64>,
    /// While being moved: the step it had reached when asked to checkpoint. A checkpoint of an earlier step (an
    /// asynchronous write begun before the request) does not end the wait.
    #[serde(default)]
    pub migrate_from_step: u64,
    /// While being moved: the node it leaves.
    #[serde(default)]
    pub leaving: Option<String>,
    /// Whose capacity the current or last run uses.
    #[serde(default)]
    pub usage: UsageKind,
    /// The current run's usage segment, until it is written.
    #[serde(default)]
    pub segment: Option<crate::accounting::Segment>,
}

impl JobRecord {
    /// The API's view.
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id,
            name: self.name.clone(),
            tenant: self.tenant.clone(),
            state: self.state,
            reason: self.reason.clone(),
            spec: self.spec.clone(),
            submitted_at: secs(self.submitted_us),
            started_at: self.started_us.map(secs),
            ended_at: self.ended_us.map(secs),
            model: self.model.clone(),
            replicas: self.replicas.clone(),
            exit_code: self.exit_code,
            progress: self.progress.view(self.started_us),
            usage: self.model.is_some().then(|| self.usage.name().to_string()),
        }
    }

    /// True while it holds devices.
    pub fn holds_devices(&self) -> bool {
        self.state.holds_devices()
    }
}

/// Unix microseconds as seconds.
pub fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

/// A node as the server knows it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The scheduler's id.
    pub id: NodeId,
    /// The agent's registration.
    pub registration: RegisterNode,
    /// What operators set: ready, cordoned or draining.
    pub admin: NodeState,
    /// No heartbeat within the timeout.
    pub lost: bool,
    /// Unhealthy devices.
    pub unhealthy: BTreeSet<u32>,
    /// Last heartbeat, Unix microseconds (the start of this server's run until the first one).
    pub last_heartbeat_us: Option<i64>,
    /// Since when the server has been waiting for a heartbeat (start or registration).
    pub watched_since_us: i64,
    /// Telemetry of the last heartbeat.
    pub telemetry: Vec<DeviceTelemetry>,
    /// Devices the risk engine took out of service (a fault, or a precursor of one).
    pub risk_held: BTreeSet<u32>,
    /// Cordoned for repeated faults until an operator resumes it.
    pub quarantined: bool,
    /// Time of the node's last event (events are keyed by time).
    pub last_event_us: i64,
}

impl NodeInfo {
    /// What the API shows as the node's state.
    pub fn state(&self) -> NodeState {
        if self.lost {
            NodeState::Lost
        } else {
            self.admin
        }
    }

    /// The row that persists it.
    pub fn row(&self) -> NodeRow {
        NodeRow {
            name: self.registration.name.clone(),
            registration: serde_json::to_string(&self.registration).expect("serializable"),
            // A quarantine is a cordon that only an operator lifts; it is stored as its own word.
            admin_state: if self.quarantined {
                "quarantined".to_string()
            } else {
                node_state_name(self.admin).to_string()
            },
            unhealthy: serde_json::to_string(&self.unhealthy).expect("serializable"),
        }
    }
}

/// A node state's stored name.
pub fn node_state_name(s: NodeState) -> &'static str {
    match s {
        NodeState::Ready => "ready",
        NodeState::Cordoned => "cordoned",
        NodeState::Draining => "draining",
        NodeState::Spare => "spare",
        NodeState::Lost => "lost",
    }
}

/// Work waiting for one node's agent.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Next sequence number.
    pub next_seq: u64,
    /// Assignments not yet acknowledged.
    pub items: VecDeque<Numbered>,
    /// Woken when work arrives.
    pub notify: Arc<Notify>,
}

/// What a change needs done outside memory: rows to persist, then assignments to hand out.
#[derive(Debug, Default)]
pub struct Effects {
    /// Rows, in order.
    pub writes: Vec<Write>,
    /// (node, assignment), to deliver once the writes are durable.
    pub dispatch: Vec<(String, Assignment)>,
    /// The scheduler should run soon.
    pub kick: bool,
}

/// A tenant's settings.
#[derive(Clone, Debug)]
pub struct TenantInfo {
    /// The scheduler's id.
    pub id: TenantId,
    /// Weight.
    pub weight: f64,
    /// Device quota.
    pub quota: Option<u32>,
}

/// Everything the server knows.
pub struct Core {
    /// The scheduler core.
    pub sched: Scheduler,
    /// Behaviour knobs.
    pub settings: Settings,
    /// Tenants by name.
    pub tenants: BTreeMap<String, TenantInfo>,
    /// Token hash → caller.
    pub(crate) tokens: HashMap<String, Caller>,
    /// Nodes by name.
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Node names by scheduler id.
    pub(crate) node_names: Vec<String>,
    /// Jobs by id.
    pub jobs: BTreeMap<u64, JobRecord>,
    /// Jobs holding devices.
    pub(crate) active: BTreeSet<u64>,
    /// Next job id.
    pub(crate) next_job: u64,
    /// Work per node.
    pub(crate) outboxes: HashMap<String, Outbox>,
    /// This run of the server (assignment numbers restart with it).
    pub epoch: u64,
    /// Pending changes.
    pub(crate) fx: Effects,
    /// The risk engine.
    pub(crate) risk: wanka_sched::risk::RiskEngine<String>,
    /// Jobs waiting out their restart backoff, and until when (Unix microseconds).
    pub(crate) held: BTreeMap<u64, i64>,
    /// Leases by id, withdrawn ones included.
    pub leases: BTreeMap<u64, crate::store::LeaseRow>,
    /// The next lease id.
    pub(crate) next_lease: u64,
    /// Prices per model.
    pub prices: wanka_api::lease::PriceTable,
    /// How long owners waited for their leased capacity.
    pub reclaim: crate::accounting::ReclaimStats,
}

impl Core {
    /// An empty server state around a scheduler.
    pub fn new(sched: Scheduler, settings: Settings, epoch: u64) -> Core {
        let risk = wanka_sched::risk::RiskEngine::new(settings.faults.clone());
        Core {
            sched,
            settings,
            tenants: BTreeMap::new(),
            tokens: HashMap::new(),
            nodes: BTreeMap::new(),
            node_names: Vec::new(),
            jobs: BTreeMap::new(),
            active: BTreeSet::new(),
            next_job: 1,
            outboxes: HashMap::new(),
            epoch,
            fx: Effects::default(),
            risk,
            held: BTreeMap::new(),
            leases: BTreeMap::new(),
            next_lease: 1,
            prices: BTreeMap::new(),
            reclaim: Default::default(),
        }
    }

    /// Takes the changes accumulated since the last call.
    pub fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.fx)
    }

    /// The caller a token stands for, by the token's hash (hashed by the caller, outside the lock).
    pub fn caller(&self, token_hash: &str) -> Option<Caller> {
        self.tokens.get(token_hash).cloned()
    }

    /// True when some admin token exists.
    pub fn has_admin(&self) -> bool {
        self.tokens.values().any(|c| c.role == Role::Admin)
    }

    /// Records a token (given in clear; only its hash is kept).
    pub fn add_token(
        &mut self,
        token: &str,
        role: Role,
        tenant: Option<String>,
        label: Option<String>,
        now: i64,
    ) -> Result<(), Refused> {
        match (role, &tenant) {
            (Role::Tenant, None) => {
                return Err(Refused::Invalid(
                    "a tenant token needs `tenant`".to_string(),
                ));
            }
            (Role::Tenant, Some(t)) if !self.tenants.contains_key(t) => {
                return Err(Refused::Invalid(format!(
                    "tenant '{t}' does not exist; create it first with PUT /api/v1/tenants/{t}"
                )));
            }
            (Role::Admin | Role::Agent, Some(_)) => {
                return Err(Refused::Invalid(
                    "only a tenant token names a tenant".to_string(),
                ));
            }
            _ => {}
        }
        let hash = auth::hash(token);
        self.tokens.insert(
            hash.clone(),
            Caller {
                role,
                tenant: tenant.clone(),
            },
        );
        self.fx.writes.push(Write::Token(TokenRow {
            hash,
            role: auth::role_name(role).to_string(),
            tenant,
            label,
            created_us: now,
        }));
        Ok(())
    }

    /// Creates or changes a tenant.
    pub fn put_tenant(
        &mut self,
        name: &str,
        weight: Option<f64>,
        quota: Option<u32>,
    ) -> Result<(), Refused> {
        valid_name("tenant", name)?;
        let weight = weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight > 0.0) {
            return Err(Refused::Invalid(format!(
                "weight = {weight}; it must be a positive number"
            )));
        }
        let next = TenantId(self.tenants.len() as u32);
        let info = self.tenants.entry(name.to_string()).or_insert(TenantInfo {
            id: next,
            weight,
            quota,
        });
        info.weight = weight;
        info.quota = quota;
        let tenant = Tenant {
            id: info.id,
            name: name.to_string(),
            weight,
            quota_devices: quota,
        };
        self.sched.upsert_tenant(tenant);
        self.fx.writes.push(Write::Tenant(TenantRow {
            name: name.to_string(),
            weight,
            quota,
        }));
        self.fx.kick = true;
        Ok(())
    }

    /// The tenants as the API shows them.
    pub fn tenant_views(&self) -> Vec<TenantView> {
        let mut in_use: HashMap<&str, u32> = HashMap::new();
        for id in &self.active {
            let r = &self.jobs[id];
            *in_use.entry(r.tenant.as_str()).or_default() += r
                .replicas
                .iter()
                .map(|p| p.devices.len() as u32)
                .sum::<u32>();
        }
        self.tenants
            .iter()
            .map(|(name, t)| TenantView {
                name: name.clone(),
                weight: t.weight,
                quota_devices: t.quota,
                devices_in_use: in_use.get(name.as_str()).copied().unwrap_or(0),
                share: self.sched.share(t.id),
            })
            .collect()
    }

    /// Appends an event to a job's history and persists the record.
    pub(crate) fn record_event(&mut self, id: u64, reason: String, now: i64) {
        let r = self.jobs.get_mut(&id).expect("caller checked");
        r.events += 1;
        self.fx.writes.push(Write::Event(EventRow {
            job: id,
            seq: r.events,
            at_us: now,
            state: r.state.name().to_string(),
            reason,
        }));
        self.persist_job(id);
    }

    /// Persists a job's record as it is now.
    pub(crate) fn persist_job(&mut self, id: u64) {
        let r = &self.jobs[&id];
        self.fx.writes.push(Write::Job(job_row(r)));
    }

    /// Moves a job to a new state with its reason, recording the event.
    pub(crate) fn transition(&mut self, id: u64, state: JobState, reason: String, now: i64) {
        let r = self.jobs.get_mut(&id).expect("caller checked");
        let held = r.holds_devices();
        r.state = state;
        // A run's usage segment ends when its devices go or it starts over on others (a move to spares).
        if held && (!r.holds_devices() || state == JobState::Starting) {
            self.close_segment(id, now);
        }
        if state == JobState::Starting {
            self.open_segment(id, now);
        }
        let r = self.jobs.get_mut(&id).expect("caller checked");
        r.reason = Some(reason.clone());
        if state.is_final() {
            r.ended_us = Some(now);
            r.preempt = None;
        }
        if r.holds_devices() {
            self.active.insert(id);
        } else {
            self.active.remove(&id);
        }
        self.record_event(id, reason, now);
    }

    /// Queues an assignment for a node.
    pub(crate) fn send(&mut self, node: &str, assignment: Assignment) {
        self.fx.dispatch.push((node.to_string(), assignment));
    }

    /// Hands out dispatched assignments once their changes are durable. A start whose job has moved on
    /// meanwhile (cancelled, failed) is dropped.
    pub fn deliver(&mut self, dispatch: Vec<(String, Assignment)>) {
        for (node, a) in dispatch {
            if let Assignment::Start { job, attempt, .. } = &a {
                let current = self.jobs.get(job).is_some_and(|r| {
                    r.attempt == *attempt
                        && matches!(r.state, JobState::Starting | JobState::Running)
                });
                if !current {
                    continue;
                }
            }
            let out = self.outboxes.entry(node).or_default();
            out.items.push_back(Numbered {
                seq: out.next_seq + 1,
                assignment: a,
            });
            out.next_seq += 1;
            out.notify.notify_one();
        }
    }

    /// A node's waiting assignments after `after` (dropping those the agent has carried out), and the
    /// notifier to wait on when there are none. An `after` from another epoch (the agent has not noticed
    /// the server's restart) means nothing: everything waiting is sent.
    pub fn assignments(
        &mut self,
        node: &str,
        epoch: Option<u64>,
        after: u64,
    ) -> Result<(Vec<Numbered>, Arc<Notify>), Refused> {
        if !self.nodes.contains_key(node) {
            return Err(Refused::NotFound(format!(
                "node '{node}' is not registered; register it first"
            )));
        }
        let out = self.outboxes.entry(node.to_string()).or_default();
        if epoch.is_none_or(|e| e == self.epoch) {
            while out.items.front().is_some_and(|a| a.seq <= after) {
                out.items.pop_front();
            }
        }
        Ok((out.items.iter().cloned().collect(), out.notify.clone()))
    }

    /// Rebuilds the state from the store: tenants, tokens, nodes, then running jobs on their allocations and
    /// pending jobs in the queue. Work in flight is handed out again (agents ignore what they already did).
    pub fn restore(&mut self, loaded: Loaded, now: i64) -> Result<(), StoreError> {
        let corrupt = |table: &'static str, key: String, problem: String| StoreError::Corrupt {
            backend: "store",
            table,
            key,
            problem,
        };
        for t in loaded.tenants {
            self.put_tenant(&t.name, Some(t.weight), t.quota)
                .map_err(|e| corrupt("tenants", t.name.clone(), format!("{e:?}")))?;
        }
        for t in loaded.tokens {
            let role = auth::parse_role(&t.role)
                .ok_or_else(|| corrupt("tokens", t.hash.clone(), format!("role '{}'", t.role)))?;
            self.tokens.insert(
                t.hash,
                Caller {
                    role,
                    tenant: t.tenant,
                },
            );
        }
        for n in loaded.nodes {
            let reg: RegisterNode = serde_json::from_str(&n.registration)
                .map_err(|e| corrupt("nodes", n.name.clone(), e.to_string()))?;
            let unhealthy: BTreeSet<u32> = serde_json::from_str(&n.unhealthy)
                .map_err(|e| corrupt("nodes", n.name.clone(), e.to_string()))?;
            let admin = match n.admin_state.as_str() {
                "ready" => NodeState::Ready,
                "cordoned" | "quarantined" => NodeState::Cordoned,
                "draining" => NodeState::Draining,
                "spare" => NodeState::Spare,
                other => return Err(corrupt("nodes", n.name, format!("state '{other}'"))),
            };
            let name = reg.name.clone();
            self.add_node(reg, admin, unhealthy, now)
                .map_err(|e| corrupt("nodes", n.name.clone(), format!("{e:?}")))?;
            if n.admin_state == "quarantined"
                && let Some(info) = self.nodes.get_mut(&name)
            {
                info.quarantined = true;
            }
        }
        self.restore_accounting(loaded.leases, loaded.prices)
            .map_err(|(key, problem)| corrupt("leases", key, problem))?;
        let mut pending = Vec::new();
        for row in loaded.jobs {
            let r: JobRecord = serde_json::from_str(&row.record)
                .map_err(|e| corrupt("jobs", row.id.to_string(), e.to_string()))?;
            self.next_job = self.next_job.max(r.id + 1);
            let id = r.id;
            let state = r.state;
            self.jobs.insert(id, r);
            if state == JobState::Pending {
                pending.push(id);
            } else if !state.is_final() {
                self.resume_running(id, now);
            }
        }
        pending.sort_by_key(|id| (self.jobs[id].submitted_us, *id));
        for id in pending {
            if let Err(e) = self.enqueue(id) {
                self.transition(
                    id,
                    JobState::Failed,
                    format!("cannot be queued again after a restart: {e}"),
                    now,
                );
            }
        }
        self.fx.kick = true;
        Ok(())
    }

    /// Puts a stored job back on its allocation after a restart, or back in the queue if it no longer fits.
    fn resume_running(&mut self, id: u64, now: i64) {
        let r = &self.jobs[&id];
        let running = self.scheduler_spec(r).and_then(|spec| {
            Ok(RunningJob {
                spec,
                allocation: self.allocation_of(r)?,
                preempting: r.preempt.map(|(by, d)| (JobId(by), Time(d))),
                usage: r.usage,
            })
        });
        let restored =
            running.and_then(|running| self.sched.restore(&running).map_err(|e| e.to_string()));
        match restored {
            Ok(()) => {
                self.active.insert(id);
                let r = self.jobs[&id].clone();
                match r.state {
                    JobState::Starting => self.dispatch_starts(id),
                    JobState::Preempting => {
                        let grace = r.preempt.map_or(0, |(_, d)| ((d - now) / 1_000_000).max(0));
                        self.stop_everywhere(id, &stop_signal(&r.spec), grace as u64);
                    }
                    _ => {}
                }
            }
            Err(e) => {
                let signal = stop_signal(&self.jobs[&id].spec);
                self.stop_everywhere(id, &signal, self.settings.kill_grace_s);
                self.transition(
                    id,
                    JobState::Pending,
                    format!("its allocation could not be restored after a restart ({e}); requeued"),
                    now,
                );
                if let Err(e) = self.enqueue(id) {
                    self.transition(id, JobState::Failed, format!("cannot be queued: {e}"), now);
                }
            }
        }
    }

    /// The scheduler's spec of a recorded job.
    pub(crate) fn scheduler_spec(&self, r: &JobRecord) -> Result<wanka_model::JobSpec, String> {
        let tenant = self
            .tenants
            .get(&r.tenant)
            .ok_or_else(|| format!("tenant '{}' no longer exists", r.tenant))?;
        spec::job_spec(
            self.sched.catalog(),
            r.id,
            tenant.id,
            &r.spec,
            Time(r.submitted_us),
        )
    }

    /// The scheduler's allocation of a recorded job.
    pub(crate) fn allocation_of(&self, r: &JobRecord) -> Result<wanka_model::Allocation, String> {
        let model = r.model.as_deref().ok_or("no model recorded")?;
        let model = self
            .sched
            .catalog()
            .lookup(model)
            .map_err(|e| e.to_string())?;
        let replicas = r
            .replicas
            .iter()
            .map(|p| {
                let n = self
                    .nodes
                    .get(&p.node)
                    .ok_or_else(|| format!("node '{}' is not registered", p.node))?;
                Ok(wanka_model::ReplicaPlacement {
                    node: n.id,
                    devices: p.devices.clone(),
                    fraction_milli: p.fraction_milli,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(wanka_model::Allocation {
            job: JobId(r.id),
            model,
            replicas,
            started: Time(r.started_us.unwrap_or(r.submitted_us)),
        })
    }

    /// Queues a recorded job in the scheduler.
    pub(crate) fn enqueue(&mut self, id: u64) -> Result<(), String> {
        let spec = self.scheduler_spec(&self.jobs[&id])?;
        self.sched.submit(spec).map_err(|e| e.to_string())?;
        self.fx.kick = true;
        Ok(())
    }

    /// Sends a stop for a job's current run to every node it runs on.
    pub(crate) fn stop_everywhere(&mut self, id: u64, signal: &str, grace_s: u64) {
        self.send_to_run(id, |job, attempt| Assignment::Stop {
            job,
            attempt,
            signal: signal.to_string(),
            grace_s,
        });
    }

    /// Sends an assignment about a job's current run (made from the job id and attempt) to each of its nodes.
    pub(crate) fn send_to_run(&mut self, id: u64, make: impl Fn(u64, u32) -> Assignment) {
        let r = &self.jobs[&id];
        let nodes: BTreeSet<String> = r.replicas.iter().map(|p| p.node.clone()).collect();
        let attempt = r.attempt;
        for node in nodes {
            self.send(&node, make(id, attempt));
        }
    }
}

/// The signal a job wants before it is stopped (Slurm's `--signal=[B:]SIG[@secs]`), SIGTERM by default.
pub fn stop_signal(sub: &SubmitJob) -> String {
    let Some(s) = sub.signal.as_deref() else {
        return "SIGTERM".to_string();
    };
    let s = s.strip_prefix("B:").unwrap_or(s);
    let name = s.split('@').next().unwrap_or(s).trim();
    if name.is_empty() {
        return "SIGTERM".to_string();
    }
    if name.chars().all(|c| c.is_ascii_digit()) || name.starts_with("SIG") {
        name.to_string()
    } else {
        format!("SIG{name}")
    }
}

/// A job's row.
pub fn job_row(r: &JobRecord) -> JobRow {
    JobRow {
        id: r.id,
        tenant: r.tenant.clone(),
        state: r.state.name().to_string(),
        record: serde_json::to_string(r).expect("serializable"),
    }
}

/// Checks a name used in URLs and tables.
pub fn valid_name(what: &str, name: &str) -> Result<(), Refused> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Refused::Invalid(format!(
            "{what} name '{name}': use 1 to 128 letters, digits, '-', '_' or '.'"
        )))
    }
}
