//! Crash durability: a real `wanka server` process takes submissions from several concurrent clients and is
//! killed with SIGKILL in the middle of the storm, then restarted on the same store. Every submission it
//! acknowledged must be there, once. `WANKA_CRASH_ROUNDS` sets the number of rounds (default 3);
//! `scripts/crash-rounds.sh` runs many.

mod common;

use common::start;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wanka_api::{RegisterNode, Role, SubmitJob};
use wanka_server::client::Client;

const CLIENTS: usize = 8;

/// A client with the admin token the first start wrote.
fn admin(dir: &Path, url: &str) -> Client {
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    Client::new(url, Some(token.trim().to_string()))
}

fn job(name: String) -> SubmitJob {
    SubmitJob {
        name: Some(name),
        command: vec!["true".into()],
        ..SubmitJob::default()
    }
}

#[test]
fn acknowledged_jobs_survive_sigkill() {
    let rounds: usize = std::env::var("WANKA_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("wanka-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let mut total_acked = 0;
    for round in 0..rounds {
        let (mut server, url) = start(&dir);
        let client = admin(&dir, &url);
        if round == 0 {
            // Some capacity, so that the scheduler's writes (starts) interleave with the submissions.
            rt.block_on(async {
                let t = client
                    .create_token(&wanka_api::CreateToken {
                        role: Role::Agent,
                        tenant: None,
                        label: None,
                    })
                    .await
                    .unwrap();
                let agent = Client::new(&url, Some(t.token));
                for n in 0..4 {
                    agent
                        .register(&RegisterNode {
                            name: format!("n{n}"),
                            model: "A100-80G".into(),
                            devices: 8,
                            cpu_milli: 64_000,
                            memory_mib: 512_000,
                            leaf: None,
                            spine: None,
                            address: None,
                            domains: Vec::new(),
                            tasks: Vec::new(),
                        })
                        .await
                        .unwrap();
                }
            });
        }
        let before = acked.lock().unwrap().len();
        // Kill after a varying delay, so that rounds cut the storm at different points.
        let delay = Duration::from_millis(150 + (round as u64 * 137) % 500);
        rt.block_on(async {
            let mut tasks = Vec::new();
            for c in 0..CLIENTS {
                let client = client.clone();
                let acked = acked.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0.. {
                        let name = format!("r{round}-c{c}-{i}");
                        match client.submit(&job(name.clone())).await {
                            Ok(s) => acked.lock().unwrap().push((s.id, name)),
                            // The server is gone: this client's last submission was not acknowledged.
                            Err(_) => return,
                        }
                    }
                }));
            }
            tokio::time::sleep(delay).await;
            server.kill();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let this_round = acked.lock().unwrap().len() - before;
        assert!(
            this_round > 0,
            "round {round}: no submission was acknowledged before the kill"
        );
        total_acked += this_round;

        let (mut server, url) = start(&dir);
        let client = admin(&dir, &url);
        let stored = rt.block_on(client.jobs("")).unwrap();
        server.kill();
        let mut names: Vec<&str> = stored.iter().map(|j| j.name.as_str()).collect();
        names.sort_unstable();
        let before_dedup = names.len();
        names.dedup();
        assert_eq!(names.len(), before_dedup, "a job was stored twice");
        let by_id: std::collections::HashMap<u64, &str> =
            stored.iter().map(|j| (j.id, j.name.as_str())).collect();
        for (id, name) in acked.lock().unwrap().iter() {
            assert_eq!(
                by_id.get(id).copied(),
                Some(name.as_str()),
                "round {round}: acknowledged job {id} ({name}) is missing after the restart"
            );
        }
        eprintln!(
            "round {round}: {this_round} submissions acknowledged before SIGKILL after {delay:?}; \
             {} jobs stored, all {} acknowledged so far present, none twice",
            stored.len(),
            acked.lock().unwrap().len()
        );
    }
    eprintln!("{rounds} rounds, {total_acked} acknowledged submissions, none lost");
    std::fs::remove_dir_all(&dir).unwrap();
}
