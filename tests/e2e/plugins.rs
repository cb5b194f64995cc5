//! Plugin discovery: broken files are rejected by name while the rest load.

use crate::support::*;

#[test]
fn non_components_and_wrong_worlds_are_rejected_while_the_rest_load() {
    let fx = Fixture::new();
    let dir = fx.path("plugins");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(plugins_dist()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.join("notes.wasm"), "this is not wasm").unwrap();
    // A core module (magic + version 1) is not a component.
    std::fs::write(dir.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::copy(test_plugin("wrong-world"), dir.join("greeter.wasm")).unwrap();
    std::fs::copy(test_plugin("future-contract"), dir.join("future.wasm")).unwrap();
    std::fs::write(fx.path("weir.toml"), Fixture::engine_section(&dir)).unwrap();

    let run = fx.weir(&["plugins", "list"]);
    run.success();
    let out = run.stdout();
    for name in [
        "csv-extract",
        "map-transform",
        "sqlite-load",
        "sqlite-history",
    ] {
        assert!(out.contains(name), "{name} should load:\n{out}");
    }
    assert!(
        out.contains("rejected") && out.contains("notes.wasm: is not WebAssembly"),
        "{out}"
    );
    assert!(
        out.contains("core.wasm: is a core WebAssembly module, not a component"),
        "{out}"
    );
    assert!(
        out.contains("greeter.wasm: exports no weir plugin interface")
            && out.contains("acme:greeter/greet@1.0.0"),
        "{out}"
    );
    assert!(
        out.contains(
            "future.wasm: exports weir:plugin/transformer@0.9.0, but this weir supports weir:plugin@0.1.0, 0.2.0"
        ),
        "{out}"
    );
}

#[test]
fn inspect_shows_kind_world_and_imports() {
    let fx = Fixture::new();
    fx.config("");
    let run = fx.weir(&[
        "plugins",
        "inspect",
        plugins_dist().join("csv-extract.wasm").to_str().unwrap(),
    ]);
    let out = run.success().stdout();
    assert!(out.contains("kind:     extractor"), "{out}");
    assert!(
        out.contains("contract: weir:plugin@0.2.0")
            && out.contains("world:    weir:plugin/extractor-plugin@0.2.0"),
        "{out}"
    );
    assert!(
        out.contains("weir:plugin/log@0.2.0") && out.contains("wasi:filesystem"),
        "{out}"
    );

    let bad = fx.weir(&[
        "plugins",
        "inspect",
        test_plugin("wrong-world").to_str().unwrap(),
    ]);
    assert!(
        bad.failure()
            .stderr()
            .contains("exports no weir plugin interface"),
        "{}",
        bad.stderr()
    );
}

#[test]
fn a_closed_stdout_ends_the_command_quietly_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let fx = Fixture::new();
    fx.config("");
    // Like `weir plugins list | head -0`: the reader is gone before the first line is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("-c")
        .arg(fx.path("weir.toml"))
        .args(["plugins", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    const SIGPIPE: i32 = 13; // on Linux
    assert_eq!(output.status.signal(), Some(SIGPIPE), "{stderr}");
}
