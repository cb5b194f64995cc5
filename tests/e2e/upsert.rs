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

#[test]
fn upsert_into_an_existing_table_whose_key_is_nullable_is_refused_with_the_reason() {
    let fx = Fixture::new();
    fx.config(&csv_pipeline(
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer" }"#,
        r#"table = "accounts", mode = "upsert", key = ["id"]"#,
    ));
    // The second record has no id: with a nullable key it would be inserted again on every
    // delivery, since NULL conflicts with nothing.
    fx.write("inbox/1.csv", "id,name\n1,alice\n,nobody\n");
    fx.db("ledger.db")
        .execute_batch(
            "CREATE TABLE accounts (id INTEGER, name TEXT);
             CREATE UNIQUE INDEX accounts_id ON accounts (id);",
        )
        .unwrap();
    let reason = "upsert key column `id` of existing table `accounts` is nullable (declared without NOT NULL): SQLite never finds a conflict on a NULL key";
    for command in [&["validate"][..], &["run", "p"]] {
        let run = fx.weir(command);
        run.failure();
        assert!(
            run.stderr().contains(reason) || run.stdout().contains(reason),
            "weir {command:?}\nstdout:\n{}\nstderr:\n{}",
            run.stdout(),
            run.stderr()
        );
    }
    assert_eq!(
        count(&fx.db("ledger.db"), "SELECT count(*) FROM accounts"),
        0
    );

    // The rowid takes no NULL either: SQLite gives a NULL key a new rowid, NOT NULL or not.
    fx.db("ledger.db")
        .execute_batch(
            "DROP TABLE accounts;
             CREATE TABLE accounts (id INTEGER NOT NULL PRIMARY KEY, name TEXT);",
        )
        .unwrap();
    let run = fx.weir(&["run", "p"]);
    run.failure();
    assert!(
        run.stderr().contains("upsert key column `id` of existing table `accounts` is the table's INTEGER PRIMARY KEY, i.e. its rowid: SQLite gives a row with a NULL key a new rowid, NOT NULL or not"),
        "{}",
        run.stderr()
    );

    // A table sqlite-load creates refuses a null key: the record without an id is a reject,
    // and loading the file again duplicates nothing.
    fx.db("ledger.db")
        .execute_batch("DROP TABLE accounts")
        .unwrap();
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (2, 1, 1));
    fx.weir(&["checkpoints", "reset", "p"]).success();
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (2, 1, 1));
    let db = fx.db("ledger.db");
    assert_eq!(count(&db, "SELECT count(*) FROM accounts"), 1);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM _weir_rejects WHERE reason LIKE '%NOT NULL%'"
        ),
        2
    );
}

#[test]
fn full_text_index_follows_the_rows_and_tombstones_delete_by_key() {
    let fx = Fixture::new();
    fx.config(&csv_pipeline(
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer", deleted = "integer" }"#,
        r#"table = "notes", mode = "upsert", key = ["id"], fts = ["body"], deleted_by = "deleted""#,
    ));
    fx.write(
        "inbox/1.csv",
        "id,body,deleted\n1,red apples,\n2,green pears,\n3,red cherries,\n",
    );
    fx.weir(&["run", "p"]).success();
    let search = |db: &rusqlite::Connection, term: &str| -> Vec<i64> {
        let mut stmt = db
            .prepare("SELECT rowid FROM notes_fts WHERE notes_fts MATCH ?1 ORDER BY rowid")
            .unwrap();
        let rowids: Vec<i64> = stmt
            .query_map([term], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut ids: Vec<i64> = rowids
            .iter()
            .map(|rowid| {
                db.query_row("SELECT id FROM notes WHERE rowid = ?1", [rowid], |r| {
                    r.get(0)
                })
                .unwrap()
            })
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(search(&fx.db("ledger.db"), "red"), vec![1, 3]);

    // An update re-indexes the row; a tombstone deletes it (and its index entry); a
    // tombstone for a key that was never loaded deletes nothing; a key deleted and then
    // written again in the same batch stays (the last row wins).
    fx.write(
        "inbox/2.csv",
        "id,body,deleted\n2,red plums,0\n3,,1\n9,,1\n1,,1\n1,red again,\n",
    );
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (5, 5, 0));
    let db = fx.db("ledger.db");
    assert_eq!(search(&db, "red"), vec![1, 2]);
    assert_eq!(search(&db, "cherries"), Vec::<i64>::new());
    assert_eq!(search(&db, "pears"), Vec::<i64>::new());
    let rows: Vec<(i64, String)> = db
        .prepare("SELECT id, body FROM notes ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, vec![(1, "red again".into()), (2, "red plums".into())]);
    assert_eq!(
        db.query_row(
            "SELECT count(*) FROM notes_fts WHERE notes_fts MATCH 'again'",
            [],
            |r| r.get::<_, i64>(0)
        )
        .unwrap(),
        1
    );
}
