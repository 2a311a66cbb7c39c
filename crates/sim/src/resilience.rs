//! Fault tolerance of one large training job over weeks: node failures from a failure model (per-class rates, a
//! share with detectable precursors and their lead time, repairs, a few "lemon" nodes) or from a real fault
//! log, and the job's life under two recovery policies, measured as its effective training time ratio (ETTR)
//! next to the analytic model:
//!
//! * `reactive`: Slurm-like requeue. A failure is noticed after the node timeout, every process restarts, the
//!   job waits for a replacement node to come free from the background tenants' work, then restarts from its
//!   last checkpoint.
//! * `wanka`: what the server does. Each failing node reports its fault (and, before a failure that has one,
//!   its precursor) to the same risk engine and fault book the server runs; a precursor seen early enough is
//!   answered by a checkpoint and a move to a hot spare (no work lost), a failure by an immediate restart on a
//!   hot spare from the last checkpoint; nodes that keep failing are quarantined. Repaired nodes refill the
//!   spare pool.
//!
//! Deterministic: one seed, no clock.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use wanka_model::{Action, FaultBook, Time};
use wanka_sched::risk::{Reading, RiskEngine};

/// One class of node failure.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureClass {
    /// Name for reports.
    pub name: &'static str,
    /// Share of all failures.
    pub share: f64,
    /// Share of this class's failures that announce themselves (correctable ECC rising, link flaps, heat).
    pub precursor: f64,
    /// What the node reports when it fails (a fault word of the fault book).
    pub fault: &'static str,
}

/// The failure model.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureModel {
    /// Failures per 1000 node-days for an ordinary node.
    pub rate: f64,
    /// Classes; shares sum to 1.
    pub classes: Vec<FailureClass>,
    /// Mean lead time of a precursor before its failure, seconds.
    pub lead_s: f64,
    /// Mean repair time, seconds.
    pub repair_s: f64,
    /// Nodes of the job that fail far more often than the rest.
    pub lemons: u32,
    /// How much more often.
    pub lemon_factor: f64,
}

impl FailureModel {
    /// The default model: the rate given, split across classes after Llama 3's interruption breakdown (GPU
    /// faults and HBM about 58%, software about 13%, network about 10%, host about 8%, the rest folded in).
    pub fn with_rate(rate: f64) -> FailureModel {
        FailureModel {
            rate,
            classes: vec![
                FailureClass {
                    name: "GPU compute",
                    share: 0.35,
                    precursor: 0.2,
                    fault: "xid-79",
                },
                FailureClass {
                    name: "GPU memory",
                    share: 0.25,
                    precursor: 0.6,
                    fault: "xid-95",
                },
                FailureClass {
                    name: "software",
                    share: 0.15,
                    precursor: 0.0,
                    fault: "xid-109",
                },
                FailureClass {
                    name: "network",
                    share: 0.12,
                    precursor: 0.3,
                    fault: "xid-74",
                },
                FailureClass {
                    name: "host",
                    share: 0.13,
                    precursor: 0.2,
                    fault: "missing",
                },
            ],
            lead_s: 1800.0,
            repair_s: 2.0 * 86400.0,
            lemons: 4,
            lemon_factor: 20.0,
        }
    }

    /// Share of failures with a precursor.
    pub fn precursor_share(&self) -> f64 {
        self.classes.iter().map(|c| c.share * c.precursor).sum()
    }
}

/// The recovery policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Slurm-like requeue.
    Reactive,
    /// Risk engine, precursors first, hot spares.
    Wanka,
}

impl Policy {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Reactive => "reactive",
            Policy::Wanka => "wanka",
        }
    }
}

/// The experiment's world.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Nodes the job spans (8 accelerators each).
    pub nodes: u32,
    /// Simulated time, seconds.
    pub horizon_s: f64,
    /// Blocking checkpoint write, seconds.
    pub checkpoint_write_s: f64,
    /// Hot spares (wanka).
    pub spares: u32,
    /// Background tenants' nodes; a replacement for the reactive policy comes free when one of their jobs ends.
    pub background_nodes: u32,
    /// Mean length of a background job, seconds.
    pub background_job_s: f64,
    /// Time to notice a failure: reactive (the node timeout), wanka (a heartbeat).
    pub detect_s: [f64; 2],
    /// Time from having all nodes to training again (processes, communicator, checkpoint load): reactive, wanka.
    pub restart_s: [f64; 2],
    /// Seed.
    pub seed: u64,
}

