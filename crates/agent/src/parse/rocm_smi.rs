//! AMD's `rocm-smi` and Hygon's `hy-smi` (its DCU fork): the plain table (`DCU Temp AvgPwr ... VRAM% DCU%`,
//! no memory amounts, only VRAM%, and no names, so the model comes from the agent's config) and `rocm-smi --json` (one object per card, keys that differ between ROCm and
//! DTK: `VRAM Total Memory (B)` vs `vram Total Memory (MiB)`, `GPU use (%)` vs `DCU use (%)`).

use super::{columns, error, int, num, numbered};
use crate::device::{Device, Probe};

/// The plain table of `hy-smi` or `rocm-smi`; `tool` names it in errors.
pub fn parse_table(tool: &'static str, text: &str) -> Probe {
    let mut probe = Probe::default();
    let lines = numbered(text);
    let Some(h) = lines.iter().position(|(_, l)| {
        let c = columns(l);
        matches!(c.first(), Some(&("DCU" | "GPU" | "Device")))
            && c.iter().any(|x| x.starts_with("Temp"))
    }) else {
        probe
            .errors
            .push(error(tool, 0, "", "no table header (DCU/GPU Temp ...)"));
        return probe;
    };
    let header: Vec<&str> = lines[h].1.split_whitespace().collect();
    let col = |f: &dyn Fn(&str) -> bool| header.iter().position(|x| f(x));
    let temp = col(&|x| x.starts_with("Temp"));
    let power = col(&|x| x == "AvgPwr" || x == "Power");
    let util = col(&|x| x == "DCU%" || x == "GPU%");
    for &(n, line) in &lines[h + 1..] {
        if line.trim().is_empty() || line.trim_start().starts_with('=') {
            break;
        }
        let values: Vec<&str> = line.split_whitespace().collect();
        if values.len() < header.len() {
            probe.errors.push(error(
                tool,
                n,
                line,
                &format!("{} values for {} columns", values.len(), header.len()),
            ));
            continue;
        }
        let Some(index) = int(values[0]) else {
            probe.errors.push(error(tool, n, line, "no device number"));
            continue;
        };
        let get = |c: Option<usize>| c.and_then(|c| num(values[c]));
        let mut d = Device::new(index as u32);
        d.temperature_c = get(temp);
        d.power_w = get(power);
        d.utilization = get(util);
        probe.devices.push(d);
    }
    probe
}

/// `rocm-smi ... --json` (ROCm or DTK).
pub fn parse_json(tool: &'static str, text: &str) -> Probe {
    let mut probe = Probe::default();
    let value: serde_json::Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => {
            let t = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
            probe
                .errors
                .push(error(tool, e.line(), t, &format!("not JSON: {e}")));
            return probe;
        }
    };
    let Some(cards) = value.as_object() else {
        probe
            .errors
            .push(error(tool, 1, "", "expected an object of cards"));
        return probe;
    };
    for (key, card) in cards {
        let Some(index) = key.strip_prefix("card").and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let field = |want: &dyn Fn(&str) -> bool| {
            card.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| want(&k.to_ascii_lowercase()))
                    .and_then(|(_, v)| v.as_str())
                    .filter(|v| !v.is_empty() && *v != "N/A")
            })
        };
        let mut d = Device::new(index);
        d.name = field(&|k| k == "card series" || k == "device name").map(str::to_string);
        d.uuid = field(&|k| k == "unique id").map(str::to_string);
        d.utilization = field(&|k| k.ends_with("use (%)")).and_then(num);
        d.temperature_c = field(&|k| k.contains("(sensor edge)"))
            .or_else(|| field(&|k| k.contains("(sensor junction)")))
            .and_then(num);
        d.power_w = field(&|k| k.contains("package power")).and_then(num);
        let memory = |what: &str| {
            let bytes = field(&|k| k == format!("vram {what} (b)")).and_then(int);
            let mib = field(&|k| k == format!("vram {what} (mib)")).and_then(int);
            bytes.map(|b| b >> 20).or(mib)
        };
        d.memory_total_mib = memory("total memory");
        d.memory_used_mib = memory("total used memory");
        probe.devices.push(d);
    }
    probe.devices.sort_by_key(|d| d.index);
    if probe.devices.is_empty() {
        probe.errors.push(error(tool, 0, "", "no cardN object"));
    }
    probe
}
