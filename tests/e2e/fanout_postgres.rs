//! The portal pipeline with its SQL destination on PostgreSQL: one read into a PostgreSQL
//! table and a real osmem-server. `weir validate` says exactly-once for both; both hold the
//! same ids; the table has the allow-list's columns only and no forbidden value; the rejects
//! and the checkpoint live in PostgreSQL, so a second run reads and writes nothing.

use std::collections::BTreeSet;

use osmem_fixture::Osmem;

use crate::pg_support::{PgDb, PgServer};
use crate::portal::*;
use crate::support::*;

/// `weir ARGS` with the salt and the PostgreSQL password in the environment.
fn weir_pg(fx: &Fixture, db: &PgDb, args: &[&str]) -> Run {
    let (var, password) = db.password_env();
    Run(weir_command(fx, args).env(var, password).output().unwrap())
}

#[test]
fn the_compliant_subset_reaches_postgresql_and_the_index_exactly_once() {
    let pg = PgServer::start();
    let db = pg.database("portal");
    let server = Osmem::start().unwrap();
    let source = Source::generate(300, 0, 0, 97);
    let fx = Fixture::new();
    let sqlite_grant = r#"databases = { portal = "portal.db" }"#;
    let config = pipeline(&server.url(), 64, "");
    assert!(config.contains(sqlite_grant));
    fx.config(&config.replace(
        sqlite_grant,
        &format!("databases = {{ portal = {} }}", db.grant_toml()),
    ));
    fx.write("inbox/patients.csv", source.csv(0));

    let validate = weir_pg(&fx, &db, &["validate"]);
    validate.success();
    let out = validate.stdout();
    for line in [
        "  destination sqlite-load → portal.patients: exactly-once (writes in the checkpoint's transaction in database portal)",
        "  destination opensearch-load: exactly-once (a sink idempotent by external version",
    ] {
        assert!(out.contains(line), "{line}\nin\n{out}");
    }

    let run = weir_pg(&fx, &db, &["run", "portal"]);
    run.success();
    let expected = source.expected(source.lines.len());
    let kept = expected.rows.len() as u64;
    assert!(
        expected.filtered > 20 && expected.rejects > 0,
        "the data has both"
    );
    assert_eq!(
        run.totals(),
        (source.lines.len() as u64, kept, expected.rejects as u64),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains(&format!(
            "destination opensearch-load: {kept} loaded, 0 rejected"
        )),
        "{}",
        run.stdout()
    );

    // The same ids in both destinations, those the source lets through.
    let want: BTreeSet<i64> = expected.rows.keys().copied().collect();
    let in_pg: BTreeSet<i64> = db
        .query("SELECT id FROM patients")
        .iter()
        .map(|id| id.parse().unwrap())
        .collect();
    let in_index: BTreeSet<i64> = index_docs(&server).keys().copied().collect();
    assert_eq!(in_pg, want, "PostgreSQL holds exactly the passing ids");
    assert_eq!(in_index, want, "the index holds exactly the passing ids");

    // The allow-list's columns only (besides the full-text column weir generates), and no
    // forbidden value in any of them; the masked e-mail is the same pseudonym in both.
    let columns: Vec<String> = db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'patients' \
         AND data_type <> 'tsvector' ORDER BY ordinal_position",
    );
    assert_eq!(columns, ALLOWED, "the table's columns");
    let forbidden = source.forbidden();
    let values = db.query(
        "SELECT v.value FROM patients p, jsonb_each_text(to_jsonb(p)) v WHERE v.value IS NOT NULL",
    );
    assert!(values.len() as u64 > kept * 5, "{} values", values.len());
    for value in &values {
        assert_eq!(
            leaks(value, &forbidden),
            None,
            "{value:?} left the transform"
        );
    }
    let docs = index_docs(&server);
    for line in db.query("SELECT id, email FROM patients") {
        let (id, email) = line.split_once('|').unwrap();
        let id: i64 = id.parse().unwrap();
        assert_eq!(docs[&id].1["email"], email, "patient {id}'s pseudonym");
        assert_eq!(
            expected.rows[&id].0["email"], email,
            "patient {id}'s pseudonym"
        );
    }

    // Rejects and checkpoints commit in PostgreSQL with the rows: a second run has nothing to do.
    assert_eq!(
        db.count("SELECT count(*) FROM _weir_rejects"),
        expected.rejects as i64
    );
    let again = weir_pg(&fx, &db, &["run", "portal"]);
    again.success();
    assert_eq!(again.totals(), (0, 0, 0), "{}", again.stdout());
    assert_eq!(db.count("SELECT count(*) FROM patients"), kept as i64);
}
