//! wanka's domain model: the accelerator catalog, performance normalization, nodes, tenants, jobs and
//! allocations. Plain data with serde; no I/O (files are read by the binaries and handed in as text).

pub mod alloc;
pub mod calendar;
pub mod catalog;
pub mod fault_book;
pub mod job;
pub mod lease;
pub mod node;
pub mod tenant;
pub mod throughput;
pub mod units;

pub use alloc::{Allocation, ReplicaPlacement};
pub use catalog::{
    AcceleratorModel, Catalog, CatalogError, ModelId, Stack, UnknownModel, UnknownStack, Vendor,
};
pub use fault_book::{Action, FaultBook, FaultBookError};
pub use job::{JobError, JobId, JobSpec, PriorityClass, UnknownClass};
pub use lease::{Lease, LeaseId, UsageKind, Within};
pub use node::{NodeError, NodeId, NodeSpec, Topology};
pub use tenant::{Tenant, TenantId};
pub use throughput::{Performance, ThroughputMatrix};
pub use units::{Span, Time};
