//! Leases in the scheduler: admission, guarantees, lending idle leased capacity and reclaiming it.

mod common;

use common::{job, model, nodes, scheduler};
use proptest::prelude::*;
use wanka_model::{JobId, Lease, LeaseId, Span, TenantId, Time, UsageKind, Within};
use wanka_sched::{
    Config, CoreError, Decision, JobStatus, PendingReason, Plan, PreemptCause, Scheduler,
};

fn lease(id: u64, tenant: u32, devices: u32, start: i64, end: i64, within: Within) -> Lease {
    Lease {
        id: LeaseId(id),
        tenant: TenantId(tenant),
        model: model("H100"),
        devices,
        start: Time::from_secs(start),
        end: Time::from_secs(end),
        within,
        domain: None,
    }
}

fn tenant_job(id: u64, tenant: u32, replicas: u32) -> wanka_model::JobSpec {
    let mut j = job(id, replicas, 8);
    j.tenant = TenantId(tenant);
    j.submitted = Time::from_secs(id as i64);
    j
}

/// Started jobs with the capacity each uses.
fn starts(plan: &Plan) -> Vec<(u64, UsageKind)> {
    plan.decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Start { job, usage, .. } => Some((job.0, *usage)),
            _ => None,
        })
        .collect()
}

/// Preempted jobs (for `cause`) with their deadlines.
fn preempted(plan: &Plan, why: PreemptCause) -> Vec<(u64, Time)> {
    plan.decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Preempt {
                job,
                deadline,
                cause,
                ..
            } if *cause == why => Some((job.0, *deadline)),
            _ => None,
        })
        .collect()
}

fn reclaimed(plan: &Plan) -> Vec<(u64, Time)> {
    preempted(plan, PreemptCause::Reclaim)
}

/// 32 H100 (two leaves of two 8-device nodes); tenant 1 leases a leaf of 16, tenant 2 16 anywhere.
fn leased(config: Config) -> Scheduler {
    let mut s = scheduler(config, nodes("H100", 2, 2, 8, 0, 0));
    let a = s
        .admit_lease(lease(1, 1, 16, 0, 100_000, Within::Leaf))
        .unwrap();
    assert_eq!(a.domain.as_deref(), Some("spine-0/leaf-0"));
    s.admit_lease(lease(2, 2, 16, 0, 100_000, Within::Anywhere))
        .unwrap();
    s
}

#[test]
fn a_lease_beyond_promised_capacity_is_refused_with_what_is_short() {
    let mut s = leased(Config::wanka());
    let err = s
        .admit_lease(lease(3, 3, 8, 50_000, 200_000, Within::Anywhere))
        .unwrap_err();
    let CoreError::Shortfall(short) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (short.installed, short.promised, short.short_by()),
        (32, 32, 8)
    );
    assert_eq!(short.from, Time::from_secs(50_000));
    assert_eq!(short.to, Time::from_secs(100_000));
    assert!(
        err.to_string().contains("lease 1 of tenant #1: 16"),
        "{err}"
    );
    // After the others end it fits; a lease of an unknown tenant or an empty window is refused outright.
    s.admit_lease(lease(3, 3, 8, 100_000, 200_000, Within::Anywhere))
        .unwrap();
    assert!(matches!(
        s.admit_lease(lease(4, 9, 8, 0, 1, Within::Anywhere)),
        Err(CoreError::UnknownTenant(_))
    ));
    assert!(matches!(
        s.admit_lease(lease(5, 3, 8, 10, 10, Within::Anywhere)),
        Err(CoreError::BadLease { .. })
    ));
}

#[test]
fn idle_leased_capacity_is_lent_and_reclaimed_within_the_grace() {
    let mut s = leased(Config::wanka());
    // Tenant 2 wants 32: its own 16 leased, the 16 tenant 1 leaves idle borrowed.
    for id in 1..=4 {
        s.submit(tenant_job(id, 2, 1)).unwrap();
    }
    let plan = s.schedule(Time::from_secs(10));
    use UsageKind::*;
    assert_eq!(
        starts(&plan),
        vec![(1, Leased), (2, Leased), (3, Borrowed), (4, Borrowed)]
    );
    // Tenant 1 needs its leaf: both borrowers are asked to checkpoint and leave within 300 s.
    s.submit(tenant_job(10, 1, 2)).unwrap();
    let plan = s.schedule(Time::from_secs(20));
    let grace = Time::from_secs(20) + Span::from_secs(300);
    assert_eq!(reclaimed(&plan), vec![(4, grace), (3, grace)]);
    assert_eq!(
        s.status(JobId(10)),
        Some(JobStatus::Pending {
            reason: PendingReason::Preempting { victims: 2 }
        })
    );
    for id in [3, 4] {
        s.requeue(JobId(id)).unwrap();
    }
    let plan = s.schedule(Time::from_secs(50));
    let Some(Decision::Start {
        usage, lease_wait, ..
    }) = plan.decisions.first()
    else {
        panic!("{plan:?}")
    };
    assert_eq!((*usage, *lease_wait), (Leased, Some(Span::from_secs(30))));
    // The borrowers wait: nothing is free, and tenant 2's lease is full.
    assert!(starts(&plan).iter().all(|(j, _)| *j == 10));
}

