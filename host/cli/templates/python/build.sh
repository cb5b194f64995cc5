#!/usr/bin/env bash
# Build dist/{{name}}.wasm with componentize-py, installed into .venv on first use (or set
# VENV to a venv that has it); --test runs the unit tests natively instead.
set -euo pipefail
cd "$(dirname "$0")"
venv=${VENV:-.venv}
if [[ ! -x $venv/bin/componentize-py ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r requirements.txt
fi
if [[ ${1:-} == --test ]]; then
    # The generated bindings make `wit_world` importable by plain CPython.
    rm -rf .venv/bindings && mkdir -p .venv
    "$venv/bin/componentize-py" -d wit -w transformer-plugin bindings .venv/bindings >/dev/null
    PYTHONPATH=.venv/bindings:src PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m unittest discover --quiet -s tests
else
    mkdir -p dist
    "$venv/bin/componentize-py" -d wit -w transformer-plugin componentize app -p src -o dist/{{name}}.wasm
fi
