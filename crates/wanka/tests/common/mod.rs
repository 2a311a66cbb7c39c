//! Starting the real `wanka server` binary for the tests that drive it as a user would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A server process, killed when dropped (so that a failing test leaves none behind).
pub struct Server(pub Child);

impl Server {
    /// Kills the server with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    /// Asks it to stop first (a dev cluster then stops its jobs' processes), and kills it if it lingers.
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.kill();
    }
}

/// Starts the server in `dir` and returns it with its base URL (read from its start-up line).
#[allow(dead_code)] // Not every test binary that shares this module starts a plain server.
pub fn start(dir: &Path) -> (Server, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wanka"));
    cmd.args([
        "server",
        "--listen",
        "127.0.0.1:0",
        "--tick-ms",
        "20",
        "--data-dir",
    ])
    .arg(dir);
    spawn(cmd)
}

/// Starts `cmd` (a server or a dev cluster) and returns it with the base URL from its `listening on` line.
pub fn spawn(mut cmd: Command) -> (Server, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wanka binary starts");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server printed its address before exiting")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Server(child), url)
}