#[test]
fn strict_partitions_leave_idle_leases_idle() {
    let mut config = Config::wanka();
    config.leases.lending = false;
    let mut s = leased(config);
    for id in 1..=4 {
        s.submit(tenant_job(id, 2, 1)).unwrap();
    }
    let plan = s.schedule(Time::from_secs(10));
    assert_eq!(
        starts(&plan),
        vec![(1, UsageKind::Leased), (2, UsageKind::Leased)]
    );
    assert_eq!(
        s.status(JobId(3)),
        Some(JobStatus::Pending {
            reason: PendingReason::LeaseLimit
        })
    );
    s.submit(tenant_job(10, 1, 2)).unwrap();
    let plan = s.schedule(Time::from_secs(20));
    assert_eq!(starts(&plan), vec![(10, UsageKind::Leased)]);
}

#[test]
fn unleased_capacity_is_on_demand_and_a_future_lease_makes_it_borrowed() {
    let mut s = scheduler(Config::wanka(), nodes("H100", 2, 2, 8, 0, 0));
    s.admit_lease(lease(1, 1, 16, 1_000, 100_000, Within::Anywhere))
        .unwrap();
    for id in 1..=4 {
        s.submit(tenant_job(id, 2, 1)).unwrap();
    }
    // 16 devices are never promised: on demand; the other 16 are promised from t=1000: borrowed already.
    let plan = s.schedule(Time::from_secs(10));
    use UsageKind::*;
    assert_eq!(
        starts(&plan),
        vec![(1, OnDemand), (2, OnDemand), (3, Borrowed), (4, Borrowed)]
    );
    // Before the lease starts, tenant 1 has no claim; once it starts, the borrowers are reclaimed.
    s.submit(tenant_job(10, 1, 1)).unwrap();
    let plan = s.schedule(Time::from_secs(500));
    assert!(reclaimed(&plan).is_empty());
    let plan = s.schedule(Time::from_secs(1_000));
    assert_eq!(reclaimed(&plan).len(), 1);
}

#[test]
fn other_tenants_work_in_a_pinned_leaf_is_reclaimable() {
    let mut s = scheduler(Config::wanka(), nodes("H100", 2, 2, 8, 0, 0));
    let a = s
        .admit_lease(lease(1, 1, 16, 0, 100_000, Within::Leaf))
        .unwrap();
    let leaf = a.domain.unwrap();
    // 16 unleased devices: two 8-device jobs of tenant 2 are on demand only off tenant 1's leaf.
    for id in 1..=3 {
        s.submit(tenant_job(id, 2, 1)).unwrap();
    }
    let plan = s.schedule(Time::from_secs(10));
    for (id, usage) in starts(&plan) {
        let Some(JobStatus::Running { allocation }) = s.status(JobId(id)) else {
            panic!()
        };
        let node = allocation.replicas[0].node.0;
        let in_leaf = leaf.ends_with(&format!("leaf-{}", node / 2));
        assert_eq!(
            usage == UsageKind::Borrowed,
            in_leaf,
            "job {id} on node {node}"
        );
    }
    assert_eq!(starts(&plan).len(), 3);
}

#[test]
fn a_snapshot_keeps_leases_and_the_kind_of_each_run() {
    let mut s = leased(Config::wanka());
    for id in 1..=3 {
        s.submit(tenant_job(id, 2, 1)).unwrap();
    }
    s.schedule(Time::from_secs(10));
    let snap = s.snapshot(Time::from_secs(10));
    let (c, p) = common::catalog();
    let mut back = Scheduler::from_snapshot(Config::wanka(), c, p, &snap).unwrap();
    assert_eq!(back.leases().iter().count(), 2);
    assert_eq!(
        back.lease_room(TenantId(2), model("H100"), Time::from_secs(10)),
        0
    );
    // Tenant 1 reclaims the borrowed job in the rebuilt scheduler too.
    back.submit(tenant_job(10, 1, 2)).unwrap();
    let plan = back.schedule(Time::from_secs(20));
    assert_eq!(reclaimed(&plan).len(), 1);
}

