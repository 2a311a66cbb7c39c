//! Acting on what the risk engine sees: a device that failed leaves service and the jobs on it restart from
//! their checkpoints on healthy devices; a precursor of a failure has its jobs checkpointed first, then moved;
//! a node that fails repeatedly is quarantined. Restarts are bounded, with a growing wait between them. Every
//! action is a node event or a job event with its reason.

use crate::state::{Core, stop_signal};
use crate::store::{NodeEventRow, Write};
use std::collections::BTreeMap;
use wanka_api::{Assignment, DeviceTelemetry, JobState, NodeState};
use wanka_model::{Action, JobId, Time};
use wanka_sched::risk::{Change, Reading};

/// Wait before the k-th restart of a job (the first is immediate): 5 s, 10 s, 20 s ... up to 5 minutes.
pub fn backoff_us(restarts: u32) -> i64 {
    if restarts <= 1 {
        return 0;
    }
    let secs = 5i64.saturating_mul(1 << (restarts - 2).min(10)).min(300);
    secs * 1_000_000
}

/// The "checkpoint now" signal of a job.
pub fn checkpoint_signal(spec: &wanka_api::SubmitJob) -> String {
    spec.checkpoint_signal
        .clone()
        .unwrap_or_else(|| "SIGUSR1".to_string())
}

