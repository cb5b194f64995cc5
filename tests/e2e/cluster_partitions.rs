//! The partitions of one run shared by three `weir serve` hosts (real processes, one real
//! PostgreSQL for the cluster, the target and the history): every partition loaded exactly
//! once and spread over the hosts; a host killed with SIGKILL mid-run has its partitions taken
//! over within the lease and a few seconds; a host paused (SIGSTOP) past its lease is fenced
//! when it wakes, and nothing it held is committed twice.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::pg::PgServer;
use crate::cluster::{eventually, host};
use crate::serve_support::*;
use crate::support::*;

const FILES: usize = 12;

/// `files` CSV files of `rows` good rows each (ids unique across files) plus one row with a
/// field too many (a reject), written alike into each host's inbox: the hosts see the same
/// partitions, as on a shared volume.
fn orders_host(db: &PgServer, id: &str, lease: u32, rows: usize, concurrency: usize) -> Fixture {
    orders_host_with(db, id, lease, rows, concurrency, "")
}

/// [`orders_host`] with more pipeline keys (a `transform = […]`).
fn orders_host_with(
    db: &PgServer,
    id: &str,
    lease: u32,
    rows: usize,
    concurrency: usize,
    extra: &str,
) -> Fixture {
    let port = db.port();
    // Room to retry through a database restart (each attempt fails fast while it is down).
    let pipeline = format!(
        r#"
[[pipeline]]
name = "orders"
concurrency = {concurrency}
batch_size = 500
restart = {{ max_restarts = 30 }}
grants = {{ read_dirs = ["inbox"], databases = {{ ledger = {{ url = "postgres://postgres@127.0.0.1:{port}/postgres", sslmode = "disable" }} }} }}
extract = {{ plugin = "csv-extract", config = {{ path = "inbox/*.csv" }} }}
{extra}
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", table = "orders", mode = "append" }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}
"#
    );
    let fx = host(db, id, lease, &pipeline);
    for file in 0..FILES {
        let mut csv = String::from("id,part,amount\n");
        for i in 0..rows {
            let id = file * 1_000_000 + i;
            csv.push_str(&format!("{id},{file},{}.{:02}\n", i % 997, i % 100));
            if i == rows / 2 {
                csv.push_str("bad,row,with,extra\n");
            }
        }
        let name = format!("inbox/part-{file:02}.csv");
        fx.write(&name, csv);
        age(&fx.path(&name), 60);
    }
    fx
}

fn count(db: &PgServer, sql: &str) -> i64 {
    db.psql(sql)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{sql}"))
}

/// Wait for the run to end (on any host's API) and return its record.
fn finished(server: &Server, run: &str, limit: Duration) -> serde_json::Value {
    eventually("the run's end", limit, || {
        let r = server.request("GET", &format!("/api/runs/{run}"), false);
        (r.status == 200 && r.json()["status"] != "running").then(|| r.json())
    })
}

/// The target holds every good row once: source − rejects, no duplicate, no loss.
fn assert_loaded_once(db: &PgServer, rows: usize) {
    let expected = (FILES * rows) as i64;
    assert_eq!(count(db, "SELECT count(*) FROM orders"), expected, "rows");
    assert_eq!(
        count(db, "SELECT count(DISTINCT id) FROM orders"),
        expected,
        "a row was loaded twice"
    );
    assert_eq!(
        count(
            db,
            "SELECT count(DISTINCT (partition, line)) FROM _weir_rejects"
        ),
        FILES as i64,
        "rejects"
    );
}

/// A throwaway PostgreSQL and three hosts `a`, `b`, `c` of the `orders` pipeline, joined.
/// A test takes a server out of `servers` to kill or stop it.
struct Hosts {
    db: PgServer,
    /// Each host's folder, deleted when dropped: bind it (`fixtures: _fixtures`) for the test.
    fixtures: Vec<Fixture>,
    servers: Vec<Option<Server>>,
}

fn hosts(rows: usize, lease: u32, concurrency: usize) -> Hosts {
    let db = PgServer::start();
    let fixtures: Vec<Fixture> = ["a", "b", "c"]
        .iter()
        .map(|id| orders_host(&db, id, lease, rows, concurrency))
        .collect();
    let servers = join(&fixtures);
    Hosts {
        db,
        fixtures,
        servers,
    }
}

/// Start a `weir serve` per fixture and wait until each has joined the cluster.
fn join(fixtures: &[Fixture]) -> Vec<Option<Server>> {
    let servers: Vec<Option<Server>> = fixtures.iter().map(|f| Some(Server::start(f))).collect();
    for server in servers.iter().flatten() {
        eventually("the host joined", Duration::from_secs(30), || {
            server.output().contains("cluster: host").then_some(())
        });
    }
    servers
}

