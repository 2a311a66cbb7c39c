//! Lease stage: the book of admitted leases, admission against installed capacity, and what each tenant is
//! guaranteed at a given time.
//!
//! Admission keeps every instant honorable. Leases pinned to a leaf or spine form a laminar family (a leaf lies
//! in one spine, a spine in the cluster), so it is enough that at every instant the leases pinned inside each
//! domain fit that domain and all leases of the model fit the model's installed devices.

use crate::cluster::{Mask, NodeIdx};
use crate::placement::Part;
use crate::scheduler::{CoreError, Scheduler};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use wanka_model::{JobId, Lease, LeaseId, ModelId, TenantId, Time, UsageKind, Within};

/// Installed devices of one model, in all and per switch (`spine/leaf` and `spine` keys).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capacity {
    /// All devices of the model.
    pub total: u32,
    /// Per leaf switch, keyed `spine/leaf`.
    pub leaves: BTreeMap<String, u32>,
    /// Per spine switch.
    pub spines: BTreeMap<String, u32>,
}

/// Why a lease cannot be admitted: what is short, where and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Shortfall {
    /// The model asked for.
    pub model: ModelId,
    /// Devices asked for.
    pub requested: u32,
    /// The topology requirement.
    pub within: Within,
    /// The switch examined (the one with the most room for a leaf or spine lease).
    pub domain: Option<String>,
    /// Devices installed in that scope (0 when no switch holds the model at all).
    pub installed: u32,
    /// Devices already promised there at the worst moment of the window.
    pub promised: u32,
    /// The first interval with that much promised.
    pub from: Time,
    /// Its end.
    pub to: Time,
    /// The leases holding the capacity then: (lease, tenant, devices).
    pub holders: Vec<(LeaseId, TenantId, u32)>,
}

impl Shortfall {
    /// Devices missing at the worst moment.
    pub fn short_by(&self) -> u32 {
        (self.promised + self.requested).saturating_sub(self.installed)
    }

    /// Where the capacity is short: `leaf s/l`, `spine s`, `the cluster` or `any leaf switch`.
    pub fn scope(&self) -> String {
        match (&self.domain, self.within) {
            (Some(d), Within::Leaf) if d.contains('/') => format!("leaf {d}"),
            (Some(d), _) => format!("spine {d}"),
            (None, Within::Anywhere) => "the cluster".to_string(),
            (None, w) => format!("any {} switch", w.name()),
        }
    }
}

/// The worst moment of a window: most devices promised, first interval with that load, and its holders.
struct Peak {
    load: u32,
    from: Time,
    to: Time,
    holders: Vec<(LeaseId, TenantId, u32)>,
}

/// A lease's window and devices: (start, end, devices).
type Window = (Time, Time, u32);

/// Admitted leases, with indexes rebuilt when one is added or removed (rare) so that the questions asked for
/// every job in every cycle cost a lookup.
#[derive(Clone, Debug, Default)]
pub struct LeaseBook {
    leases: BTreeMap<LeaseId, Lease>,
    /// Per tenant and model: (start, end, devices) of its leases.
    by_key: BTreeMap<(TenantId, ModelId), Vec<Window>>,
    /// Per model: (segment start, most devices promised from then on), by start.
    future: BTreeMap<ModelId, Vec<(Time, u32)>>,
    /// Every lease start and end.
    changes: BTreeSet<Time>,
}

