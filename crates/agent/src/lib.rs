//! wanka's node agent: it finds the node's accelerators (NVML, the vendors' tools, or simulated devices),
//! registers the node with the server, heartbeats their health, runs the processes of the jobs placed on it
//! and ships their output.

pub mod device;
pub mod parse;
