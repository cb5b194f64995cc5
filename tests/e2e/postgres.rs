//! PostgreSQL as a pipeline's target and history store, against a real server (`pg_support`):
//! the same rows and rejects as SQLite, upserts, exactly-once across SIGKILLs, values the
//! table cannot take as rejects, and the password kept out of everything weir prints.

use crate::bank_recon::bank_recon_fixture;
use crate::pg_support::{PgDb, PgServer};
use crate::support::*;

/// The bank-recon example's config with its ledger on `db`.
fn bank_recon_on(db: &PgDb) -> Fixture {
    let fx = bank_recon_fixture();
    let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    let config = config.replace(
        r#"databases = { ledger = "ledger.db" }"#,
        &format!("databases = {{ ledger = {} }}", db.grant_toml()),
    );
    assert!(config.contains("postgres://"), "the grant was replaced");
    std::fs::write(fx.path("weir.toml"), config).unwrap();
    fx
}

/// SQLite's rows of a query, each as psql prints them (`|`-separated, NULL empty).
fn sqlite_rows(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut stmt = db.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        let cells: Vec<String> = (0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => String::new(),
                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                rusqlite::types::ValueRef::Real(v) => v.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Blob(b) => format!("{b:?}"),
            })
            .collect();
        Ok(cells.join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn bank_recon_into_postgresql_equals_sqlite_value_by_value() {
    let pg = PgServer::start();
    let db = pg.database("bank_recon");

    let sqlite = bank_recon_fixture();
    sqlite.weir(&["run", "bank-recon"]).success();
    let fx = bank_recon_on(&db);
    let validate = fx.weir_env(&["validate"], &[db.password_env()]);
    validate.success();
    assert!(
        validate.stdout().contains("exactly-once"),
        "{}",
        validate.stdout()
    );
    let run = fx.weir_env(&["run", "bank-recon"], &[db.password_env()]);
    run.success();
    assert_eq!(run.totals(), (78, 74, 4), "{}", run.stdout());

    let columns = "txn_id, booking_date, value_date, amount, currency, counterparty, memo, balance";
    let want = sqlite_rows(
        &sqlite.db("ledger.db"),
        &format!("SELECT {columns} FROM transactions ORDER BY txn_id"),
    );
    let got = db.query(&format!(
        "SELECT {columns} FROM transactions ORDER BY txn_id"
    ));
    assert_eq!(got.len(), 74);
    assert_eq!(got, want);
    // The types the plan declared, as PostgreSQL's own.
    assert_eq!(
        db.query(
            "SELECT column_name || ' ' || data_type FROM information_schema.columns \
             WHERE table_name = 'transactions' AND column_name IN ('txn_id', 'booking_date', 'amount', 'memo') ORDER BY column_name"
        ),
        [
            "amount numeric",
            "booking_date date",
            "memo text",
            "txn_id bigint"
        ]
    );
    let rejects = "SELECT file, line, stage, reason FROM _weir_rejects ORDER BY file, line";
    assert_eq!(db.query(rejects), sqlite_rows(&sqlite.db("ledger.db"), rejects));
    // The checkpoint is in the target, saved with the rows.
    assert_eq!(
        db.count("SELECT count(*) FROM _weir_checkpoints WHERE pipeline = 'bank-recon'"),
        sqlite_rows(
            &sqlite.db("ledger.db"),
            "SELECT count(*) FROM _weir_checkpoints WHERE pipeline = 'bank-recon'"
        )[0]
        .parse::<i64>()
        .unwrap()
    );

    // A second run finds nothing new: the checkpoints hold.
    let again = fx.weir_env(&["run", "bank-recon"], &[db.password_env()]);
    again.success();
    assert_eq!(again.totals().1, 0, "{}", again.stdout());
    assert_eq!(db.count("SELECT count(*) FROM transactions"), 74);
}
