//! The cluster as the scheduler holds it: per-node device state, an index of free capacity by model, leaf
//! and free-device count, and a journal that undoes tentative changes (Volcano's `Statement`).
//!
//! Every device is in exactly one state: unusable (unhealthy, or its node is cordoned), free, held (free but
//! kept for a reservation or a preemption claim), allocated whole, or shared by fractional jobs. The index
//! holds only free devices, so the feasibility filters "healthy", "schedulable" and "not reserved" are
//! materialized in it and the hot path never scans nodes that cannot take work.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use wanka_model::{ModelId, NodeId};

/// A set of devices on one node, bit i = device i.
pub type Mask = u64;
/// Dense index of a node inside the scheduler.
pub type NodeIdx = u32;

/// Thousandths of a device: the unit of fractional sharing.
pub const FULL_MILLI: u32 = 1000;

/// A device shared by fractional jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shared {
    /// Device index.
    pub dev: u8,
    /// Thousandths in use.
    pub used_milli: u32,
    /// Device memory in use, MiB.
    pub used_mem_mib: u32,
}

/// One node's live state.
#[derive(Clone, Debug)]
pub struct NodeState {
    /// Driver identity.
    pub id: NodeId,
    /// Model of its devices.
    pub model: ModelId,
    /// Global leaf index.
    pub leaf: u32,
    /// Global spine index.
    pub spine: u32,
    /// Device count.
    pub devices: u8,
    /// Device masks of the interconnect domains inside the node.
    pub domains: Vec<Mask>,
    /// Memory per device, MiB.
    pub dev_mem_mib: u32,
    /// Healthy devices.
    pub healthy: Mask,
    /// False while cordoned, draining or lost.
    pub schedulable: bool,
    /// Devices allocated whole.
    pub alloc: Mask,
    /// Devices kept for a reservation or claim: free ones, and shared ones that take no new tenants.
    pub held: Mask,
    /// Devices shared by fractional jobs.
    pub shared: Vec<Shared>,
    /// Host CPU, thousandths of a core: total, in use, held.
    pub cpu: [u64; 3],
    /// Host memory, MiB: total, in use, held.
    pub mem: [u64; 3],
}

impl NodeState {
    /// Devices shared by fractional jobs, as a mask.
    pub fn shared_mask(&self) -> Mask {
        self.shared.iter().fold(0, |m, s| m | (1 << s.dev))
    }

    /// Devices that can be given to a job now.
    pub fn free(&self) -> Mask {
        if self.schedulable {
            self.healthy & !self.alloc & !self.held & !self.shared_mask()
        } else {
            0
        }
    }

    /// Devices that could ever take work while the node stays as it is.
    pub fn usable(&self) -> Mask {
        if self.schedulable { self.healthy } else { 0 }
    }

    /// Every device of the node.
    pub fn all(&self) -> Mask {
        mask_of(self.devices as u32)
    }

    /// Host CPU free and not held.
    pub fn cpu_free(&self) -> u64 {
        self.cpu[0].saturating_sub(self.cpu[1] + self.cpu[2])
    }

    /// Host memory free and not held.
    pub fn mem_free(&self) -> u64 {
        self.mem[0].saturating_sub(self.mem[1] + self.mem[2])
    }

    /// How many replicas of (cpu, mem) the host could still run.
    pub fn host_room(&self, cpu: u64, mem: u64) -> u32 {
        let by = |free: u64, need: u64| {
            free.checked_div(need)
                .map_or(u32::MAX, |n| n.min(u32::MAX as u64) as u32)
        };
        by(self.cpu_free(), cpu).min(by(self.mem_free(), mem))
    }
}

/// The low `n` bits set.
pub fn mask_of(n: u32) -> Mask {
    if n >= 64 { Mask::MAX } else { (1u64 << n) - 1 }
}

/// The `k` lowest set bits of `m`.
pub fn lowest(m: Mask, k: u32) -> Mask {
    bits(m).take(k as usize).fold(0, |acc, b| acc | (1 << b))
}

/// Indices of the set bits, ascending.
pub fn bits(mut m: Mask) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        (m != 0).then(|| {
            let i = m.trailing_zeros();
            m &= m - 1;
            i
        })
    })
}

/// Free capacity of one model under one leaf switch.
#[derive(Clone, Debug)]
pub struct LeafIndex {
    /// Global leaf index.
    pub leaf: u32,
    /// Global spine index of the leaf.
    pub spine: u32,
    /// Nodes by free-device count: `by_free[f]` holds the nodes with exactly f free devices (f >= 1).
    pub by_free: Vec<BTreeSet<NodeIdx>>,
    /// Free devices under the leaf.
    pub free: u32,
    /// Usable devices under the leaf.
    pub usable: u32,
}

