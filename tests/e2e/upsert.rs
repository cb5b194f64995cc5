//! Upsert mode and schema growth.

use crate::support::*;

#[test]
fn redelivered_keys_update_in_place_and_new_columns_are_added() {
    let fx = Fixture::new();
    fx.config(&csv_pipeline(
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer" }"#,
        r#"table = "accounts", mode = "upsert", key = ["id"]"#,
    ));
    fx.write("inbox/1.csv", "id,name\n1,alice\n2,bob\n");
    fx.weir(&["run", "p"]).success();
    // A later file re-delivers id 2 with a new value and brings a new column.
    fx.write("inbox/2.csv", "id,name,city\n2,bobby,Bern\n3,carol,Chur\n");
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (2, 2, 0));

    let db = fx.db("ledger.db");
    assert_eq!(count(&db, "SELECT count(*) FROM accounts"), 3);
    let mut stmt = db
        .prepare("SELECT id, name, city FROM accounts ORDER BY id")
        .unwrap();
    let rows: Vec<(i64, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, "alice".into(), None),
            (2, "bobby".into(), Some("Bern".into())),
            (3, "carol".into(), Some("Chur".into())),
        ]
    );
}
