//! The client commands: submit (flags or an sbatch-style script), jobs, job show, cancel, nodes, tenants,
//! tokens. They talk to a running server over its API.

use crate::remote::Connection;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use wanka_api::{
    CreateToken, JobState, JobView, NodeView, PutTenant, Role, SubmitJob, TenantView, sbatch,
};

/// Runs an async client call to completion.
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

/// `wanka submit` / `sbatch`: options, then a script and its arguments, or `--wrap CMD`, or `-- CMD...`.
#[derive(clap::Args, Debug, Clone)]
pub struct SubmitArgs {
    /// sbatch options (-N, --gres, --gpus-per-node, -t, -J, -A, --qos, --array, ...), then the script and its
    /// arguments; or options then `-- command args...`. `--parsable` prints only the job id.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OPTIONS [SCRIPT [ARGS]]"
    )]
    pub args: Vec<String>,
}

/// The jobs a command line asks for: one, or one per array task.
pub fn jobs_from_command_line(words: &[String]) -> Result<(Vec<SubmitJob>, bool)> {
    let parsable = words.iter().any(|w| w == "--parsable");
    let words: Vec<String> = words
        .iter()
        .filter(|w| *w != "--parsable")
        .cloned()
        .collect();
    let line = sbatch::split_command_line(&words);
    let script = match &line.script {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the batch script {path}"))?,
        ),
        None => None,
    };
    let batch =
        sbatch::parse(script.as_deref(), &line.options).map_err(|e| match &line.script {
            Some(path) => anyhow::anyhow!("{path}: {e}"),
            None => anyhow::anyhow!("{e}"),
        })?;
    let mut job = batch.job;
    if script.is_some() || job.command.is_empty() {
        if script.is_none() && line.args.is_empty() {
            bail!(
                "nothing to run: give a batch script, `--wrap \"command\"` or `-- command args...`"
            );
        }
        if !line.args.is_empty() {
            job.command = line.args.clone();
        }
    } else if !line.args.is_empty() {
        bail!("--wrap already gives the command; remove the words after it");
    }
    if job.name.is_none() {
        job.name = Some(match &line.script {
            Some(p) => Path::new(p)
                .file_name()
                .map_or_else(|| p.clone(), |f| f.to_string_lossy().into_owned()),
            // Slurm names a --wrap job "wrap".
            None if job.command.first().is_some_and(|c| c == "/bin/sh") => "wrap".to_string(),
            None => job.command[0].clone(),
        });
    }
    if batch.array.is_empty() {
        return Ok((vec![job], parsable));
    }
    let (min, max) = (
        batch.array.iter().min().copied().unwrap_or(0),
        batch.array.iter().max().copied().unwrap_or(0),
    );
    let count = batch.array.len();
    let jobs = batch
        .array
        .iter()
        .map(|task| {
            let mut j = job.clone();
            for (k, v) in [
                ("SLURM_ARRAY_TASK_ID", task.to_string()),
                ("SLURM_ARRAY_TASK_COUNT", count.to_string()),
                ("SLURM_ARRAY_TASK_MIN", min.to_string()),
                ("SLURM_ARRAY_TASK_MAX", max.to_string()),
            ] {
                j.env.insert(k.to_string(), v);
            }
            j
        })
        .collect();
    Ok((jobs, parsable))
}

/// Submits and prints Slurm's answer.
pub fn submit(conn: &Connection, args: &SubmitArgs) -> Result<()> {
    let (jobs, parsable) = jobs_from_command_line(&args.args)?;
    let client = conn.client()?;
    let ids = block_on(async {
        Ok(if jobs.len() == 1 {
            vec![client.submit(&jobs[0]).await?]
        } else {
            client.submit_batch(&jobs).await?
        })
    })?;
    let first = ids[0].id;
    match (parsable, ids.len()) {
        (true, _) => println!("{first}"),
        (false, 1) => println!("Submitted batch job {first}"),
        (false, n) => println!(
            "Submitted batch job {first} (array of {n} tasks: jobs {first}-{})",
            ids[n - 1].id
        ),
    }
    Ok(())
}

