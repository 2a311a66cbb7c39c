//! Leases, prices and usage as the API carries them. Times are Unix seconds.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Asking for a lease.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// The tenant it is for.
    pub tenant: String,
    /// Accelerator model (catalog name or alias), or a class: a class of the catalog or models separated by
    /// commas, any of which will do (admission pins the lease to one).
    pub model: String,
    /// Devices guaranteed.
    pub devices: u32,
    /// Start, Unix seconds.
    pub start: f64,
    /// End, Unix seconds.
    pub end: f64,
    /// `anywhere` (default), `leaf` or `spine`: keep the devices under one switch.
    #[serde(default)]
    pub within: Option<String>,
}

/// A lease as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseView {
    /// Id.
    pub id: u64,
    /// Owner.
    pub tenant: String,
    /// Model name (for a lease of a class, the model it is pinned to).
    pub model: String,
    /// The class asked for, if it was one.
    #[serde(default)]
    pub class: Option<String>,
    /// Devices guaranteed.
    pub devices: u32,
    /// Start, Unix seconds.
    pub start: f64,
    /// End, Unix seconds.
    pub end: f64,
    /// `anywhere`, `leaf` or `spine`.
    pub within: String,
    /// The switch chosen at admission for a leaf or spine lease.
    pub domain: Option<String>,
    /// When it was admitted.
    pub created: f64,
    /// When it was withdrawn, if it was (a withdrawn lease stays on record and is billed until then).
    pub removed: Option<f64>,
    /// Devices of the lease its owner's jobs use now.
    pub in_use: u32,
    /// The devices standing behind it while it is in force: node name → device indices.
    #[serde(default)]
    pub pool: BTreeMap<String, Vec<u32>>,
}

/// Prices of one model, per device-hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// A leased device-hour (billed for the whole lease, used or not).
    pub leased: f64,
    /// A device-hour of capacity nobody leased.
    pub on_demand: f64,
    /// A device-hour borrowed from idle leased capacity (preemptible).
    pub preemptible: f64,
}

/// The price table: model name → prices.
pub type PriceTable = BTreeMap<String, Prices>;

/// One segment of a job's run: one allocation, one kind of capacity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The job.
    pub job: u64,
    /// Its run number.
    pub attempt: u32,
    /// Owner.
    pub tenant: String,
    /// Model.
    pub model: String,
    /// Devices held (a shared device counts for its fraction).
    pub devices: f64,
    /// Start, Unix seconds (clipped to the report's window).
    pub start: f64,
    /// End, Unix seconds (clipped; for a run still going, the time of the report).
    pub end: f64,
    /// Device-hours in the window.
    pub device_hours: f64,
    /// Normalized units: device-hours × the model's normalized throughput.
    pub normalized_units: f64,
    /// `leased`, `on-demand` or `borrowed`.
    pub kind: String,
    /// True for a run still going.
    pub open: bool,
}

/// Totals of usage by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Device-hours per kind.
    pub device_hours: BTreeMap<String, f64>,
    /// Normalized units per kind.
    pub normalized_units: BTreeMap<String, f64>,
}

/// Usage of one tenant (or all) over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// The tenant, or none for all.
    pub tenant: Option<String>,
    /// Window start, Unix seconds.
    pub from: f64,
    /// Window end, Unix seconds.
    pub to: f64,
    /// The segments, by start.
    pub records: Vec<UsageRecord>,
    /// Their totals.
    pub totals: UsageTotals,
}

/// One line of an invoice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvoiceLine {
    /// What is billed (`lease 3`, `on-demand`, `borrowed`).
    pub item: String,
    /// Model.
    pub model: String,
    /// Device-hours.
    pub device_hours: f64,
    /// Price per device-hour.
    pub price: f64,
    /// device_hours × price.
    pub amount: f64,
}

/// A tenant's bill for a window, from the price table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// The tenant.
    pub tenant: String,
    /// Window start, Unix seconds.
    pub from: f64,
    /// Window end, Unix seconds.
    pub to: f64,
    /// Leases (whole window overlap, used or not), then usage beyond them by kind and model.
    pub lines: Vec<InvoiceLine>,
    /// Sum of the lines.
    pub total: f64,
    /// Models used or leased without a price in the table (billed at 0).
    pub unpriced: Vec<String>,
}
