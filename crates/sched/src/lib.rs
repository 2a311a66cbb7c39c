//! wanka's scheduler core: a pure, deterministic pipeline from cluster state to decisions.
//!
//! The [`Scheduler`] keeps nodes, running allocations, the queue and tenants in memory, takes [`Event`]s and
//! the current time, and returns a [`Plan`] of decisions per cycle. The pipeline's stages each live in
//! their own module: [`queue`] order and [`fair_share`], feasibility [`filter`]s, heterogeneity-aware
//! model [`choice`], topology-aware [`placement`] with [`score`]rs, [`backfill`] reservations and
//! [`preempt`]ion. No I/O, no clock, no randomness: the server and the simulator drive the same code.

pub mod backfill;
pub mod choice;
pub mod cluster;
pub mod config;
mod cycle;
pub mod decision;
pub mod fair_share;
pub mod filter;
pub mod fragmentation;
pub mod fxhash;
pub mod lease;
pub mod placement;
pub mod pool;
pub mod preempt;
pub mod profile;
pub mod queue;
pub mod risk;
pub mod scheduler;
pub mod score;
pub mod snapshot;

pub use config::{Config, ConfigError, LeaseConfig};
pub use decision::{CycleStats, Decision, PendingReason, Plan, PreemptCause};
pub use filter::Explanation;
pub use scheduler::{CoreError, Event, JobStatus, ReservationView, Scheduler};
pub use snapshot::Snapshot;
