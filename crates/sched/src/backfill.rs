//! Backfill stage: reservations for blocked jobs and the release sweep that finds when they can start.
//!
//! A reservation is the placement a blocked job would get once enough running jobs end at their estimated
//! times. Its devices that are free now are *held*: nobody may take them, except a job whose own estimate
//! ends before the reservation starts (EASY backfill). Devices of the reservation still in use are left to
//! their jobs; when those end early, the next full cycle recomputes everything.

use crate::cluster::{ClusterState, Mask, NodeIdx, Op, lowest};
use crate::fxhash::FxHashMap;
use crate::placement::{Part, Request};
use wanka_model::{JobId, ModelId, Time};

/// Free devices (and optionally host resources) kept for a reservation or claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Node.
    pub node: NodeIdx,
    /// Devices held.
    pub mask: Mask,
    /// Host CPU held.
    pub cpu: u64,
    /// Host memory held.
    pub mem: u64,
}

/// Holds whatever of `parts` is not allocated whole now (host resources too when `host`): free devices are
/// kept from everyone, shared ones from new fractional tenants. Returns what was held.
pub fn hold_free(c: &mut ClusterState, parts: &[Part], host: bool) -> Vec<Hold> {
    let mut out = Vec::new();
    for p in parts {
        let n = &c.nodes[p.node as usize];
        let mask = p.mask & (n.free() | (n.shared_mask() & !n.held));
        let (cpu, mem) = if host {
            (p.cpu.min(n.cpu_free()), p.mem.min(n.mem_free()))
        } else {
            (0, 0)
        };
        if mask != 0 || cpu > 0 || mem > 0 {
            let h = Hold {
                node: p.node,
                mask,
                cpu,
                mem,
            };
            c.apply(Op::Hold {
                node: h.node,
                mask,
                cpu,
                mem,
            });
            out.push(h);
        }
    }
    out
}

/// Gives back what [`hold_free`] held.
pub fn unhold(c: &mut ClusterState, holds: &[Hold]) {
    for h in holds {
        c.apply(Op::Unhold {
            node: h.node,
            mask: h.mask,
            cpu: h.cpu,
            mem: h.mem,
        });
    }
}

/// A blocked job's claim on future capacity.
#[derive(Clone, Debug)]
pub struct Reservation {
    /// The job.
    pub job: JobId,
    /// When it is expected to start.
    pub start: Time,
    /// Model it will run on.
    pub model: ModelId,
    /// Where it will run.
    pub parts: Vec<Part>,
    /// What is held for it now.
    pub holds: Vec<Hold>,
}

/// A cheap upper bound of how many replicas of a request the cluster could take, kept up to date as a sweep
/// frees devices without applying anything.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// Replicas the cluster could take now (an upper bound).
    pub capacity: u32,
    /// Replicas needed.
    pub replicas: u32,
    /// Devices per replica (0: no bound, always try).
    pub per_replica: u32,
    /// A replica needs a whole node.
    pub whole_nodes: bool,
}

impl Bound {
    fn replicas_on(&self, free: u32, devices: u32) -> u32 {
        if self.whole_nodes {
            u32::from(free == devices && free >= self.per_replica)
        } else {
            free / self.per_replica
        }
    }
}

/// Frees running allocations in order on the live state until `try_place` succeeds, testing after the last
/// release of each distinct time. Returns the time of the release that made it fit and the placement found
/// then. Everything is rolled back. Devices in `keep` (reserved for someone else) are held again when freed.
///
/// Releases are only applied, and the placement only tried, once `bound` says enough replicas could fit,
/// so that a long sweep over thousands of running jobs stays cheap.
pub fn sweep<'a>(
    c: &mut ClusterState,
    releases: impl Iterator<Item = (Time, &'a [Part])>,
    keep: &dyn Fn(NodeIdx) -> Mask,
    mut bound: Bound,
    mut try_place: impl FnMut(&mut ClusterState) -> Option<Vec<Part>>,
) -> Option<(Time, Vec<Part>)> {
    let mark = c.mark();
    let mut pending: Vec<&[Part]> = Vec::new();
    // Free devices per node as if the pending releases were applied.
    let mut virtual_free: crate::fxhash::FxHashMap<NodeIdx, u32> = Default::default();
    let mut releases = releases.peekable();
    let mut found = None;
    while let Some((at, parts)) = releases.next() {
        if bound.per_replica > 0 {
            for p in parts {
                let node = &c.nodes[p.node as usize];
                // Devices promised to someone else come free for them, not for this request.
                let add = (p.mask & !keep(p.node) & node.healthy).count_ones();
                let before = *virtual_free
                    .entry(p.node)
                    .or_insert_with(|| node.free().count_ones());
                let after = (before + add).min(node.devices as u32);
                virtual_free.insert(p.node, after);
                let devices = node.devices as u32;
                bound.capacity +=
                    bound.replicas_on(after, devices) - bound.replicas_on(before, devices);
            }
        }
        pending.push(parts);
        let enough = bound.per_replica == 0 || bound.capacity >= bound.replicas;
        if releases.peek().is_some_and(|(next, _)| *next == at) || !enough {
            continue;
        }
        for p in pending.drain(..).flatten() {
            for op in p.release_ops() {
                c.apply(op);
            }
            let back = p.mask & keep(p.node) & c.nodes[p.node as usize].free();
            if back != 0 {
                c.apply(Op::Hold {
                    node: p.node,
                    mask: back,
                    cpu: 0,
                    mem: 0,
                });
            }
        }
        virtual_free.clear();
        if let Some(parts) = try_place(c) {
            found = Some((at, parts));
            break;
        }
        // Start the bound again from what is now really free.
        bound.capacity = bound.capacity.min(bound.replicas.saturating_sub(1));
    }
    c.rollback(mark);
    found
}