impl Scenario {
    /// 10,240 accelerators (1,280 nodes × 8) for 30 days, with the defaults the README gives reasons for.
    pub fn default_job(checkpoint_write_s: f64, seed: u64) -> Scenario {
        Scenario {
            nodes: 1280,
            horizon_s: 30.0 * 86400.0,
            checkpoint_write_s,
            spares: 16,
            background_nodes: 256,
            background_job_s: 4.0 * 3600.0,
            detect_s: [300.0, 5.0],
            restart_s: [600.0, 120.0],
            seed,
        }
    }

    fn index(p: Policy) -> usize {
        match p {
            Policy::Reactive => 0,
            Policy::Wanka => 1,
        }
    }

    /// Young/Daly checkpoint interval for a failure rate (per second) of the failures that lose work.
    pub fn interval(&self, lossy_rate: f64) -> f64 {
        (2.0 * self.checkpoint_write_s / lossy_rate.max(1e-12)).sqrt()
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Productive seconds / wall seconds.
    pub ettr: f64,
    /// Failures that hit the job.
    pub failures: u32,
    /// Of which moved before they happened.
    pub proactive: u32,
    /// Seconds of work redone.
    pub lost_s: f64,
    /// Seconds waiting for replacement nodes.
    pub waiting_s: f64,
    /// Seconds down (detection, waiting, restarting, proactive moves).
    pub down_s: f64,
    /// Seconds writing checkpoints.
    pub writing_s: f64,
    /// Checkpoint interval used, seconds.
    pub interval_s: f64,
    /// Nodes quarantined.
    pub quarantined: u32,
}

/// The analytic model: E[ETTR] ≈ [1 − λ(d + q + u₀ + L)] / (1 + w/Δt), with L = Δt/2.
pub fn model_ettr(lambda: f64, d: f64, q: f64, u0: f64, w: f64, dt: f64) -> f64 {
    (1.0 - lambda * (d + q + u0 + dt / 2.0)) / (1.0 + w / dt)
}

/// A failure that will hit a node: when, its class, and when its precursor shows (if it has one).
#[derive(Clone, Debug)]
struct Failure {
    at: f64,
    class: usize,
    warning_at: Option<f64>,
}

fn exp(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

/// Failures of the job's node slots over the horizon, from the model. Slot `i < lemons` is a lemon.
fn generate(m: &FailureModel, s: &Scenario, rng: &mut ChaCha8Rng) -> Vec<(u32, Failure)> {
    let per_s = m.rate / 1000.0 / 86400.0;
    let mut out = Vec::new();
    for slot in 0..s.nodes {
        let rate = if slot < m.lemons {
            per_s * m.lemon_factor
        } else {
            per_s
        };
        let mut t = 0.0;
        loop {
            t += exp(rng, 1.0 / rate);
            if t >= s.horizon_s {
                break;
            }
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let class = m
                .classes
                .iter()
                .position(|c| {
                    acc += c.share;
                    u < acc
                })
                .unwrap_or(m.classes.len() - 1);
            let warning_at =
                (rng.random::<f64>() < m.classes[class].precursor).then(|| t - exp(rng, m.lead_s));
            out.push((
                slot,
                Failure {
                    at: t,
                    class,
                    warning_at,
                },
            ));
        }
    }
    out.sort_by(|a, b| a.1.at.total_cmp(&b.1.at));
    out
}

/// Failures from a fault log: (node, start in seconds, class index) mapped onto the job's slots; precursors
/// drawn from the model's per-class shares.
fn from_log(
    log: &[(String, f64, usize)],
    m: &FailureModel,
    s: &Scenario,
    rng: &mut ChaCha8Rng,
) -> Vec<(u32, Failure)> {
    let mut slots: BTreeMap<&str, u32> = BTreeMap::new();
    let mut out = Vec::new();
    for (node, at, class) in log {
        let next = slots.len() as u32;
        let slot = *slots.entry(node.as_str()).or_insert(next);
        if slot >= s.nodes || *at >= s.horizon_s {
            continue;
        }
        let warning_at =
            (rng.random::<f64>() < m.classes[*class].precursor).then(|| at - exp(rng, m.lead_s));
        out.push((
            slot,
            Failure {
                at: *at,
                class: *class,
                warning_at,
            },
        ));
    }
    out.sort_by(|a, b| a.1.at.total_cmp(&b.1.at));
    out
}

/// Runs one policy over the failures given (from [`generate`] or [`from_log`]).
fn play(
    m: &FailureModel,
    s: &Scenario,
    p: Policy,
    failures: &[(u32, Failure)],
    interval: f64,
    rng: &mut ChaCha8Rng,
) -> Outcome {
    let i = Scenario::index(p);
    let w = s.checkpoint_write_s;
    let mut risk: RiskEngine<u32> = RiskEngine::new(FaultBook::builtin());
    let mut out = Outcome {
        interval_s: interval,
        ..Outcome::default()
    };
    // Progress (seconds of training) and the checkpointed part of it; the wall clock; spares and repairs.
    let (mut progress, mut saved, mut now) = (0.0f64, 0.0f64, 0.0f64);
    let mut spares = s.spares;
    let mut repairs: Vec<f64> = Vec::new();
    // Slots whose node was replaced by a quarantine: they no longer fail as lemons.
    let mut replaced: BTreeMap<u32, f64> = BTreeMap::new();
    // Runs training from `now` until `until`, writing checkpoints every `interval` of progress.
    let train =
        |now: &mut f64, until: f64, progress: &mut f64, saved: &mut f64, out: &mut Outcome| {
            while *now < until {
                let next_ckpt = *saved + interval - *progress;
                let step = next_ckpt.min(until - *now);
                *progress += step;
                *now += step;
                if *progress >= *saved + interval - 1e-9 && *now < until {
                    let write = w.min(until - *now);
                    *now += write;
                    out.writing_s += write;
                    if write >= w {
                        *saved = *progress;
                    }
                }
            }
        };
    for (slot, f) in failures {
        if replaced.get(slot).is_some_and(|since| f.at >= *since) && *slot < m.lemons {
            // The lemon in this slot was quarantined and replaced: an ordinary node does not fail this often.
            if rng.random::<f64>() > 1.0 / m.lemon_factor {
                continue;
            }
        }
        if f.at < now {
            // The job was down when this node failed: it is repaired before the job needs it again.
            continue;
        }
        out.failures += 1;
        repairs.retain(|r| {
            if *r <= f.at {
                spares += 1;
                false
            } else {
                true
            }
        });
        let class = &m.classes[f.class];
        let node = *slot;
        // The risk engine judges what the node reports; lead time decides whether a move is possible.
        let warned = match (p, f.warning_at) {
            (Policy::Wanka, Some(t)) if t >= now && f.at - t > s.detect_s[i] + w => {
                let reading = Reading {
                    health: Some("Warning"),
                    ..Reading::default()
                };
                risk.observe(&node, 0, &reading, Time((t * 1e6) as i64))
                    .is_some_and(|c| c.after.precursor)
                    .then_some(t)
            }
            _ => None,
        };
        let faults = [class.fault.to_string()];
        let verdict = risk.observe(
            &node,
            1,
            &Reading {
                faults: &faults,
                ..Reading::default()
            },
            Time((f.at * 1e6) as i64),
        );
        let action = verdict.map_or(Action::DrainNode, |c| c.after.action);
        if p == Policy::Wanka
            && action.takes_device()
            && risk.record_fault(&node, Time((f.at * 1e6) as i64))
        {
            out.quarantined += 1;
            replaced.insert(node, f.at);
        }
        let (stop_at, lost) = match warned {
            Some(t) => {
                // Checkpoint now, then move: nothing is lost.
                out.proactive += 1;
                let at = t + s.detect_s[i];
                train(&mut now, at, &mut progress, &mut saved, &mut out);
                now += w;
                out.writing_s += w;
                saved = progress;
                (now, 0.0)
            }
            None => {
                train(&mut now, f.at, &mut progress, &mut saved, &mut out);
                let lost = progress - saved;
                progress = saved;
                now += s.detect_s[i];
                (now, lost)
            }
        };
        out.lost_s += lost;
        // A replacement node: a hot spare, or the next background node to come free.
        let wait = if p == Policy::Wanka && spares > 0 {
            spares -= 1;
            0.0
        } else {
            exp(rng, s.background_job_s / s.background_nodes.max(1) as f64)
        };
        repairs.push(f.at + exp(rng, m.repair_s));
        out.waiting_s += wait;
        now += wait + s.restart_s[i];
        out.down_s += now - stop_at + s.detect_s[i] * f64::from(warned.is_none() as u8);
        if now >= s.horizon_s {
            break;
        }
    }
    if now < s.horizon_s {
        train(&mut now, s.horizon_s, &mut progress, &mut saved, &mut out);
    }
    out.ettr = progress / s.horizon_s;
    out
}

/// The job's failure rate, failures per second (its lemons count as `lemon_factor` nodes each).
fn job_rate(m: &FailureModel, s: &Scenario) -> f64 {
    let nodes = f64::from(s.nodes) + f64::from(m.lemons) * (m.lemon_factor - 1.0);
    nodes * m.rate / 1000.0 / 86400.0
}

/// Of a failure rate (per second), the part that loses work under a policy, for the checkpoint interval.
fn lossy(m: &FailureModel, p: Policy, lambda: f64) -> f64 {
    match p {
        Policy::Reactive => lambda,
        Policy::Wanka => lambda * (1.0 - m.precursor_share()),
    }
}

/// Runs one policy under the failure model.
pub fn run(m: &FailureModel, s: &Scenario, p: Policy) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let failures = generate(m, s, &mut rng);
    let interval = s.interval(lossy(m, p, job_rate(m, s)));
    play(m, s, p, &failures, interval, &mut rng)
}

/// Runs one policy over a fault log ((node, start seconds, class index) per fault).
pub fn replay(m: &FailureModel, s: &Scenario, p: Policy, log: &[(String, f64, usize)]) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let failures = from_log(log, m, s, &mut rng);
    let interval = s.interval(lossy(m, p, failures.len() as f64 / s.horizon_s));
    play(m, s, p, &failures, interval, &mut rng)
}

