//! `weir plugins new`: a new plugin project that builds and passes its own tests as generated.
//!
//! Rust projects depend on the SDK by path (`plugins/sdk` of a weir checkout) or by git URL
//! (`--sdk`), so they build wherever they live, and come with a skeleton of each plugin kind.
//! Python and JavaScript projects are transformers with a copy of the WIT contract and of the
//! example plugins' column helpers, so they build on their own. Templates live in
//! `host/cli/templates/`.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

/// The plugin kinds, as the WIT worlds name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    #[value(alias = "extract")]
    Extractor,
    #[value(alias = "transform")]
    Transformer,
    #[value(alias = "load")]
    Loader,
    #[value(alias = "history")]
    HistoryStore,
}

/// The languages there are templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    #[value(alias = "javascript")]
    Js,
}

/// What to create.
pub struct NewPlugin {
    pub kind: Kind,
    pub lang: Lang,
    /// The plugin name (`my-transform`): the folder, the package and `describe().name`.
    pub name: String,
    /// The folder to create; default `./NAME`.
    pub dir: Option<PathBuf>,
    /// `--sdk`: the Rust SDK's folder, or a git URL of a weir repository (`URL#REV` pins a
    /// revision); default: the SDK of the checkout this binary came from.
    pub sdk: Option<String>,
}

/// The WIT contract, copied into Python and JavaScript projects.
const WIT: &[(&str, &str)] = &[
    ("worlds.wit", include_str!("../../../wit/0.1.0/worlds.wit")),
    ("types.wit", include_str!("../../../wit/0.1.0/types.wit")),
    ("host.wit", include_str!("../../../wit/0.1.0/host.wit")),
    (
        "extractor.wit",
        include_str!("../../../wit/0.1.0/extractor.wit"),
    ),
    (
        "transformer.wit",
        include_str!("../../../wit/0.1.0/transformer.wit"),
    ),
    ("loader.wit", include_str!("../../../wit/0.1.0/loader.wit")),
    (
        "history-store.wit",
        include_str!("../../../wit/0.1.0/history-store.wit"),
    ),
];

pub fn new_plugin(args: &NewPlugin) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir()?.join(&args.name),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{}: already exists and is not empty", dir.display());
    }
    if args.sdk.is_some() && args.lang != Lang::Rust {
        bail!(
            "--sdk is for --lang rust; Python and JavaScript projects carry their own copy of \
             the contract"
        );
    }
    let files = match args.lang {
        Lang::Rust => rust_files(args, &dir)?,
        Lang::Python | Lang::Js if args.kind != Kind::Transformer => bail!(
            "--lang {} has a template for --kind transformer only; docs/plugins.md (\"Other \
             kinds\") shows the shape of the other kinds in Python and JavaScript",
            lang_name(args.lang)
        ),
        Lang::Python => python_files(args),
        Lang::Js => js_files(args)?,
    };
    for (rel, text) in &files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file in the project"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    #[cfg(unix)]
    for (rel, _) in files.iter().filter(|(rel, _)| rel.ends_with(".sh")) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(0o755))?;
    }

    println!(
        "created {} {} plugin `{}` in {}",
        lang_name(args.lang),
        kind_name(args.kind),
        args.name,
        dir.display()
    );
    let crate_name = args.name.replace('-', "_");
    let steps = match args.lang {
        Lang::Rust => format!(
            "  cargo test --target x86_64-unknown-linux-gnu   # unit tests, natively (your host triple: rustc -vV)\n  \
             cargo build --release                          # target/wasm32-wasip2/release/{crate_name}.wasm\n  \
             weir plugins inspect target/wasm32-wasip2/release/{crate_name}.wasm"
        ),
        Lang::Python => format!(
            "  ./build.sh --test    # unit tests, natively with CPython (installs componentize-py into .venv)\n  \
             ./build.sh           # dist/{0}.wasm\n  \
             weir plugins inspect dist/{0}.wasm",
            args.name
        ),
        Lang::Js => format!(
            "  npm ci && npm test   # unit tests, natively with Node\n  \
             npm run build        # dist/{0}.wasm\n  \
             weir plugins inspect dist/{0}.wasm",
            args.name
        ),
    };
    println!(
        "next, in that folder:\n{steps}\nthen copy the .wasm into your plugins folder (docs/plugins.md)."
    );
    Ok(ExitCode::SUCCESS)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "plugin name {name:?}: use lower-case letters, digits and '-', starting with a letter \
             (like csv-extract)"
        );
    }
    Ok(())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Extractor => "extractor",
        Kind::Transformer => "transformer",
        Kind::Loader => "loader",
        Kind::HistoryStore => "history-store",
    }
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "rust",
        Lang::Python => "python",
        Lang::Js => "js",
    }
}