/// Whether a lease pinned to `domain` lies inside `scope` (`spine` contains `spine/leaf`).
pub(crate) fn inside(domain: &str, scope: &str) -> bool {
    domain == scope
        || domain
            .strip_prefix(scope)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl LeaseBook {
    /// Records a lease without checking it (restoring admitted leases).
    pub fn insert(&mut self, lease: Lease) {
        self.leases.insert(lease.id, lease);
        self.reindex();
    }

    /// Removes a lease.
    pub fn remove(&mut self, id: LeaseId) -> Option<Lease> {
        let gone = self.leases.remove(&id);
        self.reindex();
        gone
    }

    fn reindex(&mut self) {
        self.by_key.clear();
        self.changes.clear();
        let mut models = BTreeSet::new();
        for l in self.leases.values() {
            self.by_key
                .entry((l.tenant, l.model))
                .or_default()
                .push((l.start, l.end, l.devices));
            self.changes.extend([l.start, l.end]);
            models.insert(l.model);
        }
        self.future.clear();
        for m in models {
            let mut cuts: Vec<Time> = self
                .leases
                .values()
                .filter(|l| l.model == m)
                .flat_map(|l| [l.start, l.end])
                .collect();
            cuts.sort();
            cuts.dedup();
            let mut segments: Vec<(Time, u32)> = cuts
                .iter()
                .map(|&t| {
                    let load = self
                        .leases
                        .values()
                        .filter(|l| l.model == m && l.active(t))
                        .map(|l| l.devices)
                        .sum();
                    (t, load)
                })
                .collect();
            let mut most = 0;
            for seg in segments.iter_mut().rev() {
                most = most.max(seg.1);
                seg.1 = most;
            }
            self.future.insert(m, segments);
        }
    }

    /// Models the tenant has leases of (in force or not).
    pub fn models_of(&self, tenant: TenantId) -> impl Iterator<Item = ModelId> + '_ {
        self.by_key
            .range((tenant, ModelId(0))..=(tenant, ModelId(u16::MAX)))
            .map(|((_, m), _)| *m)
    }

    /// One lease.
    pub fn get(&self, id: LeaseId) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// All leases, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    /// True when no lease was ever admitted (or all were removed).
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Devices of `model` guaranteed to `tenant` at `now`.
    pub fn guarantee(&self, tenant: TenantId, model: ModelId, now: Time) -> u32 {
        self.by_key.get(&(tenant, model)).map_or(0, |ls| {
            ls.iter()
                .filter(|(s, e, _)| *s <= now && now < *e)
                .map(|(_, _, n)| n)
                .sum()
        })
    }

    /// The most devices of `model` promised at any instant from `now` on.
    pub fn promised_from(&self, model: ModelId, now: Time) -> u32 {
        let Some(segments) = self.future.get(&model) else {
            return 0;
        };
        let k = segments.partition_point(|(s, _)| *s <= now);
        segments.get(k.saturating_sub(1)).map_or(0, |s| s.1)
    }

    /// The leases in force at `now`.
    pub fn active(&self, now: Time) -> impl Iterator<Item = &Lease> {
        self.leases.values().filter(move |l| l.active(now))
    }

    /// The first lease start or end after `now`: guarantees change then.
    pub fn next_change(&self, now: Time) -> Option<Time> {
        self.changes
            .range((std::ops::Bound::Excluded(now), std::ops::Bound::Unbounded))
            .next()
            .copied()
    }

    /// The most devices promised at any instant of `[start, end)` by the leases of `model` that `counts`.
    fn peak(
        &self,
        model: ModelId,
        start: Time,
        end: Time,
        counts: impl Fn(&Lease) -> bool,
    ) -> Peak {
        let relevant: Vec<&Lease> = self
            .leases
            .values()
            .filter(|l| l.model == model && l.overlaps(start, end) && counts(l))
            .collect();
        let mut cuts: BTreeSet<Time> = relevant
            .iter()
            .flat_map(|l| [l.start, l.end])
            .filter(|t| *t > start && *t < end)
            .collect();
        cuts.insert(start);
        cuts.insert(end);
        let cuts: Vec<Time> = cuts.into_iter().collect();
        let mut best = Peak {
            load: 0,
            from: start,
            to: end,
            holders: Vec::new(),
        };
        for w in cuts.windows(2) {
            let at: Vec<&&Lease> = relevant.iter().filter(|l| l.active(w[0])).collect();
            let load = at.iter().map(|l| l.devices).sum();
            if load > best.load {
                best = Peak {
                    load,
                    from: w[0],
                    to: w[1],
                    holders: at.iter().map(|l| (l.id, l.tenant, l.devices)).collect(),
                };
            }
        }
        best
    }

    /// Checks that `lease` can be honored beside the admitted ones. Returns the switch chosen for a leaf or
    /// spine lease (the fitting one with the least room left, keeping big switches whole), or what is short.
    pub fn admit(&self, lease: &Lease, capacity: &Capacity) -> Result<Option<String>, Shortfall> {
        let (model, n, s, e) = (lease.model, lease.devices, lease.start, lease.end);
        let shortfall = |domain: Option<String>, installed: u32, peak: Peak| Shortfall {
            model,
            requested: n,
            within: lease.within,
            domain,
            installed,
            promised: peak.load,
            from: peak.from,
            to: peak.to,
            holders: peak.holders,
        };
        let all = self.peak(model, s, e, |_| true);
        if all.load + n > capacity.total {
            return Err(shortfall(None, capacity.total, all));
        }
        let pinned_in = |scope: &str| {
            self.peak(model, s, e, |l| {
                l.domain.as_deref().is_some_and(|d| inside(d, scope))
            })
        };
        let domains = match lease.within {
            Within::Anywhere => return Ok(None),
            Within::Leaf => &capacity.leaves,
            Within::Spine => &capacity.spines,
        };
        // (room left, domain) of each switch that fits; the worst-short one otherwise.
        let mut fits: Option<(u32, &String)> = None;
        let mut closest: Option<(String, u32, Peak)> = None;
        for (domain, &installed) in domains {
            let mut checks = vec![(domain.clone(), installed)];
            if lease.within == Within::Leaf {
                let spine = domain.split('/').next().unwrap_or_default();
                checks.push((
                    spine.to_string(),
                    capacity.spines.get(spine).copied().unwrap_or(0),
                ));
            }
            let mut room = u32::MAX;
            let mut short = None;
            for (scope, cap) in checks {
                let peak = pinned_in(&scope);
                match cap.checked_sub(peak.load + n) {
                    Some(r) => room = room.min(r),
                    None => {
                        short = Some((scope, cap, peak));
                        break;
                    }
                }
            }
            match short {
                None if fits.is_none_or(|(r, _)| room < r) => fits = Some((room, domain)),
                None => {}
                Some((scope, cap, peak)) => {
                    let free = |c: &(String, u32, Peak)| c.1.saturating_sub(c.2.load);
                    let candidate = (scope, cap, peak);
                    if closest.as_ref().is_none_or(|c| free(&candidate) > free(c)) {
                        closest = Some(candidate);
                    }
                }
            }
        }
        match (fits, closest) {
            (Some((_, domain)), _) => Ok(Some(domain.clone())),
            (None, Some((scope, cap, peak))) => Err(shortfall(Some(scope), cap, peak)),
            (None, None) => Err(shortfall(
                None,
                0,
                Peak {
                    load: 0,
                    from: s,
                    to: e,
                    holders: Vec::new(),
                },
            )),
        }
    }
}

