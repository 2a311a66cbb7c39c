//! One replica of a job on this node: its processes (one per task, each in its own process group under the
//! shim), the record that lets a restarted agent find them again, and their output files.
//!
//! Layout under the agent's work directory:
//! `jobs/<job>/<attempt>.<rank>/` holds the script, `task-<i>.out`, `task-<i>.err`, `task-<i>.exit`;
//! `tasks/<job>.<attempt>.<rank>.json` is the record, written before the server hears the replica runs and
//! removed once the server has its exit.

use crate::process;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use thiserror::Error;
use wanka_api::TaskRef;

/// What a Start assignment asks for.
#[derive(Clone, Debug)]
pub struct StartSpec {
    /// Which replica.
    pub task: TaskRef,
    /// Replicas in the gang.
    pub replicas: u32,
    /// Processes to run for this replica.
    pub tasks: u32,
    /// Devices it holds on this node.
    pub devices: Vec<u32>,
    /// Environment from the server.
    pub env: BTreeMap<String, String>,
    /// The batch script, if any.
    pub script: Option<String>,
    /// The command, or the script's arguments.
    pub command: Vec<String>,
}

/// A replica's processes as written down on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Which replica.
    pub task: TaskRef,
    /// Its processes, by local rank.
    pub processes: Vec<Proc>,
}

/// One process of a replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proc {
    /// LOCAL_RANK.
    pub local: u32,
    /// The shim's pid, which is also the process group id.
    pub pid: i32,
    /// The shim's start time, to tell it from a later process with the same pid.
    pub start_ticks: u64,
    /// Where the shim writes the exit code.
    pub exit_file: PathBuf,
    /// Where the process appends its progress ($WANKA_PROGRESS_FILE).
    #[serde(default)]
    pub progress: PathBuf,
    /// Output files.
    pub stdout: PathBuf,
    /// See `stdout`.
    pub stderr: PathBuf,
}

