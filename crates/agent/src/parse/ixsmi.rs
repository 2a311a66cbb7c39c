//! Iluvatar CoreX's `ixsmi` (nvidia-smi's layout): a box table of two rows per GPU, power often `N/A / N/A`.

use super::box_devices;
use crate::device::Probe;

/// Parses `ixsmi`.
pub fn parse(text: &str) -> Probe {
    box_devices("ixsmi", text, "GPU", "GPU-Util", |_, _| {})
}