/// Devices in running jobs by the capacity they use.
#[derive(Clone, Debug, Default)]
pub struct KindUse {
    /// Leased runs, per tenant and model.
    leased: BTreeMap<(TenantId, ModelId), u32>,
    /// On-demand runs, per model.
    on_demand: BTreeMap<ModelId, u32>,
    /// Borrowed runs, per model.
    borrowed: BTreeMap<ModelId, u32>,
}

impl KindUse {
    /// The counter a run of `kind` adds to.
    pub fn count(&mut self, tenant: TenantId, model: ModelId, kind: UsageKind) -> &mut u32 {
        match kind {
            UsageKind::Leased => self.leased.entry((tenant, model)).or_default(),
            UsageKind::OnDemand => self.on_demand.entry(model).or_default(),
            UsageKind::Borrowed => self.borrowed.entry(model).or_default(),
        }
    }

    /// Devices of `model` in `tenant`'s leased runs.
    pub fn leased(&self, tenant: TenantId, model: ModelId) -> u32 {
        self.leased.get(&(tenant, model)).copied().unwrap_or(0)
    }

    /// Devices of `model` in on-demand runs.
    pub fn on_demand(&self, model: ModelId) -> u32 {
        self.on_demand.get(&model).copied().unwrap_or(0)
    }

    /// Devices of `model` in borrowed runs.
    pub fn borrowed(&self, model: ModelId) -> u32 {
        self.borrowed.get(&model).copied().unwrap_or(0)
    }

    /// True when some borrowed run could be reclaimed.
    pub fn any_borrowed(&self) -> bool {
        self.borrowed.values().any(|n| *n > 0)
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} devices of model #{} cannot be promised in {}: {} installed, {} already promised from t={}s to t={}s, short by {}",
            self.requested,
            self.model.0,
            self.scope(),
            self.installed,
            self.promised,
            self.from.as_secs_f64(),
            self.to.as_secs_f64(),
            self.short_by()
        )?;
        for (i, (lease, tenant, n)) in self.holders.iter().enumerate() {
            let sep = if i == 0 { " (" } else { ", " };
            write!(f, "{sep}lease {lease} of tenant #{}: {n}", tenant.0)?;
        }
        if !self.holders.is_empty() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Devices a placement takes (a shared device counts as one).
pub(crate) fn placed_devices(parts: &[Part]) -> u32 {
    parts
        .iter()
        .map(|p| p.mask.count_ones().max(u32::from(p.share.is_some())))
        .sum()
}

/// Added to the queue share of tenants without lease room, so that jobs within a lease go first.
const OUTSIDE_LEASE: f64 = 1e6;