/// Stop the hosts still running; each must exit cleanly.
fn stop_all(servers: Vec<Option<Server>>) {
    for server in servers.into_iter().flatten() {
        let (status, output) = server.stop();
        assert!(status.success(), "{output}");
    }
}

/// Wait until host `id` holds a partition of `run` it has committed batches of, unfinished.
fn busy_partition(db: &PgServer, run: &str, id: &str) -> String {
    eventually(
        &format!("host {id} mid-partition"),
        Duration::from_secs(120),
        || {
            let p = db.psql(&format!(
                "SELECT l.partition FROM weir_leases l JOIN weir_run_partitions p
                   ON p.run_id = l.run_id AND p.partition = l.partition
                 WHERE l.run_id = '{run}' AND l.owner = '{id}' AND l.state = 'held'
                   AND p.batches >= 2 AND p.host = '{id}' LIMIT 1"
            ));
            let p = p.trim();
            (!p.is_empty()).then(|| p.to_owned())
        },
    )
}

/// The partitions taken over from `id`, with the time of the first claim (Unix ms).
fn taken_over_from(db: &PgServer, run: &str, id: &str) -> Vec<(String, String, i64)> {
    db.psql(&format!(
        "SELECT partition, host, time_ms FROM weir_events WHERE run = '{run}'
           AND kind = 'partition_claimed' AND data::json->>'taken_over_from' = '{id}'
         ORDER BY id"
    ))
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('|').collect();
        (f[0].to_owned(), f[1].to_owned(), f[2].parse().unwrap())
    })
    .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn signal(server: &Server, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig}");
}

#[test]
fn three_hosts_share_twelve_partitions_and_load_each_row_exactly_once() {
    let rows = 20_000;
    let Hosts {
        db,
        fixtures,
        servers,
    } = hosts(rows, 3, 2);
    let validate = fixtures[0].weir(&["validate"]);
    assert!(
        validate.stdout().contains(
            "cluster: partitions shared across the hosts (every database it writes is PostgreSQL)"
        ),
        "{}",
        validate.stdout()
    );
    let a = servers[0].as_ref().unwrap();
    let run = a.trigger("orders");
    let record = finished(servers[2].as_ref().unwrap(), &run, Duration::from_secs(300));
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["rows_loaded"], (FILES * rows) as u64, "{record}");
    assert_eq!(record["rows_rejected"], FILES as u64, "{record}");
    assert_loaded_once(&db, rows);

    // Every partition ran once, to completion, and every host ran some.
    let per_host = db.psql(&format!(
        "SELECT host, count(*), min(status), max(status), bool_and(plugins LIKE '%csv-extract%')
         FROM weir_run_partitions WHERE run_id = '{run}' GROUP BY host ORDER BY host"
    ));
    let lines: Vec<&str> = per_host.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "each host took some partitions:\n{per_host}"
    );
    let mut total = 0;
    for line in &lines {
        let f: Vec<&str> = line.split('|').collect();
        total += f[1].parse::<usize>().unwrap();
        assert_eq!((f[2], f[3]), ("completed", "completed"), "{per_host}");
        assert_eq!(
            f[4], "t",
            "plugin versions recorded per partition: {per_host}"
        );
    }
    assert_eq!(total, FILES, "{per_host}");
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM weir_events WHERE run = '{run}' AND kind = 'partition_claimed'"
            )
        ),
        FILES as i64,
        "one claim per partition"
    );
    // No worker had to retry (twelve workers creating the checkpoint table at once used to).
    let retries = db.psql(&format!(
        "SELECT data FROM weir_events WHERE run = '{run}' AND kind = 'worker_retrying'"
    ));
    assert!(retries.trim().is_empty(), "{retries}");
    // Each partition's checkpoint is stored once, with its fence at the epoch that ran it.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM _weir_fences WHERE pipeline = 'orders'"
        ),
        FILES as i64
    );
    stop_all(servers);
}

