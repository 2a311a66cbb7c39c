//! Queue-order stage: which pending job is considered next. Priority class first, then the tenant's
//! weighted dominant share (recomputed after every start, so a tenant that just got devices falls back),
//! then age. FIFO orders ignore class and/or share.

use crate::config::QueueOrder;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::ops::Bound::{Excluded, Unbounded};
use wanka_model::{JobId, JobSpec, TenantId, Time};

/// Position of a job in its queue: (class rank, submission time, id). Lower goes first.
pub type Key = (u8, Time, JobId);

/// The pending jobs, globally and per tenant.
#[derive(Clone, Debug)]
pub struct Queue {
    order: QueueOrder,
    all: BTreeSet<Key>,
    by_tenant: BTreeMap<TenantId, BTreeSet<Key>>,
}

/// A fair-share heap entry: (class rank, share bits, submitted, id, tenant), smallest first.
type Head = Reverse<(u8, u64, Time, JobId, TenantId)>;

/// A walk over the queue in order; see [`Queue::next`].
#[derive(Debug)]
pub struct Cursor {
    last: Option<(TenantId, Key)>,
    heap: BinaryHeap<Head>,
}

impl Queue {
    /// An empty queue ordered as configured.
    pub fn new(order: QueueOrder) -> Queue {
        Queue {
            order,
            all: BTreeSet::new(),
            by_tenant: BTreeMap::new(),
        }
    }

    /// The job's key under this queue's order.
    pub fn key(&self, spec: &JobSpec) -> Key {
        let rank = match self.order {
            QueueOrder::Fifo => 0,
            QueueOrder::Priority | QueueOrder::PriorityFairShare => 2 - spec.class as u8,
        };
        (rank, spec.submitted, spec.id)
    }

    /// Adds a pending job.
    pub fn insert(&mut self, spec: &JobSpec) {
        let key = self.key(spec);
        self.all.insert(key);
        self.by_tenant.entry(spec.tenant).or_default().insert(key);
    }

    /// Removes a job (started or cancelled).
    pub fn remove(&mut self, spec: &JobSpec) {
        let key = self.key(spec);
        self.all.remove(&key);
        if let Some(q) = self.by_tenant.get_mut(&spec.tenant) {
            q.remove(&key);
            if q.is_empty() {
                self.by_tenant.remove(&spec.tenant);
            }
        }
    }

    /// Pending jobs.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Starts a walk; `share` gives each tenant's current weighted dominant share.
    pub fn cursor(&self, share: impl Fn(TenantId) -> f64) -> Cursor {
        let mut heap = BinaryHeap::new();
        if self.order == QueueOrder::PriorityFairShare {
            for (&tenant, q) in &self.by_tenant {
                if let Some(&k) = q.first() {
                    heap.push(Reverse((k.0, share(tenant).to_bits(), k.1, k.2, tenant)));
                }
            }
        }
        Cursor { last: None, heap }
    }

    /// The next job of the walk. Shares are read again here, after the previous job's fate is known, so a
    /// tenant that just started a job competes with its new share.
    pub fn next(
        &self,
        cursor: &mut Cursor,
        share: impl Fn(TenantId) -> f64,
        tenant_of: impl Fn(JobId) -> TenantId,
    ) -> Option<JobId> {
        if self.order != QueueOrder::PriorityFairShare {
            let from = cursor.last.map_or(Unbounded, |(_, k)| Excluded(k));
            let key = *self.all.range((from, Unbounded)).next()?;
            cursor.last = Some((tenant_of(key.2), key));
            return Some(key.2);
        }
        if let Some((tenant, key)) = cursor.last.take()
            && let Some(q) = self.by_tenant.get(&tenant)
            && let Some(&k) = q.range((Excluded(key), Unbounded)).next()
        {
            cursor
                .heap
                .push(Reverse((k.0, share(tenant).to_bits(), k.1, k.2, tenant)));
        }
        let Reverse((rank, _, submitted, id, tenant)) = cursor.heap.pop()?;
        cursor.last = Some((tenant, (rank, submitted, id)));
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use wanka_model::PriorityClass;

    fn job(id: u64, tenant: u32, class: PriorityClass, t: i64) -> JobSpec {
        let mut j = JobSpec::gang(JobId(id), TenantId(tenant), 1, 1);
        j.class = class;
        j.submitted = Time(t);
        j
    }

    #[test]
    fn class_beats_share_and_share_beats_age() {
        use PriorityClass::*;
        let jobs = [
            job(1, 1, Standard, 1),
            job(2, 1, Standard, 2),
            job(3, 2, Standard, 3),
            job(4, 2, Guaranteed, 4),
            job(5, 1, Preemptible, 0),
        ];
        let mut q = Queue::new(QueueOrder::PriorityFairShare);
        for j in &jobs {
            q.insert(j);
        }
        let tenant: HashMap<JobId, TenantId> = jobs.iter().map(|j| (j.id, j.tenant)).collect();
        // Tenant 1 starts at a higher share than tenant 2; every start adds 0.5 to the starter.
        let shares = RefCell::new(HashMap::from([(TenantId(1), 0.4), (TenantId(2), 0.1)]));
        let share = |t: TenantId| shares.borrow()[&t];
        let mut c = q.cursor(share);
        let mut order = Vec::new();
        while let Some(id) = q.next(&mut c, share, |j| tenant[&j]) {
            order.push(id.0);
            *shares.borrow_mut().get_mut(&tenant[&id]).unwrap() += 0.5;
        }
        // 4 (guaranteed), then tenant 2's job 3 vs tenant 1's job 1: tenant 2 is at 0.6 now, tenant 1 at 0.4.
        assert_eq!(order, vec![4, 1, 3, 2, 5]);
    }

    #[test]
    fn fifo_ignores_class() {
        let mut q = Queue::new(QueueOrder::Fifo);
        for j in [
            job(1, 1, PriorityClass::Standard, 5),
            job(2, 2, PriorityClass::Guaranteed, 9),
        ] {
            q.insert(&j);
        }
        let mut c = q.cursor(|_| 0.0);
        assert_eq!(q.next(&mut c, |_| 0.0, |_| TenantId(0)), Some(JobId(1)));
        assert_eq!(q.next(&mut c, |_| 0.0, |_| TenantId(0)), Some(JobId(2)));
        assert_eq!(q.next(&mut c, |_| 0.0, |_| TenantId(0)), None);
    }
}