/// Free capacity of one model across the cluster.
#[derive(Clone, Debug, Default)]
pub struct ModelIndex {
    /// Largest device count of a node of this model.
    pub max_dev: u8,
    /// Leaves carrying the model, in leaf order.
    pub leaves: Vec<LeafIndex>,
    leaf_pos: HashMap<u32, u32>,
    /// Free and usable devices per spine.
    pub spines: BTreeMap<u32, [u32; 2]>,
    /// Free devices in the cluster.
    pub free: u32,
    /// Usable devices in the cluster.
    pub usable: u32,
    /// Devices in the cluster, usable or not.
    pub installed: u32,
    /// Shared devices by (free thousandths, node, device): best fit is a range query.
    pub shared: BTreeSet<(u32, NodeIdx, u8)>,
}

impl ModelIndex {
    /// Position of a global leaf in `leaves`.
    pub fn leaf_pos(&self, leaf: u32) -> Option<usize> {
        self.leaf_pos.get(&leaf).map(|p| *p as usize)
    }
}

/// A change to device or host state, journaled so that a tentative placement can be undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Allocate whole devices.
    Take { node: NodeIdx, mask: Mask },
    /// Free whole devices.
    Give { node: NodeIdx, mask: Mask },
    /// Keep free devices and host resources for someone.
    Hold {
        node: NodeIdx,
        mask: Mask,
        cpu: u64,
        mem: u64,
    },
    /// Release what `Hold` kept.
    Unhold {
        node: NodeIdx,
        mask: Mask,
        cpu: u64,
        mem: u64,
    },
    /// Take a fraction of one device.
    ShareTake {
        node: NodeIdx,
        dev: u8,
        milli: u32,
        mem_mib: u32,
    },
    /// Give back a fraction of one device.
    ShareGive {
        node: NodeIdx,
        dev: u8,
        milli: u32,
        mem_mib: u32,
    },
    /// Use host CPU and memory.
    HostTake { node: NodeIdx, cpu: u64, mem: u64 },
    /// Give back host CPU and memory.
    HostGive { node: NodeIdx, cpu: u64, mem: u64 },
}

impl Op {
    /// The change that undoes this one.
    pub fn inverse(self) -> Op {
        match self {
            Op::Take { node, mask } => Op::Give { node, mask },
            Op::Give { node, mask } => Op::Take { node, mask },
            Op::Hold {
                node,
                mask,
                cpu,
                mem,
            } => Op::Unhold {
                node,
                mask,
                cpu,
                mem,
            },
            Op::Unhold {
                node,
                mask,
                cpu,
                mem,
            } => Op::Hold {
                node,
                mask,
                cpu,
                mem,
            },
            Op::ShareTake {
                node,
                dev,
                milli,
                mem_mib,
            } => Op::ShareGive {
                node,
                dev,
                milli,
                mem_mib,
            },
            Op::ShareGive {
                node,
                dev,
                milli,
                mem_mib,
            } => Op::ShareTake {
                node,
                dev,
                milli,
                mem_mib,
            },
            Op::HostTake { node, cpu, mem } => Op::HostGive { node, cpu, mem },
            Op::HostGive { node, cpu, mem } => Op::HostTake { node, cpu, mem },
        }
    }

    fn node(self) -> NodeIdx {
        match self {
            Op::Take { node, .. }
            | Op::Give { node, .. }
            | Op::Hold { node, .. }
            | Op::Unhold { node, .. }
            | Op::ShareTake { node, .. }
            | Op::ShareGive { node, .. }
            | Op::HostTake { node, .. }
            | Op::HostGive { node, .. } => node,
        }
    }
}

/// All nodes with their capacity index.
#[derive(Clone, Debug, Default)]
pub struct ClusterState {
    /// Nodes by dense index.
    pub nodes: Vec<NodeState>,
    models: BTreeMap<ModelId, ModelIndex>,
    journal: Vec<Op>,
}

/// A position in the journal to roll back to.
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize);

impl ClusterState {
    /// The capacity index of a model, if any node carries it.
    pub fn model(&self, model: ModelId) -> Option<&ModelIndex> {
        self.models.get(&model)
    }