#[test]
fn a_host_killed_mid_run_has_its_partitions_taken_over_and_every_row_loaded_once() {
    let (rows, lease) = (40_000, 3);
    let Hosts {
        db,
        mut servers,
        fixtures: _fixtures,
    } = hosts(rows, lease, 1);
    let run = servers[0].as_ref().unwrap().trigger("orders");
    let partition = busy_partition(&db, &run, "b");
    let victim = servers[1].take().unwrap();
    signal(&victim, "-KILL");
    let killed_ms = now_ms();
    drop(victim);

    let record = finished(servers[0].as_ref().unwrap(), &run, Duration::from_secs(300));
    assert_eq!(record["status"], "completed", "{record}");
    let taken = taken_over_from(&db, &run, "b");
    let ours = taken
        .iter()
        .find(|(p, _, _)| *p == partition)
        .unwrap_or_else(|| panic!("{partition} not taken over from b: {taken:?}"));
    assert!(ours.1 == "a" || ours.1 == "c", "{taken:?}");
    let after = Duration::from_millis((taken[0].2 - killed_ms).max(0) as u64);
    eprintln!("takeover: {taken:?}, first claim {after:?} after the kill (lease {lease} s)");
    assert!(
        after <= Duration::from_secs(u64::from(lease) + 5),
        "taken over {after:?} after the kill"
    );
    assert_loaded_once(&db, rows);
}

#[test]
fn a_host_paused_past_its_lease_is_fenced_when_it_wakes_and_nothing_is_committed_twice() {
    let (rows, lease) = (40_000, 3);
    let Hosts {
        db,
        servers,
        fixtures: _fixtures,
    } = hosts(rows, lease, 1);
    let a = servers[0].as_ref().unwrap();
    let b = servers[1].as_ref().unwrap();
    let run = a.trigger("orders");
    let partition = busy_partition(&db, &run, "b");
    signal(b, "-STOP");
    let stopped = Instant::now();
    // Another host claims the partition once b's lease has expired, and stamps its epoch.
    eventually(
        "the paused host's partition taken over",
        Duration::from_secs(u64::from(lease) + 30),
        || {
            taken_over_from(&db, &run, "b")
                .iter()
                .any(|(p, _, _)| *p == partition)
                .then_some(())
        },
    );
    assert!(stopped.elapsed() >= Duration::from_secs(u64::from(lease)) / 3);
    signal(b, "-CONT");

    let fenced = eventually(
        "host b's commit refused as fenced",
        Duration::from_secs(120),
        || {
            let out = db.psql(&format!(
                "SELECT partition || '|' || data FROM weir_events WHERE run = '{run}'
                   AND kind = 'partition_fenced' AND host = 'b'"
            ));
            (!out.trim().is_empty()).then_some(out)
        },
    );
    eprintln!("fenced: {fenced}");
    assert!(fenced.contains(&partition), "{fenced}");
    assert!(
        fenced.contains("another host took the partition over"),
        "{fenced}"
    );
    let record = finished(a, &run, Duration::from_secs(300));
    assert_eq!(record["status"], "completed", "{record}");
    assert_loaded_once(&db, rows);
    let events = db.psql(&format!(
        "SELECT kind, host, partition, data FROM weir_events WHERE run = '{run}'
           AND kind IN ('partition_claimed', 'partition_fenced')
           AND partition = '{partition}' ORDER BY id"
    ));
    eprintln!("events of {partition}:\n{events}");
    stop_all(servers);
}

#[test]
fn a_database_restart_mid_run_is_ridden_out_and_the_run_neither_repeats_nor_loses_a_row() {
    let (rows, lease) = (40_000, 5);
    let Hosts {
        db,
        servers,
        fixtures: _fixtures,
    } = hosts(rows, lease, 1);
    let a = servers[0].as_ref().unwrap();
    let run = a.trigger("orders");
    // Every host is at work when the server goes down.
    for id in ["a", "b", "c"] {
        busy_partition(&db, &run, id);
    }
    db.stop();
    db.start_again();
    let record = finished(a, &run, Duration::from_secs(300));
    assert_eq!(record["status"], "completed", "{record}");
    assert_loaded_once(&db, rows);
    // One run: the lease rows survived the restart, so no host started another.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM weir_runs WHERE pipeline = 'orders'"
        ),
        1
    );
    stop_all(servers);
}

