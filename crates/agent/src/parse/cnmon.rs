//! Cambricon's `cnmon` (the default view): a box table of two rows per MLU, whose columns moved between
//! 4.x (`Inited Driver`, `vMemory-Usage`) and 5.x (`Bus-Id`, `SR-IOV Compute-Mode`).

use super::{box_devices, int};
use crate::device::{Health, Probe};

/// Parses `cnmon`.
pub fn parse(text: &str) -> Probe {
    box_devices("cnmon", text, "Card", "Util", |r, d| {
        // cnmon's Ecc-Error counts uncorrectable errors; N/A where ECC is not reported.
        d.ecc_uncorrected = r.get("Ecc-Error").and_then(|v| int(v));
        if d.ecc_uncorrected.is_some_and(|n| n > 0) {
            d.flag(Health::Alarm, "ecc-uncorrectable");
        }
    })
}