/// Options of `wanka jobs`.
#[derive(clap::Args, Debug, Clone)]
pub struct JobsArgs {
    /// States to show, comma-separated (default: pending, starting, running, preempting).
    #[arg(long, short = 't')]
    pub state: Option<String>,
    /// Every state, finished jobs included.
    #[arg(long, conflicts_with = "state")]
    pub all: bool,
    /// Only this tenant's jobs.
    #[arg(long, short = 'A')]
    pub tenant: Option<String>,
    /// Only jobs with this name.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// At most this many (newest first).
    #[arg(long)]
    pub limit: Option<usize>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The query string of a listing.
pub fn jobs_query(
    states: &str,
    tenant: Option<&str>,
    name: Option<&str>,
    limit: Option<usize>,
) -> String {
    let mut q = Vec::new();
    if !states.is_empty() {
        q.push(format!("state={states}"));
    }
    if let Some(t) = tenant {
        q.push(format!("tenant={t}"));
    }
    if let Some(n) = name {
        q.push(format!("name={n}"));
    }
    if let Some(l) = limit {
        q.push(format!("limit={l}"));
    }
    q.join("&")
}

/// The states squeue shows by default.
pub const ACTIVE: &str = "pending,starting,running,preempting";

/// `wanka jobs`.
pub fn jobs(conn: &Connection, args: &JobsArgs) -> Result<()> {
    let states = match (&args.state, args.all) {
        (_, true) => String::new(),
        (Some(s), false) => s.clone(),
        (None, false) => ACTIVE.to_string(),
    };
    let query = jobs_query(
        &states,
        args.tenant.as_deref(),
        args.name.as_deref(),
        args.limit,
    );
    let client = conn.client()?;
    let mut list = block_on(async { Ok(client.jobs(&query).await?) })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    list.reverse();
    print!("{}", job_table(&list, now_s(), true));
    Ok(())
}

/// Unix seconds now.
pub fn now_s() -> f64 {
    wanka_server::now_us() as f64 / 1e6
}

/// Slurm's elapsed-time format: `M:SS`, `H:MM:SS`, `D-HH:MM:SS`.
pub fn elapsed(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h) {
        (0, 0) => format!("{m}:{s:02}"),
        (0, h) => format!("{h}:{m:02}:{s:02}"),
        (d, h) => format!("{d}-{h:02}:{m:02}:{s:02}"),
    }
}

/// A queue table like squeue's, with the reason a job waits.
pub fn job_table(jobs: &[JobView], now: f64, header: bool) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let time = match (j.state, j.started_at, j.ended_at) {
                (JobState::Pending, _, _) | (_, None, _) => "0:00".to_string(),
                (_, Some(s), Some(e)) => elapsed(e - s),
                (_, Some(s), None) => elapsed(now - s),
            };
            let devices: usize = j.replicas.iter().map(|r| r.devices.len()).sum();
            let mut nodes: Vec<&str> = j.replicas.iter().map(|r| r.node.as_str()).collect();
            nodes.dedup();
            let where_ = match j.state {
                JobState::Pending => format!("({})", j.reason.as_deref().unwrap_or("New")),
                s if s.is_final() => format!("({})", j.reason.as_deref().unwrap_or("")),
                _ => nodes.join(","),
            };
            let (n, d) = if j.state == JobState::Pending || j.replicas.is_empty() {
                (
                    j.spec.replicas.to_string(),
                    (j.spec.replicas * j.spec.devices_per_replica).to_string(),
                )
            } else {
                (nodes.len().to_string(), devices.to_string())
            };
            vec![
                j.id.to_string(),
                j.tenant.clone(),
                j.name.clone(),
                j.state.slurm_code().to_string(),
                time,
                n,
                d,
                j.model.clone().unwrap_or_else(|| "-".into()),
                where_,
            ]
        })
        .collect();
    let head = [
        "JOBID",
        "TENANT",
        "NAME",
        "ST",
        "TIME",
        "NODES",
        "DEVICES",
        "MODEL",
        "NODELIST(REASON)",
    ];
    table(header.then_some(&head[..]), &rows)
}

