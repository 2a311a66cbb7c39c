//! MetaX's `mx-smi` (the default view): a box table of two rows per GPU; 2.1.x prints `GPU NAME` and
//! `Temp Power`, 2.2.x adds the board, persistence mode, sGPU mode, performance state and a GPU state.
//! Topology (`mx-smi topo -m/-n`) is read by [`super::topology`].

use super::{box_records, int, num, numbered, ratio};
use crate::device::{Device, Health, Probe};

const TOOL: &str = "mx-smi";

/// Parses `mx-smi`.
pub fn parse(text: &str) -> Probe {
    let lines = numbered(text);
    let (records, mut errors) = box_records(TOOL, &lines);
    let mut devices = Vec::new();
    for (line, r) in records {
        let get = |k: &str| r.get(k).map(String::as_str);
        let Some(index) = get("GPU").and_then(int) else {
            let text = lines.get(line - 1).map_or("", |l| l.1);
            errors.push(super::error(TOOL, line, text, "no GPU number"));
            continue;
        };
        let mut d = Device::new(index as u32);
        d.name = get("Name").or(get("NAME")).map(str::to_string);
        d.bus_id = get("Bus-id").map(str::to_string);
        d.utilization = get("GPU-Util").and_then(num);
        d.temperature_c = get("Temp").and_then(num);
        d.power_w = get("Pwr:Usage/Cap")
            .and_then(ratio)
            .and_then(|r| r.0)
            .or_else(|| get("Power").and_then(num));
        if let Some((used, total)) = get("Memory-Usage").and_then(ratio) {
            d.memory_used_mib = used.map(|v| v as u64);
            d.memory_total_mib = total.map(|v| v as u64);
        }
        match get("GPU-State") {
            None | Some("Available") => {}
            Some(state) => d.flag(Health::Alarm, format!("mx-smi state {state}")),
        }
        devices.push(d);
    }
    Probe {
        devices,
        errors,
        domains: Vec::new(),
    }
}
