//! Slurm-style batch submission: `#SBATCH` lines of a script and `sbatch` command-line options, turned into a
//! [`SubmitJob`]. Options on the command line override the script's, as in Slurm. Every directive is either
//! honored or refused by name: nothing is silently ignored.
//!
//! Honored: `-J/--job-name`, `-N/--nodes`, `-n/--ntasks`, `--ntasks-per-node`, `--gres=gpu[:type]:N`,
//! `-G/--gpus=[type:]N`, `--gpus-per-node=[type:]N`, `--gpus-per-task=N`, `-c/--cpus-per-task`, `--mem`,
//! `--mem-per-cpu`, `--mem-per-gpu`, `--exclusive`, `-t/--time`, `-p/--partition`, `-q/--qos`, `-A/--account`,
//! `--requeue`, `--no-requeue`, `--signal`, `-o/--output`, `-e/--error`, `-a/--array`, `-C/--constraint`
//! (accelerator models), `-D/--chdir`, `--wrap` (a command line instead of a script; command line only), and
//! wanka's own `--checkpoint-signal` (the "checkpoint now" signal, default SIGUSR1).

use crate::SubmitJob;
use std::fmt;
use thiserror::Error;

/// Where a directive came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// Line of the script (1-based).
    Line(usize),
    /// The command line.
    CommandLine,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Line(n) => write!(f, "script line {n}"),
            Place::CommandLine => f.write_str("command line"),
        }
    }
}

/// A batch script or option that cannot be submitted as written.
#[derive(Debug, Error, PartialEq)]
pub enum SbatchError {
    /// A directive wanka does not implement.
    #[error(
        "{place}: unsupported #SBATCH directive {option}; remove it or see `wanka submit --help` for the supported ones"
    )]
    Unsupported {
        /// Where.
        place: Place,
        /// The option as written.
        option: String,
    },
    /// A directive with a value that makes no sense.
    #[error("{place}: {option}: {problem}")]
    Value {
        /// Where.
        place: Place,
        /// The option.
        option: String,
        /// What is wrong.
        problem: String,
    },
    /// Directives that contradict each other.
    #[error("{0}")]
    Conflict(String),
}

/// A parsed submission: the job and, for a job array, its task ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The job (for an array: the template of every task).
    pub job: SubmitJob,
    /// Array task ids (empty: not an array).
    pub array: Vec<u32>,
}

