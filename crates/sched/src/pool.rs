//! Lease pools: the devices that stand behind each lease in force. A count alone cannot guarantee a gang
//! (eight free devices scattered over eight nodes hold no 8-device job), so each lease is laid out on
//! concrete, disjoint devices, whole nodes first and in topology order (a leaf or spine lease under its
//! switch), again whenever a lease starts or ends, keeping what each lease had where possible.
//!
//! The owner's jobs go to its pool first; anyone else's run in a pool is borrowed (reclaimable), so the owner
//! gets back the devices a dedicated partition of its lease would have had.

use crate::cluster::{Mask, NodeIdx, bits};
use crate::lease::inside;
use crate::scheduler::{Phase, Scheduler};
use std::collections::BTreeMap;
use wanka_model::{Lease, LeaseId, ModelId, TenantId, Time, UsageKind};

/// Which devices a layout pass may take.
#[derive(Clone, Copy)]
enum Prefer {
    Free,
    Reclaimable,
    Any,
}

/// Devices of each lease, and their owners at the time of the last refresh.
#[derive(Clone, Debug, Default)]
pub struct Pools {
    /// Per lease: (node, devices).
    layout: BTreeMap<LeaseId, Vec<(NodeIdx, Mask)>>,
    /// Per node: (owner, model, devices) of the leases in force at `at`.
    now: Vec<Vec<(TenantId, ModelId, Mask)>>,
    /// Per node: devices of the pools in force at `at`.
    any: Vec<Mask>,
    /// When `now` and `later` were computed; `None` forces a new layout.
    at: Option<Time>,
}

impl Pools {
    /// Forgets the layout (leases or nodes changed).
    pub fn invalidate(&mut self) {
        self.at = None;
    }

    /// Devices of the tenant's pools on a node.
    pub fn own(&self, node: NodeIdx, tenant: TenantId) -> Mask {
        self.now.get(node as usize).map_or(0, |v| {
            v.iter()
                .filter(|(t, _, _)| *t == tenant)
                .map(|x| x.2)
                .fold(0, |a, m| a | m)
        })
    }

    /// Devices on a node that stand behind some lease in force.
    pub fn any(&self, node: NodeIdx) -> Mask {
        self.any.get(node as usize).copied().unwrap_or(0)
    }

    /// Devices on a node of other tenants' pools.
    pub fn foreign(&self, node: NodeIdx, tenant: TenantId) -> Mask {
        self.any(node) & !self.own(node, tenant)
    }

    /// A lease's devices (for tests and views).
    pub fn of(&self, lease: LeaseId) -> &[(NodeIdx, Mask)] {
        self.layout.get(&lease).map_or(&[], Vec::as_slice)
    }
}

impl Scheduler {
    /// Lays the leases in force at `now` out on devices. The most constrained go first (leaf leases, then
    /// spine leases, then the rest): admission keeps the leases of any instant within every switch, so at one
    /// instant this always succeeds. Each lease keeps what it had in `before` where no other lease took it
    /// (pools move only when they must), then takes whole nodes before parts, and free devices before those
    /// only reclaimable (borrowed) work holds before any.
    fn lay_out(
        &self,
        now: Time,
        before: &BTreeMap<LeaseId, Vec<(NodeIdx, Mask)>>,
    ) -> BTreeMap<LeaseId, Vec<(NodeIdx, Mask)>> {
        let mut order: Vec<&Lease> = self.leases.active(now).collect();
        let rank = |l: &Lease| match l.domain.as_deref() {
            Some(d) if d.contains('/') => 0,
            Some(_) => 1,
            None => 2,
        };
        order.sort_by_key(|l| (rank(l), l.start, l.id));
        // Devices of runs that cannot be reclaimed (not borrowed), by tenant: a pool avoids other tenants'.
        let mut fixed: BTreeMap<NodeIdx, Vec<(TenantId, Mask)>> = BTreeMap::new();
        for job in self.jobs.values() {
            if let Phase::Running(run) | Phase::Preempting { run, .. } = &job.phase
                && run.kind != UsageKind::Borrowed
            {
                for p in &run.parts {
                    let m = p.mask | p.share.map_or(0, |(d, _, _)| 1 << d);
                    fixed.entry(p.node).or_default().push((job.spec.tenant, m));
                }
            }
        }
        let mut used: BTreeMap<NodeIdx, Mask> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for l in order {
            let mut nodes: Vec<NodeIdx> = (0..self.cluster.nodes.len() as NodeIdx)
                .filter(|&n| self.cluster.nodes[n as usize].model == l.model)
                .filter(|&n| {
                    let t = &self.node_specs[n as usize].topology;
                    l.domain
                        .as_deref()
                        .is_none_or(|d| inside(&format!("{}/{}", t.spine, t.leaf), d))
                })
                .collect();
            nodes.sort_by_key(|&n| {
                let s = &self.node_specs[n as usize];
                (s.topology.spine.clone(), s.topology.leaf.clone(), n)
            });
            let mut left = l.devices;
            let mut mine: BTreeMap<NodeIdx, Mask> = BTreeMap::new();
            let mut take =
                |n: NodeIdx, avail: Mask, left: &mut u32, used: &mut BTreeMap<NodeIdx, Mask>| {
                    let t: Mask = bits(avail).take(*left as usize).fold(0, |m, d| m | 1 << d);
                    if t != 0 {
                        *left -= t.count_ones();
                        *mine.entry(n).or_default() |= t;
                        *used.entry(n).or_default() |= t;
                    }
                };
            let kept = before.get(&l.id).map_or(&[][..], Vec::as_slice);
            for &(n, m) in kept {
                if nodes.contains(&n) {
                    let avail = m & !used.get(&n).copied().unwrap_or(0);
                    take(n, avail, &mut left, &mut used);
                }
            }
            let others = |n: NodeIdx| -> Mask {
                fixed.get(&n).map_or(0, |runs| {
                    runs.iter()
                        .filter(|(t, _)| *t != l.tenant)
                        .fold(0, |a, x| a | x.1)
                })
            };
            // (whole nodes only, which devices): free ones, then those only reclaimable work holds, then any.
            let passes = [
                (true, Prefer::Free),
                (true, Prefer::Reclaimable),
                (false, Prefer::Free),
                (false, Prefer::Reclaimable),
                (false, Prefer::Any),
            ];
            for (whole, prefer) in passes {
                for &n in &nodes {
                    if left == 0 {
                        break;
                    }
                    let node = &self.cluster.nodes[n as usize];
                    let all = node.all();
                    let mut avail = all & !used.get(&n).copied().unwrap_or(0);
                    match prefer {
                        Prefer::Free => avail &= node.free(),
                        Prefer::Reclaimable => avail &= !others(n),
                        Prefer::Any => {}
                    }
                    if whole && (avail != all || avail.count_ones() > left) {
                        continue;
                    }
                    take(n, avail, &mut left, &mut used);
                }
            }
            out.insert(l.id, mine.into_iter().collect());
        }
        out
    }

