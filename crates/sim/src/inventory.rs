//! Real node lists and network topologies, turned into the scheduler's nodes.
//!
//! Readers: Alibaba openb (`openb_node_list_*.csv`: sn, cpu_milli, memory_mib, gpu, model), Alibaba's spot-GPU
//! cluster (`node_info_df.csv`: gpu_model, gpu_capacity_num, cpu_num, node_name), Alibaba PAI
//! (`pai_machine_spec.csv`, no header: machine, gpu_type, cap_cpu, cap_mem, cap_gpu) and Microsoft Philly
//! (`cluster_machine_list.csv`: machineId, number of GPUs, single GPU mem). Nodes without accelerators are left
//! out (wanka schedules accelerator nodes) and counted. Host resources a list does not give are not a constraint.
//! Topology comes from a generated leaf/spine layout or from a real 3-layer Clos (`topo.csv` of Alibaba's
//! Crux dataset: ip, DSW, PSW, ASW), whose hosts are handed out in order.

use crate::cluster_spec::Layout;
use crate::trace::{Location, TraceError, columns, csv_error};
use std::io::Read;
use thiserror::Error;
use wanka_model::{Catalog, NodeId, NodeSpec, Topology};

/// Host capacity used where a node list does not give it.
pub const UNKNOWN_HOST: u64 = u64::MAX / 1024;

/// A node as a list describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    /// Where it was read.
    pub at: Location,
    /// Host name.
    pub name: String,
    /// Accelerator model as the list spells it.
    pub model: String,
    /// Accelerators.
    pub devices: u32,
    /// CPU, thousandths of a core.
    pub cpu_milli: u64,
    /// Host memory, MiB.
    pub memory_mib: u64,
}

/// Which node-list format a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Alibaba openb node list.
    Openb,
    /// Alibaba spot-GPU node_info_df.csv.
    AlibabaSpot,
    /// Alibaba PAI machine spec.
    Pai,
    /// Microsoft Philly cluster_machine_list.csv.
    Philly,
}

impl Format {
    /// Every format with its name.
    pub const ALL: [(Format, &'static str); 4] = [
        (Format::Openb, "openb"),
        (Format::AlibabaSpot, "alibaba-spot"),
        (Format::Pai, "pai"),
        (Format::Philly, "philly"),
    ];

    /// Parses a format name.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
    }
}

fn field(at: &Location, name: &'static str, value: &str, problem: &str) -> TraceError {
    TraceError::Field {
        at: at.clone(),
        field: name,
        problem: format!("'{value}' {problem}"),
    }
}

fn number<T: std::str::FromStr>(
    at: &Location,
    name: &'static str,
    value: &str,
) -> Result<T, TraceError> {
    value
        .trim()
        .parse()
        .map_err(|_| field(at, name, value, "is not a whole number >= 0"))
}

/// Reads a node list in the given format.
pub fn read(format: Format, input: impl Read, file: &str) -> Result<Vec<NodeRow>, TraceError> {
    let headers = format != Format::Pai;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(headers)
        .from_reader(input);
    let wanted: &[&'static str] = match format {
        Format::Openb => &["sn", "cpu_milli", "memory_mib", "gpu", "model"],
        Format::AlibabaSpot => &["node_name", "gpu_model", "gpu_capacity_num", "cpu_num"],
        Format::Philly => &["machineId", "number of GPUs", "single GPU mem"],
        Format::Pai => &[],
    };
    let cols = if headers {
        columns(&mut rdr, file, wanted)?
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_error(file, e))?;
        let at = Location {
            file: file.to_string(),
            line: rec.position().map_or(0, |p| p.line()),
        };
        let get = |i: usize| {
            rec.get(if headers { cols[i] } else { i })
                .unwrap_or("")
                .trim()
        };
        let row = match format {
            Format::Openb => NodeRow {
                name: get(0).to_string(),
                cpu_milli: number(&at, "cpu_milli", get(1))?,
                memory_mib: number(&at, "memory_mib", get(2))?,
                devices: number(&at, "gpu", get(3))?,
                model: get(4).to_string(),
                at,
            },
            Format::AlibabaSpot => NodeRow {
                name: get(0).to_string(),
                model: get(1).to_string(),
                devices: number(&at, "gpu_capacity_num", get(2))?,
                cpu_milli: number::<u64>(&at, "cpu_num", get(3))? * 1000,
                memory_mib: UNKNOWN_HOST,
                at,
            },
            Format::Pai => {
                if rec.len() != 5 {
                    return Err(TraceError::Format {
                        at,
                        problem: format!(
                            "{} columns; a PAI machine spec has 5 (machine, gpu_type, cap_cpu, cap_mem, cap_gpu)",
                            rec.len()
                        ),
                    });
                }
                NodeRow {
                    name: get(0).to_string(),
                    model: get(1).to_string(),
                    cpu_milli: number::<u64>(&at, "cap_cpu", get(2))? * 1000,
                    memory_mib: number::<u64>(&at, "cap_mem", get(3))? * 1024,
                    devices: number(&at, "cap_gpu", get(4))?,
                    at,
                }
            }
            Format::Philly => {
                let mem = get(2);
                let gib = mem
                    .strip_suffix("GB")
                    .and_then(|g| g.trim().parse::<u32>().ok())
                    .ok_or_else(|| field(&at, "single GPU mem", mem, "is not like '12GB'"))?;
                NodeRow {
                    name: get(0).to_string(),
                    model: format!("philly-GPU-{gib}GB"),
                    devices: number(&at, "number of GPUs", get(1))?,
                    cpu_milli: UNKNOWN_HOST,
                    memory_mib: UNKNOWN_HOST,
                    at,
                }
            }
        };
        out.push(row);
    }
    Ok(out)
}

