#!/usr/bin/env bash
# Reproduces the simulator results quoted in README.md ("Reproductions"). Needs the public traces in
# ../shared/traces (or TRACES=/path/to/traces). Writes every run's report.json, report.md and plots under
# sim-out/<name>/. Runs in a few minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TRACES:-../shared/traces}
cargo build --release -p wanka
W=./target/release/wanka
run() { name=$1; shift; echo "== $name"; "$W" "$@" --out "sim-out/$name"; }

# 1. Alibaba openb under the FGD paper's protocol (10 seeds), next to the authors' published results.
run openb-fgd sim --protocol fgd \
  --nodes "$T/alibaba-openb-2023/csv/openb_node_list_gpu_node.csv" --nodes-format openb \
  --trace "$T/alibaba-openb-2023/csv/openb_pod_list_default.csv" --trace-format openb \
  --policies best-fit,fgd,wanka --seeds 42-51 --tune 1.3 \
  --published "$T/alibaba-openb-2023/fgd-published-results/analysis_allo_discrete.csv"

# 2. Gavel: its generated traces on 8 K80 + 8 P100 + 8 V100 (Gavel published avg JCTs for these), and the
#    per-virtual-cluster Philly traces of seed 0 on 300 + 300 + 300, with Gavel's measured throughput matrix.
G="$T/gavel-philly-derived"
for t in philly_single_n100_r2.0_s0 philly_multi_n100_r1.0_s0; do
  run "gavel-$t" --throughput "$G/simulation_throughputs.json" sim \
    --cluster 1x8:k80,1x8:p100,1x8:v100 --trace "$G/generated/$t.trace" --trace-format gavel
done
run gavel-msr-seed0 --throughput "$G/simulation_throughputs.json" sim \
  --cluster 75x4:k80,75x4:p100,75x4:v100 --trace "$G/traces/msr/seed=0" --trace-format gavel

# 3. Philly: all 82,247 jobs, tenants = virtual clusters.
P="$T/philly-derived"
#   a. on Philly's own machine list (552 machines, 2,490 GPUs), trace durations as they are;
run philly-own sim --nodes "$P/cluster-config/cluster_machine_list.csv" --nodes-format philly --speed uniform \
  --trace "$P/philly_jobs_pollux.csv" --trace-format philly
#   b. the same with each virtual cluster held to its size (static partitions, Helios' VC table);
run philly-own-vc-quotas sim --nodes "$P/cluster-config/cluster_machine_list.csv" --nodes-format philly --speed uniform \
  --trace "$P/philly_jobs_pollux.csv" --trace-format philly \
  --tenant-quotas "$P/cluster-config/philly_vc_from_HeliosArtifact.csv"
#   c. on a 10,240-accelerator heterogeneous cluster (durations as measured on an A100-SXM4-80GB);
run philly-10240 sim --cluster 384x8:H800,384x8:A100-80G,256x8:910B3,256x8:MLU370-X8 \
  --trace "$P/philly_jobs_pollux.csv" --trace-format philly
#   d. the same with arrivals 100x denser, so that jobs contend (scheduling every 10 s of simulated time).
run philly-10240-x100 sim --cluster 384x8:H800,384x8:A100-80G,256x8:910B3,256x8:MLU370-X8 \
  --trace "$P/philly_jobs_pollux.csv" --trace-format philly --time-scale 100 --cycle 10
#   e. the virtual clusters as tenants leasing their share, strict partitions vs lending, arrivals 8x denser:
#      on 312 8-GPU nodes (as many GPUs as Philly) and on Philly's own machines.
run philly-leases-8gpu sim --cluster 312x8:philly-GPU-24GB --speed uniform --base-model philly-GPU-24GB \
  --trace "$P/philly_jobs_pollux.csv" --trace-format philly --policies wanka --time-scale 8 --cycle 10 \
  --tenant-leases "$P/cluster-config/philly_vc_from_HeliosArtifact.csv"
run philly-leases-own sim --nodes "$P/cluster-config/cluster_machine_list.csv" --nodes-format philly --speed uniform \
  --trace "$P/philly_jobs_pollux.csv" --trace-format philly --policies wanka --time-scale 8 --cycle 10 \
  --tenant-leases "$P/cluster-config/philly_vc_from_HeliosArtifact.csv"
