//! Placement stage: where a gang of one model goes.
//!
//! Topology-aware gang placement keeps a gang in the smallest domain that fits: one node, then one leaf
//! switch, then one spine, then the whole center. Inside a domain, nodes with the fewest free devices are
//! filled first so that whole nodes stay whole. A single-node placement is chosen by the scorer chain over
//! groups of interchangeable nodes (same leaf, same free count). Every change goes through the cluster's
//! journal: a gang that does not fit leaves no trace.

use crate::cluster::{ClusterState, FULL_MILLI, Mask, NodeIdx, NodeState, Op, lowest};
use crate::config::DomainFit;
use crate::profile::Profile;
use crate::score::{Change, Fit, Scorer};
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

    /// Devices the request takes, a shared device counting as one.
    pub(crate) fn devices(&self) -> u32 {
        if self.fraction.is_some() {
            1
        } else {
            self.total()
        }
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

/// A candidate's score: (per-node scorers, the others), compared in that order.
pub type Score = (f64, f64);

/// Whether candidate (a, node i) beats candidate (b, node j): higher score, then the lower node index.
fn better(a: Score, i: NodeIdx, b: Score, j: NodeIdx) -> bool {
    match a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => i < j,
    }
}

/// The placement engine, configured with the scorer chain and topology settings.
pub struct Placer<'a> {
    /// Weighted scorers for single-node choices.
    pub scorers: &'a [(Box<dyn Scorer>, f64)],
    /// Keep gangs in the smallest domain.
    pub topology_aware: bool,
    /// Domain choice for multi-node gangs.
    pub domain_fit: DomainFit,
    /// The workload profile, for fragmentation-aware scorers.
    pub profile: &'a Profile,
}

