//! Backfill stage: reservations for blocked jobs and the release sweep that finds when they can start.
//!
//! A reservation is the placement a blocked job would get once enough running jobs end at their estimated
//! times. Its devices that are free now are *held*: nobody may take them, except a job whose own estimate
//! ends before the reservation starts (EASY backfill). Devices of the reservation still in use are left to
//! their jobs; when those end early, the next full cycle recomputes everything.

use crate::cluster::{ClusterState, Mask, NodeIdx, Op};
use crate::placement::Part;
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

/// Frees running allocations in order on the live state until `try_place` succeeds, testing after the last
/// release of each distinct time. Returns the time of the release that made it fit and the placement found
/// then. Everything is rolled back. Devices in `keep` (reserved for someone else) are held again when freed.
pub fn sweep<'a>(
    c: &mut ClusterState,
    releases: impl Iterator<Item = (Time, &'a [Part])>,
    keep: &dyn Fn(NodeIdx) -> Mask,
    mut try_place: impl FnMut(&mut ClusterState) -> Option<Vec<Part>>,
) -> Option<(Time, Vec<Part>)> {
    let mark = c.mark();
    let mut releases = releases.peekable();
    let mut found = None;
    while let Some((at, parts)) = releases.next() {
        for p in parts {
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
        if releases.peek().is_some_and(|(next, _)| *next == at) {
            continue;
        }
        if let Some(parts) = try_place(c) {
            found = Some((at, parts));
            break;
        }
    }
    c.rollback(mark);
    found
}
