//! `wanka agent`: the node agent, and `wanka task-shim`, the small parent every task process runs under.

use crate::remote::Connection;
use crate::setup::Common;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;
use wanka_agent::agent::AgentConfig;

/// Options of `wanka agent` (each may also come from the --config file; flags win).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// A TOML file with any of the options below (name, backend, devices, model, leaf, spine, address,
    /// cpu_milli, memory_mib, heartbeat_s, work_dir, bin_dir).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Node name (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Device backend: auto, nvml, nvidia-smi, npu-smi, cnmon, hy-smi, rocm-smi, mx-smi, ixsmi,
    /// mthreads-gmi, xpu_smi or simulated.
    #[arg(long)]
    pub backend: Option<String>,
    /// The simulated backend's device file (TOML: model, count, domains, faults).
    #[arg(long)]
    pub devices: Option<PathBuf>,
    /// The accelerator model, when the devices' names do not give it (catalog name or alias).
    #[arg(long)]
    pub model: Option<String>,
    /// Leaf switch of this node.
    #[arg(long)]
    pub leaf: Option<String>,
    /// Spine of this node.
    #[arg(long)]
    pub spine: Option<String>,
    /// Address other nodes reach this one at (MASTER_ADDR of jobs whose first replica runs here).
    #[arg(long)]
    pub address: Option<String>,
    /// Seconds between heartbeats.
    #[arg(long)]
    pub heartbeat_s: Option<f64>,
    /// Seconds between readings of the devices; a fault found is sent at once (default: 1 s for nvml and
    /// simulated devices, the heartbeat period for the vendor tools, which are costly to run).
    #[arg(long)]
    pub probe_s: Option<f64>,
    /// Directory for task files, output and records (default: wanka-agent).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Directory searched for vendor tools before the PATH.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Schedulable CPU in thousandths of a core (default: all).
    #[arg(long)]
    pub cpu_milli: Option<u64>,
    /// Schedulable memory in MiB (default: all).
    #[arg(long)]
    pub memory_mib: Option<u64>,
}

/// The config file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    backend: Option<String>,
    devices: Option<PathBuf>,
    model: Option<String>,
    leaf: Option<String>,
    spine: Option<String>,
    address: Option<String>,
    heartbeat_s: Option<f64>,
    probe_s: Option<f64>,
    work_dir: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    cpu_milli: Option<u64>,
    memory_mib: Option<u64>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string())
}

/// The program and arguments that run the task shim: this binary.
pub fn shim() -> Result<Vec<OsString>> {
    let exe = std::env::current_exe().context("finding this program for the task shim")?;
    Ok(vec![exe.into_os_string(), "task-shim".into()])
}

impl Args {
    fn config(&self, conn: &Connection) -> Result<AgentConfig> {
        let file: File = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read the agent config {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("{}: not a valid agent config", p.display()))?
            }
            None => File::default(),
        };
        let (server, token) = conn.resolve()?;
        let Some(token) = token else {
            bail!(
                "the agent needs a token: --token, --token-file or WANKA_TOKEN (create one with `wanka token create --role agent`)"
            );
        };
        let heartbeat = self.heartbeat_s.or(file.heartbeat_s).unwrap_or(5.0);
        if !(heartbeat > 0.0 && heartbeat.is_finite()) {
            bail!("--heartbeat-s must be a positive number of seconds, not {heartbeat}");
        }
        let backend = self
            .backend
            .clone()
            .or(file.backend)
            .unwrap_or_else(|| "auto".into());
        let probe = match self.probe_s.or(file.probe_s) {
            Some(p) if p > 0.0 && p.is_finite() => p,
            Some(p) => bail!("--probe-s must be a positive number of seconds, not {p}"),
            None if matches!(backend.as_str(), "nvml" | "simulated") => 1.0,
            None => heartbeat,
        };
        Ok(AgentConfig {
            server,
            token,
            name: self.name.clone().or(file.name).unwrap_or_else(host_name),
            work_dir: self
                .work_dir
                .clone()
                .or(file.work_dir)
                .unwrap_or_else(|| PathBuf::from("wanka-agent")),
            backend,
            devices_file: self.devices.clone().or(file.devices),
            bin_dir: self.bin_dir.clone().or(file.bin_dir),
            model: self.model.clone().or(file.model),
            leaf: self.leaf.clone().or(file.leaf),
            spine: self.spine.clone().or(file.spine),
            address: self.address.clone().or(file.address),
            cpu_milli: self.cpu_milli.or(file.cpu_milli),
            memory_mib: self.memory_mib.or(file.memory_mib),
            heartbeat: Duration::from_secs_f64(heartbeat),
            probe: Duration::from_secs_f64(probe),
            kill_grace: Duration::from_secs(10),
            shim: shim()?,
            quiet: false,
        })
    }
}

/// Runs the agent until Ctrl-C (its tasks keep running and are re-adopted by the next start).
pub fn run(common: &Common, conn: &Connection, args: &Args) -> Result<()> {
    let cfg = args.config(conn)?;
    let (catalog, _) = common.performance()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let name = cfg.name.clone();
        let running = wanka_agent::agent::start(cfg, &catalog)
            .await
            .with_context(|| format!("agent for node '{name}'"))?;
        tokio::select! {
            r = running.done => r.context("the agent task panicked")?.context("the agent stopped")?,
            _ = tokio::signal::ctrl_c() => eprintln!("agent stopping; its tasks keep running and are re-adopted at the next start"),
        }
        Ok(())
    })
}

/// `wanka task-shim --exit-file F -- COMMAND...`.
pub fn task_shim(args: &[OsString]) -> Result<()> {
    let (exit_file, command) = match args {
        [flag, file, dashes, command @ ..] if flag == "--exit-file" && dashes == "--" => {
            (PathBuf::from(file), command)
        }
        _ => bail!("usage: wanka task-shim --exit-file FILE -- COMMAND [ARGS...]"),
    };
    std::process::exit(wanka_agent::process::shim(&exit_file, command));
}
