//! The shipped example, exactly as a user runs it.

use crate::support::*;

/// Copy examples/bank-recon into the fixture, pointing its engine at the built plugins.
pub fn bank_recon_fixture() -> Fixture {
    let fx = Fixture::new();
    let example = repo_root().join("examples/bank-recon");
    for entry in std::fs::read_dir(example.join("inbox")).unwrap() {
        let entry = entry.unwrap();
        let copy = fx.path("inbox").join(entry.file_name());
        std::fs::copy(entry.path(), &copy).unwrap();
        // Statements at rest, as a user has them: 2026-03.csv ends in an open quote, which a
        // fresh copy would have held back as still being written instead of rejected.
        age(&copy, 3600);
    }
    let config = std::fs::read_to_string(example.join("weir.toml")).unwrap();
    let body = &config[config.find("[[pipeline]]").unwrap()..];
    std::fs::write(
        fx.path("weir.toml"),
        Fixture::engine_section(&plugins_dist()) + body,
    )
    .unwrap();
    fx
}

#[test]
fn demo_loads_every_good_row_and_rejects_exactly_the_malformed_ones() {
    let fx = bank_recon_fixture();
    let run = fx.weir(&["run", "bank-recon"]);
    run.success();
    // 75 statement lines, plus 3 malformed records the generator inserted.
    assert_eq!(run.totals(), (78, 74, 4), "{}", run.stdout());

    let db = fx.db("ledger.db");
    assert_eq!(count(&db, "SELECT count(*) FROM transactions"), 74);
    assert_eq!(
        count(&db, "SELECT count(DISTINCT txn_id) FROM transactions"),
        74
    );
    // The row whose amount does not parse is the only good-looking id missing.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM transactions WHERE txn_id = 100014"
        ),
        0
    );

    let mut stmt = db
        .prepare("SELECT file, line, stage, reason FROM _weir_rejects ORDER BY file, line")
        .unwrap();
    let rejects: Vec<(String, i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let summary: Vec<(&str, i64, &str)> = rejects
        .iter()
        .map(|(f, l, s, _)| (f.as_str(), *l, s.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("inbox/2026-01.csv", 9, "csv-extract"),
            ("inbox/2026-01.csv", 16, "map-transform"),
            ("inbox/2026-02.csv", 9, "csv-extract"),
            ("inbox/2026-03.csv", 27, "csv-extract"),
        ]
    );
    assert!(
        rejects[0].3.contains("expected 8 fields, found 6"),
        "{:?}",
        rejects[0]
    );
    assert!(
        rejects[1].3.contains("amount") && rejects[1].3.contains("12,3x"),
        "{:?}",
        rejects[1]
    );
    assert!(rejects[3].3.contains("unterminated"), "{:?}", rejects[3]);

    // Windows-1252 decoded, decimal commas and dates converted, quoted newlines kept.
    let (party, amount, date): (String, String, String) = db
        .query_row(
            "SELECT counterparty, amount, booking_date FROM transactions WHERE txn_id = 100002",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (party.as_str(), amount.as_str(), date.as_str()),
        ("Bäckerei Höfli", "-1993.69", "2026-01-02")
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM transactions WHERE memo LIKE 'Gehalt' || char(10) || 'Zusatz: Prämie'"
        ) > 0
    );
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn validate_reports_exactly_once_for_the_demo() {
    let fx = bank_recon_fixture();
    let run = fx.weir(&["validate"]);
    run.success();
    assert!(
        run.stdout()
            .contains("pipeline bank-recon: ok, exactly-once"),
        "{}",
        run.stdout()
    );
}

#[test]
fn workers_opening_the_same_database_at_once_do_not_collide() {
    // bank-recon runs 2 workers at once, each opening ledger.db (and switching it to WAL):
    // none may fail with "database is locked" and need a restart, first run or later.
    let fx = bank_recon_fixture();
    for round in 0..10 {
        let _ = std::fs::remove_file(fx.path("ledger.db"));
        for attempt in ["first", "second"] {
            let run = fx.weir(&["run", "bank-recon"]);
            run.success();
            assert!(
                !run.stderr().contains("restarting") && !run.stderr().contains("locked"),
                "round {round}, {attempt} run:\n{}",
                run.stderr()
            );
        }
    }
}
