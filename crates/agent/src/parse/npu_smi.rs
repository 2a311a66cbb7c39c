//! Huawei Ascend's `npu-smi`: `info` (the device table), `info -t health`, `info -t board`, `info -m` (the
//! card/chip to logical-id map). Topology (`info -t topo`) is read by [`super::topology`].

use super::{box_records, error, int, key_values, num, numbered, ratio};
use crate::device::{Device, Health, ParseError, Probe};

const TOOL: &str = "npu-smi";

/// A chip as `npu-smi info` lists it: the card (`-i`) and chip (`-c`) ids its `-t` views take, and the
/// device.
#[derive(Clone, Debug, PartialEq)]
pub struct Chip {
    /// NPU (card) id.
    pub npu: u32,
    /// Chip id on the card.
    pub chip: u32,
    /// The device; its index is the logical id ASCEND_RT_VISIBLE_DEVICES takes.
    pub device: Device,
}

/// `npu-smi info`: one record of two rows per chip. The 310's layout has a `Device` column with the logical
/// id; the 910's does not, and its chips are numbered in listing order. Memory is the HBM when the chip has
/// any, else the DDR.
pub fn parse_info(text: &str) -> (Vec<Chip>, Vec<ParseError>) {
    let lines = numbered(text);
    let (records, mut errors) = box_records(TOOL, &lines);
    let mut chips = Vec::new();
    for (order, (line, r)) in records.into_iter().enumerate() {
        let get = |k: &str| r.get(k).map(String::as_str);
        let (Some(npu), Some(chip)) = (get("NPU").and_then(int), get("Chip").and_then(int)) else {
            let text = lines.get(line - 1).map_or("", |l| l.1);
            errors.push(error(TOOL, line, text, "no NPU or Chip id in this record"));
            continue;
        };
        let index = get("Device").and_then(int).unwrap_or(order as u64) as u32;
        let mut d = Device::new(index);
        d.name = get("Name").map(str::to_string);
        d.bus_id = get("Bus-Id").map(str::to_string);
        d.power_w = get("Power(W)").and_then(num);
        d.temperature_c = get("Temp(C)").and_then(num);
        d.utilization = get("AICore(%)").and_then(num);
        let hbm = get("HBM-Usage(MB)").and_then(ratio);
        let ddr = get("Memory-Usage(MB)").and_then(ratio);
        let (used, total) = match (hbm, ddr) {
            (Some((u, Some(t))), _) if t > 0.0 => (u, Some(t)),
            (_, Some(m)) => m,
            (Some(m), None) => m,
            (None, None) => (None, None),
        };
        d.memory_used_mib = used.map(|v| v as u64);
        d.memory_total_mib = total.map(|v| v as u64);
        match get("Health") {
            Some(h) => match Health::parse(h) {
                Some(level) => d.health = level,
                None => {
                    let text = lines.get(line - 1).map_or("", |l| l.1);
                    errors.push(error(TOOL, line, text, &format!("unknown health '{h}'")));
                    d.flag(Health::Warning, format!("unknown health '{h}'"));
                }
            },
            None => {
                let text = lines.get(line - 1).map_or("", |l| l.1);
                errors.push(error(TOOL, line, text, "no Health column"));
            }
        }
        if d.health > Health::Ok {
            d.faults.push(format!("npu-smi health {}", d.health));
        }
        chips.push(Chip {
            npu: npu as u32,
            chip: chip as u32,
            device: d,
        });
    }
    (chips, errors)
}

/// What `npu-smi info -t health -i N -c C` says: the level and every error code (one line may carry
/// several, space separated).
#[derive(Clone, Debug, PartialEq)]
pub struct ChipHealth {
    /// Health Status.
    pub health: Health,
    /// Error Code values, `NA` left out.
    pub codes: Vec<String>,
    /// Error Information, continuation lines joined with `; `.
    pub information: Option<String>,
}

/// Parses `npu-smi info -t health`.
pub fn parse_health(text: &str) -> Result<ChipHealth, ParseError> {
    let kv = key_values(text);
    let find = |k: &str| kv.iter().find(|(_, key, _)| key.eq_ignore_ascii_case(k));
    let (n, _, status) = find("Health Status").ok_or_else(|| {
        error(
            TOOL,
            0,
            text.lines().next().unwrap_or(""),
            "no `Health Status` line",
        )
    })?;
    let health = Health::parse(status).ok_or_else(|| {
        error(
            TOOL,
            *n,
            &format!("Health Status : {status}"),
            "unknown health status",
        )
    })?;
    let codes = find("Error Code")
        .map(|(_, _, v)| {
            v.split_whitespace()
                .filter(|c| !c.eq_ignore_ascii_case("NA"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let information = find("Error Information")
        .map(|(_, _, v)| v.clone())
        .filter(|v| !v.eq_ignore_ascii_case("NA"));
    Ok(ChipHealth {
        health,
        codes,
        information,
    })
}

/// `npu-smi info -t board`: its key/value pairs (card view and chip view share the format).
pub fn parse_board(text: &str) -> Vec<(String, String)> {
    key_values(text)
        .into_iter()
        .map(|(_, k, v)| (k, v))
        .collect()
}

/// A row of `npu-smi info -m`: NPU id, chip id, logical id (what ASCEND_RT_VISIBLE_DEVICES takes), name.
pub type ChipMapping = (u32, u32, u32, String);

/// `npu-smi info -m`: one mapping per chip.
pub fn parse_mapping(text: &str) -> (Vec<ChipMapping>, Vec<ParseError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in numbered(text) {
        let cols = super::columns(line);
        if cols.is_empty() || cols[0].starts_with("NPU") {
            continue;
        }
        match cols[..] {
            [npu, chip, logic, name, ..] => match (int(npu), int(chip), int(logic)) {
                (Some(a), Some(b), Some(c)) => {
                    out.push((a as u32, b as u32, c as u32, name.to_string()))
                }
                // A chip without a logical id (the MCU of some cards) is not a device.
                (Some(_), Some(_), None) if logic == "-" => {}
                _ => errors.push(error(TOOL, n, line, "expected NPU, chip and logical ids")),
            },
            _ => errors.push(error(TOOL, n, line, "expected four columns")),
        }
    }
    (out, errors)
}

/// Applies a chip's `-t health` view to its device: the level, and each error code as a fault.
pub fn apply_health(d: &mut Device, h: &ChipHealth) {
    d.health = d.health.max(h.health);
    for c in &h.codes {
        d.faults.push(format!("ascend-{c}"));
    }
}

/// A probe from `npu-smi info` alone.
pub fn probe(text: &str) -> Probe {
    let (chips, errors) = parse_info(text);
    Probe {
        devices: chips.into_iter().map(|c| c.device).collect(),
        errors,
        domains: Vec::new(),
    }
}
