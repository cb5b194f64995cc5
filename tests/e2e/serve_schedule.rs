//! The scheduler of `weir serve`: per-second schedules never overlap, catch-up after downtime.

use std::collections::HashMap;

use crate::bank_recon::bank_recon_fixture;
use crate::serve_support::*;
use crate::support::*;

/// The bank-recon example on a per-second schedule, with extra pipeline keys.
fn every_second(extra: &str) -> Fixture {
    let fx = bank_recon_fixture();
    let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    let config = config.replace(
        "schedule = \"0 6 1 * *\"",
        &format!("schedule = \"* * * * * *\"\n{extra}"),
    );
    assert!(config.contains("* * * * * *"));
    std::fs::write(fx.path("weir.toml"), config).unwrap();
    fx
}

/// Check from an event log that no run of a pipeline starts while its previous one is open.
#[track_caller]
fn assert_no_overlap(events: &[SseEvent]) {
    let mut open: HashMap<String, String> = HashMap::new();
    for e in events {
        let pipeline = e.data["pipeline"].as_str().unwrap_or_default().to_owned();
        match e.kind.as_str() {
            "run_started" => {
                if let Some(previous) = open.get(&pipeline) {
                    panic!(
                        "run {} of {pipeline} started (event {:?}) while run {previous} was open",
                        e.run().unwrap(),
                        e.id
                    );
                }
                open.insert(pipeline, e.run().unwrap().to_owned());
            }
            "run_completed" | "run_failed" | "run_cancelled"
                if open.get(&pipeline).map(String::as_str) == e.run() =>
            {
                open.remove(&pipeline);
            }
            _ => {}
        }
    }
}

#[test]
fn a_per_second_schedule_runs_repeatedly_and_never_overlaps_itself() {
    // `tick`: a first run that loads 40,000 rows, then quick incremental runs. `slow`: every
    // run blocks for its 2 s call timeout (spin-forever, sleep mode), so fires are certainly
    // due while it runs and the overlap policy must skip them.
    let fx = Fixture::new();
    let mut csv = String::from("id;name\n");
    for i in 0..40_000 {
        csv.push_str(&format!("{i};name {i}\n"));
    }
    fx.write("inbox/big.csv", csv);
    let tick = csv_pipeline(
        "tick",
        r#"path = "inbox/*.csv", delimiter = ";""#,
        r#"table = "rows", mode = "append""#,
    )
    .replace(
        "name = \"tick\"\n",
        "name = \"tick\"\nschedule = \"* * * * * *\"\nbatch_size = 50\n",
    );
    let slow = test_pipeline(
        "slow",
        "spin-forever",
        r#"mode = "sleep""#,
        "schedule = \"* * * * * *\"\nlimits = { timeout_seconds = 2 }\nrestart = { max_restarts = 0 }",
    );
    fx.config_with_test_plugins(&["spin-forever"], &(tick + &slow));
    let server = Server::start(&fx);
    let mut sse = server.events("last_event_id=0", None);
    let mut ended: HashMap<String, usize> = HashMap::new();
    let events = sse.until(|e| {
        if ends_run(e, None) {
            *ended
                .entry(e.data["pipeline"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        ended.get("tick").copied().unwrap_or(0) >= 4 && ended.get("slow").copied().unwrap_or(0) >= 2
    });
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");

    assert_no_overlap(&events);
    let of = |pipeline: &str, kind: &str| -> Vec<&SseEvent> {
        events
            .iter()
            .filter(|e| e.data["pipeline"] == pipeline && e.kind == kind)
            .collect()
    };
    let tick_runs = of("tick", "run_started");
    assert!(tick_runs.len() >= 4);
    assert!(
        tick_runs.iter().all(|e| e.data["trigger"] == "schedule"),
        "{tick_runs:#?}"
    );
    assert!(of("tick", "run_failed").is_empty(), "{events:#?}");
    // Every row exactly once, however the runs were cut.
    assert_eq!(
        count(&fx.db("ledger.db"), "SELECT count(*) FROM rows"),
        40_000
    );

    // Each slow run spans about two fire times: they were skipped, and said so.
    assert!(of("slow", "run_failed").len() >= 2);
    let skipped = of("slow", "run_skipped");
    assert!(!skipped.is_empty(), "{events:#?}");
    assert!(
        skipped[0].data["reason"]
            .as_str()
            .unwrap()
            .contains("is still running"),
        "{:?}",
        skipped[0]
    );
    eprintln!("{} fires of `slow` skipped", skipped.len());
}

#[test]
fn a_missed_fire_gets_one_catch_up_run_after_a_restart() {
    let fx = every_second("");
    let (_server, mut sse) = restart_after_a_missed_fire(&fx);
    let mut ended = 0;
    let events = sse.until(|e| {
        ended += usize::from(ends_run(e, None));
        ended == 2
    });
    let triggers: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "run_started")
        .map(|e| e.data["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, vec!["catch-up", "schedule"], "{events:#?}");
    assert_no_overlap(&events);
}

#[test]
fn catch_up_skip_waits_for_the_next_fire() {
    let fx = every_second("catch_up = \"skip\"");
    let (_server, mut sse) = restart_after_a_missed_fire(&fx);
    let first = sse.until(|e| e.kind == "run_started");
    assert_eq!(first.last().unwrap().data["trigger"], "schedule");
}

/// Serve until one run has ended, stop, let at least one fire time pass while the engine is
/// down, and serve again. The stream replays from the first server's last event: the catch-up
/// run starts as soon as the scheduler does, maybe before a new stream could connect.
fn restart_after_a_missed_fire(fx: &Fixture) -> (Server, SseClient) {
    let server = Server::start(fx);
    let mut sse = server.events("pipeline=bank-recon", None);
    sse.until(|e| ends_run(e, None));
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");
    // This waits for the clock, not for an event, so there is nothing to await instead.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let last = last_event_id(fx);
    let server = Server::start(fx);
    let sse = server.events("pipeline=bank-recon", Some(last));
    (server, sse)
}

/// The id of the newest event a stopped server left in its state database.
fn last_event_id(fx: &Fixture) -> u64 {
    fx.db("weir-state.db")
        .query_row("SELECT max(id) FROM events", [], |r| r.get(0))
        .unwrap()
}
