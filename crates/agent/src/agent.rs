//! The agent's life: find the devices, register the node (with the replicas it still runs), heartbeat,
//! carry out assignments, watch the processes, ship their output, report how they ended.

use crate::backend::{self, BackendError};
use crate::device::{Backend, Probe};
use crate::process;
use crate::ship;
use crate::task::{self, Outcome, Proc, Record, StartSpec, TaskError};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Notify, watch};
use wanka_api::{
    Assignment, DeviceTelemetry, Heartbeat, LogStream, RegisterNode, TaskRef, TaskReport, TaskState,
};
use wanka_model::Catalog;
use wanka_server::client::{Client, ClientError};

/// Longest an assignment poll waits at the server.
const POLL_WAIT_S: u64 = 25;

/// How an agent runs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Server base URL.
    pub server: String,
    /// Agent (or admin) token.
    pub token: String,
    /// Node name.
    pub name: String,
    /// Where task files and records live.
    pub work_dir: PathBuf,
    /// Device backend name (see [`backend::NAMES`]).
    pub backend: String,
    /// The simulated backend's device file.
    pub devices_file: Option<PathBuf>,
    /// Where vendor tools are looked up before the PATH.
    pub bin_dir: Option<PathBuf>,
    /// The accelerator model, when the devices' own names do not say it (or to override them).
    pub model: Option<String>,
    /// Leaf switch.
    pub leaf: Option<String>,
    /// Spine.
    pub spine: Option<String>,
    /// Address other nodes reach this one at (MASTER_ADDR); default: the node name.
    pub address: Option<String>,
    /// Schedulable CPU, thousandths of a core; default: all of this machine's.
    pub cpu_milli: Option<u64>,
    /// Schedulable memory, MiB; default: all of this machine's.
    pub memory_mib: Option<u64>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// How often the devices are read; a change of health is sent at once (capped by the heartbeat period).
    pub probe: Duration,
    /// Grace between SIGTERM and SIGKILL when a replica's sibling process failed.
    pub kill_grace: Duration,
    /// The task shim: program and leading arguments (`wanka task-shim`).
    pub shim: Vec<OsString>,
    /// Print only problems.
    pub quiet: bool,
}

/// Why an agent stopped.
#[derive(Debug, Error)]
pub enum AgentError {
    /// The device backend could not be set up.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// No devices were found.
    #[error(
        "no accelerators found by the {backend} backend{why}; pick one with --backend, or --backend simulated --devices FILE"
    )]
    NoDevices {
        /// Backend name.
        backend: &'static str,
        /// What it said.
        why: String,
    },
    /// The devices do not map to one catalog model.
    #[error("{0}")]
    Model(String),
    /// The server refused the agent.
    #[error("the server refused node '{node}': {source}")]
    Refused {
        /// Node name.
        node: String,
        /// Its answer.
        source: ClientError,
    },
    /// A task could not be started.
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// A replica the agent runs.
struct Replica {
    record: Record,
}

/// Shared parts of a running agent.
struct Shared {
    cfg: AgentConfig,
    client: Client,
    replicas: Mutex<BTreeMap<TaskRef, Replica>>,
    backend: Mutex<Box<dyn Backend>>,
    /// Devices registered.
    devices: u32,
    /// Woken when the server no longer knows the node.
    reregister: Notify,
    /// Woken when the devices changed and the server should hear it before the next period.
    beat_now: Notify,
}

impl Shared {
    fn say(&self, msg: impl AsRef<str>) {
        if !self.cfg.quiet {
            eprintln!("[agent {}] {}", self.cfg.name, msg.as_ref());
        }
    }

    fn warn(&self, msg: impl AsRef<str>) {
        eprintln!("[agent {}] {}", self.cfg.name, msg.as_ref());
    }

    fn running(&self) -> Vec<TaskRef> {
        self.replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }
}

