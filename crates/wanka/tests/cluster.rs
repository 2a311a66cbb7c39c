//! End to end under `wanka dev`: real agents running real processes. A 2-node × 2-device job prints its
//! environment (every variable checked, through `wanka logs`); a cancelled job's process group is gone; a
//! killed agent's node is declared lost and its job requeued, and the restarted agent stops what the server
//! moved on from; an agent restarted in time re-adopts its running task and reports its exit code; a fault
//! injected into a simulated device takes it out of service.

mod common;

use common::Server;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wanka_api::{JobState, NodeState};
use wanka_server::client::Client;

const BIN: &str = env!("CARGO_BIN_EXE_wanka");

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wanka-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A dev cluster in `dir` with these node groups; returns it, its URL and an admin client.
fn dev(dir: &Path, nodes: &[&str], node_timeout: u64) -> (Server, String, Client) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--heartbeat-s",
        "0.2",
        "--kill-grace",
        "2",
    ])
    .args(["--node-timeout", &node_timeout.to_string(), "--data-dir"])
    .arg(dir);
    for n in nodes {
        cmd.args(["--node", n]);
    }
    let (server, url) = common::spawn(cmd);
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let client = Client::new(&url, Some(token.trim().to_string()));
    (server, url, client)
}

/// Runs the CLI against the cluster with the admin token.
fn cli(dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("WANKA_SERVER", url)
        .env("WANKA_TOKEN_FILE", dir.join("admin.token"))
        .output()
        .unwrap()
}

