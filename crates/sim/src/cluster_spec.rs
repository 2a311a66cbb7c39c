//! Compact descriptions of synthetic clusters: `"640x8:H800,320x8:910B3"` is 640 nodes of 8 H800 and
//! 320 nodes of 8 Ascend 910B3, laid out in leaf switches of `nodes_per_leaf` nodes and spines of
//! `leaves_per_spine` leaves (a group never shares a leaf with another model).

use thiserror::Error;
use wanka_model::{Catalog, NodeId, NodeSpec, Topology};

/// How nodes are cabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Nodes under one leaf switch.
    pub nodes_per_leaf: u32,
    /// Leaf switches under one spine.
    pub leaves_per_spine: u32,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            nodes_per_leaf: 32,
            leaves_per_spine: 8,
        }
    }
}

/// Host resources a synthetic node gets per device (a DGX-class server: 24 cores and 256 GiB per GPU).
pub const CPU_MILLI_PER_DEVICE: u64 = 24_000;
/// Host memory per device of a synthetic node, MiB.
pub const MEMORY_MIB_PER_DEVICE: u64 = 256 * 1024;

/// A cluster spec that cannot be used.
#[derive(Debug, Error, PartialEq)]
#[error("cluster spec '{spec}', item {item} '{text}': {problem}")]
pub struct SpecError {
    /// The whole spec.
    pub spec: String,
    /// 1-based item number.
    pub item: usize,
    /// The item's text.
    pub text: String,
    /// What is wrong.
    pub problem: String,
}

/// Builds the nodes a spec describes.
pub fn parse(spec: &str, catalog: &Catalog, layout: Layout) -> Result<Vec<NodeSpec>, SpecError> {
    let mut nodes = Vec::new();
    let mut leaf = 0u32;
    for (i, text) in spec.split(',').map(str::trim).enumerate() {
        let err = |problem: String| SpecError {
            spec: spec.to_string(),
            item: i + 1,
            text: text.to_string(),
            problem,
        };
        let (shape, model) = text
            .split_once(':')
            .ok_or_else(|| err("expected COUNTxDEVICES:MODEL, e.g. 640x8:H800".into()))?;
        let (count, devices) = shape
            .split_once(['x', 'X'])
            .ok_or_else(|| err("expected COUNTxDEVICES before the ':'".into()))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| err(format!("node count '{count}' is not a number")))?;
        let devices: u32 = devices
            .trim()
            .parse()
            .ok()
            .filter(|d| (1..=wanka_model::node::MAX_DEVICES_PER_NODE).contains(d))
            .ok_or_else(|| err(format!("devices per node '{devices}' must be 1 to 64")))?;
        let model = catalog.lookup(model).map_err(|e| err(e.to_string()))?;
        let short = catalog.model(model).name.to_lowercase();
        for k in 0..count {
            let id = nodes.len() as u32;
            let l = leaf + k / layout.nodes_per_leaf;
            nodes.push(NodeSpec {
                id: NodeId(id),
                name: format!("{short}-{k:04}"),
                model,
                devices,
                domains: Vec::new(),
                cpu_milli: CPU_MILLI_PER_DEVICE * devices as u64,
                memory_mib: MEMORY_MIB_PER_DEVICE * devices as u64,
                topology: Topology {
                    spine: format!("spine-{}", l / layout.leaves_per_spine),
                    leaf: format!("leaf-{l}"),
                },
            });
        }
        leaf += count.div_ceil(layout.nodes_per_leaf);
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_fill_their_own_leaves() {
        let c = Catalog::builtin();
        let layout = Layout {
            nodes_per_leaf: 4,
            leaves_per_spine: 2,
        };
        let n = parse("6x8:H800, 3x4:910B3", &c, layout).unwrap();
        assert_eq!(n.len(), 9);
        assert_eq!(n[5].topology.leaf, "leaf-1");
        assert_eq!(
            n[6].topology.leaf, "leaf-2",
            "a new model starts a new leaf"
        );
        assert_eq!(n[6].topology.spine, "spine-1");
        assert_eq!(c.model(n[8].model).name, "Ascend-910B3");
        assert_eq!(n[8].devices, 4);
    }

    #[test]
    fn errors_name_the_item() {
        let c = Catalog::builtin();
        let e = parse("6x8:H800,3x:T4", &c, Layout::default()).unwrap_err();
        assert_eq!((e.item, e.text.as_str()), (2, "3x:T4"));
        let e = parse("6x8:H900", &c, Layout::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown accelerator model 'H900'"), "{e}");
        assert!(parse("6-8-H800", &c, Layout::default()).is_err());
    }
}
