//! `weir plugins new`: what it generates builds, passes its own tests and runs in a pipeline.
//!
//! The Rust projects are created inside the repository (under target/), where they find the
//! SDK by a relative path, and outside it (in the system's temporary folder) with `--sdk`. They
//! build with `plugins/target` as their target dir: the dependencies the bundled plugins
//! already compiled (wit-bindgen, serde) are reused, not rebuilt.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const KINDS: [&str; 4] = ["extractor", "transformer", "loader", "history-store"];

/// `weir plugins new ARGS` in `dir`.
fn weir_new(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["plugins", "new"])
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    Run(output)
}

/// Run a tool in `dir`; panics with its output when it fails.
#[track_caller]
fn run_in(dir: &Path, program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{program} {args:?} in {} failed:\n{text}",
        dir.display()
    );
    text
}

fn host_triple() -> String {
    let out = run_in(Path::new("."), "rustc", &["-vV"], &[]);
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

/// A scratch folder inside the repository's target/, removed afterwards.
fn scratch() -> tempfile::TempDir {
    let parent = repo_root().join("target");
    std::fs::create_dir_all(&parent).unwrap();
    tempfile::Builder::new()
        .prefix("scaffold-test-")
        .tempdir_in(parent)
        .unwrap()
}

#[test]
fn rust_skeletons_of_every_kind_build_pass_their_tests_and_run_as_one_pipeline() {
    let tmp = scratch();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir: PathBuf = repo_root().join("plugins/target");
    let triple = host_triple();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();

    for kind in KINDS {
        let name = format!("my-{kind}");
        let run = weir_new(tmp.path(), &["--kind", kind, "--lang", "rust", &name]);
        assert!(
            run.success()
                .stdout()
                .contains(&format!("created rust {kind} plugin `{name}`")),
            "{}",
            run.stdout()
        );
        let project = tmp.path().join(&name);
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        // target/scaffold-test-*/my-kind → the repository's plugins/sdk, relatively.
        assert!(
            manifest.contains(r#"weir-sdk = { path = "../../../plugins/sdk" }"#),
            "{manifest}"
        );

        let env = [("CARGO_TARGET_DIR", target_dir.as_path())];
        let tests = run_in(
            &project,
            &cargo,
            &["test", "-j1", "--target", &triple, "--quiet"],
            &env,
        );
        assert!(tests.contains("2 passed; 0 failed"), "{tests}");
        run_in(
            &project,
            &cargo,
            &[
                "build",
                "-j1",
                "--target",
                "wasm32-wasip2",
                "--release",
                "--quiet",
            ],
            &env,
        );
        let wasm = target_dir.join(format!(
            "wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        ));
        let copy = plugins.join(format!("{name}.wasm"));
        std::fs::copy(&wasm, &copy).unwrap();

        let fx = Fixture::new();
        fx.config("");
        let inspect = fx.weir(&["plugins", "inspect", copy.to_str().unwrap()]);
        let out = inspect.success().stdout();
        let label = kind.replace('-', " ");
        assert!(out.contains(&format!("kind:     {label}")), "{out}");
        assert!(out.contains(&format!("plugin:   {name} 0.1.0")), "{out}");
    }

    // The four skeletons as one pipeline: exactly once, resumable, incremental.
    let fx = Fixture::new();
    let config = |count: u32| {
        format!(
            r#"{engine}
[[pipeline]]
name = "numbers"
batch_size = 40
grants = {{ databases = {{ out = "out.db" }} }}
extract = {{ plugin = "my-extractor", config = {{ count = {count} }} }}
transform = [{{ plugin = "my-transformer", config = {{ required = ["label"] }} }}]
load = [{{ plugin = "my-loader", config = {{ database = "out", table = "numbers" }} }}]
history = {{ plugin = "my-history-store", config = {{ database = "out" }} }}
"#,
            engine = Fixture::engine_section(&plugins)
        )
    };
    std::fs::write(fx.path("weir.toml"), config(100)).unwrap();
    let validate = fx.weir(&["validate"]);
    assert!(
        validate
            .success()
            .stdout()
            .contains("pipeline numbers: ok, exactly-once"),
        "{}",
        validate.stdout()
    );
    assert_eq!(
        fx.weir(&["run", "numbers"]).success().totals(),
        (100, 100, 0)
    );
    assert_eq!(fx.weir(&["run", "numbers"]).success().totals(), (0, 0, 0));
    std::fs::write(fx.path("weir.toml"), config(130)).unwrap();
    assert_eq!(fx.weir(&["run", "numbers"]).success().totals(), (30, 30, 0));
    let db = fx.db("out.db");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM numbers WHERE label = 'row ' || n"
        ),
        130
    );
    let checkpoints = fx.weir(&["checkpoints", "list"]);
    assert!(
        checkpoints.success().stdout().contains("130"),
        "{}",
        checkpoints.stdout()
    );
}

/// Far from any weir checkout, with `--sdk` naming the SDK by absolute path: the project
/// builds, passes its own tests and is a loadable transformer.
#[test]
fn a_rust_skeleton_outside_the_checkout_builds_with_an_sdk_path() {
    // A temporary folder whose first component differs from the checkout's (a checkout under
    // /tmp would otherwise share `/tmp` with it, and the scaffold would write a relative path).
    let top = |p: &std::path::Path| p.components().nth(1).map(|c| c.as_os_str().to_owned());
    let base = [std::env::temp_dir(), "/var/tmp".into(), "/dev/shm".into()]
        .into_iter()
        .find(|dir| dir.is_dir() && top(dir) != top(&repo_root()))
        .expect("a temporary folder outside the checkout's top folder");
    let outside = tempfile::Builder::new()
        .prefix("weir-scaffold-outside-")
        .tempdir_in(base)
        .unwrap();
    assert!(
        !outside.path().starts_with(repo_root()),
        "{} is inside the checkout",
        outside.path().display()
    );
    let sdk = repo_root().join("plugins/sdk");
    let run = weir_new(
        outside.path(),
        &[
            "--kind",
            "transformer",
            "--sdk",
            sdk.to_str().unwrap(),
            "far-transform",
        ],
    );
    run.success();
    let project = outside.path().join("far-transform");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    // Nothing in common with the checkout but `/`: the absolute path, as given.
    assert!(
        manifest.contains(&format!("weir-sdk = {{ path = \"{}\" }}", sdk.display())),
        "{manifest}"
    );
    assert!(project.join("Cargo.lock").is_file());

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = repo_root().join("plugins/target");
    let env = [("CARGO_TARGET_DIR", target_dir.as_path())];
    let tests = run_in(
        &project,
        &cargo,
        &["test", "-j1", "--target", &host_triple(), "--quiet"],
        &env,
    );
    assert!(tests.contains("2 passed; 0 failed"), "{tests}");
    run_in(
        &project,
        &cargo,
        &["build", "-j1", "--release", "--quiet"],
        &env,
    );
    let wasm = target_dir.join("wasm32-wasip2/release/far_transform.wasm");
    let fx = Fixture::new();
    fx.config("");
    let inspect = fx.weir(&["plugins", "inspect", wasm.to_str().unwrap()]);
    let out = inspect.success().stdout();
    assert!(out.contains("plugin:   far-transform 0.1.0"), "{out}");
    assert!(out.contains("kind:     transformer"), "{out}");
}

/// A git URL becomes a git dependency (cargo fetches it on the first build, which a test
/// without network cannot do: the manifest is what is checked).
#[test]
fn scaffolds_take_the_sdk_from_a_git_url_and_refuse_what_is_no_sdk() {
    let tmp = scratch();
    let manifest =
        |name: &str| std::fs::read_to_string(tmp.path().join(name).join("Cargo.toml")).unwrap();
    weir_new(
        tmp.path(),
        &[
            "--kind",
            "loader",
            "--sdk",
            "https://example.com/weir.git",
            "git-loader",
        ],
    )
    .success();
    let text = manifest("git-loader");
    assert!(
        text.contains(r#"weir-sdk = { git = "https://example.com/weir.git" }"#),
        "{text}"
    );
    weir_new(
        tmp.path(),
        &[
            "--kind",
            "extractor",
            "--sdk",
            "https://example.com/weir.git#4f3c2b1a",
            "pinned-extractor",
        ],
    )
    .success();
    let text = manifest("pinned-extractor");
    assert!(
        text.contains(r#"weir-sdk = { git = "https://example.com/weir.git", rev = "4f3c2b1a" }"#),
        "{text}"
    );

    let not_sdk = weir_new(
        tmp.path(),
        &["--kind", "loader", "--sdk", "/no/such/sdk", "x"],
    );
    assert!(
        not_sdk
            .failure()
            .stderr()
            .contains("--sdk /no/such/sdk: not the weir Rust SDK"),
        "{}",
        not_sdk.stderr()
    );
    let scp = weir_new(
        tmp.path(),
        &[
            "--kind",
            "loader",
            "--sdk",
            "git@example.com:me/weir.git",
            "y",
        ],
    );
    assert!(
        scp.failure()
            .stderr()
            .contains("write ssh://git@example.com/me/weir.git"),
        "{}",
        scp.stderr()
    );
    assert!(!tmp.path().join("x").exists() && !tmp.path().join("y").exists());
}

#[test]
fn scaffolds_refuse_bad_names_existing_folders_and_unsupported_combinations() {
    let tmp = scratch();
    let bad = weir_new(tmp.path(), &["--kind", "transformer", "My_Plugin"]);
    assert!(
        bad.failure()
            .stderr()
            .contains("use lower-case letters, digits and '-'"),
        "{}",
        bad.stderr()
    );
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/x"), "").unwrap();
    let taken = weir_new(tmp.path(), &["--kind", "loader", "taken"]);
    assert!(
        taken
            .failure()
            .stderr()
            .contains("already exists and is not empty"),
        "{}",
        taken.stderr()
    );
    let python_loader = weir_new(
        tmp.path(),
        &["--kind", "loader", "--lang", "python", "py-loader"],
    );
    assert!(
        python_loader
            .failure()
            .stderr()
            .contains("template for --kind transformer only"),
        "{}",
        python_loader.stderr()
    );
}

/// The example plugins' toolchains (`just plugins-examples` installs them).
fn example_toolchains() -> (PathBuf, PathBuf) {
    let examples = repo_root().join("plugins/examples");
    let venv = examples.join(".venv");
    let node_modules = examples.join("js-transform/node_modules");
    assert!(
        venv.join("bin/componentize-py").is_file() && node_modules.is_dir(),
        "the example toolchains are missing: run `just plugins-examples`"
    );
    (venv, node_modules)
}

#[test]
fn python_and_js_skeletons_pass_their_own_tests() {
    let (venv, node_modules) = example_toolchains();
    let tmp = scratch();
    weir_new(
        tmp.path(),
        &["--kind", "transformer", "--lang", "python", "py-length"],
    )
    .success();
    let out = run_in(
        &tmp.path().join("py-length"),
        "./build.sh",
        &["--test"],
        &[("VENV", &venv)],
    );
    assert!(out.contains("Ran 2 tests") && out.contains("OK"), "{out}");

    weir_new(
        tmp.path(),
        &["--kind", "transform", "--lang", "js", "js-length"],
    )
    .success();
    let project = tmp.path().join("js-length");
    std::os::unix::fs::symlink(&node_modules, project.join("node_modules")).unwrap();
    let out = run_in(&project, "npm", &["test", "--silent"], &[]);
    assert!(
        out.contains("# pass 2") && out.contains("# fail 0"),
        "{out}"
    );
}

/// Slow (a componentize and a cold compile per language, about a minute in all), so `just
/// test` runs it on its own after the rest (`cargo test --workspace` skips it):
/// `cargo test -p weir --test e2e -- --ignored scaffold`.
#[test]
#[ignore]
fn python_and_js_skeletons_build_into_loadable_transformers() {
    let (venv, node_modules) = example_toolchains();
    let tmp = scratch();
    weir_new(
        tmp.path(),
        &["--kind", "transformer", "--lang", "python", "py-length"],
    )
    .success();
    weir_new(
        tmp.path(),
        &["--kind", "transformer", "--lang", "js", "js-length"],
    )
    .success();
    run_in(
        &tmp.path().join("py-length"),
        "./build.sh",
        &[],
        &[("VENV", &venv)],
    );
    let project = tmp.path().join("js-length");
    std::os::unix::fs::symlink(&node_modules, project.join("node_modules")).unwrap();
    run_in(&project, "npm", &["run", "build", "--silent"], &[]);

    let fx = Fixture::new();
    fx.config("");
    for (name, file) in [
        ("py-length", "py-length/dist/py-length.wasm"),
        ("js-length", "js-length/dist/js-length.wasm"),
    ] {
        let path = tmp.path().join(file);
        let out = fx.weir(&["plugins", "inspect", path.to_str().unwrap()]);
        let text = out.success().stdout();
        assert!(
            text.contains(&format!("plugin:   {name} 0.1.0")) && text.contains("transformer"),
            "{text}"
        );
    }
}
