//! Cambricon's `cnmon` (the default view): a box table of two rows per MLU, whose columns moved between
//! 4.x (`Inited Driver`, `vMemory-Usage`) and 5.x (`Bus-Id`, `SR-IOV Compute-Mode`).

use super::{box_records, int, num, numbered, ratio};
use crate::device::{Device, Health, Probe};

const TOOL: &str = "cnmon";

/// Parses `cnmon`.
pub fn parse(text: &str) -> Probe {
    let lines = numbered(text);
    let (records, mut errors) = box_records(TOOL, &lines);
    let mut devices = Vec::new();
    for (line, r) in records {
        let get = |k: &str| r.get(k).map(String::as_str);
        let Some(index) = get("Card").and_then(int) else {
            let text = lines.get(line - 1).map_or("", |l| l.1);
            errors.push(super::error(TOOL, line, text, "no Card number"));
            continue;
        };
        let mut d = Device::new(index as u32);
        d.name = get("Name").map(str::to_string);
        d.bus_id = get("Bus-Id").map(str::to_string);
        d.utilization = get("Util").and_then(num);
        d.temperature_c = get("Temp").and_then(num);
        d.power_w = get("Pwr:Usage/Cap").and_then(ratio).and_then(|r| r.0);
        if let Some((used, total)) = get("Memory-Usage").and_then(ratio) {
            d.memory_used_mib = used.map(|v| v as u64);
            d.memory_total_mib = total.map(|v| v as u64);
        }
        // cnmon's Ecc-Error counts uncorrectable errors; N/A where ECC is not reported.
        d.ecc_uncorrected = get("Ecc-Error").and_then(int);
        if d.ecc_uncorrected.is_some_and(|n| n > 0) {
            d.flag(Health::Alarm, "ecc-uncorrectable");
        }
        devices.push(d);
    }
    Probe {
        devices,
        errors,
        domains: Vec::new(),
    }
}
