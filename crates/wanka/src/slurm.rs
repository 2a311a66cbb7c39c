//! The binary invoked as `sbatch`, `squeue`, `scancel` or `sinfo` (through a symlink) behaves as that command
//! for its common options. An option wanka does not implement is an error that names it.

use crate::cli::{self, block_on};
use crate::remote::Connection;
use anyhow::{Result, bail};
use wanka_api::JobState;

/// The Slurm command a program name stands for.
pub fn command_of(argv0: &str) -> Option<&'static str> {
    let name = std::path::Path::new(argv0).file_name()?.to_str()?;
    ["sbatch", "squeue", "scancel", "sinfo"]
        .into_iter()
        .find(|c| *c == name)
}

/// Runs the Slurm command with its arguments (program name excluded).
pub fn run(command: &str, args: &[String]) -> Result<()> {
    let conn = Connection::from_env();
    match command {
        "sbatch" => cli::submit(
            &conn,
            &cli::SubmitArgs {
                args: args.to_vec(),
            },
        ),
        "squeue" => squeue(&conn, args),
        "scancel" => scancel(&conn, args),
        "sinfo" => sinfo(&conn, args),
        other => bail!("{other} is not a command wanka emulates"),
    }
}

/// Options as (name, value) pairs, and the other words.
type Split<'a> = (Vec<(&'static str, Option<String>)>, Vec<&'a String>);

/// Options split into (name, value) pairs: `-A x`, `-Ax`, `--account=x`, `--account x`.
fn options<'a>(
    command: &str,
    args: &'a [String],
    known: &[(&'static str, Option<char>, bool)],
) -> Result<Split<'a>> {
    let mut out = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(w) = it.next() {
        let (spec, inline) = if let Some(long) = w.strip_prefix("--") {
            let (name, value) = long
                .split_once('=')
                .map_or((long, None), |(n, v)| (n, Some(v.to_string())));
            let spec = known.iter().find(|k| k.0 == name);
            (spec.ok_or_else(|| unsupported(command, w))?, value)
        } else if let Some(short) = w.strip_prefix('-').filter(|s| !s.is_empty()) {
            let letter = short.chars().next().expect("non-empty");
            let spec = known.iter().find(|k| k.1 == Some(letter));
            let tail = &short[letter.len_utf8()..];
            (
                spec.ok_or_else(|| unsupported(command, &format!("-{letter}")))?,
                (!tail.is_empty()).then(|| tail.trim_start_matches('=').to_string()),
            )
        } else {
            rest.push(w);
            continue;
        };
        let value = match (spec.2, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => Some(
                it.next()
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("{command}: --{} needs a value", spec.0))?,
            ),
            (false, _) => None,
        };
        out.push((spec.0, value));
    }
    Ok((out, rest))
}

fn unsupported(command: &str, option: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{command}: option {option} is not supported by wanka (see `wanka {} --help` for what is)",
        match command {
            "squeue" => "jobs",
            "scancel" => "cancel",
            "sinfo" => "nodes",
            _ => "submit",
        }
    )
}

/// Slurm's state names and codes, as squeue -t takes them.
fn parse_state(s: &str) -> Result<Vec<JobState>> {
    let up = s.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(JobState::ALL.to_vec());
    }
    let found = JobState::ALL.into_iter().find(|st| {
        st.slurm_code() == up
            || st.name().eq_ignore_ascii_case(&up)
            || (up == "CONFIGURING" && *st == JobState::Starting)
            || (up == "SUSPENDED" && *st == JobState::Preempting)
    });
    match found {
        Some(st) => Ok(vec![st]),
        None => bail!(
            "squeue: invalid job state '{s}' (PD, CF, R, S, CD, F, CA or their names, or all)"
        ),
    }
}

