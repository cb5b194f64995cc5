//! select-transform in a real pipeline: only the allow-list leaves (a column the source adds
//! later too is dropped), rows failing a rule are filtered (not rejected), masks use the salt
//! the host interpolated from the environment, and the run record counts what was filtered and
//! masked. Config mistakes are refused at `weir validate`, naming the key, never the salt.

use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::serve_support::*;
use crate::support::*;

const SALT: &str = "select-e2e-salt-0f9c51d2";

fn pipeline(filters: &str, salt: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "subset"
grants = {{ read_dirs = ["inbox"], databases = {{ out = "out.db" }} }}
extract = {{ plugin = "csv-extract", config = {{ path = "inbox/*.csv", types = {{ id = "integer" }}, settle_seconds = 0 }} }}
transform = [
  {{ plugin = "map-transform", config = {{ types = {{ consent = "boolean", visit = "date" }} }} }},
  {{ plugin = "select-transform", config = {{ columns = ["id", "name", "email", "phone", "note", "visit"], filters = {filters}, mask = {{ email = "pseudonym", phone = {{ keep_last = 3 }}, note = "redact" }}, salt = "{salt}" }} }},
]
load = [{{ plugin = "sqlite-load", config = {{ database = "out", table = "people" }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "out" }} }}
"#
    )
}

const FILTERS: &str = r#"[{ name = "consent", keep = "consent" }, { name = "recent", keep = "not (visit is null or visit < date '2026-01-01')" }, { name = "open", keep = "status in ('active', 'pending') and not ward = ''" }]"#;

fn weir(fx: &Fixture, args: &[&str]) -> Run {
    Run(Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("-c")
        .arg(fx.path("weir.toml"))
        .args(args)
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env("SELECT_SALT", SALT)
        .output()
        .unwrap())
}

