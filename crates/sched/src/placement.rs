//! Placement stage: where a gang of one model goes.
//!
//! Topology-aware gang placement keeps a gang in the smallest domain that fits: one node, then one leaf
//! switch, then one spine, then the whole center. Inside a domain, nodes with the fewest free devices are
//! filled first so that whole nodes stay whole. A single-node placement is chosen by the scorer chain over
//! groups of interchangeable nodes (same leaf, same free count). Every change goes through the cluster's
//! journal: a gang that does not fit leaves no trace.

use crate::cluster::{ClusterState, Mask, NodeIdx, NodeState, Op, bits};
use crate::config::DomainFit;
use crate::score::{Fit, Scorer};
use std::collections::BTreeMap;
use wanka_model::ModelId;

/// A fraction of one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fraction {
    /// Thousandths of the device.
    pub milli: u32,
    /// Device memory used, MiB.
    pub mem_mib: u32,
}

/// What one placement must provide, on one model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// Replicas in the gang.
    pub replicas: u32,
    /// Devices per replica.
    pub per_replica: u32,
    /// For a fractional job: the share of one device.
    pub fraction: Option<Fraction>,
    /// Host CPU per replica, thousandths of a core.
    pub cpu: u64,
    /// Host memory per replica, MiB.
    pub mem: u64,
    /// Each replica takes a whole node.
    pub whole_nodes: bool,
}

impl Request {
    fn total(&self) -> u32 {
        self.replicas * self.per_replica
    }
}

/// What one replica holds on its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Node.
    pub node: NodeIdx,
    /// Whole devices.
    pub mask: Mask,
    /// A shared device: (device, thousandths, memory MiB).
    pub share: Option<(u8, u32, u32)>,
    /// Host CPU, thousandths of a core.
    pub cpu: u64,
    /// Host memory, MiB.
    pub mem: u64,
}

impl Part {
    /// The changes that take this part.
    pub fn take_ops(&self) -> impl Iterator<Item = Op> + use<> {
        let node = self.node;
        let whole = (self.mask != 0).then_some(Op::Take {
            node,
            mask: self.mask,
        });
        let share = self.share.map(|(dev, milli, mem_mib)| Op::ShareTake {
            node,
            dev,
            milli,
            mem_mib,
        });
        let host = (self.cpu > 0 || self.mem > 0).then_some(Op::HostTake {
            node,
            cpu: self.cpu,
            mem: self.mem,
        });
        whole.into_iter().chain(share).chain(host)
    }

    /// The changes that give this part back (the inverses of [`Part::take_ops`]).
    pub fn release_ops(&self) -> impl Iterator<Item = Op> + use<> {
        self.take_ops().map(Op::inverse)
    }
}

/// Chooses `k` free devices on a node: inside the interconnect domain that fits most tightly, else across the
/// fewest domains.
pub fn pick_devices(node: &NodeState, k: u32) -> Mask {
    let free = node.free();
    let lowest = |m: Mask, k: u32| bits(m).take(k as usize).fold(0, |acc, b| acc | (1 << b));
    if node.domains.len() <= 1 {
        return lowest(free, k);
    }
    let tight = node
        .domains
        .iter()
        .map(|d| d & free)
        .filter(|m| m.count_ones() >= k)
        .min_by_key(|m| (m.count_ones(), m.trailing_zeros()));
    if let Some(m) = tight {
        return lowest(m, k);
    }
    let mut doms: Vec<Mask> = node.domains.iter().map(|d| d & free).collect();
    doms.sort_by_key(|m| (std::cmp::Reverse(m.count_ones()), m.trailing_zeros()));
    let mut out = 0;
    let mut left = k;
    for m in doms {
        let take = lowest(m, left);
        left -= take.count_ones();
        out |= take;
        if left == 0 {
            break;
        }
    }
    out
}

/// The placement engine, configured with the scorer chain and topology settings.
pub struct Placer<'a> {
    /// Weighted scorers for single-node choices.
    pub scorers: &'a [(Box<dyn Scorer>, f64)],
    /// Keep gangs in the smallest domain.
    pub topology_aware: bool,
    /// Domain choice for multi-node gangs.
    pub domain_fit: DomainFit,
}

