//! The simulator on small real-trace fixtures: every reader, every policy, and the same report twice.

use std::path::Path;
use wanka_model::{Catalog, Performance, Span, ThroughputMatrix};
use wanka_sched::Config;
use wanka_sim::cluster_spec::{self, Layout};
use wanka_sim::engine::{self, SimConfig};
use wanka_sim::inventory::{self, Network};
use wanka_sim::report::{self, Inputs, Report};
use wanka_sim::trace;
use wanka_sim::workload::{self, Speed, Workload};

fn fixture(name: &str) -> std::fs::File {
    std::fs::File::open(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn simulate(
    nodes: &[wanka_model::NodeSpec],
    w: &Workload,
    catalog: &Catalog,
    perf: &Performance,
    speed: Speed,
) -> String {
    let policies = Config::PRESETS
        .iter()
        .map(|name| {
            let cfg = SimConfig {
                name: name.to_string(),
                config: Config::preset(name).unwrap(),
                cycle: Span(0),
                checkpoint: Span::from_secs(30),
                restart: Span::from_secs(60),
                speed,
            };
            let outcome = engine::run(nodes, w, catalog, perf, &cfg, &mut |_, _| {}).unwrap();
            report::summarize(&outcome, &w.tenants)
        })
        .collect();
    let r = Report {
        schema: report::SCHEMA,
        inputs: Inputs {
            jobs: w.jobs.len(),
            ..Inputs::default()
        },
        policies,
    };
    serde_json::to_string(&r).unwrap()
}

#[test]
fn philly_replay_is_deterministic_and_completes_every_job() {
    let catalog = Catalog::builtin();
    let perf = Performance::new(&catalog, ThroughputMatrix::new()).unwrap();
    let nodes = cluster_spec::parse(
        "4x8:H800,4x8:910B3,2x8:MLU370-X8",
        &catalog,
        Layout::default(),
    )
    .unwrap();
    let jobs = trace::philly::read(fixture("philly_300.csv"), "philly_300.csv").unwrap();
    let w = workload::philly(&jobs, perf.reference(), 8, 1.0);
    let a = simulate(&nodes, &w, &catalog, &perf, Speed::Normalized);
    let b = simulate(&nodes, &w, &catalog, &perf, Speed::Normalized);
    assert_eq!(a, b, "same inputs, same report.json");
    let report: serde_json::Value = serde_json::from_str(&a).unwrap();
    for p in report["policies"].as_array().unwrap() {
        assert_eq!(p["completed"], 300, "{}", p["policy"]);
        assert!(p["allocation_ratio"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn openb_pods_replay_on_the_openb_node_list() {
    let catalog = Catalog::builtin();
    let perf = Performance::new(&catalog, ThroughputMatrix::new()).unwrap();
    let rows = inventory::read(
        inventory::Format::Openb,
        fixture("openb_nodes_40.csv"),
        "openb_nodes_40.csv",
    )
    .unwrap();
    let (nodes, _) =
        inventory::build(&rows, &catalog, &Network::Layout(Layout::default())).unwrap();
    let pods = trace::openb::read(fixture("openb_pods_120.csv"), "openb_pods_120.csv").unwrap();
    let w = workload::openb(&pods, "openb_pods_120.csv", &catalog, perf.reference()).unwrap();
    let a = simulate(&nodes, &w, &catalog, &perf, Speed::Uniform);
    assert_eq!(a, simulate(&nodes, &w, &catalog, &perf, Speed::Uniform));
    let report: serde_json::Value = serde_json::from_str(&a).unwrap();
    let wanka = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == "wanka")
        .unwrap();
    assert!(wanka["completed"].as_u64().unwrap() > 0);
}

#[test]
fn gavel_jobs_run_for_steps_over_their_measured_throughput() {
    let catalog = Catalog::builtin();
    let jobs = trace::gavel::read(fixture("gavel_multi_30.trace"), "gavel_multi_30.trace").unwrap();
    // A tiny matrix for the job types of the fixture: V100 twice as fast as P100, four times K80.
    let mut matrix = ThroughputMatrix::new();
    for j in &jobs {
        let class = wanka_model::throughput::gavel_class(&j.job_type, j.scale_factor);
        for (gpu, tput) in [("k80", 1.0), ("p100", 2.0), ("v100", 4.0)] {
            matrix
                .insert(&class, catalog.lookup(gpu).unwrap(), tput)
                .unwrap();
        }
    }
    let perf = Performance::new(&catalog, matrix).unwrap();
    let models: Vec<_> = ["k80", "p100", "v100"]
        .iter()
        .map(|m| catalog.lookup(m).unwrap())
        .collect();
    let tagged: Vec<(String, _)> = jobs.into_iter().map(|j| ("gavel".to_string(), j)).collect();
    let w = workload::gavel(&tagged, &perf, &models, 8).unwrap();
    let nodes =
        cluster_spec::parse("1x8:k80,1x8:p100,1x8:v100", &catalog, Layout::default()).unwrap();
    let cfg = SimConfig {
        name: "gavel".into(),
        config: Config::gavel(),
        cycle: Span(0),
        checkpoint: Span::from_secs(30),
        restart: Span::from_secs(60),
        speed: Speed::Normalized,
    };
    let o = engine::run(&nodes, &w, &catalog, &perf, &cfg, &mut |_, _| {}).unwrap();
    let first = &o.jobs[0];
    let model = catalog.model(first.model.unwrap()).name.clone();
    let held = first.held_s;
    let steps = tagged[0].1.total_steps as f64;
    let tput = match model.as_str() {
        "K80" => 1.0,
        "P100-PCIE-16GB" => 2.0,
        _ => 4.0,
    };
    // The first job ran uninterrupted: it held its devices for steps / throughput seconds.
    assert!(
        (held - steps / tput).abs() <= 1.0,
        "{model}: held {held} s for {steps} steps at {tput}/s"
    );
    assert_eq!(o.jobs.iter().filter(|j| j.end.is_some()).count(), 30);
}
