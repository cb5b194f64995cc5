//! Hosts, leases and fires against a real PostgreSQL server: claims raced by several hosts,
//! expiry and takeover with a newer epoch, renewal that fails, once-per-fire.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::{PgServer, eventually};
use weir_cluster::{ClaimLimits, Cluster, ClusterError, ClusterOptions, RunClaim};

fn options(server: &PgServer, host: &str, lease: Duration) -> ClusterOptions {
    ClusterOptions {
        url: server.url(),
        password: None,
        host_id: host.to_owned(),
        lease,
    }
}

async fn join(server: &PgServer, host: &str, lease: Duration) -> Cluster {
    Cluster::join(&options(server, host, lease), "0.1.0", &BTreeMap::new())
        .await
        .unwrap()
}

fn partitions(n: usize) -> Vec<(String, Option<u64>)> {
    (1..=n)
        .map(|i| (format!("p{i:02}"), Some(i as u64)))
        .collect()
}

const UNLIMITED: ClaimLimits = ClaimLimits {
    host_free: usize::MAX / 2,
    cluster_limit: None,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_run_lease_per_pipeline_and_each_partition_to_one_host_at_a_time() {
    let server = PgServer::start();
    let lease = Duration::from_secs(30);
    let hosts = [
        join(&server, "a", lease).await,
        join(&server, "b", lease).await,
        join(&server, "c", lease).await,
    ];

    // Three hosts race for the run lease: one gets it, the others are told who has it.
    let run_ids = ["run-0", "run-1", "run-2"];
    let claims = futures_util::future::join_all(
        hosts
            .iter()
            .zip(run_ids)
            .map(|(h, id)| h.claim_run("sales", id)),
    )
    .await;
    let mut started = Vec::new();
    for (i, claim) in claims.into_iter().enumerate() {
        match claim.unwrap() {
            RunClaim::Started(lease) => started.push((i, lease)),
            RunClaim::Busy { .. } => {}
            RunClaim::Adopted { .. } => panic!("nothing to adopt"),
        }
    }
    assert_eq!(started.len(), 1, "exactly one host starts the run");
    let (winner, run) = started.pop().unwrap();
    assert_eq!(run.run_id, format!("run-{winner}"));
    assert_eq!(run.epoch, 1);
    match hosts[(winner + 1) % 3]
        .claim_run("sales", "late")
        .await
        .unwrap()
    {
        RunClaim::Busy { owner, run_id } => {
            assert_eq!(owner.as_deref(), Some(hosts[winner].host_id()));
            assert_eq!(run_id, Some(run.run_id.clone()));
        }
        other => panic!("expected busy, got {other:?}"),
    }
    // Only the holder of the run lease queues partitions.
    let mut forged = run.clone();
    forged.epoch += 1;
    assert!(
        !hosts[winner]
            .queue_partitions(&forged, &partitions(12))
            .await
            .unwrap()
    );
    assert!(
        hosts[winner]
            .queue_partitions(&run, &partitions(12))
            .await
            .unwrap()
    );

    // All three claim at once, again and again: every partition goes to exactly one host,
    // and the fair share (12 over 3 live hosts) spreads them 4, 4, 4.
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..3 {
        let rounds = futures_util::future::join_all(
            hosts
                .iter()
                .map(|h| h.claim_partitions("sales", &run.run_id, UNLIMITED, "{}", &[])),
        )
        .await;
        for (host, claims) in hosts.iter().zip(rounds) {
            for claim in claims.unwrap() {
                assert_eq!(claim.lease.epoch, 1);
                assert_eq!(claim.taken_over_from, None);
                let previous = taken.insert(claim.lease.partition.clone(), host.host_id().into());
                assert_eq!(previous, None, "{} claimed twice", claim.lease.partition);
            }
        }
    }
    assert_eq!(
        taken.keys().cloned().collect::<Vec<_>>(),
        partitions(12)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        "every partition claimed"
    );
    for host in ["a", "b", "c"] {
        assert_eq!(
            taken.values().filter(|h| *h == host).count(),
            4,
            "{taken:?}"
        );
    }
    let progress = hosts[0].run_progress("sales", &run.run_id).await.unwrap();
    assert_eq!(
        (progress.total, progress.held, progress.queued),
        (12, 12, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_host_slots_and_the_cluster_limit_bound_what_is_claimed() {
    let server = PgServer::start();
    let lease = Duration::from_secs(30);
    let hosts = [
        join(&server, "a", lease).await,
        join(&server, "b", lease).await,
        join(&server, "c", lease).await,
    ];
    let RunClaim::Started(run) = hosts[0].claim_run("sales", "r1").await.unwrap() else {
        panic!("the run lease is free");
    };
    assert!(
        hosts[0]
            .queue_partitions(&run, &partitions(12))
            .await
            .unwrap()
    );
    let limits = ClaimLimits {
        host_free: 3,
        cluster_limit: Some(5),
    };
    // Racing claims never exceed the cluster-wide limit together, nor 3 on one host.
    let rounds = futures_util::future::join_all(
        hosts
            .iter()
            .map(|h| h.claim_partitions("sales", "r1", limits, "{}", &[])),
    )
    .await;
    let counts: Vec<usize> = rounds.into_iter().map(|r| r.unwrap().len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 5, "{counts:?}");
    assert!(counts.iter().all(|&n| n <= 3), "{counts:?}");
    // A host with no free slot takes nothing, and neither does anyone at the limit.
    let none = ClaimLimits {
        host_free: 0,
        cluster_limit: None,
    };
    assert!(
        hosts[0]
            .claim_partitions("sales", "r1", none, "{}", &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        hosts[1]
            .claim_partitions("sales", "r1", limits, "{}", &[])
            .await
            .unwrap()
            .is_empty()
    );
    // A claim for a run that is not the pipeline's current one takes nothing.
    assert!(
        hosts[2]
            .claim_partitions("sales", "r0", UNLIMITED, "{}", &[])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_lease_is_taken_over_with_a_newer_epoch_and_its_old_holder_is_told() {
    let server = PgServer::start();
    let lease = Duration::from_millis(1500);
    let a = join(&server, "a", lease).await;
    let b = join(&server, "b", lease).await;
    let RunClaim::Started(run) = a.claim_run("sales", "r1").await.unwrap() else {
        panic!("the run lease is free");
    };
    assert!(a.queue_partitions(&run, &partitions(2)).await.unwrap());
    let one = ClaimLimits {
        host_free: 1,
        cluster_limit: None,
    };
    let held = a
        .claim_partitions("sales", "r1", one, "{}", &[])
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    let p01 = held[0].lease.clone();
    assert_eq!(p01.partition, "p01");

    // While A renews, B cannot take p01 (it gets p02, the one left).
    for _ in 0..3 {
        assert!(
            a.renew_leases(&[p01.clone(), run.clone()])
                .await
                .unwrap()
                .is_empty()
        );
        let got = b
            .claim_partitions("sales", "r1", one, "{}", &[])
            .await
            .unwrap();
        assert!(got.iter().all(|c| c.lease.partition == "p02"), "{got:?}");
    }

    // A stops renewing. Once the database's clock passes the expiry, B takes p01 over with
    // the next epoch, and learns from whom.
    let taken = eventually("p01 to be taken over", lease * 4, async || {
        let mut claims = b
            .claim_partitions("sales", "r1", UNLIMITED, "{}", &[])
            .await
            .unwrap();
        claims.retain(|c| c.lease.partition == "p01");
        claims.pop()
    })
    .await;
    assert_eq!(taken.lease.epoch, p01.epoch + 1);
    assert_eq!(taken.taken_over_from.as_deref(), Some("a"));

    // A's renewal changes nothing: it is told the lease is lost, and cannot finish it or
    // hand it back either.
    let lost = a.renew_leases(std::slice::from_ref(&p01)).await.unwrap();
    assert_eq!(lost, vec![p01.key()]);
    assert!(
        !a.finish_partition(&p01, "completed", Default::default())
            .await
            .unwrap()
    );
    assert!(!a.hand_back(&p01).await.unwrap());
    assert!(
        b.finish_partition(&taken.lease, "completed", Default::default())
            .await
            .unwrap()
    );

    // The run lease lapsed too: another host adopts that run instead of starting a new one.
    match b.claim_run("sales", "r2").await.unwrap() {
        RunClaim::Adopted {
            lease,
            previous_owner,
        } => {
            assert_eq!(lease.run_id, "r1");
            assert_eq!(lease.epoch, run.epoch + 1);
            assert_eq!(previous_owner.as_deref(), Some("a"));
            assert!(
                !a.release_run(&run).await.unwrap(),
                "A's run lease is stale"
            );
            assert!(b.release_run(&lease).await.unwrap());
        }
        other => panic!("expected adoption, got {other:?}"),
    }
    // A later run starts afresh and its partitions keep counting epochs up.
    let RunClaim::Started(run3) = a.claim_run("sales", "r3").await.unwrap() else {
        panic!("released");
    };
    assert!(a.queue_partitions(&run3, &partitions(1)).await.unwrap());
    let again = a
        .claim_partitions("sales", "r3", one, "{}", &[])
        .await
        .unwrap();
    assert_eq!(again[0].lease.epoch, taken.lease.epoch + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_lease_nobody_claimed_is_renewed_and_a_restarted_server_keeps_leases() {
    let server = PgServer::start();
    let lease = Duration::from_millis(1500);
    let a = join(&server, "a", lease).await;
    let RunClaim::Started(run) = a.claim_run("sales", "r1").await.unwrap() else {
        panic!("the run lease is free");
    };
    eventually("the run lease to expire", lease * 4, async || {
        (a.orphaned_runs().await.unwrap() == vec![("sales".into(), "r1".into())]).then_some(())
    })
    .await;
    // Nobody took it: the epoch is still the newest, so renewing it is safe.
    assert!(
        a.renew_leases(std::slice::from_ref(&run))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(a.orphaned_runs().await.unwrap().is_empty());

    // The server goes away: heartbeats fail (the holder must count its lease time down)...
    server.stop();
    let error = a.heartbeat(std::slice::from_ref(&run)).await.unwrap_err();
    assert!(
        matches!(
            error,
            ClusterError::Connect { .. } | ClusterError::Query { .. }
        ),
        "{error}"
    );
    assert!(!error.to_string().contains("password"));
    // ...and after it is back, the same handle reconnects and the lease is renewed.
    server.start_again();
    let beat = eventually(
        "a heartbeat after the restart",
        Duration::from_secs(10),
        async || a.heartbeat(std::slice::from_ref(&run)).await.ok(),
    )
    .await;
    assert!(beat.lost.is_empty(), "{beat:?}");
    assert!(!beat.draining);
    let b = join(&server, "b", lease).await;
    assert!(matches!(
        b.claim_run("sales", "r2").await.unwrap(),
        RunClaim::Busy { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cron_fire_is_claimed_by_exactly_one_host() {
    let server = PgServer::start();
    let lease = Duration::from_secs(30);
    let hosts = [
        join(&server, "a", lease).await,
        join(&server, "b", lease).await,
        join(&server, "c", lease).await,
    ];
    let at = 1_800_000_000_000_i64;
    for minute in 0..5 {
        let t = at + minute * 60_000;
        let claims =
            futures_util::future::join_all(hosts.iter().map(|h| h.claim_fire("sales", t))).await;
        let winners: Vec<&str> = hosts
            .iter()
            .zip(claims)
            .filter(|(_, won)| *won.as_ref().unwrap())
            .map(|(h, _)| h.host_id())
            .collect();
        assert_eq!(winners.len(), 1, "fire {t}: {winners:?}");
        assert_eq!(
            hosts[0].fire_owner("sales", t).await.unwrap().as_deref(),
            Some(winners[0])
        );
    }
    // Another pipeline's fire at the same time is its own.
    assert!(hosts[1].claim_fire("stock", at).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_id_is_one_process_and_the_registry_shows_hosts_and_leases() {
    let server = PgServer::start();
    let lease = Duration::from_millis(600);
    let first = join(&server, "a", lease).await;
    // A live process keeps its id: a second one gives up after waiting two leases.
    let keep_alive = async {
        loop {
            first.heartbeat(&[]).await.unwrap();
            tokio::time::sleep(lease / 4).await;
        }
    };
    let (same_id, no_plugins) = (options(&server, "a", lease), BTreeMap::new());
    let second = Cluster::join(&same_id, "0.1.0", &no_plugins);
    let refused = tokio::select! {
        result = second => result.err().expect("the id is in use"),
        () = keep_alive => unreachable!(),
    };
    assert!(
        refused.to_string().contains("host id \"a\" is in use"),
        "{refused}"
    );
    // Once the first stops heartbeating (a crash), a new process takes the id over, and the
    // old one is told at its next heartbeat.
    let replacement = join(&server, "a", lease).await;
    assert!(matches!(
        first.heartbeat(&[]).await,
        Err(ClusterError::HostIdInUse { .. })
    ));

    let plugins = BTreeMap::from([("csv-extract".to_owned(), "0.2.0".to_owned())]);
    let b = Cluster::join(&options(&server, "b", lease), "0.1.0", &plugins)
        .await
        .unwrap();
    let RunClaim::Started(run) = b.claim_run("sales", "r1").await.unwrap() else {
        panic!("free");
    };
    assert!(b.set_draining("b", true).await.unwrap());
    assert!(!b.set_draining("nobody", true).await.unwrap());
    assert!(
        b.heartbeat(std::slice::from_ref(&run))
            .await
            .unwrap()
            .draining
    );
    replacement.leave().await.unwrap();
    let hosts = b.hosts().await.unwrap();
    let ids: BTreeSet<&str> = hosts.iter().map(|h| h.host_id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["a", "b"]));
    let (a_row, b_row) = (&hosts[0], &hosts[1]);
    assert!(a_row.stopped && !a_row.alive);
    assert!(b_row.alive && b_row.draining && !b_row.stopped);
    assert_eq!(b_row.leases, 1);
    assert_eq!(b_row.plugins, plugins);
    assert!(b_row.heartbeat_age_seconds >= 0.0 && b_row.heartbeat_age_seconds < 5.0);
    let leases = b.leases().await.unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].owner.as_deref(), Some("b"));
    assert_eq!(leases[0].partition, "*");
    // A cancel request reaches the hosts of the run at their next heartbeat.
    assert!(!b.request_cancel("sales", "another run").await.unwrap());
    assert!(b.request_cancel("sales", &run.run_id).await.unwrap());
    assert_eq!(
        b.heartbeat(std::slice::from_ref(&run))
            .await
            .unwrap()
            .cancelled,
        vec!["sales".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lapsed_run_is_adopted_once_and_its_progress_sums_what_each_holder_committed() {
    let server = PgServer::start();
    let short = Duration::from_secs(1);
    let a = join(&server, "a", short).await;
    let b = join(&server, "b", short).await;
    let RunClaim::Started(run) = a.claim_run("sales", "r1").await.unwrap() else {
        panic!("a starts the run")
    };
    assert!(a.queue_partitions(&run, &partitions(3)).await.unwrap());
    // Host b helps: the run has partitions to claim, and b's claim records its plugins.
    assert_eq!(
        b.claimable_runs().await.unwrap(),
        vec![("sales".to_owned(), "r1".to_owned())]
    );
    let mut claimed = b
        .claim_partitions("sales", "r1", UNLIMITED, r#"{"csv-extract":"0.2.0"}"#, &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "a fair share: 3 partitions over 2 hosts");
    assert_eq!(claimed[0].size, Some(1));
    let recorded = server.psql(
        "SELECT partition || '=' || host || ' ' || plugins FROM weir_run_partitions \
         WHERE run_id = 'r1' ORDER BY 1",
    );
    assert_eq!(
        recorded.lines().collect::<Vec<_>>(),
        [
            r#"p01=b {"csv-extract":"0.2.0"}"#,
            r#"p02=b {"csv-extract":"0.2.0"}"#
        ]
    );
    let done = claimed.remove(0);
    let totals = weir_store::Totals {
        rows_read: 11,
        rows_loaded: 10,
        rows_rejected: 1,
    };
    assert!(
        b.finish_partition(&done.lease, "completed", totals)
            .await
            .unwrap()
    );
    // Host a stops heartbeating; b adopts its run, once.
    eventually(
        "a's run lease lapses",
        Duration::from_secs(10),
        async || {
            (b.orphaned_runs().await.unwrap() == vec![("sales".into(), "r1".into())]).then_some(())
        },
    )
    .await;
    let (adopted, from) = b.adopt_run("sales", "r1").await.unwrap().expect("adopted");
    assert_eq!(from.as_deref(), Some("a"));
    assert_eq!(adopted.run_id, "r1");
    assert!(adopted.epoch > run.epoch);
    assert!(
        b.adopt_run("sales", "r1").await.unwrap().is_none(),
        "adopted once"
    );
    // The old holder's lease no longer is the run's.
    let progress = b.run_progress("sales", "r1").await.unwrap();
    assert!(progress.run_lease_is(&adopted, "b"));
    assert!(!progress.run_lease_is(&run, "a"));
    assert!(
        !a.cancel_own_run(&run).await.unwrap(),
        "a's cancel no longer counts"
    );
    assert_eq!(
        (
            progress.total,
            progress.done,
            progress.held + progress.expired
        ),
        (3, 1, 1),
        "{progress:?}"
    );
    assert_eq!(
        (
            progress.rows_read,
            progress.rows_loaded,
            progress.rows_rejected
        ),
        (11, 10, 1)
    );
    // A holder that lost its partition adds what it committed before it stopped.
    b.add_partition_totals(&claimed[0].lease, totals)
        .await
        .unwrap();
    assert_eq!(b.run_progress("sales", "r1").await.unwrap().rows_loaded, 20);
    // Handed over: the lease lapses at once, for another host to adopt.
    assert!(b.hand_over_run(&adopted).await.unwrap());
    assert_eq!(
        b.orphaned_runs().await.unwrap(),
        vec![("sales".into(), "r1".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_of_the_first_layout_is_migrated() {
    let server = PgServer::start();
    // The first layout, as an earlier weir left it: no size or row counts on leases.
    let a = join(&server, "a", Duration::from_secs(30)).await;
    drop(a);
    server.psql(
        "ALTER TABLE weir_leases DROP COLUMN size, DROP COLUMN rows_read, \
         DROP COLUMN rows_loaded, DROP COLUMN rows_rejected; \
         UPDATE weir_cluster_schema SET version = 1",
    );
    let b = join(&server, "b", Duration::from_secs(30)).await;
    assert_eq!(
        server
            .psql("SELECT version FROM weir_cluster_schema")
            .trim(),
        "2"
    );
    let RunClaim::Started(run) = b.claim_run("sales", "r1").await.unwrap() else {
        panic!("b starts the run")
    };
    assert!(b.queue_partitions(&run, &partitions(2)).await.unwrap());
    assert_eq!(b.run_progress("sales", "r1").await.unwrap().queued, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lapsed_lease_of_a_one_shot_command_is_not_adopted_as_a_run() {
    let server = PgServer::start();
    let short = Duration::from_secs(1);
    let host = join(&server, "a", short).await;
    let command = Cluster::inspect(&options(&server, "a", short).for_command())
        .await
        .unwrap();
    let RunClaim::Started(_) = command.claim_run("sales", "r-cli").await.unwrap() else {
        panic!("the command takes the idle run lease")
    };
    match host.claim_run("sales", "r1").await.unwrap() {
        RunClaim::Busy { owner, .. } => {
            let said = weir_cluster::describe_owner(&owner.unwrap());
            assert!(
                said.starts_with("a command (weir run) on host \"a\" (process "),
                "{said}"
            );
        }
        other => panic!("expected busy, got {other:?}"),
    }
    // The command dies without releasing: its lease lapses, and is not a run to adopt.
    drop(command);
    let claim = eventually(
        "the command's lease lapses",
        Duration::from_secs(10),
        async || {
            assert!(host.orphaned_runs().await.unwrap().is_empty());
            assert!(host.adopt_run("sales", "r-cli").await.unwrap().is_none());
            match host.claim_run("sales", "r1").await.unwrap() {
                RunClaim::Busy { .. } => None,
                other => Some(other),
            }
        },
    )
    .await;
    match claim {
        RunClaim::Started(lease) => assert_eq!(lease.run_id, "r1"),
        other => panic!("a new run starts, nothing is adopted: {other:?}"),
    }
}
