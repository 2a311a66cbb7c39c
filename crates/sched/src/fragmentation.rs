//! Fragmentation-gradient scoring (after Weng et al., "Beware of Fragmentation", ATC'23): the fragmentation
//! of a node is the free device capacity (in thousandths) that the jobs we usually see could not use there,
//! weighted by how often each kind of job arrives; a placement is scored by how little it increases that
//! fragmentation. A node whose CPU or memory can no longer host a kind of job has all its free devices
//! fragmented for that kind, so host resources are accounted for too.

use crate::cluster::{FULL_MILLI, NodeState, bits};
use crate::fxhash::FxBuild;
use crate::profile::{Need, Profile};
use crate::score::{Change, Fit, Scorer};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// Free capacity of a node as fragmentation sees it: free thousandths per device (sorted, largest first),
/// free CPU and memory. Nodes with the same signature have the same fragmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Signature {
    devices: u8,
    free: [u16; 64],
    cpu: u64,
    mem: u64,
}

impl Hash for Signature {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u8(self.devices);
        for f in &self.free[..self.devices as usize] {
            h.write_u16(*f);
        }
        h.write_u64(self.cpu);
        h.write_u64(self.mem);
    }
}

impl Signature {
    /// The node's signature after `change` (or as it is, for `None`).
    fn of(node: &NodeState, change: Option<&Change>) -> Signature {
        let mut free = [0u16; 64];
        let open = node.free();
        for d in bits(open) {
            free[d as usize] = FULL_MILLI as u16;
        }
        for s in &node.shared {
            if node.held & (1 << s.dev) == 0 && node.healthy & (1 << s.dev) != 0 {
                free[s.dev as usize] = (FULL_MILLI - s.used_milli) as u16;
            }
        }
        let (mut cpu, mut mem) = (node.cpu_free(), node.mem_free());
        if let Some(c) = change {
            for d in bits(c.take) {
                free[d as usize] = 0;
            }
            if let Some((dev, milli)) = c.share {
                free[dev as usize] = free[dev as usize].saturating_sub(milli as u16);
            }
            cpu = cpu.saturating_sub(c.cpu);
            mem = mem.saturating_sub(c.mem);
        }
        free[..node.devices as usize].sort_unstable_by(|a, b| b.cmp(a));
        Signature {
            devices: node.devices,
            free,
            cpu,
            mem,
        }
    }

    /// Expected free thousandths that jobs drawn from the profile could not use here, counting how many of
    /// them the node could host: a node whose CPU runs out after one job strands the rest of its devices.
    fn stranded(&self, profile: &Profile) -> f64 {
        let free = &self.free[..self.devices as usize];
        let total: u64 = free.iter().map(|f| *f as u64).sum();
        if total == 0 {
            return 0.0;
        }
        let whole = free.iter().filter(|f| **f as u32 == FULL_MILLI).count() as u64;
        profile
            .types()
            .iter()
            .map(|(t, p)| {
                // Host resources as a continuous amount of jobs, so that eroding them shows before they run out.
                let host = |per_job_gpu: f64| {
                    let by = |free: u64, need: u64| {
                        if need == 0 {
                            f64::INFINITY
                        } else {
                            free as f64 / need as f64
                        }
                    };
                    by(self.cpu, t.cpu).min(by(self.mem, t.mem)) * per_job_gpu
                };
                let usable = match t.need {
                    Need::Host => total as f64,
                    Need::Whole(k) => {
                        let gpu = (whole / k as u64) as f64 * k as f64 * FULL_MILLI as f64;
                        gpu.min(host(k as f64 * FULL_MILLI as f64))
                    }
                    Need::Fraction(d) => {
                        let slots: u64 = free.iter().map(|f| (*f as u32 / d) as u64).sum();
                        (slots as f64 * d as f64).min(host(d as f64))
                    }
                };
                p * (total as f64 - usable.min(total as f64))
            })
            .sum()
    }

    /// Expected free thousandths that a job drawn from the profile could not use here.
    fn fragmentation(&self, profile: &Profile) -> f64 {
        let free = &self.free[..self.devices as usize];
        let total: u32 = free.iter().map(|f| *f as u32).sum();
        if total == 0 {
            return 0.0;
        }
        let whole = free.iter().filter(|f| **f as u32 == FULL_MILLI).count() as u32;
        profile
            .types()
            .iter()
            .map(|(t, p)| {
                let unusable = match t.need {
                    Need::Host => 0,
                    _ if self.cpu < t.cpu || self.mem < t.mem => total,
                    Need::Fraction(d) => free
                        .iter()
                        .filter(|f| (**f as u32) < d)
                        .map(|f| *f as u32)
                        .sum(),
                    Need::Whole(k) if whole >= k => total - whole * FULL_MILLI,
                    Need::Whole(_) => total,
                };
                p * unusable as f64
            })
            .sum()
    }
}

