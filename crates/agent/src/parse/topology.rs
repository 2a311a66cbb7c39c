//! The link matrix that `nvidia-smi topo -m`, `npu-smi info -t topo` and `mx-smi topo -m/-n` print: devices
//! by devices (and NICs), then affinity columns. Columns are tab- or space-separated depending on the tool
//! and version, cells may be empty, and the legend may be missing; only the matrix itself is relied on.

use super::{columns, error, numbered};
use crate::device::ParseError;

/// A node's accelerator interconnect as the matrix shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    /// Accelerator labels in order (`GPU0`, `NPU3`, ...).
    pub devices: Vec<String>,
    /// NIC labels (`NIC0`, `mlx5_2`, ...).
    pub nics: Vec<String>,
    /// Link word between each pair of accelerators (`X` on the diagonal, `NV12`, `HCCS`, `SYS`, ...).
    pub links: Vec<Vec<String>>,
    /// The CPU affinity of each accelerator, when listed.
    pub cpu_affinity: Vec<Option<String>>,
}

/// Whether a label names an accelerator.
fn is_device(label: &str) -> bool {
    ["GPU", "NPU", "DCU", "MLU"].iter().any(|p| {
        label
            .strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    })
}

/// Whether a link word is a direct device-to-device fabric (NVLink, HCCS, MetaXLink, Infinity Fabric).
pub fn is_fabric(word: &str) -> bool {
    word.starts_with("NV") || matches!(word, "HCCS" | "MX" | "XGMI" | "MLU-Link" | "HYLINK")
}

/// Parses the matrix; `tool` names the source in errors.
pub fn parse(tool: &'static str, text: &str) -> Result<Topology, ParseError> {
    let lines = numbered(text);
    let (at, header) = lines
        .iter()
        .enumerate()
        .find_map(|(i, (_, l))| {
            let cols = columns(l);
            cols.iter().any(|c| is_device(c)).then_some((i, cols))
        })
        .ok_or_else(|| error(tool, 0, "", "no matrix header (a line of GPU0/NPU0 labels)"))?;
    let links_end = header
        .iter()
        .position(|c| c.contains("Affinity") || c.contains("NUMA"))
        .unwrap_or(header.len());
    let labels = &header[..links_end];
    let devices: Vec<String> = labels
        .iter()
        .filter(|l| is_device(l))
        .map(|l| l.to_string())
        .collect();
    let nics: Vec<String> = labels
        .iter()
        .filter(|l| !is_device(l))
        .map(|l| l.to_string())
        .collect();
    let cpu_col = header[links_end..]
        .iter()
        .position(|c| c.contains("CPU Affinity"));
    let mut links = vec![Vec::new(); devices.len()];
    let mut cpu_affinity = vec![None; devices.len()];
    for &(n, line) in &lines[at + 1..] {
        let cols = columns(line);
        let Some(first) = cols.first() else {
            continue;
        };
        if first.starts_with("Legend") {
            break;
        }
        let Some(row) = devices.iter().position(|d| d == first) else {
            continue;
        };
        let values = &cols[1..];
        if values.len() < labels.len() {
            return Err(error(
                tool,
                n,
                line,
                &format!(
                    "{} link cells where the header has {} columns",
                    values.len(),
                    labels.len()
                ),
            ));
        }
        links[row] = labels
            .iter()
            .zip(values)
            .filter(|(l, _)| is_device(l))
            .map(|(_, v)| v.to_string())
            .collect();
        // Empty cells were dropped by `columns`, so affinity is read from the end of the row when the
        // header's affinity columns outnumber what is left.
        cpu_affinity[row] = cpu_col
            .and_then(|c| values.get(labels.len() + c))
            .map(|v| v.to_string());
    }
    if let Some(i) = links.iter().position(Vec::is_empty) {
        return Err(error(tool, 0, "", &format!("no row for {}", devices[i])));
    }
    Ok(Topology {
        devices,
        nics,
        links,
        cpu_affinity,
    })
}

impl Topology {
    /// Interconnect island of each device: devices joined by a fabric link share one. Empty when every
    /// device is in one island, or none has a fabric link (nothing to tell apart).
    pub fn domains(&self) -> Vec<u8> {
        let n = self.devices.len();
        let mut island: Vec<usize> = (0..n).collect();
        fn root(island: &mut [usize], mut i: usize) -> usize {
            while island[i] != i {
                island[i] = island[island[i]];
                i = island[i];
            }
            i
        }
        let mut any = false;
        for i in 0..n {
            for j in 0..n {
                if i != j && is_fabric(&self.links[i][j]) {
                    any = true;
                    let (a, b) = (root(&mut island, i), root(&mut island, j));
                    island[a.max(b)] = a.min(b);
                }
            }
        }
        let roots: Vec<usize> = (0..n).map(|i| root(&mut island, i)).collect();
        let mut ids: Vec<usize> = roots.clone();
        ids.sort_unstable();
        ids.dedup();
        if !any || ids.len() <= 1 {
            return Vec::new();
        }
        roots
            .iter()
            .map(|r| ids.binary_search(r).expect("listed") as u8)
            .collect()
    }
}
