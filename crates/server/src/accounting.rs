//! Leases, the price table and usage accounting in the server.
//!
//! Admission is the scheduler core's; here leases get names, dates and persistence. Every run of a job is
//! one usage segment (one allocation, one kind of capacity), opened when the run starts and written to the
//! store when it stops, so the records add up to exactly the device-time the scheduler allocated. Reports
//! clip segments to the asked window; invoices bill leases for their whole overlap with the window (used or
//! not) and usage outside leases by kind.

use crate::auth::Caller;
use crate::state::{Core, Refused, secs};
use crate::store::{LeaseRow, PriceRow, UsageRow, Write};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use wanka_api::lease::{
    Invoice, InvoiceLine, LeaseRequest, LeaseView, PriceTable, Prices, UsageRecord, UsageReport,
    UsageTotals,
};
use wanka_api::{Role, date};
use wanka_model::{Lease, LeaseId, Time, UsageKind, Within};
use wanka_sched::CoreError;

/// The run a job holds devices for, as it will be billed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start, Unix microseconds.
    pub start_us: i64,
    /// Model name.
    pub model: String,
    /// Devices, thousandths.
    pub device_milli: u64,
    /// Normalized throughput per device.
    pub rate: f64,
    /// Whose capacity.
    pub kind: UsageKind,
}

/// How long owners waited for leased capacity (the reclaim time): count, sum and longest, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReclaimStats {
    /// Starts within a lease that had to wait.
    pub count: u64,
    /// Their waits in all.
    pub sum_s: f64,
    /// The longest wait.
    pub max_s: f64,
}

/// Unix seconds (the API's unit) as Unix microseconds (the store's).
pub(crate) fn micros(s: f64) -> i64 {
    (s * 1e6).round() as i64
}

/// Seconds of `[start, end)` inside `[from, to)`.
fn overlap_us(start: i64, end: i64, from: i64, to: i64) -> i64 {
    (end.min(to) - start.max(from)).max(0)
}

impl Core {
    fn tenant_name(&self, id: wanka_model::TenantId) -> String {
        self.tenants
            .iter()
            .find(|(_, t)| t.id == id)
            .map_or_else(|| format!("#{}", id.0), |(n, _)| n.clone())
    }

    fn lease_of(&self, row: &LeaseRow) -> Result<Lease, String> {
        let tenant = self
            .tenants
            .get(&row.tenant)
            .ok_or_else(|| format!("tenant '{}' does not exist", row.tenant))?
            .id;
        let model = self
            .sched
            .catalog()
            .lookup(&row.model)
            .map_err(|e| e.to_string())?;
        let within = Within::parse(&row.within).ok_or_else(|| {
            format!(
                "within = '{}'; it must be anywhere, leaf or spine",
                row.within
            )
        })?;
        Ok(Lease {
            id: LeaseId(row.id),
            tenant,
            model,
            devices: row.devices,
            start: Time(row.start_us),
            end: Time(row.end_us),
            within,
            domain: row.domain.clone(),
        })
    }

    /// Takes back the stored leases (those not withdrawn go to the scheduler unchecked) and prices.
    pub fn restore_accounting(
        &mut self,
        leases: Vec<LeaseRow>,
        prices: Vec<PriceRow>,
    ) -> Result<(), (String, String)> {
        for row in leases {
            if row.removed_us.is_none() {
                let lease = self.lease_of(&row).map_err(|e| (row.id.to_string(), e))?;
                self.sched
                    .add_lease(lease)
                    .map_err(|e| (row.id.to_string(), e.to_string()))?;
            }
            self.next_lease = self.next_lease.max(row.id + 1);
            self.leases.insert(row.id, row);
        }
        for p in prices {
            self.prices.insert(p.model, p.prices);
        }
        Ok(())
    }