fn description(args: &NewPlugin) -> &'static str {
    match (args.lang, args.kind) {
        (Lang::Rust, Kind::Extractor) => "counts from 1 to count, with checkpoints",
        (Lang::Rust, Kind::Transformer) => "trims whitespace around text cells",
        (Lang::Rust, Kind::Loader) => "writes every column into a table of a granted database",
        (Lang::Rust, Kind::HistoryStore) => "checkpoints in a table of a granted database",
        _ => "adds the length of a text column",
    }
}

/// Fill in `{{name}}`, `{{crate}}`, `{{description}}` and `{{sdk}}`.
fn render(template: &str, args: &NewPlugin, sdk: &str) -> String {
    template
        .replace("{{name}}", &args.name)
        .replace("{{crate}}", &args.name.replace('-', "_"))
        .replace("{{description}}", description(args))
        .replace("{{sdk}}", sdk)
}

type Files = Vec<(String, String)>;

fn rust_files(args: &NewPlugin, dir: &Path) -> anyhow::Result<Files> {
    let sdk = resolve_sdk(args.sdk.as_deref(), &binary_checkouts())?;
    let dependency = sdk.dependency(&absolute(dir)?);
    let lib = match args.kind {
        Kind::Extractor => include_str!("../templates/rust/extractor.rs"),
        Kind::Transformer => include_str!("../templates/rust/transformer.rs"),
        Kind::Loader => include_str!("../templates/rust/loader.rs"),
        Kind::HistoryStore => include_str!("../templates/rust/history-store.rs"),
    };
    let lock = match &sdk {
        // The lock file beside that SDK: its checkout's tested versions.
        SdkSource::Path(path) => std::fs::read_to_string(path.join("../Cargo.lock")).ok(),
        SdkSource::Git { .. } => None,
    };
    Ok(vec![
        (
            "Cargo.toml".to_owned(),
            render(
                include_str!("../templates/rust/Cargo.toml"),
                args,
                &dependency,
            ),
        ),
        (
            ".cargo/config.toml".to_owned(),
            include_str!("../templates/rust/config.toml").to_owned(),
        ),
        (
            ".gitignore".to_owned(),
            include_str!("../templates/rust/gitignore").to_owned(),
        ),
        ("src/lib.rs".to_owned(), render(lib, args, &dependency)),
        // The bundled plugins' lock file: the new plugin starts with the dependency versions
        // they are built and tested with (cargo drops what it does not need, and adds the
        // SDK's git source when it is one).
        (
            "Cargo.lock".to_owned(),
            lock.unwrap_or_else(|| include_str!("../../../plugins/Cargo.lock").to_owned()),
        ),
    ])
}

fn python_files(args: &NewPlugin) -> Files {
    let mut files = wit_files();
    files.extend([
        (
            "src/app.py".to_owned(),
            render(include_str!("../templates/python/app.py"), args, ""),
        ),
        (
            "src/weir_columns.py".to_owned(),
            include_str!("../../../plugins/examples/python-transform/weir_columns.py").to_owned(),
        ),
        (
            "tests/test_app.py".to_owned(),
            include_str!("../templates/python/test_app.py").to_owned(),
        ),
        (
            "requirements.txt".to_owned(),
            include_str!("../../../plugins/examples/python-transform/requirements.txt").to_owned(),
        ),
        (
            "build.sh".to_owned(),
            render(include_str!("../templates/python/build.sh"), args, ""),
        ),
        (
            ".gitignore".to_owned(),
            include_str!("../templates/python/gitignore").to_owned(),
        ),
    ]);
    files
}