/// The catalog model of the devices, from their names (or the configured model).
pub fn resolve_model(
    catalog: &Catalog,
    configured: Option<&str>,
    probe: &Probe,
) -> Result<String, String> {
    if let Some(m) = configured {
        let id = catalog.lookup(m).map_err(|e| format!("--model: {e}"))?;
        return Ok(catalog.model(id).name.clone());
    }
    let mut found: Vec<String> = Vec::new();
    for d in &probe.devices {
        let Some(name) = &d.name else {
            return Err(format!(
                "device {} reports no product name; give the model with --model",
                d.index
            ));
        };
        let candidates = [
            name.clone(),
            name.trim_start_matches("NVIDIA ").to_string(),
            name.trim_start_matches("Ascend ").to_string(),
        ];
        let id = candidates
            .iter()
            .find_map(|c| catalog.lookup(c).ok())
            .ok_or_else(|| {
                let e = catalog.lookup(name).expect_err("not found above");
                format!("device {}: {e}; give the model with --model", d.index)
            })?;
        let canonical = catalog.model(id).name.clone();
        if !found.contains(&canonical) {
            found.push(canonical);
        }
    }
    match &found[..] {
        [one] => Ok(one.clone()),
        [] => Err("no devices".into()),
        many => Err(format!(
            "the node mixes {}; wanka registers one model per node: give it with --model",
            many.join(" and ")
        )),
    }
}

/// This machine's memory, MiB.
fn machine_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// The heartbeat's devices: what the probe read, and every registered device it did not (a device that
/// vanished is not healthy).
fn telemetry(probe: &Probe, devices: u32) -> Vec<DeviceTelemetry> {
    (0..devices)
        .map(|i| match probe.devices.iter().find(|d| d.index == i) {
            Some(d) => d.telemetry(),
            None => DeviceTelemetry {
                index: i,
                healthy: false,
                health: Some("Critical".into()),
                faults: vec!["missing: not listed by the device backend".into()],
                ..DeviceTelemetry::default()
            },
        })
        .collect()
}

/// A handle on a running agent.
pub struct Running {
    shared: Arc<Shared>,
    /// Ends when the agent stops.
    pub done: tokio::task::JoinHandle<Result<(), AgentError>>,
}

impl Running {
    /// Stops every replica the agent runs: SIGTERM, then SIGKILL after `grace`; waits until they are gone.
    pub async fn stop_all(&self, grace: Duration) {
        let groups: Vec<i32> = {
            let r = self
                .shared
                .replicas
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            r.values()
                .flat_map(|x| x.record.processes.iter().map(|p| p.pid))
                .collect()
        };
        for g in &groups {
            process::signal_group(*g, libc::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while groups.iter().any(|g| process::group_alive(*g))
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for g in &groups {
            process::signal_group(*g, libc::SIGKILL);
        }
    }
}

/// Starts an agent: finds the devices, re-adopts what an earlier run left, registers, and runs until
/// `done` is aborted or a fatal error.
pub async fn start(cfg: AgentConfig, catalog: &Catalog) -> Result<Running, AgentError> {
    let (name, bin_dir, devices) = (
        cfg.backend.clone(),
        cfg.bin_dir.clone(),
        cfg.devices_file.clone(),
    );
    let (backend, probe) = tokio::task::spawn_blocking(move || {
        let mut b = backend::select(&name, bin_dir, devices)?;
        let p = b.probe();
        Ok::<_, BackendError>((b, p))
    })
    .await
    .expect("probe task")?;
    if probe.devices.is_empty() {
        let why = probe
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(AgentError::NoDevices {
            backend: backend.name(),
            why: if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            },
        });
    }
    let model = resolve_model(catalog, cfg.model.as_deref(), &probe).map_err(AgentError::Model)?;
    let client = Client::new(&cfg.server, Some(cfg.token.clone()));
    let registration = RegisterNode {
        name: cfg.name.clone(),
        model,
        devices: probe.devices.len() as u32,
        cpu_milli: cfg.cpu_milli.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1000, |n| n.get() as u64 * 1000)
        }),
        memory_mib: cfg.memory_mib.unwrap_or_else(machine_memory_mib),
        leaf: cfg.leaf.clone(),
        spine: cfg.spine.clone(),
        address: cfg.address.clone(),
        domains: probe.domains.clone(),
        tasks: Vec::new(),
    };
    for e in &probe.errors {
        eprintln!("[agent {}] {e}", cfg.name);
    }
    let shared = Arc::new(Shared {
        devices: registration.devices,
        cfg,
        client,
        replicas: Mutex::new(BTreeMap::new()),
        backend: Mutex::new(backend),
        reregister: Notify::new(),
        beat_now: Notify::new(),
    });
    shared.say(format!(
        "{} x {} via {}",
        registration.devices,
        registration.model,
        shared
            .backend
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .name()
    ));
    let leftovers = adopt(&shared);
    let epoch = register(&shared, &registration).await?;
    for (record, outcome) in leftovers {
        tokio::spawn(finish(shared.clone(), record, outcome));
    }
    tokio::spawn(heartbeats(shared.clone()));
    let done = tokio::spawn(assignments(shared.clone(), registration, epoch));
    Ok(Running { shared, done })
}

