//! wanka's node agent: it finds the node's accelerators (NVML, the vendors' tools, or simulated devices),
//! registers the node with the server, heartbeats their health, runs the processes of the jobs placed on it
//! and ships their output.

pub mod agent;
pub mod backend;
pub mod device;
pub mod parse;
pub mod process;
pub mod progress;
pub mod ship;
pub mod task;
pub mod xid;
