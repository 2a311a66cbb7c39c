//! Nodes in the server: agents register and heartbeat, operators cordon, drain and resume, and a node whose
//! heartbeats stop is declared lost and its work requeued.

use crate::state::{Core, NodeInfo, Refused, valid_name};
use std::collections::{BTreeSet, HashMap};
use wanka_api::{
    Assignment, Heartbeat, InjectFault, NodeState, NodeView, RegisterNode, Registered, TaskRef,
};
use wanka_model::{NodeId, NodeSpec, Topology};

/// Leaf and spine of a node whose registration names none: one flat network.
const DEFAULT_LEAF: &str = "leaf-0";
/// See [`DEFAULT_LEAF`].
const DEFAULT_SPINE: &str = "spine-0";

impl Core {
    /// An agent announcing its node (again, after a restart of either side).
    pub fn register(&mut self, mut reg: RegisterNode, now: i64) -> Result<Registered, Refused> {
        valid_name("node", &reg.name)?;
        let tasks = std::mem::take(&mut reg.tasks);
        let model = self
            .sched
            .catalog()
            .lookup(&reg.model)
            .map_err(|e| Refused::Invalid(format!("node '{}': {e}", reg.name)))?;
        let canonical = self.sched.catalog().model(model).name.clone();
        let reg = RegisterNode {
            model: canonical,
            ..reg
        };
        let name = reg.name.clone();
        match self.nodes.get_mut(&name) {
            Some(n) => {
                let old = &n.registration;
                let same_shape = (
                    old.model.as_str(),
                    old.devices,
                    old.cpu_milli,
                    old.memory_mib,
                ) == (
                    reg.model.as_str(),
                    reg.devices,
                    reg.cpu_milli,
                    reg.memory_mib,
                ) && (&old.leaf, &old.spine) == (&reg.leaf, &reg.spine);
                if !same_shape {
                    return Err(Refused::Conflict(format!(
                        "node '{name}' is registered with {} x {} ({} mCPU, {} MiB, leaf {:?}); this \
                         registration says {} x {} ({} mCPU, {} MiB, leaf {:?}); a registered node's \
                         hardware cannot change",
                        old.devices,
                        old.model,
                        old.cpu_milli,
                        old.memory_mib,
                        old.leaf,
                        reg.devices,
                        reg.model,
                        reg.cpu_milli,
                        reg.memory_mib,
                        reg.leaf
                    )));
                }
                let address_changed = old.address != reg.address;
                n.registration = reg;
                n.watched_since_us = now;
                n.last_heartbeat_us = Some(now);
                if address_changed {
                    let row = n.row();
                    self.fx.writes.push(crate::store::Write::Node(row));
                }
                self.found(&name);
            }
            None => {
                self.add_node(reg, NodeState::Ready, BTreeSet::new(), now)?;
                let row = self.nodes[&name].row();
                self.fx.writes.push(crate::store::Write::Node(row));
                self.nodes.get_mut(&name).expect("added").last_heartbeat_us = Some(now);
            }
        }
        let stale = self.reconcile(&name, &tasks, now);
        Ok(Registered {
            node: name,
            epoch: self.epoch,
            stale,
        })
    }

