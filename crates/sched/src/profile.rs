//! The workload profile: which kinds of requests arrive, and how often. Fragmentation-aware scoring asks
//! "how much free capacity would the jobs we usually see be unable to use?", so it needs this distribution
//! (FGD's "target workload"). The scheduler learns it from every submission, deterministically.

use crate::placement::Request;
use std::collections::BTreeMap;

/// What one replica of a request needs from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
    /// Host CPU and memory only.
    Host,
    /// A share of one device, in thousandths.
    Fraction(u32),
    /// Whole devices.
    Whole(u32),
}

/// A kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskType {
    /// Device need per replica.
    pub need: Need,
    /// Host CPU per replica, thousandths of a core.
    pub cpu: u64,
    /// Host memory per replica, MiB.
    pub mem: u64,
}

impl TaskType {
    /// The type of a request.
    pub fn of(req: &Request) -> TaskType {
        let need = match req.fraction {
            Some(f) => Need::Fraction(f.milli),
            None if req.per_replica == 0 => Need::Host,
            None => Need::Whole(req.per_replica),
        };
        TaskType {
            need,
            cpu: req.cpu,
            mem: req.mem,
        }
    }
}

/// Most frequent types kept in the distribution (they cover nearly all of any real trace).
const KEEP: usize = 64;

/// Counts of request types and the distribution derived from them.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    counts: BTreeMap<TaskType, u64>,
    total: u64,
    at_refresh: u64,
    version: u64,
    top: Vec<(TaskType, f64)>,
    host_or_shared: bool,
}

impl Profile {
    /// Records one submitted request. The distribution is rebuilt when the count has grown by a quarter since
    /// the last rebuild, so that it follows the workload while caches keyed on it stay useful.
    pub fn record(&mut self, req: &Request) {
        *self.counts.entry(TaskType::of(req)).or_default() += 1;
        self.total += 1;
        if self.total - self.at_refresh >= (self.at_refresh / 4).max(1) {
            self.refresh();
        }
    }

    fn refresh(&mut self) {
        let mut all: Vec<(TaskType, u64)> = self.counts.iter().map(|(t, n)| (*t, *n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(KEEP);
        let kept: u64 = all.iter().map(|(_, n)| n).sum();
        self.top = all
            .iter()
            .map(|(t, n)| (*t, *n as f64 / kept as f64))
            .collect();
        self.host_or_shared = self
            .top
            .iter()
            .any(|(t, _)| t.cpu > 0 || t.mem > 0 || !matches!(t.need, Need::Whole(_)));
        self.at_refresh = self.total;
        self.version += 1;
    }

    /// The distribution: the most frequent types with their probabilities.
    pub fn types(&self) -> &[(TaskType, f64)] {
        &self.top
    }

    /// Changes whenever [`Profile::types`] changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// True when the workload has host needs or fractional requests: then nodes with the same free-device
    /// count are not interchangeable, and placement must look at nodes one by one.
    pub fn needs_nodes(&self) -> bool {
        self.host_or_shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::test_request as req;

    #[test]
    fn the_distribution_follows_submissions() {
        let mut p = Profile::default();
        for _ in 0..3 {
            p.record(&req(8, None, 0));
        }
        p.record(&req(1, Some(500), 0));
        let types = p.types();
        assert_eq!(types[0].0.need, Need::Whole(8));
        assert!((types[0].1 - 0.75).abs() < 1e-12);
        assert!(p.needs_nodes());
        let mut gpu_only = Profile::default();
        gpu_only.record(&req(8, None, 0));
        assert!(!gpu_only.needs_nodes());
        gpu_only.record(&req(0, None, 4000));
        assert!(gpu_only.needs_nodes());
    }
}
