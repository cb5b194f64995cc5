//! The arrows docs/design.md allows between crates and between the engine's modules, checked
//! against the sources, so the map and the code cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `weir-*` crates a manifest depends on (normal dependencies only).
fn weir_dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut section = String::new();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_owned();
        } else if section == "[dependencies]" && line.starts_with("weir-") {
            out.insert(line.split(['.', ' ', '=']).next().unwrap().to_owned());
        }
    }
    out
}

#[test]
fn crates_depend_only_along_the_allowed_arrows() {
    let never: &[(&str, &[&str])] = &[
        (
            "bindings",
            &["weir-runtime", "weir-engine", "weir-api", "weir-store"],
        ),
        (
            "runtime",
            &["weir-engine", "weir-api", "weir-store", "weir-schedule"],
        ),
        (
            "schedule",
            &["weir-runtime", "weir-engine", "weir-api", "weir-store"],
        ),
        ("store", &["weir-runtime", "weir-engine", "weir-api"]),
        // PostgreSQL and the store's records only: the engine drives it.
        (
            "cluster",
            &[
                "weir-bindings",
                "weir-runtime",
                "weir-engine",
                "weir-api",
                "weir-schedule",
                "weir-http",
            ],
        ),
        (
            "http",
            &[
                "weir-bindings",
                "weir-runtime",
                "weir-engine",
                "weir-api",
                "weir-store",
                "weir-schedule",
            ],
        ),
        ("engine", &["weir-api"]),
    ];
    for (krate, forbidden) in never {
        let deps = weir_dependencies(&repo().join("host").join(krate).join("Cargo.toml"));
        for f in *forbidden {
            assert!(!deps.contains(*f), "weir-{krate} must not depend on {f}");
        }
    }
    // Plugins never depend on the host: their workspace has no path into host/.
    for manifest in ["plugins/Cargo.toml", "tests/plugins/Cargo.toml"] {
        let text = std::fs::read_to_string(repo().join(manifest)).unwrap();
        assert!(!text.contains("host/"), "{manifest} points into host/");
    }
}

/// Top-level engine module → the top-level engine modules it names (`crate::x`).
fn engine_modules() -> BTreeMap<String, BTreeSet<String>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let uses = graph.entry(top.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                uses.insert(name);
            }
        }
    }
    graph
}

#[test]
fn no_two_engine_modules_import_each_other_even_indirectly() {
    let graph = engine_modules();
    // Depth-first search for a path back to the start.
    fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
        let mut stack = vec![from.to_owned()];
        let mut seen = BTreeSet::new();
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    }
    for (module, uses) in &graph {
        for used in uses {
            assert!(
                !reaches(&graph, used, module),
                "engine modules `{module}` and `{used}` import each other (directly or through others): {graph:#?}"
            );
        }
    }
    // The layering docs/design.md describes, spot-checked.
    assert!(!graph["worker"].contains("run"));
    assert!(!graph["commit"].contains("worker"));
    assert!(!graph["events"].contains("service"));
}