    /// Compares what a (re)starting agent runs with what the server believes runs on its node: tasks of
    /// runs that moved on are stale (the agent stops them); runs the agent no longer has, and whose start
    /// it already took, were lost with its processes and go back to the queue.
    fn reconcile(&mut self, node: &str, tasks: &[TaskRef], now: i64) -> Vec<TaskRef> {
        let current = |r: &crate::state::JobRecord, t: &TaskRef| {
            r.attempt == t.attempt
                && r.holds_devices()
                && r.replicas
                    .get(t.rank as usize)
                    .is_some_and(|p| p.node == node)
        };
        let stale: Vec<TaskRef> = tasks
            .iter()
            .filter(|t| !self.jobs.get(&t.job).is_some_and(|r| current(r, t)))
            .copied()
            .collect();
        let undelivered: BTreeSet<(u64, u32)> = self
            .outboxes
            .get(node)
            .map(|o| {
                o.items
                    .iter()
                    .filter_map(|n| match &n.assignment {
                        Assignment::Start { job, attempt, .. } => Some((*job, *attempt)),
                        Assignment::Stop { .. }
                        | Assignment::Signal { .. }
                        | Assignment::Fault(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let lost: Vec<(u64, u32)> = self
            .active
            .iter()
            .flat_map(|id| {
                let r = &self.jobs[id];
                r.replicas
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.node == node)
                    .map(move |(rank, _)| (*id, rank as u32))
            })
            .filter(|&(id, rank)| {
                let attempt = self.jobs[&id].attempt;
                !undelivered.contains(&(id, attempt))
                    && !tasks.contains(&TaskRef {
                        job: id,
                        attempt,
                        rank,
                    })
            })
            .collect();
        for (id, rank) in lost {
            if self.active.contains(&id) {
                let why = format!(
                    "rank {rank} on {node} was lost: the node's agent restarted without its process"
                );
                self.interrupt(id, why, Some(node), now);
            }
        }
        stale
    }

    /// Adds a node to memory and the scheduler.
    pub(crate) fn add_node(
        &mut self,
        reg: RegisterNode,
        admin: NodeState,
        unhealthy: BTreeSet<u32>,
        now: i64,
    ) -> Result<(), Refused> {
        let model = self
            .sched
            .catalog()
            .lookup(&reg.model)
            .map_err(|e| Refused::Invalid(format!("node '{}': {e}", reg.name)))?;
        let id = NodeId(self.node_names.len() as u32);
        let spec = NodeSpec {
            id,
            name: reg.name.clone(),
            model,
            devices: reg.devices,
            domains: reg.domains.clone(),
            cpu_milli: reg.cpu_milli,
            memory_mib: reg.memory_mib,
            topology: Topology {
                spine: reg
                    .spine
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SPINE.to_string()),
                leaf: reg.leaf.clone().unwrap_or_else(|| DEFAULT_LEAF.to_string()),
            },
        };
        self.sched
            .add_node(spec)
            .map_err(|e| Refused::Invalid(e.to_string()))?;
        for &d in &unhealthy {
            self.sched
                .set_device_health(id, d, false)
                .map_err(|e| Refused::Invalid(e.to_string()))?;
        }
        if admin != NodeState::Ready {
            self.sched
                .set_schedulable(id, false)
                .map_err(|e| Refused::Invalid(e.to_string()))?;
        }
        self.node_names.push(reg.name.clone());
        self.nodes.insert(
            reg.name.clone(),
            NodeInfo {
                id,
                registration: reg,
                admin,
                lost: false,
                unhealthy,
                last_heartbeat_us: None,
                watched_since_us: now,
                telemetry: Vec::new(),
                risk_held: BTreeSet::new(),
                quarantined: false,
                last_event_us: 0,
            },
        );
        self.fx.kick = true;
        Ok(())
    }

    /// A lost node is heard from again.
    fn found(&mut self, name: &str) {
        let n = self.nodes.get_mut(name).expect("caller checked");
        if n.lost {
            n.lost = false;
            let (id, ready) = (n.id, n.admin == NodeState::Ready);
            let _ = self.sched.set_schedulable(id, ready);
            self.fx.kick = true;
        }
    }

    /// A heartbeat: the node is alive, and its devices are as reported.
    pub fn heartbeat(&mut self, hb: Heartbeat, now: i64) -> Result<(), Refused> {
        let n = self.nodes.get_mut(&hb.node).ok_or_else(|| {
            Refused::NotFound(format!(
                "node '{}' is not registered; register it first",
                hb.node
            ))
        })?;
        if let Some(d) = hb
            .devices
            .iter()
            .find(|d| d.index >= n.registration.devices)
        {
            return Err(Refused::Invalid(format!(
                "node '{}' has {} devices; the heartbeat reports device {}",
                hb.node, n.registration.devices, d.index
            )));
        }
        n.last_heartbeat_us = Some(now);
        let id = n.id;
        let mut changed = false;
        for d in &hb.devices {
            let was_healthy = !n.unhealthy.contains(&d.index);
            if was_healthy != d.healthy {
                if d.healthy {
                    n.unhealthy.remove(&d.index);
                } else {
                    n.unhealthy.insert(d.index);
                }
                let usable = d.healthy && !n.risk_held.contains(&d.index);
                let _ = self.sched.set_device_health(id, d.index, usable);
                changed = true;
            }
        }
        if changed {
            let row = n.row();
            self.fx.writes.push(crate::store::Write::Node(row));
            self.fx.kick = true;
        }
        self.assess(&hb.node, &hb.devices, now);
        if let Some(n) = self.nodes.get_mut(&hb.node) {
            n.telemetry = hb.devices;
        }
        self.found(&hb.node);
        Ok(())
    }

    /// An operator's cordon (ready → cordoned), drain or resume (→ ready; a quarantined node's fault
    /// history is forgiven).
    pub fn operator_state(
        &mut self,
        name: &str,
        state: NodeState,
        now: i64,
    ) -> Result<NodeView, Refused> {
        let n = self
            .nodes
            .get_mut(name)
            .ok_or_else(|| Refused::NotFound(format!("node '{name}' is not registered")))?;
        if state == NodeState::Ready && std::mem::take(&mut n.quarantined) {
            self.risk.forgive(&name.to_string());
        }
        let view = self.set_admin_state(name, state)?;
        let word = crate::state::node_state_name(state);
        let what = match state {
            NodeState::Ready => "returned to service",
            NodeState::Cordoned => "cordoned",
            NodeState::Draining => "set to drain",
            NodeState::Spare => "set aside as a hot spare",
            NodeState::Lost => "marked lost",
        };
        self.node_event(name, word, format!("{what} by an operator"), now);
        Ok(view)
    }

    /// Sets a node's cordon, drain or ready state.
    pub(crate) fn set_admin_state(
        &mut self,
        name: &str,
        state: NodeState,
    ) -> Result<NodeView, Refused> {
        let n = self
            .nodes
            .get_mut(name)
            .ok_or_else(|| Refused::NotFound(format!("node '{name}' is not registered")))?;
        n.admin = state;
        let (id, schedulable) = (n.id, state == NodeState::Ready && !n.lost);
        let row = n.row();
        let _ = self.sched.set_schedulable(id, schedulable);
        self.fx.writes.push(crate::store::Write::Node(row));
        self.fx.kick = true;
        Ok(self.node_view(name, &self.allocated_devices()))
    }

    /// Queues a fault for a node's simulated device (the agent of a real node refuses it).
    pub fn inject_fault(&mut self, name: &str, fault: InjectFault) -> Result<(), Refused> {
        let n = self
            .nodes
            .get(name)
            .ok_or_else(|| Refused::NotFound(format!("node '{name}' is not registered")))?;
        if fault.device >= n.registration.devices {
            return Err(Refused::Invalid(format!(
                "node '{name}' has {} devices; there is no device {}",
                n.registration.devices, fault.device
            )));
        }
        self.send(name, Assignment::Fault(fault));
        Ok(())
    }

    /// Declares nodes lost whose heartbeats stopped, and requeues the work they held.
    pub fn check_lost(&mut self, now: i64) {
        let timeout = self.settings.node_timeout_us;
        let lost: Vec<(String, i64)> = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.lost)
            .filter_map(|(name, n)| {
                let since = n.last_heartbeat_us.unwrap_or(n.watched_since_us);
                (now - since > timeout).then(|| (name.clone(), since))
            })
            .collect();
        for (name, since) in lost {
            let n = self.nodes.get_mut(&name).expect("listed");
            n.lost = true;
            // Starts it never fetched are void (its jobs are requeued below); the stops queued below are
            // what it must carry out if it comes back.
            if let Some(out) = self.outboxes.get_mut(&name) {
                out.items.clear();
            }
            let id = n.id;
            let _ = self.sched.set_schedulable(id, false);
            let victims: Vec<u64> = self
                .active
                .iter()
                .copied()
                .filter(|j| self.jobs[j].replicas.iter().any(|p| p.node == name))
                .collect();
            for job in victims {
                let why = format!(
                    "node {name} lost: no heartbeat for {} s",
                    (now - since) / 1_000_000
                );
                self.interrupt(job, why, Some(&name), now);
            }
        }
    }

    /// Devices held per node.
    pub(crate) fn allocated_devices(&self) -> HashMap<&str, u32> {
        let mut out: HashMap<&str, u32> = HashMap::new();
        for id in &self.active {
            for p in &self.jobs[id].replicas {
                *out.entry(p.node.as_str()).or_default() += p.devices.len() as u32;
            }
        }
        out
    }

    /// A node as the API shows it.
    pub fn node_view(&self, name: &str, allocated: &HashMap<&str, u32>) -> NodeView {
        let n = &self.nodes[name];
        NodeView {
            name: name.to_string(),
            model: n.registration.model.clone(),
            devices: n.registration.devices,
            allocated: allocated.get(name).copied().unwrap_or(0),
            unhealthy: n.unhealthy.iter().copied().collect(),
            state: n.state(),
            leaf: n
                .registration
                .leaf
                .clone()
                .unwrap_or_else(|| DEFAULT_LEAF.into()),
            spine: n
                .registration
                .spine
                .clone()
                .unwrap_or_else(|| DEFAULT_SPINE.into()),
            last_heartbeat: n.last_heartbeat_us.map(crate::state::secs),
            telemetry: n.telemetry.clone(),
            held: n.risk_held.iter().copied().collect(),
            quarantined: n.quarantined,
        }
    }

    /// Every node as the API shows it.
    pub fn node_views(&self) -> Vec<NodeView> {
        let allocated = self.allocated_devices();
        self.nodes
            .keys()
            .map(|name| self.node_view(name, &allocated))
            .collect()
    }
}