impl Scheduler {
    /// The admitted leases.
    pub fn leases(&self) -> &LeaseBook {
        &self.leases
    }

    /// Installed devices of `model`, in all and per switch.
    pub fn lease_capacity(&self, model: ModelId) -> Capacity {
        let mut c = Capacity::default();
        for spec in self.node_specs.iter().filter(|n| n.model == model) {
            c.total += spec.devices;
            let t = &spec.topology;
            *c.leaves
                .entry(format!("{}/{}", t.spine, t.leaf))
                .or_default() += spec.devices;
            *c.spines.entry(t.spine.clone()).or_default() += spec.devices;
        }
        c
    }

    fn check_lease(&self, lease: &Lease) -> Result<(), CoreError> {
        let bad = |problem: &str| CoreError::BadLease {
            id: lease.id,
            problem: problem.to_string(),
        };
        if !self.fair.contains(lease.tenant) {
            return Err(CoreError::UnknownTenant(lease.tenant));
        }
        if lease.model.0 as usize >= self.catalog.len() {
            return Err(CoreError::UnknownModel(lease.model));
        }
        if lease.devices == 0 {
            return Err(bad("a lease needs at least one device"));
        }
        if lease.end <= lease.start {
            return Err(bad("its end must come after its start"));
        }
        if self.leases.get(lease.id).is_some() {
            return Err(bad("a lease with this id exists"));
        }
        Ok(())
    }

    /// Admits a lease if the installed capacity can honor it beside the admitted ones at every instant of
    /// its window; returns it with the switch chosen for a leaf or spine lease.
    pub fn admit_lease(&mut self, lease: Lease) -> Result<Lease, CoreError> {
        let model = lease.model;
        self.admit_lease_of(lease, &[model])
    }

    /// Admits a lease of a class: any one of `models`. It is pinned to the model that can honor it with the
    /// least room left (as a switch is chosen for a leaf lease: big reserves stay whole), so that the tenant's
    /// gangs, which run on one model, can use all of it. When none can, the shortfall is the one of the model
    /// closest to fitting.
    pub fn admit_lease_of(&mut self, lease: Lease, models: &[ModelId]) -> Result<Lease, CoreError> {
        let mut best: Option<(u32, Lease)> = None;
        let mut closest: Option<Shortfall> = None;
        for &model in models {
            let mut candidate = Lease {
                model,
                ..lease.clone()
            };
            self.check_lease(&candidate)?;
            let capacity = self.lease_capacity(model);
            match self.leases.admit(&candidate, &capacity) {
                Ok(domain) => {
                    candidate.domain = domain;
                    let promised = self
                        .leases
                        .peak(model, lease.start, lease.end, |_| true)
                        .load;
                    let room = capacity.total - promised - lease.devices;
                    if best.as_ref().is_none_or(|(r, _)| room < *r) {
                        best = Some((room, candidate));
                    }
                }
                Err(s) => {
                    // Fewest missing; of those, the most installed (a model the cluster lacks is no closer).
                    let key = |s: &Shortfall| (s.short_by(), std::cmp::Reverse(s.installed));
                    if closest.as_ref().is_none_or(|c| key(&s) < key(c)) {
                        closest = Some(s);
                    }
                }
            }
        }
        let lease = match (best, closest) {
            (Some((_, lease)), _) => lease,
            (None, Some(s)) => return Err(CoreError::Shortfall(Box::new(s))),
            (None, None) => {
                return Err(CoreError::BadLease {
                    id: lease.id,
                    problem: "it names no model".into(),
                });
            }
        };
        self.leases.insert(lease.clone());
        self.pools.invalidate();
        self.needs_full = true;
        Ok(lease)
    }

    /// Restores an admitted lease without checking capacity (the store's copy is the truth).
    pub fn add_lease(&mut self, lease: Lease) -> Result<(), CoreError> {
        self.check_lease(&lease)?;
        self.leases.insert(lease);
        self.pools.invalidate();
        self.needs_full = true;
        Ok(())
    }

    /// Withdraws a lease; runs already started keep their kind until they stop.
    pub fn remove_lease(&mut self, id: LeaseId) -> Option<Lease> {
        self.pools.invalidate();
        self.needs_full = true;
        self.leases.remove(id)
    }

    /// Devices of `model` the tenant's leases still guarantee beyond its leased runs.
    pub fn lease_room(&self, tenant: TenantId, model: ModelId, now: Time) -> u32 {
        self.leases
            .guarantee(tenant, model, now)
            .saturating_sub(self.kinds.leased(tenant, model))
    }

