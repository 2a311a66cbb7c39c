//! Tenants: who owns jobs, with their fair-share weight and quota.

use serde::{Deserialize, Serialize};

/// Driver-assigned identity of a tenant.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TenantId(pub u32);

/// A tenant as the scheduler sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Identity.
    pub id: TenantId,
    /// Name (a company, a lab, a Philly virtual cluster).
    pub name: String,
    /// Fair-share weight: a tenant of weight 2 is entitled to twice the share of one of weight 1.
    pub weight: f64,
    /// Most devices its jobs may hold at once; `None` is unlimited.
    pub quota_devices: Option<u32>,
}

impl Tenant {
    /// A tenant of weight 1 without quota.
    pub fn new(id: TenantId, name: impl Into<String>) -> Tenant {
        Tenant {
            id,
            name: name.into(),
            weight: 1.0,
            quota_devices: None,
        }
    }
}
