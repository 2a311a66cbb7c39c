//! `nvidia-smi`, the second path to NVIDIA devices when NVML cannot be loaded: `-q -x` (XML, whose element
//! names changed across schema versions v10–v13) and `--query-gpu=... --format=csv`.

use super::{error, int, num, numbered};
use crate::device::{Device, Health, Probe};

const TOOL: &str = "nvidia-smi";

/// The fields wanka asks `--query-gpu` for.
pub const QUERY_FIELDS: &str = "index,name,uuid,pci.bus_id,memory.total,memory.used,utilization.gpu,\
temperature.gpu,power.draw,ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total";

/// The text of the element at `path` below `node`, following direct children only (a GPU's MIG devices
/// have their own `fb_memory_usage`, which must not be taken for the GPU's).
fn at<'a>(node: roxmltree::Node<'a, 'a>, path: &[&str]) -> Option<&'a str> {
    let mut n = node;
    for name in path {
        n = n.children().find(|c| c.has_tag_name(*name))?;
    }
    n.text()
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "N/A")
}

/// The first of several paths that exists (schema versions name the same fact differently).
fn first<'a>(node: roxmltree::Node<'a, 'a>, paths: &[&[&str]]) -> Option<&'a str> {
    paths.iter().find_map(|p| at(node, p))
}

/// Sum of the numeric children of an element (`sram_correctable` + `dram_correctable`, ...), keyed by a
/// suffix of their names; `None` when there is none.
fn sum_children(node: Option<roxmltree::Node<'_, '_>>, suffix: &str) -> Option<u64> {
    let node = node?;
    let values: Vec<u64> = node
        .children()
        .filter(|c| c.tag_name().name().ends_with(suffix))
        .filter_map(|c| c.text().and_then(int))
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn child<'a>(node: roxmltree::Node<'a, 'a>, path: &[&str]) -> Option<roxmltree::Node<'a, 'a>> {
    let mut n = node;
    for name in path {
        n = n.children().find(|c| c.has_tag_name(*name))?;
    }
    Some(n)
}

/// `nvidia-smi -q -x`.
pub fn parse_xml(text: &str) -> Probe {
    let mut probe = Probe::default();
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = match roxmltree::Document::parse_with_options(text, options) {
        Ok(d) => d,
        Err(e) => {
            let line = e.pos().row as usize;
            let t = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
            probe
                .errors
                .push(error(TOOL, line, t, &format!("not XML: {e}")));
            return probe;
        }
    };
    for (order, gpu) in doc
        .root_element()
        .children()
        .filter(|c| c.has_tag_name("gpu"))
        .enumerate()
    {
        let index = at(gpu, &["minor_number"])
            .and_then(int)
            .unwrap_or(order as u64) as u32;
        let mut d = Device::new(index);
        d.name = at(gpu, &["product_name"]).map(str::to_string);
        d.uuid = at(gpu, &["uuid"]).map(str::to_string);
        d.bus_id = gpu.attribute("id").map(str::to_string);
        d.memory_total_mib = at(gpu, &["fb_memory_usage", "total"]).and_then(int);
        d.memory_used_mib = at(gpu, &["fb_memory_usage", "used"]).and_then(int);
        d.utilization = at(gpu, &["utilization", "gpu_util"]).and_then(num);
        d.temperature_c = at(gpu, &["temperature", "gpu_temp"]).and_then(num);
        d.power_w = first(
            gpu,
            &[
                &["gpu_power_readings", "power_draw"],
                &["gpu_power_readings", "instant_power_draw"],
                &["power_readings", "power_draw"],
            ],
        )
        .and_then(num);
        let volatile = child(gpu, &["ecc_errors", "volatile"]);
        // v11+ split SRAM and DRAM; older schemas have single_bit/double_bit with a total.
        d.ecc_corrected = sum_children(volatile, "_correctable")
            .or_else(|| at(gpu, &["ecc_errors", "volatile", "single_bit", "total"]).and_then(int));
        d.ecc_uncorrected = sum_children(volatile, "_uncorrectable")
            .or_else(|| at(gpu, &["ecc_errors", "volatile", "double_bit", "total"]).and_then(int));
        if d.ecc_uncorrected.is_some_and(|n| n > 0) {
            d.flag(Health::Warning, "ecc-uncorrectable");
        }
        if at(gpu, &["remapped_rows", "remapped_row_failure"]) == Some("Yes") {
            d.flag(Health::Critical, "row-remap-failure");
        }
        if at(gpu, &["remapped_rows", "remapped_row_pending"]) == Some("Yes")
            || at(gpu, &["retired_pages", "pending_retirement"]) == Some("Yes")
        {
            d.flag(Health::Warning, "reset-pending");
        }
        probe.devices.push(d);
    }
    if probe.devices.is_empty() {
        probe
            .errors
            .push(error(TOOL, 0, "", "no <gpu> element in the -q -x output"));
    }
    probe
}

/// `nvidia-smi --query-gpu=<fields> --format=csv`: a header of field names (with units in brackets), then a
/// line per GPU. Lines that are not part of the table (`#` comments of a capture) are skipped.
pub fn parse_csv(text: &str) -> Probe {
    let mut probe = Probe::default();
    let lines = numbered(text);
    let Some(h) = lines
        .iter()
        .position(|(_, l)| !l.starts_with('#') && l.split(',').any(|f| f.trim() == "index"))
    else {
        probe
            .errors
            .push(error(TOOL, 0, "", "no CSV header with an `index` field"));
        return probe;
    };
    let header: Vec<String> = lines[h]
        .1
        .split(',')
        .map(|f| f.split('[').next().unwrap_or("").trim().to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    for &(n, line) in &lines[h + 1..] {
        if line.trim().is_empty() || line.starts_with('#') {
            break;
        }
        let values: Vec<&str> = line.split(',').map(str::trim).collect();
        if values.len() < header.len() {
            probe.errors.push(error(
                TOOL,
                n,
                line,
                &format!("{} values for {} fields", values.len(), header.len()),
            ));
            continue;
        }
        let get = |name: &str| {
            col(name)
                .map(|c| values[c])
                .filter(|v| !v.contains("N/A") && !v.contains("Not Supported"))
        };
        let Some(index) = get("index").and_then(int) else {
            probe.errors.push(error(TOOL, n, line, "no GPU index"));
            continue;
        };
        let mut d = Device::new(index as u32);
        d.name = get("name").map(str::to_string);
        d.uuid = get("uuid").map(str::to_string);
        d.bus_id = get("pci.bus_id").map(str::to_string);
        d.memory_total_mib = get("memory.total").and_then(int);
        d.memory_used_mib = get("memory.used").and_then(int);
        d.utilization = get("utilization.gpu").and_then(num);
        d.temperature_c = get("temperature.gpu").and_then(num);
        d.power_w = get("power.draw").and_then(num);
        d.ecc_corrected = get("ecc.errors.corrected.volatile.total").and_then(int);
        d.ecc_uncorrected = get("ecc.errors.uncorrected.volatile.total").and_then(int);
        if d.ecc_uncorrected.is_some_and(|n| n > 0) {
            d.flag(Health::Warning, "ecc-uncorrectable");
        }
        probe.devices.push(d);
    }
    probe
}
