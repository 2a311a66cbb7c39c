//! The operating system's side of a task: process groups, signals by name, telling a live process from a
//! recycled pid, and the shim every task runs under.
//!
//! Each task process is started as `wanka task-shim --exit-file F -- COMMAND...`: the shim leads a process
//! group of its own, runs the command in it, and writes the command's exit status to F. The shim outlives
//! an agent restart, so a restarted agent re-adopts the task and still learns its exit code; signals sent
//! to the group reach the command while the shim itself waits them out.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

/// Signals a job may name (`--signal`, the stop signal), with and without the `SIG` prefix, or as numbers.
pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim().trim_start_matches("SIG");
    if let Ok(num) = n.parse::<i32>() {
        return (1..=64).contains(&num).then_some(num);
    }
    Some(match n {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        _ => return None,
    })
}

/// Sends `signal` to every process of group `pgid`; false when the group is gone.
pub fn signal_group(pgid: i32, signal: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// Whether any process of group `pgid` still exists.
pub fn group_alive(pgid: i32) -> bool {
    signal_group(pgid, 0)
}

/// The start time of process `pid` in clock ticks since boot (field 22 of /proc/PID/stat) and whether it
/// is a zombie; `None` when there is no such process.
fn stat(pid: i32) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = fields.first() == Some(&"Z");
    Some((fields.get(19)?.parse().ok()?, zombie))
}

/// When process `pid` started (to recognize it again after an agent restart).
pub fn start_ticks(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.0)
}

/// Whether `pid` is still the process that started at `ticks` and has not exited.
pub fn alive(pid: i32, ticks: u64) -> bool {
    stat(pid).is_some_and(|(t, zombie)| t == ticks && !zombie)
}

/// An exit status as a shell reports it: the code, or 128 + the signal that ended the process.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

extern "C" fn ignore(_: libc::c_int) {}

/// The shim: runs `argv`, waits for it through any signal sent to the group, writes its exit code to
/// `exit_file` and returns it.
pub fn shim(exit_file: &Path, argv: &[OsString]) -> i32 {
    for sig in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // A handler, not SIG_IGN: handlers are reset by exec, so the command gets the default actions.
        // SAFETY: installing an async-signal-safe no-op handler.
        unsafe { libc::signal(sig, ignore as *const () as libc::sighandler_t) };
    }
    let code = match argv.split_first() {
        None => {
            eprintln!("wanka task-shim: no command given");
            127
        }
        Some((program, args)) => match Command::new(program).args(args).status() {
            Ok(s) => exit_code(s),
            Err(e) => {
                eprintln!("wanka: cannot run {}: {e}", program.to_string_lossy());
                if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                }
            }
        },
    };
    let tmp = exit_file.with_extension("tmp");
    if std::fs::write(&tmp, format!("{code}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, exit_file);
    }
    code
}

/// The exit code a shim wrote, if it has.
pub fn read_exit_file(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_processes_by_start_time() {
        assert_eq!(signal_number("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(signal_number("USR1"), Some(libc::SIGUSR1));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGNOPE"), None);
        let me = std::process::id() as i32;
        let t = start_ticks(me).unwrap();
        assert!(alive(me, t));
        assert!(!alive(me, t + 1), "a recycled pid has another start time");
    }
}