    /// Models present, in id order.
    pub fn model_ids(&self) -> impl Iterator<Item = ModelId> + '_ {
        self.models.keys().copied()
    }

    /// Adds a node (free, healthy, schedulable) and indexes it.
    pub fn add_node(&mut self, node: NodeState) -> NodeIdx {
        let idx = self.nodes.len() as NodeIdx;
        let index = self.models.entry(node.model).or_default();
        index.max_dev = index.max_dev.max(node.devices);
        for leaf in &mut index.leaves {
            leaf.by_free
                .resize(index.max_dev as usize + 1, BTreeSet::new());
        }
        index.installed += node.devices as u32;
        if !index.leaf_pos.contains_key(&node.leaf) {
            let at = index.leaves.partition_point(|l| l.leaf < node.leaf);
            index.leaves.insert(
                at,
                LeafIndex {
                    leaf: node.leaf,
                    spine: node.spine,
                    by_free: vec![BTreeSet::new(); index.max_dev as usize + 1],
                    free: 0,
                    usable: 0,
                },
            );
            index.leaf_pos = index
                .leaves
                .iter()
                .enumerate()
                .map(|(i, l)| (l.leaf, i as u32))
                .collect();
        }
        self.nodes.push(node);
        self.index(idx);
        idx
    }

    /// Changes a node's health or schedulability (never inside a tentative transaction).
    pub fn set_condition(&mut self, node: NodeIdx, healthy: Mask, schedulable: bool) {
        self.unindex(node);
        let n = &mut self.nodes[node as usize];
        n.healthy = healthy & n.all();
        n.schedulable = schedulable;
        self.index(node);
    }

    fn index(&mut self, idx: NodeIdx) {
        self.reindex(idx, true)
    }

    fn unindex(&mut self, idx: NodeIdx) {
        self.reindex(idx, false)
    }

    fn reindex(&mut self, idx: NodeIdx, insert: bool) {
        let n = &self.nodes[idx as usize];
        let index = self
            .models
            .get_mut(&n.model)
            .expect("node model indexed at add");
        let pos = index.leaf_pos[&n.leaf] as usize;
        let free = n.free().count_ones();
        let usable = n.usable().count_ones();
        let leaf = &mut index.leaves[pos];
        let spine = index.spines.entry(n.spine).or_insert([0, 0]);
        // A shared device that is held (reserved for a gang) takes no new fractional tenants.
        let shared: Vec<(u32, NodeIdx, u8)> = if n.schedulable {
            n.shared
                .iter()
                .filter(|s| n.healthy & !n.held & (1 << s.dev) != 0)
                .map(|s| (FULL_MILLI - s.used_milli, idx, s.dev))
                .collect()
        } else {
            Vec::new()
        };
        if insert {
            if free > 0 {
                leaf.by_free[free as usize].insert(idx);
            }
            leaf.free += free;
            leaf.usable += usable;
            spine[0] += free;
            spine[1] += usable;
            index.free += free;
            index.usable += usable;
            index.shared.extend(shared);
        } else {
            if free > 0 {
                leaf.by_free[free as usize].remove(&idx);
            }
            leaf.free -= free;
            leaf.usable -= usable;
            spine[0] -= free;
            spine[1] -= usable;
            index.free -= free;
            index.usable -= usable;
            for s in shared {
                index.shared.remove(&s);
            }
        }
    }

    /// Applies a change, journaling its inverse.
    pub fn apply(&mut self, op: Op) {
        self.apply_raw(op);
        self.journal.push(op.inverse());
    }

    fn apply_raw(&mut self, op: Op) {
        let idx = op.node();
        self.unindex(idx);
        let n = &mut self.nodes[idx as usize];
        match op {
            Op::Take { mask, .. } => {
                debug_assert_eq!(n.alloc & mask, 0, "device allocated twice on {:?}", n.id);
                n.alloc |= mask;
            }
            Op::Give { mask, .. } => {
                debug_assert_eq!(
                    n.alloc & mask,
                    mask,
                    "freeing unallocated devices on {:?}",
                    n.id
                );
                n.alloc &= !mask;
            }
            Op::Hold { mask, cpu, mem, .. } => {
                debug_assert_eq!(n.held & mask, 0);
                n.held |= mask;
                n.cpu[2] += cpu;
                n.mem[2] += mem;
            }
            Op::Unhold { mask, cpu, mem, .. } => {
                n.held &= !mask;
                n.cpu[2] -= cpu;
                n.mem[2] -= mem;
            }
            Op::ShareTake {
                dev,
                milli,
                mem_mib,
                ..
            } => match n.shared.iter_mut().find(|s| s.dev == dev) {
                Some(s) => {
                    s.used_milli += milli;
                    s.used_mem_mib += mem_mib;
                    debug_assert!(s.used_milli <= FULL_MILLI);
                }
                None => n.shared.push(Shared {
                    dev,
                    used_milli: milli,
                    used_mem_mib: mem_mib,
                }),
            },
            Op::ShareGive {
                dev,
                milli,
                mem_mib,
                ..
            } => {
                let at = n
                    .shared
                    .iter()
                    .position(|s| s.dev == dev)
                    .expect("shared device present");
                let s = &mut n.shared[at];
                s.used_milli -= milli;
                s.used_mem_mib -= mem_mib;
                if s.used_milli == 0 {
                    n.shared.swap_remove(at);
                }
            }
            Op::HostTake { cpu, mem, .. } => {
                n.cpu[1] += cpu;
                n.mem[1] += mem;
            }
            Op::HostGive { cpu, mem, .. } => {
                n.cpu[1] -= cpu;
                n.mem[1] -= mem;
            }
        }
        self.index(idx);
    }

    /// The current journal position.
    pub fn mark(&self) -> Mark {
        Mark(self.journal.len())
    }

    /// Undoes every change made since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        while self.journal.len() > mark.0 {
            let op = self.journal.pop().expect("journal longer than mark");
            self.apply_raw(op);
        }
    }

    /// Makes every change so far permanent (drops the journal).
    pub fn commit(&mut self) {
        self.journal.clear();
    }
}

