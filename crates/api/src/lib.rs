//! wanka's HTTP/JSON API (version 1): the request and response bodies the server, the CLI and the node agent
//! exchange, and the parser of Slurm-style batch scripts. Plain serde types, no I/O.

pub mod date;
pub mod lease;
pub mod sbatch;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The path prefix of every API route.
pub const PREFIX: &str = "/api/v1";

/// An error response: what was wrong, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// The message.
    pub error: String,
}

/// A job submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// Job name.
    #[serde(default)]
    pub name: Option<String>,
    /// Owner; a tenant token submits as its own tenant, an admin must name one.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Replicas (nodes' worth of the gang; Slurm: --nodes × --ntasks-per-node share devices).
    #[serde(default = "one")]
    pub replicas: u32,
    /// Devices per replica (0 for a host-only job).
    #[serde(default = "one")]
    pub devices_per_replica: u32,
    /// Processes per replica (Slurm --ntasks-per-node): each gets its own RANK and LOCAL_RANK.
    #[serde(default = "one")]
    pub tasks_per_node: u32,
    /// A fraction of one device, thousandths.
    #[serde(default)]
    pub fraction_milli: Option<u32>,
    /// Accepted accelerator models (catalog names or aliases); empty with `stacks` empty: any.
    #[serde(default)]
    pub models: Vec<String>,
    /// Accepted software stacks (cuda, cann, neuware, dtk, musa, maca, corex, xpu).
    #[serde(default)]
    pub stacks: Vec<String>,
    /// Priority class: guaranteed, standard (default) or preemptible.
    #[serde(default)]
    pub class: Option<String>,
    /// Time limit in seconds (also the runtime estimate backfill uses).
    #[serde(default)]
    pub time_limit_s: Option<u64>,
    /// Host CPU per replica, thousandths of a core.
    #[serde(default)]
    pub cpu_milli: u64,
    /// Host memory per replica, MiB.
    #[serde(default)]
    pub memory_mib: u64,
    /// Device memory needed per device, GiB.
    #[serde(default)]
    pub device_memory_gib: f64,
    /// Each replica takes a whole node.
    #[serde(default)]
    pub whole_nodes: bool,
    /// Job class for the throughput matrix.
    #[serde(default)]
    pub workload: Option<String>,
    /// The batch script to run (its `#SBATCH` lines already applied by the client).
    #[serde(default)]
    pub script: Option<String>,
    /// A command line to run; with a script, the script's arguments.
    #[serde(default)]
    pub command: Vec<String>,
    /// Extra environment variables for the job's processes.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Requeue the job after a node failure or preemption (default true).
    #[serde(default)]
    pub requeue: Option<bool>,
    /// Signal sent before the job is stopped, and how many seconds before (Slurm --signal).
    #[serde(default)]
    pub signal: Option<String>,
    /// The "checkpoint now" signal (default SIGUSR1): sent before a job is moved off a failing node.
    #[serde(default)]
    pub checkpoint_signal: Option<String>,
    /// Where stdout goes (Slurm -o pattern).
    #[serde(default)]
    pub stdout: Option<String>,
    /// Where stderr goes (Slurm -e pattern).
    #[serde(default)]
    pub stderr: Option<String>,
    /// Slurm partition (kept for accounting and display).
    #[serde(default)]
    pub partition: Option<String>,
}

fn one() -> u32 {
    1
}

impl Default for SubmitJob {
    /// The same defaults as an empty JSON object: one replica of one device, everything else unset.
    fn default() -> SubmitJob {
        SubmitJob {
            name: None,
            tenant: None,
            replicas: 1,
            devices_per_replica: 1,
            tasks_per_node: 1,
            fraction_milli: None,
            models: Vec::new(),
            stacks: Vec::new(),
            class: None,
            time_limit_s: None,
            cpu_milli: 0,
            memory_mib: 0,
            device_memory_gib: 0.0,
            whole_nodes: false,
            workload: None,
            script: None,
            command: Vec::new(),
            env: BTreeMap::new(),
            requeue: None,
            signal: None,
            checkpoint_signal: None,
            stdout: None,
            stderr: None,
            partition: None,
        }
    }
}

