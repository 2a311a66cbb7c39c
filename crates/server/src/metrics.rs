//! Prometheus metrics: jobs by state, devices by model and state, nodes by state, the scheduling cycle's
//! duration and the API's latency. Gauges are refreshed from the state when scraped.

use crate::state::{Core, node_state_name};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wanka_api::{JobState, NodeState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceLabels {
    model: String,
    state: String,
}

/// Labels of one API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// HTTP method.
    pub method: String,
    /// The route's pattern (not the raw path, so ids do not explode the label space).
    pub route: String,
    /// Status code.
    pub status: u16,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    jobs: Family<StateLabel, Gauge>,
    nodes: Family<StateLabel, Gauge>,
    devices: Family<DeviceLabels, Gauge>,
    /// Duration of scheduling cycles (the core's decision time), seconds.
    cycle: Histogram,
    /// Cycles and their total time in nanoseconds (the histogram does not expose its totals).
    cycle_totals: (AtomicU64, AtomicU64),
    /// Jobs started by the scheduler.
    pub started: Counter,
    /// API latency by route.
    pub api: Family<ApiLabels, Histogram, fn() -> Histogram>,
    /// Effective training time: productive and wall seconds over the jobs that report progress.
    training: Family<KindLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Time owners waited for leased capacity (reclaim included): count, sum and max.
    reclaim: Family<KindLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

/// Which figure of a family.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("wanka");
        let jobs = Family::<StateLabel, Gauge>::default();
        let nodes = Family::<StateLabel, Gauge>::default();
        let devices = Family::<DeviceLabels, Gauge>::default();
        let cycle = latency_histogram();
        let started = Counter::default();
        let api = Family::<ApiLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register("jobs", "Jobs by state", jobs.clone());
        registry.register("nodes", "Nodes by state", nodes.clone());
        registry.register(
            "devices",
            "Accelerators by model and state (allocated, free, unhealthy, unavailable)",
            devices.clone(),
        );
        registry.register(
            "scheduling_cycle_seconds",
            "Time the scheduler core takes to decide one cycle",
            cycle.clone(),
        );
        registry.register("jobs_started", "Job runs started", started.clone());
        let training = Family::<KindLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "training_seconds",
            "Jobs reporting progress: productive seconds (steps beyond their previous maximum) and wall \
             seconds since their first start; ETTR is productive / wall",
            training.clone(),
        );
        let reclaim = Family::<KindLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "lease_reclaim_seconds",
            "Starts within a lease that had to wait for the capacity (borrowers reclaimed): count, and the \
             sum and max of the waits from the moment the lease had room for the job",
            reclaim.clone(),
        );
        registry.register(
            "api_request_duration_seconds",
            "API request latency by route",
            api.clone(),
        );
        Metrics {
            registry,
            jobs,
            nodes,
            devices,
            cycle,
            cycle_totals: (AtomicU64::new(0), AtomicU64::new(0)),
            started,
            api,
            training,
            reclaim,
        }
    }
}

impl Metrics {
    /// Records one scheduling cycle.
    pub fn record_cycle(&self, took: Duration) {
        self.cycle.observe(took.as_secs_f64());
        self.cycle_totals.0.fetch_add(1, Ordering::Relaxed);
        self.cycle_totals
            .1
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Cycles so far and their total time.
    pub fn cycle_totals(&self) -> (u64, Duration) {
        (
            self.cycle_totals.0.load(Ordering::Relaxed),
            Duration::from_nanos(self.cycle_totals.1.load(Ordering::Relaxed)),
        )
    }

    /// The text exposition, with gauges refreshed from `core`.
    pub fn render(&self, core: &Core) -> String {
        let (productive, wall) = core.ettr_totals();
        for (kind, v) in [("productive", productive), ("wall", wall)] {
            self.training
                .get_or_create(&KindLabel { kind: kind.into() })
                .set(v);
        }
        let r = core.reclaim;
        for (kind, v) in [
            ("count", r.count as f64),
            ("sum", r.sum_s),
            ("max", r.max_s),
        ] {
            self.reclaim
                .get_or_create(&KindLabel { kind: kind.into() })
                .set(v);
        }
        self.jobs.clear();
        let mut by_state: BTreeMap<&str, i64> =
            JobState::ALL.iter().map(|s| (s.name(), 0)).collect();
        for r in core.jobs.values() {
            *by_state.entry(r.state.name()).or_default() += 1;
        }
        for (state, n) in by_state {
            self.jobs
                .get_or_create(&StateLabel {
                    state: state.to_string(),
                })
                .set(n);
        }
        self.nodes.clear();
        self.devices.clear();
        let allocated = core.allocated_devices();
        let mut devices: BTreeMap<(String, &str), i64> = BTreeMap::new();
        let mut nodes: BTreeMap<&str, i64> = BTreeMap::new();
        for (name, n) in &core.nodes {
            let state = n.state();
            *nodes.entry(node_state_name(state)).or_default() += 1;
            let total = i64::from(n.registration.devices);
            let unhealthy = n.unhealthy.len() as i64;
            let used = i64::from(allocated.get(name.as_str()).copied().unwrap_or(0));
            let rest = (total - unhealthy - used).max(0);
            let model = n.registration.model.clone();
            *devices.entry((model.clone(), "allocated")).or_default() += used;
            *devices.entry((model.clone(), "unhealthy")).or_default() += unhealthy;
            let idle = if state == NodeState::Ready {
                "free"
            } else {
                "unavailable"
            };
            *devices.entry((model, idle)).or_default() += rest;
        }
        for (state, n) in nodes {
            self.nodes
                .get_or_create(&StateLabel {
                    state: state.to_string(),
                })
                .set(n);
        }
        for ((model, state), n) in devices {
            self.devices
                .get_or_create(&DeviceLabels {
                    model,
                    state: state.to_string(),
                })
                .set(n);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