/// A free, healthy node of `devices` devices with 64 cores and 1 TiB, for tests.
#[cfg(test)]
pub(crate) fn test_node(model: u16, leaf: u32, spine: u32, devices: u8) -> NodeState {
    NodeState {
        id: NodeId(0),
        model: ModelId(model),
        leaf,
        spine,
        devices,
        domains: vec![mask_of(devices as u32)],
        dev_mem_mib: 80 * 1024,
        healthy: mask_of(devices as u32),
        schedulable: true,
        alloc: 0,
        held: 0,
        shared: Vec::new(),
        cpu: [64_000, 0, 0],
        mem: [1 << 20, 0, 0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(model: u16, leaf: u32, devices: u8) -> NodeState {
        test_node(model, leaf, leaf / 4, devices)
    }

    #[test]
    fn index_follows_every_change_and_rollback_restores_it() {
        let mut c = ClusterState::default();
        let a = c.add_node(node(0, 1, 8));
        let b = c.add_node(node(0, 2, 8));
        let m = ModelId(0);
        assert_eq!(c.model(m).unwrap().free, 16);
        let mark = c.mark();
        c.apply(Op::Take {
            node: a,
            mask: 0b111,
        });
        c.apply(Op::Hold {
            node: b,
            mask: 0b1,
            cpu: 1000,
            mem: 0,
        });
        c.apply(Op::ShareTake {
            node: b,
            dev: 1,
            milli: 250,
            mem_mib: 10,
        });
        let idx = c.model(m).unwrap();
        assert_eq!(idx.free, 16 - 3 - 1 - 1);
        assert!(idx.leaves[0].by_free[5].contains(&a));
        assert!(idx.leaves[1].by_free[6].contains(&b));
        assert_eq!(idx.shared.iter().next(), Some(&(750, b, 1)));
        assert_eq!(c.nodes[b as usize].cpu_free(), 63_000);
        c.rollback(mark);
        let idx = c.model(m).unwrap();
        assert_eq!(idx.free, 16);
        assert!(idx.shared.is_empty());
        assert!(idx.leaves[0].by_free[8].contains(&a));
        assert_eq!(c.nodes[b as usize].held, 0);
    }

    #[test]
    fn unhealthy_and_cordoned_devices_leave_the_index() {
        let mut c = ClusterState::default();
        let a = c.add_node(node(3, 0, 8));
        c.set_condition(a, mask_of(8) & !0b1, true);
        assert_eq!(c.model(ModelId(3)).unwrap().free, 7);
        assert_eq!(c.model(ModelId(3)).unwrap().usable, 7);
        c.set_condition(a, mask_of(8), false);
        assert_eq!(c.model(ModelId(3)).unwrap().free, 0);
        assert_eq!(c.model(ModelId(3)).unwrap().spines[&0], [0, 0]);
    }

    #[test]
    fn bits_lists_set_bits_in_order() {
        assert_eq!(bits(0b1010_0001).collect::<Vec<_>>(), vec![0, 5, 7]);
        assert_eq!(mask_of(64), u64::MAX);
    }
}
