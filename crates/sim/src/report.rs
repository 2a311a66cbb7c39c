//! Metrics of a run and the report: a Markdown table, `report.json` and SVG plots.

use crate::engine::{Outcome, Sample};
use crate::plot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use wanka_model::{Tenant, Time};

/// Version of the `report.json` layout.
pub const SCHEMA: u32 = 1;

/// Mean, median and 99th percentile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Stats {
    fn of(values: &mut [f64]) -> Stats {
        if values.is_empty() {
            return Stats::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Stats {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            median: at(0.5),
            p99: at(0.99),
        }
    }
}

/// One tenant's service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantReport {
    /// Name.
    pub name: String,
    /// Jobs submitted.
    pub jobs: usize,
    /// Device-hours held.
    pub device_hours: f64,
    /// Share of all device-hours held.
    pub share: f64,
    /// Mean job completion time, seconds.
    pub mean_jct_s: f64,
    /// Mean slowdown: completion time / time holding devices.
    pub mean_slowdown: f64,
}

/// How leases were honored and lent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaseReport {
    /// Device-hours held, by whose capacity (`leased`, `on-demand`, `borrowed`).
    pub device_hours: BTreeMap<String, f64>,
    /// Borrowed runs reclaimed by their lessee.
    pub reclaims: u64,
    /// Borrowed runs moved to let a blocked job find its devices together.
    pub repacks: u64,
    /// Starts within a lease that had to wait for the capacity.
    pub waited: usize,
    /// Their waits since the lease had room for the job, seconds.
    pub wait_s: Stats,
    /// The longest wait, seconds.
    pub max_wait_s: f64,
    /// The reclaim grace, seconds.
    pub grace_s: f64,
    /// Starts within a lease that waited longer than the grace: guarantees not honored in time.
    pub violations: usize,
}

/// A time series, downsampled to buckets of equal length (time-weighted averages).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Series {
    /// Bucket starts, seconds.
    pub t_s: Vec<f64>,
    /// Allocated share of devices.
    pub allocation: Vec<f64>,
    /// Normalized work done / normalized capacity.
    pub utilization: Vec<f64>,
}

/// The metrics of one policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyReport {
    /// Policy name.
    pub policy: String,
    /// Jobs in the workload.
    pub jobs: usize,
    /// Jobs that completed.
    pub completed: usize,
    /// Jobs that never started (no placement ever existed for them).
    pub never_started: usize,
    /// Job completion time (arrival to end), seconds, completed jobs.
    pub jct_s: Stats,
    /// Queueing delay (arrival to first start), seconds, started jobs.
    pub queue_s: Stats,
    /// First arrival to last completion, seconds.
    pub makespan_s: f64,
    /// Time-weighted mean share of devices allocated, first arrival to last completion.
    pub allocation_ratio: f64,
    /// The same from the first arrival to the last arrival (while work keeps coming).
    pub allocation_while_arriving: f64,
    /// Time-weighted mean normalized work done / normalized capacity.
    pub utilization: f64,
    /// Time-weighted mean normalized device-seconds done per second.
    pub goodput_nds_per_s: f64,
    /// Time-weighted mean share of devices free while jobs waited (capacity no pending job could use).
    pub fragmentation: f64,
    /// Time-weighted mean share of devices allocated while jobs waited.
    pub allocation_while_waiting: f64,
    /// Time-weighted mean share of devices allocated while saturated: the waiting jobs asked for at least as
    /// many devices as were free.
    pub allocation_saturated: f64,
    /// Share of the time (first arrival to last completion) the cluster was saturated.
    pub saturated_time: f64,
    /// Per model: the share of its devices allocated while saturated (where idle capacity sat).
    pub allocation_saturated_by_model: BTreeMap<String, f64>,
    /// Leases, guarantees and lending, when the workload had leases.
    pub leases: Option<LeaseReport>,
    /// Preemptions.
    pub preemptions: u64,
    /// Device-hours spent checkpointing and restarting because of preemption.
    pub lost_device_hours: f64,
    /// Jain's index over the tenants' mean slowdowns (1 = perfectly even).
    pub fairness_jain: f64,
    /// Per tenant.
    pub tenants: Vec<TenantReport>,
    /// Scheduling cycles run.
    pub cycles: u64,
    /// Of those, full cycles.
    pub full_cycles: u64,
    /// Allocation and utilization over time.
    pub series: Series,
    /// Completion-time CDF: (seconds, fraction of completed jobs).
    pub jct_cdf: Vec<(f64, f64)>,
}