/// The answer to a submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submitted {
    /// The new job's id.
    pub id: u64,
}

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Waiting for devices.
    Pending,
    /// Devices assigned, processes being started.
    Starting,
    /// Running.
    Running,
    /// Asked to checkpoint and leave for a higher-priority job.
    Preempting,
    /// Finished with exit code 0.
    Completed,
    /// Finished otherwise.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl JobState {
    /// Every state, for parsing and listings.
    pub const ALL: [JobState; 7] = [
        JobState::Pending,
        JobState::Starting,
        JobState::Running,
        JobState::Preempting,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Preempting => "preempting",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a state name.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|x| x.name() == s)
    }

    /// True while a job in this state holds devices.
    pub fn holds_devices(self) -> bool {
        matches!(
            self,
            JobState::Starting | JobState::Running | JobState::Preempting
        )
    }

    /// True when the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }

    /// Slurm's two-letter code (squeue's ST column).
    pub fn slurm_code(self) -> &'static str {
        match self {
            JobState::Pending => "PD",
            JobState::Starting => "CF",
            JobState::Running => "R",
            JobState::Preempting => "S",
            JobState::Completed => "CD",
            JobState::Failed => "F",
            JobState::Cancelled => "CA",
        }
    }
}

/// Where one replica of a job runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaView {
    /// Node name.
    pub node: String,
    /// Device indices on the node.
    pub devices: Vec<u32>,
    /// Share of the device for a fractional job, thousandths.
    pub fraction_milli: Option<u32>,
}

/// A job as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Owner.
    pub tenant: String,
    /// State.
    pub state: JobState,
    /// Why it waits (pending jobs), or why it ended.
    pub reason: Option<String>,
    /// The submission.
    pub spec: SubmitJob,
    /// Submission time, Unix seconds.
    pub submitted_at: f64,
    /// First start, Unix seconds.
    pub started_at: Option<f64>,
    /// End, Unix seconds.
    pub ended_at: Option<f64>,
    /// Accelerator model of the current or last allocation.
    pub model: Option<String>,
    /// Where it runs (or ran last).
    pub replicas: Vec<ReplicaView>,
    /// Exit code of the last run.
    pub exit_code: Option<i32>,
    /// Training progress, for jobs that report it ($WANKA_PROGRESS_FILE).
    #[serde(default)]
    pub progress: Option<ProgressView>,
    /// Whose capacity the current or last run uses: `leased`, `on-demand` or `borrowed` (reclaimable).
    #[serde(default)]
    pub usage: Option<String>,
}

/// A job's progress and its effective training time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressView {
    /// Highest step reached.
    pub step: u64,
    /// Step of the last checkpoint written.
    pub checkpoint_step: Option<u64>,
    /// Seconds spent on steps beyond the previous maximum (redone work excluded).
    pub productive_s: f64,
    /// Seconds since the first start (until the end).
    pub wall_s: f64,
    /// productive_s / wall_s.
    pub ettr: f64,
    /// Runs restarted after a fault or moved off a failing node.
    pub restarts: u32,
}

/// Progress lines an agent read from a job's $WANKA_PROGRESS_FILE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressReport {
    /// Node name.
    pub node: String,
    /// Job id.
    pub job: u64,
    /// The run.
    pub attempt: u32,
    /// Replica rank.
    pub rank: u32,
    /// Process on the node (LOCAL_RANK).
    pub task: u32,
    /// The records, in file order.
    pub records: Vec<ProgressRecord>,
}

/// One line of a progress file: `{"step": N, "step_time_s": x}` or `{"checkpoint": N}`, stamped with the
/// time the agent read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    /// When the agent read it, Unix seconds.
    #[serde(default)]
    pub at: f64,
    /// Training step completed.
    #[serde(default)]
    pub step: Option<u64>,
    /// Seconds that step took.
    #[serde(default)]
    pub step_time_s: Option<f64>,
    /// Step whose checkpoint has been written.
    #[serde(default)]
    pub checkpoint: Option<u64>,
}

