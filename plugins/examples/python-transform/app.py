"""payee-normalize: a weir transform written in Python.

Adds two columns to every row:

* `payee` (text): the counterparty's name normalised for matching: umlauts spelled out,
  punctuation and legal-form suffixes (GmbH, AG, ...) removed, spaces collapsed, upper case.
  "Müller & Söhne GmbH" becomes "MUELLER & SOEHNE". A row whose counterparty has no letter
  or digit at all is rejected.
* `unusual` (boolean): whether the absolute amount is above `threshold`.

Config (all optional): `counterparty` and `amount` name the input columns (defaults
"counterparty", "amount"); `threshold` is a number (default 2500); `payee` and `flag` name the
output columns (defaults "payee", "unusual").

Build: componentize-py -d wit -w transformer-plugin componentize app -p <this folder> -o x.wasm
"""

import json
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import List, Optional

import wit_world
from wit_world.exports import transformer
from wit_world.exports.transformer import RowReject, Transformed
from wit_world.imports import log
from wit_world.imports.types import Column, Kind, PluginInfo, Rows, Schema

import weir_columns as wc

NAME = "payee-normalize"
VERSION = "0.1.0"

CONFIG_SCHEMA = json.dumps(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "counterparty": {"type": "string", "default": "counterparty"},
            "amount": {"type": "string", "default": "amount"},
            "threshold": {"type": "number", "default": 2500},
            "payee": {"type": "string", "default": "payee"},
            "flag": {"type": "string", "default": "unusual"},
        },
    }
)

DEFAULTS = {
    "counterparty": "counterparty",
    "amount": "amount",
    "threshold": 2500,
    "payee": "payee",
    "flag": "unusual",
}

# Spelled-out forms, as German banks print names without umlauts.
SPELLED_OUT = [("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "AE"), ("Ö", "OE"), ("Ü", "UE"), ("ß", "ss")]
LEGAL_FORMS = {"GMBH", "AG", "KG", "OHG", "EG", "EV", "GBR", "UG", "SA", "SARL", "LTD", "INC", "LLC"}
NOT_A_WORD = re.compile(r"[^\w&]+")
HAS_ALNUM = re.compile(r"[^\W_]")


def normalize(name: str) -> str:
    """The matching form of a counterparty name ("" when no letter or digit is left)."""
    text = name
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
        for umlaut, spelled in SPELLED_OUT:
            text = text.replace(umlaut, spelled)
        if not text.isascii():
            # Whatever accents remain (é, å) lose them: decompose, drop the combining marks.
            text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    words = NOT_A_WORD.sub(" ", text).replace("_", " ").upper().split()
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        words.pop()
    result = " ".join(words)
    return result if HAS_ALNUM.search(result) else ""


def is_unusual(amount: Optional[str], threshold: Decimal) -> bool:
    """Whether a canonical decimal's absolute value is above `threshold` (raises on junk)."""
    if amount is None:
        return False
    return abs(Decimal(amount)) > threshold


class Transform(transformer.Transform):
    """The transform of one stream: column indexes resolved once in `open`."""

    def __init__(self, schema: Schema, counterparty: int, amount: int, threshold: Decimal, payee: str, flag: str):
        self.schema = Schema(
            schema.columns + [Column(payee, Kind.TEXT, True), Column(flag, Kind.BOOLEAN, False)],
            schema.primary_key,
        )
        self.counterparty = counterparty
        self.amount = amount
        self.threshold = threshold
        self.counterparty_name = schema.columns[counterparty].name

    def output_schema(self) -> Schema:
        return self.schema

    def apply(self, input: Rows) -> Transformed:
        n = input.row_count
        names = wc.text_cells(input.columns[self.counterparty], n)
        amounts = wc.text_cells(input.columns[self.amount], n)
        payees: List[Optional[str]] = []
        flags: List[bool] = []
        rejects: List[RowReject] = []
        for i, (name, amount) in enumerate(zip(names, amounts)):
            payee = None if name is None else normalize(name)
            if payee == "":
                rejects.append(RowReject(i, f"{self.counterparty_name}: {name!r} has no letters or digits"))
                continue
            try:
                unusual = is_unusual(amount, self.threshold)
            except InvalidOperation:
                rejects.append(RowReject(i, f"amount: {amount!r} is not a decimal"))
                continue
            payees.append(payee)
            flags.append(unusual)
        kept = wc.without_rows(input, [r.index for r in rejects])
        columns = kept.columns + [wc.text_column(payees), wc.boolean_column(flags)]
        if rejects:
            log.log(log.Level.DEBUG, f"{NAME}: rejected {len(rejects)} of {n} rows")
        return Transformed(Rows(kept.row_count, columns), rejects)


class Transformer(wit_world.exports.Transformer):
    """The exported interface: describe the plugin, open a transform per stream."""

    def describe(self) -> PluginInfo:
        return PluginInfo(NAME, VERSION, "normalises counterparty names and flags unusual amounts", CONFIG_SCHEMA)

    def open(self, config: str, input: Schema) -> transformer.Transform:
        try:
            settings = json.loads(config or "{}")
        except json.JSONDecodeError as e:
            raise wc.invalid_config(f"{NAME}: config is not JSON: {e}")
        if not isinstance(settings, dict):
            raise wc.invalid_config(f"{NAME}: config must be a table")
        unknown = sorted(set(settings) - set(DEFAULTS))
        if unknown:
            raise wc.invalid_config(f"{NAME}: unknown config key {unknown[0]!r}; expected one of {', '.join(DEFAULTS)}")
        s = {**DEFAULTS, **settings}
        names = [c.name for c in input.columns]

        def text_column(key: str) -> int:
            name = s[key]
            if name not in names:
                raise wc.invalid_config(f"{NAME}: {key}: no column {name!r} in {', '.join(names)}")
            index = names.index(name)
            if input.columns[index].kind in (Kind.INTEGER, Kind.REAL, Kind.BOOLEAN, Kind.BLOB):
                raise wc.invalid_config(f"{NAME}: {key}: column {name!r} is {input.columns[index].kind.name.lower()}, not text or decimal")
            return index

        counterparty, amount = text_column("counterparty"), text_column("amount")
        for key in ("payee", "flag"):
            if s[key] in names:
                raise wc.invalid_config(f"{NAME}: {key}: the input already has a column {s[key]!r}")
        if isinstance(s["threshold"], bool) or not isinstance(s["threshold"], (int, float)):
            raise wc.invalid_config(f"{NAME}: threshold: expected a number, got {s['threshold']!r}")
        return Transform(input, counterparty, amount, Decimal(str(s["threshold"])), s["payee"], s["flag"])
