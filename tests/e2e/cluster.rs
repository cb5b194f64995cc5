//! Several `weir serve` hosts sharing one real, throwaway PostgreSQL 15 server
//! (`engine.cluster`): a cron fire runs once whichever host sees it first, and on the host that
//! claimed it; a run triggered on one host is seen, with its events, on another (one event
//! numbering, so `Last-Event-ID` means the same everywhere); a host killed with SIGKILL while it
//! holds a run lease loses it after `lease_seconds`, and another host adopts the run and goes
//! on with it. (Partitions shared by several hosts: `cluster_partitions`.)

#[path = "../../host/cluster/tests/support/mod.rs"]
pub(crate) mod pg;

use std::process::Command;
use std::time::{Duration, Instant};

use pg::PgServer;
use serde_json::Value;

use crate::serve_support::*;
use crate::support::*;

/// A host's folder: its own plugins, ledger and run locks, and `engine.cluster` pointing at
/// `server` as `host_id`.
pub(crate) fn host(
    server: &PgServer,
    host_id: &str,
    lease_seconds: u32,
    pipelines: &str,
) -> Fixture {
    let fx = Fixture::new();
    fx.config_with_test_plugins(&["spin-forever"], pipelines);
    let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    let cluster = format!(
        "[engine]\ncluster = {{ url = \"{}\", host_id = \"{host_id}\", lease_seconds = {lease_seconds} }}\n",
        server.url()
    );
    std::fs::write(
        fx.path("weir.toml"),
        config.replacen("[engine]\n", &cluster, 1),
    )
    .unwrap();
    fx
}

/// A CSV pipeline over a small file, on `schedule`.
fn csv_on(fx: &Fixture, name: &str, schedule: Option<&str>) -> String {
    fx.write("inbox/a.csv", "id;name\n1;one\n2;two\n");
    age(&fx.path("inbox/a.csv"), 60);
    let extra = schedule
        .map(|s| format!("schedule = \"{s}\"\ncatch_up = \"skip\"\n"))
        .unwrap_or_default();
    csv_pipeline(
        name,
        r#"path = "inbox/*.csv", delimiter = ";""#,
        r#"table = "rows", mode = "append""#,
    )
    .replace(
        &format!("name = \"{name}\"\n"),
        &format!("name = \"{name}\"\n{extra}"),
    )
}

