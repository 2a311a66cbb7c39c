//! Backends that run a vendor's command-line tool and parse what it prints. A tool that is not installed
//! means no devices of that vendor; a tool that fails or prints something unreadable is an error in the
//! probe, next to whatever devices could still be read.

use crate::device::{Backend, Probe};
use crate::parse::{self, error, npu_smi, topology};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Longest a tool may take before its reading is abandoned (a wedged driver can hang them).
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// The vendor tools wanka reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// NVIDIA (when NVML cannot be loaded).
    NvidiaSmi,
    /// Huawei Ascend.
    NpuSmi,
    /// Cambricon.
    Cnmon,
    /// Hygon DCU.
    HySmi,
    /// AMD (and Hygon's DTK build).
    RocmSmi,
    /// MetaX.
    MxSmi,
    /// Iluvatar CoreX.
    Ixsmi,
    /// Moore Threads.
    MthreadsGmi,
    /// Kunlunxin.
    XpuSmi,
}

impl Tool {
    /// In the order `auto` tries them.
    pub const ALL: &'static [Tool] = &[
        Tool::NvidiaSmi,
        Tool::NpuSmi,
        Tool::Cnmon,
        Tool::HySmi,
        Tool::RocmSmi,
        Tool::MxSmi,
        Tool::Ixsmi,
        Tool::MthreadsGmi,
        Tool::XpuSmi,
    ];

    /// The executable's name.
    pub fn command(self) -> &'static str {
        match self {
            Tool::NvidiaSmi => "nvidia-smi",
            Tool::NpuSmi => "npu-smi",
            Tool::Cnmon => "cnmon",
            Tool::HySmi => "hy-smi",
            Tool::RocmSmi => "rocm-smi",
            Tool::MxSmi => "mx-smi",
            Tool::Ixsmi => "ixsmi",
            Tool::MthreadsGmi => "mthreads-gmi",
            Tool::XpuSmi => "xpu_smi",
        }
    }

    /// The tool with this executable name.
    pub fn named(name: &str) -> Option<Tool> {
        Tool::ALL.iter().copied().find(|t| t.command() == name)
    }
}

/// A backend reading one vendor tool.
pub struct ToolBackend {
    tool: Tool,
    bin_dir: Option<PathBuf>,
}

/// Why a tool gave no output to parse.
enum RunError {
    /// Not installed.
    Missing,
    /// Ran and failed.
    Failed(String),
}

impl ToolBackend {
    /// A backend for `tool`, looked up in `bin_dir` first, then on the PATH.
    pub fn new(tool: Tool, bin_dir: Option<PathBuf>) -> ToolBackend {
        ToolBackend { tool, bin_dir }
    }

    fn program(&self, name: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = self
            .bin_dir
            .iter()
            .cloned()
            .chain(std::env::split_paths(&path));
        dirs.find_map(|d| Some(d.join(name)).filter(|p| is_executable(p)))
    }

    /// Whether the tool is there to run.
    pub fn installed(&self) -> bool {
        self.program(self.tool.command()).is_some()
    }