impl Placer<'_> {
    /// Places a host-only request (no devices) on any node, one replica at a time: nodes with the fewest
    /// free devices first, so that CPU and memory are taken where accelerators cannot use them anyway, then
    /// the tightest CPU fit. `None` (and no change) if it does not fit.
    pub fn place_host_only(&self, c: &mut ClusterState, req: &Request) -> Option<Vec<Part>> {
        let mark = c.mark();
        let mut parts = Vec::with_capacity(req.replicas as usize);
        for _ in 0..req.replicas {
            let best = (0..c.nodes.len() as NodeIdx)
                .filter(|&n| {
                    c.nodes[n as usize].schedulable
                        && c.nodes[n as usize].host_room(req.cpu, req.mem) >= 1
                })
                .min_by_key(|&n| {
                    let node = &c.nodes[n as usize];
                    (node.free().count_ones(), node.cpu_free() - req.cpu, n)
                });
            let Some(n) = best else {
                c.rollback(mark);
                return None;
            };
            let part = Part {
                node: n,
                mask: 0,
                share: None,
                cpu: req.cpu,
                mem: req.mem,
            };
            for op in part.take_ops() {
                c.apply(op);
            }
            parts.push(part);
        }
        Some(parts)
    }

    /// Places the request on `model`, applying the changes; `None` (and no change) if it does not fit.
    /// Host-only requests go through [`Placer::place_host_only`] instead.
    pub fn place(&self, c: &mut ClusterState, model: ModelId, req: &Request) -> Option<Vec<Part>> {
        if req.per_replica == 0 && req.fraction.is_none() {
            return None;
        }
        if let Some(fr) = req.fraction {
            return self.place_fraction(c, model, req, fr).map(|p| vec![p]);
        }
        let index = c.model(model)?;
        let total = req.total();
        if index.free < total {
            return None;
        }
        if !req.whole_nodes
            && total <= index.max_dev as u32
            && let Some(n) = self.best_node(c, model, total, req.replicas, req)
        {
            return Some(self.take_on_node(c, n, req, req.replicas));
        }
        if req.replicas > 1 || req.whole_nodes {
            self.place_gang(c, model, req)
        } else {
            None
        }
    }

    /// Where the request would go now, without taking it (the cluster is left as it was).
    pub fn trial(&self, c: &mut ClusterState, model: ModelId, req: &Request) -> Option<Vec<Part>> {
        if !self.could_fit(c, model, req) {
            return None;
        }
        let mark = c.mark();
        let parts = self.place(c, model, req);
        c.rollback(mark);
        parts
    }

    /// A cheap necessary condition for [`Placer::place`]: enough free devices (and domain capacity).
    pub fn could_fit(&self, c: &ClusterState, model: ModelId, req: &Request) -> bool {
        let Some(index) = c.model(model) else {
            return false;
        };
        if let Some(fr) = req.fraction {
            return index.free > 0 || index.shared.last().is_some_and(|s| s.0 >= fr.milli);
        }
        if index.free < req.total() {
            return false;
        }
        if req.whole_nodes || req.total() > index.max_dev as u32 {
            let caps = leaf_caps(c, model, req);
            return caps.iter().sum::<u32>() >= req.replicas;
        }
        true
    }

    /// The best node for `k` devices (for `replicas` replicas) by the scorer chain; ties to the lowest index.
    fn best_node(
        &self,
        c: &ClusterState,
        model: ModelId,
        k: u32,
        replicas: u32,
        req: &Request,
    ) -> Option<NodeIdx> {
        let index = c.model(model)?;
        let mut cands: Vec<(f64, NodeIdx, usize, usize)> = Vec::new();
        for (lp, leaf) in index.leaves.iter().enumerate() {
            if leaf.free < k {
                continue;
            }
            let spine = index.spines.get(&leaf.spine).copied().unwrap_or([0, 0]);
            for f in k as usize..leaf.by_free.len() {
                let Some(&rep) = leaf.by_free[f].first() else {
                    continue;
                };
                let fit = Fit {
                    want: k,
                    node_devices: c.nodes[rep as usize].devices as u32,
                    node_free: f as u32,
                    leaf_free: leaf.free,
                    leaf_usable: leaf.usable,
                    spine_free: spine[0],
                    spine_usable: spine[1],
                };
                let score = self.scorers.iter().map(|(s, w)| w * s.score(&fit)).sum();
                cands.push((score, rep, lp, f));
            }
        }
        while !cands.is_empty() {
            let best = (0..cands.len())
                .max_by(|&a, &b| {
                    cands[a]
                        .0
                        .total_cmp(&cands[b].0)
                        .then_with(|| cands[b].1.cmp(&cands[a].1))
                })
                .expect("non-empty");
            let (_, _, lp, f) = cands.swap_remove(best);
            let group = &index.leaves[lp].by_free[f];
            if let Some(&n) = group
                .iter()
                .find(|&&n| c.nodes[n as usize].host_room(req.cpu, req.mem) >= replicas)
            {
                return Some(n);
            }
        }
        None
    }

    /// Takes `replicas` replicas of the request on one node.
    fn take_on_node(
        &self,
        c: &mut ClusterState,
        n: NodeIdx,
        req: &Request,
        replicas: u32,
    ) -> Vec<Part> {
        (0..replicas)
            .map(|_| {
                let node = &c.nodes[n as usize];
                let mask = if req.whole_nodes {
                    node.free()
                } else {
                    pick_devices(node, req.per_replica)
                };
                let part = Part {
                    node: n,
                    mask,
                    share: None,
                    cpu: req.cpu,
                    mem: req.mem,
                };
                for op in part.take_ops() {
                    c.apply(op);
                }
                part
            })
            .collect()
    }

    fn place_fraction(
        &self,
        c: &mut ClusterState,
        model: ModelId,
        req: &Request,
        fr: Fraction,
    ) -> Option<Part> {
        let index = c.model(model)?;
        let shared = index
            .shared
            .range((fr.milli, 0, 0)..)
            .find_map(|&(_, n, dev)| {
                let node = &c.nodes[n as usize];
                let used_mem = node
                    .shared
                    .iter()
                    .find(|s| s.dev == dev)
                    .map_or(0, |s| s.used_mem_mib);
                (node.dev_mem_mib.saturating_sub(used_mem) >= fr.mem_mib
                    && node.host_room(req.cpu, req.mem) >= 1)
                    .then_some((n, dev))
            });
        let (n, dev) = match shared {
            Some(found) => found,
            None => {
                let one = Request {
                    fraction: None,
                    replicas: 1,
                    per_replica: 1,
                    ..*req
                };
                let n = self.best_node(c, model, 1, 1, &one)?;
                if c.nodes[n as usize].dev_mem_mib < fr.mem_mib {
                    return None;
                }
                (
                    n,
                    pick_devices(&c.nodes[n as usize], 1).trailing_zeros() as u8,
                )
            }
        };
        let part = Part {
            node: n,
            mask: 0,
            share: Some((dev, fr.milli, fr.mem_mib)),
            cpu: req.cpu,
            mem: req.mem,
        };
        for op in part.take_ops() {
            c.apply(op);
        }
        Some(part)
    }

    fn place_gang(&self, c: &mut ClusterState, model: ModelId, req: &Request) -> Option<Vec<Part>> {
        let caps = leaf_caps(c, model, req);
        let want = req.replicas;
        if caps.iter().sum::<u32>() < want {
            return None;
        }
        let index = c.model(model)?;
        let order = |mut doms: Vec<(u32, Vec<usize>)>| {
            if self.domain_fit == DomainFit::BestFit {
                doms.sort_by_key(|(cap, leaves)| (*cap, leaves[0]));
            }
            doms
        };
        let by_cap_desc = |mut leaves: Vec<usize>| {
            leaves.sort_by_key(|&lp| (std::cmp::Reverse(caps[lp]), lp));
            leaves
        };
        let mut domains: Vec<Vec<usize>> = Vec::new();
        if self.topology_aware {
            let leaves = (0..caps.len())
                .filter(|&lp| caps[lp] >= want)
                .map(|lp| (caps[lp], vec![lp]))
                .collect();
            domains.extend(order(leaves).into_iter().map(|(_, l)| l));
            let mut spines: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
            for (lp, leaf) in index.leaves.iter().enumerate() {
                spines.entry(leaf.spine).or_default().push(lp);
            }
            let spines = spines
                .into_values()
                .filter(|l| l.len() > 1)
                .map(|l| (l.iter().map(|&lp| caps[lp]).sum::<u32>(), l))
                .filter(|(cap, _)| *cap >= want)
                .collect();
            domains.extend(order(spines).into_iter().map(|(_, l)| by_cap_desc(l)));
            domains.push(by_cap_desc((0..caps.len()).collect()));
        } else {
            domains.push((0..caps.len()).collect());
        }
        for leaves in domains {
            let mark = c.mark();
            if let Some(parts) = self.fill(c, model, &leaves, req) {
                return Some(parts);
            }
            c.rollback(mark);
        }
        None
    }

    /// Fills the gang from the given leaves in order, fewest-free nodes first.
    fn fill(
        &self,
        c: &mut ClusterState,
        model: ModelId,
        leaves: &[usize],
        req: &Request,
    ) -> Option<Vec<Part>> {
        let mut parts = Vec::with_capacity(req.replicas as usize);
        for &lp in leaves {
            let leaf = &c.model(model)?.leaves[lp];
            let nodes: Vec<NodeIdx> = (req.per_replica as usize..leaf.by_free.len())
                .flat_map(|f| leaf.by_free[f].iter().copied())
                .collect();
            for n in nodes {
                let node = &c.nodes[n as usize];
                let f = node.free().count_ones();
                let room =
                    replicas_on(req, f, node.devices as u32).min(node.host_room(req.cpu, req.mem));
                let k = room.min(req.replicas - parts.len() as u32);
                parts.extend(self.take_on_node(c, n, req, k));
                if parts.len() as u32 == req.replicas {
                    return Some(parts);
                }
            }
        }
        None
    }
}

