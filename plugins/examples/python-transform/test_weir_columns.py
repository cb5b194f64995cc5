"""Unit tests of the column helpers, run natively: `just plugins-examples-test`."""

import unittest

from wit_world.imports.types import ColumnData_Integer, ColumnVector, Kind, Rows

import weir_columns as wc


class ColumnsTest(unittest.TestCase):
    def test_text_round_trip_with_nulls_and_non_ascii(self):
        col = wc.text_column(["Zürich", None, "", "Bern"])
        self.assertIs(type(col.data.value.data), bytes)
        self.assertEqual(col.data.value.ends, [7, 7, 7, 11])
        self.assertEqual(col.nulls, bytes([0b0010]))
        self.assertEqual(wc.text_cells(col, 4), ["Zürich", None, "", "Bern"])

    def test_ascii_fast_path_slices_the_same_values(self):
        col = wc.text_column(["a", "bc", "", "def"])
        self.assertEqual(wc.text_cells(col, 4), ["a", "bc", "", "def"])

    def test_every_list_of_bytes_is_bytes(self):
        for kind, values in [(Kind.BOOLEAN, [True, None]), (Kind.BLOB, [b"x", None]), (Kind.DATE, ["2026-01-01", None])]:
            col = wc.column(kind, values)
            self.assertIs(type(col.nulls), bytes)
            payload = col.data.value
            self.assertIs(type(payload if kind == Kind.BOOLEAN else payload.data), bytes)
        self.assertIsNone(wc.boolean_column([True, False]).nulls)

    def test_cells_of_every_storage(self):
        self.assertEqual(wc.cells(wc.column(Kind.INTEGER, [5, None]), 2), [5, None])
        self.assertEqual(wc.cells(wc.column(Kind.REAL, [0.5]), 1), [0.5])
        self.assertEqual(wc.cells(wc.boolean_column([True, False]), 2), [True, False])
        self.assertEqual(wc.cells(wc.column(Kind.BLOB, [b"\x00\xff", b""]), 2), [b"\x00\xff", b""])

    def test_without_rows_keeps_columns_and_bitmaps_in_step(self):
        rows = Rows(
            4,
            [
                wc.text_column(["a", None, "c", "d"]),
                ColumnVector(ColumnData_Integer([1, 2, 3, 4]), None),
                wc.column(Kind.INTEGER, [None, 2, None, 4]),
                wc.boolean_column([True, False, True, False]),
            ],
        )
        out = wc.without_rows(rows, [1, 2])
        self.assertEqual(out.row_count, 2)
        self.assertEqual([wc.cells(c, 2) for c in out.columns], [["a", "d"], [1, 4], [None, 4], [True, False]])
        self.assertIs(wc.without_rows(rows, []), rows)

    def test_text_cells_refuses_other_storage_with_an_error_value(self):
        with self.assertRaises(Exception) as raised:
            wc.text_cells(ColumnVector(ColumnData_Integer([1]), None), 1)
        self.assertEqual(type(raised.exception.value).__name__, "Error_BadData")


if __name__ == "__main__":
    unittest.main()
