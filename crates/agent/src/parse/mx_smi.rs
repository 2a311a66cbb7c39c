//! MetaX's `mx-smi` (the default view): a box table of two rows per GPU; 2.1.x prints `GPU NAME` and
//! `Temp Power`, 2.2.x adds the board, persistence mode, sGPU mode, performance state and a GPU state.
//! Topology (`mx-smi topo -m/-n`) is read by [`super::topology`].

use super::box_devices;
use crate::device::{Health, Probe};

/// Parses `mx-smi`.
pub fn parse(text: &str) -> Probe {
    box_devices("mx-smi", text, "GPU", "GPU-Util", |r, d| {
        match r.get("GPU-State").map(String::as_str) {
            None | Some("Available") => {}
            Some(state) => d.flag(Health::Alarm, format!("mx-smi state {state}")),
        }
    })
}