/// What was simulated.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Inputs {
    /// Cluster description (spec or node list).
    pub cluster: String,
    /// Nodes.
    pub nodes: usize,
    /// Devices.
    pub devices: u64,
    /// Devices per model.
    pub models: Vec<(String, u64)>,
    /// Workload description (trace file and format).
    pub workload: String,
    /// Jobs.
    pub jobs: usize,
    /// Settings that shape the run (speed, cadence, checkpoint and restart times).
    pub settings: Vec<(String, String)>,
    /// Assumptions the readers made.
    pub notes: Vec<String>,
}

/// The whole report (`report.json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Layout version.
    pub schema: u32,
    /// What was simulated.
    pub inputs: Inputs,
    /// One entry per policy, in the order asked for.
    pub policies: Vec<PolicyReport>,
}

/// Time-weighted average of a step function given by samples over [from, to).
fn weighted(samples: &[Sample], from: Time, to: Time, value: impl Fn(&Sample) -> f64) -> f64 {
    let span = (to - from).as_secs_f64();
    if span <= 0.0 || samples.is_empty() {
        return 0.0;
    }
    let mut sum = 0.0;
    for (i, s) in samples.iter().enumerate() {
        let start = s.t.max(from);
        let end = samples.get(i + 1).map_or(to, |n| n.t).min(to);
        if end > start {
            sum += value(s) * (end - start).as_secs_f64();
        }
    }
    sum / span
}

fn series(o: &Outcome, from: Time, to: Time, buckets: usize) -> Series {
    let mut out = Series::default();
    if to <= from {
        return out;
    }
    let width = ((to - from).0 / buckets as i64).max(1);
    let mut start = from;
    while start < to {
        let end = Time((start.0 + width).min(to.0));
        out.t_s.push(start.as_secs_f64() - from.as_secs_f64());
        out.allocation.push(weighted(&o.samples, start, end, |s| {
            s.alloc_milli as f64 / o.capacity_milli as f64
        }));
        out.utilization.push(weighted(&o.samples, start, end, |s| {
            s.goodput / o.capacity_nds
        }));
        start = end;
    }
    out
}

/// Mean allocated share over the time `when` holds, and the share of time it holds.
fn allocation_when(
    o: &Outcome,
    from: Time,
    to: Time,
    when: impl Fn(&Sample) -> bool,
) -> (f64, f64) {
    let share = weighted(&o.samples, from, to, |s| f64::from(u8::from(when(s))));
    let alloc = weighted(&o.samples, from, to, |s| {
        if when(s) {
            s.alloc_milli as f64 / o.capacity_milli as f64
        } else {
            0.0
        }
    });
    (if share > 0.0 { alloc / share } else { 0.0 }, share)
}

fn lease_report(o: &Outcome, grace_s: f64) -> LeaseReport {
    let mut waits = o.lease_waits.clone();
    LeaseReport {
        device_hours: o
            .device_s_by_kind
            .iter()
            .map(|(k, s)| (k.name().to_string(), s / 3600.0))
            .collect(),
        reclaims: o.reclaims,
        repacks: o.repacks,
        waited: waits.len(),
        max_wait_s: waits.iter().copied().fold(0.0, f64::max),
        violations: waits.iter().filter(|w| **w > grace_s).count(),
        wait_s: Stats::of(&mut waits),
        grace_s,
    }
}

fn jain(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    if sq == 0.0 {
        1.0
    } else {
        sum * sum / (xs.len() as f64 * sq)
    }
}