/// A host's place in a real network: (leaf, spine).
pub type Place = (String, String);

/// Reads the Crux `topo.csv` (ip, DSW, PSW, ASW) as places ordered by core, aggregation and ToR switch, so that
/// consecutive nodes share racks.
pub fn read_clos(input: impl Read, file: &str) -> Result<Vec<Place>, TraceError> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(input);
    let cols = columns(&mut rdr, file, &["ip", "DSW", "PSW", "ASW"])?;
    let mut hosts = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_error(file, e))?;
        let at = Location {
            file: file.to_string(),
            line: rec.position().map_or(0, |p| p.line()),
        };
        let get = |i: usize| rec[cols[i]].trim().to_string();
        let (dsw, psw, asw) = (get(1), get(2), get(3));
        if dsw.is_empty() || psw.is_empty() || asw.is_empty() {
            return Err(TraceError::Format {
                at,
                problem: "a host without DSW, PSW or ASW".into(),
            });
        }
        hosts.push((dsw, psw, asw, get(0)));
    }
    hosts.sort();
    Ok(hosts
        .into_iter()
        .map(|(dsw, psw, asw, _)| (format!("{dsw}/{psw}/{asw}"), format!("{dsw}/{psw}")))
        .collect())
}

/// How nodes are placed in the network.
#[derive(Clone, Debug)]
pub enum Network {
    /// Generated leaf/spine layout, nodes in list order.
    Layout(Layout),
    /// Real hosts, handed out in order.
    Hosts(Vec<Place>),
}

/// A node list that cannot be turned into nodes.
#[derive(Debug, Error)]
pub enum InventoryError {
    /// A model the catalog does not know.
    #[error("{at}: {source}")]
    Model {
        /// Where.
        at: Location,
        /// The lookup error.
        source: wanka_model::UnknownModel,
    },
    /// Not enough hosts in the topology.
    #[error("the topology has {hosts} hosts but the node list has {nodes} accelerator nodes")]
    Hosts {
        /// Hosts in the topology.
        hosts: usize,
        /// Nodes to place.
        nodes: usize,
    },
}