/// Takes back the replicas an earlier run of the agent left: live ones are watched again; those that ended
/// meanwhile are returned with their outcome, to be reported once the node is registered.
fn adopt(shared: &Arc<Shared>) -> Vec<(Record, Outcome)> {
    let work = &shared.cfg.work_dir;
    let (records, errors) = Record::load_all(work);
    for e in errors {
        shared.warn(format!("unreadable task record {e}"));
    }
    let mut ended = Vec::new();
    for record in records {
        // Listed at registration either way: a replica that ended meanwhile is reported with its exit
        // code right after, not mistaken for one lost.
        shared
            .replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                record.task,
                Replica {
                    record: record.clone(),
                },
            );
        let live = record
            .processes
            .iter()
            .any(|p| process::alive(p.pid, p.start_ticks));
        if live {
            shared.say(format!(
                "re-adopted job {} rank {} ({} process(es))",
                record.task.job,
                record.task.rank,
                record.processes.len()
            ));
            let procs = record.processes.clone();
            let waits = procs
                .into_iter()
                .map(|p| {
                    Box::pin(async move {
                        let o = task::wait_adopted(&p).await;
                        (p.local, o)
                    }) as WaitFuture
                })
                .collect();
            tokio::spawn(watch_replica(shared.clone(), record, waits));
        } else {
            let outcome = combine(record.processes.iter().map(|p| {
                match process::read_exit_file(&p.exit_file) {
                    Some(c) => Outcome::Exited(c),
                    None => Outcome::Lost,
                }
            }));
            ended.push((record, outcome));
        }
    }
    ended
}

/// A replica's outcome from its processes': lost if any was lost, else the first failure, else success.
fn combine(outcomes: impl Iterator<Item = Outcome>) -> Outcome {
    let mut result = Outcome::Exited(0);
    for o in outcomes {
        match (o, result) {
            (Outcome::Lost, _) => result = Outcome::Lost,
            (Outcome::Exited(c), Outcome::Exited(0)) if c != 0 => result = Outcome::Exited(c),
            _ => {}
        }
    }
    result
}