/// Which fragmentation measure a scorer minimizes the growth of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Measure {
    /// FGD's: capacity a job of each kind could not use if it were the next one to come.
    #[default]
    NextJob,
    /// wanka's: capacity left unusable after the node has taken as many jobs of each kind as it can.
    Stranded,
}

/// The fragmentation-gradient scorer, with a cache of fragmentation by node signature.
#[derive(Debug, Default)]
pub struct FragmentationGradient {
    measure: Measure,
    cache: Mutex<(u64, HashMap<Signature, f64, FxBuild>)>,
}

impl FragmentationGradient {
    /// A scorer minimizing the growth of `measure`.
    pub fn new(measure: Measure) -> FragmentationGradient {
        FragmentationGradient {
            measure,
            cache: Mutex::default(),
        }
    }
}

impl FragmentationGradient {
    fn fragmentation(&self, sig: Signature, profile: &Profile) -> f64 {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.0 != profile.version() {
            *cache = (profile.version(), HashMap::default());
        }
        let measure = self.measure;
        *cache.1.entry(sig).or_insert_with(|| match measure {
            Measure::NextJob => sig.fragmentation(profile),
            Measure::Stranded => sig.stranded(profile),
        })
    }
}

impl Scorer for FragmentationGradient {
    fn name(&self) -> &'static str {
        match self.measure {
            Measure::NextJob => "fragmentation-gradient",
            Measure::Stranded => "stranded-capacity",
        }
    }

    fn per_node(&self) -> bool {
        true
    }

    fn score(&self, fit: &Fit<'_>) -> f64 {
        let node = fit.node;
        let before = self.fragmentation(Signature::of(node, None), fit.profile);
        let after = self.fragmentation(Signature::of(node, Some(&fit.change)), fit.profile);
        // Compare raw ΔF across nodes of any size: map "no increase" to 0.5 and ±8 devices to 0 and 1.
        (0.5 - (after - before) / (2.0 * FULL_MILLI as f64 * 8.0)).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Shared, test_node};
    use crate::placement::test_request;

    fn profile(reqs: &[(u32, Option<u32>, u64)]) -> Profile {
        let mut p = Profile::default();
        for &(per_replica, fraction, cpu) in reqs {
            p.record(&test_request(per_replica, fraction, cpu));
        }
        p
    }

    fn score(node: &NodeState, change: Change, p: &Profile) -> f64 {
        let fit = Fit {
            want: change.take.count_ones().max(1),
            node_devices: node.devices as u32,
            node_free: node.free().count_ones(),
            leaf_free: 0,
            leaf_usable: 0,
            spine_free: 0,
            spine_usable: 0,
            node,
            change,
            profile: p,
        };
        FragmentationGradient::default().score(&fit)
    }

    #[test]
    fn a_fraction_goes_where_it_leaves_no_useless_sliver() {
        // Jobs need 0.5 of a GPU. Putting a 0.5 on a device that already has 0.5 used fills it exactly; putting
        // it on a fresh device leaves 0.5 that the next job can still use: both are fine. Putting a 0.3 on the
        // half-used device would leave 0.2 nobody can use.
        let p = profile(&[(1, Some(500), 0), (1, Some(500), 0)]);
        let mut n = test_node(0, 0, 0, 2);
        n.shared.push(Shared {
            dev: 0,
            used_milli: 500,
            used_mem_mib: 0,
        });
        let on_half = |milli| Change {
            take: 0,
            share: Some((0, milli)),
            cpu: 0,
            mem: 0,
        };
        let on_fresh = |milli| Change {
            take: 0,
            share: Some((1, milli)),
            cpu: 0,
            mem: 0,
        };
        assert!(score(&n, on_half(300), &p) < score(&n, on_fresh(300), &p));
        assert!(score(&n, on_half(500), &p) >= score(&n, on_fresh(500), &p));
    }

    #[test]
    fn cpu_that_strands_devices_counts_as_fragmentation() {
        // Typical jobs need 1 GPU and 8 cores. Taking 60 of a node's 64 cores without a GPU strands its GPUs.
        let p = profile(&[(1, None, 8000)]);
        let n = test_node(0, 0, 0, 8);
        let cpu_only = |cpu| Change {
            take: 0,
            share: None,
            cpu,
            mem: 0,
        };
        assert!(score(&n, cpu_only(60_000), &p) < score(&n, cpu_only(8000), &p));
        assert_eq!(score(&n, cpu_only(8000), &p), 0.5);
    }
}