fn pseudonym(value: &str) -> String {
    let digest = Sha256::new_with_prefix(SALT.as_bytes())
        .chain_update(value.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn rows(fx: &Fixture) -> Vec<Vec<Value>> {
    let db = fx.db("out.db");
    let mut stmt = db.prepare("SELECT * FROM people ORDER BY id").unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(v) => v.into(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                other => panic!("unexpected {other:?}"),
            })
            .collect())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn only_listed_columns_leave_filtered_rows_are_counted_and_masks_use_the_salt_from_the_environment()
{
    let fx = Fixture::new();
    fx.config(&pipeline(FILTERS, "${SELECT_SALT}"));
    fx.write(
        "inbox/a.csv",
        "id,name,email,phone,note,consent,visit,status,ward,national_id\n\
         1,Ada,ada@example.com,+41 79 555 12 34,diabetes type 2,true,2026-02-01,active,A,756.1111\n\
         2,Bob,bob@example.com,0791234567,asthma,false,2026-02-01,active,A,756.2222\n\
         3,Cy,cy@example.com,12,flu,true,2025-12-31,active,A,756.3333\n\
         4,Di,di@example.com,0790000001,,true,2026-03-05,closed,B,756.4444\n\
         5,Ed,ed@example.com,0790000002,gout,true,2026-03-05,pending,,756.5555\n\
         6,Fay,fay@example.com,0790000003,migraine,,2026-04-01,active,C,756.6666\n\
         7,Gus,gus@example.com,0790000009,sprain,true,2026-04-02,pending,C,756.7777\n\
         10,Jo,jo@example.com,0790000010,rash,true,,active,C,756.1010\n",
    );
    // A later export gains a column nobody allowed: it must not pass through.
    fx.write(
        "inbox/b.csv",
        "id,name,email,phone,note,consent,visit,status,ward,national_id,insurer_secret\n\
         8,Hal,hal@example.com,0790000004,back pain,true,2026-05-01,active,D,756.8888,INS-SECRET-8\n\
         9,Ivy,ivy@example.com,0790000005,cold,false,2026-05-01,active,D,756.9999,INS-SECRET-9\n",
    );
    let validate = weir(&fx, &["validate"]);
    validate.success();
    // Run by the service, which keeps the run record.
    let server = Server::start_with_env(&fx, &[("SELECT_SALT", SALT.to_owned())]);
    let mut events = server.events("pipeline=subset", None);
    let run = server.trigger("subset");
    let seen = events.until(|e| ends_run(e, Some(&run)));
    assert_eq!(seen.last().unwrap().kind, "run_completed", "{seen:#?}");
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");

    let db = fx.db("out.db");
    let columns: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('people')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(columns, ["id", "name", "email", "phone", "note", "visit"]);
    assert_eq!(
        rows(&fx),
        vec![
            vec![
                Value::from(1),
                "Ada".into(),
                pseudonym("ada@example.com").into(),
                "************* 34".into(),
                "[redacted]".into(),
                "2026-02-01".into()
            ],
            vec![
                Value::from(7),
                "Gus".into(),
                pseudonym("gus@example.com").into(),
                "*******009".into(),
                "[redacted]".into(),
                "2026-04-02".into()
            ],
            vec![
                Value::from(8),
                "Hal".into(),
                pseudonym("hal@example.com").into(),
                "*******004".into(),
                "[redacted]".into(),
                "2026-05-01".into()
            ],
        ],
        "no consent (2, 6, 9), no visit or one before 2026 (3, 10), closed or no ward (4, 5) are filtered"
    );
    // Nothing of what was not allowed is anywhere in the destination database.
    let dump: String = db
        .prepare("SELECT group_concat(quote(id) || name || email || ifnull(phone, '') || ifnull(note, '') || visit) FROM people")
        .unwrap()
        .query_row([], |r| r.get(0))
        .unwrap();
    for secret in [
        "756.",
        "INS-SECRET",
        "@example.com",
        "diabetes",
        "back pain",
        SALT,
    ] {
        assert!(!dump.contains(secret), "{secret} in {dump}");
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM _weir_rejects"),
        0,
        "filtered is not rejected"
    );

    // The run record: read 10, loaded 3, filtered 7, each rule and mask counted.
    let state = fx.db("weir-state.db");
    let (read, loaded, rejected, filtered, details): (i64, i64, i64, i64, String) = state
        .query_row(
            "SELECT rows_read, rows_loaded, rows_rejected, rows_filtered, details FROM runs WHERE id = ?1",
            [&run],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((read, loaded, rejected, filtered), (10, 3, 0, 7));
    let details: Value = serde_json::from_str(&details).unwrap();
    let counters = &details["counters"];
    assert_eq!(
        counters["select-transform.filtered.consent"], 3,
        "{details}"
    );
    assert_eq!(counters["select-transform.filtered.recent"], 2, "{details}");
    assert_eq!(counters["select-transform.filtered.open"], 2, "{details}");
    assert_eq!(counters["select-transform.masked.email"], 3, "{details}");
    assert_eq!(counters["select-transform.masked.phone"], 3, "{details}");
    assert_eq!(counters["select-transform.masked.note"], 3, "{details}");
    assert_eq!(
        details["destinations"]["sqlite-load → out.people"]["loaded"], 3,
        "{details}"
    );
    assert!(!output.contains(SALT) && !validate.stdout().contains(SALT));
}

#[test]
fn config_mistakes_are_refused_at_validate_naming_the_key_and_never_the_salt() {
    let csv = "id,name,email,phone,note,consent,visit,status,ward\n1,Ada,a@x,1,n,true,2026-01-01,active,A\n";
    let cases = [
        (
            pipeline(FILTERS, "short-secret"),
            "salt: too short; use at least 16 random characters",
        ),
        (
            pipeline(
                r#"[{ name = "ward", keep = "wing = 'A'" }]"#,
                "${SELECT_SALT}",
            ),
            "filters[0] (ward): no column `wing` in the input; available: id, name",
        ),
        (
            pipeline(
                r#"[{ name = "when", keep = "visit >= 'soon'" }]"#,
                "${SELECT_SALT}",
            ),
            "filters[0] (when): keep = \"visit >= 'soon'\": column `visit` is a date and 'soon' is not one (YYYY-MM-DD)",
        ),
        (
            pipeline(FILTERS, "${SELECT_SALT}").replace("note = \"redact\"", "note = \"scramble\""),
            "mask.note",
        ),
    ];
    for (config, message) in cases {
        let fx = Fixture::new();
        fx.config(&config);
        fx.write("inbox/a.csv", csv);
        let run = weir(&fx, &["validate"]);
        run.failure();
        let out = run.stdout() + &run.stderr();
        assert!(out.contains("select-transform"), "{out}");
        assert!(out.contains(message), "{message}: {out}");
        assert!(
            !out.contains("short-secret") && !out.contains(SALT),
            "the salt leaked: {out}"
        );
        assert!(
            !fx.path("out.db").exists()
                || count(
                    &fx.db("out.db"),
                    "SELECT count(*) FROM sqlite_schema WHERE name = 'people'"
                ) == 0
        );
    }
}

/// A transform is never on the network, even in a pipeline whose loader is granted a
/// cluster: a transformer trying a TCP connection of its own to that cluster, and a name
/// lookup, is denied both, and the cluster sees no connection.
#[test]
fn a_transform_gets_no_network_even_where_the_pipeline_grants_a_cluster() {
    let server = osmem_fixture::Osmem::start().unwrap();
    let proxy = osmem_fixture::Proxy::start(server.addr()).unwrap();
    let target = proxy
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let fx = Fixture::new();
    fx.config_with_test_plugins(
        &["net-probe"],
        &format!(
            r#"
[[pipeline]]
name = "sneaky"
grants = {{ read_dirs = ["inbox"], databases = {{ out = "out.db" }}, http = {{ search = {{ url = "{url}", allow_private = true }} }} }}
extract = {{ plugin = "csv-extract", config = {{ path = "inbox/*.csv" }} }}
transform = [{{ plugin = "net-probe", config = {{ connect = "{target}", lookup = "localhost" }} }}]
load = [{{ plugin = "opensearch-load", config = {{ connection = "search", index = "t" }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "out" }} }}
"#,
            url = proxy.url()
        ),
    );
    fx.write("inbox/a.csv", "id,name\n1,Ada\n");
    let run = fx.weir(&["run", "sneaky"]);
    run.failure();
    let err = run.stderr();
    assert!(err.contains("access denied"), "{err}");
    assert!(
        err.contains(&format!("connect {target}: denied (")),
        "{err}"
    );
    assert!(err.contains("lookup localhost: denied ("), "{err}");
    assert!(!err.contains("ESCAPED"), "{err}");
    assert_eq!(proxy.forwarded(), 0, "the cluster saw a connection");
}
