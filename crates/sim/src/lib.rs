//! wanka's simulator side: cluster descriptions and real trace readers that feed the scheduler core.

pub mod cluster_spec;
pub mod engine;
pub mod fgd;
pub mod inventory;
pub mod plot;
pub mod report;
pub mod resilience;
pub mod trace;
pub mod workload;
