//! Kunlunxin's `xpu_smi`: sections (`DEVICES`, `VIDEO`, `PROCESSES`), each a one-row-per-device table
//! between `----` rules; only `DEVICES` describes the XPUs.

use super::{error, int, is_rule, num, numbered, ratio, row_cells, tokens};
use crate::device::{Device, Probe};

const TOOL: &str = "xpu_smi";

/// Parses `xpu_smi`.
pub fn parse(text: &str) -> Probe {
    let mut probe = Probe::default();
    let lines = numbered(text);
    let Some(start) = lines.iter().position(|(_, l)| l.trim() == "DEVICES") else {
        probe
            .errors
            .push(error(TOOL, 0, "", "no DEVICES section in the output"));
        return probe;
    };
    let rows: Vec<(usize, &str)> = lines[start + 1..]
        .iter()
        .copied()
        .take_while(|(_, l)| is_rule(l) || l.trim_start().starts_with('|'))
        .filter(|(_, l)| !is_rule(l))
        .collect();
    let Some(((_, header), body)) = rows.split_first() else {
        probe
            .errors
            .push(error(TOOL, 0, "", "an empty DEVICES section"));
        return probe;
    };
    let names: Vec<String> = row_cells(header)
        .unwrap_or_default()
        .iter()
        .map(|c| c.trim().to_string())
        .collect();
    let col = |name: &str| names.iter().position(|n| n == name);
    for &(n, line) in body {
        let cells: Vec<String> = row_cells(line)
            .unwrap_or_default()
            .iter()
            .map(|c| tokens(c).join(" "))
            .collect();
        if cells.len() != names.len() {
            probe.errors.push(error(
                TOOL,
                n,
                line,
                &format!("{} cells where the header has {}", cells.len(), names.len()),
            ));
            continue;
        }
        let get = |name: &str| col(name).map(|c| cells[c].as_str());
        let Some(index) = get("DevID").and_then(int) else {
            probe.errors.push(error(TOOL, n, line, "no DevID"));
            continue;
        };
        let mut d = Device::new(index as u32);
        d.name = get("Model").map(str::to_string);
        d.bus_id = get("PCI Addr").map(str::to_string);
        d.utilization = get("UseRate").and_then(num);
        if let Some((used, total)) = get("Memory").and_then(ratio) {
            d.memory_used_mib = used.map(|v| v as u64);
            d.memory_total_mib = total.map(|v| v as u64);
        }
        probe.devices.push(d);
    }
    probe
}
