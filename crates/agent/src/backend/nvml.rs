//! NVIDIA devices through NVML, loaded at run time (`libnvidia-ml.so.1`), so that one binary runs on every
//! node: where the library is absent or finds no GPU, the backend reports no devices. XIDs arrive as NVML
//! events and are reported as `xid-N` faults; fatal ones stay until the agent restarts (after a reset).

use crate::device::{Backend, Device, Health, Probe};
use crate::parse::error;
use crate::xid;
use libloading::{Library, Symbol};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_uint, c_ulonglong, c_void};

type Ret = c_uint;
type Handle = *mut c_void;

const SUCCESS: Ret = 0;
const TIMEOUT: Ret = 10;
/// nvmlEventTypeXidCriticalError.
const EVENT_XID: c_ulonglong = 0x8;

#[repr(C)]
#[derive(Default)]
struct Memory {
    total: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

#[repr(C)]
#[derive(Default)]
struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

#[repr(C)]
struct EventData {
    device: Handle,
    event_type: c_ulonglong,
    event_data: c_ulonglong,
    gpu_instance: c_uint,
    compute_instance: c_uint,
}

/// The loaded library, initialized.
struct Loaded {
    lib: Library,
    events: Option<Handle>,
}

// SAFETY: NVML is thread-safe; the handles are only used through the library.
unsafe impl Send for Loaded {}

/// The NVML backend.
pub struct Nvml {
    loaded: Option<Loaded>,
    /// Why the library is not in use (for the agent's log).
    pub unavailable: Option<String>,
    /// Fatal XIDs seen per device index.
    sticky: BTreeMap<u32, Vec<u64>>,
    /// Whether the devices are registered for XID events.
    registered: bool,
}

impl Nvml {
    /// Loads and initializes NVML, or notes why it cannot be used.
    pub fn new() -> Nvml {
        match Self::load() {
            Ok(l) => Nvml {
                loaded: Some(l),
                unavailable: None,
                sticky: BTreeMap::new(),
                registered: false,
            },
            Err(why) => Nvml {
                loaded: None,
                unavailable: Some(why),
                sticky: BTreeMap::new(),
                registered: false,
            },
        }
    }

    fn load() -> Result<Loaded, String> {
        // SAFETY: loading NVML runs its initializers, which have no preconditions.
        let lib = unsafe { Library::new("libnvidia-ml.so.1") }
            .map_err(|e| format!("libnvidia-ml.so.1 not loaded: {e}"))?;
        let mut l = Loaded { lib, events: None };
        l.call0("nvmlInit_v2")?;
        let mut set: Handle = std::ptr::null_mut();
        // SAFETY: nvmlEventSetCreate(nvmlEventSet_t*) per nvml.h.
        if unsafe { l.sym::<unsafe extern "C" fn(*mut Handle) -> Ret>("nvmlEventSetCreate") }
            .map(|f| unsafe { f(&mut set) })
            == Ok(SUCCESS)
        {
            l.events = Some(set);
        }
        Ok(l)
    }
}

impl Default for Nvml {
    fn default() -> Self {
        Self::new()
    }
}

impl Loaded {
    /// A function of the library.
    ///
    /// # Safety
    /// `T` must be the function's C signature as nvml.h declares it.
    unsafe fn sym<T>(&self, name: &str) -> Result<Symbol<'_, T>, String> {
        unsafe { self.lib.get(name.as_bytes()) }.map_err(|e| format!("{name}: {e}"))
    }

    fn call0(&self, name: &str) -> Result<(), String> {
        // SAFETY: nvmlInit_v2 and nvmlShutdown take no arguments.
        let f = unsafe { self.sym::<unsafe extern "C" fn() -> Ret>(name) }?;
        match unsafe { f() } {
            SUCCESS => Ok(()),
            code => Err(format!("{name} returned NVML error {code}")),
        }
    }

    fn count(&self) -> Result<u32, String> {
        let mut n: c_uint = 0;
        // SAFETY: nvmlDeviceGetCount_v2(unsigned int*).
        let f = unsafe {
            self.sym::<unsafe extern "C" fn(*mut c_uint) -> Ret>("nvmlDeviceGetCount_v2")
        }?;
        match unsafe { f(&mut n) } {
            SUCCESS => Ok(n),
            code => Err(format!("nvmlDeviceGetCount_v2 returned NVML error {code}")),
        }
    }

    fn handle(&self, i: u32) -> Result<Handle, String> {
        let mut h: Handle = std::ptr::null_mut();
        // SAFETY: nvmlDeviceGetHandleByIndex_v2(unsigned int, nvmlDevice_t*).
        let f = unsafe {
            self.sym::<unsafe extern "C" fn(c_uint, *mut Handle) -> Ret>(
                "nvmlDeviceGetHandleByIndex_v2",
            )
        }?;
        match unsafe { f(i, &mut h) } {
            SUCCESS => Ok(h),
            code => Err(format!(
                "GPU {i}: nvmlDeviceGetHandleByIndex_v2 returned NVML error {code}"
            )),
        }
    }

    fn string(&self, name: &str, h: Handle) -> Option<String> {
        let mut buf = [0 as c_char; 96];
        // SAFETY: nvmlDeviceGetName / nvmlDeviceGetUUID(nvmlDevice_t, char*, unsigned int).
        let f =
            unsafe { self.sym::<unsafe extern "C" fn(Handle, *mut c_char, c_uint) -> Ret>(name) }
                .ok()?;
        if unsafe { f(h, buf.as_mut_ptr(), buf.len() as c_uint) } != SUCCESS {
            return None;
        }
        // SAFETY: NVML writes a NUL-terminated string into the buffer.
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        Some(s.to_string_lossy().into_owned())
    }