    /// Admits a lease, or says what capacity is short and when.
    pub fn put_lease(&mut self, req: &LeaseRequest, now: i64) -> Result<LeaseView, Refused> {
        let invalid = |m: String| Refused::Invalid(m);
        if !(req.start.is_finite() && req.end.is_finite()) {
            return Err(invalid("start and end must be Unix seconds".into()));
        }
        let catalog = self.sched.catalog();
        let models = catalog
            .lookup_models(&req.model)
            .map_err(|e| invalid(e.to_string()))?;
        let names: Vec<&str> = models
            .iter()
            .map(|m| catalog.model(*m).name.as_str())
            .collect();
        // A class is kept as asked: its name, or the models' canonical names.
        let class = match catalog.class(&req.model) {
            Some((name, _)) => Some(name.to_string()),
            None => (models.len() > 1).then(|| names.join(",")),
        };
        let within = req.within.as_deref().unwrap_or("anywhere");
        let row = LeaseRow {
            id: self.next_lease.max(1),
            tenant: req.tenant.clone(),
            model: names[0].to_string(),
            class,
            devices: req.devices,
            start_us: micros(req.start),
            end_us: micros(req.end),
            within: within.to_string(),
            domain: None,
            created_us: now,
            removed_us: None,
        };
        let lease = self.lease_of(&row).map_err(invalid)?;
        let admitted = self
            .sched
            .admit_lease_of(lease, &models)
            .map_err(|e| match e {
                CoreError::Shortfall(s) => Refused::Conflict(self.shortfall_text(&row, &s)),
                other => Refused::Invalid(other.to_string()),
            })?;
        let row = LeaseRow {
            model: self.sched.catalog().model(admitted.model).name.clone(),
            domain: admitted.domain,
            ..row
        };
        self.next_lease = row.id + 1;
        self.fx.writes.push(Write::Lease(row.clone()));
        self.leases.insert(row.id, row.clone());
        self.fx.kick = true;
        Ok(self.lease_view(&row, now))
    }

    fn shortfall_text(&self, row: &LeaseRow, s: &wanka_sched::lease::Shortfall) -> String {
        let model = &self.sched.catalog().model(s.model).name;
        let mut scope = s.scope();
        if s.domain.is_none() && s.within != Within::Anywhere {
            scope.push_str(&format!(" (none holds {model})"));
        }
        // For a class: what the model closest to holding the lease lacks.
        let (what, scope) = match &row.class {
            Some(class) => (
                format!("of class {class}"),
                format!("no model of the class can hold them; the closest, {model}: {scope}"),
            ),
            None => (model.clone(), scope),
        };
        let holders: Vec<String> = s
            .holders
            .iter()
            .map(|(l, t, n)| format!("lease {l} of '{}': {n}", self.tenant_name(*t)))
            .collect();
        format!(
            "cannot lease {} {} to '{}' from {} to {}: {scope} has {} installed and {} already promised \
             from {} to {}{}, short by {}",
            row.devices,
            what,
            row.tenant,
            date::format(secs(row.start_us)),
            date::format(secs(row.end_us)),
            s.installed,
            s.promised,
            date::format(secs(s.from.0)),
            date::format(secs(s.to.0)),
            if holders.is_empty() {
                String::new()
            } else {
                format!(" ({})", holders.join(", "))
            },
            s.short_by()
        )
    }

    /// Withdraws a lease: no longer guaranteed, billed until now.
    pub fn remove_lease(&mut self, id: u64, now: i64) -> Result<LeaseView, Refused> {
        let row = self
            .leases
            .get_mut(&id)
            .filter(|r| r.removed_us.is_none())
            .ok_or_else(|| {
                Refused::NotFound(format!("lease {id} does not exist or was withdrawn"))
            })?;
        row.removed_us = Some(now);
        let row = row.clone();
        self.sched.remove_lease(LeaseId(id));
        self.fx.writes.push(Write::Lease(row.clone()));
        self.fx.kick = true;
        Ok(self.lease_view(&row, now))
    }

