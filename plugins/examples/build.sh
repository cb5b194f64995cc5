#!/usr/bin/env bash
# Build the Python and JavaScript example plugins into plugins/examples/dist/ (`just plugins-examples`).
#
# Installs the pinned toolchains from the package registries on first use: componentize-py into
# the venv plugins/examples/.venv (python-transform/requirements.txt), jco and componentize-js
# into js-transform/node_modules (package-lock.json). Each step is skipped while its inputs are
# unchanged, so a second run takes about a second.
#
#   --test   also run the examples' unit tests natively (CPython and Node, no WebAssembly)
set -euo pipefail
cd "$(dirname "$0")"
run_tests=false
[[ ${1:-} == --test ]] && run_tests=true

wit=../../wit/0.1.0
mkdir -p dist

# True when $1 is missing or older than any source file under the other arguments.
stale() {
    local out=$1
    shift
    [[ ! -f $out ]] || [[ -n $(find "$@" -newer "$out" -type f \
        \( -name '*.py' -o -name '*.js' -o -name '*.wit' -o -name '*.txt' -o -name '*.json' \) \
        -not -path '*/node_modules/*' -not -path '*/__pycache__/*' -print -quit) ]]
}

# The toolchains. The copies of the pin files mark what is installed.
if ! cmp -s python-transform/requirements.txt .venv/weir-requirements.txt; then
    echo "installing componentize-py into plugins/examples/.venv"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r python-transform/requirements.txt
    cp python-transform/requirements.txt .venv/weir-requirements.txt
fi
if ! cmp -s js-transform/package-lock.json js-transform/node_modules/.weir-package-lock.json; then
    echo "installing jco and componentize-js into plugins/examples/js-transform/node_modules"
    (cd js-transform && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
    cp js-transform/package-lock.json js-transform/node_modules/.weir-package-lock.json
fi

# Python: componentize-py bundles the folder (app.py, weir_columns.py) with CPython.
if stale dist/python-transform.wasm python-transform $wit; then
    echo "building dist/python-transform.wasm (componentize-py)"
    .venv/bin/componentize-py -d $wit -w transformer-plugin componentize app \
        -p python-transform -o dist/python-transform.wasm.tmp
    mv dist/python-transform.wasm.tmp dist/python-transform.wasm
fi

# JavaScript: `-d http fetch-event` leaves out wasi:http, which weir does not provide.
if stale dist/js-transform.wasm js-transform $wit; then
    echo "building dist/js-transform.wasm (componentize-js)"
    (cd js-transform && node_modules/.bin/componentize-js src/plugin.js --wit ../$wit \
        --world-name transformer-plugin -d http fetch-event -o ../dist/js-transform.wasm.tmp)
    mv dist/js-transform.wasm.tmp dist/js-transform.wasm
fi

if $run_tests; then
    # The generated bindings make `wit_world` importable by plain CPython.
    rm -rf .venv/bindings
    .venv/bin/componentize-py -d $wit -w transformer-plugin bindings .venv/bindings >/dev/null
    (cd python-transform && PYTHONPATH=../.venv/bindings PYTHONDONTWRITEBYTECODE=1 \
        ../.venv/bin/python -m unittest --quiet)
    (cd js-transform && node --test test/)
fi
ls -l dist