    /// Runs `name args`, with a time limit.
    fn run(&self, name: &str, args: &[&str]) -> Result<String, RunError> {
        let program = self.program(name).ok_or(RunError::Missing)?;
        let shown = format!("{} {}", name, args.join(" "));
        let child = Command::new(&program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RunError::Failed(format!("`{shown}` did not start: {e}")))?;
        // Output is collected while waiting (a tool's output can exceed a pipe's buffer).
        let pid = child.id() as i32;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(TOOL_TIMEOUT) {
            Ok(r) => r.map_err(|e| RunError::Failed(format!("`{shown}`: {e}")))?,
            Err(_) => {
                // SAFETY: kill(2) on the tool's pid, which its waiting thread has not reaped yet.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return Err(RunError::Failed(format!(
                    "`{shown}` gave no answer within {} s",
                    TOOL_TIMEOUT.as_secs()
                )));
            }
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let said = if stderr.trim().is_empty() {
                stdout
            } else {
                stderr
            };
            return Err(RunError::Failed(format!(
                "`{shown}` failed ({}): {}",
                out.status,
                said.trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a view; a failure becomes an error of the probe.
    fn view(&self, probe: &mut Probe, args: &[&str]) -> Option<String> {
        self.view_of(probe, self.tool.command(), args)
    }

    fn view_of(&self, probe: &mut Probe, name: &str, args: &[&str]) -> Option<String> {
        match self.run(name, args) {
            Ok(text) => Some(text),
            Err(RunError::Missing) => None,
            Err(RunError::Failed(why)) => {
                probe.errors.push(error(self.tool.command(), 0, "", &why));
                None
            }
        }
    }

    fn merge(probe: &mut Probe, other: Probe) {
        probe.devices.extend(other.devices);
        probe.errors.extend(other.errors);
    }

    fn topology(&self, probe: &mut Probe, args: &[&str]) {
        if let Some(text) = self.view(probe, args) {
            match topology::parse(self.tool.command(), &text) {
                Ok(t) if t.devices.len() == probe.devices.len() => probe.domains = t.domains(),
                Ok(_) => {}
                Err(e) => probe.errors.push(e),
            }
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Backend for ToolBackend {
    fn name(&self) -> &'static str {
        self.tool.command()
    }

    fn probe(&mut self) -> Probe {
        let mut probe = Probe::default();
        match self.tool {
            Tool::NvidiaSmi => {
                if let Some(t) = self.view(&mut probe, &["-q", "-x"]) {
                    Self::merge(&mut probe, parse::nvidia_smi::parse_xml(&t));
                }
                if !probe.devices.is_empty() {
                    self.topology(&mut probe, &["topo", "-m"]);
                }
            }
            Tool::NpuSmi => {
                if let Some(t) = self.view(&mut probe, &["info"]) {
                    let (chips, errors) = npu_smi::parse_info(&t);
                    probe.errors.extend(errors);
                    for mut c in chips {
                        let (npu, chip) = (c.npu.to_string(), c.chip.to_string());
                        let args = ["info", "-t", "health", "-i", &npu, "-c", &chip];
                        if let Some(h) = self.view(&mut probe, &args) {
                            match npu_smi::parse_health(&h) {
                                Ok(h) => npu_smi::apply_health(&mut c.device, &h),
                                Err(e) => probe.errors.push(e),
                            }
                        }
                        probe.devices.push(c.device);
                    }
                }
                if !probe.devices.is_empty() {
                    self.topology(&mut probe, &["info", "-t", "topo"]);
                }
            }
            Tool::Cnmon => {
                if let Some(t) = self.view(&mut probe, &[]) {
                    Self::merge(&mut probe, parse::cnmon::parse(&t));
                }
            }
            Tool::HySmi => {
                if let Some(t) = self.view(&mut probe, &[]) {
                    Self::merge(&mut probe, parse::rocm_smi::parse_table("hy-smi", &t));
                }
                // Names and memory come from DTK's rocm-smi when it is there.
                let json_args = ["--showproductname", "--showmeminfo", "vram", "--json"];
                if let Some(j) = self.view_of(&mut probe, "rocm-smi", &json_args) {
                    let detail = parse::rocm_smi::parse_json("rocm-smi", &j);
                    for d in detail.devices {
                        if let Some(mine) = probe.devices.iter_mut().find(|x| x.index == d.index) {
                            mine.name = d.name;
                            mine.memory_total_mib = d.memory_total_mib;
                            mine.memory_used_mib = d.memory_used_mib;
                        }
                    }
                }
            }
            Tool::RocmSmi => {
                let args = [
                    "--showproductname",
                    "--showmeminfo",
                    "vram",
                    "--showuse",
                    "--showtemp",
                    "--showpower",
                    "--json",
                ];
                if let Some(t) = self.view(&mut probe, &args) {
                    Self::merge(&mut probe, parse::rocm_smi::parse_json("rocm-smi", &t));
                }
            }
            Tool::MxSmi => {
                if let Some(t) = self.view(&mut probe, &[]) {
                    Self::merge(&mut probe, parse::mx_smi::parse(&t));
                }
                if !probe.devices.is_empty() {
                    self.topology(&mut probe, &["topo", "-m"]);
                }
            }
            Tool::Ixsmi => {
                if let Some(t) = self.view(&mut probe, &[]) {
                    Self::merge(&mut probe, parse::ixsmi::parse(&t));
                }
            }
            Tool::MthreadsGmi => {
                if let Some(t) = self.view(&mut probe, &[]) {
                    Self::merge(&mut probe, parse::mthreads_gmi::parse(&t));
                }
            }
            Tool::XpuSmi => {
                if let Some(t) = self.view(&mut probe, &[]) {
                    Self::merge(&mut probe, parse::xpu_smi::parse(&t));
                }
            }
        }
        probe
    }
}