/// Registers (again), sending the replicas the agent runs; stops those the server says are stale. Retries
/// while the server cannot be reached; a refusal is fatal.
async fn register(shared: &Arc<Shared>, base: &RegisterNode) -> Result<u64, AgentError> {
    let mut delay = Duration::from_millis(200);
    loop {
        let reg = RegisterNode {
            tasks: shared.running(),
            ..base.clone()
        };
        match shared.client.register(&reg).await {
            Ok(r) => {
                for t in &r.stale {
                    shared.say(format!(
                        "stopping job {} rank {}: the server has moved it on",
                        t.job, t.rank
                    ));
                    stop(
                        shared,
                        t.job,
                        t.attempt,
                        libc::SIGTERM,
                        shared.cfg.kill_grace,
                    );
                }
                return Ok(r.epoch);
            }
            Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                return Err(AgentError::Refused {
                    node: base.name.clone(),
                    source: e,
                });
            }
            Err(e) => {
                shared.warn(format!("{e}; retrying"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// What of a device's reading is news for the server at once (not its utilization or temperature).
type Condition<'a> = (bool, Option<&'a str>, &'a [String], Option<u64>);

/// The news-worthy part of each device's reading.
fn condition(t: &[DeviceTelemetry]) -> Vec<Condition<'_>> {
    t.iter()
        .map(|d| {
            (
                d.healthy,
                d.health.as_deref(),
                d.faults.as_slice(),
                d.ecc_uncorrected,
            )
        })
        .collect()
}

/// Reads the devices every probe period and heartbeats every heartbeat period, or at once when a device's
/// health, faults or uncorrectable errors changed: a fault reaches the server within one probe period.
async fn heartbeats(shared: Arc<Shared>) {
    let probe_every = shared.cfg.probe.min(shared.cfg.heartbeat);
    let mut ticks = tokio::time::interval(probe_every);
    let mut last_errors: Vec<String> = Vec::new();
    let mut last_sent: Option<(tokio::time::Instant, Vec<DeviceTelemetry>)> = None;
    loop {
        let forced = tokio::select! {
            _ = ticks.tick() => false,
            _ = shared.beat_now.notified() => true,
        };
        let s = shared.clone();
        let probe = tokio::task::spawn_blocking(move || {
            s.backend.lock().unwrap_or_else(|e| e.into_inner()).probe()
        })
        .await
        .unwrap_or_default();
        let errors: Vec<String> = probe.errors.iter().map(|e| e.to_string()).collect();
        if errors != last_errors {
            for e in &errors {
                shared.warn(e);
            }
            last_errors = errors;
        }
        let devices = telemetry(&probe, shared.devices);
        let due = match &last_sent {
            None => true,
            Some((at, sent)) => {
                forced
                    || at.elapsed() >= shared.cfg.heartbeat
                    || condition(sent) != condition(&devices)
            }
        };
        if !due {
            continue;
        }
        let hb = Heartbeat {
            node: shared.cfg.name.clone(),
            devices,
        };
        match shared.client.heartbeat(&hb).await {
            Ok(()) => last_sent = Some((tokio::time::Instant::now(), hb.devices)),
            Err(e) if e.status() == Some(404) => shared.reregister.notify_one(),
            Err(e) => shared.warn(format!("heartbeat: {e}")),
        }
    }
}

async fn assignments(
    shared: Arc<Shared>,
    registration: RegisterNode,
    mut epoch: u64,
) -> Result<(), AgentError> {
    let mut after = 0u64;
    loop {
        let poll = tokio::select! {
            r = shared.client.poll(&shared.cfg.name, Some(epoch), after, POLL_WAIT_S) => r,
            _ = shared.reregister.notified() => {
                epoch = register(&shared, &registration).await?;
                after = 0;
                continue;
            }
        };
        match poll {
            Ok(a) => {
                if a.epoch != epoch {
                    // The server restarted: tell it what runs here before taking its new numbering.
                    shared.say("the server restarted; registering again");
                    epoch = register(&shared, &registration).await?;
                    after = 0;
                    if a.epoch != epoch {
                        continue;
                    }
                }
                for n in a.assignments {
                    if n.seq <= after {
                        continue;
                    }
                    carry_out(&shared, n.assignment);
                    after = n.seq;
                }
            }
            Err(e) if e.status() == Some(404) => {
                epoch = register(&shared, &registration).await?;
                after = 0;
            }
            Err(e) if matches!(e.status(), Some(401 | 403)) => {
                return Err(AgentError::Refused {
                    node: shared.cfg.name.clone(),
                    source: e,
                });
            }
            Err(e) => {
                shared.warn(format!("{e}; retrying"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn carry_out(shared: &Arc<Shared>, a: Assignment) {
    match a {
        Assignment::Start {
            job,
            attempt,
            rank,
            replicas,
            devices,
            tasks,
            env,
            script,
            command,
        } => {
            let t = TaskRef { job, attempt, rank };
            if shared
                .replicas
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&t)
            {
                return;
            }
            let spec = StartSpec {
                task: t,
                replicas,
                tasks,
                devices,
                env,
                script,
                command,
            };
            match task::launch(&shared.cfg.work_dir, &shared.cfg.shim, &spec) {
                Ok((record, children)) => {
                    shared.say(format!(
                        "job {job} rank {rank}: started {} process(es) on devices {:?}",
                        record.processes.len(),
                        spec.devices
                    ));
                    shared
                        .replicas
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(
                            t,
                            Replica {
                                record: record.clone(),
                            },
                        );
                    let waits = record
                        .processes
                        .iter()
                        .cloned()
                        .zip(children)
                        .map(|(p, c)| {
                            Box::pin(async move {
                                let o = task::wait_child(&p, c).await;
                                (p.local, o)
                            }) as WaitFuture
                        })
                        .collect();
                    let report = TaskReport {
                        node: shared.cfg.name.clone(),
                        job,
                        attempt,
                        rank,
                        state: TaskState::Running,
                        exit_code: None,
                    };
                    let s = shared.clone();
                    tokio::spawn(async move { deliver(&s, &report).await });
                    tokio::spawn(watch_replica(shared.clone(), record, waits));
                }
                Err(e) => {
                    shared.warn(format!("job {job} rank {rank}: {e}"));
                    let report = TaskReport {
                        node: shared.cfg.name.clone(),
                        job,
                        attempt,
                        rank,
                        state: TaskState::Exited,
                        exit_code: Some(127),
                    };
                    let s = shared.clone();
                    tokio::spawn(async move { deliver(&s, &report).await });
                }
            }
        }
        Assignment::Stop {
            job,
            attempt,
            signal,
            grace_s,
        } => {
            let sig = process::signal_number(&signal).unwrap_or_else(|| {
                shared.warn(format!(
                    "job {job}: unknown signal '{signal}'; sending SIGTERM"
                ));
                libc::SIGTERM
            });
            stop(shared, job, attempt, sig, Duration::from_secs(grace_s));
        }
        Assignment::Signal {
            job,
            attempt,
            signal,
        } => match process::signal_number(&signal) {
            Some(sig) => signal_run(shared, job, attempt, sig),
            None => shared.warn(format!("job {job}: unknown signal '{signal}'; not sent")),
        },
        Assignment::Fault(f) => {
            let s = shared.clone();
            tokio::spawn(async move {
                let what = format!("fault on device {}: {f:?}", f.device);
                let inner = s.clone();
                let result = tokio::task::spawn_blocking(move || {
                    inner
                        .backend
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .inject(&f)
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                match result {
                    Ok(()) => {
                        s.say(format!("injected {what}"));
                        s.beat_now.notify_one();
                    }
                    Err(e) => s.warn(format!("cannot inject {what}: {e}")),
                }
            });
        }
    }
}

/// The process groups of a run on this node.
fn groups_of(shared: &Arc<Shared>, job: u64, attempt: u32) -> Vec<i32> {
    shared
        .replicas
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|r| r.record.task.job == job && r.record.task.attempt == attempt)
        .flat_map(|r| r.record.processes.iter().map(|p| p.pid))
        .collect()
}

/// Sends a signal to a run's processes and leaves them running ("checkpoint now").
fn signal_run(shared: &Arc<Shared>, job: u64, attempt: u32, signal: i32) {
    let groups = groups_of(shared, job, attempt);
    shared.say(format!(
        "job {job}: signal {signal} to {} process group(s)",
        groups.len()
    ));
    for g in groups {
        process::signal_group(g, signal);
    }
}

/// Signals a run's processes on this node, and kills what is left after `grace`.
fn stop(shared: &Arc<Shared>, job: u64, attempt: u32, signal: i32, grace: Duration) {
    let groups = groups_of(shared, job, attempt);
    if groups.is_empty() {
        return;
    }
    shared.say(format!(
        "job {job}: signal {signal} to {} process group(s), kill after {} s",
        groups.len(),
        grace.as_secs()
    ));
    for g in &groups {
        process::signal_group(*g, signal);
    }
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        for g in groups {
            process::signal_group(g, libc::SIGKILL);
        }
    });
}

type WaitFuture = std::pin::Pin<Box<dyn std::future::Future<Output = (u32, Outcome)> + Send>>;

/// Watches a replica's processes and ships their output; when one fails the others are stopped (as
/// torchrun does), and when all have ended the replica's outcome is reported.
async fn watch_replica(shared: Arc<Shared>, record: Record, waits: Vec<WaitFuture>) {
    let (ended_tx, ended_rx) = watch::channel(false);
    let mut shippers = Vec::new();
    for p in &record.processes {
        for (stream, path) in [("stdout", &p.stdout), ("stderr", &p.stderr)] {
            shippers.push(tokio::spawn(ship::ship(
                shared.client.clone(),
                shared.cfg.name.clone(),
                LogStream {
                    job: record.task.job,
                    attempt: record.task.attempt,
                    rank: record.task.rank,
                    task: p.local,
                    stream: stream.into(),
                },
                path.clone(),
                ended_rx.clone(),
            )));
        }
    }
    for p in &record.processes {
        let s = shared.clone();
        shippers.push(tokio::spawn(crate::progress::follow(
            shared.client.clone(),
            shared.cfg.name.clone(),
            record.task,
            p.local,
            p.progress.clone(),
            ended_rx.clone(),
            move |m| s.warn(m),
        )));
    }
    let mut set = tokio::task::JoinSet::new();
    for w in waits {
        set.spawn(w);
    }
    let mut outcomes: BTreeMap<u32, Outcome> = BTreeMap::new();
    let mut siblings_stopped = false;
    while let Some(joined) = set.join_next().await {
        let (local, outcome) = joined.unwrap_or((u32::MAX, Outcome::Lost));
        outcomes.insert(local, outcome);
        if outcome != Outcome::Exited(0) && !siblings_stopped && !set.is_empty() {
            siblings_stopped = true;
            let others: Vec<&Proc> = record
                .processes
                .iter()
                .filter(|p| !outcomes.contains_key(&p.local))
                .collect();
            for p in &others {
                process::signal_group(p.pid, libc::SIGTERM);
            }
            let groups: Vec<i32> = others.iter().map(|p| p.pid).collect();
            let grace = shared.cfg.kill_grace;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                for g in groups {
                    process::signal_group(g, libc::SIGKILL);
                }
            });
        }
    }
    // Whatever the commands left behind in their groups goes with them.
    for p in &record.processes {
        if process::group_alive(p.pid) {
            process::signal_group(p.pid, libc::SIGKILL);
        }
    }
    let _ = ended_tx.send(true);
    for s in shippers {
        let _ = tokio::time::timeout(Duration::from_secs(30), s).await;
    }
    finish(shared, record, combine(outcomes.into_values())).await;
}

/// Reports a replica's end, then forgets it.
async fn finish(shared: Arc<Shared>, record: Record, outcome: Outcome) {
    let t = record.task;
    let (state, exit_code) = match outcome {
        Outcome::Exited(c) => (TaskState::Exited, Some(c)),
        Outcome::Lost => (TaskState::Lost, None),
    };
    shared.say(format!(
        "job {} rank {}: {}",
        t.job,
        t.rank,
        match outcome {
            Outcome::Exited(c) => format!("exited with code {c}"),
            Outcome::Lost => "lost while the agent was away".into(),
        }
    ));
    let report = TaskReport {
        node: shared.cfg.name.clone(),
        job: t.job,
        attempt: t.attempt,
        rank: t.rank,
        state,
        exit_code,
    };
    deliver(&shared, &report).await;
    record.remove(&shared.cfg.work_dir);
    shared
        .replicas
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&t);
}

/// Sends a report until the server has it (or refuses it for good).
async fn deliver(shared: &Arc<Shared>, report: &TaskReport) {
    let mut delay = Duration::from_millis(200);
    loop {
        match shared.client.report(report).await {
            Ok(()) => return,
            Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                shared.warn(format!(
                    "job {} rank {}: report refused: {e}",
                    report.job, report.rank
                ));
                return;
            }
            Err(e) => {
                shared.warn(format!("report: {e}; retrying"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Device;

    #[test]
    fn devices_name_their_catalog_model() {
        let c = Catalog::builtin();
        let mut p = Probe::default();
        for (i, n) in ["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"]
            .iter()
            .enumerate()
        {
            let mut d = Device::new(i as u32);
            d.name = Some(n.to_string());
            p.devices.push(d);
        }
        assert_eq!(resolve_model(&c, None, &p).unwrap(), "H100-SXM5-80GB");
        p.devices[1].name = Some("910B3".into());
        assert!(resolve_model(&c, None, &p).unwrap_err().contains("mixes"));
        assert_eq!(
            resolve_model(&c, Some("MLU370-X8"), &p).unwrap(),
            "MLU370-X8"
        );
        p.devices[1].name = None;
        assert!(resolve_model(&c, None, &p).unwrap_err().contains("--model"));
        let mut q = Probe::default();
        q.devices.push(Device::new(0));
        let t = telemetry(&q, 2);
        assert!(
            t[0].healthy && !t[1].healthy,
            "a device the backend no longer lists is not healthy"
        );
    }

    #[test]
    fn a_replica_fails_with_its_first_failure_and_is_lost_with_any_loss() {
        use Outcome::*;
        assert_eq!(combine([Exited(0), Exited(0)].into_iter()), Exited(0));
        assert_eq!(
            combine([Exited(0), Exited(3), Exited(143)].into_iter()),
            Exited(3)
        );
        assert_eq!(combine([Exited(3), Lost].into_iter()), Lost);
    }
}
