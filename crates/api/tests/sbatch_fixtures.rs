//! The sbatch parser on real, public LLM-training scripts (see tests/fixtures/sbatch/README.md).

use std::path::Path;
use wanka_api::sbatch::{Place, SbatchError, parse};

fn script(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sbatch")
            .join(name),
    )
    .unwrap()
}

#[test]
fn torchtitan_multinode_trainer() {
    let b = parse(Some(&script("torchtitan_multinode_trainer.slurm")), &[]).unwrap();
    let j = b.job;
    assert_eq!(j.name.as_deref(), Some("torchtitan_multi_node"));
    // 4 tasks over 4 nodes, 8 GPUs and 96 CPUs per task.
    assert_eq!((j.replicas, j.devices_per_replica), (4, 8));
    assert_eq!(j.cpu_milli, 96_000);
    assert_eq!(j.partition.as_deref(), Some("train"));
    assert!(j.script.unwrap().contains("srun torchrun --nnodes 4"));
}

#[test]
fn nanotron_long_context() {
    let j = parse(Some(&script("nanotron_long_context.slurm")), &[])
        .unwrap()
        .job;
    assert_eq!((j.replicas, j.devices_per_replica), (4, 8));
    assert_eq!(j.class.as_deref(), Some("guaranteed"), "--qos=high");
    assert_eq!(
        j.memory_mib, 0,
        "--mem=0 is the whole node's memory: no limit of the job's own"
    );
    assert_eq!(j.partition.as_deref(), Some("hopper-prod"));
}

#[test]
fn nanotron_train_ignores_disabled_lines() {
    let b = parse(Some(&script("nanotron_train.slurm")), &[]).unwrap();
    let j = b.job;
    assert_eq!((j.replicas, j.devices_per_replica), (2, 8));
    assert!(j.whole_nodes, "--exclusive");
    assert_eq!(j.cpu_milli, 96_000);
    assert_eq!(j.memory_mib, 11 * 1024 * 96, "--mem-per-cpu=11G x 96 CPUs");
    assert_eq!(
        j.stdout.as_deref(),
        Some("/fsx/nouamane/logs/moe/%x-%j-train.out")
    );
    assert!(b.array.is_empty(), "the #SBATCz --array line is disabled");
}

#[test]
fn megatron_reservation_is_refused_by_name_and_line() {
    let e = parse(Some(&script("megatron_deepseek_v3_slurm.sh")), &[]).unwrap_err();
    assert_eq!(
        e,
        SbatchError::Unsupported {
            place: Place::Line(9),
            option: "--reservation".into()
        }
    );
    // With the directive removed, the rest is honored.
    let text = script("megatron_deepseek_v3_slurm.sh")
        .replace("#SBATCH --reservation", "# removed --reservation");
    let j = parse(Some(&text), &[]).unwrap().job;
    assert_eq!(
        (j.replicas, j.devices_per_replica, j.cpu_milli),
        (8, 8, 226_000)
    );
    assert_eq!(j.time_limit_s, Some(3600));
}