impl Core {
    /// Records what the server did to a node, and why.
    pub(crate) fn node_event(&mut self, node: &str, action: &str, reason: String, now: i64) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        let at = now.max(n.last_event_us + 1);
        n.last_event_us = at;
        self.fx.writes.push(Write::NodeEvent(NodeEventRow {
            node: node.to_string(),
            at_us: at,
            action: action.to_string(),
            reason,
        }));
    }

    /// Runs a heartbeat's devices through the risk engine and acts on every assessment that changed.
    pub(crate) fn assess(&mut self, node: &str, devices: &[DeviceTelemetry], now: i64) {
        let mut changes = Vec::new();
        let key = node.to_string();
        for d in devices {
            let reading = Reading {
                health: d.health.as_deref(),
                faults: &d.faults,
                ecc_corrected: d.ecc_corrected,
                ecc_uncorrected: d.ecc_uncorrected,
                temperature_c: d.temperature_c,
            };
            if let Some(c) = self.risk.observe(&key, d.index, &reading, Time(now)) {
                changes.push(c);
            }
        }
        for c in changes {
            self.act(c, now);
        }
    }

    fn act(&mut self, c: Change<String>, now: i64) {
        let (node, device, a) = (c.node, c.device, c.after);
        let why = a.why();
        if !a.is_concern() {
            if c.before.is_concern() && self.release_device(&node, device) {
                self.node_event(
                    &node,
                    "release-device",
                    format!("device {device} is healthy again"),
                    now,
                );
            }
            return;
        }
        if self.hold_device(&node, device) {
            let kind = if a.action.takes_device() {
                "out of service"
            } else {
                "no new work (a failure is coming)"
            };
            self.node_event(
                &node,
                "hold-device",
                format!("device {device} {kind}: {why}"),
                now,
            );
        }
        if a.action == Action::DrainNode {
            self.risk_cordon(&node, format!("device {device}: {why}"), now);
        }
        if a.action.takes_device() && self.risk.record_fault(&node, Time(now)) {
            let n = self.risk.book().quarantine.clone();
            self.quarantine(
                &node,
                format!(
                    "{} faults within {} h, the last: device {device}: {why}",
                    n.faults,
                    n.window_s / 3600
                ),
                now,
            );
        }
        let victims: Vec<u64> = self
            .active
            .iter()
            .copied()
            .filter(|id| {
                self.jobs[id]
                    .replicas
                    .iter()
                    .any(|p| p.node == node && p.devices.contains(&device))
            })
            .collect();
        for id in victims {
            let place = format!("{node} device {device}: {why}");
            if a.action.restarts_jobs() {
                self.interrupt(id, place, Some(&node), now);
            } else {
                self.migrate(id, place, now);
            }
        }
    }

    /// Takes a device out of the scheduler's pool on the risk engine's word; false if it already was.
    fn hold_device(&mut self, node: &str, device: u32) -> bool {
        let Some(n) = self.nodes.get_mut(node) else {
            return false;
        };
        if !n.risk_held.insert(device) {
            return false;
        }
        let _ = self.sched.set_device_health(n.id, device, false);
        self.fx.kick = true;
        true
    }

    /// Gives a device held by the risk engine back (unless its agent reports it unhealthy).
    fn release_device(&mut self, node: &str, device: u32) -> bool {
        let Some(n) = self.nodes.get_mut(node) else {
            return false;
        };
        if !n.risk_held.remove(&device) {
            return false;
        }
        if !n.unhealthy.contains(&device) {
            let _ = self.sched.set_device_health(n.id, device, true);
            self.fx.kick = true;
        }
        true
    }

    /// Cordons a node on the risk engine's word (an operator's `resume` returns it).
    fn risk_cordon(&mut self, node: &str, why: String, now: i64) {
        if self
            .nodes
            .get(node)
            .is_some_and(|n| n.admin == NodeState::Ready)
        {
            let _ = self.set_admin_state(node, NodeState::Cordoned);
            self.node_event(node, "cordon", why, now);
        }
    }

    /// Cordons a node that keeps failing until an operator has repaired it.
    fn quarantine(&mut self, node: &str, why: String, now: i64) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.quarantined = true;
        }
        let _ = self.set_admin_state(node, NodeState::Cordoned);
        self.node_event(node, "quarantine", why, now);
    }

    /// Asks a running job to checkpoint before it is moved off a node about to fail; it is stopped once the
    /// checkpoint is reported, or when the checkpoint grace runs out.
    fn migrate(&mut self, id: u64, why: String, now: i64) {
        let grace = self.settings.checkpoint_grace_s;
        let r = self.jobs.get_mut(&id).expect("active jobs are known");
        if !matches!(r.state, JobState::Running | JobState::Starting) {
            return;
        }
        let signal = checkpoint_signal(&r.spec);
        r.migrating = Some(now + grace as i64 * 1_000_000);
        let step = match r.progress.current {
            Some((attempt, step)) if attempt == r.attempt => step,
            _ => 0,
        };
        r.migrate_from_step = step;
        r.leaving = why.split(' ').next().map(str::to_string);
        r.preempt = None;
        self.send_to_run(id, |job, attempt| Assignment::Signal {
            job,
            attempt,
            signal: signal.clone(),
        });
        self.transition(
            id,
            JobState::Preempting,
            format!(
                "moving off {why}: sent {signal} to checkpoint (at step {step}), stops within {grace} s"
            ),
            now,
        );
    }

    /// Moves a job off the node of its straggler (checkpoint first, then a hot spare or the queue) and cordons
    /// the node, so that the gang runs at its healthy members' pace.
    pub(crate) fn replace_straggler(&mut self, id: u64, node: &str, why: String, now: i64) {
        self.risk_cordon(node, format!("job {id}: {why}"), now);
        self.migrate(id, format!("{node}: {why}"), now);
    }

    /// A checkpoint arrived: a job being moved is now stopped.
    pub(crate) fn checkpoint_written(&mut self, id: u64, now: i64) {
        let Some(r) = self.jobs.get(&id) else { return };
        let step = r.progress.checkpoint.map_or(0, |c| c.0);
        if r.migrating.is_none() || r.state != JobState::Preempting || step < r.migrate_from_step {
            return;
        }
        let signal = stop_signal(&r.spec);
        self.jobs.get_mut(&id).expect("checked").migrating = Some(i64::MAX);
        self.record_event(
            id,
            format!("checkpoint of step {step} written; stopping with {signal} to move"),
            now,
        );
        self.stop_everywhere(id, &signal, self.settings.kill_grace_s);
    }

    /// Jobs whose checkpoint did not come within the grace are moved anyway (on the tick).
    pub fn check_migrations(&mut self, now: i64) {
        let late: Vec<u64> = self
            .active
            .iter()
            .copied()
            .filter(|id| self.jobs[id].migrating.is_some_and(|d| d <= now))
            .collect();
        for id in late {
            let signal = stop_signal(&self.jobs[&id].spec);
            self.jobs.get_mut(&id).expect("active").migrating = Some(i64::MAX);
            self.record_event(
                id,
                format!("no checkpoint within the grace; stopping with {signal} to move"),
                now,
            );
            self.stop_everywhere(id, &signal, self.settings.kill_grace_s);
        }
    }

    /// Keeps `hot_spares` spares per model: sets aside idle ready nodes (no work, no device out of service, in
    /// name order) of each model short of them.
    pub fn keep_spares(&mut self, now: i64) {
        let want = self.settings.hot_spares as usize;
        if want == 0 {
            return;
        }
        let allocated = self.allocated_devices();
        let mut spares: BTreeMap<&str, usize> = BTreeMap::new();
        let mut idle: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, n) in &self.nodes {
            let model = n.registration.model.as_str();
            if n.lost {
                continue;
            }
            match n.admin {
                NodeState::Spare => *spares.entry(model).or_default() += 1,
                NodeState::Ready
                    if n.unhealthy.is_empty()
                        && n.risk_held.is_empty()
                        && !allocated.contains_key(name.as_str()) =>
                {
                    idle.entry(model).or_default().push(name);
                }
                _ => {}
            }
        }
        let mut chosen: Vec<(String, String)> = Vec::new();
        for (model, nodes) in idle {
            let short = want.saturating_sub(spares.get(model).copied().unwrap_or(0));
            chosen.extend(
                nodes
                    .into_iter()
                    .take(short)
                    .map(|n| (n.to_string(), model.to_string())),
            );
        }
        for (name, model) in chosen {
            if self.set_admin_state(&name, NodeState::Spare).is_ok() {
                self.node_event(
                    &name,
                    "spare",
                    format!("set aside as a hot spare, to keep {want} of {model} (--hot-spares)"),
                    now,
                );
            }
        }
    }

    /// Restarts a job at once with hot spares (nodes in the `spare` state) in place of its replicas on
    /// `bad_node`, keeping the rest of its allocation; false when the pool cannot cover them (the caller
    /// requeues instead). The old run has been told to stop; the spares leave the pool.
    pub(crate) fn restart_on_spares(
        &mut self,
        id: u64,
        bad_node: &str,
        why: &str,
        now: i64,
    ) -> bool {
        let r = &self.jobs[&id];
        let Some(model) = r.model.clone() else {
            return false;
        };
        let allocated = self.allocated_devices();
        let mut spares: Vec<(String, Vec<u32>)> = self
            .nodes
            .iter()
            .filter(|(name, n)| {
                n.admin == NodeState::Spare
                    && !n.lost
                    && n.registration.model == model
                    && allocated.get(name.as_str()).copied().unwrap_or(0) == 0
            })
            .map(|(name, n)| {
                let healthy = (0..n.registration.devices)
                    .filter(|d| !n.unhealthy.contains(d) && !n.risk_held.contains(d))
                    .collect();
                (name.clone(), healthy)
            })
            .collect();
        let mut replicas = r.replicas.clone();
        let mut used = Vec::new();
        for p in replicas.iter_mut().filter(|p| p.node == bad_node) {
            let need = p.devices.len();
            let Some(i) = spares.iter().position(|(_, h)| h.len() >= need) else {
                return false;
            };
            let (name, healthy) = spares.remove(i);
            p.node = name.clone();
            p.devices = healthy[..need].to_vec();
            used.push(name);
        }
        if used.is_empty() {
            return false;
        }
        let spec = match self.scheduler_spec(r) {
            Ok(s) => s,
            Err(_) => return false,
        };
        let usage = r.usage;
        let old = std::mem::replace(
            &mut self.jobs.get_mut(&id).expect("known").replicas,
            replicas,
        );
        let allocation = self.allocation_of(&self.jobs[&id]);
        let _ = self.sched.finished(JobId(id));
        let placed = allocation.and_then(|allocation| {
            self.sched
                .restore(&wanka_sched::snapshot::RunningJob {
                    spec,
                    allocation,
                    preempting: None,
                    usage,
                })
                .map_err(|e| e.to_string())
        });
        if let Err(e) = placed {
            // The spares were checked above, so this is not expected; the job goes back to the queue.
            self.jobs.get_mut(&id).expect("known").replicas = old;
            self.transition(
                id,
                JobState::Pending,
                format!("{why}; requeued (the hot spares could not take it: {e})"),
                now,
            );
            if let Err(e) = self.enqueue(id) {
                self.transition(id, JobState::Failed, format!("cannot be queued: {e}"), now);
            }
            return true;
        }
        for name in &used {
            let _ = self.set_admin_state(name, NodeState::Ready);
            self.node_event(
                name,
                "spare-used",
                format!("replaces {bad_node} for job {id}"),
                now,
            );
        }
        let r = self.jobs.get_mut(&id).expect("known");
        r.attempt += 1;
        r.done.clear();
        r.exit_code = None;
        r.preempt = None;
        r.migrating = None;
        r.leaving = None;
        r.run_started_us = Some(now);
        let from = r.progress.from_checkpoint();
        let k = r.progress.restarts;
        self.active.insert(id);
        self.transition(
            id,
            JobState::Starting,
            format!(
                "{why}; restarted at once{from} on hot spare {} (restart {k})",
                used.join(", ")
            ),
            now,
        );
        self.dispatch_starts(id);
        self.fx.kick = true;
        true
    }

    /// Counts a restart; `Some(wait)` when the job may restart (after `wait` µs), `None` when it has used
    /// all its restarts.
    pub(crate) fn count_restart(&mut self, id: u64) -> Option<i64> {
        let max = self.settings.max_fault_restarts;
        let r = self.jobs.get_mut(&id).expect("known");
        r.progress.restarts += 1;
        (r.progress.restarts <= max).then(|| backoff_us(r.progress.restarts))
    }

    /// Puts a job whose run ended by a fault back in the queue, now or after its backoff.
    pub(crate) fn requeue_after(&mut self, id: u64, wait_us: i64, now: i64) {
        if wait_us <= 0 {
            let _ = self.sched.requeue(JobId(id));
        } else {
            let _ = self.sched.finished(JobId(id));
            self.held.insert(id, now + wait_us);
        }
        self.fx.kick = true;
    }

    /// Queues the jobs whose backoff is over (on the tick).
    pub fn release_held(&mut self, now: i64) {
        let due: Vec<u64> = self
            .held
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.held.remove(&id);
            if self.jobs[&id].state == JobState::Pending {
                let _ = self.enqueue(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_us;

    #[test]
    fn restarts_wait_longer_each_time_up_to_five_minutes() {
        let secs: Vec<i64> = (1..=9).map(|k| backoff_us(k) / 1_000_000).collect();
        assert_eq!(secs, [0, 5, 10, 20, 40, 80, 160, 300, 300]);
    }
}
