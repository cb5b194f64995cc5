"""Unit tests of the plugin, run natively: `just plugins-examples-test`."""

import json
import unittest

from wit_world.imports.types import Column, Error_InvalidConfig, Kind, Rows, Schema

import app
import weir_columns as wc

SCHEMA = Schema(
    [Column("txn_id", Kind.INTEGER, False), Column("amount", Kind.DECIMAL, False), Column("counterparty", Kind.TEXT, True)],
    ["txn_id"],
)


class NormalizeTest(unittest.TestCase):
    def test_spells_out_umlauts_and_drops_legal_forms_and_punctuation(self):
        cases = {
            "Müller & Söhne GmbH": "MUELLER & SOEHNE",
            'Café "Zum Löwen"': "CAFE ZUM LOEWEN",
            "Grün, Blau & Partner AG": "GRUEN BLAU & PARTNER",
            "  Jürg   Weiß ": "JUERG WEISS",
            "AG": "AG",
            "---": "",
        }
        for name, expected in cases.items():
            self.assertEqual(app.normalize(name), expected, name)


class TransformTest(unittest.TestCase):
    def setUp(self):
        app.log.log = lambda level, message: None  # no host natively

    def open(self, config):
        return app.Transformer().open(json.dumps(config), SCHEMA)

    def test_adds_payee_and_flag_and_rejects_nameless_rows(self):
        t = self.open({"threshold": 1000})
        self.assertEqual([c.name for c in t.output_schema().columns][-2:], ["payee", "unusual"])
        rows = Rows(
            3,
            [
                wc.column(Kind.INTEGER, [1, 2, 3]),
                wc.text_column(["-1000.01", "5.00", "999.99"]),
                wc.text_column(["Bäckerei Höfli", "???", None]),
            ],
        )
        out = t.apply(rows)
        self.assertEqual([(r.index, r.reason) for r in out.rejects], [(1, "counterparty: '???' has no letters or digits")])
        self.assertEqual(out.rows.row_count, 2)
        cells = [wc.cells(c, 2) for c in out.rows.columns]
        self.assertEqual(cells, [[1, 3], ["-1000.01", "999.99"], ["Bäckerei Höfli", None], ["BAECKEREI HOEFLI", None], [True, False]])

    def test_config_errors_are_invalid_config_values(self):
        for config, needle in [
            ({"treshold": 1}, "unknown config key 'treshold'"),
            ({"amount": "betrag"}, "no column 'betrag'"),
            ({"amount": "txn_id"}, "is integer, not text"),
            ({"threshold": "high"}, "expected a number"),
            ({"payee": "amount"}, "already has a column 'amount'"),
        ]:
            with self.assertRaises(Exception) as raised:
                self.open(config)
            error = raised.exception.value
            self.assertIsInstance(error, Error_InvalidConfig)
            self.assertIn(needle, error.value)


if __name__ == "__main__":
    unittest.main()
