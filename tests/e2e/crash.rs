//! Crash safety: SIGKILL `weir run` at random moments, restart it, and check that the target
//! holds every source row exactly once. Bounded here; `just crash-test N` runs the full
//! version (200k rows, N kills) with the same code.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

struct Figures {
    mode: &'static str,
    kills: usize,
    source_rows: i64,
    rejects: i64,
    loaded: i64,
    duplicates: i64,
    lost: i64,
    integrity: String,
}

/// A deterministic statement file; every 5000th record has a field missing (a reject).
pub(crate) fn generate(rows: usize) -> (String, i64) {
    let mut out = String::from("id,account,amount,memo\n");
    let mut rejects = 0;
    for i in 1..=rows {
        if i % 5000 == 0 {
            out.push_str(&format!("{i},CH93-{i:08}\n"));
            rejects += 1;
        } else {
            out.push_str(&format!(
                "{i},CH93-{i:08},{}.{:02},\"memo {i}, with comma\"\n",
                i % 9973,
                i % 100
            ));
        }
    }
    (out, rejects)
}

/// A tiny deterministic generator for kill delays (no external crate for one number).
pub(crate) struct Lcg(pub(crate) u64);
impl Lcg {
    pub(crate) fn next_ms(&mut self, max: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % max
    }
}

fn crash_and_resume(mode: &'static str, rows: usize, kills: usize) -> Figures {
    let fx = Fixture::new();
    let load = if mode == "upsert" {
        r#"table = "t", mode = "upsert", key = ["id"]"#
    } else {
        r#"table = "t""#
    };
    let mut config = csv_pipeline(
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer" }"#,
        load,
    );
    config = config.replace("name = \"p\"", "name = \"p\"\nbatch_size = 500");
    fx.config(&config);
    let (csv, rejects) = generate(rows);
    fx.write("inbox/big.csv", csv);

    // Kill delays are drawn from the time an uninterrupted load of the same file takes here
    // (measured on a copy), so kills land while rows are being committed.
    let full_load_ms = {
        let calibration = Fixture::new();
        calibration.config(&config);
        std::fs::copy(fx.path("inbox/big.csv"), calibration.path("inbox/big.csv")).unwrap();
        let started = Instant::now();
        calibration.weir(&["run", "p"]).success();
        started.elapsed().as_millis() as u64
    };
    let mut rng = Lcg(0x5eed ^ rows as u64 ^ mode.len() as u64);
    let mut killed = 0;
    // Spread the kills over about one full load, so they land at every stage of it.
    let mut spread = 2 * full_load_ms / kills.max(1) as u64 + 30;
    // A few extra rounds in case runs finish before their kill (see below).
    for _ in 0..kills + 8 {
        if killed == kills {
            break;
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["-c", fx.path("weir.toml").to_str().unwrap(), "run", "p"])
            .current_dir(fx.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let delay = Duration::from_millis(20 + rng.next_ms(spread));
        // Poll for exit until the kill moment; a run that already finished is not killed.
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() >= delay {
                child.kill().unwrap(); // SIGKILL: no chance to clean up
                child.wait().unwrap();
                killed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child
            .try_wait()
            .unwrap()
            .is_some_and(|status| status.success())
        {
            if killed > 0 {
                break; // the load completed between kills: nothing left to interrupt
            }
            // Finished before the first kill (the machine was faster than the calibration
            // run): start over with an empty target and earlier kills.
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(fx.path(&format!("ledger.db{suffix}")));
            }
            spread = spread / 2 + 1;
        }
    }
    // Finish the job.
    fx.weir(&["run", "p"]).success();

    let db = fx.db("ledger.db");
    let loaded = count(&db, "SELECT count(*) FROM t");
    let distinct = count(&db, "SELECT count(DISTINCT id) FROM t");
    let expected_ids = rows as i64 - rejects;
    // Every id that should be there and is not.
    let present_good = count(&db, "SELECT count(DISTINCT id) FROM t WHERE id % 5000 != 0");
    Figures {
        mode,
        kills: killed,
        source_rows: rows as i64,
        // Every reject row, not distinct lines: a reject committed twice must show.
        rejects: count(&db, "SELECT count(*) FROM _weir_rejects"),
        loaded,
        duplicates: loaded - distinct,
        lost: expected_ids - present_good,
        integrity: db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap(),
    }
    .check(rejects)
}

impl Figures {
    fn check(self, expected_rejects: i64) -> Self {
        println!(
            "crash test ({}): kills={} source_rows={} rejects={} loaded={} duplicates={} lost={} integrity={}",
            self.mode,
            self.kills,
            self.source_rows,
            self.rejects,
            self.loaded,
            self.duplicates,
            self.lost,
            self.integrity
        );
        assert!(self.kills > 0, "at least one run was killed");
        assert_eq!(
            self.rejects, expected_rejects,
            "every malformed row rejected exactly once"
        );
        assert_eq!(
            self.loaded,
            self.source_rows - expected_rejects,
            "row count == source - rejects"
        );
        assert_eq!(self.duplicates, 0);
        assert_eq!(self.lost, 0);
        assert_eq!(self.integrity, "ok");
        self
    }
}

pub(crate) fn settings() -> (usize, usize) {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (env("WEIR_CRASH_ROWS", 20_000), env("WEIR_CRASH_KILLS", 3))
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing_append() {
    let (rows, kills) = settings();
    crash_and_resume("append", rows, kills);
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing_upsert() {
    let (rows, kills) = settings();
    crash_and_resume("upsert", rows, kills);
}