fn squeue(conn: &Connection, args: &[String]) -> Result<()> {
    let known = [
        ("account", Some('A'), true),
        ("states", Some('t'), true),
        ("jobs", Some('j'), true),
        ("name", Some('n'), true),
        ("noheader", Some('h'), false),
        ("long", Some('l'), false),
    ];
    let (opts, rest) = options("squeue", args, &known)?;
    if let Some(w) = rest.first() {
        bail!("squeue: unexpected argument '{w}'");
    }
    let mut states = Vec::new();
    let (mut tenant, mut name, mut ids, mut header) = (None, None, None::<Vec<u64>>, true);
    for (k, v) in opts {
        let v = v.unwrap_or_default();
        match k {
            "account" => tenant = Some(v),
            "states" => {
                for s in v.split(',') {
                    states.extend(parse_state(s)?);
                }
            }
            "jobs" => {
                ids = Some(
                    v.split(',')
                        .map(|j| {
                            j.trim()
                                .parse::<u64>()
                                .map_err(|_| anyhow::anyhow!("squeue: invalid job id '{j}'"))
                        })
                        .collect::<Result<_>>()?,
                )
            }
            "name" => name = Some(v),
            "noheader" => header = false,
            _ => {}
        }
    }
    let states = if states.is_empty() && ids.is_none() {
        cli::ACTIVE.to_string()
    } else {
        states
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(",")
    };
    let query = cli::jobs_query(&states, tenant.as_deref(), name.as_deref(), None);
    let client = conn.client()?;
    let mut list = block_on(async { Ok(client.jobs(&query).await?) })?;
    if let Some(ids) = ids {
        list.retain(|j| ids.contains(&j.id));
    }
    list.reverse();
    print!("{}", cli::job_table(&list, cli::now_s(), header));
    Ok(())
}

fn scancel(conn: &Connection, args: &[String]) -> Result<()> {
    let (_, rest) = options("scancel", args, &[])?;
    if rest.is_empty() {
        bail!("scancel: no job id given");
    }
    let ids = rest
        .iter()
        .map(|w| {
            // Slurm prints array tasks as JOBID_TASK; wanka gives each task its own id.
            w.parse::<u64>()
                .map_err(|_| anyhow::anyhow!("scancel: invalid job id '{w}'"))
        })
        .collect::<Result<Vec<_>>>()?;
    cli::cancel(conn, &ids, None)
}

fn sinfo(conn: &Connection, args: &[String]) -> Result<()> {
    let known = [("Node", Some('N'), false), ("noheader", Some('h'), false)];
    let (opts, rest) = options("sinfo", args, &known)?;
    if let Some(w) = rest.first() {
        bail!("sinfo: unexpected argument '{w}'");
    }
    let per_node = opts.iter().any(|(k, _)| *k == "Node");
    let header = !opts.iter().any(|(k, _)| *k == "noheader");
    let client = conn.client()?;
    let nodes = block_on(async { Ok(client.nodes().await?) })?;
    let now = cli::now_s();
    if per_node {
        let text = cli::node_table(&nodes, now);
        let skip = usize::from(!header);
        for line in text.lines().skip(skip) {
            println!("{line}");
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = cli::model_summary(&nodes)
        .into_iter()
        .map(|(model, c)| {
            vec![
                model,
                c[0].to_string(),
                format!("{}/{}/{}/{}", c[1], c[2], c[3], c[4]),
            ]
        })
        .collect();
    let head = ["MODEL", "NODES", "DEVICES(A/I/O/T)"];
    print!("{}", cli::table(header.then_some(&head[..]), &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_names_pick_the_command() {
        assert_eq!(command_of("/usr/local/bin/sbatch"), Some("sbatch"));
        assert_eq!(command_of("squeue"), Some("squeue"));
        assert_eq!(command_of("wanka"), None);
    }

    #[test]
    fn squeue_states_take_slurm_names() {
        assert_eq!(parse_state("PD").unwrap(), vec![JobState::Pending]);
        assert_eq!(parse_state("running").unwrap(), vec![JobState::Running]);
        assert_eq!(parse_state("all").unwrap().len(), 7);
        assert!(
            parse_state("zombie")
                .unwrap_err()
                .to_string()
                .contains("'zombie'")
        );
    }

    #[test]
    fn unknown_options_are_named() {
        let args: Vec<String> = vec!["--format=%i".into()];
        let e = options("squeue", &args, &[]).unwrap_err().to_string();
        assert!(e.contains("--format=%i") && e.contains("wanka jobs"), "{e}");
        let args: Vec<String> = vec!["-Avision".into(), "--states=PD".into()];
        let known = [("account", Some('A'), true), ("states", Some('t'), true)];
        let (o, _) = options("squeue", &args, &known).unwrap();
        assert_eq!(
            o,
            vec![
                ("account", Some("vision".to_string())),
                ("states", Some("PD".to_string()))
            ]
        );
    }
}