#[test]
fn a_job_runs_on_the_model_its_lease_covers_before_any_faster_one() {
    let mut all = nodes("H100", 1, 1, 8, 0, 0);
    all.extend(nodes("T4", 1, 1, 8, 10, 1));
    for lending in [false, true] {
        let mut config = Config::wanka();
        config.leases.lending = lending;
        let mut s = scheduler(config, all.clone());
        let mut l = lease(1, 1, 8, 0, 100_000, Within::Anywhere);
        l.model = model("T4");
        s.admit_lease(l).unwrap();
        let mut h = lease(2, 2, 8, 0, 100_000, Within::Anywhere);
        h.model = model("H100");
        s.admit_lease(h).unwrap();
        // The H100 is faster, but tenant 1 leases the T4s: strict or not, it runs there, within its lease.
        let mut j = tenant_job(1, 1, 1);
        j.models = vec![model("H100"), model("T4")];
        s.submit(j).unwrap();
        let plan = s.schedule(Time::from_secs(10));
        assert_eq!(
            starts(&plan),
            vec![(1, UsageKind::Leased)],
            "lending {lending}"
        );
        let Some(JobStatus::Running { allocation }) = s.status(JobId(1)) else {
            panic!()
        };
        assert_eq!(allocation.model, model("T4"));
    }
}