/// A pipeline whose every run blocks in its extractor for `seconds`, then fails.
fn slow(name: &str, schedule: Option<&str>, seconds: u32) -> String {
    let mut extra =
        format!("limits = {{ timeout_seconds = {seconds} }}\nrestart = {{ max_restarts = 0 }}");
    if let Some(s) = schedule {
        extra = format!("schedule = \"{s}\"\ncatch_up = \"skip\"\n{extra}");
    }
    test_pipeline(name, "spin-forever", r#"mode = "sleep""#, &extra)
}

/// Poll `check` until it returns `Some`, or panic with `what` after `limit`.
#[track_caller]
pub(crate) fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn runs(server: &Server, pipeline: &str) -> Vec<Value> {
    server.get_json(&format!("/api/runs?pipeline={pipeline}&limit=200"))["runs"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_cron_fire_runs_once_across_three_hosts_on_the_host_that_claimed_it() {
    let db = PgServer::start();
    // Every third second: a fire's run starts well within the three seconds before the next,
    // even on a busy machine.
    let hosts: Vec<Fixture> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            let fx = host(&db, id, 3, "");
            let pipeline = csv_on(&fx, "tick", Some("*/3 * * * * *"));
            let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap() + &pipeline;
            std::fs::write(fx.path("weir.toml"), config).unwrap();
            fx
        })
        .collect();
    let servers: Vec<Server> = hosts.iter().map(Server::start).collect();
    for server in &servers {
        eventually("the host joined", Duration::from_secs(10), || {
            server.output().contains("cluster: host").then_some(())
        });
    }
    // Any host shows every host's runs.
    eventually("four scheduled runs", Duration::from_secs(60), || {
        let done = runs(&servers[1], "tick")
            .iter()
            .filter(|r| r["status"] == "completed")
            .count();
        (done >= 4).then_some(())
    });
    for server in servers {
        let (status, output) = server.stop();
        assert!(status.success(), "{output}");
    }

    let runs_by_start: Vec<(i64, String, String)> = db
        .psql(
            "SELECT started_ms, coalesce(host, ''), coalesce(trigger, '') FROM weir_runs \
             WHERE pipeline = 'tick' ORDER BY started_ms",
        )
        .lines()
        .map(|l| {
            let mut f = l.split('|');
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().to_owned(),
                f.next().unwrap().to_owned(),
            )
        })
        .collect();
    let fires: Vec<(i64, String)> = db
        .psql("SELECT scheduled_ms, host_id FROM weir_fires WHERE pipeline = 'tick' ORDER BY 1")
        .lines()
        .map(|l| {
            let (at, host) = l.split_once('|').unwrap();
            (at.parse().unwrap(), host.to_owned())
        })
        .collect();
    assert!(fires.len() >= 4, "{fires:?}");
    assert!(
        runs_by_start
            .iter()
            .all(|(_, _, trigger)| trigger == "schedule"),
        "{runs_by_start:?}"
    );
    // Each run belongs to the fire before it, and was run by the host that claimed that fire;
    // no fire has two runs (three hosts saw each one).
    let mut per_fire = std::collections::BTreeMap::new();
    for (started, host, _) in &runs_by_start {
        let (at, claimer) = fires
            .iter()
            .rev()
            .find(|(at, _)| at <= started)
            .unwrap_or_else(|| panic!("run at {started} before any fire: {fires:?}"));
        assert!(started - at < 3000, "run at {started} long after fire {at}");
        assert_eq!(
            host, claimer,
            "fire {at} claimed by {claimer}, run by {host}"
        );
        *per_fire.entry(*at).or_insert(0) += 1;
    }
    assert!(
        per_fire.values().all(|&n| n == 1),
        "a fire ran more than once: {per_fire:?}"
    );
    assert!(per_fire.len() >= 4, "{per_fire:?}");
}

#[test]
fn a_run_triggered_on_one_host_shows_on_another_with_its_events_and_refuses_a_second_run() {
    let db = PgServer::start();
    let fixtures: Vec<Fixture> = ["a", "b"]
        .iter()
        .map(|id| host(&db, id, 5, &slow("slow", None, 3)))
        .collect();
    let a = Server::start(&fixtures[0]);
    let b = Server::start(&fixtures[1]);
    let mut b_events = b.events("pipeline=slow", None);
    // A client resuming from the newest id (as the dashboard does) has nothing to replay, and
    // then follows the shared log.
    let newest = a.get_json("/api/health")["last_event_id"].as_u64().unwrap();
    let mut a_events = a.events("pipeline=slow", Some(newest));

    let run = a.trigger("slow");
    // The run lease is the cluster's: host b refuses a second run, naming host a.
    let refused = b.request("POST", "/api/pipelines/slow/runs", true);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("running on host \\\"a\\\"") && refused.body.contains(&run),
        "{}",
        refused.body
    );

    // Host b streams host a's events of the run, from one numbering.
    let seen = b_events.until(|e| ends_run(e, Some(&run)));
    let started = seen
        .iter()
        .find(|e| e.kind == "run_started" && e.run() == Some(&run))
        .expect("run_started from host a on host b's stream");
    assert_eq!(started.data["host"], "a", "{:?}", started.data);
    let ids: Vec<u64> = seen.iter().filter_map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(
        seen.iter()
            .any(|e| e.kind == "run_skipped" && e.data["host"] == "b"),
        "host b's refusal is in the shared log: {:?}",
        seen.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );

    let on_a = a_events.until(|e| ends_run(e, Some(&run)));
    assert_eq!(
        on_a.iter().map(|e| e.id).collect::<Vec<_>>(),
        seen.iter().map(|e| e.id).collect::<Vec<_>>(),
        "hosts a and b stream the same events with the same ids"
    );

    // Host b's record of it: run by host a.
    let record = eventually("the run's end on host b", Duration::from_secs(20), || {
        let r = b.get_json(&format!("/api/runs/{run}"));
        (r["status"] != "running").then_some(r)
    });
    assert_eq!(record["host"], "a", "{record}");
    assert_eq!(record["status"], "failed", "{record}");

    // Replay from an id seen on host b gives host a the same events after it.
    let after = started.id.unwrap();
    let mut replay = a.events("pipeline=slow", Some(after - 1));
    let first = replay.next_event().expect("a replayed event");
    assert_eq!(first.id, Some(after));
    assert_eq!(first.kind, "run_started");
    assert_eq!(first.run(), Some(run.as_str()));

    // The lease was released at the end: host b runs the pipeline now.
    let second = b.trigger("slow");
    // (Host a reads it once host b's writer has stored its start: 404 until then.)
    let r = eventually("host b's run, on host a", Duration::from_secs(10), || {
        let r = a.request("GET", &format!("/api/runs/{second}"), false);
        (r.status == 200).then(|| r.json())
    });
    assert_eq!(r["host"], "b", "{r}");
    assert_eq!(r["pipeline"], "slow");

    // `weir cluster status` lists both hosts, and the lease host b holds.
    let status = fixtures[0].weir(&["cluster", "status"]);
    let out = status.stdout();
    assert!(status.0.status.success(), "{out}{}", status.stderr());
    for expected in ["a ", "b ", "alive", "* (run)", second.as_str()] {
        assert!(out.contains(expected), "{expected:?} missing:\n{out}");
    }
    assert!(!out.contains("LOST"), "{out}");
}

