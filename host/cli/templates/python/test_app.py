"""Unit tests, natively with CPython: ./build.sh --test"""

import unittest

from wit_world.imports.types import Column, Error_InvalidConfig, Kind, Rows, Schema

import app
import weir_columns as wc

SCHEMA = Schema([Column("id", Kind.INTEGER, False), Column("name", Kind.TEXT, True)], ["id"])


class TransformTest(unittest.TestCase):
    def test_adds_the_length_and_rejects_nulls(self):
        t = app.Transformer().open('{"column": "name"}', SCHEMA)
        self.assertEqual(t.output_schema().columns[-1].name, "name_length")
        rows = Rows(3, [wc.column(Kind.INTEGER, [1, 2, 3]), wc.text_column(["Zoë", None, ""])])
        out = t.apply(rows)
        self.assertEqual([(r.index, r.reason) for r in out.rejects], [(1, "name: null")])
        self.assertEqual([wc.cells(c, out.rows.row_count) for c in out.rows.columns], [[1, 3], ["Zoë", ""], [3, 0]])

    def test_unknown_column_is_invalid_config(self):
        with self.assertRaises(Exception) as raised:
            app.Transformer().open('{"column": "nmae"}', SCHEMA)
        self.assertIsInstance(raised.exception.value, Error_InvalidConfig)


if __name__ == "__main__":
    unittest.main()