#[test]
fn a_class_lease_is_pinned_to_the_model_with_the_least_room_and_refused_when_none_fits() {
    // 16 H100 and 32 H800.
    let mut all = nodes("H100", 1, 2, 8, 0, 0);
    all.extend(nodes("H800", 2, 2, 8, 10, 2));
    let mut s = scheduler(Config::wanka(), all);
    let hopper = [model("H100"), model("H800")];
    let pinned = |s: &mut Scheduler, id: u64, n: u32| {
        s.admit_lease_of(lease(id, 1, n, 0, 100_000, Within::Anywhere), &hopper)
            .map(|l| l.model)
    };
    // 8 fit both: the H100s have less room left, the H800s stay whole for a bigger lease.
    assert_eq!(pinned(&mut s, 1, 8), Ok(model("H100")));
    assert_eq!(pinned(&mut s, 2, 24), Ok(model("H800")));
    assert_eq!(pinned(&mut s, 3, 8), Ok(model("H100")));
    // 16 more: 0 H100 and 8 H800 are left; the refusal names the model closest to fitting.
    let Err(CoreError::Shortfall(short)) = pinned(&mut s, 4, 16) else {
        panic!("admitted beyond capacity")
    };
    assert_eq!(
        (
            short.model,
            short.installed,
            short.promised,
            short.short_by()
        ),
        (model("H800"), 32, 24, 8)
    );
    assert_eq!(s.leases().iter().count(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever leases are asked for, the admitted ones never promise more than is installed at any instant,
    /// and their pools are exactly their size, on the lease's model, and disjoint while their windows overlap.
    #[test]
    fn admitted_leases_fit_at_every_instant_on_disjoint_pools(
        asks in prop::collection::vec((0u32..4, 1u32..20, 0i64..10, 1i64..6, 0usize..3), 1..16)
    ) {
        let mut s = scheduler(Config::wanka(), nodes("H100", 2, 2, 8, 0, 0));
        let mut admitted = Vec::new();
        for (i, &(tenant, devices, start, len, within)) in asks.iter().enumerate() {
            let within = [Within::Anywhere, Within::Leaf, Within::Spine][within];
            let l = lease(i as u64 + 1, tenant, devices, start * 100, (start + len) * 100, within);
            if let Ok(l) = s.admit_lease(l) {
                admitted.push(l);
            }
        }
        for t in (0..1600).step_by(50) {
            let at = Time::from_secs(t);
            let active: Vec<&Lease> = admitted.iter().filter(|l| l.active(at)).collect();
            let load: u32 = active.iter().map(|l| l.devices).sum();
            prop_assert!(load <= 32, "{load} promised at t={t}");
            // The pools in force: exactly each lease's size, under its switch, never shared.
            s.schedule(at);
            let mut seen = std::collections::BTreeSet::new();
            for l in &active {
                let devs: Vec<(u32, u32)> = s
                    .lease_devices(l.id)
                    .into_iter()
                    .flat_map(|(n, ds)| ds.into_iter().map(move |d| (n.0, d)))
                    .collect();
                prop_assert_eq!(devs.len() as u32, l.devices, "lease {} at t={}", l.id.0, t);
                for &(n, d) in &devs {
                    if let Some(dom) = &l.domain {
                        // Nodes 0-1 are leaf-0 and 2-3 leaf-1, both under spine-0.
                        prop_assert!(dom == "spine-0" || dom == &format!("spine-0/leaf-{}", n / 2), "{dom} {n}");
                    }
                    prop_assert!(seen.insert((n, d)), "device {n}/{d} in two pools at t={t}");
                }
            }
        }
    }
}

/// Node of each replica of a running (or leaving) job.
fn nodes_of(s: &Scheduler, id: u64) -> Vec<u32> {
    let (Some(JobStatus::Running { allocation }) | Some(JobStatus::Preempting { allocation, .. })) =
        s.status(JobId(id))
    else {
        panic!("job {id} holds no devices: {:?}", s.status(JobId(id)))
    };
    allocation.replicas.iter().map(|r| r.node.0).collect()
}

#[test]
fn runs_are_moved_so_that_a_gang_finds_a_whole_node() {
    use std::collections::{BTreeMap, BTreeSet};
    // (tenant of the one-device runs, repack after, repack leased runs, moved): tenant 2 borrows tenant 1's
    // leaf; tenant 1 runs within its lease there.
    let cases = [
        (2, None, true, false),
        (2, Some(600), false, true),
        (1, Some(600), false, false),
        (1, Some(600), true, true),
    ];
    for (small, repack_after, repack_leased, moves) in cases {
        let case = format!("tenant {small}, after {repack_after:?}, leased {repack_leased}");
        let mut config = Config::wanka();
        config.leases.repack_after = repack_after.map(Span::from_secs);
        config.leases.repack_leased = repack_leased;
        let mut s = leased(config);
        // Tenant 2 runs its lease with two 8-device jobs; 16 one-device runs fill tenant 1's leaf.
        s.submit(tenant_job(1, 2, 1)).unwrap();
        s.submit(tenant_job(2, 2, 1)).unwrap();
        for id in 3..=18 {
            let mut j = job(id, 1, 1);
            j.tenant = TenantId(small);
            j.submitted = Time::from_secs(id as i64);
            s.submit(j).unwrap();
        }
        let plan = s.schedule(Time::from_secs(20));
        assert_eq!(starts(&plan).len(), 18, "{case}");
        let kind = if small == 1 {
            UsageKind::Leased
        } else {
            UsageKind::Borrowed
        };
        // Four end on each node of the leaf: 8 devices free, but no node has 8.
        let mut ended = BTreeMap::<u32, u32>::new();
        for id in 3..=18 {
            let node = nodes_of(&s, id)[0];
            let n = ended.entry(node).or_default();
            if *n < 4 {
                *n += 1;
                s.finished(JobId(id)).unwrap();
            }
        }
        assert_eq!(ended.values().copied().collect::<Vec<_>>(), vec![4, 4]);
        // Tenant 3 (no lease) wants one whole node. The runs are too young to move at first.
        s.submit(tenant_job(30, 3, 1)).unwrap();
        let plan = s.schedule(Time::from_secs(300));
        assert!(preempted(&plan, PreemptCause::Repack).is_empty(), "{case}");
        let plan = s.schedule(Time::from_secs(1_000));
        let moved = preempted(&plan, PreemptCause::Repack);
        if !moves {
            assert!(moved.is_empty(), "{case}: {plan:?}");
            continue;
        }
        // The four runs on one node move to the four free devices of the other.
        assert_eq!(moved.len(), 4, "{case}: {plan:?}");
        let from: BTreeSet<u32> = moved.iter().map(|(j, _)| nodes_of(&s, *j)[0]).collect();
        assert_eq!(from.len(), 1, "{case}");
        let from = *from.first().unwrap();
        let deadline = Time::from_secs(1_000) + Span::from_secs(300);
        assert!(moved.iter().all(|(_, d)| *d == deadline), "{case}");
        assert_eq!(
            s.status(JobId(30)),
            Some(JobStatus::Pending {
                reason: PendingReason::Preempting { victims: 4 }
            })
        );
        // Another one-device job does not take the devices held for the moved runs.
        let mut late = job(40, 1, 1);
        late.tenant = TenantId(2);
        late.submitted = Time::from_secs(1_001);
        s.submit(late).unwrap();
        let plan = s.schedule(Time::from_secs(1_010));
        assert!(starts(&plan).is_empty(), "{case}: {plan:?}");
        // They checkpoint and leave; the gang gets the whole node, the moved runs the other node, on capacity
        // of the same kind as before.
        for (j, _) in &moved {
            s.requeue(JobId(*j)).unwrap();
        }
        let plan = s.schedule(Time::from_secs(1_030));
        let mut expect: BTreeSet<(u64, UsageKind)> =
            moved.iter().map(|(j, _)| (*j, kind)).collect();
        expect.insert((30, UsageKind::Borrowed));
        assert_eq!(
            starts(&plan).into_iter().collect::<BTreeSet<_>>(),
            expect,
            "{case}"
        );
        assert_eq!(nodes_of(&s, 30), vec![from]);
        for (j, _) in &moved {
            assert_ne!(nodes_of(&s, *j)[0], from, "{case}");
        }
    }
}