/// The analytic model's ETTR for a policy under the failure model (λ from the model's rates; q the mean wait
/// for a replacement; for wanka the precursor share costs a checkpoint and a restart instead).
pub fn model_for(m: &FailureModel, s: &Scenario, p: Policy, interval: f64) -> f64 {
    let i = Scenario::index(p);
    let lambda = job_rate(m, s);
    let q = match p {
        Policy::Reactive => s.background_job_s / f64::from(s.background_nodes.max(1)),
        Policy::Wanka => 0.0,
    };
    match p {
        Policy::Reactive => model_ettr(
            lambda,
            s.detect_s[i],
            q,
            s.restart_s[i],
            s.checkpoint_write_s,
            interval,
        ),
        Policy::Wanka => {
            let pr = m.precursor_share();
            let w = s.checkpoint_write_s;
            let cost = (1.0 - pr) * (s.detect_s[i] + q + s.restart_s[i] + interval / 2.0)
                + pr * (w + s.restart_s[i]);
            (1.0 - lambda * cost) / (1.0 + w / interval)
        }
    }
}

/// Maps a StepFun fault-trace record's class to the model's class index.
pub fn stepfun_class(level: &str, class: &str) -> usize {
    match (level, class) {
        ("Hardware Failure", "GPU") => 0,
        ("Hardware Failure", "Parameter Plane Cable" | "NIC") => 3,
        ("Software Failure", _) => 2,
        ("Hardware Failure", _) => 4,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_failures_costs_only_the_checkpoints() {
        let m = FailureModel::with_rate(0.0);
        let s = Scenario::default_job(10.0, 1);
        let o = run(&m, &s, Policy::Reactive);
        assert_eq!(o.failures, 0);
        // Young/Daly with no failures stretches the interval to the horizon: nothing to pay.
        assert!(o.ettr > 0.999, "{o:?}");
    }

    #[test]
    fn the_reactive_simulation_agrees_with_the_analytic_model() {
        let m = FailureModel {
            lemons: 0,
            ..FailureModel::with_rate(3.8)
        };
        let mut s = Scenario::default_job(10.0, 7);
        s.horizon_s = 365.0 * 86400.0;
        let o = run(&m, &s, Policy::Reactive);
        let model = model_for(&m, &s, Policy::Reactive, o.interval_s);
        assert!(
            (o.ettr - model).abs() < 0.01,
            "sim {} model {model} {o:?}",
            o.ettr
        );
    }

    #[test]
    fn precursors_and_spares_raise_ettr_and_the_run_is_deterministic() {
        let m = FailureModel::with_rate(3.8);
        let s = Scenario::default_job(10.0, 3);
        let r = run(&m, &s, Policy::Reactive);
        let w = run(&m, &s, Policy::Wanka);
        assert!(w.ettr > r.ettr, "{w:?} vs {r:?}");
        assert!(w.proactive > 0 && w.waiting_s < r.waiting_s, "{w:?}");
        assert!(w.lost_s < r.lost_s, "{w:?} vs {r:?}");
        assert_eq!(w, run(&m, &s, Policy::Wanka));
    }
}