/// Columns padded to their widest cell; the last column is not padded.
pub fn table(head: Option<&[&str]>, rows: &[Vec<String>]) -> String {
    let cols = head.map_or_else(|| rows.first().map_or(0, Vec::len), <[&str]>::len);
    let mut width = vec![0; cols];
    let all = head
        .map(|h| h.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .into_iter()
        .chain(rows.iter().cloned());
    let all: Vec<Vec<String>> = all.collect();
    for r in &all {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &all {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == r.len() {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = width[i])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `wanka job show ID`: the job, its history, and why it waits.
pub fn show(conn: &Connection, id: u64, json: bool) -> Result<()> {
    let client = conn.client()?;
    let (job, events, why) = block_on(async {
        let job = client.job(id).await?;
        let events = client.events(id).await?;
        let why = if job.state == JobState::Pending {
            client.explain(id).await.ok()
        } else {
            None
        };
        Ok((job, events, why))
    })?;
    if json {
        let all = serde_json::json!({"job": job, "events": events, "explain": why});
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let s = &job.spec;
    let mut fields: Vec<(&str, String)> = vec![
        ("JobId", job.id.to_string()),
        ("Name", job.name.clone()),
        ("Tenant", job.tenant.clone()),
        (
            "State",
            format!("{} ({})", job.state.name(), job.state.slurm_code()),
        ),
        ("Reason", job.reason.clone().unwrap_or_default()),
        (
            "Class",
            s.class.clone().unwrap_or_else(|| "standard".into()),
        ),
        (
            "Shape",
            format!(
                "{} replica(s) x {} device(s){}",
                s.replicas,
                s.devices_per_replica,
                s.fraction_milli
                    .map(|f| format!(" ({f}/1000 of a device)"))
                    .unwrap_or_default()
            ),
        ),
        (
            "Models",
            if s.models.is_empty() && s.stacks.is_empty() {
                "any".into()
            } else {
                [s.models.clone(), s.stacks.clone()].concat().join(",")
            },
        ),
        (
            "TimeLimit",
            s.time_limit_s
                .map_or_else(|| "none".into(), |t| elapsed(t as f64)),
        ),
        ("Submitted", format!("{:.0}", job.submitted_at)),
    ];
    if let Some(p) = &job.progress {
        fields.push((
            "Progress",
            format!(
                "step {}, checkpoint {}, ETTR {:.3} ({:.1} s productive of {:.1} s), {} restart(s)",
                p.step,
                p.checkpoint_step
                    .map_or_else(|| "none".to_string(), |c| format!("step {c}")),
                p.ettr,
                p.productive_s,
                p.wall_s,
                p.restarts
            ),
        ));
    }
    if let Some(m) = &job.model {
        fields.push(("Model", m.clone()));
    }
    if let Some(u) = &job.usage {
        let note = match u.as_str() {
            "borrowed" => " (another tenant's idle lease: reclaimed when the lessee needs it)",
            "leased" => " (within the tenant's lease)",
            _ => "",
        };
        fields.push(("Capacity", format!("{u}{note}")));
    }
    for r in &job.replicas {
        let devs: Vec<String> = r.devices.iter().map(u32::to_string).collect();
        fields.push(("Replica", format!("{} devices {}", r.node, devs.join(","))));
    }
    if let Some(c) = job.exit_code {
        fields.push(("ExitCode", c.to_string()));
    }
    for (k, v) in fields {
        println!("{k:>10}: {v}");
    }
    if let Some(w) = why {
        println!("{:>10}: {}", "Explain", w);
    }
    println!("\nEvents:");
    let first = events.first().map_or(0.0, |e| e.at);
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                format!("+{:.3}s", e.at - first),
                e.state.name().to_string(),
                e.reason.clone(),
            ]
        })
        .collect();
    print!("{}", table(Some(&["AT", "STATE", "REASON"]), &rows));
    Ok(())
}

/// `wanka cancel`.
pub fn cancel(conn: &Connection, ids: &[u64], reason: Option<String>) -> Result<()> {
    let client = conn.client()?;
    block_on(async {
        let mut failed = Vec::new();
        for id in ids {
            match client.cancel(*id, reason.clone()).await {
                Ok(j) => println!("job {id}: {}", j.state.name()),
                Err(e) => failed.push(format!("job {id}: {e}")),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            bail!("{}", failed.join("\n"))
        }
    })
}

/// A node table.
pub fn node_table(nodes: &[NodeView], now: f64) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            // Devices the agent reports unhealthy, and those the risk engine holds (marked `*`).
            let mut unhealthy: Vec<String> = n.unhealthy.iter().map(u32::to_string).collect();
            unhealthy.extend(
                n.held
                    .iter()
                    .filter(|d| !n.unhealthy.contains(d))
                    .map(|d| format!("{d}*")),
            );
            let state = if n.quarantined {
                "quarantined".to_string()
            } else {
                format!("{:?}", n.state).to_lowercase()
            };
            vec![
                n.name.clone(),
                n.model.clone(),
                n.devices.to_string(),
                n.allocated.to_string(),
                state,
                if unhealthy.is_empty() {
                    "-".into()
                } else {
                    unhealthy.join(",")
                },
                format!("{}/{}", n.spine, n.leaf),
                n.last_heartbeat.map_or_else(
                    || "never".into(),
                    |t| format!("{}s ago", (now - t).max(0.0) as u64),
                ),
            ]
        })
        .collect();
    table(
        Some(&[
            "NODE",
            "MODEL",
            "DEVICES",
            "ALLOC",
            "STATE",
            "UNHEALTHY",
            "SPINE/LEAF",
            "HEARTBEAT",
        ]),
        &rows,
    )
}

