//! The README's walk-through, run for real: a server, then the CLI (and its sbatch/squeue/scancel/sinfo
//! names) from the directory holding the server's data, finding the admin token there.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../api/tests/fixtures/sbatch")
        .join(name)
}

fn run(dir: &Path, program: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("WANKA_SERVER", url)
        .env_remove("WANKA_TOKEN")
        .env("WANKA_CONFIG", dir.join("no-config.toml"))
        .output()
        .expect("the binary runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn submit_a_script_and_see_it_in_the_queue() {
    let dir = std::env::temp_dir().join(format!("wanka-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (mut server, url) = common::start(&dir.join("wanka-data"));
    let wanka = PathBuf::from(env!("CARGO_BIN_EXE_wanka"));
    let linked = |name: &str| {
        let link = dir.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(&wanka, &link).unwrap();
        }
        link
    };

    let script = fixture("torchtitan_multinode_trainer.slurm");
    let out = ok(run(
        &dir,
        &wanka,
        &url,
        &["submit", script.to_str().unwrap()],
    ));
    assert_eq!(out, "Submitted batch job 1\n");
    let table = ok(run(&dir, &wanka, &url, &["jobs"]));
    assert!(table.starts_with("JOBID"), "{table}");
    assert!(
        table.contains("torchtitan_multi_node") && table.contains(" PD "),
        "{table}"
    );

    let sbatch = linked("sbatch");
    let out = ok(run(
        &dir,
        &sbatch,
        &url,
        &[
            "--parsable",
            "-N",
            "1",
            "--gpus-per-node=2",
            "--wrap",
            "true",
        ],
    ));
    assert_eq!(out, "2\n");
    let squeue = ok(run(&dir, &linked("squeue"), &url, &["-t", "PD", "-h"]));
    assert_eq!(squeue.lines().count(), 2, "{squeue}");
    assert!(squeue.contains("wrap"), "{squeue}");
    let out = ok(run(&dir, &linked("scancel"), &url, &["2"]));
    assert_eq!(out, "job 2: cancelled\n");
    let show = ok(run(&dir, &wanka, &url, &["job", "show", "2"]));
    assert!(show.contains("State: cancelled (CA)"), "{show}");
    assert!(show.contains("submitted by the admin token"), "{show}");
    let sinfo = ok(run(&dir, &linked("sinfo"), &url, &[]));
    assert!(sinfo.starts_with("MODEL"), "{sinfo}");

    // An unsupported directive is refused with its line, and nothing is submitted.
    let megatron = fixture("megatron_deepseek_v3_slurm.sh");
    let out = run(&dir, &wanka, &url, &["submit", megatron.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported #SBATCH directive --reservation"),
        "{err}"
    );
    let out = run(&dir, &linked("squeue"), &url, &["--format=%i"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("option --format=%i is not supported"));
    let all = ok(run(&dir, &wanka, &url, &["jobs", "--all"]));
    assert_eq!(all.lines().count(), 3, "{all}");

    server.kill();
    std::fs::remove_dir_all(&dir).unwrap();
}