#[test]
fn a_killed_run_lease_holder_s_run_is_adopted_by_another_host_and_goes_on() {
    let db = PgServer::start();
    let lease = 2;
    let fixtures: Vec<Fixture> = ["a", "b"]
        .iter()
        .map(|id| host(&db, id, lease, &slow("slow", Some("* * * * * *"), 120)))
        .collect();
    let mut servers: Vec<Option<Server>> =
        fixtures.iter().map(|f| Some(Server::start(f))).collect();
    let observer = |servers: &[Option<Server>]| -> Vec<Value> {
        let server = servers.iter().flatten().next().unwrap();
        runs(server, "slow")
    };
    let (first_run, holder) = eventually("a run in progress", Duration::from_secs(60), || {
        observer(&servers).into_iter().find_map(|r| {
            (r["status"] == "running").then(|| {
                (
                    r["id"].as_str().unwrap().to_owned(),
                    r["host"].as_str().unwrap().to_owned(),
                )
            })
        })
    });
    let index = if holder == "a" { 0 } else { 1 };
    let victim = servers[index].take().unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", &victim.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let killed_at = Instant::now();
    drop(victim);
    let survivor = servers[1 - index].as_ref().unwrap();
    let survivor_id = if index == 0 { "b" } else { "a" };

    // The survivor adopts the run (its id kept) and runs it: the pipeline's databases are
    // SQLite files, each host's own, so its partitions are not shared (cluster_partitions has
    // shared ones taken over).
    let adopted = eventually(
        "the run adopted by the survivor",
        Duration::from_secs(lease as u64 + 20),
        || {
            let out = db.psql(&format!(
                "SELECT data FROM weir_events WHERE run = '{first_run}' AND kind = 'run_adopted' \
                 AND host = '{survivor_id}'"
            ));
            (!out.trim().is_empty()).then_some(out)
        },
    );
    let took = killed_at.elapsed();
    assert!(
        adopted.contains(&format!("\"from\":\"{holder}\"")),
        "{adopted}"
    );
    // Not before the lease lapsed: it was renewed every third of it, so at least two thirds
    // were left at the kill (asserted with room for a heartbeat delayed on a busy machine).
    assert!(
        took >= Duration::from_secs(lease as u64) / 3,
        "another host adopted the run {took:?} after the kill"
    );
    // Meanwhile the survivor's fires were refused by the live lease, naming its holder.
    let refused = db.psql(&format!(
        "SELECT count(*) FROM weir_events WHERE kind = 'run_skipped' AND host = '{survivor_id}' \
         AND data::json->>'reason' LIKE '%is running on host \"{holder}\"%'"
    ));
    assert!(refused.parse::<u32>().unwrap() >= 1, "{refused}");
    // The run is in progress on the survivor, under its first id: no second run started.
    assert_eq!(
        survivor.get_json("/api/pipelines/slow")["active_run"]["run_id"],
        Value::String(first_run.clone()),
    );
    // `weir cluster status` flags the dead host.
    let status = fixtures[1 - index].weir(&["cluster", "status"]);
    assert!(!status.0.status.success());
    assert!(status.stdout().contains("LOST"), "{}", status.stdout());
}