/// `wanka nodes [cordon|drain|resume NAME]`.
pub fn nodes(conn: &Connection, action: Option<(&str, &str)>, json: bool) -> Result<()> {
    let client = conn.client()?;
    let list = block_on(async {
        Ok(match action {
            Some((verb, node)) => vec![client.node_action(node, verb).await?],
            None => client.nodes().await?,
        })
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", node_table(&list, now_s()));
    }
    Ok(())
}

/// `wanka nodes events NODE`.
pub fn node_events(conn: &Connection, node: &str, json: bool) -> Result<()> {
    let client = conn.client()?;
    let events = block_on(async { Ok(client.node_events(node).await?) })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&events)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| vec![format!("{:.3}", e.at), e.action.clone(), e.reason.clone()])
        .collect();
    print!("{}", table(Some(&["AT", "ACTION", "REASON"]), &rows));
    Ok(())
}

/// `wanka nodes fault NODE --device N ...`: a fault for a simulated device (development and tests).
pub fn inject_fault(conn: &Connection, node: &str, fault: &wanka_api::InjectFault) -> Result<()> {
    let client = conn.client()?;
    block_on(async { Ok(client.inject_fault(node, fault).await?) })?;
    let what = if fault.clear {
        "clearing of faults"
    } else {
        "fault"
    };
    println!(
        "{node}: {what} on device {} sent; the agent applies it at its next reading of the devices",
        fault.device
    );
    Ok(())
}

/// `wanka tenants [put NAME ...]`.
pub fn tenants(conn: &Connection, put: Option<(&str, PutTenant)>, json: bool) -> Result<()> {
    let client = conn.client()?;
    let list: Vec<TenantView> = block_on(async {
        Ok(match put {
            Some((name, p)) => vec![client.put_tenant(name, &p).await?],
            None => client.tenants().await?,
        })
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                format!("{}", t.weight),
                t.quota_devices
                    .map_or_else(|| "-".into(), |q| q.to_string()),
                t.devices_in_use.to_string(),
                format!("{:.4}", t.share),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            Some(&["TENANT", "WEIGHT", "QUOTA", "IN-USE", "SHARE"]),
            &rows
        )
    );
    Ok(())
}

/// `wanka token create`.
pub fn create_token(
    conn: &Connection,
    role: Role,
    tenant: Option<String>,
    label: Option<String>,
) -> Result<()> {
    let client = conn.client()?;
    let t = block_on(async {
        Ok(client
            .create_token(&CreateToken {
                role,
                tenant,
                label,
            })
            .await?)
    })?;
    println!("{}", t.token);
    Ok(())
}

/// Device counts per model and state, for sinfo's summary.
pub fn model_summary(nodes: &[NodeView]) -> BTreeMap<String, [u32; 5]> {
    let mut out: BTreeMap<String, [u32; 5]> = BTreeMap::new();
    for n in nodes {
        let e = out.entry(n.model.clone()).or_default();
        let unhealthy = n.unhealthy.len() as u32;
        let usable = n.state == wanka_api::NodeState::Ready;
        e[0] += 1;
        e[1] += n.allocated;
        e[2] += if usable {
            n.devices.saturating_sub(n.allocated + unhealthy)
        } else {
            0
        };
        e[3] += if usable {
            unhealthy
        } else {
            n.devices.saturating_sub(n.allocated)
        };
        e[4] += n.devices;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn command_lines_become_jobs() {
        let (jobs, parsable) = jobs_from_command_line(&words(
            "--parsable -N 2 --gpus-per-node=8 -- torchrun train.py",
        ))
        .unwrap();
        assert!(parsable);
        assert_eq!(jobs[0].command, words("torchrun train.py"));
        assert_eq!(jobs[0].name.as_deref(), Some("torchrun"));
        assert_eq!((jobs[0].replicas, jobs[0].devices_per_replica), (2, 8));
        let (jobs, _) = jobs_from_command_line(&words("--array=0-3 --wrap hostname")).unwrap();
        assert_eq!(jobs.len(), 4);
        assert_eq!(jobs[3].env["SLURM_ARRAY_TASK_ID"], "3");
        assert_eq!(jobs[3].name.as_deref(), Some("wrap"));
        let e = jobs_from_command_line(&words("-N 2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nothing to run"), "{e}");
        let e = jobs_from_command_line(&words("missing.sh"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the batch script missing.sh"), "{e}");
        let e = jobs_from_command_line(&words("--mail-user=x -- true"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unsupported #SBATCH directive --mail-user"),
            "{e}"
        );
    }

    #[test]
    fn times_print_like_slurm() {
        assert_eq!(elapsed(5.0), "0:05");
        assert_eq!(elapsed(3725.0), "1:02:05");
        assert_eq!(elapsed(90_061.0), "1-01:01:01");
    }

    #[test]
    fn tables_align() {
        let t = table(
            Some(&["A", "BB"]),
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     y\n");
    }
}