/// Runs the CLI against the cluster; its stdout, or a panic with its stderr.
fn wanka(dir: &Path, url: &str, args: &[&str]) -> String {
    let out = cli(dir, url, args);
    assert!(
        out.status.success(),
        "wanka {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn submit(dir: &Path, url: &str, args: &[&str]) -> u64 {
    let mut all = vec!["submit", "--parsable"];
    all.extend_from_slice(args);
    wanka(dir, url, &all).trim().parse().unwrap()
}

/// Polls until `check` holds (async runtime of its own: the tests are synchronous).
fn wait_for<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn job(c: &Client, id: u64) -> wanka_api::JobView {
    rt().block_on(c.job(id)).unwrap()
}

fn wait_state(c: &Client, id: u64, state: JobState, secs: u64) -> wanka_api::JobView {
    wait_for(&format!("job {id} {state:?}"), secs, || {
        let j = job(c, id);
        (j.state == state).then_some(j)
    })
}

/// Process group ids of the processes whose command line contains `needle`.
fn groups_running(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = e.path();
        let Ok(cmdline) = std::fs::read(p.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains(needle) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(p.join("stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields[0] != "Z" {
            out.push(fields[2].parse().unwrap());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether any live process belongs to group `pgid`.
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
            let rest = &stat[stat.rfind(')').unwrap() + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            f[0] != "Z" && f[2].parse::<i32>() == Ok(pgid)
        })
    })
}

#[test]
fn a_two_node_job_gets_its_environment_and_its_output_is_read_back() {
    let dir = temp("env");
    let (_cluster, url, admin) = dev(&dir, &["H100:2x2", "MLU370-X8:1x2"], 30);
    let script = dir.join("env.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n#SBATCH -N 2\n#SBATCH --gpus-per-node=2\n#SBATCH --ntasks-per-node=2\n\
         #SBATCH --constraint=H100\n#SBATCH -J envdump\n\
         env | grep -E '^(CUDA_VISIBLE_DEVICES|MASTER_ADDR|MASTER_PORT|WORLD_SIZE|RANK|LOCAL_RANK|\
         LOCAL_WORLD_SIZE|NODE_RANK|WANKA_JOB_ID|SLURM_PROCID|SLURM_NTASKS)=' | sort\n\
         echo \"stderr of $RANK\" >&2\n",
    )
    .unwrap();
    let id = submit(&dir, &url, &[script.to_str().unwrap()]);
    let j = wait_state(&admin, id, JobState::Completed, 60);
    let nodes: Vec<&str> = j.replicas.iter().map(|r| r.node.as_str()).collect();
    assert_eq!(nodes, ["h100-1", "h100-2"], "one replica per 2-device node");

    let out = wanka(&dir, &url, &["logs", &id.to_string(), "--stream", "stdout"]);
    let mut seen: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in out.lines() {
        let (who, kv) = line.split_once("] ").unwrap_or_else(|| panic!("{line}"));
        let (k, v) = kv.split_once('=').unwrap();
        seen.entry(who.trim_start_matches('[').to_string())
            .or_default()
            .insert(k.into(), v.into());
    }
    assert_eq!(seen.len(), 4, "{out}");
    let port = (29500 + id % 2000).to_string();
    for (who, env) in &seen {
        let (node_rank, local): (u32, u32) = {
            let (a, b) = who.split_once('.').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        };
        let expect = [
            ("CUDA_VISIBLE_DEVICES", "0,1".to_string()),
            ("MASTER_ADDR", "127.0.0.1".into()),
            ("MASTER_PORT", port.clone()),
            ("WORLD_SIZE", "4".into()),
            ("RANK", (node_rank * 2 + local).to_string()),
            ("LOCAL_RANK", local.to_string()),
            ("LOCAL_WORLD_SIZE", "2".into()),
            ("NODE_RANK", node_rank.to_string()),
            ("WANKA_JOB_ID", id.to_string()),
            ("SLURM_PROCID", (node_rank * 2 + local).to_string()),
            ("SLURM_NTASKS", "4".into()),
        ];
        for (k, v) in expect {
            assert_eq!(env.get(k), Some(&v), "{who} {k}: {env:?}");
        }
    }
    let err = Command::new(BIN)
        .args(["logs", &id.to_string(), "--stream", "stderr", "--rank", "1"])
        .env("WANKA_SERVER", &url)
        .env("WANKA_TOKEN_FILE", dir.join("admin.token"))
        .output()
        .unwrap();
    let err = String::from_utf8(err.stderr).unwrap();
    assert_eq!(err, "[1.0] stderr of 2\n[1.1] stderr of 3\n");

    // Follow mode on a running job prints lines as they come and ends with the job.
    let id = submit(
        &dir,
        &url,
        &[
            "--gpus-per-node=1",
            "--wrap",
            "for i in 1 2 3; do echo line $i; sleep 0.3; done",
        ],
    );
    let followed = wanka(&dir, &url, &["logs", &id.to_string(), "--follow"]);
    assert_eq!(followed, "line 1\nline 2\nline 3\n");
    assert_eq!(job(&admin, id).state, JobState::Completed);
}

#[test]
fn cancelling_a_job_ends_its_whole_process_group() {
    let dir = temp("cancel");
    let (_cluster, url, admin) = dev(&dir, &["H100:1x2"], 30);
    let marker = format!("sleep 6{}", std::process::id() % 1000);
    let id = submit(
        &dir,
        &url,
        &[
            "--gpus-per-node=2",
            "--wrap",
            &format!("{marker} & {marker} & wait"),
        ],
    );
    wait_state(&admin, id, JobState::Running, 30);
    let groups = wait_for("the job's processes", 10, || {
        let g = groups_running(&marker);
        (!g.is_empty()).then_some(g)
    });
    assert_eq!(
        groups.len(),
        1,
        "one process group for the task: {groups:?}"
    );
    wanka(&dir, &url, &["cancel", &id.to_string()]);
    wait_for("the process group to end", 15, || {
        (!group_alive(groups[0])).then_some(())
    });
    assert_eq!(job(&admin, id).state, JobState::Cancelled);

    // A fault injected into a simulated device (through the API) reaches the server with the next
    // heartbeat: the device leaves service, and comes back when the fault is cleared (here by editing the
    // faults file the API wrote).
    wanka(
        &dir,
        &url,
        &[
            "nodes",
            "fault",
            "h100-1",
            "--device",
            "1",
            "--xid",
            "79",
            "--ecc-corrected",
            "12",
        ],
    );
    let faults = dir.join("nodes/h100-1/devices.toml.faults.toml");
    let node = wait_for("the fault to arrive", 15, || {
        let n = rt().block_on(admin.nodes()).unwrap().remove(0);
        (n.unhealthy == [1]).then_some(n)
    });
    let d = &node.telemetry[1];
    assert_eq!(
        (d.health.as_deref(), d.faults.as_slice(), d.ecc_corrected),
        (Some("Critical"), &["xid-79".to_string()][..], Some(12))
    );
    assert!(node.telemetry[0].healthy);
    assert!(
        std::fs::read_to_string(&faults)
            .unwrap()
            .contains("xid = [79]")
    );
    std::fs::write(&faults, "").unwrap();
    wait_for("the fault to clear", 15, || {
        rt().block_on(admin.nodes()).unwrap()[0]
            .unhealthy
            .is_empty()
            .then_some(())
    });
}

/// A `wanka agent` process of its own, with simulated devices, once its node is ready.
fn agent(dir: &Path, url: &str, admin: &Client, name: &str) -> Child {
    agent_with(dir, url, admin, name, &["--heartbeat-s", "0.2"])
}

/// [`agent`] with its heartbeat and probe options given.
fn agent_with(dir: &Path, url: &str, admin: &Client, name: &str, timing: &[&str]) -> Child {
    let work = dir.join(name);
    std::fs::create_dir_all(&work).unwrap();
    let devices = work.join("devices.toml");
    std::fs::write(&devices, "model = \"T4\"\ncount = 2\n").unwrap();
    let child = Command::new(BIN)
        .args(["agent", "--backend", "simulated", "--name", name])
        .args(timing)
        .arg("--devices")
        .arg(&devices)
        .arg("--work-dir")
        .arg(&work)
        .env("WANKA_SERVER", url)
        .env("WANKA_TOKEN_FILE", dir.join("admin.token"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&format!("{name} to register"), 30, || {
        (node_state(admin, name) == Some(NodeState::Ready)).then_some(())
    });
    child
}

fn node_state(c: &Client, name: &str) -> Option<NodeState> {
    rt().block_on(c.nodes())
        .unwrap()
        .into_iter()
        .find(|n| n.name == name)
        .map(|n| n.state)
}

#[test]
fn a_killed_agent_loses_its_node_and_a_restarted_one_stops_what_moved_on() {
    let dir = temp("lost");
    let (_cluster, url, admin) = dev(&dir, &["H100:1x2"], 2);
    let mut a = agent(&dir, &url, &admin, "t4-1");
    let marker = format!("sleep 7{}", std::process::id() % 1000);
    let id = submit(
        &dir,
        &url,
        &["--constraint=T4", "--gpus-per-node=2", "--wrap", &marker],
    );
    wait_state(&admin, id, JobState::Running, 30);
    let orphan = wait_for("the task", 10, || groups_running(&marker).first().copied());
    a.kill().unwrap();
    a.wait().unwrap();
    wait_for("t4-1 to be lost", 30, || {
        (node_state(&admin, "t4-1") == Some(NodeState::Lost)).then_some(())
    });
    wait_state(&admin, id, JobState::Pending, 10);
    let events = rt().block_on(admin.events(id)).unwrap();
    let last = events.last().unwrap();
    assert!(
        last.reason.contains("node t4-1 lost: no heartbeat"),
        "{last:?}"
    );
    assert!(
        last.reason.ends_with("requeued to restart (restart 1)"),
        "{last:?}"
    );
    // The task outlived its agent (its shim leads its own group)...
    assert!(group_alive(orphan));
    // ...until the agent comes back: the server says that run moved on, and the agent stops it. The job
    // then runs again (attempt 2) on the returned node.
    let mut a = agent(&dir, &url, &admin, "t4-1");
    wait_for("the stale task to be stopped", 30, || {
        (!group_alive(orphan)).then_some(())
    });
    let j = wait_state(&admin, id, JobState::Running, 30);
    assert_eq!(j.replicas[0].node, "t4-1");
    wanka(&dir, &url, &["cancel", &id.to_string()]);
    wait_for("the second run to end", 20, || {
        groups_running(&marker).is_empty().then_some(())
    });
    a.kill().unwrap();
    a.wait().unwrap();
}

#[test]
fn an_agent_restarted_in_time_re_adopts_its_task_and_reports_its_exit() {
    let dir = temp("adopt");
    let (_cluster, url, admin) = dev(&dir, &["H100:1x2"], 60);
    let mut a = agent(&dir, &url, &admin, "t4-2");
    let release = dir.join("release");
    let id = submit(
        &dir,
        &url,
        &[
            "--constraint=T4",
            "--gpus-per-node=1",
            "--wrap",
            &format!(
                "echo before; while [ ! -e {} ]; do sleep 0.1; done; echo after; exit 7",
                release.display()
            ),
        ],
    );
    wait_state(&admin, id, JobState::Running, 30);
    a.kill().unwrap();
    a.wait().unwrap();
    let mut a = agent(&dir, &url, &admin, "t4-2");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&release, "").unwrap();
    let j = wait_state(&admin, id, JobState::Failed, 30);
    assert_eq!(j.exit_code, Some(7), "the exit code came through the shim");
    assert_eq!(
        rt().block_on(admin.events(id)).unwrap().len(),
        4,
        "no requeue: pending, starting, running, failed"
    );
    let out = wanka(&dir, &url, &["logs", &id.to_string()]);
    assert_eq!(out, "before\nafter\n");
    a.kill().unwrap();
    a.wait().unwrap();
}

#[test]
fn an_agent_says_what_is_wrong_with_its_setup() {
    let dir = temp("setup");
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .env("WANKA_SERVER", "http://127.0.0.1:9")
            .env("WANKA_TOKEN", "wk_test")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    };
    let config = dir.join("agent.toml");
    std::fs::write(&config, "name = \"n1\"\nbakend = \"nvml\"\n").unwrap();
    let e = run(&["agent", "--config", config.to_str().unwrap()]);
    assert!(e.contains("agent.toml: not a valid agent config"), "{e}");
    assert!(e.contains("bakend"), "{e}");
    let e = run(&["agent", "--backend", "cuda"]);
    assert!(e.contains("unknown device backend 'cuda'"), "{e}");
    // Without the NVIDIA driver (as on CI), NVML finds nothing: a clear error, not a crash.
    if !Path::new("/dev/nvidiactl").exists() {
        let e = run(&["agent", "--backend", "nvml"]);
        assert!(
            e.contains("no accelerators found by the nvml backend"),
            "{e}"
        );
    }
    let devices = dir.join("devices.toml");
    std::fs::write(&devices, "model = \"H1OO\"\ncount = 2\n").unwrap();
    let e = run(&[
        "agent",
        "--backend",
        "simulated",
        "--devices",
        devices.to_str().unwrap(),
    ]);
    assert!(e.contains("unknown accelerator model 'H1OO'"), "{e}");
}