/// Turns rows into nodes with ids from 0, leaving out rows without accelerators. Returns the nodes and the
/// number of rows left out.
pub fn build(
    rows: &[NodeRow],
    catalog: &Catalog,
    network: &Network,
) -> Result<(Vec<NodeSpec>, usize), InventoryError> {
    let gpu_rows: Vec<&NodeRow> = rows.iter().filter(|r| r.devices > 0).collect();
    if let Network::Hosts(hosts) = network
        && hosts.len() < gpu_rows.len()
    {
        return Err(InventoryError::Hosts {
            hosts: hosts.len(),
            nodes: gpu_rows.len(),
        });
    }
    let mut nodes = Vec::with_capacity(gpu_rows.len());
    for (i, r) in gpu_rows.iter().enumerate() {
        let model = catalog
            .lookup(&r.model)
            .map_err(|source| InventoryError::Model {
                at: r.at.clone(),
                source,
            })?;
        let (leaf, spine) = match network {
            Network::Layout(l) => {
                let leaf = i as u32 / l.nodes_per_leaf;
                (
                    format!("leaf-{leaf}"),
                    format!("spine-{}", leaf / l.leaves_per_spine),
                )
            }
            Network::Hosts(hosts) => hosts[i].clone(),
        };
        nodes.push(NodeSpec {
            id: NodeId(i as u32),
            name: r.name.clone(),
            model,
            devices: r.devices,
            domains: Vec::new(),
            cpu_milli: r.cpu_milli,
            memory_mib: r.memory_mib,
            topology: Topology { spine, leaf },
        });
    }
    Ok((nodes, rows.len() - gpu_rows.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rows from the real files (see ../shared/traces/*/PROVENANCE.md for sources and terms).
    const OPENB: &str = "sn,cpu_milli,memory_mib,gpu,model\nopenb-node-0000,64000,262144,2,P100\nopenb-node-0227,32000,262144,0,\nopenb-node-0228,128000,786432,8,G3\n";
    const SPOT: &str = "gpu_model,gpu_capacity_num,cpu_num,node_name\nGPU-series-1,4,192,0\nA100-SXM4-80GB,8,128,3\n";
    const PAI: &str = "7399a758eb02bae1a3621236,CPU,96,512,0\n0b9e1d1f2d1a,V100M32,96,512,8\n";
    const PHILLY: &str = "machineId, number of GPUs, single GPU mem\nm0,2, 12GB\nm100,8, 24GB\n";
    const CLOS: &str = "ip,DSW,PSW,ASW\nh2,G6,P12,S2\nh1,G6,P10,S14\nh3,G6,P10,S14\n";

    #[test]
    fn every_format_reads_and_builds() {
        let c = Catalog::builtin();
        let layout = Network::Layout(Layout::default());
        for (format, text, nodes, skipped) in [
            (Format::Openb, OPENB, 2, 1),
            (Format::AlibabaSpot, SPOT, 2, 0),
            (Format::Pai, PAI, 1, 1),
            (Format::Philly, PHILLY, 2, 0),
        ] {
            let rows = read(format, text.as_bytes(), "list.csv").unwrap();
            let (built, left_out) = build(&rows, &c, &layout).unwrap();
            assert_eq!((built.len(), left_out), (nodes, skipped), "{format:?}");
        }
        let rows = read(Format::Philly, PHILLY.as_bytes(), "p.csv").unwrap();
        let (built, _) = build(&rows, &c, &layout).unwrap();
        assert_eq!(c.model(built[1].model).name, "philly-GPU-24GB");
        assert_eq!(built[1].devices, 8);
    }

    #[test]
    fn clos_topology_groups_hosts_by_switch() {
        let places = read_clos(CLOS.as_bytes(), "topo.csv").unwrap();
        assert_eq!(places[0], ("G6/P10/S14".to_string(), "G6/P10".to_string()));
        assert_eq!(places[2].1, "G6/P12");
        let c = Catalog::builtin();
        let rows = read(Format::Openb, OPENB.as_bytes(), "n.csv").unwrap();
        let (built, _) = build(&rows, &c, &Network::Hosts(places)).unwrap();
        assert_eq!(built[0].topology.leaf, built[1].topology.leaf);
        let err = build(
            &vec![rows[0].clone(); 4],
            &c,
            &Network::Hosts(read_clos(CLOS.as_bytes(), "t").unwrap()),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the topology has 3 hosts but the node list has 4 accelerator nodes"
        );
    }

    #[test]
    fn bad_rows_and_unknown_models_are_named() {
        let err = read(
            Format::Openb,
            "sn,cpu_milli,memory_mib,gpu,model\nn1,64k,1,2,P100\n".as_bytes(),
            "n.csv",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "n.csv:2: field 'cpu_milli': '64k' is not a whole number >= 0"
        );
        let rows = read(
            Format::Openb,
            "sn,cpu_milli,memory_mib,gpu,model\nn1,64,1,2,X9\n".as_bytes(),
            "n.csv",
        )
        .unwrap();
        let err = build(
            &rows,
            &Catalog::builtin(),
            &Network::Layout(Layout::default()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("n.csv:2: unknown accelerator model 'X9'"),
            "{err}"
        );
    }
}
