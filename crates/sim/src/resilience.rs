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
    /// Checkpoint write, seconds: blocking, unless `snapshot_s` makes it asynchronous.
    pub checkpoint_write_s: f64,
    /// Asynchronous checkpoints: training stops only this long (a copy of the state to host memory) and the
    /// write goes on in the background, durable `checkpoint_write_s` later. `None`: the write blocks.
    pub snapshot_s: Option<f64>,
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
            snapshot_s: None,
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

    /// Seconds training stops for each checkpoint.
    pub fn blocking_s(&self) -> f64 {
        self.snapshot_s.unwrap_or(self.checkpoint_write_s)
    }

    /// Seconds from the end of that stop until the checkpoint is durable (0 when the write blocks).
    pub fn durable_after_s(&self) -> f64 {
        if self.snapshot_s.is_some() {
            self.checkpoint_write_s
        } else {
            0.0
        }
    }

    /// Young/Daly checkpoint interval for a failure rate (per second) of the failures that lose work, over
    /// the blocking time; never shorter than one checkpoint's stop and write, so that one write at most is
    /// in flight.
    pub fn interval(&self, lossy_rate: f64) -> f64 {
        let b = self.blocking_s();
        (2.0 * b / lossy_rate.max(1e-12))
            .sqrt()
            .max(b + self.durable_after_s())
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
    /// Seconds training stood still for checkpoints.
    pub writing_s: f64,
    /// Checkpoint interval used, seconds.
    pub interval_s: f64,
    /// Nodes quarantined.
    pub quarantined: u32,
}

/// The job's training: progress (seconds of training done), the last durable checkpoint, the progress at the
/// last snapshot and an asynchronous write in flight (its progress, when it is durable).
#[derive(Default)]
struct Training {
    progress: f64,
    saved: f64,
    snapped: f64,
    in_flight: Option<(f64, f64)>,
}

impl Training {
    /// A write in flight that is durable by `now` becomes the checkpoint to restart from.
    fn settle(&mut self, now: f64) {
        if let Some((p, at)) = self.in_flight
            && at <= now
        {
            self.saved = p;
            self.in_flight = None;
        }
    }

    /// A snapshot's stop ended at `now`: a blocking write is durable already, an asynchronous one later.
    fn snapshot_taken(&mut self, s: &Scenario, now: f64) {
        self.snapped = self.progress;
        if s.snapshot_s.is_some() {
            self.in_flight = Some((self.progress, now + s.durable_after_s()));
        } else {
            self.saved = self.progress;
        }
    }

    /// Trains from `now` until `until`, checkpointing every `interval` of progress.
    fn train(&mut self, s: &Scenario, interval: f64, now: &mut f64, until: f64, out: &mut Outcome) {
        let b = s.blocking_s();
        while *now < until {
            self.settle(*now);
            let mut step = (self.snapped + interval - self.progress).min(until - *now);
            if let Some((_, at)) = self.in_flight {
                step = step.min(at - *now);
            }
            self.progress += step;
            *now += step;
            if self.progress >= self.snapped + interval - 1e-9 && *now < until {
                let stop = b.min(until - *now);
                *now += stop;
                out.writing_s += stop;
                if stop >= b {
                    self.snapshot_taken(s, *now);
                }
            }
        }
        self.settle(*now);
    }

    /// A failure now: the work since the last durable checkpoint is lost (returned, in seconds).
    fn fail(&mut self, now: f64) -> f64 {
        self.settle(now);
        self.in_flight = None;
        let lost = self.progress - self.saved;
        self.progress = self.saved;
        self.snapped = self.saved;
        lost
    }