    fn lease_view(&self, row: &LeaseRow, now: i64) -> LeaseView {
        let active = row.removed_us.is_none() && row.start_us <= now && now < row.end_us;
        let in_use = match (active, self.lease_of(row)) {
            (true, Ok(l)) => {
                // The tenant's leased use of the model, filled into its active leases in id order.
                let t = Time(now);
                let used = self.sched.leases().guarantee(l.tenant, l.model, t)
                    - self.sched.lease_room(l.tenant, l.model, t);
                let before: u32 = self
                    .sched
                    .leases()
                    .active(t)
                    .filter(|o| o.tenant == l.tenant && o.model == l.model && o.id < l.id)
                    .map(|o| o.devices)
                    .sum();
                used.saturating_sub(before).min(l.devices)
            }
            _ => 0,
        };
        LeaseView {
            id: row.id,
            tenant: row.tenant.clone(),
            model: row.model.clone(),
            class: row.class.clone(),
            devices: row.devices,
            start: secs(row.start_us),
            end: secs(row.end_us),
            within: row.within.clone(),
            domain: row.domain.clone(),
            created: secs(row.created_us),
            removed: row.removed_us.map(secs),
            in_use,
            pool: if active {
                self.sched
                    .lease_devices(LeaseId(row.id))
                    .into_iter()
                    .map(|(n, d)| (self.node_names[n.0 as usize].clone(), d))
                    .collect()
            } else {
                Default::default()
            },
        }
    }

    /// The leases the caller may see (a tenant sees its own).
    pub fn lease_views(&self, caller: &Caller, now: i64) -> Vec<LeaseView> {
        self.leases
            .values()
            .filter(|r| caller.may_touch(&r.tenant))
            .map(|r| self.lease_view(r, now))
            .collect()
    }

    /// Sets a model's prices.
    pub fn set_prices(&mut self, model: &str, prices: Prices) -> Result<(), Refused> {
        let id = self
            .sched
            .catalog()
            .lookup(model)
            .map_err(|e| Refused::Invalid(e.to_string()))?;
        let ok = |p: f64| p.is_finite() && p >= 0.0;
        if !(ok(prices.leased) && ok(prices.on_demand) && ok(prices.preemptible)) {
            return Err(Refused::Invalid(
                "prices must be finite and not negative".into(),
            ));
        }
        let name = self.sched.catalog().model(id).name.clone();
        self.prices.insert(name.clone(), prices);
        self.fx.writes.push(Write::Price(PriceRow {
            model: name,
            prices,
        }));
        Ok(())
    }

    /// Opens the usage segment of a run that starts now.
    pub(crate) fn open_segment(&mut self, id: u64, now: i64) {
        let r = &self.jobs[&id];
        let Some(model) = r.model.clone() else { return };
        let rate = self.sched.catalog().lookup(&model).map_or(0.0, |m| {
            self.sched.performance().rate(r.spec.workload.as_deref(), m)
        });
        let device_milli = r
            .replicas
            .iter()
            .map(|p| {
                p.fraction_milli
                    .map_or(p.devices.len() as u64 * 1000, u64::from)
            })
            .sum();
        let kind = r.usage;
        self.jobs.get_mut(&id).expect("known").segment = Some(Segment {
            start_us: now,
            model,
            device_milli,
            rate,
            kind,
        });
    }

    /// Closes a run's usage segment and writes it.
    pub(crate) fn close_segment(&mut self, id: u64, now: i64) {
        let r = self.jobs.get_mut(&id).expect("known");
        let Some(s) = r.segment.take() else { return };
        let row = UsageRow {
            job: id,
            attempt: r.attempt,
            tenant: r.tenant.clone(),
            model: s.model,
            kind: s.kind.name().to_string(),
            device_milli: s.device_milli,
            rate: s.rate,
            start_us: s.start_us,
            end_us: now.max(s.start_us),
        };
        self.fx.writes.push(Write::Usage(row));
    }

