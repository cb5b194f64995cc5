//! Components built against `weir:plugin@0.1.0` keep loading and running unchanged beside
//! the 0.2.0 ones (tests/fixtures/contract-0.1.0 holds the bundled plugins as built then).

use crate::bank_recon::bank_recon_fixture;
use crate::support::*;

fn fixture_plugin(name: &str) -> std::path::PathBuf {
    repo_root()
        .join("tests/fixtures/contract-0.1.0")
        .join(format!("{name}.wasm"))
}

/// A plugins folder holding `old` from the 0.1.0 fixtures and `new` from this build.
fn plugins_folder(fx: &Fixture, old: &[&str], new: &[&str]) -> std::path::PathBuf {
    let dir = fx.path("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    for name in old {
        std::fs::copy(fixture_plugin(name), dir.join(format!("{name}.wasm"))).unwrap();
    }
    for name in new {
        std::fs::copy(
            plugins_dist().join(format!("{name}.wasm")),
            dir.join(format!("{name}.wasm")),
        )
        .unwrap();
    }
    dir
}

/// Point the fixture's config at `plugins`.
fn use_plugins(fx: &Fixture, plugins: &std::path::Path) {
    let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    let body = &config[config.find("[[pipeline]]").unwrap()..];
    std::fs::write(
        fx.path("weir.toml"),
        Fixture::engine_section(plugins) + body,
    )
    .unwrap();
}

/// The rows and rejects of a bank-recon run, to compare runs value by value.
fn ledger(fx: &Fixture) -> (Vec<String>, Vec<String>) {
    let db = fx.db("ledger.db");
    let rows = db
        .prepare("SELECT * FROM transactions ORDER BY txn_id")
        .unwrap()
        .query_map([], |r| {
            let n = r.as_ref().column_count();
            Ok((0..n)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let rejects = db
        .prepare("SELECT file, line, stage, reason FROM _weir_rejects ORDER BY file, line")
        .unwrap()
        .query_map([], |r| {
            Ok(format!(
                "{}|{}|{}|{}",
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (rows, rejects)
}

#[test]
fn plugins_built_against_0_1_0_run_alone_and_beside_0_2_0_ones_with_the_same_result() {
    // Today's build: every plugin 0.2.0.
    let current = bank_recon_fixture();
    assert_eq!(
        current.weir(&["run", "bank-recon"]).success().totals(),
        (78, 74, 4)
    );
    let expected = ledger(&current);
    assert_eq!(expected.0.len(), 74);

    // Every plugin as built against 0.1.0.
    let old = bank_recon_fixture();
    let dir = plugins_folder(
        &old,
        &[
            "csv-extract",
            "map-transform",
            "sqlite-load",
            "sqlite-history",
        ],
        &[],
    );
    use_plugins(&old, &dir);
    let listed = old.weir(&["plugins", "list"]).success().stdout();
    assert_eq!(listed.matches("0.1.0").count(), 4, "{listed}");
    let inspect = old.weir(&[
        "plugins",
        "inspect",
        dir.join("sqlite-load.wasm").to_str().unwrap(),
    ]);
    assert!(
        inspect
            .success()
            .stdout()
            .contains("contract: weir:plugin@0.1.0"),
        "{}",
        inspect.stdout()
    );
    let validate = old.weir(&["validate"]);
    assert!(
        validate
            .success()
            .stdout()
            .contains("pipeline bank-recon: ok, exactly-once"),
        "{}",
        validate.stdout()
    );
    assert_eq!(
        old.weir(&["run", "bank-recon"]).success().totals(),
        (78, 74, 4)
    );
    assert_eq!(ledger(&old), expected, "0.1.0 plugins wrote other rows");

    // Mixed: a 0.1.0 transform and SQL-plan loader between 0.2.0 extract and history.
    let mixed = bank_recon_fixture();
    let dir = plugins_folder(
        &mixed,
        &["map-transform", "sqlite-load"],
        &["csv-extract", "sqlite-history"],
    );
    use_plugins(&mixed, &dir);
    assert_eq!(
        mixed.weir(&["run", "bank-recon"]).success().totals(),
        (78, 74, 4)
    );
    assert_eq!(ledger(&mixed), expected, "mixed contracts wrote other rows");
    // Incremental as ever: nothing new, nothing loaded.
    assert_eq!(
        mixed.weir(&["run", "bank-recon"]).success().totals(),
        (0, 0, 0)
    );
}
