//! Turning trace records into simulated jobs: a job spec for the scheduler plus the work it must do.
//!
//! Work is measured so that a job's run time depends on the accelerator it gets: `work` seconds at the
//! speed of its `base` (the model its trace duration was measured on). On a model m it runs for
//! `work × rate(class, base) / rate(class, m)` seconds, with rates from the throughput matrix (or peak ×
//! stack efficiency); under [`Speed::Uniform`] every model runs it in exactly `work` seconds.

use crate::trace::gavel::GavelJob;
use crate::trace::jobfile::JobRecord;
use crate::trace::openb::OpenbPod;
use crate::trace::philly::PhillyJob;
use crate::trace::{Location, TraceError};
use std::collections::BTreeMap;
use wanka_model::throughput::gavel_class;
use wanka_model::{
    Catalog, JobId, JobSpec, Lease, ModelId, Performance, PriorityClass, Span, Stack, Tenant,
    TenantId, ThroughputMatrix, Time,
};

/// How run time depends on the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// Through the normalizer: faster models finish sooner.
    Normalized,
    /// Every model runs a job in its trace duration (to replay a trace on its own cluster).
    Uniform,
}

/// A job of the simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct SimJob {
    /// What the scheduler sees (its `submitted` is the arrival time).
    pub spec: JobSpec,
    /// Seconds of work at the speed of `base`.
    pub work: f64,
    /// The model the work was measured on.
    pub base: ModelId,
}

/// Jobs and their tenants.
#[derive(Clone, Debug, Default)]
pub struct Workload {
    /// Jobs in arrival order.
    pub jobs: Vec<SimJob>,
    /// Tenants, by id.
    pub tenants: Vec<Tenant>,
    /// What the builder assumed, for the report.
    pub notes: Vec<String>,
    /// Leases to admit before the first arrival.
    pub leases: Vec<Lease>,
}

impl Workload {
    /// Sorts jobs by arrival (stable) and renumbers them 0.. in that order.
    fn finish(mut self) -> Workload {
        self.jobs.sort_by_key(|j| j.spec.submitted);
        for (i, j) in self.jobs.iter_mut().enumerate() {
            j.spec.id = JobId(i as u64);
            j.spec.name = format!("{}-{i}", j.spec.name);
        }
        self
    }
}

/// Interns tenant names in order of first appearance.
#[derive(Default)]
struct Tenants(BTreeMap<String, TenantId>, Vec<Tenant>);

impl Tenants {
    fn id(&mut self, name: &str) -> TenantId {
        if let Some(id) = self.0.get(name) {
            return *id;
        }
        let id = TenantId(self.1.len() as u32);
        self.0.insert(name.to_string(), id);
        self.1.push(Tenant::new(id, name));
        id
    }
}

/// Turns a gang size into replicas × devices per replica on nodes of `per_node` devices: whole nodes when
/// the size is a multiple of a node, else the fewest equal replicas that fit a node.
pub fn gang_shape(gpus: u32, per_node: u32) -> (u32, u32) {
    if gpus <= per_node {
        (1, gpus)
    } else if gpus.is_multiple_of(per_node) {
        (gpus / per_node, per_node)
    } else {
        let per = (1..=per_node)
            .rev()
            .find(|d| gpus.is_multiple_of(*d))
            .unwrap_or(1);
        (gpus / per, per)
    }
}

/// Philly jobs: tenants are the virtual clusters, gangs are shaped for nodes of `per_node` devices, any model
/// is accepted, arrival is relative to the first submission, and the runtime estimate is the real duration
/// times `estimate_factor` (none when it is 0).
pub fn philly(jobs: &[PhillyJob], base: ModelId, per_node: u32, estimate_factor: f64) -> Workload {
    let t0 = jobs.iter().map(|j| j.submit).min().unwrap_or(0);
    let mut tenants = Tenants::default();
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        let (replicas, per_replica) = gang_shape(j.gpus, per_node);
        let mut spec = JobSpec::gang(JobId(0), tenants.id(&j.vc), replicas, per_replica);
        spec.name = "philly".into();
        spec.submitted = Time::from_secs(j.submit - t0);
        spec.estimated_runtime =
            (estimate_factor > 0.0).then(|| Span::from_secs_f64(j.duration * estimate_factor));
        out.push(SimJob {
            spec,
            work: j.duration,
            base,
        });
    }
    Workload {
        jobs: out,
        tenants: tenants.1,
        notes: vec![format!(
            "Philly: {} jobs of {} virtual clusters (tenants); gangs of more than {per_node} GPUs take whole {per_node}-device nodes",
            jobs.len(),
            tenants.0.len()
        )],
        leases: Vec::new(),
    }
    .finish()
}