/// Summarizes one run.
pub fn summarize(o: &Outcome, tenants: &[Tenant]) -> PolicyReport {
    let completed: Vec<_> = o.jobs.iter().filter(|j| j.end.is_some()).collect();
    let mut jct: Vec<f64> = completed
        .iter()
        .map(|j| (j.end.unwrap() - j.arrival).as_secs_f64())
        .collect();
    let mut queue: Vec<f64> = o
        .jobs
        .iter()
        .filter_map(|j| j.first_start.map(|s| (s - j.arrival).as_secs_f64()))
        .collect();
    let first = o.jobs.iter().map(|j| j.arrival).min().unwrap_or_default();
    let last = o.jobs.iter().filter_map(|j| j.end).max().unwrap_or(first);
    let last_arrival = o.jobs.iter().map(|j| j.arrival).max().unwrap_or(first);
    let total_held: f64 = o
        .jobs
        .iter()
        .map(|j| j.held_s * j.device_milli as f64 / 1000.0)
        .sum();
    let tenant_reports: Vec<TenantReport> = tenants
        .iter()
        .map(|t| {
            let mine: Vec<_> = o.jobs.iter().filter(|j| j.tenant == t.id).collect();
            let done: Vec<_> = mine.iter().filter(|j| j.end.is_some()).collect();
            let held: f64 = mine
                .iter()
                .map(|j| j.held_s * j.device_milli as f64 / 1000.0)
                .sum();
            let mean = |f: &dyn Fn(&&&crate::engine::JobOutcome) -> f64| {
                if done.is_empty() {
                    0.0
                } else {
                    done.iter().map(f).sum::<f64>() / done.len() as f64
                }
            };
            TenantReport {
                name: t.name.clone(),
                jobs: mine.len(),
                device_hours: held / 3600.0,
                share: if total_held > 0.0 {
                    held / total_held
                } else {
                    0.0
                },
                mean_jct_s: mean(&|j| (j.end.unwrap() - j.arrival).as_secs_f64()),
                mean_slowdown: mean(&|j| {
                    (j.end.unwrap() - j.arrival).as_secs_f64() / j.held_s.max(1e-6)
                }),
            }
        })
        .collect();
    let slowdowns: Vec<f64> = tenant_reports
        .iter()
        .filter(|t| t.jobs > 0)
        .map(|t| t.mean_slowdown)
        .collect();
    let mut cdf_x = jct.clone();
    cdf_x.sort_by(f64::total_cmp);
    let points = 200.min(cdf_x.len());
    let jct_cdf = (1..=points)
        .map(|k| {
            let i = (k * cdf_x.len()).div_ceil(points) - 1;
            (cdf_x[i], (i + 1) as f64 / cdf_x.len() as f64)
        })
        .collect();
    PolicyReport {
        policy: o.name.clone(),
        jobs: o.jobs.len(),
        completed: completed.len(),
        never_started: o.jobs.iter().filter(|j| j.first_start.is_none()).count(),
        jct_s: Stats::of(&mut jct),
        queue_s: Stats::of(&mut queue),
        makespan_s: (last - first).as_secs_f64(),
        allocation_ratio: weighted(&o.samples, first, last, |s| {
            s.alloc_milli as f64 / o.capacity_milli as f64
        }),
        allocation_while_arriving: weighted(&o.samples, first, last_arrival, |s| {
            s.alloc_milli as f64 / o.capacity_milli as f64
        }),
        utilization: weighted(&o.samples, first, last, |s| s.goodput / o.capacity_nds),
        goodput_nds_per_s: weighted(&o.samples, first, last, |s| s.goodput),
        fragmentation: weighted(&o.samples, first, last, |s| {
            s.idle_while_waiting_milli as f64 / o.capacity_milli as f64
        }),
        allocation_while_waiting: allocation_when(o, first, last, |s| s.pending > 0).0,
        allocation_saturated: allocation_when(o, first, last, |s| {
            s.pending > 0 && s.demand_milli >= o.capacity_milli - s.alloc_milli
        })
        .0,
        allocation_saturated_by_model: o.saturated_by_model.clone(),
        saturated_time: allocation_when(o, first, last, |s| {
            s.pending > 0 && s.demand_milli >= o.capacity_milli - s.alloc_milli
        })
        .1,
        leases: o
            .lease_grace
            .map(|grace| lease_report(o, grace.as_secs_f64())),
        preemptions: o.jobs.iter().map(|j| j.preemptions as u64).sum(),
        lost_device_hours: o.lost_device_s / 3600.0,
        fairness_jain: jain(&slowdowns),
        tenants: tenant_reports,
        cycles: o.cycles.0,
        full_cycles: o.cycles.1,
        series: series(o, first, last, 400),
        jct_cdf,
    }
}

fn hours(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.2} h", s / 3600.0)
    } else {
        format!("{s:.0} s")
    }
}

