//! Fair share between tenants: weighted dominant share over normalized compute and device memory (DRF with
//! the throughput of a device measured in normalized device-seconds per second), plus device quotas.

use std::collections::BTreeMap;
use wanka_model::{Tenant, TenantId};

/// What a running job holds, in the units fair share counts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Devices (a fractional device counts as one).
    pub devices: u32,
    /// Normalized compute: normalized device-seconds per second.
    pub compute: f64,
    /// Device memory, GiB.
    pub memory_gib: f64,
}

#[derive(Clone, Debug)]
struct Account {
    tenant: Tenant,
    used: Usage,
}

/// Usage and entitlement of every tenant.
#[derive(Clone, Debug, Default)]
pub struct FairShare {
    accounts: BTreeMap<TenantId, Account>,
    capacity: Usage,
}

impl FairShare {
    /// Adds a tenant or updates its weight and quota, keeping its usage.
    pub fn upsert(&mut self, tenant: Tenant) {
        self.accounts
            .entry(tenant.id)
            .and_modify(|a| a.tenant = tenant.clone())
            .or_insert(Account {
                tenant,
                used: Usage::default(),
            });
    }

    /// Whether the tenant is known.
    pub fn contains(&self, id: TenantId) -> bool {
        self.accounts.contains_key(&id)
    }

    /// The tenant record.
    pub fn tenant(&self, id: TenantId) -> Option<&Tenant> {
        self.accounts.get(&id).map(|a| &a.tenant)
    }

    /// All tenants, by id.
    pub fn tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.accounts.values().map(|a| &a.tenant)
    }

    /// What the tenant holds now.
    pub fn used(&self, id: TenantId) -> Usage {
        self.accounts.get(&id).map(|a| a.used).unwrap_or_default()
    }

    /// Sets the cluster's total normalized compute and device memory (the denominators of shares).
    pub fn set_capacity(&mut self, capacity: Usage) {
        self.capacity = capacity;
    }

    /// Records a job starting.
    pub fn charge(&mut self, id: TenantId, u: Usage) {
        if let Some(a) = self.accounts.get_mut(&id) {
            a.used.devices += u.devices;
            a.used.compute += u.compute;
            a.used.memory_gib += u.memory_gib;
        }
    }

    /// Records a job stopping.
    pub fn refund(&mut self, id: TenantId, u: Usage) {
        if let Some(a) = self.accounts.get_mut(&id) {
            a.used.devices -= u.devices;
            // Clamp float residue so that an idle tenant is exactly at zero.
            a.used.compute = (a.used.compute - u.compute).max(0.0);
            a.used.memory_gib = (a.used.memory_gib - u.memory_gib).max(0.0);
            if a.used.devices == 0 {
                a.used = Usage::default();
            }
        }
    }

    /// Weighted dominant share: max(compute share, memory share) / weight. Lower goes first.
    pub fn share(&self, id: TenantId) -> f64 {
        let Some(a) = self.accounts.get(&id) else {
            return 0.0;
        };
        let part = |used: f64, cap: f64| if cap > 0.0 { used / cap } else { 0.0 };
        let dominant = part(a.used.compute, self.capacity.compute)
            .max(part(a.used.memory_gib, self.capacity.memory_gib));
        dominant / a.tenant.weight.max(f64::MIN_POSITIVE)
    }

    /// `Err((used, quota))` when `extra` more devices would exceed the tenant's quota.
    pub fn check_quota(&self, id: TenantId, extra: u32) -> Result<(), (u32, u32)> {
        let Some(a) = self.accounts.get(&id) else {
            return Ok(());
        };
        match a.tenant.quota_devices {
            Some(q) if a.used.devices + extra > q => Err((a.used.devices, q)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> FairShare {
        let mut f = FairShare::default();
        f.set_capacity(Usage {
            devices: 100,
            compute: 100.0,
            memory_gib: 1000.0,
        });
        f.upsert(Tenant::new(TenantId(1), "a"));
        f.upsert(Tenant {
            weight: 2.0,
            quota_devices: Some(10),
            ..Tenant::new(TenantId(2), "b")
        });
        f
    }

    #[test]
    fn dominant_share_takes_the_larger_dimension_and_divides_by_weight() {
        let mut f = fs();
        f.charge(
            TenantId(1),
            Usage {
                devices: 4,
                compute: 10.0,
                memory_gib: 300.0,
            },
        );
        assert!((f.share(TenantId(1)) - 0.3).abs() < 1e-12);
        f.charge(
            TenantId(2),
            Usage {
                devices: 4,
                compute: 40.0,
                memory_gib: 10.0,
            },
        );
        assert!((f.share(TenantId(2)) - 0.2).abs() < 1e-12);
        f.refund(
            TenantId(1),
            Usage {
                devices: 4,
                compute: 10.0,
                memory_gib: 300.0,
            },
        );
        assert_eq!(f.share(TenantId(1)), 0.0);
    }

    #[test]
    fn quota_counts_devices_held() {
        let mut f = fs();
        assert_eq!(f.check_quota(TenantId(2), 10), Ok(()));
        f.charge(
            TenantId(2),
            Usage {
                devices: 8,
                ..Usage::default()
            },
        );
        assert_eq!(f.check_quota(TenantId(2), 4), Err((8, 10)));
        assert_eq!(f.check_quota(TenantId(1), 1000), Ok(()));
    }
}
