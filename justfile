# weir — the front door for people and CI. `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The bundled plugins, as the drop folder names them.
bundled := "csv-extract http-extract map-transform select-transform sql-extract opensearch-load sqlite-load sqlite-history"

default:
    @just --list

# Install what a fresh machine lacks (the wasm target; `just` itself comes from `pip install rust-just`).
setup:
    rustup target add wasm32-wasip2

# Build every bundled plugin into the drop folder plugins/dist/.
plugins: setup
    cd plugins && cargo build --release --quiet
    mkdir -p plugins/dist
    for p in {{bundled}}; do cp "plugins/target/wasm32-wasip2/release/${p//-/_}.wasm" "plugins/dist/$p.wasm"; done
    @ls -l plugins/dist

# Build the misbehaving and malformed plugins the tests use into tests/plugins/dist/.
test-plugins: setup
    cd tests/plugins && cargo build --release --quiet
    mkdir -p tests/plugins/dist
    cp tests/plugins/target/wasm32-wasip2/release/*.wasm tests/plugins/dist/
    @# The second version of `stamp`, for the drop-in replacement tests.
    cd tests/plugins && cargo build --release --quiet -p stamp --features v2
    cp tests/plugins/target/wasm32-wasip2/release/stamp.wasm tests/plugins/dist/stamp_v2.wasm
    @# sql-escape as each plugin kind that gets databases (one crate exports one world).
    for kind in transform load history; do \
        (cd tests/plugins && cargo build --release --quiet -p sql-escape --no-default-features --features $kind); \
        cp tests/plugins/target/wasm32-wasip2/release/sql_escape.wasm tests/plugins/dist/sql_escape_$kind.wasm; \
    done
    rm -f tests/plugins/dist/sql_escape.wasm
    @# http-probe as a transformer too: one that imports wasi:http, which the host must refuse.
    cd tests/plugins && cargo build --release --quiet -p http-probe --no-default-features --features transform
    cp tests/plugins/target/wasm32-wasip2/release/http_probe.wasm tests/plugins/dist/http_probe_transform.wasm
    cd tests/plugins && cargo build --release --quiet -p http-probe

# The Python and JavaScript example plugins (plugins/examples): installs their pinned toolchains
# (componentize-py in a venv, jco/componentize-js with npm) and builds them into plugins/examples/dist/.
plugins-examples:
    plugins/examples/build.sh

# The example plugins' own unit tests, natively with CPython and Node.
plugins-examples-test:
    plugins/examples/build.sh --test

# Cold and cached load times, instantiation and rows/s of the Python and JS example transforms
# against the Rust map-transform (the table in docs/plugins.md).
bench-polyglot: plugins plugins-examples
    cargo test --quiet -p weir --test e2e polyglot_bench -- --ignored --nocapture

# Build the weir binary.
build:
    cargo build --quiet -p weir

# The demo: bank-recon loaded into SQLite twice, the ledger printed, then the dashboard (Ctrl-C).
demo listen="127.0.0.1:7878": demo-once (serve listen)

# The first run loads every statement file, the second nothing (nothing new); the state of
# earlier demos is removed first, so the dashboard's history starts empty.
# The demo's two runs and the ledger, without the dashboard: returns when done (for scripts).
demo-once: plugins build
    rm -f examples/bank-recon/ledger.db* examples/bank-recon/weir-state.db*
    @echo "== first run: every statement file is new"
    target/debug/weir -c examples/bank-recon/weir.toml run bank-recon
    @echo
    @echo "== second run: nothing new, so nothing is loaded twice"
    target/debug/weir -c examples/bank-recon/weir.toml run bank-recon
    @echo
    @echo "== the ledger"
    sqlite3 -header -column examples/bank-recon/ledger.db "SELECT count(*) AS transactions, printf('%.2f', sum(amount)) AS net_amount, min(booking_date) AS first, max(booking_date) AS last FROM transactions"
    sqlite3 -header -column examples/bank-recon/ledger.db "SELECT substr(file, length(file) - 10) AS file, line, stage, reason FROM _weir_rejects ORDER BY file, line"
    @echo "data: examples/bank-recon/ledger.db (table transactions); rejects: table _weir_rejects"

# Runs start on the pipeline's schedule or from the page; the API token is $WEIR_TOKEN if set,
# else generated and printed by weir serve.
# weir serve on bank-recon: the dashboard at http://LISTEN/ and its API token; Ctrl-C stops it.
serve listen="127.0.0.1:7878": plugins build
    @echo
    @echo "== the dashboard: open http://{{listen}}/ and log in (top right) with the API token below;"
    @echo "   Run now loads what is new in examples/bank-recon/inbox/. Ctrl-C stops weir serve."
    target/debug/weir -c examples/bank-recon/weir.toml serve --listen {{listen}}

# Every test: plugin unit tests (native), engine unit tests, end-to-end tests with the real binary and plugins.
test: plugins test-plugins plugins-examples-test
    cd plugins && cargo test --quiet --target x86_64-unknown-linux-gnu
    cargo test --workspace --no-run --quiet
    @# Compile the 12-18 MB Python and JS examples into the tests' compile cache now (tens of
    @# seconds), not beside the timing-sensitive tests; prints their cold load times.
    printf '[engine]\nplugins_dir = "%s"\ncache_dir = "%s"\n' "$PWD/plugins/examples/dist" "$PWD/target/weir-test-cache" > target/warm-examples.toml
    target/debug/weir -c target/warm-examples.toml plugins list
    cargo test --workspace
    @# Componentizes a Python and a JS skeleton (about a minute): run alone, after the
    @# timing-sensitive tests, rather than beside them.
    cargo test -p weir --test e2e -- --ignored --exact scaffold::python_and_js_skeletons_build_into_loadable_transformers
    just dashboard-test

# The dashboard in a real headless Chromium (Debian's `chromium`) against a real `weir serve`
# running the bank-recon example, then against two hosts of a cluster (PostgreSQL as for the
# cluster tests); screenshots go to target/dashboard*.png.
dashboard-test: plugins test-plugins build
    cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error
    cd tests/dashboard && node --test --test-reporter=spec dashboard.test.mjs
    @# Two clustered hosts and a throwaway PostgreSQL: the Hosts page, a run seen from the other host.
    cd tests/dashboard && node --test --test-reporter=spec cluster.test.mjs

# Formatting and lints for both workspaces.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd plugins && cargo fmt --all -- --check && cargo clippy --release -- -D warnings

# Kill `weir run` with SIGKILL N times while it loads a 200k-row CSV (append and upsert), then
# check: rows == source - rejects, no duplicate or missing key, integrity_check ok.
crash-test N="20": plugins
    WEIR_CRASH_ROWS=200000 WEIR_CRASH_KILLS={{N}} cargo test --quiet -p weir --test e2e crash -- --nocapture --test-threads 1

# The same against PostgreSQL (a throwaway cluster, see tests/e2e/pg_support.rs): 1,000,000 rows
# by default, append and upsert, N kills each.
crash-test-postgres N="20" ROWS="1000000": plugins
    WEIR_CRASH_ROWS={{ROWS}} WEIR_CRASH_KILLS={{N}} cargo test --quiet -p weir --test e2e postgres::sigkill -- --nocapture --test-threads 1

# Kill `weir run` with SIGKILL N times while it fans a 20k-line CSV out to SQLite and a real
# osmem-server, then check both destinations exactly (ids, values, index versions) and the rejects.
crash-test-fanout N="20": plugins
    WEIR_FANOUT_ROWS=20000 WEIR_FANOUT_KILLS={{N}} cargo test --quiet -p weir --test e2e fanout_kill -- --nocapture --test-threads 1

# weir (release build, bundled plugins) against a native Rust baseline and `sqlite3 .import` on
# generated bank CSV, then the HTTP case: 200,000 employees from the HR fixture over loopback,
# http-extract → sqlite-load against a native hyper + serde + rusqlite loop. ARGS go to
# `weir-bench run`: `--levers` adds the batch-size sweep, `--rows 200000 --big-rows 0` is a
# quick look, `--http-only` runs only the HTTP case, `--http-records 0` skips it; `--postgres`
# runs only the PostgreSQL case (a throwaway server: append and upsert against psql \copy and
# native tokio-postgres loaders, sql-extract PostgreSQL → SQLite against a keyset loop);
# `--cluster` runs only the cluster case (`weir serve` plain against 1, 2 and 3 clustered hosts
# sharing a run's partitions in a throwaway PostgreSQL, then a kill -9 takeover). Data and
# databases stay in target/bench. Benchmarks: figures and ratios, never pass/fail
# (docs/performance.md).
bench *ARGS: plugins
    cargo build --release --quiet -p weir -p weir-bench
    target/release/weir-bench run {{ARGS}}
