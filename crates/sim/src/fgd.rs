//! The FGD paper's packing protocol on Alibaba openb (Weng et al., ATC'23, and its Kubernetes scheduler
//! simulator): pods arrive one by one in a shuffled order with no departures; the trace is "tuned" by adding
//! randomly drawn copies of its pods until the arrived GPU demand reaches `tune` × the cluster's GPUs; a pod
//! that cannot be placed when it arrives is dropped. The result is the GPU allocation ratio (allocated GPU
//! thousandths / all GPU thousandths) at each whole percent of arrived demand, the published table's columns.

use crate::workload::SimJob;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wanka_model::{Catalog, JobId, NodeSpec, Performance, Tenant, TenantId, Time};
use wanka_sched::{Config, CoreError, Decision, Scheduler};

/// The pods in arrival order: the trace plus drawn copies up to `tune` × capacity, shuffled with `seed`.
pub fn arrivals(
    pods: &[SimJob],
    demand: &[u64],
    capacity_milli: u64,
    tune: f64,
    seed: u64,
) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..pods.len()).collect();
    let mut total: u64 = demand.iter().sum();
    let target = (capacity_milli as f64 * tune) as u64;
    while total < target && !pods.is_empty() {
        let i = rng.random_range(0..pods.len());
        order.push(i);
        total += demand[i];
    }
    for i in (1..order.len()).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}

/// GPU demand of a job, thousandths of a GPU (0 for a host-only job).
pub fn demand(job: &SimJob) -> u64 {
    let s = &job.spec;
    s.fraction_milli
        .map_or(s.total_devices() as u64 * 1000, u64::from)
}

/// What every run of the protocol shares: the cluster and the normalizer.
pub struct Cluster<'a> {
    /// Nodes.
    pub nodes: &'a [NodeSpec],
    /// Catalog.
    pub catalog: &'a Catalog,
    /// Normalizer.
    pub perf: &'a Performance,
}

/// Runs the protocol for one policy and one seed. Returns the allocation ratio (0..1) at each whole percent
/// of arrived demand, from 0 to `tune` × 100.
pub fn run(
    cluster: &Cluster<'_>,
    pods: &[SimJob],
    demand: &[u64],
    config: Config,
    tune: f64,
    seed: u64,
) -> Result<Vec<f64>, CoreError> {
    let nodes = cluster.nodes;
    let mut s = Scheduler::new(config, cluster.catalog.clone(), cluster.perf.clone())?;
    s.upsert_tenant(Tenant::new(TenantId(0), "openb"));
    for n in nodes {
        s.add_node(n.clone())?;
    }
    let capacity: u64 = nodes.iter().map(|n| n.devices as u64 * 1000).sum();
    let order = arrivals(pods, demand, capacity, tune, seed);
    let points = (tune * 100.0).round() as usize;
    let mut ratio = vec![0.0; points + 1];
    let (mut arrived, mut allocated, mut next_point) = (0u64, 0u64, 0usize);
    for (k, &i) in order.iter().enumerate() {
        let mut spec = pods[i].spec.clone();
        spec.id = JobId(k as u64);
        spec.submitted = Time(k as i64);
        s.submit(spec)?;
        let plan = s.schedule_arrivals(Time(k as i64));
        match plan.decisions.first() {
            Some(Decision::Start { allocation, .. }) => {
                // A host-only pod holds no GPU.
                if pods[i].spec.devices_per_replica > 0 {
                    allocated += allocation.device_milli();
                }
            }
            _ => s.cancel(JobId(k as u64))?,
        }
        arrived += demand[i];
        while next_point <= points && arrived * 100 >= next_point as u64 * capacity {
            ratio[next_point] = allocated as f64 / capacity as f64;
            next_point += 1;
        }
    }
    for r in ratio.iter_mut().skip(next_point) {
        *r = allocated as f64 / capacity as f64;
    }
    Ok(ratio)
}

