//! `wanka sim` end to end, as a user runs it: two runs with the same inputs write identical report.json files,
//! the plots are there, and a malformed trace is refused with its file, line and field.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/tests/fixtures")
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wanka-sim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn sim(out: &Path, trace: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wanka"))
        .args([
            "sim",
            "--cluster",
            "4x8:H800,4x8:910B3",
            "--trace-format",
            "philly",
            "--trace",
        ])
        .arg(trace)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run wanka")
}

#[test]
fn the_same_run_twice_writes_the_same_report() {
    let trace = fixtures().join("philly_300.csv");
    let (a, b) = (out_dir("a"), out_dir("b"));
    for dir in [&a, &b] {
        let out = sim(dir, &trace);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("| wanka | 300/300 |"), "{stdout}");
    }
    let report = |d: &Path| std::fs::read(d.join("report.json")).unwrap();
    assert_eq!(
        report(&a),
        report(&b),
        "report.json differs between identical runs"
    );
    for file in ["allocation.svg", "jct_cdf.svg", "report.md", "timing.json"] {
        assert!(a.join(file).exists(), "{file} missing");
    }
    let json: serde_json::Value = serde_json::from_slice(&report(&a)).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["policies"].as_array().unwrap().len(), 6);
    for d in [a, b] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_malformed_trace_line_is_refused_with_its_place() {
    let text = std::fs::read_to_string(fixtures().join("philly_300.csv")).unwrap();
    let bad = text.replacen(",66.0,1,66.0,", ",66.0,one,66.0,", 1);
    let dir = out_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("bad.csv");
    std::fs::write(&trace, bad).unwrap();
    let out = sim(&dir.join("out"), &trace);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.csv:2: field 'num_gpus': 'one'"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `wanka sim-failures` on one rate and one write time, with the options given.
fn sim_failures(seeds: &str, days: &str, more: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wanka"))
        .args([
            "sim-failures",
            "--rates",
            "3.8",
            "--writes",
            "10",
            "--seeds",
            seeds,
            "--days",
            days,
        ])
        .args(more)
        .output()
        .unwrap()
}

#[test]
fn sim_failures_prints_the_ettr_table_and_replays_a_fault_log() {
    let stepfun = fixtures().join("stepfun_faults_60.json");
    let out = sim_failures(
        "2",
        "10",
        &[
            "--stepfun".as_ref(),
            stepfun.as_os_str(),
            "--titan".as_ref(),
            "/nonexistent".as_ref(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| 3.8 | 10 |"))
        .collect();
    // Both policies, with the write blocking (stop 10 s) and asynchronous (stop 1 s).
    assert_eq!(rows.len(), 4, "{text}");
    let cells = |r: &str| -> Vec<String> { r.split('|').map(|c| c.trim().to_string()).collect() };
    // Each row: simulated ETTR within 2 points of the model's.
    for r in &rows {
        let diff: f64 = cells(r)[12].parse().unwrap();
        assert!(diff.abs() < 0.02, "{r}");
    }
    let wanka: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cells(r))
        .filter(|c| c[4] == "wanka")
        .collect();
    assert_eq!(
        (wanka[0][3].as_str(), wanka[1][3].as_str()),
        ("10", "1 (async)")
    );
    let ettr = |c: &Vec<String>| c[10].parse::<f64>().unwrap();
    assert!(ettr(&wanka[1]) > ettr(&wanka[0]), "{text}");
    assert!(text.contains("StepFun InfiniteHBD fault trace"), "{text}");
    assert!(
        text.contains("(Titan GPU history not found at /nonexistent"),
        "{text}"
    );
    let bad = out_dir("stepfun-bad");
    std::fs::create_dir_all(&bad).unwrap();
    let file = bad.join("faults.json");
    std::fs::write(&file, r#"[{"node_id": "a", "event_type": "fault_start"}]"#).unwrap();
    let out = sim_failures("1", "1", &["--stepfun".as_ref(), file.as_os_str()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !out.status.success() && err.contains("event 0: no 'event_time'"),
        "{err}"
    );
}

#[test]
fn sim_failures_replays_a_titan_style_gpu_history() {
    let dir = out_dir("titan");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gc_full.csv");
    // The layout of Titan's gc_full.csv (SC'20 "GPU Lifetimes on Titan"), with made-up serials and times.
    let mut csv = String::from("SN,location,insert,remove,duration,out,event\n");
    for i in 0..40 {
        let event = ["DBE", "OTB", "", ""][i % 4];
        csv.push_str(&format!(
            "S{i},c{i}-0c0s0n0,2017-01-01 00:00:00,2017-01-{:02} 12:00:00,1,FALSE,{event}\n",
            1 + i % 28
        ));
    }
    std::fs::write(&file, &csv).unwrap();
    let run = || {
        let no = "/nonexistent".as_ref();
        sim_failures(
            "1",
            "1",
            &[
                "--stepfun".as_ref(),
                no,
                "--titan".as_ref(),
                file.as_os_str(),
            ],
        )
    };
    let text = String::from_utf8(run().stdout).unwrap();
    assert!(
        text.contains("20 GPU failures (DBE, OTB) on 40 nodes of 1 GPU"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("| 10 | ")).count(),
        4,
        "{text}"
    );
    std::fs::write(&file, csv.replace("2017-01-05 12:00:00", "5 Jan 2017")).unwrap();
    let err = String::from_utf8(run().stderr).unwrap();
    assert!(
        err.contains("line 6: remove time '5 Jan 2017' is not YYYY-MM-DD HH:MM:SS"),
        "{err}"
    );
}

#[test]
fn tenant_leases_run_strict_and_lending_side_by_side() {
    let out = out_dir("leases");
    std::fs::create_dir_all(&out).unwrap();
    let vcs = out.join("vcs.csv");
    std::fs::write(&vcs, "vc,node num\n6214e9,2\n11cb48,1\nee9e8c,1\n").unwrap();
    let run = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_wanka"))
            .args(["sim", "--cluster", "8x8:H800", "--policies", "wanka"])
            .args(["--trace-format", "philly", "--time-scale", "20", "--trace"])
            .arg(fixtures().join("philly_300.csv"))
            .arg("--tenant-leases")
            .arg(file)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("run wanka")
    };
    let o = run(&vcs);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = std::fs::read_to_string(out.join("leases.md")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let policies = json["policies"].as_array().unwrap();
    let names: Vec<&str> = policies
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["wanka strict", "wanka lending"], "{table}");
    let (strict, lending) = (&policies[0]["leases"], &policies[1]["leases"]);
    // 64 devices: the three listed tenants lease 32, 16 and 16; strict partitions never borrow.
    assert_eq!(
        strict["device_hours"]["borrowed"].as_f64().unwrap_or(0.0),
        0.0
    );
    assert!(
        lending["device_hours"]["borrowed"].as_f64().unwrap() > 0.0,
        "{table}"
    );
    assert_eq!(lending["violations"], 0, "{table}");
    assert_eq!(policies[1]["completed"], 300, "{table}");
    let alloc = |p: &serde_json::Value| p["allocation_saturated"].as_f64().unwrap();
    assert!(alloc(&policies[1]) >= alloc(&policies[0]), "{table}");
    // One model: its share under saturation is the cluster's (up to the interval after the last cycle).
    for p in policies {
        let by_model = p["allocation_saturated_by_model"]["H800-SXM5-80GB"]
            .as_f64()
            .unwrap();
        assert!(
            (by_model - alloc(p)).abs() < 0.01,
            "{by_model} vs {}",
            alloc(p)
        );
    }
    assert!(
        table.contains("wanka lending: alloc saturated by model: H800-SXM5-80GB "),
        "{table}"
    );
    assert!(table.contains("| 6214e9 | 284 | 32 |"), "{table}");

    std::fs::write(&vcs, "vc,node num\n6214e9,two\n").unwrap();
    let o = run(&vcs);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("vcs.csv:2: the second column must be a whole number of nodes"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(out);
}