    /// Whose capacity a placement of the tenant's job would use: its lease if the whole job fits in what the
    /// lease has left and stays off other tenants' pools; capacity nobody leased if it stays off every pool
    /// and enough is left; otherwise idle leased capacity, borrowed (when lending is on).
    pub(crate) fn usage_kind(
        &self,
        tenant: TenantId,
        model: ModelId,
        parts: &[Part],
        now: Time,
    ) -> Option<UsageKind> {
        let n = placed_devices(parts);
        if self.leases.is_empty() || n == 0 {
            return Some(UsageKind::OnDemand);
        }
        let touches = |pool: &dyn Fn(NodeIdx) -> Mask| {
            parts.iter().any(|p| {
                let mask = p.mask | p.share.map_or(0, |(d, _, _)| 1 << d);
                mask & pool(p.node) != 0
            })
        };
        if n <= self.lease_room(tenant, model, now) && !touches(&|n| self.pools.foreign(n, tenant))
        {
            return Some(UsageKind::Leased);
        }
        if self.kinds.on_demand(model) + n <= self.unleased(model, now)
            && !touches(&|n| self.pools.any(n))
        {
            return Some(UsageKind::OnDemand);
        }
        self.config.leases.lending.then_some(UsageKind::Borrowed)
    }

    /// A tenant's queue share: its fair share, pushed behind every tenant that has lease room when it has
    /// none (so that jobs within a lease start ahead of others).
    pub(crate) fn queue_share(&self, tenant: TenantId, now: Time) -> f64 {
        let share = self.fair.share(tenant);
        if self.leases.is_empty() {
            return share;
        }
        let room = self
            .leases
            .models_of(tenant)
            .any(|m| self.lease_room(tenant, m, now) > 0);
        if room { share } else { share + OUTSIDE_LEASE }
    }

    /// Devices of `model` nobody has leased from `now` on. Capacity promised later counts now: a run started
    /// on it could not be reclaimed when that lease begins (its length is unknown), so such a run borrows.
    fn unleased(&self, model: ModelId, now: Time) -> u32 {
        let installed: u32 = self.installed.get(&model).map_or(0, |shapes| {
            shapes.iter().map(|(&(d, _, _), &n)| d as u32 * n).sum()
        });
        installed.saturating_sub(self.leases.promised_from(model, now))
    }

    /// With lending off, whether the counts alone (lease room, unleased capacity left) allow the job to
    /// start on some accepted model; a job they do not allow is not even placed.
    pub(crate) fn lease_allows(&self, id: JobId, now: Time) -> bool {
        if self.config.leases.lending || self.leases.is_empty() {
            return true;
        }
        let job = &self.jobs[&id];
        let need = job.shape.request.devices();
        need == 0
            || job.accepted.iter().any(|&(m, _)| {
                self.lease_room(job.spec.tenant, m, now) >= need
                    || self
                        .unleased(m, now)
                        .saturating_sub(self.kinds.on_demand(m))
                        >= need
            })
    }

