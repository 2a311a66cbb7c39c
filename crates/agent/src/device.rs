//! What an agent knows about one accelerator, whichever vendor tool told it, and the interface every device
//! backend implements.

use std::fmt;
use thiserror::Error;
use wanka_api::{DeviceTelemetry, InjectFault};

/// A vendor's judgement of a device, on one scale: Ascend's four levels, which the other vendors' signals
/// (NVIDIA's pending retirements, Cambricon's ECC errors, ...) map onto.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Nothing reported.
    #[default]
    Ok,
    /// Degraded but usable (a precursor; keep running, watch it).
    Warning,
    /// Faulty: no new work.
    Alarm,
    /// Failed.
    Critical,
}

impl Health {
    /// The vendor word (Ascend's spelling), or `None` when the word is not a health level.
    pub fn parse(word: &str) -> Option<Health> {
        match word.trim().to_ascii_lowercase().as_str() {
            "ok" | "normal" | "healthy" | "available" => Some(Health::Ok),
            "warning" | "warn" | "subhealth" => Some(Health::Warning),
            "alarm" | "general alarm" | "major alarm" | "error" => Some(Health::Alarm),
            "critical" | "critical alarm" | "fatal" => Some(Health::Critical),
            _ => None,
        }
    }

    /// Whether new work may be placed on a device in this state.
    pub fn schedulable(self) -> bool {
        self <= Health::Warning
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Ok => "OK",
            Health::Warning => "Warning",
            Health::Alarm => "Alarm",
            Health::Critical => "Critical",
        })
    }
}

/// One accelerator as read from its vendor's tool or library.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Device {
    /// Index the vendor's runtime uses (what the visible-devices variable lists).
    pub index: u32,
    /// Product name as the tool prints it (mapped to the catalog by the agent).
    pub name: Option<String>,
    /// PCI bus id.
    pub bus_id: Option<String>,
    /// Unique id, when the tool gives one.
    pub uuid: Option<String>,
    /// Memory, MiB.
    pub memory_total_mib: Option<u64>,
    /// Memory in use, MiB (as reported: it can exceed the total on a misconfigured device).
    pub memory_used_mib: Option<u64>,
    /// Compute utilization, percent.
    pub utilization: Option<f64>,
    /// Temperature, Celsius.
    pub temperature_c: Option<f64>,
    /// Power draw, watts.
    pub power_w: Option<f64>,
    /// Health on the common scale.
    pub health: Health,
    /// Fault codes reported now (`xid-79`, Ascend's hex codes, ...).
    pub faults: Vec<String>,
    /// Correctable ECC errors (volatile).
    pub ecc_corrected: Option<u64>,
    /// Uncorrectable ECC errors (volatile).
    pub ecc_uncorrected: Option<u64>,
}

impl Device {
    /// A device with only its index known.
    pub fn new(index: u32) -> Device {
        Device {
            index,
            ..Device::default()
        }
    }

    /// Raises the health to at least `h` for `why` (kept in `faults`).
    pub fn flag(&mut self, h: Health, why: impl Into<String>) {
        self.health = self.health.max(h);
        self.faults.push(why.into());
    }

    /// The heartbeat's view of this device.
    pub fn telemetry(&self) -> DeviceTelemetry {
        DeviceTelemetry {
            index: self.index,
            healthy: self.health.schedulable(),
            utilization: self.utilization,
            memory_used_mib: self.memory_used_mib,
            temperature_c: self.temperature_c,
            memory_total_mib: self.memory_total_mib,
            power_w: self.power_w,
            health: Some(self.health.to_string()),
            faults: self.faults.clone(),
            ecc_corrected: self.ecc_corrected,
            ecc_uncorrected: self.ecc_uncorrected,
        }
    }
}

/// Output a parser could not read: which tool, which line, what was wrong.
#[derive(Clone, Debug, Error, PartialEq)]
#[error("{tool}: line {line}: {problem}: {text:?}")]
pub struct ParseError {
    /// The tool whose output this was.
    pub tool: &'static str,
    /// 1-based line number in the output (0: the output as a whole).
    pub line: usize,
    /// The line.
    pub text: String,
    /// What was wrong.
    pub problem: String,
}

/// What one reading of a node's devices gave: the devices that could be read, and what could not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Probe {
    /// Devices, by index.
    pub devices: Vec<Device>,
    /// Problems met on the way; the devices above are still good.
    pub errors: Vec<ParseError>,
    /// Interconnect island of each device (empty: unknown or one island).
    pub domains: Vec<u8>,
}

impl Probe {
    /// The device with this index, created when missing (for tools that spread a device over several
    /// views).
    pub fn device(&mut self, index: u32) -> &mut Device {
        let at = match self.devices.iter().position(|d| d.index == index) {
            Some(i) => i,
            None => {
                self.devices.push(Device::new(index));
                self.devices.len() - 1
            }
        };
        &mut self.devices[at]
    }
}

/// A source of device facts: a vendor library, a vendor tool, or the simulated devices of a dev cluster.
pub trait Backend: Send {
    /// Name for logs and errors (`nvml`, `npu-smi`, `simulated`, ...).
    fn name(&self) -> &'static str;
    /// Reads the devices now. A backend whose vendor stack is absent returns no devices, never an error
    /// that stops the agent.
    fn probe(&mut self) -> Probe;
    /// Injects (or clears) a fault, for the backends that can fake one.
    fn inject(&mut self, fault: &InjectFault) -> Result<(), String> {
        let _ = fault;
        Err(format!(
            "the {} backend reads real devices; faults can be injected only into simulated ones",
            self.name()
        ))
    }
}
