//! kill -9 at random moments during a fan-out run (CSV → map → select → SQLite + a real
//! osmem-server), then a run to the end: SQLite holds exactly the source minus rejects minus
//! filtered rows, the index exactly the same ids, each document at the version of the source
//! line that wrote it last (no stale document after the replays), rejects recorded once.
//! Bounded here; `just crash-test-fanout N` runs N kills over a bigger file with the same code.

use std::process::Stdio;
use std::time::{Duration, Instant};

use osmem_fixture::Osmem;

use crate::portal::*;
use crate::support::*;

/// Kill delays from a fixed seed (no crate for one number).
struct Lcg(u64);
impl Lcg {
    fn next_ms(&mut self, max: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % max.max(1)
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn kill_9_at_random_moments_of_a_fan_out_loses_duplicates_and_regresses_nothing() {
    let rows = env_or("WEIR_FANOUT_ROWS", 2000);
    let kills = env_or("WEIR_FANOUT_KILLS", 3);
    let source = Source::generate(rows, rows / 10, rows / 20, 97);
    let config = pipeline("SEARCH_URL_HERE", 100, ", bulk_max_docs = 50");

    // Kill delays are spread over what an uninterrupted run of the same file takes here.
    let full_run_ms = {
        let server = Osmem::start().unwrap();
        let fx = Fixture::new();
        fx.config(&config.replace("SEARCH_URL_HERE", &server.url()));
        fx.write("inbox/patients.csv", source.csv(0));
        let started = Instant::now();
        weir(&fx, &["run", "portal"]).0.success();
        started.elapsed().as_millis() as u64
    };

    let server = Osmem::start().unwrap();
    let fx = Fixture::new();
    fx.config(&config.replace("SEARCH_URL_HERE", &server.url()));
    fx.write("inbox/patients.csv", source.csv(0));
    let mut rng = Lcg(0x0fa0_u64 ^ rows as u64);
    let spread = 2 * full_run_ms / kills.max(1) as u64 + 30;
    let mut killed = 0;
    let mut completed_early = 0;
    for _ in 0..kills + 8 {
        if killed == kills {
            break;
        }
        let mut child = weir_command(&fx, &["run", "portal"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let delay = Duration::from_millis(20 + rng.next_ms(spread));
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() >= delay {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_some_and(|s| s.success()) {
            completed_early += 1;
            break; // nothing left to interrupt
        }
    }
    let (run, _) = weir(&fx, &["run", "portal"]);
    run.success();

    let expected = source.expected(source.lines.len());
    assert_destinations_exact(&fx, &server, &expected);
    assert_nothing_leaves(&fx, &server, &source);
    let db = fx.db("portal.db");
    let rejects = count(&db, "SELECT count(*) FROM _weir_rejects");
    assert_eq!(
        rejects, expected.rejects as i64,
        "each reject recorded once"
    );
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    println!(
        "fan-out kill -9: {} source lines ({} filtered, {} rejects, {} deletes), {killed} kills{}, \
         SQLite rows {} = index documents {} = expected {}, stale documents 0, integrity {integrity}",
        source.lines.len(),
        expected.filtered,
        rejects,
        expected.deletes,
        if completed_early > 0 {
            " (the load completed before the last planned kill)"
        } else {
            ""
        },
        sql_rows(&fx).len(),
        index_docs(&server).len(),
        expected.rows.len(),
    );
    assert!(killed >= 1, "no kill landed: the run finished first");
}