/// The published allocation ratios (`analysis_allo_discrete.csv` of the FGD artifact): mean over seeds of
/// each policy's ratio (%) at `percent` arrived demand, for one workload file.
pub fn published(
    text: &str,
    workload: &str,
    percent: usize,
) -> Result<Vec<(String, f64, usize)>, String> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = rdr.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or(format!("no column '{name}'"))
    };
    let (w, p, c) = (
        col("workload")?,
        col("sc_policy")?,
        col(&percent.to_string())?,
    );
    let mut sums: Vec<(String, f64, usize)> = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        if &rec[w] != workload || rec[c].is_empty() {
            continue;
        }
        let v: f64 = rec[c]
            .parse()
            .map_err(|_| format!("'{}' is not a number", &rec[c]))?;
        match sums.iter_mut().find(|(n, _, _)| n == &rec[p]) {
            Some(e) => {
                e.1 += v;
                e.2 += 1;
            }
            None => sums.push((rec[p].to_string(), v, 1)),
        }
    }
    Ok(sums
        .into_iter()
        .map(|(n, s, k)| (n, s / k as f64, k))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wanka_model::{JobSpec, NodeId, ThroughputMatrix, Topology};

    #[test]
    fn tuning_adds_pods_until_the_target_and_shuffles_deterministically() {
        let pods: Vec<SimJob> = (0..10)
            .map(|i| SimJob {
                spec: JobSpec::gang(JobId(i), TenantId(0), 1, 1),
                work: 1.0,
                base: wanka_model::ModelId(0),
            })
            .collect();
        let demand = vec![1000; 10];
        let a = arrivals(&pods, &demand, 10_000, 1.3, 42);
        assert_eq!(a.len(), 13);
        assert_eq!(a, arrivals(&pods, &demand, 10_000, 1.3, 42));
        assert_ne!(a, arrivals(&pods, &demand, 10_000, 1.3, 43));
    }

    #[test]
    fn allocation_is_read_at_each_percent_of_arrived_demand() {
        let c = Catalog::builtin();
        let p = Performance::new(&c, ThroughputMatrix::new()).unwrap();
        let node = NodeSpec {
            id: NodeId(0),
            name: "n".into(),
            model: c.lookup("T4").unwrap(),
            devices: 2,
            domains: vec![],
            cpu_milli: 1000,
            memory_mib: 1000,
            topology: Topology {
                spine: "s".into(),
                leaf: "l".into(),
            },
        };
        // Two 1-GPU pods fill the node; the third finds no room.
        let pods: Vec<SimJob> = (0..3)
            .map(|i| SimJob {
                spec: JobSpec::gang(JobId(i), TenantId(0), 1, 1),
                work: 1.0,
                base: node.model,
            })
            .collect();
        let demand = vec![1000; 3];
        let nodes = [node];
        let cluster = Cluster {
            nodes: &nodes,
            catalog: &c,
            perf: &p,
        };
        let r = run(&cluster, &pods, &demand, Config::wanka(), 1.5, 1).unwrap();
        assert_eq!(r.len(), 151);
        assert_eq!(r[50], 0.5);
        assert_eq!(r[100], 1.0);
        assert_eq!(r[150], 1.0);
    }

    #[test]
    fn published_table_is_averaged_over_seeds() {
        let text = "workload,sc_policy,tune,seed,total_gpus,99,100\nw,06-FGD,1.3,42,6212,95,95.2\nw,06-FGD,1.3,43,6212,95,95.4\nw,05-BestFit,1.3,42,6212,92,92.9\nx,06-FGD,1.3,42,6212,1,1\n";
        let p = published(text, "w", 100).unwrap();
        assert_eq!(p[0].0, "06-FGD");
        assert!((p[0].1 - 95.3).abs() < 1e-9 && p[0].2 == 2);
        assert_eq!(p[1], ("05-BestFit".to_string(), 92.9, 1));
    }
}
