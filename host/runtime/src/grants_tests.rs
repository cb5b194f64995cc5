use super::*;

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn databases(dir: &Path, mode: DatabaseMode) -> Databases {
    Databases::new(BTreeMap::from([(
        "ledger".to_owned(),
        dir.join("ledger.db"),
    )]))
    .with_mode(mode)
}

/// A ledger as a run leaves it: WAL mode, a table with a row, closed (so no -wal/-shm).
fn existing_ledger(dir: &Path) -> Vec<u8> {
    {
        let conn = open_database(&dir.join("ledger.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t (name) VALUES ('kept');")
            .unwrap();
    }
    assert_eq!(listing(dir), ["ledger.db"]);
    std::fs::read(dir.join("ledger.db")).unwrap()
}

#[test]
fn validation_of_a_missing_database_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dbs = databases(tmp.path(), DatabaseMode::Validation);
    let conn = dbs.connection("ledger").unwrap().unwrap();
    lock(&conn)
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS made_by_open (a); INSERT INTO made_by_open VALUES (1);",
        )
        .unwrap();
    drop(conn);
    drop(dbs);
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn validation_sees_the_schema_and_leaves_the_file_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let before = existing_ledger(tmp.path());
    let dbs = databases(tmp.path(), DatabaseMode::Validation);
    let conn = dbs.connection("ledger").unwrap().unwrap();
    {
        let db = lock(&conn);
        // The schema is there, the rows are not: it is a scratch copy.
        let rows: i64 = db
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
        db.execute_batch("ALTER TABLE t ADD COLUMN extra TEXT; CREATE TABLE other (a);")
            .unwrap();
    }
    drop(conn);
    drop(dbs);
    assert_eq!(listing(tmp.path()), ["ledger.db"]);
    assert_eq!(std::fs::read(tmp.path().join("ledger.db")).unwrap(), before);
}

#[test]
fn validation_keeps_read_only_grants_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    existing_ledger(tmp.path());
    let dbs = databases(tmp.path(), DatabaseMode::Validation).with_options(BTreeMap::from([(
        "ledger".to_owned(),
        DatabaseOptions {
            read_only: true,
            max_size_bytes: None,
        },
    )]));
    let conn = dbs.connection("ledger").unwrap().unwrap();
    let err = lock(&conn)
        .execute("INSERT INTO t (name) VALUES ('x')", [])
        .unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
}

#[test]
fn read_only_mode_reads_the_file_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let before = existing_ledger(tmp.path());
    let dbs = databases(tmp.path(), DatabaseMode::ReadOnly);
    let conn = dbs.connection("ledger").unwrap().unwrap();
    {
        let db = lock(&conn);
        let name: String = db
            .query_row("SELECT name FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "kept");
        // A history store's `create table if not exists` of a table that exists is no write.
        db.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT)")
            .unwrap();
        let err = db
            .execute("INSERT INTO t (name) VALUES ('x')", [])
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }
    drop(conn);
    drop(dbs);
    assert_eq!(listing(tmp.path()), ["ledger.db"]);
    assert_eq!(std::fs::read(tmp.path().join("ledger.db")).unwrap(), before);

    // A database that does not exist yet: an empty one in memory, nothing on disk.
    let empty = tempfile::tempdir().unwrap();
    let dbs = databases(empty.path(), DatabaseMode::ReadOnly);
    let conn = dbs.connection("ledger").unwrap().unwrap();
    lock(&conn)
        .execute_batch("CREATE TABLE IF NOT EXISTS cp (a)")
        .unwrap();
    drop(conn);
    drop(dbs);
    assert!(listing(empty.path()).is_empty());
}

#[test]
fn read_only_mode_sees_commits_of_a_live_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    let writer = open_database(&path).unwrap();
    writer
        .execute_batch("CREATE TABLE t (a); INSERT INTO t VALUES (1);")
        .unwrap();
    // The writer keeps the file open: -wal and -shm exist and hold the commits.
    let dbs = databases(tmp.path(), DatabaseMode::ReadOnly);
    let conn = dbs.connection("ledger").unwrap().unwrap();
    let n: i64 = lock(&conn)
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn no_uri_filenames() {
    let tmp = tempfile::tempdir().unwrap();
    let sneaky = tmp.path().join("file:x.db?mode=memory");
    let conn = open_database(&sneaky).unwrap();
    conn.execute_batch("CREATE TABLE a (x)").unwrap();
    drop(conn);
    assert!(sneaky.exists(), "the name was taken literally");
}

#[test]
fn two_names_for_one_file_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("a.db"), b"").unwrap();
    std::os::unix::fs::symlink(dir.join("a.db"), dir.join("link.db")).unwrap();
    std::fs::hard_link(dir.join("a.db"), dir.join("hard.db")).unwrap();
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let grants = [
        ("ledger", dir.join("a.db")),
        ("again", sub.join("../a.db")),
        ("linked", dir.join("link.db")),
        ("hard", dir.join("hard.db")),
        ("new", dir.join("new.db")),
        ("new_again", sub.join("../new.db")),
        ("alone", dir.join("other.db")),
    ];
    let found = duplicate_databases(grants.iter().map(|(n, p)| (*n, p.as_path())));
    let canonical = std::fs::canonicalize(dir).unwrap();
    assert_eq!(
        found,
        vec![
            DuplicateDatabase {
                path: canonical.join("a.db"),
                names: vec![
                    "again".into(),
                    "hard".into(),
                    "ledger".into(),
                    "linked".into()
                ],
            },
            DuplicateDatabase {
                path: canonical.join("new.db"),
                names: vec!["new".into(), "new_again".into()],
            },
        ]
    );
}
