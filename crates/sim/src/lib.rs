//! wanka's simulator side: cluster descriptions and real trace readers that feed the scheduler core.

pub mod cluster_spec;
pub mod inventory;
pub mod trace;