    /// Segments of runs still going, as rows ending now.
    pub fn open_usage(&self, tenant: Option<&str>, now: i64) -> Vec<UsageRow> {
        self.active
            .iter()
            .filter_map(|id| {
                let r = &self.jobs[id];
                let s = r.segment.as_ref()?;
                tenant.is_none_or(|t| t == r.tenant).then(|| UsageRow {
                    job: *id,
                    attempt: r.attempt,
                    tenant: r.tenant.clone(),
                    model: s.model.clone(),
                    kind: s.kind.name().to_string(),
                    device_milli: s.device_milli,
                    rate: s.rate,
                    start_us: s.start_us,
                    end_us: now,
                })
            })
            .collect()
    }

    /// Records how long an owner waited for its leased capacity.
    pub(crate) fn note_reclaim(&mut self, wait: wanka_model::Span) {
        let s = wait.as_secs_f64();
        self.reclaim.count += 1;
        self.reclaim.sum_s += s;
        self.reclaim.max_s = self.reclaim.max_s.max(s);
    }

    /// The leases of a tenant that overlap a window, withdrawn ones until their withdrawal.
    pub fn leases_of(&self, tenant: &str) -> Vec<LeaseRow> {
        self.leases
            .values()
            .filter(|r| r.tenant == tenant)
            .cloned()
            .collect()
    }

    /// Whether the caller may read this tenant's usage (admins: any, or all with none given).
    pub fn may_read_usage(caller: &Caller, tenant: Option<&str>) -> Result<(), Refused> {
        match (caller.role, tenant) {
            (Role::Admin, _) => Ok(()),
            (Role::Tenant, Some(t)) if caller.may_touch(t) => Ok(()),
            (Role::Tenant, _) => Err(Refused::Forbidden(
                "a tenant token reads its own tenant's usage only (give --tenant)".into(),
            )),
            _ => Err(Refused::Forbidden("agent tokens read no usage".into())),
        }
    }
}

/// The usage report of a window from finished and open segments.
pub fn report(
    tenant: Option<&str>,
    from_us: i64,
    to_us: i64,
    finished: Vec<UsageRow>,
    open: Vec<UsageRow>,
) -> UsageReport {
    let open_keys: BTreeSet<(u64, u32)> = open.iter().map(|r| (r.job, r.attempt)).collect();
    let mut records: Vec<UsageRecord> = finished
        .into_iter()
        .chain(open)
        .filter(|r| overlap_us(r.start_us, r.end_us, from_us, to_us) > 0)
        .map(|r| {
            let hours = overlap_us(r.start_us, r.end_us, from_us, to_us) as f64 / 3.6e9
                * r.device_milli as f64
                / 1000.0;
            UsageRecord {
                open: open_keys.contains(&(r.job, r.attempt)),
                job: r.job,
                attempt: r.attempt,
                tenant: r.tenant,
                model: r.model,
                devices: r.device_milli as f64 / 1000.0,
                start: secs(r.start_us.max(from_us)),
                end: secs(r.end_us.min(to_us)),
                device_hours: hours,
                normalized_units: hours * r.rate,
                kind: r.kind,
            }
        })
        .collect();
    records.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.job.cmp(&b.job)));
    let mut totals = UsageTotals::default();
    for r in &records {
        *totals.device_hours.entry(r.kind.clone()).or_default() += r.device_hours;
        *totals.normalized_units.entry(r.kind.clone()).or_default() += r.normalized_units;
    }
    UsageReport {
        tenant: tenant.map(str::to_string),
        from: secs(from_us),
        to: secs(to_us),
        records,
        totals,
    }
}

