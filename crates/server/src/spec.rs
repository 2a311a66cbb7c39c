//! From an API submission to the scheduler's job spec, and from a placement to the environment a replica's
//! processes get.

use std::collections::BTreeMap;
use wanka_api::SubmitJob;
use wanka_model::{
    AcceleratorModel, Catalog, JobId, JobSpec, PriorityClass, Span, Stack, TenantId, Time,
};

/// Port the rendezvous of a job listens on: spread by job id so that two jobs sharing a first node differ.
pub fn master_port(job: u64) -> u16 {
    29500 + (job % 2000) as u16
}

/// The scheduler's spec for a submission, or what is wrong with it.
pub fn job_spec(
    catalog: &Catalog,
    id: u64,
    tenant: TenantId,
    sub: &SubmitJob,
    submitted: Time,
) -> Result<JobSpec, String> {
    if sub.script.as_deref().is_none_or(|s| s.trim().is_empty()) && sub.command.is_empty() {
        return Err("nothing to run: give a `script` or a `command`".to_string());
    }
    let models = sub
        .models
        .iter()
        .map(|m| catalog.lookup(m).map_err(|e| format!("models: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let stacks = sub
        .stacks
        .iter()
        .map(|s| Stack::resolve(s).map_err(|e| format!("stacks: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let class = match &sub.class {
        None => PriorityClass::Standard,
        Some(c) => PriorityClass::resolve(c).map_err(|e| format!("class: {e}"))?,
    };
    if let Some(w) = &sub.workload
        && w.trim().is_empty()
    {
        return Err("workload: empty; leave it out to normalize by peak throughput".to_string());
    }
    if sub.tasks_per_node == 0 {
        return Err("tasks_per_node must be at least 1".to_string());
    }
    for key in sub.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(format!("env: '{key}' is not a valid variable name"));
        }
    }
    let spec = JobSpec {
        id: JobId(id),
        tenant,
        name: sub.name.clone().unwrap_or_else(|| format!("job-{id}")),
        class,
        replicas: sub.replicas,
        devices_per_replica: sub.devices_per_replica,
        fraction_milli: sub.fraction_milli,
        device_memory_gib: sub.device_memory_gib,
        cpu_milli: sub.cpu_milli,
        memory_mib: sub.memory_mib,
        models,
        stacks,
        workload: sub.workload.clone(),
        estimated_runtime: sub
            .time_limit_s
            .map(|s| Span::from_secs(s.min(i64::MAX as u64 / 1_000_000) as i64)),
        submitted,
        whole_nodes: sub.whole_nodes,
    };
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}

/// Facts of the current run the job's processes are told (the job contract).
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// WANKA_CHECKPOINT_DIR: kept across restarts.
    pub checkpoint_dir: String,
    /// WANKA_RESTART_COUNT: runs before this one.
    pub restarts: u32,
}

/// What one replica's processes are told about the job: the devices they may see (every variable the
/// model's runtime reads), the rendezvous (PyTorch's names) and Slurm's names for the same facts, so that
/// scripts written for either run unchanged. The user's own variables come last and win. Each process's
/// own rank (RANK, LOCAL_RANK, WORLD_SIZE, ...) is added by the agent that starts it
/// ([`wanka_api::process_env`]).
#[allow(clippy::too_many_arguments)]
pub fn replica_env(
    job: u64,
    name: &str,
    sub: &SubmitJob,
    model: &AcceleratorModel,
    rank: u32,
    devices: &[u32],
    nodes: &[String],
    master: &str,
    run: &Run,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let list = devices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    for var in &model.visible_devices_env {
        env.insert(var.clone(), list.clone());
    }
    let replicas = nodes.len() as u32;
    let per_node = devices.len() as u32;
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set("WANKA_JOB_ID", job.to_string());
    set("WANKA_CHECKPOINT_DIR", run.checkpoint_dir.to_string());
    set("WANKA_RESTART_COUNT", run.restarts.to_string());
    set(
        "WANKA_CHECKPOINT_SIGNAL",
        crate::recovery::checkpoint_signal(sub),
    );
    set("WANKA_JOB_NAME", name.to_string());
    set("WANKA_NODE_RANK", rank.to_string());
    set("WANKA_NNODES", replicas.to_string());
    set("WANKA_DEVICES_PER_NODE", per_node.to_string());
    set("WANKA_ACCELERATOR", model.name.clone());
    set("MASTER_ADDR", master.to_string());
    set("MASTER_PORT", master_port(job).to_string());
    set("NODE_RANK", rank.to_string());
    set("NNODES", replicas.to_string());
    set("NPROC_PER_NODE", per_node.max(1).to_string());
    set("SLURM_JOB_ID", job.to_string());
    set("SLURM_JOBID", job.to_string());
    set("SLURM_JOB_NAME", name.to_string());
    set("SLURM_NNODES", replicas.to_string());
    set("SLURM_JOB_NUM_NODES", replicas.to_string());
    set("SLURM_NODEID", rank.to_string());
    set("SLURM_JOB_NODELIST", nodes.join(","));
    set("SLURM_GPUS_ON_NODE", per_node.to_string());
    if let Some(p) = &sub.partition {
        set("SLURM_JOB_PARTITION", p.clone());
    }
    for (k, v) in &sub.env {
        env.insert(k.clone(), v.clone());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub() -> SubmitJob {
        SubmitJob {
            replicas: 2,
            devices_per_replica: 8,
            command: vec!["train.sh".into()],
            ..SubmitJob::default()
        }
    }

    #[test]
    fn submissions_become_specs_or_say_what_is_wrong() {
        let c = Catalog::builtin();
        let mut s = sub();
        s.models = vec!["H100".into()];
        s.time_limit_s = Some(3600);
        let spec = job_spec(&c, 9, TenantId(0), &s, Time(5)).unwrap();
        assert_eq!(spec.models.len(), 1);
        assert_eq!(spec.estimated_runtime, Some(Span::from_secs(3600)));
        assert_eq!(spec.name, "job-9");

        type Change = fn(&mut SubmitJob);
        let cases: [(Change, &str); 7] = [
            (
                |s| s.models = vec!["H1OO".into()],
                "models: unknown accelerator model 'H1OO'",
            ),
            (
                |s| s.stacks = vec!["opencl".into()],
                "unknown software stack 'opencl'",
            ),
            (
                |s| s.class = Some("urgent".into()),
                "unknown priority class 'urgent'",
            ),
            (|s| s.command.clear(), "nothing to run"),
            (|s| s.replicas = 0, "replicas must be at least 1"),
            (|s| s.fraction_milli = Some(500), "fraction"),
            (
                |s| s.tasks_per_node = 0,
                "tasks_per_node must be at least 1",
            ),
        ];
        for (change, expected) in cases {
            let mut s = sub();
            change(&mut s);
            let err = job_spec(&c, 9, TenantId(0), &s, Time(5)).unwrap_err();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }

    #[test]
    fn replicas_see_their_devices_and_the_rendezvous() {
        let c = Catalog::builtin();
        let model = c.model(c.lookup("H100").unwrap());
        let mut s = sub();
        s.env.insert("NCCL_DEBUG".into(), "INFO".into());
        s.env.insert("MASTER_PORT".into(), "12345".into());
        let nodes = vec!["n1".to_string(), "n2".to_string()];
        let run = Run {
            checkpoint_dir: "/ckpt/42".into(),
            restarts: 2,
        };
        let env = replica_env(
            42,
            "llm",
            &s,
            model,
            1,
            &[0, 1, 2, 3],
            &nodes,
            "10.0.0.1",
            &run,
        );
        assert_eq!(env["WANKA_CHECKPOINT_DIR"], "/ckpt/42");
        assert_eq!(env["WANKA_RESTART_COUNT"], "2");
        assert_eq!(env["WANKA_CHECKPOINT_SIGNAL"], "SIGUSR1");
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "0,1,2,3");
        assert_eq!(env["NPROC_PER_NODE"], "4");
        assert_eq!(env["NODE_RANK"], "1");
        assert_eq!(env["SLURM_JOB_NODELIST"], "n1,n2");
        assert_eq!(env["MASTER_ADDR"], "10.0.0.1");
        assert_eq!(env["NCCL_DEBUG"], "INFO");
        assert_eq!(env["MASTER_PORT"], "12345", "the user's variables win");
    }
}
