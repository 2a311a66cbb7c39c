//! Moore Threads' `mthreads-gmi`: three lines per GPU under `|`-separated column groups
//! (`ID Name | PCIe | %GPU Mem`, then `Device Type | Pcie Lane Width | Temp MPC Capable`, then `ECC Mode`).
//! Memory reads `used(total)`; a driver with a misconfigured IOMMU reports more used than total, which is
//! kept as read and flagged.

use super::{error, int, num, numbered};
use crate::device::{Device, Health, Probe};

const TOOL: &str = "mthreads-gmi";

/// `44302MiB(32768MiB)` → (44302, 32768).
fn used_total(s: &str) -> Option<(u64, u64)> {
    let (used, rest) = s.split_once('(')?;
    Some((int(used)?, int(rest.trim_end_matches(')'))?))
}

/// Parses `mthreads-gmi`.
pub fn parse(text: &str) -> Probe {
    let mut probe = Probe::default();
    let lines = numbered(text);
    let mut current: Option<usize> = None;
    for &(n, line) in &lines {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let first = cells[0];
        let starts_record = first.starts_with(|c: char| c.is_ascii_digit()) && cells.len() >= 3;
        if starts_record {
            let (id, name) = first.split_once(char::is_whitespace).unwrap_or((first, ""));
            let Some(index) = int(id) else {
                probe.errors.push(error(TOOL, n, line, "no GPU id"));
                current = None;
                continue;
            };
            let mut d = Device::new(index as u32);
            d.name = Some(name.trim().to_string()).filter(|s| !s.is_empty());
            d.bus_id = Some(cells[1].to_string());
            let mut stats = cells[2].split_whitespace();
            d.utilization = stats.next().and_then(num);
            match stats.next().map(|m| (m, used_total(m))) {
                Some((_, Some((used, total)))) => {
                    d.memory_used_mib = Some(used);
                    d.memory_total_mib = Some(total);
                    if used > total {
                        d.flag(
                            Health::Warning,
                            format!("memory-accounting: {used} MiB used of {total} MiB (check the IOMMU setting)"),
                        );
                    }
                }
                Some((m, None)) => probe.errors.push(error(
                    TOOL,
                    n,
                    line,
                    &format!("memory '{m}' is not used(total)"),
                )),
                None => {}
            }
            probe.devices.push(d);
            current = Some(probe.devices.len() - 1);
        } else if let (Some(i), true) = (current, cells.len() >= 3) {
            // The record's second line: the temperature leads its last group.
            if probe.devices[i].temperature_c.is_none() {
                probe.devices[i].temperature_c = cells[2].split_whitespace().next().and_then(num);
            }
        }
    }
    if probe.devices.is_empty() && probe.errors.is_empty() {
        probe
            .errors
            .push(error(TOOL, 0, "", "no GPU lines in the output"));
    }
    probe
}