/// A tenant's invoice: each lease for its overlap with the window at the leased price, then on-demand and
/// borrowed device-hours per model at their prices (leased usage is covered by the leases).
pub fn invoice(
    tenant: &str,
    leases: &[LeaseRow],
    usage: &UsageReport,
    prices: &PriceTable,
) -> Invoice {
    let (from, to) = (micros(usage.from), micros(usage.to));
    let mut lines = Vec::new();
    let mut unpriced = BTreeSet::new();
    let mut price = |model: &str, pick: fn(&Prices) -> f64| match prices.get(model) {
        Some(p) => pick(p),
        None => {
            unpriced.insert(model.to_string());
            0.0
        }
    };
    for l in leases {
        let end = l.removed_us.map_or(l.end_us, |r| r.min(l.end_us));
        let hours = overlap_us(l.start_us, end, from, to) as f64 / 3.6e9 * l.devices as f64;
        if hours > 0.0 {
            let p = price(&l.model, |p| p.leased);
            lines.push(InvoiceLine {
                item: format!("lease {} ({} devices)", l.id, l.devices),
                model: l.model.clone(),
                device_hours: hours,
                price: p,
                amount: hours * p,
            });
        }
    }
    let mut beyond: BTreeMap<(String, String), f64> = BTreeMap::new();
    for r in &usage.records {
        if r.kind != UsageKind::Leased.name() {
            *beyond.entry((r.kind.clone(), r.model.clone())).or_default() += r.device_hours;
        }
    }
    for ((kind, model), hours) in beyond {
        let p = if kind == UsageKind::Borrowed.name() {
            price(&model, |p| p.preemptible)
        } else {
            price(&model, |p| p.on_demand)
        };
        lines.push(InvoiceLine {
            item: kind,
            model,
            device_hours: hours,
            price: p,
            amount: hours * p,
        });
    }
    Invoice {
        tenant: tenant.to_string(),
        from: usage.from,
        to: usage.to,
        total: lines.iter().map(|l| l.amount).sum(),
        lines,
        unpriced: unpriced.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(job: u64, kind: UsageKind, start_h: i64, end_h: i64, milli: u64) -> UsageRow {
        UsageRow {
            job,
            attempt: 1,
            tenant: "a".into(),
            model: "H100".into(),
            kind: kind.name().into(),
            device_milli: milli,
            rate: 2.0,
            start_us: start_h * 3_600_000_000,
            end_us: end_h * 3_600_000_000,
        }
    }

    #[test]
    fn reports_clip_to_the_window_and_invoices_bill_leases_whole() {
        let h = 3_600_000_000;
        let finished = vec![
            row(1, UsageKind::Leased, 0, 10, 8000),
            row(2, UsageKind::OnDemand, 5, 15, 4000),
            row(3, UsageKind::Borrowed, 20, 30, 500),
        ];
        let open = vec![row(4, UsageKind::Borrowed, 8, 12, 1000)];
        let r = report(Some("a"), 2 * h, 12 * h, finished, open);
        // Job 1: 8 h × 8; job 2: 7 h × 4; job 3 outside; job 4 open: 4 h × 1.
        assert_eq!(r.records.len(), 3);
        assert_eq!(r.totals.device_hours["leased"], 64.0);
        assert_eq!(r.totals.device_hours["on-demand"], 28.0);
        assert_eq!(r.totals.normalized_units["borrowed"], 8.0);
        assert!(r.records.iter().any(|x| x.open && x.job == 4));
        let lease = LeaseRow {
            id: 7,
            tenant: "a".into(),
            model: "H100".into(),
            class: None,
            devices: 8,
            start_us: 0,
            end_us: 100 * h,
            within: "anywhere".into(),
            domain: None,
            created_us: 0,
            removed_us: Some(6 * h),
        };
        let prices: PriceTable = [(
            "H100".to_string(),
            Prices {
                leased: 2.0,
                on_demand: 3.0,
                preemptible: 1.0,
            },
        )]
        .into();
        let inv = invoice("a", &[lease], &r, &prices);
        // The lease until its withdrawal at 6 h: 4 h × 8 × 2; on demand 28 × 3; borrowed 4 × 1.
        let amounts: Vec<(String, f64)> = inv
            .lines
            .iter()
            .map(|l| (l.item.clone(), l.amount))
            .collect();
        assert_eq!(
            amounts,
            vec![
                ("lease 7 (8 devices)".to_string(), 64.0),
                ("borrowed".to_string(), 4.0),
                ("on-demand".to_string(), 84.0),
            ]
        );
        assert_eq!(inv.total, 152.0);
        assert!(inv.unpriced.is_empty());
    }
}