    /// The devices standing behind a lease, as laid out at the last cycle.
    pub fn lease_devices(&self, lease: LeaseId) -> Vec<(wanka_model::NodeId, Vec<u32>)> {
        self.pools
            .of(lease)
            .iter()
            .map(|&(n, m)| (self.cluster.nodes[n as usize].id, bits(m).collect()))
            .collect()
    }

    /// Brings the pools up to date for `now`: laid out again when leases or nodes changed or a lease started
    /// or ended since the last refresh.
    pub(crate) fn refresh_pools(&mut self, now: Time) {
        if self.leases.is_empty() {
            return;
        }
        let stale = match self.pools.at {
            None => true,
            Some(at) => now < at || self.leases.next_change(at).is_some_and(|c| c <= now),
        };
        if !stale {
            return;
        }
        self.pools.layout = self.lay_out(now, &self.pools.layout);
        let n = self.cluster.nodes.len();
        let mut owned = vec![Vec::new(); n];
        let mut any = vec![0; n];
        for l in self.leases.active(now) {
            for &(node, mask) in self.pools.of(l.id) {
                any[node as usize] |= mask;
                owned[node as usize].push((l.tenant, l.model, mask));
            }
        }
        self.pools.now = owned;
        self.pools.any = any;
        self.pools.at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use wanka_model::{
        Catalog, Lease, LeaseId, NodeId, NodeSpec, Performance, Tenant, TenantId, ThroughputMatrix,
        Time, Topology, Within,
    };

    #[test]
    fn leases_in_force_get_disjoint_whole_nodes_and_keep_them_across_changes() {
        let c = Catalog::builtin();
        let p = Performance::new(&c, ThroughputMatrix::new()).unwrap();
        let m = c.lookup("H100").unwrap();
        let mut s = crate::Scheduler::new(Config::wanka(), c, p).unwrap();
        for t in 0..3 {
            s.upsert_tenant(Tenant::new(TenantId(t), format!("t{t}")));
        }
        for i in 0..4 {
            s.add_node(NodeSpec {
                id: NodeId(i),
                name: format!("n{i}"),
                model: m,
                devices: 8,
                domains: vec![],
                cpu_milli: 1000,
                memory_mib: 1000,
                topology: Topology {
                    spine: "s".into(),
                    leaf: format!("l{}", i / 2),
                },
            })
            .unwrap();
        }
        let lease = |id, tenant, devices, start, end, within| Lease {
            id: LeaseId(id),
            tenant: TenantId(tenant),
            model: m,
            devices,
            start: Time::from_secs(start),
            end: Time::from_secs(end),
            within,
            domain: None,
        };
        s.admit_lease(lease(1, 0, 12, 0, 100, Within::Anywhere))
            .unwrap();
        s.admit_lease(lease(2, 1, 4, 50, 150, Within::Anywhere))
            .unwrap();
        // A leaf lease laid out before the others, however late it was admitted: it gets a whole leaf.
        s.admit_lease(lease(3, 2, 16, 0, 100, Within::Leaf))
            .unwrap();
        let devices = |s: &crate::Scheduler, id| -> Vec<(u32, usize)> {
            s.lease_devices(LeaseId(id))
                .into_iter()
                .map(|(n, d)| (n.0, d.len()))
                .collect()
        };
        s.refresh_pools(Time::from_secs(1));
        assert_eq!(devices(&s, 3), vec![(0, 8), (1, 8)]);
        assert_eq!(devices(&s, 1), vec![(2, 8), (3, 4)]);
        assert!(devices(&s, 2).is_empty(), "not in force yet");
        assert_eq!(s.pools.own(3, TenantId(0)).count_ones(), 4);
        assert_eq!(s.pools.foreign(3, TenantId(0)), 0);
        // Lease 2 starts: lease 1 keeps its devices, lease 2 takes the rest of node 3.
        s.refresh_pools(Time::from_secs(60));
        assert_eq!(devices(&s, 1), vec![(2, 8), (3, 4)]);
        assert_eq!(devices(&s, 2), vec![(3, 4)]);
        assert_eq!(s.pools.foreign(3, TenantId(0)).count_ones(), 4);
    }
}