/// openb pods as jobs of one tenant: host-only pods need no accelerator, sharing pods a fraction of one,
/// `gpu_spec` becomes the accepted models, and the run time is deletion − creation.
pub fn openb(
    pods: &[OpenbPod],
    file: &str,
    catalog: &Catalog,
    base: ModelId,
) -> Result<Workload, TraceError> {
    let mut out = Vec::with_capacity(pods.len());
    for (i, p) in pods.iter().enumerate() {
        let mut spec = JobSpec::gang(JobId(0), TenantId(0), 1, p.num_gpu);
        spec.name = p.name.clone();
        spec.cpu_milli = p.cpu_milli;
        spec.memory_mib = p.memory_mib;
        if p.num_gpu == 1 && p.gpu_milli < 1000 {
            spec.fraction_milli = Some(p.gpu_milli);
        }
        spec.models = p
            .gpu_spec
            .iter()
            .map(|m| catalog.lookup(m))
            .collect::<Result<_, _>>()
            .map_err(|e| TraceError::Field {
                at: Location {
                    file: file.to_string(),
                    line: i as u64 + 2,
                },
                field: "gpu_spec",
                problem: e.to_string(),
            })?;
        if p.num_gpu == 0 && p.cpu_milli == 0 && p.memory_mib == 0 {
            // A pod that asks for nothing occupies nothing: it cannot be a job.
            continue;
        }
        spec.submitted = Time::from_secs(p.creation);
        out.push(SimJob {
            spec,
            work: (p.deletion - p.creation).max(1) as f64,
            base,
        });
    }
    Ok(Workload {
        jobs: out,
        tenants: vec![Tenant::new(TenantId(0), "openb")],
        notes: vec![format!("openb: {} pods, one tenant", pods.len())],
        leases: Vec::new(),
    }
    .finish())
}

/// Adds throughput for Gavel classes whose scale factor the matrix lacks (above 8 GPUs): the largest measured
/// scale's throughput × (scale / that scale), i.e. linear data-parallel scaling. Returns a note of what was added.
pub fn extend_gavel_scales(matrix: &mut ThroughputMatrix, jobs: &[GavelJob]) -> Option<String> {
    let mut added = BTreeMap::new();
    for j in jobs {
        let class = gavel_class(&j.job_type, j.scale_factor);
        if matrix.class(&class).is_some() {
            continue;
        }
        let measured = [8u32, 4, 2, 1]
            .into_iter()
            .filter(|s| *s < j.scale_factor)
            .find_map(|s| {
                matrix
                    .class(&gavel_class(&j.job_type, s))
                    .cloned()
                    .map(|m| (s, m))
            });
        let Some((s, per_model)) = measured else {
            continue;
        };
        for (model, tput) in per_model {
            // Values come from the matrix (finite, >= 0), so the insert cannot fail.
            let _ = matrix.insert(&class, model, tput * j.scale_factor as f64 / s as f64);
        }
        *added.entry(j.scale_factor).or_insert(0u32) += 1;
    }
    (!added.is_empty()).then(|| {
        let list: Vec<String> = added.iter().map(|(s, n)| format!("{n} jobs at {s} GPUs")).collect();
        format!(
            "Gavel: the matrix has scale factors 1/2/4/8 only; {} use the 8-GPU (or largest smaller) throughput scaled linearly",
            list.join(", ")
        )
    })
}

/// Gavel jobs: class = (job type, scale factor), gangs shaped for nodes of `per_node` devices; work is
/// steps / throughput on the reference model, so that a job's run time on any model is steps / its
/// throughput there (Gavel's own rule). Jobs whose class has no throughput at all are an error.
pub fn gavel(
    jobs: &[(String, GavelJob)],
    perf: &Performance,
    models: &[ModelId],
    per_node: u32,
) -> Result<Workload, String> {
    let mut tenants = Tenants::default();
    let mut out = Vec::with_capacity(jobs.len());
    let reference = perf.reference();
    for (tenant, j) in jobs {
        let class = gavel_class(&j.job_type, j.scale_factor);
        if perf.matrix().class(&class).is_none() {
            return Err(format!(
                "no throughput for Gavel class '{class}' in the matrix"
            ));
        }
        let tput = perf.throughput(Some(&class), reference).value;
        if tput <= 0.0 {
            return Err(format!(
                "Gavel class '{class}' cannot run on the reference model"
            ));
        }
        let (replicas, per_replica) = gang_shape(j.scale_factor, per_node);
        let mut spec = JobSpec::gang(JobId(0), tenants.id(tenant), replicas, per_replica);
        spec.name = "gavel".into();
        spec.workload = Some(class);
        spec.models = models.to_vec();
        spec.submitted = Time(Span::from_secs_f64(j.arrival).0);
        out.push(SimJob {
            spec,
            work: j.total_steps as f64 / tput,
            base: reference,
        });
    }
    Ok(Workload {
        jobs: out,
        tenants: tenants.1,
        notes: vec![format!(
            "Gavel: {} jobs, run time = steps / throughput of their class on the model they get",
            jobs.len()
        )],
        leases: Vec::new(),
    }
    .finish())
}

