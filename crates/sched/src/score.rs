//! Scoring stage: rank the places a job could go. Each scorer is a small named policy returning a value in
//! [0, 1]; the placement engine sums them with the configured weights and takes the best, breaking ties by
//! the lowest node index (so that no scorers at all is plain first-fit).

use crate::cluster::{Mask, NodeState};
use crate::profile::Profile;
use serde::{Deserialize, Serialize};

/// What a placement would change on a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Whole devices taken.
    pub take: Mask,
    /// A share of one device: (device, thousandths).
    pub share: Option<(u8, u32)>,
    /// Host CPU taken.
    pub cpu: u64,
    /// Host memory taken.
    pub mem: u64,
}

/// What a scorer sees of one candidate node for a single-node placement.
#[derive(Clone, Copy, Debug)]
pub struct Fit<'a> {
    /// Devices the job would take on the node.
    pub want: u32,
    /// Devices on the node.
    pub node_devices: u32,
    /// Free devices on the node before placement.
    pub node_free: u32,
    /// Free devices of this model under the node's leaf switch.
    pub leaf_free: u32,
    /// Usable devices of this model under the leaf.
    pub leaf_usable: u32,
    /// Free devices of this model under the node's spine.
    pub spine_free: u32,
    /// Usable devices of this model under the spine.
    pub spine_usable: u32,
    /// The node (for a group-level scorer: any node of the group).
    pub node: &'a NodeState,
    /// What the placement would change on it.
    pub change: Change,
    /// The workload profile.
    pub profile: &'a Profile,
}

/// A named scoring policy.
pub trait Scorer: Send + Sync + std::fmt::Debug {
    /// The name used in configuration.
    fn name(&self) -> &'static str;
    /// Desirability of a candidate in [0, 1].
    fn score(&self, fit: &Fit<'_>) -> f64;

    /// True when the score depends on more than the node's leaf and free-device count (host resources,
    /// shared devices), so that every node must be scored rather than one per group.
    fn per_node(&self) -> bool {
        false
    }
}

fn packed(free: u32, want: u32, total: u32) -> f64 {
    if total == 0 {
        return 0.0;
    }
    1.0 - (free.saturating_sub(want)) as f64 / total as f64
}

/// Best fit on the node: leave as few devices free beside the job as possible.
#[derive(Debug)]
pub struct BinPack;
impl Scorer for BinPack {
    fn name(&self) -> &'static str {
        "binpack"
    }
    fn score(&self, f: &Fit<'_>) -> f64 {
        packed(f.node_free, f.want, f.node_devices)
    }
}

/// Never break a whole free node for a job that does not need all of it while partial nodes exist.
#[derive(Debug)]
pub struct KeepWholeNodes;
impl Scorer for KeepWholeNodes {
    fn name(&self) -> &'static str {
        "keep-whole-nodes"
    }
    fn score(&self, f: &Fit<'_>) -> f64 {
        if f.node_free == f.node_devices && f.want < f.node_devices {
            0.0
        } else {
            1.0
        }
    }
}

/// Prefer busier leaf switches, keeping whole leaves free for large gangs.
#[derive(Debug)]
pub struct LeafPacking;
impl Scorer for LeafPacking {
    fn name(&self) -> &'static str {
        "leaf-packing"
    }
    fn score(&self, f: &Fit<'_>) -> f64 {
        packed(f.leaf_free, f.want, f.leaf_usable)
    }
}

/// Prefer busier spines, keeping whole spines free for the largest gangs.
#[derive(Debug)]
pub struct SpinePacking;
impl Scorer for SpinePacking {
    fn name(&self) -> &'static str {
        "spine-packing"
    }
    fn score(&self, f: &Fit<'_>) -> f64 {
        packed(f.spine_free, f.want, f.spine_usable)
    }
}

/// The built scorer chain: each scorer with its weight.
pub type Chain = Vec<(Box<dyn Scorer>, f64)>;

/// A scorer and its weight, as written in configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weighted {
    /// Scorer name (see [`scorer`]).
    pub name: String,
    /// Weight in the sum.
    pub weight: f64,
}

/// Every scorer wanka ships, by name.
pub fn scorer(name: &str) -> Option<Box<dyn Scorer>> {
    use crate::fragmentation::{FragmentationGradient, Measure};
    let all: [Box<dyn Scorer>; 6] = [
        Box::new(BinPack),
        Box::new(KeepWholeNodes),
        Box::new(LeafPacking),
        Box::new(SpinePacking),
        Box::new(FragmentationGradient::new(Measure::NextJob)),
        Box::new(FragmentationGradient::new(Measure::Stranded)),
    ];
    all.into_iter().find(|s| s.name() == name)
}

/// Names of every scorer, for error messages.
pub fn scorer_names() -> [&'static str; 6] {
    [
        "binpack",
        "keep-whole-nodes",
        "leaf-packing",
        "spine-packing",
        "fragmentation-gradient",
        "stranded-capacity",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(want: u32, node_free: u32, leaf_free: u32) -> Fit<'static> {
        static NODE: std::sync::LazyLock<NodeState> =
            std::sync::LazyLock::new(|| crate::cluster::test_node(0, 0, 0, 8));
        static PROFILE: std::sync::LazyLock<Profile> = std::sync::LazyLock::new(Profile::default);
        Fit {
            want,
            node_devices: 8,
            node_free,
            leaf_free,
            leaf_usable: 64,
            spine_free: 100,
            spine_usable: 256,
            node: &NODE,
            change: Change::default(),
            profile: &PROFILE,
        }
    }

    #[test]
    fn binpack_prefers_the_tightest_node() {
        assert!(BinPack.score(&fit(2, 2, 10)) > BinPack.score(&fit(2, 5, 10)));
        assert_eq!(BinPack.score(&fit(2, 2, 10)), 1.0);
    }

    #[test]
    fn whole_nodes_are_kept_for_jobs_that_need_them() {
        assert_eq!(KeepWholeNodes.score(&fit(1, 8, 8)), 0.0);
        assert_eq!(KeepWholeNodes.score(&fit(8, 8, 8)), 1.0);
        assert_eq!(KeepWholeNodes.score(&fit(1, 3, 8)), 1.0);
    }

    #[test]
    fn leaf_packing_prefers_busy_leaves() {
        assert!(LeafPacking.score(&fit(1, 4, 5)) > LeafPacking.score(&fit(1, 4, 60)));
    }

    #[test]
    fn every_listed_name_resolves() {
        for n in scorer_names() {
            assert_eq!(scorer(n).unwrap().name(), n);
        }
        assert!(scorer("nope").is_none());
    }
}