/// Options as collected, before they are combined.
#[derive(Default)]
struct Opts {
    name: Option<String>,
    nodes: Option<u32>,
    ntasks: Option<u32>,
    ntasks_per_node: Option<u32>,
    gpus_per_node: Option<(Option<String>, u32, &'static str)>,
    gpus_total: Option<(Option<String>, u32)>,
    gpus_per_task: Option<u32>,
    cpus_per_task: Option<u32>,
    mem: Option<(u64, &'static str)>,
    exclusive: bool,
    time_s: Option<u64>,
    partition: Option<String>,
    qos: Option<String>,
    account: Option<String>,
    requeue: Option<bool>,
    signal: Option<String>,
    checkpoint_signal: Option<String>,
    output: Option<String>,
    error: Option<String>,
    array: Option<Vec<u32>>,
    constraint: Vec<String>,
    chdir: Option<String>,
    wrap: Option<String>,
}

/// Splits a directive line into words, shell-style (quotes, and `#` starting a comment after a blank).
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// (long name, short letter, takes a value)
const OPTIONS: &[(&str, Option<char>, bool)] = &[
    ("job-name", Some('J'), true),
    ("nodes", Some('N'), true),
    ("ntasks", Some('n'), true),
    ("ntasks-per-node", None, true),
    ("gres", None, true),
    ("gpus", Some('G'), true),
    ("gpus-per-node", None, true),
    ("gpus-per-task", None, true),
    ("cpus-per-task", Some('c'), true),
    ("mem", None, true),
    ("mem-per-cpu", None, true),
    ("mem-per-gpu", None, true),
    ("exclusive", None, false),
    ("time", Some('t'), true),
    ("partition", Some('p'), true),
    ("qos", Some('q'), true),
    ("account", Some('A'), true),
    ("requeue", None, false),
    ("no-requeue", None, false),
    ("signal", None, true),
    ("checkpoint-signal", None, true),
    ("output", Some('o'), true),
    ("error", Some('e'), true),
    ("array", Some('a'), true),
    ("constraint", Some('C'), true),
    ("chdir", Some('D'), true),
    ("wrap", None, true),
];

/// Turns words into (long name, value) pairs.
fn options(
    words: &[String],
    place: &Place,
) -> Result<Vec<(&'static str, Option<String>)>, SbatchError> {
    let unsupported = |option: &str| SbatchError::Unsupported {
        place: place.clone(),
        option: option.to_string(),
    };
    let mut out = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let (spec, inline) = if let Some(long) = w.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let spec = OPTIONS
                .iter()
                .find(|o| o.0 == name)
                .ok_or_else(|| unsupported(&format!("--{name}")))?;
            (spec, value)
        } else if let Some(short) = w.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let letter = chars.next().expect("non-empty");
            let spec = OPTIONS
                .iter()
                .find(|o| o.1 == Some(letter))
                .ok_or_else(|| unsupported(&format!("-{letter}")))?;
            let rest: String = chars.collect();
            let rest = rest.strip_prefix('=').map(str::to_string).unwrap_or(rest);
            (spec, (!rest.is_empty()).then_some(rest))
        } else {
            return Err(SbatchError::Value {
                place: place.clone(),
                option: w.clone(),
                problem: "expected an option (starting with - or --)".into(),
            });
        };
        let value = match (spec.2, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => Some(it.next().cloned().ok_or_else(|| SbatchError::Value {
                place: place.clone(),
                option: format!("--{}", spec.0),
                problem: "needs a value".into(),
            })?),
            (false, Some(v)) => {
                return Err(SbatchError::Value {
                    place: place.clone(),
                    option: format!("--{}", spec.0),
                    problem: format!(
                        "takes no value (got '{v}'); variants such as --exclusive=user are not supported"
                    ),
                });
            }
            (false, None) => None,
        };
        out.push((spec.0, value));
    }
    Ok(out)
}

/// Parses Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, Some(r)),
        None => (0, None),
    };
    let parts: Vec<u64> = rest
        .unwrap_or(s)
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let secs = match (rest.is_some(), parts.as_slice()) {
        (false, [m]) => m * 60,
        (false, [m, s]) => m * 60 + s,
        (false, [h, m, s]) => h * 3600 + m * 60 + s,
        (true, [h]) => h * 3600,
        (true, [h, m]) => h * 3600 + m * 60,
        (true, [h, m, s]) => h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(days * 86_400 + secs)
}

/// Parses a memory size (Slurm: default unit MB; K, M, G, T suffixes) into MiB.
fn parse_mem(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "M"),
    };
    let n: u64 = num.parse().ok()?;
    match unit.to_ascii_uppercase().trim_end_matches('B') {
        "K" => Some(n.div_ceil(1024)),
        "M" => Some(n),
        "G" => Some(n * 1024),
        "T" => Some(n * 1024 * 1024),
        _ => None,
    }
}

/// Parses `[type:]N`.
fn typed_count(s: &str) -> Option<(Option<String>, u32)> {
    match s.rsplit_once(':') {
        Some((t, n)) => Some((Some(t.to_string()), n.parse().ok()?)),
        None => Some((None, s.parse().ok()?)),
    }
}