    /// Accepted models on which the tenant's lease has room for the whole job.
    pub(crate) fn lease_models(&self, id: JobId, now: Time) -> Vec<ModelId> {
        let job = &self.jobs[&id];
        let need = job.shape.request.devices();
        if self.leases.is_empty() || need == 0 {
            return Vec::new();
        }
        job.accepted
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| self.lease_room(job.spec.tenant, *m, now) >= need)
            .collect()
    }

    /// True when a lease started or ended since the last full cycle.
    pub(crate) fn lease_changed(&self, now: Time) -> bool {
        self.last_full
            .is_some_and(|t| self.leases.next_change(t).is_some_and(|c| c <= now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(id: u64, tenant: u32, n: u32, start: i64, end: i64, within: Within) -> Lease {
        Lease {
            id: LeaseId(id),
            tenant: TenantId(tenant),
            model: ModelId(0),
            devices: n,
            start: Time::from_secs(start),
            end: Time::from_secs(end),
            within,
            domain: None,
        }
    }

    /// Two spines of two leaves of 16 devices each.
    fn capacity() -> Capacity {
        let leaves: BTreeMap<String, u32> = ["s0/l0", "s0/l1", "s1/l0", "s1/l1"]
            .iter()
            .map(|l| (l.to_string(), 16))
            .collect();
        let spines = [("s0".to_string(), 32), ("s1".to_string(), 32)].into();
        Capacity {
            total: 64,
            leaves,
            spines,
        }
    }

    fn admit(book: &mut LeaseBook, mut l: Lease) -> Result<Option<String>, Shortfall> {
        let domain = book.admit(&l, &capacity())?;
        l.domain = domain.clone();
        book.insert(l);
        Ok(domain)
    }

    #[test]
    fn a_lease_is_refused_only_where_its_window_meets_promised_capacity() {
        let mut b = LeaseBook::default();
        admit(&mut b, lease(1, 1, 40, 0, 100, Within::Anywhere)).unwrap();
        admit(&mut b, lease(2, 2, 24, 100, 200, Within::Anywhere)).unwrap();
        // Fits after lease 1 ends...
        admit(&mut b, lease(3, 3, 40, 200, 300, Within::Anywhere)).unwrap();
        // ...but not across 50..150: 40 promised from 50 to 100, 24 from 100 to 150.
        let err = admit(&mut b, lease(4, 4, 30, 50, 150, Within::Anywhere)).unwrap_err();
        assert_eq!((err.installed, err.promised, err.short_by()), (64, 40, 6));
        assert_eq!(
            (err.from, err.to),
            (Time::from_secs(50), Time::from_secs(100))
        );
        assert_eq!(err.holders, vec![(LeaseId(1), TenantId(1), 40)]);
        admit(&mut b, lease(5, 4, 24, 50, 150, Within::Anywhere)).unwrap();
        assert_eq!(
            b.guarantee(TenantId(4), ModelId(0), Time::from_secs(60)),
            24
        );
        assert_eq!(b.promised_from(ModelId(0), Time::from_secs(120)), 48);
        assert_eq!(
            b.next_change(Time::from_secs(100)),
            Some(Time::from_secs(150))
        );
    }

    #[test]
    fn leaf_leases_take_the_tightest_leaf_and_respect_spines_and_the_whole() {
        let mut b = LeaseBook::default();
        assert_eq!(
            admit(&mut b, lease(1, 1, 12, 0, 100, Within::Leaf)).unwrap(),
            Some("s0/l0".into())
        );
        // 4 left in s0/l0: an 4-device leaf lease goes there, keeping the empty leaves whole.
        assert_eq!(
            admit(&mut b, lease(2, 2, 4, 0, 100, Within::Leaf)).unwrap(),
            Some("s0/l0".into())
        );
        assert_eq!(
            admit(&mut b, lease(3, 3, 20, 0, 100, Within::Spine)).unwrap(),
            Some("s1".into())
        );
        assert_eq!(
            admit(&mut b, lease(4, 4, 16, 0, 100, Within::Leaf)).unwrap(),
            Some("s0/l1".into())
        );
        // Everything pinned (52) plus an unpinned 16 exceeds the 64 installed.
        let err = admit(&mut b, lease(6, 6, 16, 0, 100, Within::Anywhere)).unwrap_err();
        assert_eq!(
            (err.domain.clone(), err.promised, err.short_by()),
            (None, 52, 4)
        );
        admit(&mut b, lease(7, 6, 12, 0, 100, Within::Anywhere)).unwrap();
    }

    #[test]
    fn a_leaf_lease_is_refused_when_its_spine_is_promised() {
        let mut b = LeaseBook::default();
        assert_eq!(
            admit(&mut b, lease(1, 1, 20, 0, 100, Within::Spine)).unwrap(),
            Some("s0".into())
        );
        assert_eq!(
            admit(&mut b, lease(2, 2, 20, 0, 100, Within::Spine)).unwrap(),
            Some("s1".into())
        );
        // Every leaf is empty and 24 devices are unpromised, but each spine has only 12 left.
        let err = admit(&mut b, lease(3, 3, 16, 0, 100, Within::Leaf)).unwrap_err();
        assert_eq!(err.domain.as_deref(), Some("s0"));
        assert_eq!((err.installed, err.promised, err.short_by()), (32, 20, 4));
        assert!(err.to_string().contains("spine s0"), "{err}");
        admit(&mut b, lease(4, 3, 12, 0, 100, Within::Leaf)).unwrap();
    }

    #[test]
    fn a_model_without_switches_refuses_a_leaf_lease() {
        let b = LeaseBook::default();
        let cap = Capacity {
            total: 8,
            ..Capacity::default()
        };
        let err = b
            .admit(&lease(1, 1, 4, 0, 10, Within::Leaf), &cap)
            .unwrap_err();
        assert_eq!((err.installed, err.domain), (0, None));
    }
}