#[test]
fn hosts_that_shut_down_mid_run_hand_their_partitions_and_the_run_to_the_others() {
    let (rows, lease) = (40_000, 3);
    let Hosts {
        db,
        mut servers,
        fixtures: _fixtures,
    } = hosts(rows, lease, 1);
    let run = servers[0].as_ref().unwrap().trigger("orders");
    // A helping host stops (SIGTERM): its partition goes back to the queue, unfinished.
    let partition = busy_partition(&db, &run, "b");
    let (status, output) = servers[1].take().unwrap().stop();
    assert!(status.success(), "{output}");
    let handed = db.psql(&format!(
        "SELECT state || '|' || coalesce(owner, '-') FROM weir_leases \
         WHERE run_id = '{run}' AND partition = '{partition}'"
    ));
    assert!(
        handed.trim() == "queued|-" || !handed.contains("|b"),
        "b still holds {partition}: {handed}"
    );
    // The run lease holder stops too: its run is let lapse at once and host c adopts it.
    busy_partition(&db, &run, "a");
    let (status, output) = servers[0].take().unwrap().stop();
    assert!(status.success(), "{output}");
    let c = servers[2].as_ref().unwrap();
    let record = finished(c, &run, Duration::from_secs(300));
    assert_eq!(record["status"], "completed", "{record}");
    let adopted = db.psql(&format!(
        "SELECT host, data::json->>'from' FROM weir_events WHERE run = '{run}' \
         AND kind = 'run_adopted'"
    ));
    assert_eq!(adopted.trim(), "c|a", "{adopted}");
    // Nothing was taken over from an expired lease: both hosts handed their work back.
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM weir_events WHERE run = '{run}' \
                 AND kind = 'partition_claimed' AND data::json->>'taken_over_from' IS NOT NULL"
            )
        ),
        0
    );
    assert_loaded_once(&db, rows);
}

#[test]
fn a_draining_host_claims_no_partitions() {
    let rows = 10_000;
    let Hosts {
        db,
        fixtures,
        servers,
    } = hosts(rows, 3, 2);
    let drained = fixtures[0].weir(&["cluster", "drain", "c"]);
    assert!(drained.0.status.success(), "{}", drained.stderr());
    // Host c reads the flag at its next heartbeat (within a third of the lease) and says so.
    let c = servers[2].as_ref().unwrap();
    eventually("host c draining", Duration::from_secs(20), || {
        c.output()
            .contains("draining: no new runs or partitions")
            .then_some(())
    });
    let run = servers[0].as_ref().unwrap().trigger("orders");
    let record = finished(servers[0].as_ref().unwrap(), &run, Duration::from_secs(300));
    assert_eq!(record["status"], "completed", "{record}");
    let hosts = db.psql(&format!(
        "SELECT DISTINCT host FROM weir_run_partitions WHERE run_id = '{run}' ORDER BY 1"
    ));
    assert_eq!(hosts.lines().collect::<Vec<_>>(), ["a", "b"], "{hosts}");
    assert_loaded_once(&db, rows);
}

#[test]
fn mid_upgrade_each_partition_runs_with_the_plugin_version_of_its_host_and_says_so() {
    let db = PgServer::start();
    let rows = 20_000;
    // Hosts a and b still have stamp 1.0.0; host c has been upgraded to 2.0.0.
    let fixtures: Vec<Fixture> = [("a", "stamp"), ("b", "stamp"), ("c", "stamp_v2")]
        .iter()
        .map(|(id, stamp)| {
            let transform = r#"transform = [{ plugin = "stamp", config = {} }]"#;
            let fx = orders_host_with(&db, id, 3, rows, 2, transform);
            std::fs::copy(test_plugin(stamp), fx.path("plugins/stamp.wasm")).unwrap();
            fx
        })
        .collect();
    let servers = join(&fixtures);
    let run = servers[0].as_ref().unwrap().trigger("orders");
    let record = finished(servers[0].as_ref().unwrap(), &run, Duration::from_secs(300));
    assert_eq!(record["status"], "completed", "{record}");
    assert_loaded_once(&db, rows);
    // Per partition: the host, the version it recorded, and the version stamped on its rows.
    let ran = db.psql(&format!(
        "SELECT p.partition, p.host, p.plugins::json->>'stamp', \
             (SELECT string_agg(DISTINCT o.stamp, ',') FROM orders o \
              WHERE 'inbox/part-' || lpad(o.part::text, 2, '0') || '.csv' = p.partition) \
         FROM weir_run_partitions p WHERE p.run_id = '{run}' ORDER BY 1"
    ));
    let lines: Vec<Vec<&str>> = ran.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(lines.len(), FILES, "{ran}");
    for f in &lines {
        let expected = if f[1] == "c" { "2.0.0" } else { "1.0.0" };
        assert_eq!((f[2], f[3]), (expected, expected), "{ran}");
    }
    let hosts: std::collections::BTreeSet<&str> = lines.iter().map(|f| f[1]).collect();
    assert!(
        hosts.contains("c"),
        "the upgraded host ran some partitions: {ran}"
    );
    stop_all(servers);
}