/// One state change of a job, with its reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Sequence number within the job.
    pub seq: u32,
    /// When, Unix seconds.
    pub at: f64,
    /// The state entered.
    pub state: JobState,
    /// Why.
    pub reason: String,
}

/// Seconds a job held devices, from its event history: each run holds them from its start until the job leaves
/// the holding states or starts over (the device-time its usage records must add up to).
pub fn held_seconds(events: &[JobEvent]) -> f64 {
    let mut since: Option<f64> = None;
    let mut held = 0.0;
    for e in events {
        if let Some(t) = since
            && (!e.state.holds_devices() || e.state == JobState::Starting)
        {
            held += e.at - t;
            since = None;
        }
        if e.state == JobState::Starting {
            since = Some(e.at);
        }
    }
    held
}

/// A node's condition as operators set it or the server sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    /// Takes work.
    Ready,
    /// Takes no new work; running work stays.
    Cordoned,
    /// Takes no new work; running work is left to finish (Slurm's DRAIN; drained once nothing is allocated).
    Draining,
    /// Missed its heartbeats.
    Lost,
    /// A hot spare: takes no ordinary work, only jobs restarted after a fault elsewhere.
    Spare,
}

/// A node as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// Accelerator model (catalog name).
    pub model: String,
    /// Devices.
    pub devices: u32,
    /// Devices allocated now.
    pub allocated: u32,
    /// Indices of unhealthy devices.
    pub unhealthy: Vec<u32>,
    /// Condition.
    pub state: NodeState,
    /// Leaf switch.
    pub leaf: String,
    /// Spine.
    pub spine: String,
    /// Last heartbeat, Unix seconds.
    pub last_heartbeat: Option<f64>,
    /// Devices the server's risk engine holds out of service (a fault, or a precursor of one).
    #[serde(default)]
    pub held: Vec<u32>,
    /// Cordoned for repeated faults until an operator resumes it.
    #[serde(default)]
    pub quarantined: bool,
    /// Per-device telemetry from the last heartbeat.
    #[serde(default)]
    pub telemetry: Vec<DeviceTelemetry>,
}

/// A tenant as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantView {
    /// Name.
    pub name: String,
    /// Fair-share weight.
    pub weight: f64,
    /// Device quota.
    pub quota_devices: Option<u32>,
    /// Devices held now.
    pub devices_in_use: u32,
    /// Weighted dominant share now.
    pub share: f64,
}

/// Creating or changing a tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutTenant {
    /// Fair-share weight (default 1).
    #[serde(default)]
    pub weight: Option<f64>,
    /// Device quota (none: unlimited).
    #[serde(default)]
    pub quota_devices: Option<u32>,
}

/// A role a token carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Its own jobs; reading nodes and tenants.
    Tenant,
    /// The agent protocol only.
    Agent,
}

/// Asking for a new token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Role.
    pub role: Role,
    /// For a tenant token: the tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// A label to recognize it by.
    #[serde(default)]
    pub label: Option<String>,
}

/// A new token (shown once; the server keeps only its hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// The bearer token.
    pub token: String,
}

/// An agent registering its node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterNode {
    /// Host name.
    pub name: String,
    /// Accelerator model (catalog name or alias).
    pub model: String,
    /// Devices.
    pub devices: u32,
    /// CPU, thousandths of a core.
    pub cpu_milli: u64,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Leaf switch.
    #[serde(default)]
    pub leaf: Option<String>,
    /// Spine.
    #[serde(default)]
    pub spine: Option<String>,
    /// Address other replicas reach this node at (for MASTER_ADDR).
    #[serde(default)]
    pub address: Option<String>,
    /// Interconnect island of each device (NVLink, HCCS, MetaXLink groups); empty: one island.
    #[serde(default)]
    pub domains: Vec<u8>,
    /// Replicas the agent runs now (after its restart: the ones it re-adopted), so the server can tell
    /// which of them are stale and which of its runs on this node were lost.
    #[serde(default)]
    pub tasks: Vec<TaskRef>,
}