#[test]
fn a_run_is_cancelled_from_another_host_and_a_drained_host_takes_no_runs() {
    let db = PgServer::start();
    // `big`: many small batches, so a cancel (seen at a batch boundary) ends it early.
    let fixtures: Vec<Fixture> = ["a", "b"]
        .iter()
        .map(|id| {
            let big = csv_pipeline(
                "big",
                r#"path = "inbox/*.csv", delimiter = ";""#,
                r#"table = "rows", mode = "append""#,
            )
            .replace("name = \"big\"\n", "name = \"big\"\nbatch_size = 20\n");
            let fx = host(&db, id, 3, &(slow("slow", None, 60) + &big));
            let mut csv = String::from("id;name\n");
            for i in 0..200_000 {
                csv.push_str(&format!("{i};name {i}\n"));
            }
            fx.write("inbox/a.csv", csv);
            age(&fx.path("inbox/a.csv"), 60);
            fx
        })
        .collect();
    let a = Server::start(&fixtures[0]);
    let b = Server::start(&fixtures[1]);

    let cluster = a.get_json("/api/cluster");
    assert_eq!(cluster["host_id"], "a");
    assert_eq!(cluster["draining"], false);
    let ids: Vec<&str> = cluster["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"], "{cluster}");

    // A run of host a, cancelled through host b: host a's next heartbeat stops it.
    let run = a.trigger("big");
    eventually("the run's start on host b", Duration::from_secs(10), || {
        let r = b.request("GET", &format!("/api/runs/{run}"), false);
        (r.status == 200).then_some(())
    });
    let cancel = b.request("POST", &format!("/api/runs/{run}/cancel"), true);
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    assert_eq!(cancel.json()["host"], "a");
    let ended = eventually("the cancelled run's end", Duration::from_secs(20), || {
        let r = b.get_json(&format!("/api/runs/{run}"));
        (r["status"] != "running").then_some(r)
    });
    assert_eq!(ended["status"], "cancelled", "{ended}");

    // Host a drained: it refuses triggers, host b takes them; undone, host a takes them again.
    let drain = fixtures[1].weir(&["cluster", "drain", "a"]);
    assert!(drain.0.status.success(), "{}", drain.stderr());
    eventually("host a draining", Duration::from_secs(10), || {
        (a.get_json("/api/cluster")["draining"] == true).then_some(())
    });
    let refused = a.request("POST", "/api/pipelines/slow/runs", true);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("draining"), "{}", refused.body);
    let status = fixtures[0].weir(&["cluster", "status"]);
    assert!(status.stdout().contains("draining"), "{}", status.stdout());
    let second = b.trigger("slow");
    let unknown = fixtures[0].weir(&["cluster", "drain", "nobody"]);
    assert!(!unknown.0.status.success());
    assert!(
        unknown.stderr().contains("no host \"nobody\""),
        "{}",
        unknown.stderr()
    );

    let undo = fixtures[0].weir(&["cluster", "drain", "a", "--undo"]);
    assert!(undo.0.status.success(), "{}", undo.stderr());
    eventually("host a taking runs again", Duration::from_secs(10), || {
        (a.get_json("/api/cluster")["draining"] == false).then_some(())
    });
    // Not refused for draining now, but for host b's run.
    let busy = a.request("POST", "/api/pipelines/slow/runs", true);
    assert_eq!(busy.status, 409, "{}", busy.body);
    assert!(busy.body.contains(&second), "{}", busy.body);
}