impl Placer<'_> {
    /// Places a host-only request (no devices) on any node, one replica at a time: nodes with the fewest
    /// free devices first, so that CPU and memory are taken where accelerators cannot use them anyway, then
    /// the tightest CPU fit. `None` (and no change) if it does not fit.
    pub fn place_host_only(&self, c: &mut ClusterState, req: &Request) -> Option<Vec<Part>> {
        let mark = c.mark();
        let mut parts = Vec::with_capacity(req.replicas as usize);
        let scored = self.node_level(req);
        for _ in 0..req.replicas {
            let candidates = (0..c.nodes.len() as NodeIdx).filter(|&n| {
                c.nodes[n as usize].schedulable
                    && c.nodes[n as usize].host_room(req.cpu, req.mem) >= 1
            });
            let best = if scored {
                let change = |_: &NodeState| {
                    [Change {
                        cpu: req.cpu,
                        mem: req.mem,
                        ..Change::default()
                    }]
                };
                self.best_scored(c, candidates, 0, change)
                    .map(|(_, n, _)| n)
            } else {
                candidates.min_by_key(|&n| {
                    let node = &c.nodes[n as usize];
                    (node.free().count_ones(), node.cpu_free() - req.cpu, n)
                })
            };
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

    /// True when the request must be scored node by node (see [`Scorer::per_node`]).
    fn node_level(&self, req: &Request) -> bool {
        self.scorers.iter().any(|(s, w)| *w > 0.0 && s.per_node())
            && (self.profile.needs_nodes()
                || req.cpu > 0
                || req.mem > 0
                || req.fraction.is_some()
                || req.per_replica == 0)
    }

    /// What scorers see of `node` when the placement would `change` it and take `want` devices.
    fn fit<'b>(
        &'b self,
        c: &'b ClusterState,
        node: &'b NodeState,
        want: u32,
        change: Change,
    ) -> Fit<'b> {
        let index = c.model(node.model).expect("every node's model is indexed");
        let leaf = &index.leaves[index
            .leaf_pos(node.leaf)
            .expect("every node's leaf is indexed")];
        let spine = index.spines.get(&node.spine).copied().unwrap_or([0, 0]);
        Fit {
            want,
            node_devices: node.devices as u32,
            node_free: node.free().count_ones(),
            leaf_free: leaf.free,
            leaf_usable: leaf.usable,
            spine_free: spine[0],
            spine_usable: spine[1],
            node,
            change,
            profile: self.profile,
        }
    }

    /// (per-node scorers, the others): compared in that order, so that fragmentation decides and the
    /// packing scorers only break its ties.
    fn score(&self, fit: &Fit<'_>) -> (f64, f64) {
        let mut out = (0.0, 0.0);
        for (s, w) in self.scorers {
            if s.per_node() {
                out.0 += w * s.score(fit);
            } else {
                out.1 += w * s.score(fit);
            }
        }
        out
    }

    /// The best of `candidates` by the scorer chain, each scored with the changes `changes_on` offers for it
    /// (several ways to place on one node, e.g. which shared device); ties go to the lowest node index,
    /// then to the first change offered.
    fn best_scored<I: IntoIterator<Item = Change>>(
        &self,
        c: &ClusterState,
        candidates: impl Iterator<Item = NodeIdx>,
        want: u32,
        changes_on: impl Fn(&NodeState) -> I,
    ) -> Option<(Score, NodeIdx, Change)> {
        let mut best: Option<(Score, NodeIdx, Change)> = None;
        for n in candidates {
            let node = &c.nodes[n as usize];
            for change in changes_on(node) {
                let score = self.score(&self.fit(c, node, want, change));
                if best
                    .as_ref()
                    .is_none_or(|(b, i, _)| better(score, n, *b, *i))
                {
                    best = Some((score, n, change));
                }
            }
        }
        best
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
            && let Some((_, n)) = self.best_node(c, model, total, req.replicas, req)
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

    /// The best node for `k` devices (for `replicas` replicas) by the scorer chain, with its score; ties to
    /// the lowest index.
    fn best_node(
        &self,
        c: &ClusterState,
        model: ModelId,
        k: u32,
        replicas: u32,
        req: &Request,
    ) -> Option<(Score, NodeIdx)> {
        let index = c.model(model)?;
        let change = |node: &NodeState| Change {
            take: pick_devices(node, k),
            share: None,
            cpu: req.cpu * replicas as u64,
            mem: req.mem * replicas as u64,
        };
        let fits_host = |n: NodeIdx| c.nodes[n as usize].host_room(req.cpu, req.mem) >= replicas;
        let groups = index
            .leaves
            .iter()
            .enumerate()
            .filter(|(_, l)| l.free >= k)
            .flat_map(|(lp, leaf)| {
                (k as usize..leaf.by_free.len())
                    .filter(move |&f| !leaf.by_free[f].is_empty())
                    .map(move |f| (lp, f))
            });
        if self.node_level(req) {
            let nodes = groups
                .flat_map(|(lp, f)| index.leaves[lp].by_free[f].iter().copied())
                .filter(|&n| fits_host(n));
            return self
                .best_scored(c, nodes, k, |node| [change(node)])
                .map(|(score, n, _)| (score, n));
        }
        // Nodes of one (leaf, free count) group look the same to group-level scorers: score one of each.
        let mut cands: Vec<(Score, NodeIdx, usize, usize)> = groups
            .map(|(lp, f)| {
                let rep = *index.leaves[lp].by_free[f]
                    .first()
                    .expect("non-empty group");
                let node = &c.nodes[rep as usize];
                (self.score(&self.fit(c, node, k, change(node))), rep, lp, f)
            })
            .collect();
        while !cands.is_empty() {
            let best = (0..cands.len())
                .reduce(|a, b| {
                    if better(cands[b].0, cands[b].1, cands[a].0, cands[a].1) {
                        b
                    } else {
                        a
                    }
                })
                .expect("non-empty");
            let (score, _, lp, f) = cands.swap_remove(best);
            if let Some(&n) = index.leaves[lp].by_free[f].iter().find(|&&n| fits_host(n)) {
                return Some((score, n));
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

    /// Where a fractional request would go on `model`: the node, the device, and the score when placement
    /// is scored node by node.
    fn choose_fraction(
        &self,
        c: &ClusterState,
        model: ModelId,
        req: &Request,
        fr: Fraction,
    ) -> Option<(Option<Score>, NodeIdx, u8)> {
        let index = c.model(model)?;
        // The devices of a node that could take the fraction: shared ones, tightest first (one per amount
        // left), then one free device.
        let devices_on = |node: &NodeState| -> Vec<u8> {
            if node.host_room(req.cpu, req.mem) == 0 || !node.schedulable {
                return Vec::new();
            }
            let mut shared: Vec<(u32, u8)> = node
                .shared
                .iter()
                .filter(|s| {
                    node.held & (1 << s.dev) == 0
                        && node.healthy & (1 << s.dev) != 0
                        && FULL_MILLI - s.used_milli >= fr.milli
                        && node.dev_mem_mib.saturating_sub(s.used_mem_mib) >= fr.mem_mib
                })
                .map(|s| (FULL_MILLI - s.used_milli, s.dev))
                .collect();
            shared.sort_unstable();
            shared.dedup_by_key(|(left, _)| *left);
            let mut out: Vec<u8> = shared.into_iter().map(|(_, d)| d).collect();
            let free = node.free();
            if free != 0 && node.dev_mem_mib >= fr.mem_mib {
                out.push(free.trailing_zeros() as u8);
            }
            out
        };
        if self.node_level(req) {
            let mut candidates: Vec<NodeIdx> = index
                .shared
                .range((fr.milli, 0, 0)..)
                .map(|s| s.1)
                .collect();
            candidates.extend(
                index
                    .leaves
                    .iter()
                    .flat_map(|l| l.by_free.iter().skip(1).flatten().copied()),
            );
            candidates.sort_unstable();
            candidates.dedup();
            let changes = |node: &NodeState| {
                devices_on(node).into_iter().map(|d| Change {
                    take: 0,
                    share: Some((d, fr.milli)),
                    cpu: req.cpu,
                    mem: req.mem,
                })
            };
            let (score, n, change) = self.best_scored(c, candidates.into_iter(), 1, changes)?;
            Some((
                Some(score),
                n,
                change.share.expect("fraction changes share a device").0,
            ))
        } else {
            // Best fit over all shared devices of the model, else a fresh device on the best node.
            let shared = index
                .shared
                .range((fr.milli, 0, 0)..)
                .find_map(|&(_, n, dev)| {
                    devices_on(&c.nodes[n as usize])
                        .contains(&dev)
                        .then_some((n, dev))
                });
            match shared {
                Some((n, dev)) => Some((None, n, dev)),
                None => {
                    let one = Request {
                        fraction: None,
                        replicas: 1,
                        per_replica: 1,
                        ..*req
                    };
                    let (_, n) = self.best_node(c, model, 1, 1, &one)?;
                    Some((None, n, *devices_on(&c.nodes[n as usize]).last()?))
                }
            }
        }
    }

    /// Takes a share of device `dev` on node `n`.
    fn take_share(
        &self,
        c: &mut ClusterState,
        n: NodeIdx,
        dev: u8,
        req: &Request,
        fr: Fraction,
    ) -> Part {
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
        part
    }

    fn place_fraction(
        &self,
        c: &mut ClusterState,
        model: ModelId,
        req: &Request,
        fr: Fraction,
    ) -> Option<Part> {
        let (_, n, dev) = self.choose_fraction(c, model, req, fr)?;
        Some(self.take_share(c, n, dev, req, fr))
    }

    /// Places a request on the best of several models. When placement is scored node by node, every
    /// accepted model's nodes compete (fragmentation knows no model boundary); otherwise, and for gangs that
    /// span nodes, the models are tried in the given order.
    pub fn place_across(
        &self,
        c: &mut ClusterState,
        models: &[ModelId],
        req: &Request,
    ) -> Option<(ModelId, Vec<Part>)> {
        if self.node_level(req) && !req.whole_nodes {
            let mut best: Option<(Score, NodeIdx, ModelId, Option<u8>)> = None;
            for &m in models {
                let Some(index) = c.model(m) else { continue };
                let found = match req.fraction {
                    Some(fr) => self
                        .choose_fraction(c, m, req, fr)
                        .and_then(|(score, n, dev)| Some((score?, n, Some(dev)))),
                    None if req.total() <= index.max_dev as u32 && index.free >= req.total() => {
                        self.best_node(c, m, req.total(), req.replicas, req)
                            .map(|(score, n)| (score, n, None))
                    }
                    None => None,
                };
                if let Some((score, n, dev)) = found
                    && best
                        .as_ref()
                        .is_none_or(|(b, i, _, _)| better(score, n, *b, *i))
                {
                    best = Some((score, n, m, dev));
                }
            }
            if let Some((_, n, m, dev)) = best {
                let parts = match (req.fraction, dev) {
                    (Some(fr), Some(dev)) => vec![self.take_share(c, n, dev, req, fr)],
                    _ => self.take_on_node(c, n, req, req.replicas),
                };
                return Some((m, parts));
            }
        }
        models
            .iter()
            .find_map(|&m| self.place(c, m, req).map(|p| (m, p)))
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

/// A [`Bound`](crate::backfill::Bound) for sweeps: how many replicas of the request `model` could take now,
/// from the free-count histograms (0 devices per replica, "no bound", for fractions and host-only requests).
pub fn bound(c: &ClusterState, model: ModelId, req: &Request) -> crate::backfill::Bound {
    let per_replica = if req.fraction.is_some() {
        0
    } else {
        req.per_replica
    };
    crate::backfill::Bound {
        capacity: if per_replica == 0 {
            0
        } else {
            leaf_caps(c, model, req).iter().sum()
        },
        replicas: req.replicas,
        per_replica,
        whole_nodes: req.whole_nodes,
    }
}

/// A single-replica request of `per_replica` devices (or a fraction of one) and `cpu`, for tests.
#[cfg(test)]
pub(crate) fn test_request(per_replica: u32, fraction: Option<u32>, cpu: u64) -> Request {
    Request {
        replicas: 1,
        per_replica,
        fraction: fraction.map(|milli| Fraction { milli, mem_mib: 0 }),
        cpu,
        mem: 0,
        whole_nodes: false,
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

    static PROFILE: std::sync::LazyLock<Profile> = std::sync::LazyLock::new(Profile::default);

    fn wanka(scorers: &crate::score::Chain) -> Placer<'_> {
        Placer {
            scorers,
            topology_aware: true,
            domain_fit: DomainFit::BestFit,
            profile: &PROFILE,
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
            profile: &PROFILE,
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
