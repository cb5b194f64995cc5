//! Incremental runs: only new data loads, nothing twice, changed history is reported.

use crate::support::*;

const HEADER: &str = "id,name\n";

fn rows(from: u32, to: u32) -> String {
    (from..=to).map(|i| format!("{i},name {i}\n")).collect()
}

fn fixture() -> Fixture {
    let fx = Fixture::new();
    fx.config(&csv_pipeline(
        "p",
        r#"path = "inbox/*.csv""#,
        r#"table = "t""#,
    ));
    fx.write("inbox/a.csv", format!("{HEADER}{}", rows(1, 100)));
    fx.write("inbox/b.csv", format!("{HEADER}{}", rows(101, 150)));
    fx
}

fn ids(fx: &Fixture) -> Vec<i64> {
    let db = fx.db("ledger.db");
    let mut stmt = db
        .prepare("SELECT CAST(id AS INTEGER) FROM t ORDER BY 1")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn second_run_loads_nothing() {
    let fx = fixture();
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (150, 150, 0));
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (0, 0, 0));
    assert_eq!(ids(&fx), (1..=150).collect::<Vec<_>>());
}

#[test]
fn appended_rows_load_alone_and_a_new_file_loads_alone() {
    let fx = fixture();
    fx.weir(&["run", "p"]).success();
    fx.append("inbox/a.csv", rows(1001, 1010));
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (10, 10, 0));
    fx.write("inbox/c.csv", format!("{HEADER}{}", rows(2001, 2005)));
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (5, 5, 0));
    let mut expected: Vec<i64> = (1..=150).collect();
    expected.extend(1001..=1010);
    expected.extend(2001..=2005);
    assert_eq!(ids(&fx), expected);
}

#[test]
fn a_truncated_file_is_reported_not_reread() {
    let fx = fixture();
    fx.weir(&["run", "p"]).success();
    fx.write("inbox/a.csv", format!("{HEADER}{}", rows(1, 10)));
    let run = fx.weir(&["run", "p"]);
    run.failure();
    let out = run.stdout() + &run.stderr();
    assert!(
        out.contains("inbox/a.csv") && out.contains("truncated"),
        "{out}"
    );
    assert!(
        out.contains("weir checkpoints reset"),
        "the error should say how to recover: {out}"
    );
    // Nothing was loaded twice; the other file was unaffected.
    assert_eq!(ids(&fx), (1..=150).collect::<Vec<_>>());
}

#[test]
fn a_replaced_file_is_reported_and_reset_reloads_it() {
    let fx = fixture();
    fx.weir(&["run", "p"]).success();
    // Same length, different content before the checkpoint.
    let replaced = format!("{HEADER}{}", rows(1, 100)).replace("name 5\n", "nome 5\n");
    fx.write("inbox/a.csv", replaced);
    let run = fx.weir(&["run", "p"]);
    run.failure();
    let out = run.stdout() + &run.stderr();
    assert!(
        out.contains("inbox/a.csv") && out.contains("changed"),
        "{out}"
    );
    assert_eq!(ids(&fx).len(), 150);

    let reset = fx.weir(&["checkpoints", "reset", "p", "inbox/a.csv"]);
    reset.success();
    assert!(
        reset.stdout().contains("removed 1 checkpoint"),
        "{}",
        reset.stdout()
    );
    // After a reset the file loads again from the start (append mode: an operator's choice).
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (100, 100, 0));
    let listed = fx.weir(&["checkpoints", "list", "p"]);
    assert!(
        listed.success().stdout().contains("2 checkpoints"),
        "{}",
        listed.stdout()
    );
}
