"""{{name}}: a weir transform written in Python. {{description}}

Adds an integer column `<column>_length`: the number of characters of the text in `column`.
Rows where that text is null are rejected.

Config: `column` (required), the text column to measure.

Build:  ./build.sh        (componentize-py in .venv, output {{name}}.wasm)
Test:   ./build.sh --test (the unit tests in tests/, natively with CPython)
"""

import json

import wit_world
from wit_world.exports import transformer
from wit_world.exports.transformer import RowReject, Transformed
from wit_world.imports.types import Column, Kind, PluginInfo, Rows, Schema

import weir_columns as wc

NAME = "{{name}}"
CONFIG_SCHEMA = json.dumps(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["column"],
        "properties": {"column": {"type": "string", "description": "the text column to measure"}},
    }
)


class Transform(transformer.Transform):
    """The transform of one stream."""

    def __init__(self, input: Schema, column: int):
        self.column = column
        name = input.columns[column].name
        self.schema = Schema(input.columns + [Column(f"{name}_length", Kind.INTEGER, False)], input.primary_key)

    def output_schema(self) -> Schema:
        return self.schema

    def apply(self, input: Rows) -> Transformed:
        texts = wc.text_cells(input.columns[self.column], input.row_count)
        lengths, rejects = [], []
        for i, text in enumerate(texts):
            if text is None:
                # A reject drops this row only; the host records it with its source position.
                rejects.append(RowReject(i, f"{self.schema.columns[self.column].name}: null"))
            else:
                lengths.append(len(text))
        kept = wc.without_rows(input, [r.index for r in rejects])
        columns = kept.columns + [wc.column(Kind.INTEGER, lengths)]
        return Transformed(Rows(kept.row_count, columns), rejects)


class Transformer(wit_world.exports.Transformer):
    def describe(self) -> PluginInfo:
        return PluginInfo(NAME, "0.1.0", "{{description}}", CONFIG_SCHEMA)

    def open(self, config: str, input: Schema) -> transformer.Transform:
        # Only `Err(<error case>)` may leave a plugin: any other exception traps the instance.
        try:
            column = json.loads(config)["column"]
        except (ValueError, KeyError, TypeError):
            raise wc.invalid_config(f"{NAME}: config needs `column`, the text column to measure")
        names = [c.name for c in input.columns]
        if column not in names:
            raise wc.invalid_config(f"{NAME}: no column {column!r} in {', '.join(names)}")
        index = names.index(column)
        if input.columns[index].kind in (Kind.INTEGER, Kind.REAL, Kind.BOOLEAN, Kind.BLOB):
            raise wc.invalid_config(f"{NAME}: column {column!r} is not text")
        return Transform(input, index)
