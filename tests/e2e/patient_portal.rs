//! examples/patient-portal as its README runs it: a generated practice database, both
//! pipelines into portal.db and a real osmem-server, then a day of edits. Checked against the
//! practice database itself: the consenting patients and their appointments, nothing else,
//! in both destinations; no national id, diagnosis, note or clear contact detail anywhere;
//! the README's search answered alike by the index and by FTS5; edits, cancellations and a
//! withdrawn consent reach both on the next run.

use std::collections::BTreeSet;
use std::process::Command;

use osmem_fixture::Osmem;
use serde_json::json;

use crate::support::*;

const SALT: &str = "portal-example-salt-5b1e";

fn example(rel: &str) -> std::path::PathBuf {
    repo_root().join("examples/patient-portal").join(rel)
}

fn generate(fx: &Fixture, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(example("generate.py"))
        .arg("--db")
        .arg(fx.path("practice.db"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn weir(fx: &Fixture, server: &Osmem, args: &[&str]) -> Run {
    Run(Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("-c")
        .arg(fx.path("weir.toml"))
        .args(args)
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env("SEARCH_URL", server.url())
        .env("PORTAL_SALT", SALT)
        .output()
        .unwrap())
}

fn strings(db: &rusqlite::Connection, sql: &str) -> BTreeSet<String> {
    db.prepare(sql)
        .unwrap()
        .query_map([], |r| {
            Ok(match r.get_ref(0)? {
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    String::from_utf8_lossy(t).into_owned()
                }
                other => format!("{other:?}"),
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `id|starts_at|last_name` of every appointment that may be in the portal, from the source.
fn expected_appointments(fx: &Fixture) -> BTreeSet<String> {
    strings(
        &fx.db("practice.db"),
        "SELECT a.id || '|' || a.starts_at || '|' || p.last_name FROM appointments a JOIN patients p ON p.id = a.patient_id
         WHERE p.consent AND a.cancelled_at IS NULL AND p.deleted_at IS NULL",
    )
}

fn expected_patients(fx: &Fixture) -> BTreeSet<String> {
    strings(
        &fx.db("practice.db"),
        "SELECT id || '|' || last_name FROM patients WHERE consent AND deleted_at IS NULL",
    )
}

fn index_rows(server: &Osmem, index: &str, fields: &[&str]) -> BTreeSet<String> {
    server
        .client()
        .documents(index)
        .unwrap()
        .into_iter()
        .map(|d| {
            let mut parts = vec![d.id.clone()];
            parts.extend(
                fields
                    .iter()
                    .map(|f| d.source[*f].as_str().unwrap().to_owned()),
            );
            parts.join("|")
        })
        .collect()
}

/// Both destinations hold exactly what the source says may leave.
fn assert_portal_matches_the_source(fx: &Fixture, server: &Osmem) {
    let portal = fx.db("portal.db");
    let appointments = expected_appointments(fx);
    let patients = expected_patients(fx);
    assert!(appointments.len() > 100 && patients.len() > 100);
    assert_eq!(
        strings(
            &portal,
            "SELECT id || '|' || starts_at || '|' || last_name FROM appointments"
        ),
        appointments
    );
    assert_eq!(
        index_rows(server, "appointments", &["starts_at", "last_name"]),
        appointments
    );
    assert_eq!(
        strings(&portal, "SELECT id || '|' || last_name FROM patients"),
        patients
    );
    assert_eq!(index_rows(server, "patients", &["last_name"]), patients);
}

/// Nothing that must stay in the practice is in portal.db or in either index.
fn assert_nothing_private_left(fx: &Fixture, server: &Osmem) {
    let practice = fx.db("practice.db");
    let mut private = strings(&practice, "SELECT national_id FROM patients");
    private.extend(strings(&practice, "SELECT reason FROM appointments"));
    private.extend(strings(&practice, "SELECT text FROM notes"));
    private.extend(strings(&practice, "SELECT email FROM patients"));
    private.extend(strings(&practice, "SELECT phone FROM patients"));
    private.extend(strings(&practice, "SELECT birth_date FROM patients"));
    let portal = fx.db("portal.db");
    let mut everything = String::new();
    for table in strings(
        &portal,
        "SELECT name FROM sqlite_schema WHERE type = 'table'",
    ) {
        let columns = strings(
            &portal,
            &format!("SELECT name FROM pragma_table_info('{table}')"),
        );
        for column in columns {
            everything.extend(strings(
                &portal,
                &format!("SELECT \"{column}\" FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"),
            ));
        }
    }
    for index in ["patients", "appointments"] {
        for d in server.client().documents(index).unwrap() {
            everything.push_str(&serde_json::Value::Object(d.source).to_string());
        }
    }
    assert!(everything.len() > 10_000);
    for value in &private {
        assert!(
            !everything.contains(value.as_str()),
            "{value:?} left the practice"
        );
    }
    assert!(!everything.contains(SALT));
}

#[test]
fn the_patient_portal_example_runs_as_its_readme_says() {
    let server = Osmem::start().unwrap();
    let fx = Fixture::new();
    let config = std::fs::read_to_string(example("weir.toml")).unwrap();
    let pipelines = &config[config.find("[[pipeline]]").unwrap()..];
    fx.config(pipelines);
    assert!(generate(&fx, &["--today", "2027-03-01"]).contains("200 patients"));

    let validate = weir(&fx, &server, &["validate"]);
    validate.success();
    let out = validate.stdout();
    assert_eq!(
        out.matches("destination opensearch-load: exactly-once")
            .count(),
        2,
        "{out}"
    );
    let run = weir(&fx, &server, &["run", "patients", "appointments"]);
    run.success();
    assert!(
        run.stdout()
            .contains("count select-transform.filtered.consent: "),
        "{}",
        run.stdout()
    );
    assert_portal_matches_the_source(&fx, &server);
    assert_nothing_private_left(&fx, &server);

    // The README's search: next week's appointments of patients named Meier, by the index and
    // by FTS5, as the practice database has them.
    let hits = server
        .client()
        .search(
            "appointments",
            json!({"size": 50, "query": {"bool": {
                "must": [{"match": {"last_name": "meier"}}],
                "filter": [{"range": {"starts_at": {"gte": "2027-03-08", "lt": "2027-03-15"}}}]}}}),
        )
        .unwrap();
    let found: BTreeSet<String> = hits
        .iter()
        .map(|h| {
            format!(
                "{}|{}",
                h["starts_at"].as_str().unwrap(),
                h["first_name"].as_str().unwrap()
            )
        })
        .collect();
    let fts = strings(
        &fx.db("portal.db"),
        "SELECT a.starts_at || '|' || a.first_name FROM appointments a JOIN appointments_fts f ON f.rowid = a.rowid
         WHERE appointments_fts MATCH 'last_name:meier' AND a.starts_at >= '2027-03-08' AND a.starts_at < '2027-03-15'",
    );
    let source = strings(
        &fx.db("practice.db"),
        "SELECT a.starts_at || '|' || p.first_name FROM appointments a JOIN patients p ON p.id = a.patient_id
         WHERE p.consent AND p.last_name = 'Meier' AND a.starts_at >= '2027-03-08' AND a.starts_at < '2027-03-15'",
    );
    assert!(!source.is_empty());
    assert_eq!(found, source);
    assert_eq!(fts, source);

    // A day of edits, picked up by the next run in both destinations.
    let said = generate(&fx, &["--change"]);
    assert!(said.contains("withdrew consent"), "{said}");
    let run = weir(&fx, &server, &["run", "patients", "appointments"]);
    run.success();
    assert_portal_matches_the_source(&fx, &server);
    assert_nothing_private_left(&fx, &server);
}