/// One replica run on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskRef {
    /// Job id.
    pub job: u64,
    /// The run.
    pub attempt: u32,
    /// Replica rank.
    pub rank: u32,
}

/// One device's telemetry in a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceTelemetry {
    /// Device index.
    pub index: u32,
    /// Healthy as the agent judges it.
    pub healthy: bool,
    /// Utilization, percent.
    #[serde(default)]
    pub utilization: Option<f64>,
    /// Memory used, MiB.
    #[serde(default)]
    pub memory_used_mib: Option<u64>,
    /// Temperature, Celsius.
    #[serde(default)]
    pub temperature_c: Option<f64>,
    /// Memory, MiB.
    #[serde(default)]
    pub memory_total_mib: Option<u64>,
    /// Power draw, watts.
    #[serde(default)]
    pub power_w: Option<f64>,
    /// The vendor's health word (OK, Warning, Alarm, Critical, ...), when its tool gives one.
    #[serde(default)]
    pub health: Option<String>,
    /// Fault codes the device reports now (NVIDIA XIDs as `xid-79`, Ascend error codes, ...).
    #[serde(default)]
    pub faults: Vec<String>,
    /// Correctable ECC errors since the driver loaded.
    #[serde(default)]
    pub ecc_corrected: Option<u64>,
    /// Uncorrectable ECC errors since the driver loaded.
    #[serde(default)]
    pub ecc_uncorrected: Option<u64>,
}

/// A heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Node name.
    pub node: String,
    /// Per-device telemetry.
    #[serde(default)]
    pub devices: Vec<DeviceTelemetry>,
}

/// Work the server hands to an agent: start or stop one replica of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Assignment {
    /// Start a replica.
    Start {
        /// Job id.
        job: u64,
        /// Which run of the job this is (1 for the first; a requeued job starts again with the next).
        attempt: u32,
        /// Replica rank (NODE_RANK).
        rank: u32,
        /// Replicas in the gang.
        replicas: u32,
        /// Devices on this node.
        devices: Vec<u32>,
        /// Processes to start for this replica (each with its RANK and LOCAL_RANK).
        #[serde(default = "one")]
        tasks: u32,
        /// Environment the process must get (visible devices, distributed-training variables, ...).
        env: BTreeMap<String, String>,
        /// The batch script, if any.
        script: Option<String>,
        /// The command when there is no script; with a script, the script's arguments.
        command: Vec<String>,
    },
    /// Stop a replica: signal, wait `grace_s`, then kill.
    Stop {
        /// Job id.
        job: u64,
        /// The run to stop.
        attempt: u32,
        /// Signal to send first (e.g. SIGUSR1 to checkpoint, SIGTERM).
        signal: String,
        /// Seconds before the kill.
        grace_s: u64,
    },
    /// Send a signal to a run's processes without stopping them ("checkpoint now").
    Signal {
        /// Job id.
        job: u64,
        /// The run.
        attempt: u32,
        /// The signal.
        signal: String,
    },
    /// Inject (or clear) a fault on a device of a node with simulated devices.
    Fault(InjectFault),
}

/// A fault to inject into a simulated device (development and tests); the agent applies it at its next
/// reading of the devices.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectFault {
    /// Device index.
    pub device: u32,
    /// NVIDIA XIDs to raise.
    #[serde(default)]
    pub xid: Vec<u64>,
    /// Health level to set (OK, Warning, Alarm, Critical).
    #[serde(default)]
    pub health: Option<String>,
    /// Correctable ECC error count to report.
    #[serde(default)]
    pub ecc_corrected: Option<u64>,
    /// Uncorrectable ECC error count to report.
    #[serde(default)]
    pub ecc_uncorrected: Option<u64>,
    /// Vendor error codes to report.
    #[serde(default)]
    pub codes: Vec<String>,
    /// Remove every fault of the device instead.
    #[serde(default)]
    pub clear: bool,
}