/// Finds when `req` could start on `model` as the releases come (in time order) and which devices it would
/// get, without changing the cluster: free devices are tracked per node as masks. Devices in `keep` are
/// promised to someone else and never counted. Host resources and topology preference are not modelled
/// here; the job is placed for real when its time comes, and a reservation only promises capacity.
pub fn reservation<'a>(
    c: &ClusterState,
    model: wanka_model::ModelId,
    req: &Request,
    releases: impl Iterator<Item = (Time, &'a [Part])>,
    keep: &dyn Fn(NodeIdx) -> Mask,
) -> Option<(Time, Vec<Part>)> {
    let total = req.replicas * req.per_replica;
    if req.fraction.is_some() || req.per_replica == 0 {
        return None;
    }
    let index = c.model(model)?;
    let single = !req.whole_nodes && total <= index.max_dev as u32;
    let (want, per_replica) = if single {
        (1, total)
    } else {
        (req.replicas, req.per_replica)
    };
    let fits = |free: Mask, devices: u32| -> u32 {
        let n = free.count_ones();
        if req.whole_nodes {
            u32::from(n == devices && n >= per_replica)
        } else {
            n / per_replica
        }
    };
    let mut free: FxHashMap<NodeIdx, Mask> = FxHashMap::default();
    let mut capacity: u32 = crate::placement::bound(
        c,
        model,
        &Request {
            replicas: want,
            per_replica,
            ..*req
        },
    )
    .capacity;
    let mut releases = releases.peekable();
    while let Some((at, parts)) = releases.next() {
        for p in parts {
            let node = &c.nodes[p.node as usize];
            if node.model != model || !node.schedulable {
                continue;
            }
            let before = *free.entry(p.node).or_insert_with(|| node.free());
            let after = before | (p.mask & !keep(p.node) & node.healthy);
            free.insert(p.node, after);
            capacity += fits(after, node.devices as u32) - fits(before, node.devices as u32);
        }
        if releases.peek().is_some_and(|(next, _)| *next == at) || capacity < want {
            continue;
        }
        // Enough capacity: take nodes with the fewest free devices that still fit, as placement would.
        let mut nodes: Vec<(u32, NodeIdx, Mask)> = index
            .leaves
            .iter()
            .flat_map(|l| l.by_free.iter().flatten().copied())
            .chain(free.keys().copied())
            .map(|n| {
                (
                    n,
                    free.get(&n)
                        .copied()
                        .unwrap_or_else(|| c.nodes[n as usize].free()),
                )
            })
            .filter(|(n, m)| fits(*m, c.nodes[*n as usize].devices as u32) > 0)
            .map(|(n, m)| (m.count_ones(), n, m))
            .collect();
        nodes.sort_unstable();
        nodes.dedup_by_key(|(_, n, _)| *n);
        let mut parts_out = Vec::with_capacity(req.replicas as usize);
        for (_, n, mask) in nodes {
            let mut left = mask;
            // A single-node gang puts every replica on this node; otherwise as many as fit.
            let take = if single {
                req.replicas
            } else {
                fits(mask, c.nodes[n as usize].devices as u32)
            };
            for _ in 0..take {
                let devs = if req.whole_nodes {
                    left
                } else {
                    lowest(left, req.per_replica)
                };
                left &= !devs;
                parts_out.push(Part {
                    node: n,
                    mask: devs,
                    share: None,
                    cpu: req.cpu,
                    mem: req.mem,
                });
                if parts_out.len() as u32 >= req.replicas {
                    return Some((at, parts_out));
                }
            }
        }
        return None;
    }
    None
}