/// Replicas a node with `free` of `devices` free devices can take.
fn replicas_on(req: &Request, free: u32, devices: u32) -> u32 {
    if req.whole_nodes {
        u32::from(free == devices && free >= req.per_replica)
    } else {
        free / req.per_replica
    }
}

/// Upper bound of replicas each leaf (by position) can take, from its free-count histogram.
fn leaf_caps(c: &ClusterState, model: ModelId, req: &Request) -> Vec<u32> {
    let Some(index) = c.model(model) else {
        return Vec::new();
    };
    index
        .leaves
        .iter()
        .map(|leaf| {
            (req.per_replica as usize..leaf.by_free.len())
                .map(|f| {
                    // Node sizes inside a leaf may differ; whole-node fit is checked exactly in `fill`.
                    let each = if req.whole_nodes {
                        1
                    } else {
                        f as u32 / req.per_replica
                    };
                    leaf.by_free[f].len() as u32 * each
                })
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(leaf: u32, spine: u32, devices: u8) -> NodeState {
        crate::cluster::test_node(0, leaf, spine, devices)
    }

    /// 2 spines × 2 leaves × 4 nodes × 8 devices.
    fn cluster() -> ClusterState {
        let mut c = ClusterState::default();
        for leaf in 0..4 {
            for _ in 0..4 {
                c.add_node(node(leaf, leaf / 2, 8));
            }
        }
        c
    }

    fn req(replicas: u32, per_replica: u32) -> Request {
        Request {
            replicas,
            per_replica,
            fraction: None,
            cpu: 0,
            mem: 0,
            whole_nodes: false,
        }
    }

    fn wanka(scorers: &crate::score::Chain) -> Placer<'_> {
        Placer {
            scorers,
            topology_aware: true,
            domain_fit: DomainFit::BestFit,
        }
    }

    fn wanka_scorers() -> crate::score::Chain {
        crate::config::Config::wanka().scorers().unwrap()
    }

    fn leaves_of(c: &ClusterState, parts: &[Part]) -> Vec<u32> {
        let mut l: Vec<u32> = parts
            .iter()
            .map(|p| c.nodes[p.node as usize].leaf)
            .collect();
        l.sort();
        l.dedup();
        l
    }

    #[test]
    fn small_jobs_pack_onto_one_node_and_keep_others_whole() {
        let scorers = wanka_scorers();
        let p = wanka(&scorers);
        let mut c = cluster();
        let a = p.place(&mut c, ModelId(0), &req(1, 3)).unwrap();
        let b = p.place(&mut c, ModelId(0), &req(1, 2)).unwrap();
        assert_eq!(
            a[0].node, b[0].node,
            "second job should fill the partly used node"
        );
        assert_eq!(c.model(ModelId(0)).unwrap().leaves[0].by_free[8].len(), 3);
    }

    #[test]
    fn a_gang_stays_in_the_smallest_domain_that_fits() {
        let scorers = wanka_scorers();
        let p = wanka(&scorers);
        let mut c = cluster();
        // Occupy two nodes of leaf 0 so leaf 0 has 2 whole nodes left, the others 4.
        for _ in 0..2 {
            p.place(&mut c, ModelId(0), &req(1, 8)).unwrap();
        }
        // 2 whole nodes: best fit is the busy leaf 0.
        let g = p.place(&mut c, ModelId(0), &req(2, 8)).unwrap();
        assert_eq!(leaves_of(&c, &g), vec![0]);
        // 6 whole nodes: no leaf has them, spine 0 (leaves 0,1) has only 4 → spine 1.
        let g = p.place(&mut c, ModelId(0), &req(6, 8)).unwrap();
        assert_eq!(leaves_of(&c, &g), vec![2, 3]);
        // Leaf 1 has 4 whole nodes and leaf 3 has 2, in different spines: 5 only fit across the center,
        // taking the fullest leaf first.
        let g = p.place(&mut c, ModelId(0), &req(5, 8)).unwrap();
        assert_eq!(leaves_of(&c, &g), vec![1, 3]);
        assert!(p.place(&mut c, ModelId(0), &req(2, 8)).is_none());
        assert!(p.place(&mut c, ModelId(0), &req(1, 8)).is_some());
    }

    #[test]
    fn a_gang_that_does_not_fit_leaves_no_trace() {
        let scorers = wanka_scorers();
        let p = wanka(&scorers);
        let mut c = cluster();
        for n in 0..16 {
            c.apply(Op::HostTake {
                node: n,
                cpu: if n < 15 { 64_000 } else { 0 },
                mem: 0,
            });
        }
        c.commit();
        let before: Vec<Mask> = c.nodes.iter().map(|n| n.free()).collect();
        let mut r = req(2, 8);
        r.cpu = 1000;
        assert!(
            p.place(&mut c, ModelId(0), &r).is_none(),
            "only one node has CPU left"
        );
        let after: Vec<Mask> = c.nodes.iter().map(|n| n.free()).collect();
        assert_eq!(before, after);
        assert_eq!(c.model(ModelId(0)).unwrap().free, 128);
    }

    #[test]
    fn fractions_share_the_tightest_device() {
        let scorers = wanka_scorers();
        let p = wanka(&scorers);
        let mut c = cluster();
        let mut r = req(1, 1);
        r.fraction = Some(Fraction {
            milli: 600,
            mem_mib: 0,
        });
        let a = p.place(&mut c, ModelId(0), &r).unwrap()[0];
        r.fraction = Some(Fraction {
            milli: 500,
            mem_mib: 0,
        });
        let b = p.place(&mut c, ModelId(0), &r).unwrap()[0];
        assert_ne!(
            (a.node, a.share.unwrap().0),
            (b.node, b.share.unwrap().0),
            "600 + 500 > 1000"
        );
        r.fraction = Some(Fraction {
            milli: 400,
            mem_mib: 0,
        });
        let d = p.place(&mut c, ModelId(0), &r).unwrap()[0];
        assert_eq!(
            (d.node, d.share.unwrap().0),
            (a.node, a.share.unwrap().0),
            "best fit is the 400 left"
        );
    }

    #[test]
    fn devices_come_from_one_interconnect_domain_when_possible() {
        let mut n = node(0, 0, 8);
        n.domains = vec![0x0F, 0xF0];
        n.alloc = 0b0000_0011;
        assert_eq!(pick_devices(&n, 2), 0b0000_1100);
        assert_eq!(pick_devices(&n, 4), 0xF0);
        assert_eq!(pick_devices(&n, 5).count_ones(), 5);
    }

    #[test]
    fn first_fit_takes_the_lowest_node() {
        let p = Placer {
            scorers: &[],
            topology_aware: false,
            domain_fit: DomainFit::FirstFit,
        };
        let mut c = cluster();
        c.apply(Op::Take {
            node: 0,
            mask: 0xFF,
        });
        let a = p.place(&mut c, ModelId(0), &req(1, 1)).unwrap();
        assert_eq!(a[0].node, 1);
    }
}
