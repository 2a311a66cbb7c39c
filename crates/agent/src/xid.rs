//! What an NVIDIA XID says about a device, on the common health scale, after NVIDIA's XID catalog and
//! its recommended actions. Application errors leave the device healthy; errors that need a GPU reset or a
//! node drain take it out of service.

use crate::device::Health;

/// The health an XID implies.
pub fn health(xid: u64) -> Health {
    match xid {
        // Application faults (bad memory access, illegal instruction, ...): the job failed, the GPU did not.
        13 | 31 | 43 | 45 | 68 | 69 => Health::Ok,
        // Row remapping or page retirement pending, link error corrected: precursors.
        63 | 64 | 92 | 94 => Health::Warning,
        // Double-bit ECC, uncontained errors, GSP or NVLink faults: reset the GPU before reuse.
        48 | 61 | 62 | 74 | 95 | 109 | 119 | 120 | 140 => Health::Alarm,
        // Fallen off the bus, or memory that can no longer be remapped: drain.
        79 | 154 => Health::Critical,
        _ => Health::Warning,
    }
}