fn js_files(args: &NewPlugin) -> anyhow::Result<Files> {
    // The example's pins, under the new name.
    let mut package: serde_json::Value = serde_json::from_str(include_str!(
        "../../../plugins/examples/js-transform/package.json"
    ))?;
    package["name"] = args.name.clone().into();
    package["description"] = format!("weir transform: {}", description(args)).into();
    package["scripts"] = serde_json::json!({
        "build": format!(
            "mkdir -p dist && componentize-js src/plugin.js --wit wit --world-name transformer-plugin -d http fetch-event -o dist/{}.wasm",
            args.name
        ),
        "test": "node --test test/",
    });
    let lock = include_str!("../../../plugins/examples/js-transform/package-lock.json").replace(
        "\"name\": \"weir-js-transform\"",
        &format!("\"name\": {}", serde_json::to_string(&args.name)?),
    );
    let mut files = wit_files();
    files.extend([
        (
            "package.json".to_owned(),
            serde_json::to_string_pretty(&package)? + "\n",
        ),
        ("package-lock.json".to_owned(), lock),
        (
            "src/plugin.js".to_owned(),
            render(include_str!("../templates/js/plugin.js"), args, ""),
        ),
        (
            "src/weir-columns.js".to_owned(),
            include_str!("../../../plugins/examples/js-transform/src/weir-columns.js").to_owned(),
        ),
        (
            "test/plugin.test.js".to_owned(),
            include_str!("../templates/js/plugin.test.js").to_owned(),
        ),
        (
            ".gitignore".to_owned(),
            include_str!("../templates/js/gitignore").to_owned(),
        ),
    ]);
    Ok(files)
}

fn wit_files() -> Files {
    WIT.iter()
        .map(|(name, text)| (format!("wit/{name}"), (*text).to_owned()))
        .collect()
}

/// Where a Rust project's `weir-sdk` dependency comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SdkSource {
    /// The SDK's folder (absolute, normalized).
    Path(PathBuf),
    /// A weir repository (cargo finds the `weir-sdk` package in it), at `rev` if given.
    Git { url: String, rev: Option<String> },
}

impl SdkSource {
    /// The dependency's inline table in the new project's Cargo.toml.
    fn dependency(&self, project: &Path) -> String {
        // serde_json's string escapes are a subset of TOML's basic-string escapes.
        let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
        match self {
            Self::Path(sdk) => {
                let rel = relative_path(project, sdk);
                format!(
                    "{{ path = {} }}",
                    quote(&rel.to_string_lossy().replace('\\', "/"))
                )
            }
            Self::Git { url, rev: None } => format!("{{ git = {} }}", quote(url)),
            Self::Git {
                url,
                rev: Some(rev),
            } => format!("{{ git = {}, rev = {} }}", quote(url), quote(rev)),
        }
    }
}

/// The SDK folders of the weir checkout this binary came from, most likely first: above the
/// executable (`target/debug/weir` of a checkout), then where it was built. The SDK of the
/// weir that will load the plugin speaks its contract version, so it is the default.
fn binary_checkouts() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|dir| dir.join("plugins/sdk")));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk"));
    candidates
}

fn is_sdk(path: &Path) -> bool {
    std::fs::read_to_string(path.join("Cargo.toml"))
        .is_ok_and(|t| t.contains("name = \"weir-sdk\""))
}

/// `--sdk` as given (a git URL, a folder relative to the current one, or a weir checkout's
/// root), else the first SDK among `candidates`.
fn resolve_sdk(explicit: Option<&str>, candidates: &[PathBuf]) -> anyhow::Result<SdkSource> {
    let Some(given) = explicit else {
        if let Some(found) = candidates.iter().find(|c| is_sdk(c)) {
            return Ok(SdkSource::Path(absolute(found)?));
        }
        bail!(
            "cannot find the weir Rust SDK: this weir binary is not inside a weir checkout; pass \
             --sdk PATH (plugins/sdk of a weir checkout) or --sdk GIT_URL (a weir repository, \
             like https://example.com/weir.git, optionally #REV)"
        );
    };
    if given.contains("://") {
        let (url, rev) = match given.split_once('#') {
            Some((url, rev)) if !rev.is_empty() => (url, Some(rev.to_owned())),
            Some((url, _)) => (url, None),
            None => (given, None),
        };
        return Ok(SdkSource::Git {
            url: url.to_owned(),
            rev,
        });
    }
    // `git@host:owner/weir.git`, which git takes and cargo does not.
    if let Some((user_host, repo)) = given.split_once(':')
        && user_host.contains('@')
        && !user_host.contains('/')
    {
        bail!(
            "--sdk {given}: cargo needs git URLs with a scheme; write \
             ssh://{user_host}/{repo}"
        );
    }
    let path = absolute(Path::new(given))?;
    for candidate in [path.clone(), path.join("plugins/sdk")] {
        if is_sdk(&candidate) {
            return Ok(SdkSource::Path(candidate));
        }
    }
    bail!(
        "--sdk {given}: not the weir Rust SDK (no Cargo.toml of weir-sdk in {} or its \
         plugins/sdk); pass plugins/sdk of a weir checkout, or a git URL",
        path.display()
    )
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(normalize(&std::path::absolute(path)?))
}