/// The result the training stand-in (examples/checkpointing-job.sh) reaches after `steps` steps, however
/// often it was restarted.
fn undisturbed(steps: u64) -> u64 {
    (1..=steps).fold(1, |acc, s| (acc * 31 + s) % 1_000_000_007)
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Makes h100-3 a hot spare, submits the stand-in as a 2-node × 2-device job (it lands on h100-1 and
/// h100-2), its checkpoint writes taking `write_s` seconds in the background (0: blocking writes), and waits
/// until it has made `progress` steps.
fn start_training(
    dir: &Path,
    url: &str,
    admin: &Client,
    steps: u64,
    write_s: f64,
    progress: u64,
) -> u64 {
    wanka(dir, url, &["nodes", "spare", "h100-3"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/checkpointing-job.sh");
    let wrap = format!(
        "STEPS={steps} EVERY=10 DT=0.05 WRITE_S={write_s} exec /bin/sh {}",
        script.canonicalize().unwrap().display()
    );
    let id = submit(
        dir,
        url,
        &[
            "-N",
            "2",
            "--gpus-per-node=2",
            "-J",
            "train",
            "--wrap",
            &wrap,
        ],
    );
    let j = wait_for(&format!("job {id} to reach step {progress}"), 60, || {
        let j = job(admin, id);
        j.progress.clone().filter(|p| p.step >= progress).map(|_| j)
    });
    let nodes: Vec<&str> = j.replicas.iter().map(|r| r.node.as_str()).collect();
    assert_eq!(
        nodes,
        ["h100-1", "h100-2"],
        "the spare takes no ordinary work"
    );
    id
}

/// Checks the job completed with the undisturbed result on every rank, away from `avoid`.
fn check_result(dir: &Path, url: &str, admin: &Client, id: u64, steps: u64, avoid: &str) {
    let j = wait_state(admin, id, JobState::Completed, 90);
    assert!(
        j.replicas.iter().all(|r| r.node != avoid),
        "{:?}",
        j.replicas
    );
    let out = wanka(dir, url, &["logs", &id.to_string(), "--stream", "stdout"]);
    let want = undisturbed(steps);
    for rank in 0..2 {
        let line = format!("rank {rank}: result {want} after {steps} steps");
        assert!(out.contains(&line), "no '{line}' in\n{out}");
    }
}

/// The job's first event whose reason matches `pred`, once there is one.
fn wait_event(
    admin: &Client,
    id: u64,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> wanka_api::JobEvent {
    wait_for(what, 30, || {
        rt().block_on(admin.events(id))
            .unwrap()
            .into_iter()
            .find(|e| pred(&e.reason))
    })
}

/// The number that follows `marker` in `text`.
fn number_after(text: &str, marker: &str) -> u64 {
    let rest = text
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no '{marker}' in {text}"));
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn an_xid_79_restarts_the_job_from_its_checkpoint_on_a_healthy_node() {
    let dir = temp("xid");
    let (_cluster, url, admin) = dev(&dir, &["H100:3x2"], 30);
    let steps = 80;
    let id = start_training(&dir, &url, &admin, steps, 0.0, 25);
    let j = job(&admin, id);
    let victim = j.replicas[1].node.clone();
    let before = j.progress.clone().unwrap();
    let injected = now_s();
    wanka(
        &dir,
        &url,
        &["nodes", "fault", &victim, "--device", "1", "--xid", "79"],
    );
    let restart = wait_event(&admin, id, "the restart", |r| r.contains("XID 79"));
    assert_eq!(restart.state, JobState::Starting);
    let expected = format!(
        "{victim} device 1: health Critical; XID 79 (GPU has fallen off the bus): drain the node; \
         restarted at once from the checkpoint of step"
    );
    assert!(restart.reason.starts_with(&expected), "{}", restart.reason);
    assert!(
        restart.reason.ends_with("on hot spare h100-3 (restart 1)"),
        "{}",
        restart.reason
    );
    let nodes = rt().block_on(admin.nodes()).unwrap();
    let sick = nodes.iter().find(|n| n.name == victim).unwrap();
    assert_eq!(
        (sick.state, sick.held.as_slice()),
        (NodeState::Cordoned, &[1][..])
    );
    let shown = wanka(&dir, &url, &["nodes", "events", &victim]);
    assert!(
        shown.contains("hold-device") && shown.contains("cordon"),
        "{shown}"
    );
    let listed = wanka(&dir, &url, &["nodes"]);
    assert!(listed.contains("cordoned"), "{listed}");
    let node_events = rt().block_on(admin.node_events(&victim)).unwrap();
    assert!(
        node_events.iter().any(|e| e.action == "cordon"),
        "{node_events:?}"
    );
    check_result(&dir, &url, &admin, id, steps, &victim);
    let done = job(&admin, id).progress.unwrap();
    let ckpt = number_after(&restart.reason, "checkpoint of step ");
    eprintln!(
        "xid 79: detected and acted on {:.3} s after injection; step at injection {}, restarted from checkpoint {}: \
         {} steps redone; restarts {}; ETTR {:.3} ({:.1} s productive of {:.1} s)",
        restart.at - injected,
        before.step,
        ckpt,
        before.step.saturating_sub(ckpt),
        done.restarts,
        done.ettr,
        done.productive_s,
        done.wall_s
    );
    assert_eq!(done.restarts, 1);
    assert_eq!(done.step, steps);
    let shown = wanka(&dir, &url, &["job", "show", &id.to_string()]);
    assert!(
        shown.contains("step 80, checkpoint step 80, ETTR 0."),
        "{shown}"
    );
    assert!(
        restart.at - injected < 5.0,
        "detection took {:.2} s",
        restart.at - injected
    );
}

#[test]
fn rising_correctable_ecc_moves_the_job_after_a_checkpoint() {
    move_after_rising_ecc("ecc", 0.0);
}

#[test]
fn a_job_writing_its_checkpoints_in_the_background_moves_once_the_asked_one_is_durable() {
    move_after_rising_ecc("ecc-async", 0.3);
}

/// Raises a device's correctable ECC count under the stand-in (its checkpoints taking `write_s` seconds in the
/// background, or blocking when 0): the job checkpoints, is moved to the hot spare, and ends with the undisturbed
/// result. The move waits for a checkpoint of the step reached when it was asked for, however long its write.
fn move_after_rising_ecc(name: &str, write_s: f64) {
    let dir = temp(name);
    let (_cluster, url, admin) = dev(&dir, &["H100:3x2"], 30);
    let steps = 80;
    let id = start_training(&dir, &url, &admin, steps, write_s, 15);
    let victim = job(&admin, id).replicas[0].node.clone();
    let fault = |n: &str| {
        wanka(
            &dir,
            &url,
            &[
                "nodes",
                "fault",
                &victim,
                "--device",
                "0",
                "--ecc-corrected",
                n,
            ],
        );
    };
    // The counter the device started with, then a burst of correctable errors.
    fault("0");
    std::thread::sleep(Duration::from_millis(500));
    let injected = now_s();
    fault("600");
    let signal = wait_event(&admin, id, "the move to start", |r| {
        r.contains("correctable ECC errors rose by 600")
    });
    assert_eq!(signal.state, JobState::Preempting);
    assert!(
        signal.reason.contains("sent SIGUSR1 to checkpoint"),
        "{}",
        signal.reason
    );
    let asked_at = number_after(&signal.reason, "to checkpoint (at step ");
    let written = wait_event(&admin, id, "the checkpoint", |r| {
        r.contains("written; stopping with SIGTERM to move")
    });
    let stopped_at = job(&admin, id).progress.unwrap().step;
    let leaving = format!("moved off {victim}: left with");
    let moved = wait_event(&admin, id, "the move", |r| r.starts_with(&leaving));
    let ckpt = number_after(&written.reason, "step ");
    let from = number_after(&moved.reason, "from the checkpoint of step ");
    assert!(from >= ckpt, "{}", moved.reason);
    assert!(
        moved
            .reason
            .ends_with(&format!("of step {from} on hot spare h100-3 (restart 1)")),
        "{}",
        moved.reason
    );
    // The checkpoint came after the move began, and before the stop.
    assert!(signal.at <= written.at && written.at <= moved.at);
    check_result(&dir, &url, &admin, id, steps, &victim);
    let p = job(&admin, id).progress.unwrap();
    let out = wanka(
        &dir,
        &url,
        &["logs", &id.to_string(), "--stream", "stdout", "--rank", "0"],
    );
    eprintln!(
        "ecc precursor (writes {write_s} s): move started {:.3} s after the rise, checkpoint of step {ckpt} (asked at \
         step {asked_at}) durable {:.3} s after the signal, training reached step {stopped_at} meanwhile, restarted \
         on the spare {:.3} s after injection; ETTR {:.3}; restarts {}; second run: {}",
        signal.at - injected,
        written.at - signal.at,
        moved.at - injected,
        p.ettr,
        p.restarts,
        out.lines().next().unwrap_or("")
    );
    // The server names the last checkpoint it heard of; the second run starts there.
    let resumed = number_after(&out, "run 1 starts at step ");
    assert!(resumed >= from, "{out}");
    assert_eq!(p.restarts, 1);
    assert!(
        ckpt >= asked_at,
        "a checkpoint begun before the request ended the wait: {ckpt} < {asked_at}"
    );
    if write_s > 0.0 {
        // Training went on while the checkpoint was written (the steps made meanwhile are reported before it).
        assert!(stopped_at > ckpt, "step {stopped_at}, checkpoint {ckpt}");
    }
}

#[test]
fn a_fault_reaches_the_server_within_a_probe_period_not_a_heartbeat_period() {
    let dir = temp("probe");
    let (_cluster, url, admin) = dev(&dir, &["H100:1x2"], 120);
    let mut a = agent_with(
        &dir,
        &url,
        &admin,
        "t4-3",
        &["--heartbeat-s", "60", "--probe-s", "0.2"],
    );
    let faults = dir.join("t4-3/devices.toml.faults.toml");
    let written = Instant::now();
    std::fs::write(&faults, "[[fault]]\ndevice = 1\nxid = [48]\n").unwrap();
    wait_for("the fault to reach the server", 10, || {
        let n = rt().block_on(admin.nodes()).unwrap();
        n.iter()
            .any(|n| n.name == "t4-3" && n.unhealthy == [1])
            .then_some(())
    });
    let took = written.elapsed();
    eprintln!(
        "a fault written to the faults file reached the server in {took:?} (probe 0.2 s, heartbeat 60 s)"
    );
    assert!(took < Duration::from_secs(10));
    a.kill().unwrap();
    a.wait().unwrap();
}

/// Runs the CLI expecting it to fail; its stderr.
fn wanka_fails(dir: &Path, url: &str, args: &[&str]) -> String {
    let out = cli(dir, url, args);
    assert!(!out.status.success(), "wanka {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_lease_owner_reclaims_its_devices_from_a_borrower_that_checkpoints() {
    let dir = temp("lease");
    let (_cluster, url, admin) = dev(&dir, &["H100:2x2"], 30);
    for t in ["a", "b"] {
        wanka(&dir, &url, &["tenants", "put", t]);
    }
    let now = now_s() as i64;
    let (from, to) = (format!("@{}", now - 60), format!("@{}", now + 86_400));
    let lease = |tenant: &str, devices: &str, model: &str| {
        [
            "leases",
            "add",
            "--tenant",
            tenant,
            "--model",
            model,
            "--devices",
            devices,
            "--from",
            &from,
            "--to",
            &to,
        ]
        .map(str::to_string)
    };
    // a leases a class (the H100s are the only Hopper installed), b the model.
    for (t, model) in [("a", "hopper-80g"), ("b", "H100")] {
        let args = lease(t, "2", model);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        wanka(&dir, &url, &args);
    }
    let listed = wanka(&dir, &url, &["leases"]);
    assert!(
        listed.contains("H100-SXM5-80GB (class hopper-80g)"),
        "{listed}"
    );
    let args = lease("a", "1", "H100");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = wanka_fails(&dir, &url, &args);
    eprintln!("refused lease: {err}");
    assert!(
        err.contains("4 installed and 4 already promised") && err.contains("short by 1"),
        "{err}"
    );
    wanka(
        &dir,
        &url,
        &[
            "prices",
            "set",
            "H100",
            "--leased",
            "2",
            "--on-demand",
            "3",
            "--preemptible",
            "1",
        ],
    );

    // b runs one job in its lease and the checkpointing stand-in on a's idle lease, borrowed.
    let b1 = submit(
        &dir,
        &url,
        &["-A", "b", "--gpus-per-node=2", "--wrap", "sleep 60"],
    );
    wait_state(&admin, b1, JobState::Running, 30);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/checkpointing-job.sh");
    let steps = 60;
    let wrap = format!(
        "STEPS={steps} EVERY=5 DT=0.05 CHECKPOINT_ON_TERM=1 exec /bin/sh {}",
        script.canonicalize().unwrap().display()
    );
    let b2 = submit(
        &dir,
        &url,
        &[
            "-A",
            "b",
            "--gpus-per-node=2",
            "-J",
            "borrower",
            "--wrap",
            &wrap,
        ],
    );
    wait_for("the borrower to reach step 12", 60, || {
        job(&admin, b2).progress.filter(|p| p.step >= 12)
    });
    wait_event(&admin, b2, "the borrowed start", |r| {
        r.contains("2 borrowed device(s)")
    });
    let show = wanka(&dir, &url, &["job", "show", &b2.to_string()]);
    assert!(
        show.contains("borrowed (another tenant's idle lease"),
        "{show}"
    );

    // a needs its lease: the borrower gets SIGTERM, checkpoints and leaves; a starts on its devices.
    let a1 = submit(
        &dir,
        &url,
        &["-A", "a", "--gpus-per-node=2", "--wrap", "sleep 60"],
    );
    let a = wait_state(&admin, a1, JobState::Running, 30);
    let reclaim = a.started_at.unwrap() - a.submitted_at;
    let e = wait_event(&admin, b2, "the reclaim", |r| {
        r.contains("tenant 'a' reclaims its leased devices")
    });
    eprintln!(
        "lease reclaim: owner's job started {reclaim:.3} s after submission (borrower told at {:.3} s)",
        e.at - a.submitted_at
    );
    assert!(reclaim < 300.0, "beyond the reclaim grace: {reclaim}");
    // Once b's own job ends the borrower resumes from its checkpoint within b's lease and ends with the
    // undisturbed result.
    wanka(&dir, &url, &["cancel", &b1.to_string()]);
    let j = wait_state(&admin, b2, JobState::Completed, 60);
    assert_eq!(j.replicas.len(), 1);
    let out = wanka(&dir, &url, &["logs", &b2.to_string(), "--stream", "stdout"]);
    let resumed = number_after(&out, "run 1 starts at step ");
    assert!(resumed >= 10, "{out}");
    assert!(
        out.contains(&format!(
            "result {} after {steps} steps",
            undisturbed(steps)
        )),
        "{out}"
    );
    wanka(&dir, &url, &["cancel", &a1.to_string()]);
    wait_state(&admin, a1, JobState::Cancelled, 30);

    // Usage: one record per run, kinds as they ran; they add up to the device-time in the job events.
    let csv = wanka(&dir, &url, &["usage", "--format", "csv"]);
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let kinds: Vec<(u64, &str)> = rows.iter().map(|r| (r[0].parse().unwrap(), r[4])).collect();
    assert!(
        kinds.contains(&(b1, "leased"))
            && kinds.contains(&(b2, "borrowed"))
            && kinds.contains(&(b2, "leased"))
            && kinds.contains(&(a1, "leased")),
        "{csv}"
    );
    let recorded: f64 = rows.iter().map(|r| r[8].parse::<f64>().unwrap()).sum();
    let mut from_events = 0.0;
    for id in [a1, b1, b2] {
        from_events +=
            wanka_api::held_seconds(&rt().block_on(admin.events(id)).unwrap()) * 2.0 / 3600.0;
    }
    // The CSV rounds each record to 6 decimals of a device-hour.
    assert!(
        (recorded - from_events).abs() < 1e-5 * rows.len() as f64,
        "records {recorded} vs events {from_events}\n{csv}"
    );
    let invoice = wanka(&dir, &url, &["invoice", "--tenant", "b"]);
    assert!(
        invoice.contains("lease 2 (2 devices)") && invoice.contains("borrowed"),
        "{invoice}"
    );
}