    /// A checkpoint taken now and waited for until it is durable (before a move).
    fn checkpoint_now(&mut self, s: &Scenario, now: &mut f64, out: &mut Outcome) {
        *now += s.blocking_s();
        out.writing_s += s.blocking_s();
        self.snapshot_taken(s, *now);
        *now += s.durable_after_s();
        self.settle(*now);
    }
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
    let mut risk: RiskEngine<u32> = RiskEngine::new(FaultBook::builtin());
    let mut out = Outcome {
        interval_s: interval,
        ..Outcome::default()
    };
    // The training, the wall clock, spares and repairs.
    let mut job = Training::default();
    let mut now = 0.0f64;
    let mut spares = s.spares;
    let mut repairs: Vec<f64> = Vec::new();
    // Slots whose node was replaced by a quarantine: they no longer fail as lemons.
    let mut replaced: BTreeMap<u32, f64> = BTreeMap::new();
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
            (Policy::Wanka, Some(t))
                if t >= now && f.at - t > s.detect_s[i] + s.blocking_s() + s.durable_after_s() =>
            {
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
                job.train(s, interval, &mut now, t + s.detect_s[i], &mut out);
                job.checkpoint_now(s, &mut now, &mut out);
                (now, 0.0)
            }
            None => {
                job.train(s, interval, &mut now, f.at, &mut out);
                let lost = job.fail(now);
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
        job.train(s, interval, &mut now, s.horizon_s, &mut out);
    }
    out.ettr = job.progress / s.horizon_s;
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

/// The analytic model's ETTR for a policy under the failure model: DESIGN.md's
/// E[ETTR] ≈ [1 − λ(d + q + u₀ + L)] / (1 + w/Δt), L = Δt/2, with λ from the model's rates and q the mean wait
/// for a replacement; for wanka the precursor share costs a checkpoint and a restart instead; with asynchronous
/// writes w is the snapshot's stop and L grows by the write time (a failure during a write falls back to the
/// checkpoint before).
pub fn model_for(m: &FailureModel, s: &Scenario, p: Policy, interval: f64) -> f64 {
    let i = Scenario::index(p);
    let lambda = job_rate(m, s);
    let (q, warned) = match p {
        Policy::Reactive => (
            s.background_job_s / f64::from(s.background_nodes.max(1)),
            0.0,
        ),
        Policy::Wanka => (0.0, m.precursor_share()),
    };
    let (b, after) = (s.blocking_s(), s.durable_after_s());
    let lossy = s.detect_s[i] + q + s.restart_s[i] + interval / 2.0 + after;
    let moved = b + after + s.restart_s[i];
    (1.0 - lambda * ((1.0 - warned) * lossy + warned * moved)) / (1.0 + b / interval)
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
    fn a_failure_during_an_asynchronous_write_falls_back_to_the_checkpoint_before() {
        let mut s = Scenario::default_job(10.0, 1);
        s.snapshot_s = Some(1.0);
        let mut out = Outcome::default();
        let (mut job, mut now) = (Training::default(), 0.0);
        // Snapshots after 100 s of training (stop 1 s, durable at 111 s) and after 200 s (at 201 s, durable 211 s).
        job.train(&s, 100.0, &mut now, 205.0, &mut out);
        assert_eq!(
            (job.progress, job.saved, out.writing_s),
            (203.0, 100.0, 2.0)
        );
        assert_eq!(job.fail(now), 103.0);
        assert_eq!((job.progress, job.in_flight), (100.0, None));
        // Once durable, the next failure loses only what came after it.
        job.train(&s, 100.0, &mut now, 330.0, &mut out);
        assert_eq!(job.saved, 200.0);
        assert_eq!(job.fail(now), 24.0);
        // A checkpoint before a move waits for its write: stop and write.
        let before = now;
        job.checkpoint_now(&s, &mut now, &mut out);
        assert_eq!(
            (now - before, job.saved, job.in_flight),
            (11.0, 200.0, None)
        );
    }

    #[test]
    fn asynchronous_writes_agree_with_the_model_and_raise_ettr() {
        let m = FailureModel {
            lemons: 0,
            ..FailureModel::with_rate(3.8)
        };
        for p in [Policy::Reactive, Policy::Wanka] {
            let mut s = Scenario::default_job(10.0, 5);
            s.horizon_s = 365.0 * 86400.0;
            let blocking = run(&m, &s, p);
            s.snapshot_s = Some(1.0);
            let o = run(&m, &s, p);
            let model = model_for(&m, &s, p, o.interval_s);
            assert!(
                (o.ettr - model).abs() < 0.01,
                "{p:?}: sim {} model {model}",
                o.ettr
            );
            assert!(o.ettr > blocking.ettr + 0.01, "{o:?} vs {blocking:?}");
            assert!(o.interval_s < blocking.interval_s && o.interval_s >= 11.0);
        }
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