/// `a/b/../c` → `a/c`, lexically (the new folder does not exist yet, so no canonicalize).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The path from folder `from` to `to`, both absolute and normalized; `to` itself when they
/// share no more than the root (a path up to `/` and down again says nothing useful).
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common <= 1 {
        return to.to_path_buf();
    }
    let to = to_parts;
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        let rel = |a: &str, b: &str| relative_path(Path::new(a), Path::new(b));
        assert_eq!(
            rel("/repo/plugins/new", "/repo/plugins/sdk"),
            Path::new("../sdk")
        );
        assert_eq!(
            rel("/repo/a/b/new", "/repo/plugins/sdk"),
            Path::new("../../../plugins/sdk")
        );
        assert_eq!(
            rel("/tmp/x/new", "/repo/plugins/sdk"),
            Path::new("/repo/plugins/sdk")
        );
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
    }

    #[test]
    fn sdk_sources_become_cargo_dependencies() {
        let checkout = normalize(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")));
        let project = Path::new("/elsewhere/my-plugin");
        let dependency = |given: Option<&str>, candidates: &[PathBuf]| {
            resolve_sdk(given, candidates).map(|s| s.dependency(project))
        };
        let sdk = checkout.join("plugins/sdk");
        let path_dep = format!("{{ path = \"{}\" }}", sdk.display());
        // The default, a folder, a checkout's root.
        assert_eq!(
            dependency(None, &[checkout.join("nowhere"), sdk.clone()]).unwrap(),
            path_dep
        );
        assert_eq!(dependency(sdk.to_str(), &[]).unwrap(), path_dep);
        assert_eq!(dependency(checkout.to_str(), &[]).unwrap(), path_dep);
        assert_eq!(
            resolve_sdk(None, std::slice::from_ref(&sdk))
                .unwrap()
                .dependency(&checkout.join("plugins/my-plugin")),
            r#"{ path = "../sdk" }"#
        );
        // Git URLs, pinned or not.
        assert_eq!(
            dependency(Some("https://example.com/weir.git"), &[]).unwrap(),
            r#"{ git = "https://example.com/weir.git" }"#
        );
        assert_eq!(
            dependency(Some("ssh://git@example.com/weir.git#0a1b2c3"), &[]).unwrap(),
            r#"{ git = "ssh://git@example.com/weir.git", rev = "0a1b2c3" }"#
        );
        // What cannot work says what to pass instead.
        let error = |given: Option<&str>| dependency(given, &[]).unwrap_err().to_string();
        assert!(error(None).contains("pass --sdk PATH"), "{}", error(None));
        let scp = error(Some("git@example.com:me/weir.git"));
        assert!(scp.contains("ssh://git@example.com/me/weir.git"), "{scp}");
        let missing = error(Some("/no/such/sdk"));
        assert!(
            missing.starts_with("--sdk /no/such/sdk: not the weir Rust SDK"),
            "{missing}"
        );
    }

    #[test]
    fn names_are_checked() {
        for good in ["csv-extract", "a", "x2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Upper", "2x", "my_plugin", "trailing-", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_leave_no_placeholder() {
        let args = |kind, lang| NewPlugin {
            kind,
            lang,
            name: "my-plugin".into(),
            dir: None,
            sdk: None,
        };
        let kinds = [
            Kind::Extractor,
            Kind::Transformer,
            Kind::Loader,
            Kind::HistoryStore,
        ];
        for kind in kinds {
            let a = args(kind, Lang::Rust);
            let dir = std::env::temp_dir().join("weir-scaffold-unit-test/my-plugin");
            for (rel, text) in rust_files(&a, &dir).unwrap() {
                assert!(!text.contains("{{"), "{rel} of {kind:?}");
            }
        }
        let files = python_files(&args(Kind::Transformer, Lang::Python))
            .into_iter()
            .chain(js_files(&args(Kind::Transformer, Lang::Js)).unwrap());
        for (rel, text) in files {
            assert!(!text.contains("{{"), "{rel}");
        }
    }
}
