//! Simulated devices for development and tests: a TOML file describes them, and a second file (or the
//! server's fault API, which the agent writes into the same place) injects faults: an XID, a health level,
//! ECC counters. Both are re-read on every probe, so an edit takes effect at the next heartbeat.
//!
//! ```toml
//! model = "H100"          # catalog name or alias
//! count = 8
//! domains = [0, 0, 0, 0, 1, 1, 1, 1]   # optional: NVLink/HCCS islands
//! faults = "faults.toml"  # optional, relative to this file; default: <this file>.faults.toml
//! ```
//! The faults file (entries as `POST /api/v1/nodes/{name}/faults` takes them):
//! ```toml
//! [[fault]]
//! device = 3
//! xid = [79]
//! health = "Critical"     # optional: otherwise derived from the XIDs
//! ecc_corrected = 120
//! ```

use super::BackendError;
use crate::device::{Backend, Device, Health, Probe};
use crate::parse::error;
use crate::xid;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use wanka_api::InjectFault;

/// The device file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    model: String,
    count: u32,
    #[serde(default)]
    memory_mib: Option<u64>,
    #[serde(default)]
    domains: Vec<u8>,
    #[serde(default)]
    faults: Option<PathBuf>,
}

/// The faults file: one entry per faulty device, in the API's own shape.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Per-device faults.
    #[serde(default)]
    pub fault: Vec<InjectFault>,
}

/// The simulated backend.
pub struct Simulated {
    spec: Spec,
    faults: PathBuf,
}

impl Simulated {
    /// Reads the device file.
    pub fn load(path: &Path) -> Result<Simulated, BackendError> {
        let bad = |message: String| BackendError::Simulated {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let spec: Spec = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if spec.count == 0 {
            return Err(bad("count must be at least 1".into()));
        }
        if !spec.domains.is_empty() && spec.domains.len() != spec.count as usize {
            return Err(bad(format!(
                "{} domains listed for {} devices",
                spec.domains.len(),
                spec.count
            )));
        }
        let faults = match &spec.faults {
            Some(f) => path.parent().unwrap_or(Path::new(".")).join(f),
            None => faults_path(path),
        };
        Ok(Simulated { spec, faults })
    }

    /// The catalog model the file names.
    pub fn model(&self) -> &str {
        &self.spec.model
    }

    /// Where faults are read from.
    pub fn faults_file(&self) -> &Path {
        &self.faults
    }
}

/// The default faults file next to a device file.
pub fn faults_path(devices: &Path) -> PathBuf {
    let mut name = devices.file_name().unwrap_or_default().to_os_string();
    name.push(".faults.toml");
    devices.with_file_name(name)
}

/// Applies injected faults to a device.
fn apply(d: &mut Device, f: &InjectFault) -> Result<(), String> {
    for x in &f.xid {
        d.flag(xid::health(*x), format!("xid-{x}"));
    }
    for c in &f.codes {
        d.faults.push(c.clone());
    }
    if let Some(h) = &f.health {
        d.health =
            Health::parse(h).ok_or_else(|| format!("device {}: unknown health '{h}'", f.device))?;
    }
    if f.ecc_corrected.is_some() {
        d.ecc_corrected = f.ecc_corrected;
    }
    if f.ecc_uncorrected.is_some() {
        d.ecc_uncorrected = f.ecc_uncorrected;
    }
    Ok(())
}

impl Backend for Simulated {
    fn name(&self) -> &'static str {
        "simulated"
    }

    /// Rewrites the faults file with the device's entry replaced (or removed, to clear it), so that a
    /// fault injected through the API and one written by hand are the same thing.
    fn inject(&mut self, f: &InjectFault) -> Result<(), String> {
        if f.device >= self.spec.count {
            return Err(format!(
                "there is no device {} of {}",
                f.device, self.spec.count
            ));
        }
        let shown = self.faults.display().to_string();
        let mut faults: Faults = match std::fs::read_to_string(&self.faults) {
            Ok(t) => toml::from_str(&t).map_err(|e| format!("{shown}: {e}"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Faults::default(),
            Err(e) => return Err(format!("{shown}: {e}")),
        };
        faults.fault.retain(|d| d.device != f.device);
        if !f.clear {
            if let Some(h) = &f.health
                && Health::parse(h).is_none()
            {
                return Err(format!(
                    "unknown health '{h}' (OK, Warning, Alarm, Critical)"
                ));
            }
            faults.fault.push(f.clone());
        }
        let text = toml::to_string(&faults).map_err(|e| e.to_string())?;
        let tmp = self.faults.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.faults).map_err(|e| format!("{shown}: {e}"))
    }

    fn probe(&mut self) -> Probe {
        let mut probe = Probe {
            domains: self.spec.domains.clone(),
            ..Probe::default()
        };
        for i in 0..self.spec.count {
            let mut d = Device::new(i);
            d.name = Some(self.spec.model.clone());
            d.memory_total_mib = self.spec.memory_mib;
            d.memory_used_mib = Some(0);
            d.utilization = Some(0.0);
            d.temperature_c = Some(35.0);
            d.ecc_corrected = Some(0);
            d.ecc_uncorrected = Some(0);
            probe.devices.push(d);
        }
        let text = match std::fs::read_to_string(&self.faults) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return probe,
            Err(e) => {
                probe.errors.push(error(
                    "simulated",
                    0,
                    "",
                    &format!("{}: {e}", self.faults.display()),
                ));
                return probe;
            }
        };
        let faults: Faults = match toml::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                let line = e.span().map_or(0, |s| {
                    text[..s.start.min(text.len())].lines().count().max(1)
                });
                let shown = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
                probe.errors.push(error(
                    "simulated",
                    line,
                    shown,
                    &format!("{}: {}", self.faults.display(), e.message()),
                ));
                return probe;
            }
        };
        for f in faults.fault.iter().filter(|f| !f.clear) {
            match probe.devices.iter_mut().find(|d| d.index == f.device) {
                Some(d) => {
                    if let Err(e) = apply(d, f) {
                        probe.errors.push(error("simulated", 0, "", &e));
                    }
                }
                None => probe.errors.push(error(
                    "simulated",
                    0,
                    "",
                    &format!("fault for device {} of {}", f.device, self.spec.count),
                )),
            }
        }
        probe
    }
}
