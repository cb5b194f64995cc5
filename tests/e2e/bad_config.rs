//! Bad configuration exits non-zero with a message naming the file and line.

use crate::support::*;

fn run_with(config: &str) -> Run {
    let fx = Fixture::new();
    fx.config(config);
    fx.write("inbox/a.csv", "id\n1\n");
    let run = fx.weir(&["run", "p"]);
    run.failure();
    run
}

/// The line of `needle` in the config as written (engine section included).
fn line_of(config: &str, needle: &str) -> usize {
    let text = Fixture::engine_section(&plugins_dist()) + config;
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn unknown_plugin_names_file_line_and_the_loaded_plugins() {
    let config = csv_pipeline("p", r#"path = "inbox/*.csv""#, r#"table = "t""#)
        .replace("sqlite-load", "sqlite-laod");
    let err = run_with(&config).stderr();
    let line = line_of(&config, "sqlite-laod");
    assert!(err.contains(&format!("weir.toml:{line}:")), "{err}");
    assert!(
        err.contains("unknown loader plugin \"sqlite-laod\"") && err.contains("sqlite-load"),
        "{err}"
    );
}

#[test]
fn unknown_key_is_rejected_with_its_line() {
    let config = csv_pipeline("p", r#"path = "inbox/*.csv""#, r#"table = "t""#)
        .replace("name = \"p\"", "name = \"p\"\nshedule = \"@daily\"");
    let err = run_with(&config).stderr();
    let line = line_of(&config, "shedule");
    assert!(
        err.contains(&format!("weir.toml:{line}: unknown field `shedule`")),
        "{err}"
    );
}

#[test]
fn invalid_toml_names_the_line() {
    let config = "[[pipeline]]\nname = \"p\n";
    let err = run_with(config).stderr();
    let line = line_of(config, "name = ");
    assert!(err.contains(&format!("weir.toml:{line}:")), "{err}");
}

#[test]
fn missing_config_file_is_named() {
    let fx = Fixture::new();
    let run = fx.weir(&["run", "p"]);
    run.failure();
    assert!(
        run.stderr().contains("weir.toml: cannot read config file"),
        "{}",
        run.stderr()
    );
}

#[test]
fn reading_outside_the_granted_directories_is_denied() {
    // The extractor is pointed at a folder the pipeline did not grant.
    let fx = Fixture::new();
    fx.config(&csv_pipeline(
        "p",
        r#"path = "secret/*.csv""#,
        r#"table = "t""#,
    ));
    fx.write("secret/a.csv", "id\n1\n");
    let run = fx.weir(&["run", "p"]);
    run.failure();
    let out = run.stdout() + &run.stderr();
    assert!(
        out.contains("secret") && out.contains("grants.read_dirs"),
        "{out}"
    );
}

#[test]
fn missing_granted_directory_is_reported_by_validate() {
    let fx = Fixture::new();
    fx.config(
        &csv_pipeline("p", r#"path = "inbox/*.csv""#, r#"table = "t""#)
            .replace("[\"inbox\"]", "[\"nowhere\"]"),
    );
    let run = fx.weir(&["validate"]);
    run.failure();
    assert!(
        run.stdout().contains("granted directory") && run.stdout().contains("nowhere"),
        "{}",
        run.stdout()
    );
}

#[test]
fn unknown_pipeline_lists_the_defined_ones() {
    let fx = Fixture::new();
    fx.config(&csv_pipeline(
        "p",
        r#"path = "inbox/*.csv""#,
        r#"table = "t""#,
    ));
    let run = fx.weir(&["run", "q"]);
    run.failure();
    assert!(
        run.stderr()
            .contains("no pipeline named \"q\" (pipelines: p)"),
        "{}",
        run.stderr()
    );
}

#[test]
fn validate_reports_every_problem_in_one_pass_each_with_its_line() {
    // An out-of-range schedule, a misspelled key further down, and a misspelled plugin name in
    // a second pipeline: all three are reported, not just the first.
    let first = csv_pipeline("p", r#"path = "inbox/*.csv""#, r#"table = "t""#).replace(
        "name = \"p\"",
        "name = \"p\"\nschedule = \"0 25 * * *\"\nconcurrancy = 2",
    );
    let second = csv_pipeline("q", r#"path = "inbox/*.csv""#, r#"table = "u""#)
        .replace("sqlite-load", "sqlite-laod");
    let config = first + &second;
    let fx = Fixture::new();
    fx.config(&config);
    let run = fx.weir(&["validate"]);
    run.failure();
    let out = run.stdout();
    for (needle, message) in [
        ("schedule = ", "hour 25 is out of range"),
        ("concurrancy", "unknown field `concurrancy`"),
        ("sqlite-laod", "unknown loader plugin \"sqlite-laod\""),
    ] {
        let line = line_of(&config, needle);
        assert!(
            out.contains(&format!("weir.toml:{line}")) && out.contains(message),
            "{needle}: {out}"
        );
    }
    assert!(
        out.contains("pipeline p: INVALID") && out.contains("pipeline q: INVALID"),
        "{out}"
    );

    // `weir run` refuses the same file with every problem too.
    let run = fx.weir(&["run", "p"]);
    run.failure();
    let err = run.stderr();
    assert!(
        err.contains("hour 25 is out of range") && err.contains("unknown field `concurrancy`"),
        "{err}"
    );
}

#[test]
fn validate_refuses_two_grant_names_for_one_database_file() {
    let config = csv_pipeline("p", r#"path = "inbox/*.csv""#, r#"table = "t""#).replace(
        "databases = { ledger = \"ledger.db\" }",
        "databases = { ledger = \"ledger.db\", books = \"inbox/../ledger.db\" }",
    );
    let fx = Fixture::new();
    fx.config(&config);
    let run = fx.weir(&["validate"]);
    run.failure();
    assert!(
        run.stdout()
            .contains("databases \"books\" and \"ledger\" are the same file"),
        "{}",
        run.stdout()
    );
}

/// Every file under `dir` with its bytes' hash.
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, u64> {
    use std::hash::{Hash, Hasher};
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&path).unwrap().hash(&mut h);
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, h.finish());
            }
        }
    }
    out
}

#[test]
fn validate_writes_nothing_whether_the_databases_exist_or_not() {
    let fx = Fixture::new();
    fx.config(&csv_pipeline(
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer" }"#,
        r#"table = "t", mode = "upsert", key = ["id"]"#,
    ));
    fx.write("inbox/a.csv", "id,memo\n1,a\n2,b\n");
    // Databases that do not exist yet: none is created, and nothing else appears.
    let before = tree(fx.dir.path());
    let run = fx.weir(&["validate"]);
    run.success();
    assert!(
        run.stdout().contains("pipeline p: ok, exactly-once"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        tree(fx.dir.path()),
        before,
        "validate created or changed a file"
    );

    // Existing databases (after a run, then a new column in the source that the loader would
    // add): every file's bytes stay the same.
    fx.weir(&["run", "p"]).success();
    fx.write("inbox/b.csv", "id,memo,extra\n3,c,x\n");
    let before = tree(fx.dir.path());
    let run = fx.weir(&["validate"]);
    run.success();
    assert!(
        run.stdout().contains("pipeline p: ok, exactly-once"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        tree(fx.dir.path()),
        before,
        "validate created or changed a file"
    );
}
