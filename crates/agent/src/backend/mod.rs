//! Device backends: where an agent's device facts come from. `auto` picks the first that finds devices:
//! NVML, then each vendor tool found on the PATH; a configured backend is used as is.

pub mod nvml;
pub mod simulated;
pub mod tools;

use crate::device::Backend;
use std::path::PathBuf;
use thiserror::Error;

/// The backends an agent can be told to use.
pub const NAMES: &[&str] = &[
    "auto",
    "nvml",
    "nvidia-smi",
    "npu-smi",
    "cnmon",
    "hy-smi",
    "rocm-smi",
    "mx-smi",
    "ixsmi",
    "mthreads-gmi",
    "xpu_smi",
    "simulated",
];

/// A backend that cannot be set up.
#[derive(Debug, Error)]
pub enum BackendError {
    /// Not a backend name.
    #[error("unknown device backend '{0}'; use one of {names}", names = NAMES.join(", "))]
    Unknown(String),
    /// The simulated backend's device file is missing or wrong.
    #[error("simulated devices {path}: {message}")]
    Simulated {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line where it is.
        message: String,
    },
    /// `simulated` without a device file.
    #[error("the simulated backend needs a device file (--devices FILE)")]
    NoDeviceFile,
}

/// The backend called `name`. `bin_dir` is where vendor tools are looked up first (tests, unusual
/// installs); `devices` is the simulated backend's TOML file.
pub fn select(
    name: &str,
    bin_dir: Option<PathBuf>,
    devices: Option<PathBuf>,
) -> Result<Box<dyn Backend>, BackendError> {
    let tool = |t: tools::Tool| -> Box<dyn Backend> {
        Box::new(tools::ToolBackend::new(t, bin_dir.clone()))
    };
    Ok(match name {
        "auto" => return Ok(auto(bin_dir)),
        "nvml" => Box::new(nvml::Nvml::new()),
        "simulated" => {
            let path = devices.ok_or(BackendError::NoDeviceFile)?;
            Box::new(simulated::Simulated::load(&path)?)
        }
        other => {
            tool(tools::Tool::named(other).ok_or_else(|| BackendError::Unknown(other.into()))?)
        }
    })
}

/// NVML when it loads and sees GPUs, else the first vendor tool on the PATH that lists devices, else NVML
/// (which reports none: a node without accelerators).
fn auto(bin_dir: Option<PathBuf>) -> Box<dyn Backend> {
    let mut nvml = nvml::Nvml::new();
    if !nvml.probe().devices.is_empty() {
        return Box::new(nvml);
    }
    for t in tools::Tool::ALL {
        let mut b = tools::ToolBackend::new(*t, bin_dir.clone());
        if b.installed() && !b.probe().devices.is_empty() {
            return Box::new(b);
        }
    }
    Box::new(nvml)
}
