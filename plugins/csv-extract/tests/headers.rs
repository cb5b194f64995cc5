//! One policy for repeated header names, exact or differing only in case: a file-level
//! `bad-data` error by default, `duplicate_headers = "rename"` with a warning on request.

mod common;

use common::{config, read, temp_dir, write_settled};
use csv_extract::config::Config;
use csv_extract::reader::{CsvReader, Level, Notice};
use std::path::PathBuf;
use weir_sdk::Error;

fn file(test: &str, bytes: &[u8]) -> PathBuf {
    let path = temp_dir(test).join("h.csv");
    write_settled(&path, bytes);
    path
}

#[test]
fn exact_and_case_insensitive_duplicates_stop_the_file_naming_both_columns() {
    for (test, header, second) in [
        ("dup-exact", "id,name,name", "\"name\""),
        ("dup-case", "id,Name,name", "\"name\""),
    ] {
        let f = file(test, format!("{header}\n1,a,b\n").as_bytes());
        let err = read(&config(&f, ""), &f, None, 10).unwrap_err();
        let Error::BadData(m) = &err else {
            panic!("{header}: {err:?}")
        };
        let first = if header.contains("Name") {
            "\"Name\""
        } else {
            "\"name\""
        };
        assert!(
            m.starts_with(&format!(
                "{}: the header names two columns the same: column 2 {first} and column 3 {second}",
                f.display()
            )),
            "{m}"
        );
        assert!(
            m.ends_with(
                "set \"duplicate_headers\" to \"rename\" to read the later one as \"name_2\""
            ),
            "{m}"
        );
    }
}

#[test]
fn rename_reads_them_and_warns_which() {
    let f = file("dup-rename", b"id,Name,name,NAME\n1,a,b,c\n");
    let cfg = config(&f, r#""duplicate_headers": "rename""#);
    let out = read(&cfg, &f, None, 10).unwrap();
    assert_eq!(out.columns, ["id", "Name", "name_2", "NAME_3"]);
    assert_eq!(out.values(), [["1", "a", "b", "c"]]);

    // The warning the plugin logs through the host (a `plugin_log` event there).
    let parsed = Config::parse(&cfg).unwrap();
    let mut reader = CsvReader::open(&parsed, f.to_str().unwrap(), None).unwrap();
    assert_eq!(
        reader.take_notices(),
        [Notice {
            level: Level::Warn,
            message: format!(
                "{}: renamed repeated column names (duplicate_headers = \"rename\"): column 3 \
                 \"name\" is read as \"name_2\" (same name as column 2 \"Name\"); column 4 \
                 \"NAME\" is read as \"NAME_3\" (same name as column 2 \"Name\")",
                f.display()
            )
        }]
    );
    assert!(reader.take_notices().is_empty(), "said once per open");
}

#[test]
fn names_from_the_config_must_be_unique_and_rename_nothing() {
    let f = file("dup-config", b"a,b\n1,2\n");
    let err = read(&config(&f, r#""columns": ["x", "X"]"#), &f, None, 10).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig(m) if m.contains("\"columns\" names two columns the same")),
        "{err:?}"
    );
    // Configured names replace a header with repeats: nothing to decide then.
    let g = file("dup-replaced", b"a,a\n1,2\n");
    let out = read(&config(&g, r#""columns": ["x", "y"]"#), &g, None, 10).unwrap();
    assert_eq!(out.columns, ["x", "y"]);
}