/// Parses an array spec: `0-15`, `1,3,5`, `1-9:2`; a `%N` throttle is refused.
fn parse_array(s: &str) -> Result<Vec<u32>, String> {
    if s.contains('%') {
        return Err("the %N throttle is not supported; submit fewer tasks or use quotas".into());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let (range, step) = match part.split_once(':') {
            Some((r, st)) => (
                r,
                st.parse::<u32>()
                    .map_err(|_| format!("step '{st}' is not a number"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err("a step of 0".into());
        }
        let (a, b) = match range.split_once('-') {
            Some((a, b)) => (a, b),
            None => (range, range),
        };
        let a: u32 = a
            .trim()
            .parse()
            .map_err(|_| format!("'{a}' is not a task id"))?;
        let b: u32 = b
            .trim()
            .parse()
            .map_err(|_| format!("'{b}' is not a task id"))?;
        if b < a {
            return Err(format!("range {a}-{b} runs backwards"));
        }
        out.extend((a..=b).step_by(step as usize));
    }
    if out.len() > 100_000 {
        return Err(format!("{} tasks; at most 100000", out.len()));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Maps a Slurm QOS name onto a priority class.
fn qos_class(q: &str) -> Option<&'static str> {
    match q.to_ascii_lowercase().as_str() {
        "guaranteed" | "high" | "urgent" | "critical" => Some("guaranteed"),
        "standard" | "normal" | "medium" | "default" => Some("standard"),
        "preemptible" | "low" | "scavenger" | "spot" | "besteffort" | "best-effort" => {
            Some("preemptible")
        }
        _ => None,
    }
}

fn apply(
    opts: &mut Opts,
    name: &'static str,
    value: Option<String>,
    place: &Place,
) -> Result<(), SbatchError> {
    let v = value.unwrap_or_default();
    let bad = |problem: String| SbatchError::Value {
        place: place.clone(),
        option: format!("--{name}"),
        problem,
    };
    let count = |v: &str| {
        v.parse::<u32>().map_err(|_| {
            bad(format!(
                "'{v}' is not a whole number{}",
                if v.contains('-') {
                    " (ranges are not supported)"
                } else {
                    ""
                }
            ))
        })
    };
    match name {
        "job-name" => opts.name = Some(v),
        "nodes" => opts.nodes = Some(count(&v)?),
        "ntasks" => opts.ntasks = Some(count(&v)?),
        "ntasks-per-node" => opts.ntasks_per_node = Some(count(&v)?),
        "gres" => {
            let gpu = v
                .split(',')
                .map(|g| {
                    let mut parts = g.split(':');
                    match parts.next() {
                        Some("gpu") => {
                            let rest: Vec<&str> = parts.collect();
                            match rest.as_slice() {
                                [] => Ok((None, 1)),
                                [n] if n.parse::<u32>().is_ok() => {
                                    Ok((None, n.parse().unwrap_or(1)))
                                }
                                [t] => Ok((Some(t.to_string()), 1)),
                                [t, n] => n
                                    .parse()
                                    .map(|n| (Some(t.to_string()), n))
                                    .map_err(|_| bad(format!("'{n}' is not a GPU count"))),
                                _ => Err(bad(format!("'{g}' is not gpu[:type][:count]"))),
                            }
                        }
                        Some(other) => Err(bad(format!(
                            "generic resource '{other}' is not supported (only gpu)"
                        ))),
                        None => Err(bad("empty".into())),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (t, n) = gpu.into_iter().next().ok_or_else(|| bad("empty".into()))?;
            opts.gpus_per_node = Some((t, n, "--gres"));
        }
        "gpus" => {
            opts.gpus_total =
                Some(typed_count(&v).ok_or_else(|| bad(format!("'{v}' is not [type:]count")))?)
        }
        "gpus-per-node" => {
            let (t, n) =
                typed_count(&v).ok_or_else(|| bad(format!("'{v}' is not [type:]count")))?;
            opts.gpus_per_node = Some((t, n, "--gpus-per-node"));
        }
        "gpus-per-task" => opts.gpus_per_task = Some(count(&v)?),
        "cpus-per-task" => opts.cpus_per_task = Some(count(&v)?),
        "mem" | "mem-per-cpu" | "mem-per-gpu" => {
            let mib = parse_mem(&v)
                .ok_or_else(|| bad(format!("'{v}' is not a size such as 64G or 512000M")))?;
            let kind = match name {
                "mem" => "mem",
                "mem-per-cpu" => "mem-per-cpu",
                _ => "mem-per-gpu",
            };
            if let Some((_, k)) = opts.mem
                && k != kind
            {
                return Err(SbatchError::Conflict(format!(
                    "--{name} and --{k} cannot both be given"
                )));
            }
            opts.mem = Some((mib, kind));
        }
        "exclusive" => opts.exclusive = true,
        "time" => {
            opts.time_s = Some(parse_time(&v).ok_or_else(|| {
                bad(format!(
                    "'{v}' is not a Slurm time (minutes, HH:MM:SS, D-HH:MM:SS)"
                ))
            })?)
        }
        "partition" => opts.partition = Some(v),
        "qos" => {
            qos_class(&v).ok_or_else(|| {
                bad(format!(
                    "QOS '{v}' is not known; use guaranteed (high), standard (normal) or preemptible (low, scavenger)"
                ))
            })?;
            opts.qos = Some(v);
        }
        "account" => opts.account = Some(v),
        "requeue" => opts.requeue = Some(true),
        "no-requeue" => opts.requeue = Some(false),
        "signal" => {
            let sig = v
                .trim_start_matches("R:")
                .trim_start_matches("B:")
                .trim_start_matches("RB:");
            let (s, secs) = sig.split_once('@').unwrap_or((sig, "60"));
            if s.is_empty() || secs.parse::<u32>().is_err() {
                return Err(bad(format!("'{v}' is not [B:]SIGNAL[@seconds]")));
            }
            opts.signal = Some(v);
        }
        "checkpoint-signal" => {
            let name = v.trim().trim_start_matches("SIG");
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad(format!(
                    "'{v}' is not a signal name (e.g. USR1, SIGUSR2)"
                )));
            }
            opts.checkpoint_signal = Some(if name.chars().all(|c| c.is_ascii_digit()) {
                name.to_string()
            } else {
                format!("SIG{name}")
            });
        }
        "output" => opts.output = Some(v),
        "error" => opts.error = Some(v),
        "array" => opts.array = Some(parse_array(&v).map_err(bad)?),
        "constraint" => {
            opts.constraint = v
                .split(['|', ',', '&'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }
        "chdir" => opts.chdir = Some(v),
        "wrap" if matches!(place, Place::Line(_)) => {
            return Err(bad(
                "--wrap belongs on the command line, not in a script".into()
            ));
        }
        "wrap" => opts.wrap = Some(v),
        _ => unreachable!("every listed option is handled"),
    }
    Ok(())
}

/// An `sbatch` command line taken apart: options, then the script and its arguments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommandLine {
    /// The options, as written.
    pub options: Vec<String>,
    /// The script's path (none with `--wrap`, or after `--` where the rest is a command).
    pub script: Option<String>,
    /// The script's arguments, or the command after `--`.
    pub args: Vec<String>,
}

/// Splits a command line the way sbatch reads it: options (with their values) up to the first word that is
/// not one, which is the script; the rest are the script's arguments. After `--` the rest is a command.
pub fn split_command_line(words: &[String]) -> CommandLine {
    let mut out = CommandLine::default();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == "--" {
            out.args = it.cloned().collect();
            return out;
        }
        let takes_value = if let Some(long) = w.strip_prefix("--") {
            !long.contains('=') && OPTIONS.iter().any(|o| o.0 == long && o.2)
        } else if let Some(short) = w.strip_prefix('-').filter(|s| !s.is_empty()) {
            let letter = short.chars().next().expect("non-empty");
            short.len() == 1 && OPTIONS.iter().any(|o| o.1 == Some(letter) && o.2)
        } else {
            out.script = Some(w.clone());
            out.args = it.cloned().collect();
            return out;
        };
        out.options.push(w.clone());
        if takes_value && let Some(v) = it.next() {
            out.options.push(v.clone());
        }
    }
    out
}

/// Parses a batch script (its `#SBATCH` lines up to the first command) and command-line options.
pub fn parse(script: Option<&str>, args: &[String]) -> Result<Batch, SbatchError> {
    let mut opts = Opts::default();
    if let Some(text) = script {
        for (i, line) in text.lines().enumerate() {
            let place = Place::Line(i + 1);
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("#SBATCH") {
                if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                    continue;
                }
                let w = words(rest).map_err(|problem| SbatchError::Value {
                    place: place.clone(),
                    option: "#SBATCH".into(),
                    problem,
                })?;
                for (name, value) in options(&w, &place)? {
                    apply(&mut opts, name, value, &place)?;
                }
            } else if !(trimmed.is_empty() || trimmed.starts_with('#')) {
                // Slurm stops reading directives at the first command.
                break;
            }
        }
    }
    for (name, value) in options(args, &Place::CommandLine)? {
        apply(&mut opts, name, value, &Place::CommandLine)?;
    }
    combine(opts, script)
}

fn combine(o: Opts, script: Option<&str>) -> Result<Batch, SbatchError> {
    if o.wrap.is_some() && script.is_some() {
        return Err(SbatchError::Conflict(
            "--wrap replaces the batch script; give one or the other".into(),
        ));
    }
    let nodes = o.nodes.unwrap_or(1).max(1);
    let tasks_per_node = match (o.ntasks_per_node, o.ntasks) {
        (Some(t), _) => t,
        (None, Some(n)) if n % nodes == 0 => n / nodes,
        (None, Some(n)) => {
            return Err(SbatchError::Conflict(format!(
                "--ntasks={n} does not divide evenly over --nodes={nodes}; give --ntasks-per-node"
            )));
        }
        (None, None) => 1,
    }
    .max(1);
    let mut model: Option<String> = None;
    let mut per_node: Option<u32> = None;
    let mut set = |t: Option<String>, n: u32, from: &str| -> Result<(), SbatchError> {
        if let Some(prev) = per_node
            && prev != n
        {
            return Err(SbatchError::Conflict(format!(
                "{from} asks for {n} GPUs per node but another option asked for {prev}"
            )));
        }
        per_node = Some(n);
        if t.is_some() {
            model = t;
        }
        Ok(())
    };
    if let Some((t, n, from)) = o.gpus_per_node.clone() {
        set(t, n, from)?;
    }
    if let Some(n) = o.gpus_per_task {
        set(None, n * tasks_per_node, "--gpus-per-task")?;
    }
    if let Some((t, total)) = o.gpus_total.clone() {
        if total % nodes != 0 {
            return Err(SbatchError::Conflict(format!(
                "--gpus={total} does not divide evenly over --nodes={nodes}"
            )));
        }
        set(t, total / nodes, "--gpus")?;
    }
    let devices = per_node.unwrap_or(0);
    let cpus = o.cpus_per_task.unwrap_or(1) * tasks_per_node;
    let memory_mib = match o.mem {
        // --mem=0 asks for all of each node's memory: no memory limit of the job's own.
        Some((0, "mem")) | None => 0,
        Some((m, "mem")) => m,
        Some((m, "mem-per-cpu")) => m * cpus as u64,
        Some((m, _)) => m * devices as u64,
    };
    let mut models: Vec<String> = model.into_iter().collect();
    models.extend(o.constraint);
    let class = o.qos.as_deref().and_then(qos_class).map(str::to_string);
    let mut env = std::collections::BTreeMap::new();
    env.insert(
        "SLURM_NTASKS_PER_NODE".to_string(),
        tasks_per_node.to_string(),
    );
    env.insert(
        "SLURM_CPUS_PER_TASK".to_string(),
        o.cpus_per_task.unwrap_or(1).to_string(),
    );
    if let Some(d) = &o.chdir {
        env.insert("WANKA_WORKDIR".to_string(), d.clone());
    }
    let job = SubmitJob {
        name: o.name,
        tenant: o.account,
        replicas: nodes,
        devices_per_replica: devices,
        tasks_per_node,
        models,
        class,
        time_limit_s: o.time_s,
        cpu_milli: cpus as u64 * 1000,
        memory_mib,
        whole_nodes: o.exclusive,
        script: script.map(str::to_string),
        command: o
            .wrap
            .map(|w| vec!["/bin/sh".to_string(), "-c".to_string(), w])
            .unwrap_or_default(),
        env,
        requeue: o.requeue,
        signal: o.signal,
        checkpoint_signal: o.checkpoint_signal,
        stdout: o.output,
        stderr: o.error,
        partition: o.partition,
        ..SubmitJob::default()
    };
    Ok(Batch {
        job,
        array: o.array.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn command_lines_split_at_the_script() {
        let c = split_command_line(&args("-N 2 --gres=gpu:8 -J x train.sh --lr 3e-4"));
        assert_eq!(c.options, args("-N 2 --gres=gpu:8 -J x"));
        assert_eq!(c.script.as_deref(), Some("train.sh"));
        assert_eq!(c.args, args("--lr 3e-4"));
        let c = split_command_line(&args("--exclusive -- python -c 1"));
        assert_eq!(
            (c.options, c.script, c.args),
            (args("--exclusive"), None, args("python -c 1"))
        );
        let b = parse(None, &["--wrap".to_string(), "hostname -f".to_string()]).unwrap();
        assert_eq!(b.job.command, ["/bin/sh", "-c", "hostname -f"]);
        let e = parse(Some("#SBATCH --wrap=x\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("command line"), "{e}");
    }

    #[test]
    fn times_and_sizes_follow_slurm() {
        assert_eq!(parse_time("90"), Some(5400));
        assert_eq!(parse_time("1:30"), Some(90));
        assert_eq!(parse_time("23:59:59"), Some(86_399));
        assert_eq!(parse_time("3-00:00:00"), Some(259_200));
        assert_eq!(parse_time("1-12"), Some(129_600));
        assert_eq!(parse_time("soon"), None);
        assert_eq!(parse_mem("64G"), Some(65_536));
        assert_eq!(parse_mem("460000"), Some(460_000));
        assert_eq!(parse_mem("2T"), Some(2 * 1024 * 1024));
        assert_eq!(parse_mem("lots"), None);
    }

    #[test]
    fn command_line_overrides_the_script() {
        let script = "#!/bin/bash\n#SBATCH -N 2\n#SBATCH --gres=gpu:h800:8 # eight per node\n#SBATCH -J first\nsrun hostname\n#SBATCH -N 9\n";
        let b = parse(Some(script), &args("-J second --time=1:00:00")).unwrap();
        assert_eq!(b.job.name.as_deref(), Some("second"));
        assert_eq!(
            (b.job.replicas, b.job.devices_per_replica),
            (2, 8),
            "directives after the first command are not read"
        );
        assert_eq!(b.job.models, vec!["h800"]);
        assert_eq!(b.job.time_limit_s, Some(3600));
    }

    #[test]
    fn arrays_expand_and_throttles_are_refused() {
        let b = parse(None, &args("--array=1-5:2,8 --gpus=1")).unwrap();
        assert_eq!(b.array, vec![1, 3, 5, 8]);
        let e = parse(None, &args("--array 1-10%2")).unwrap_err();
        assert!(e.to_string().contains("%N throttle"), "{e}");
    }

    #[test]
    fn contradictions_and_unknown_options_are_errors() {
        let e = parse(None, &args("--nodes 3 --gpus 8")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--gpus=8 does not divide evenly over --nodes=3"
        );
        let e = parse(
            None,
            &args("--gres=gpu:8 --gpus-per-task=1 --ntasks-per-node=4"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "--gpus-per-task asks for 4 GPUs per node but another option asked for 8"
            ),
            "{e}"
        );
        // The same quantity given twice: the later wins, as a command line overrides a script.
        let b = parse(None, &args("--gres=gpu:8 --gpus-per-node=4")).unwrap();
        assert_eq!(b.job.devices_per_replica, 4);
        let e = parse(Some("#SBATCH --mail-user=a@b.c\n"), &[]).unwrap_err();
        assert_eq!(
            e,
            SbatchError::Unsupported {
                place: Place::Line(1),
                option: "--mail-user".into()
            }
        );
        let e = parse(None, &args("--qos=gold")).unwrap_err().to_string();
        assert!(
            e.starts_with("command line: --qos: QOS 'gold' is not known"),
            "{e}"
        );
        let e = parse(Some("#SBATCH --nodes=NUM_NODES\n"), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "script line 1: --nodes: 'NUM_NODES' is not a whole number"
        );
    }
}