/// A replica that could not be started or recorded.
#[derive(Debug, Error)]
pub enum TaskError {
    /// A file could not be written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The assignment cannot be run.
    #[error("job {job}: {message}")]
    Invalid {
        /// Job id.
        job: u64,
        /// Why.
        message: String,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TaskError + use<> {
    let path = path.to_path_buf();
    move |source| TaskError::Io { what, path, source }
}

/// The directory of a replica's files.
pub fn replica_dir(work: &Path, t: &TaskRef) -> PathBuf {
    work.join("jobs")
        .join(t.job.to_string())
        .join(format!("{}.{}", t.attempt, t.rank))
}

fn record_path(work: &Path, t: &TaskRef) -> PathBuf {
    work.join("tasks")
        .join(format!("{}.{}.{}.json", t.job, t.attempt, t.rank))
}

impl Record {
    /// Writes the record (atomically: a crash leaves the old one or the new one).
    pub fn save(&self, work: &Path) -> Result<(), TaskError> {
        let path = record_path(work, &self.task);
        let dir = path.parent().expect("has a parent");
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(self).expect("serializable");
        std::fs::write(&tmp, text).map_err(io("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("renaming", &tmp))
    }

    /// Forgets the replica (the server has its exit).
    pub fn remove(&self, work: &Path) {
        let _ = std::fs::remove_file(record_path(work, &self.task));
    }

    /// Every record left by an earlier run of the agent; unreadable ones are returned as errors (and kept
    /// on disk for an operator to look at).
    pub fn load_all(work: &Path) -> (Vec<Record>, Vec<String>) {
        let dir = work.join("tasks");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return (Vec::new(), Vec::new());
        };
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read_to_string(&p)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<Record>(&t).map_err(|e| e.to_string()))
            {
                Ok(r) => out.push(r),
                Err(e) => errors.push(format!("{}: {e}", p.display())),
            }
        }
        out.sort_by_key(|r| r.task);
        (out, errors)
    }
}

/// Starts a replica's processes under the shim (`shim` is the program and its leading arguments) and
/// records them. Returns the record and the children, in local-rank order.
pub fn launch(
    work: &Path,
    shim: &[OsString],
    spec: &StartSpec,
) -> Result<(Record, Vec<tokio::process::Child>), TaskError> {
    let t = spec.task;
    let dir = replica_dir(work, &t);
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let mut argv: Vec<OsString> = Vec::new();
    match &spec.script {
        Some(script) => {
            let path = dir.join("script");
            std::fs::write(&path, script).map_err(io("writing", &path))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(io("making executable", &path))?;
            // A script without a #! line runs under sh, as sbatch does.
            if !script.starts_with("#!") {
                argv.push("/bin/sh".into());
            }
            argv.push(path.into_os_string());
        }
        None if spec.command.is_empty() => {
            return Err(TaskError::Invalid {
                job: t.job,
                message: "the assignment has neither a script nor a command".into(),
            });
        }
        None => {}
    }
    argv.extend(spec.command.iter().map(OsString::from));
    let (program, lead) = shim.split_first().ok_or_else(|| TaskError::Invalid {
        job: t.job,
        message: "no task shim configured".into(),
    })?;
    let cwd = spec
        .env
        .get("WANKA_WORKDIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| dir.clone());
    if let Some(dir) = spec
        .env
        .get("WANKA_CHECKPOINT_DIR")
        .filter(|d| !d.is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(io("creating the checkpoint directory", Path::new(dir)))?;
    }
    let mut processes = Vec::new();
    let mut children = Vec::new();
    for local in 0..spec.tasks.max(1) {
        let exit_file = dir.join(format!("task-{local}.exit"));
        let _ = std::fs::remove_file(&exit_file);
        let stdout = dir.join(format!("task-{local}.out"));
        let stderr = dir.join(format!("task-{local}.err"));
        let progress = dir.join(format!("progress-{local}.jsonl"));
        let out = std::fs::File::create(&stdout).map_err(io("creating", &stdout))?;
        let err = std::fs::File::create(&stderr).map_err(io("creating", &stderr))?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(lead)
            .arg("--exit-file")
            .arg(&exit_file)
            .arg("--")
            .args(&argv)
            .current_dir(&cwd)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(false);
        for (k, v) in wanka_api::process_env(t.rank, spec.replicas, local, spec.tasks.max(1)) {
            cmd.env(k, v);
        }
        cmd.env("WANKA_PROGRESS_FILE", &progress);
        cmd.envs(&spec.env);
        let child = cmd
            .spawn()
            .map_err(io("starting the task shim", Path::new(program)))?;
        let pid = child.id().map_or(0, |p| p as i32);
        processes.push(Proc {
            local,
            pid,
            start_ticks: process::start_ticks(pid).unwrap_or(0),
            exit_file,
            progress,
            stdout,
            stderr,
        });
        children.push(child);
    }
    let record = Record { task: t, processes };
    if let Err(e) = record.save(work) {
        for p in &record.processes {
            process::signal_group(p.pid, libc::SIGKILL);
        }
        return Err(e);
    }
    Ok((record, children))
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// With this exit code (128 + signal when killed).
    Exited(i32),
    /// Neither running nor with an exit code: lost while the agent was away.
    Lost,
}

/// Waits for a process this agent started.
pub async fn wait_child(p: &Proc, mut child: tokio::process::Child) -> Outcome {
    let status = child.wait().await;
    // The shim's own file is exact; without it (the shim was killed), the shim's status is what there is.
    match (process::read_exit_file(&p.exit_file), status) {
        (Some(code), _) => Outcome::Exited(code),
        (None, Ok(s)) => Outcome::Exited(process::exit_code(s)),
        (None, Err(_)) => Outcome::Lost,
    }
}

/// Waits for a process adopted from an earlier run of the agent (not its child: polled).
pub async fn wait_adopted(p: &Proc) -> Outcome {
    loop {
        if let Some(code) = process::read_exit_file(&p.exit_file) {
            return Outcome::Exited(code);
        }
        if !process::alive(p.pid, p.start_ticks) {
            return match process::read_exit_file(&p.exit_file) {
                Some(code) => Outcome::Exited(code),
                None => Outcome::Lost,
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Whether an adopted process is still there (or has left its exit code).
pub fn adoptable(p: &Proc) -> bool {
    process::alive(p.pid, p.start_ticks) || process::read_exit_file(&p.exit_file).is_some()
}