#[test]
fn the_hosts_ride_out_a_database_restart_and_fires_still_run_once() {
    let db = PgServer::start();
    let hosts: Vec<Fixture> = ["a", "b"]
        .iter()
        .map(|id| {
            let fx = host(&db, id, 3, "");
            let pipeline = csv_on(&fx, "tick", Some("*/2 * * * * *"));
            let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap() + &pipeline;
            std::fs::write(fx.path("weir.toml"), config).unwrap();
            fx
        })
        .collect();
    let servers: Vec<Server> = hosts.iter().map(Server::start).collect();
    let completed = |server: &Server| -> Option<usize> {
        let r = server.request("GET", "/api/runs?pipeline=tick&limit=200", false);
        (r.status == 200).then(|| {
            r.json()["runs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["status"] == "completed")
                .count()
        })
    };
    let before = eventually("two scheduled runs", Duration::from_secs(60), || {
        completed(&servers[0]).filter(|&n| n >= 2)
    });

    // A crash of the database (sessions cut), down for longer than a heartbeat.
    db.stop();
    std::thread::sleep(Duration::from_secs(2));
    db.start_again();

    // Both hosts reconnect: runs go on, each host's API reads the shared records again.
    eventually(
        "two more runs after the restart",
        Duration::from_secs(60),
        || completed(&servers[1]).filter(|&n| n >= before + 2),
    );
    for server in servers {
        let (status, output) = server.stop();
        assert!(status.success(), "{output}");
    }
    // No fire ran twice, and no event was stored twice by a write retried across the restart.
    let doubled = db.psql(
        "SELECT count(*) FROM (SELECT started_ms / 2000 FROM weir_runs WHERE pipeline = 'tick' \
         GROUP BY 1 HAVING count(*) > 1) d",
    );
    assert_eq!(doubled, "0");
    let copies = db.psql(
        "SELECT count(*) FROM (SELECT run, kind FROM weir_events \
         WHERE kind IN ('run_started', 'run_completed') GROUP BY 1, 2 HAVING count(*) > 1) d",
    );
    assert_eq!(copies, "0");
    let hosts_registered = db.psql("SELECT count(*) FROM weir_hosts WHERE stopped_at IS NOT NULL");
    assert_eq!(hosts_registered, "2", "both hosts left cleanly");
}

#[test]
fn weir_run_and_checkpoints_reset_on_a_cluster_s_configuration_respect_its_run_leases() {
    let db = PgServer::start();
    let fixtures: Vec<Fixture> = ["a", "b"]
        .iter()
        .map(|id| host(&db, id, 3, &slow("slow", None, 8)))
        .collect();
    let validate = fixtures[1].weir(&["validate"]);
    assert!(
        validate.stdout().contains(
            "cluster: run whole by the host holding its run lease: it writes SQLite files \
             (ledger = "
        ),
        "{}",
        validate.stdout()
    );
    let a = Server::start(&fixtures[0]);
    let run = a.trigger("slow");
    eventually("host a's run lease", Duration::from_secs(20), || {
        (db.psql(
            "SELECT owner FROM weir_leases WHERE pipeline = 'slow' AND partition = '*' \
                  AND state = 'held'",
        )
        .trim()
            == "a")
            .then_some(())
    });
    // Host b's machine, its own `weir run`: refused while host a runs the pipeline.
    for args in [&["run", "slow"][..], &["checkpoints", "reset", "slow"][..]] {
        let refused = fixtures[1].weir(args);
        assert!(
            !refused.0.status.success(),
            "{args:?}: {}",
            refused.stdout()
        );
        let err = refused.stderr();
        assert!(
            err.contains("pipeline slow is running on host \"a\"") && err.contains(&run),
            "{args:?}: {err}"
        );
    }
    let (status, output) = a.stop();
    assert!(status.success(), "{output}");
    // Once the run has ended, `weir run` holds the lease itself while it runs (a host's
    // trigger meanwhile is refused, naming it) and gives it back at its end.
    let csv = csv_on(&fixtures[1], "rows", None);
    let config = std::fs::read_to_string(fixtures[1].path("weir.toml")).unwrap() + &csv;
    std::fs::write(fixtures[1].path("weir.toml"), config).unwrap();
    let ran = fixtures[1].weir(&["run", "rows"]);
    assert!(ran.0.status.success(), "{}{}", ran.stdout(), ran.stderr());
    let lease = db.psql(
        "SELECT state, coalesce(owner, '-'), epoch FROM weir_leases \
         WHERE pipeline = 'rows' AND partition = '*'",
    );
    assert_eq!(
        lease.trim(),
        "idle|-|1",
        "claimed once, released at the end"
    );
}