/// Jobs of wanka's own job file.
pub fn jobfile(
    records: &[(Location, JobRecord)],
    catalog: &Catalog,
    reference: ModelId,
) -> Result<Workload, TraceError> {
    let mut tenants = Tenants::default();
    let mut out = Vec::with_capacity(records.len());
    for (at, r) in records {
        let bad = |field: &'static str, problem: String| TraceError::Field {
            at: at.clone(),
            field,
            problem,
        };
        let mut spec = JobSpec::gang(
            JobId(0),
            tenants.id(&r.tenant),
            r.replicas,
            r.devices_per_replica,
        );
        spec.name = r.name.clone().unwrap_or_else(|| "job".into());
        spec.fraction_milli = r.fraction_milli;
        spec.models = r
            .models
            .iter()
            .map(|m| catalog.lookup(m))
            .collect::<Result<_, _>>()
            .map_err(|e| bad("models", e.to_string()))?;
        spec.stacks = r
            .stacks
            .iter()
            .map(|s| Stack::resolve(s).map_err(|e| bad("stacks", e.to_string())))
            .collect::<Result<_, _>>()?;
        if let Some(c) = &r.class {
            spec.class = PriorityClass::resolve(c).map_err(|e| bad("class", e.to_string()))?;
        }
        spec.workload = r.workload.clone();
        spec.estimated_runtime = r.estimate.map(Span::from_secs_f64);
        spec.cpu_milli = r.cpu_milli;
        spec.memory_mib = r.memory_mib;
        spec.device_memory_gib = r.device_memory_gib;
        spec.whole_nodes = r.whole_nodes;
        spec.submitted = Time(Span::from_secs_f64(r.submit).0);
        spec.validate()
            .map_err(|e| bad("replicas", e.to_string()))?;
        let base = match &r.duration_model {
            Some(m) => catalog
                .lookup(m)
                .map_err(|e| bad("duration_model", e.to_string()))?,
            None => reference,
        };
        out.push(SimJob {
            spec,
            work: r.duration,
            base,
        });
    }
    Ok(Workload {
        jobs: out,
        tenants: tenants.1,
        notes: vec![format!("job file: {} jobs", records.len())],
        leases: Vec::new(),
    }
    .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gangs_take_whole_nodes_or_even_parts() {
        assert_eq!(gang_shape(1, 8), (1, 1));
        assert_eq!(gang_shape(8, 8), (1, 8));
        assert_eq!(gang_shape(128, 8), (16, 8));
        assert_eq!(gang_shape(12, 8), (2, 6));
        assert_eq!(gang_shape(24, 8), (3, 8));
    }

    #[test]
    fn philly_jobs_become_gangs_of_virtual_cluster_tenants() {
        let jobs = vec![
            PhillyJob {
                submit: 100,
                duration: 50.0,
                gpus: 16,
                vc: "a".into(),
            },
            PhillyJob {
                submit: 40,
                duration: 10.0,
                gpus: 1,
                vc: "b".into(),
            },
        ];
        let w = philly(&jobs, ModelId(0), 8, 1.0);
        assert_eq!(w.tenants.len(), 2);
        assert_eq!(
            w.jobs[0].spec.submitted,
            Time(0),
            "sorted by arrival, relative to the first"
        );
        assert_eq!(
            (w.jobs[1].spec.replicas, w.jobs[1].spec.devices_per_replica),
            (2, 8)
        );
        assert_eq!(w.jobs[1].spec.estimated_runtime, Some(Span::from_secs(50)));
        assert_eq!(w.jobs[1].spec.id, JobId(1));
    }

    #[test]
    fn gavel_scales_beyond_the_matrix_are_extrapolated_and_said() {
        let c = Catalog::builtin();
        let mut m = ThroughputMatrix::new();
        m.insert(&gavel_class("A", 8), c.lookup("v100").unwrap(), 4.0)
            .unwrap();
        let jobs = [GavelJob {
            job_type: "A".into(),
            total_steps: 100,
            scale_factor: 32,
            arrival: 0.0,
            priority_weight: 1.0,
        }];
        let note = extend_gavel_scales(&mut m, &jobs).unwrap();
        assert!(note.contains("1 jobs at 32 GPUs"), "{note}");
        assert_eq!(
            m.get(&gavel_class("A", 32), c.lookup("v100").unwrap()),
            Some(16.0)
        );
    }
}