/// The Markdown table of a report, with the wall time and peak memory of each policy's run appended.
pub fn markdown(r: &Report, wall_s: &[f64]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| policy | done | avg JCT | median JCT | p99 JCT | avg queue | makespan | alloc | alloc (arrivals) | util | frag | preempt | lost dev-h | Jain | cycles | wall |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, p) in r.policies.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {}/{} | {} | {} | {} | {} | {} | {:.1}% | {:.1}% | {:.1}% | {:.1}% | {} | {:.1} | {:.3} | {} | {} |",
            p.policy,
            p.completed,
            p.jobs,
            hours(p.jct_s.mean),
            hours(p.jct_s.median),
            hours(p.jct_s.p99),
            hours(p.queue_s.mean),
            hours(p.makespan_s),
            p.allocation_ratio * 100.0,
            p.allocation_while_arriving * 100.0,
            p.utilization * 100.0,
            p.fragmentation * 100.0,
            p.preemptions,
            p.lost_device_hours,
            p.fairness_jain,
            p.cycles,
            wall_s.get(i).map_or("-".into(), |w| format!("{w:.2} s")),
        );
    }
    out
}

/// The lease table (allocation under saturation, kinds of capacity, reclaims and guarantee violations) and
/// per-tenant completion times side by side, when the runs had leases. `leased[i]` is tenant i's devices.
pub fn lease_markdown(r: &Report, leased: &[u32]) -> Option<String> {
    let runs: Vec<(&PolicyReport, &LeaseReport)> = r
        .policies
        .iter()
        .filter_map(|p| p.leases.as_ref().map(|l| (p, l)))
        .collect();
    if runs.is_empty() {
        return None;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| policy | done | never started | alloc (all) | alloc saturated (share of time) | alloc while jobs wait | util | leased dev-h | borrowed dev-h | on-demand dev-h | reclaims | moves | owed waits | wait p50 / p99 / max | violations (> {:.0} s grace) |",
        runs[0].1.grace_s
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (p, l) in &runs {
        let h = |k: &str| l.device_hours.get(k).copied().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "| {} | {}/{} | {} | {:.1}% | {:.1}% ({:.0}%) | {:.1}% | {:.1}% | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} / {} / {} | {} |",
            p.policy,
            p.completed,
            p.jobs,
            p.never_started,
            p.allocation_ratio * 100.0,
            p.allocation_saturated * 100.0,
            p.saturated_time * 100.0,
            p.allocation_while_waiting * 100.0,
            p.utilization * 100.0,
            h("leased"),
            h("borrowed"),
            h("on-demand"),
            l.reclaims,
            l.repacks,
            l.waited,
            hours(l.wait_s.median),
            hours(l.wait_s.p99),
            hours(l.max_wait_s),
            l.violations,
        );
    }
    let _ = writeln!(out);
    for (p, _) in &runs {
        let models: Vec<String> = p
            .allocation_saturated_by_model
            .iter()
            .map(|(m, a)| format!("{m} {:.1}%", a * 100.0))
            .collect();
        let _ = writeln!(
            out,
            "{}: alloc saturated by model: {}  ",
            p.policy,
            models.join(", ")
        );
    }
    let _ = writeln!(out);
    let _ = write!(out, "| tenant | jobs | leased devices |");
    for (p, _) in &runs {
        let _ = write!(out, " {} avg JCT |", p.policy);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "|---|---|---|{}", "---|".repeat(runs.len()));
    for (i, t) in runs[0].0.tenants.iter().enumerate() {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            t.name,
            t.jobs,
            leased.get(i).copied().unwrap_or(0)
        );
        for (p, _) in &runs {
            let _ = write!(out, " {} |", hours(p.tenants[i].mean_jct_s));
        }
        let _ = writeln!(out);
    }
    Some(out)
}

/// SVG plots: allocation over time per policy, and the completion-time CDF per policy.
pub fn plots(r: &Report) -> [(&'static str, String); 2] {
    let alloc: Vec<(String, Vec<(f64, f64)>)> = r
        .policies
        .iter()
        .map(|p| {
            let pts = p
                .series
                .t_s
                .iter()
                .zip(&p.series.allocation)
                .map(|(t, a)| (t / 3600.0, a * 100.0))
                .collect();
            (p.policy.clone(), pts)
        })
        .collect();
    let cdf: Vec<(String, Vec<(f64, f64)>)> = r
        .policies
        .iter()
        .map(|p| {
            (
                p.policy.clone(),
                p.jct_cdf
                    .iter()
                    .map(|(x, y)| (x.max(1.0), y * 100.0))
                    .collect(),
            )
        })
        .collect();
    [
        (
            "allocation.svg",
            plot::lines(
                "Devices allocated over time",
                "hours since the first arrival",
                "% of devices",
                &alloc,
                false,
            ),
        ),
        (
            "jct_cdf.svg",
            plot::lines(
                "Job completion time CDF",
                "completion time, seconds (log)",
                "% of completed jobs",
                &cdf,
                true,
            ),
        ),
    ]
}