    fn out<T: Default>(&self, name: &str, h: Handle) -> Option<T> {
        let mut v = T::default();
        // SAFETY: the getters used here take (nvmlDevice_t, T*) with T as declared above.
        let f = unsafe { self.sym::<unsafe extern "C" fn(Handle, *mut T) -> Ret>(name) }.ok()?;
        (unsafe { f(h, &mut v) } == SUCCESS).then_some(v)
    }

    fn temperature(&self, h: Handle) -> Option<u32> {
        let mut t: c_uint = 0;
        // SAFETY: nvmlDeviceGetTemperature(nvmlDevice_t, nvmlTemperatureSensors_t (0: GPU), unsigned int*).
        let f = unsafe {
            self.sym::<unsafe extern "C" fn(Handle, c_uint, *mut c_uint) -> Ret>(
                "nvmlDeviceGetTemperature",
            )
        }
        .ok()?;
        (unsafe { f(h, 0, &mut t) } == SUCCESS).then_some(t)
    }

    fn ecc(&self, h: Handle, uncorrected: bool) -> Option<u64> {
        let mut n: c_ulonglong = 0;
        // SAFETY: nvmlDeviceGetTotalEccErrors(nvmlDevice_t, nvmlMemoryErrorType_t, nvmlEccCounterType_t
        // (0: volatile), unsigned long long*).
        let f = unsafe {
            self.sym::<unsafe extern "C" fn(Handle, c_uint, c_uint, *mut c_ulonglong) -> Ret>(
                "nvmlDeviceGetTotalEccErrors",
            )
        }
        .ok()?;
        (unsafe { f(h, uncorrected as c_uint, 0, &mut n) } == SUCCESS).then_some(n)
    }

    fn register_xids(&self, h: Handle) {
        let Some(set) = self.events else { return };
        // SAFETY: nvmlDeviceRegisterEvents(nvmlDevice_t, unsigned long long, nvmlEventSet_t).
        if let Ok(f) = unsafe {
            self.sym::<unsafe extern "C" fn(Handle, c_ulonglong, Handle) -> Ret>(
                "nvmlDeviceRegisterEvents",
            )
        } {
            unsafe { f(h, EVENT_XID, set) };
        }
    }

    /// XIDs waiting in the event set, as (device handle, xid).
    fn drain_xids(&self) -> Vec<(Handle, u64)> {
        let Some(set) = self.events else {
            return Vec::new();
        };
        // SAFETY: nvmlEventSetWait_v2(nvmlEventSet_t, nvmlEventData_t*, unsigned int timeout_ms).
        let Ok(f) = (unsafe {
            self.sym::<unsafe extern "C" fn(Handle, *mut EventData, c_uint) -> Ret>(
                "nvmlEventSetWait_v2",
            )
        }) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        loop {
            let mut e = EventData {
                device: std::ptr::null_mut(),
                event_type: 0,
                event_data: 0,
                gpu_instance: 0,
                compute_instance: 0,
            };
            match unsafe { f(set, &mut e, 0) } {
                SUCCESS if e.event_type == EVENT_XID => out.push((e.device, e.event_data)),
                SUCCESS => {}
                TIMEOUT => break,
                _ => break,
            }
            if out.len() > 1024 {
                break;
            }
        }
        out
    }
}

impl Backend for Nvml {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn probe(&mut self) -> Probe {
        let mut probe = Probe::default();
        let Some(l) = &self.loaded else {
            return probe;
        };
        let n = match l.count() {
            Ok(n) => n,
            Err(e) => {
                probe.errors.push(error("nvml", 0, "", &e));
                return probe;
            }
        };
        let mut handles = Vec::new();
        for i in 0..n {
            let h = match l.handle(i) {
                Ok(h) => h,
                Err(e) => {
                    // A GPU that fell off the bus still counts: report it failed.
                    let mut d = Device::new(i);
                    d.flag(Health::Critical, "nvml-unreachable");
                    probe.devices.push(d);
                    probe.errors.push(error("nvml", 0, "", &e));
                    continue;
                }
            };
            if !self.registered {
                l.register_xids(h);
            }
            handles.push((i, h));
            let mut d = Device::new(i);
            d.name = l.string("nvmlDeviceGetName", h);
            d.uuid = l.string("nvmlDeviceGetUUID", h);
            if let Some(m) = l.out::<Memory>("nvmlDeviceGetMemoryInfo", h) {
                d.memory_total_mib = Some(m.total >> 20);
                d.memory_used_mib = Some(m.used >> 20);
            }
            d.utilization = l
                .out::<Utilization>("nvmlDeviceGetUtilizationRates", h)
                .map(|u| u.gpu as f64);
            d.temperature_c = l.temperature(h).map(f64::from);
            d.power_w = l
                .out::<c_uint>("nvmlDeviceGetPowerUsage", h)
                .map(|mw| mw as f64 / 1000.0);
            d.ecc_corrected = l.ecc(h, false);
            d.ecc_uncorrected = l.ecc(h, true);
            probe.devices.push(d);
        }
        self.registered = true;
        for (h, x) in l.drain_xids() {
            let Some(&(i, _)) = handles.iter().find(|(_, hh)| *hh == h) else {
                continue;
            };
            let d = probe.device(i);
            d.flag(xid::health(x), format!("xid-{x}"));
            if xid::health(x) >= Health::Alarm {
                self.sticky.entry(i).or_default().push(x);
            }
        }
        for (i, xids) in &self.sticky {
            let d = probe.device(*i);
            for x in xids {
                let f = format!("xid-{x}");
                if !d.faults.contains(&f) {
                    d.flag(xid::health(*x), f);
                }
            }
        }
        probe
    }
}
