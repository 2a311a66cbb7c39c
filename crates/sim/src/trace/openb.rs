//! Alibaba openb pods (`openb_pod_list_*.csv`, ATC'23 FGD): `name, cpu_milli, memory_mib, num_gpu, gpu_milli,
//! gpu_spec, qos, pod_phase, creation_time, deletion_time, scheduled_time`. `gpu_milli` is the share of one GPU
//! for a GPU-sharing pod (`num_gpu` = 1); `gpu_spec` lists the allowed GPU models, `|`-separated.

use super::{Location, TraceError, columns};
use std::io::Read;

/// One pod.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenbPod {
    /// Pod name.
    pub name: String,
    /// CPU request, thousandths of a core.
    pub cpu_milli: u64,
    /// Memory request, MiB.
    pub memory_mib: u64,
    /// Whole GPUs (0 for a CPU-only pod).
    pub num_gpu: u32,
    /// Thousandths of one GPU for a sharing pod; 1000 for whole GPUs; 0 for CPU-only.
    pub gpu_milli: u32,
    /// Allowed GPU models (trace spellings); empty means any.
    pub gpu_spec: Vec<String>,
    /// Kubernetes QoS class as written (LS, BE, Burstable, Guaranteed).
    pub qos: String,
    /// Final phase in the trace.
    pub phase: String,
    /// Creation time, seconds.
    pub creation: i64,
    /// Deletion time, seconds.
    pub deletion: i64,
    /// Scheduling time, seconds, if it was ever scheduled.
    pub scheduled: Option<i64>,
}

impl OpenbPod {
    /// GPU demand in thousandths of a GPU.
    pub fn gpu_demand_milli(&self) -> u64 {
        if self.num_gpu == 1 {
            self.gpu_milli as u64
        } else {
            self.num_gpu as u64 * 1000
        }
    }
}

/// Reads a pod list. Any malformed line is an error naming file, line and field.
pub fn read(input: impl Read, file: &str) -> Result<Vec<OpenbPod>, TraceError> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(input);
    let names = [
        "name",
        "cpu_milli",
        "memory_mib",
        "num_gpu",
        "gpu_milli",
        "gpu_spec",
        "qos",
        "pod_phase",
        "creation_time",
        "deletion_time",
        "scheduled_time",
    ];
    let cols = columns(&mut rdr, file, &names)?;
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| super::csv_error(file, e))?;
        let at = Location {
            file: file.to_string(),
            line: rec.position().map_or(0, |p| p.line()),
        };
        let get = |i: usize| rec[cols[i]].trim();
        let bad = |i: usize, problem: &str| TraceError::Field {
            at: at.clone(),
            field: names[i],
            problem: format!("'{}' {problem}", get(i)),
        };
        let int = |i: usize| {
            get(i)
                .parse::<i64>()
                .map_err(|_| bad(i, "is not a whole number"))
        };
        let uint = |i: usize| {
            get(i)
                .parse::<u64>()
                .map_err(|_| bad(i, "is not a whole number >= 0"))
        };
        let num_gpu = uint(3)?;
        let gpu_milli = uint(4)?;
        if num_gpu > 64 {
            return Err(bad(3, "is more GPUs than any node has"));
        }
        let consistent = match num_gpu {
            0 => gpu_milli == 0,
            1 => (1..=1000).contains(&gpu_milli),
            _ => gpu_milli == 1000,
        };
        if !consistent {
            return Err(bad(
                4,
                &format!(
                    "does not fit num_gpu = {num_gpu} (0 for CPU pods, 1-1000 for one GPU, 1000 for several)"
                ),
            ));
        }
        let scheduled = if get(10).is_empty() {
            None
        } else {
            Some(int(10)?)
        };
        out.push(OpenbPod {
            name: get(0).to_string(),
            cpu_milli: uint(1)?,
            memory_mib: uint(2)?,
            num_gpu: num_gpu as u32,
            gpu_milli: gpu_milli as u32,
            gpu_spec: get(5)
                .split('|')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            qos: get(6).to_string(),
            phase: get(7).to_string(),
            creation: int(8)?,
            deletion: int(9)?,
            scheduled,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of openb_pod_list_gpuspec33.csv and openb_pod_list_default.csv (alibaba/clusterdata,
    /// cluster-trace-gpu-v2023, "openb"; see ../shared/traces/alibaba-openb-2023 for its terms).
    const SAMPLE: &str = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
openb-pod-0000,12000,16384,1,1000,,LS,Running,0,12537496,0
openb-pod-0001,6000,12288,1,460,,LS,Running,427061,12902960,427061
openb-pod-0017,88000,327680,8,1000,,Burstable,Succeeded,9437497,10769854,9437497
openb-pod-0035,16000,32768,1,1000,V100M16|V100M32,LS,Running,9967058,9968575,9967063
openb-pod-0100,2000,4096,0,0,,BE,Pending,10000000,10000100,
";

    #[test]
    fn reads_sharing_multi_gpu_constrained_and_pending_pods() {
        let pods = read(SAMPLE.as_bytes(), "openb.csv").unwrap();
        assert_eq!(pods.len(), 5);
        assert_eq!(pods[1].gpu_demand_milli(), 460);
        assert_eq!(pods[2].gpu_demand_milli(), 8000);
        assert_eq!(pods[3].gpu_spec, vec!["V100M16", "V100M32"]);
        assert_eq!(pods[4].scheduled, None);
        assert_eq!(pods[4].gpu_demand_milli(), 0);
    }

    #[test]
    fn inconsistent_rows_name_the_field() {
        let text = SAMPLE.replace(
            "openb-pod-0017,88000,327680,8,1000",
            "openb-pod-0017,88000,327680,8,500",
        );
        let err = read(text.as_bytes(), "openb.csv").unwrap_err().to_string();
        assert_eq!(
            err,
            "openb.csv:4: field 'gpu_milli': '500' does not fit num_gpu = 8 (0 for CPU pods, 1-1000 for one GPU, 1000 for several)"
        );
        let text = SAMPLE.replace("12000,16384", "12k,16384");
        let err = read(text.as_bytes(), "openb.csv").unwrap_err().to_string();
        assert!(err.starts_with("openb.csv:2: field 'cpu_milli'"), "{err}");
    }
}