/// An agent's report on a replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskReport {
    /// Node name.
    pub node: String,
    /// Job id.
    pub job: u64,
    /// The run this report is about (from the Start assignment).
    pub attempt: u32,
    /// Replica rank on this node.
    pub rank: u32,
    /// What happened: running, exited.
    pub state: TaskState,
    /// Exit code when exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
}

/// A replica's state as an agent reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    /// The process runs.
    Running,
    /// The process ended.
    Exited,
    /// The agent lost track of the process (it restarted and found neither the process nor its exit code).
    Lost,
}

/// The answer to a node registration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// The node's name as the server knows it.
    pub node: String,
    /// The server's run: assignment sequence numbers start again when it changes.
    pub epoch: u64,
    /// Of the tasks the agent listed, those the server no longer runs there: the agent stops them.
    #[serde(default)]
    pub stale: Vec<TaskRef>,
}

/// One assignment with its place in the node's sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Numbered {
    /// Sequence number within the server's epoch; an agent asks for those after the last it carried out.
    pub seq: u64,
    /// The work.
    #[serde(flatten)]
    pub assignment: Assignment,
}

/// Assignments waiting for a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    /// The server's run (see [`Registered::epoch`]).
    pub epoch: u64,
    /// The work, in order.
    pub assignments: Vec<Numbered>,
}

/// The variables that tell one process of a replica who it is among all the job's processes, as torchrun
/// and Slurm's srun set them: replica `rank` of `replicas`, process `local` of `tasks` on its node.
pub fn process_env(
    rank: u32,
    replicas: u32,
    local: u32,
    tasks: u32,
) -> [(&'static str, String); 8] {
    let global = rank * tasks + local;
    let world = replicas * tasks;
    [
        ("RANK", global.to_string()),
        ("LOCAL_RANK", local.to_string()),
        ("LOCAL_WORLD_SIZE", tasks.to_string()),
        ("WORLD_SIZE", world.to_string()),
        ("SLURM_PROCID", global.to_string()),
        ("SLURM_LOCALID", local.to_string()),
        ("SLURM_NTASKS", world.to_string()),
        ("WANKA_TASK_RANK", global.to_string()),
    ]
}

/// A piece of a task's output, shipped by its agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogChunk {
    /// Node name.
    pub node: String,
    /// Which stream of which process.
    #[serde(flatten)]
    pub stream: LogStream,
    /// Byte offset of `data` in the stream.
    pub offset: u64,
    /// The bytes, as text (invalid UTF-8 replaced).
    pub data: String,
    /// The process has ended and this is the last chunk.
    #[serde(default)]
    pub eof: bool,
}

/// One output stream of one process of a job.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LogStream {
    /// Job id.
    pub job: u64,
    /// The run.
    pub attempt: u32,
    /// Replica rank.
    pub rank: u32,
    /// Process on the replica's node (LOCAL_RANK).
    pub task: u32,
    /// `stdout` or `stderr`.
    pub stream: String,
}

/// What the server holds of one stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogInfo {
    /// Which stream.
    #[serde(flatten)]
    pub stream: LogStream,
    /// Bytes held.
    pub size: u64,
    /// The process has ended and all its output arrived.
    pub complete: bool,
}

/// Bytes of one stream from an offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogText {
    /// The text.
    pub data: String,
    /// Offset to ask from next time.
    pub next: u64,
    /// No more will come.
    pub complete: bool,
}

/// The offset a log stream's server copy has reached (the answer to a chunk).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogAck {
    /// Bytes held; the agent sends from here.
    pub size: u64,
}

/// Something the server did to a node, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeEvent {
    /// When, Unix seconds.
    pub at: f64,
    /// What (`hold-device`, `release-device`, `cordon`, `quarantine`, `ready`, ...).
    pub action: String,
    /// Why.
    pub reason: String,
}

/// Cancelling a job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelJob {
    /// Why (recorded in the job's events).
    #[serde(default)]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_submission_matches_an_empty_json_object() {
        let from_json: SubmitJob = serde_json::from_str("{}").unwrap();
        assert_eq!(from_json, SubmitJob::default());
    }
}
