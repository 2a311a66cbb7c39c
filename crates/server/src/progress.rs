//! Training progress as jobs report it ($WANKA_PROGRESS_FILE, forwarded by agents): the effective training
//! time ratio (ETTR) of each job, checkpoints (which a move off a failing node waits for), and stragglers.
//!
//! ETTR = productive time / wall time, where productive time counts only steps beyond the highest step the
//! job had reached before: after a restart from a checkpoint, the steps redone are not productive. A step's
//! time is what the job reports for it (`step_time_s`), or else the time since the previous report.

use crate::state::{Core, Refused};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wanka_api::{ProgressReport, ProgressView};

/// Gang members whose step time is this many times the gang's median are stragglers.
const STRAGGLER_FACTOR: f64 = 1.5;
/// Reports per member kept for straggler detection.
const WINDOW: usize = 5;

/// A gang member: (replica rank, process on its node).
type Member = (u32, u32);

/// A job's progress accounting (persisted with the job).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Highest step reached.
    pub max_step: u64,
    /// The run (attempt) and step rank 0 reported last: where the current run is, which after a restart may
    /// be below `max_step`.
    #[serde(default)]
    pub current: Option<(u32, u64)>,
    /// Step of the last checkpoint, and when it was reported (Unix microseconds).
    pub checkpoint: Option<(u64, i64)>,
    /// Productive microseconds.
    pub productive_us: i64,
    /// Last time the accounting was brought up to date (a report, a tick, the end).
    pub seen_us: i64,
    /// When rank 0 last reported a step (for steps reported without their time).
    pub last_step_us: Option<i64>,
    /// Restarts after faults and moves off failing nodes.
    pub restarts: u32,
    /// Recent step times per (rank, task), for straggler detection (not persisted).
    #[serde(skip)]
    pub step_times: BTreeMap<Member, Vec<f64>>,
    /// Members flagged as stragglers (not persisted).
    #[serde(skip)]
    pub stragglers: Vec<Member>,
    /// Whether the job ever reported progress.
    pub reporting: bool,
}

impl Progress {
    /// The API's view, with wall time from the first start.
    pub fn view(&self, started_us: Option<i64>) -> Option<ProgressView> {
        if !self.reporting {
            return None;
        }
        let wall = (self.seen_us - started_us.unwrap_or(self.seen_us)).max(0);
        Some(ProgressView {
            step: self.max_step,
            checkpoint_step: self.checkpoint.map(|c| c.0),
            productive_s: self.productive_us as f64 / 1e6,
            wall_s: wall as f64 / 1e6,
            ettr: if wall > 0 {
                (self.productive_us as f64 / wall as f64).min(1.0)
            } else {
                0.0
            },
            restarts: self.restarts,
        })
    }

    /// " from the checkpoint of step N" for a restart's reason, or nothing without a checkpoint.
    pub fn from_checkpoint(&self) -> String {
        self.checkpoint.map_or(String::new(), |(step, _)| {
            format!(" from the checkpoint of step {step}")
        })
    }

    /// The median of the latest step times across the gang, and the members well above it.
    fn stragglers_now(&self) -> (f64, Vec<(Member, f64)>) {
        let latest: Vec<(Member, f64)> = self
            .step_times
            .iter()
            .filter(|(_, v)| v.len() >= 3)
            .map(|(k, v)| {
                let mut s = v.clone();
                s.sort_by(f64::total_cmp);
                (*k, s[s.len() / 2])
            })
            .collect();
        if latest.len() < 2 {
            return (0.0, Vec::new());
        }
        let mut all: Vec<f64> = latest.iter().map(|x| x.1).collect();
        all.sort_by(f64::total_cmp);
        let median = all[all.len() / 2];
        let slow = latest
            .into_iter()
            .filter(|(_, t)| *t > STRAGGLER_FACTOR * median && median > 0.0)
            .collect();
        (median, slow)
    }
}

impl Core {
    /// Progress lines from an agent. Only the job's current run counts; rank 0's first process speaks for
    /// the job's step (data-parallel ranks step together), every process's step time feeds straggler
    /// detection, and a checkpoint may complete a move off a failing node.
    pub fn progress(&mut self, rep: &ProgressReport, now: i64) -> Result<(), Refused> {
        let r = self
            .jobs
            .get_mut(&rep.job)
            .ok_or_else(|| Refused::NotFound(format!("job {} does not exist", rep.job)))?;
        if rep.attempt != r.attempt || !r.holds_devices() {
            return Ok(());
        }
        // An agent's clock may be off: a record is placed within the current run, up to now.
        let floor = r.run_started_us.unwrap_or(now).min(now);
        let p = &mut r.progress;
        p.reporting = true;
        let mut checkpointed = false;
        for rec in &rep.records {
            let at = ((rec.at * 1e6) as i64).clamp(floor.max(p.seen_us.min(now)), now);
            if let Some(t) = rec.step_time_s.filter(|t| t.is_finite() && *t >= 0.0) {
                let v = p.step_times.entry((rep.rank, rep.task)).or_default();
                v.push(t);
                if v.len() > WINDOW {
                    v.remove(0);
                }
            }
            if (rep.rank, rep.task) != (0, 0) {
                continue;
            }
            if let Some(step) = rec.step {
                p.current = Some((rep.attempt, step));
                if step > p.max_step {
                    let gained = step - p.max_step;
                    let span = match rec.step_time_s.filter(|t| t.is_finite() && *t >= 0.0) {
                        Some(t) => (t * 1e6) as i64 * gained as i64,
                        None => p.last_step_us.map_or(0, |l| (at - l).max(0)),
                    };
                    p.productive_us += span;
                    p.max_step = step;
                }
                p.last_step_us = Some(at);
            }
            if let Some(c) = rec.checkpoint {
                p.checkpoint = Some((c, at));
                checkpointed = true;
            }
            p.seen_us = p.seen_us.max(at);
        }
        let (median, slow) = p.stragglers_now();
        let fresh: Vec<(Member, f64)> = slow
            .into_iter()
            .filter(|(k, _)| !p.stragglers.contains(k))
            .collect();
        p.stragglers.retain(|k| p.step_times.contains_key(k));
        let id = rep.job;
        let nodes: Vec<String> = r.replicas.iter().map(|x| x.node.clone()).collect();
        for ((rank, task), t) in fresh {
            self.jobs
                .get_mut(&id)
                .expect("checked")
                .progress
                .stragglers
                .push((rank, task));
            let node = nodes.get(rank as usize).cloned().unwrap_or_default();
            let why = format!(
                "straggler: rank {rank} process {task} on {node} takes {t:.2} s per step, the gang's median \
                 is {median:.2} s"
            );
            self.record_event(id, why.clone(), now);
            if self.settings.replace_stragglers {
                self.replace_straggler(id, &node, why, now);
            }
        }
        if checkpointed {
            self.persist_job(id);
            self.checkpoint_written(id, now);
        }
        Ok(())
    }

    /// Brings the wall time of every job that reports progress up to now (on the tick).
    pub fn refresh_progress(&mut self, now: i64) {
        for id in self.active.iter().chain(self.held.keys()) {
            if let Some(r) = self.jobs.get_mut(id)
                && r.progress.reporting
            {
                r.progress.seen_us = now;
            }
        }
    }

    /// Productive and wall seconds summed over the jobs that report progress (the cluster's ETTR).
    pub fn ettr_totals(&self) -> (f64, f64) {
        self.jobs
            .values()
            .filter_map(|r| r.progress.view(r.started_us))
            .fold((0.0, 0.0), |(p, w), v| (p + v.productive_s, w + v.wall_s))
    }
}
