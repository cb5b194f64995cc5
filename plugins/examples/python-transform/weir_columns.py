"""Columnar batch helpers for weir plugins written in Python (componentize-py).

A batch's `rows` hold one `ColumnVector` per schema column: the values in the `ColumnData`
case the column's kind calls for, plus an optional LSB-first null bitmap (bit i set = row i is
null). Text and blobs are var-width: one byte buffer plus the end offset of each value.

Two traps these helpers avoid for you:

* every `list<u8>` of the contract (var-width `data`, null bitmaps, boolean columns) must be
  returned as exactly `bytes`; a `bytearray` or a list of ints traps the instance;
* an exception that is not `Err(<error case>)` traps too: raise `invalid_config(...)`,
  `bad_data(...)` and friends instead.

Integers, reals and offsets cross as Python lists, element by element (about 0.3 us each way),
so pass columns you do not change through untouched rather than decoding and re-encoding them.
"""

from itertools import accumulate
from typing import Any, List, Optional, Sequence

from componentize_py_types import Err
from wit_world.imports.types import (
    ColumnData_Blob,
    ColumnData_Boolean,
    ColumnData_Integer,
    ColumnData_Real,
    ColumnData_Text,
    ColumnVector,
    Error_BadData,
    Error_InvalidConfig,
    Error_Other,
    Error_Unavailable,
    Kind,
    Rows,
    VarWidth,
)

# ---------------------------------------------------------------------------------------------
# Errors: raise these, never a plain exception.


def invalid_config(message: str) -> Err:
    """The configuration is wrong; the worker fails at once (not retried)."""
    return Err(Error_InvalidConfig(message))


def bad_data(message: str) -> Err:
    """The batch as a whole cannot be processed; the worker fails (not retried)."""
    return Err(Error_BadData(message))


def unavailable(message: str) -> Err:
    """Something is temporarily unavailable; retried with backoff."""
    return Err(Error_Unavailable(message))


def other(message: str) -> Err:
    """Anything else; retried within the restart budget."""
    return Err(Error_Other(message))


# ---------------------------------------------------------------------------------------------
# Null bitmaps.


def is_null(nulls: Optional[bytes], row: int) -> bool:
    """Whether bit `row` of an LSB-first bitmap is set (`None` = no nulls)."""
    return nulls is not None and (nulls[row >> 3] >> (row & 7)) & 1 == 1


def null_flags(col: ColumnVector, row_count: int) -> List[bool]:
    """One flag per row: True where the cell is null."""
    nulls = col.nulls
    if nulls is None:
        return [False] * row_count
    return [(nulls[i >> 3] >> (i & 7)) & 1 == 1 for i in range(row_count)]


def null_bitmap(flags: Sequence[bool]) -> Optional[bytes]:
    """The LSB-first bitmap of `flags`, or `None` when no flag is set."""
    if not any(flags):
        return None
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)  # never the bytearray itself


# ---------------------------------------------------------------------------------------------
# Reading columns.


def var_width_values(vw: VarWidth) -> List[bytes]:
    """The values of a var-width buffer as `bytes`, one per row."""
    data, ends = vw.data, vw.ends
    return [data[s:e] for s, e in zip([0, *ends[:-1]], ends)]


def text_values(vw: VarWidth) -> List[str]:
    """The values of a text buffer as `str`, one per row (null rows read as "")."""
    data, ends = vw.data, vw.ends
    starts = [0, *ends[:-1]]
    if data.isascii():
        # Byte offsets are character offsets: decode once, then slice.
        text = data.decode("ascii")
        return [text[s:e] for s, e in zip(starts, ends)]
    return [data[s:e].decode() for s, e in zip(starts, ends)]


def cells(col: ColumnVector, row_count: int) -> List[Any]:
    """Every cell of a column as a Python value or `None` for null: `str` for text-stored
    kinds (text, decimal, date, timestamp, json), `int`, `float`, `bool` or `bytes`."""
    data = col.data
    if isinstance(data, ColumnData_Text):
        values: List[Any] = text_values(data.value)
    elif isinstance(data, ColumnData_Blob):
        values = var_width_values(data.value)
    elif isinstance(data, ColumnData_Boolean):
        values = [b != 0 for b in data.value]
    else:  # integer or real: already a list
        values = list(data.value)
    if col.nulls is None:
        return values
    return [None if null else v for v, null in zip(values, null_flags(col, row_count))]


def text_cells(col: ColumnVector, row_count: int) -> List[Optional[str]]:
    """The cells of a text-stored column (text, decimal, date, timestamp, json)."""
    if not isinstance(col.data, ColumnData_Text):
        raise bad_data(f"expected a text column, got {type(col.data).__name__}")
    return cells(col, row_count)


# ---------------------------------------------------------------------------------------------
# Building columns.


def var_width(values: Sequence[bytes]) -> VarWidth:
    """A var-width buffer of byte values."""
    return VarWidth(b"".join(values), list(accumulate(map(len, values))))


def text_var_width(values: Sequence[str]) -> VarWidth:
    """A text buffer of `str` values."""
    return var_width([v.encode() for v in values])


def column(kind: Kind, values: Sequence[Any]) -> ColumnVector:
    """A column of `kind` from Python values, `None` for null (its slot becomes 0 or empty)."""
    flags = [v is None for v in values]
    nulls = null_bitmap(flags)
    if kind == Kind.INTEGER:
        data: Any = ColumnData_Integer([0 if v is None else int(v) for v in values])
    elif kind == Kind.REAL:
        data = ColumnData_Real([0.0 if v is None else float(v) for v in values])
    elif kind == Kind.BOOLEAN:
        data = ColumnData_Boolean(bytes(1 if v else 0 for v in values))
    elif kind == Kind.BLOB:
        data = ColumnData_Blob(var_width([b"" if v is None else bytes(v) for v in values]))
    else:
        data = ColumnData_Text(text_var_width(["" if v is None else str(v) for v in values]))
    return ColumnVector(data, nulls)


def text_column(values: Sequence[Optional[str]]) -> ColumnVector:
    """A text-stored column; `None` is null."""
    return column(Kind.TEXT, values)


def boolean_column(values: Sequence[Optional[bool]]) -> ColumnVector:
    """A boolean column, one byte per row; `None` is null."""
    return column(Kind.BOOLEAN, values)


# ---------------------------------------------------------------------------------------------
# Dropping rows (rejected rows are not in a transform's output).


def take(col: ColumnVector, keep: Sequence[int]) -> ColumnVector:
    """The rows `keep` (indexes, ascending) of a column, of whatever kind."""
    data = col.data
    if isinstance(data, (ColumnData_Text, ColumnData_Blob)):
        values = var_width_values(data.value)
        new_data: Any = type(data)(var_width([values[i] for i in keep]))
    elif isinstance(data, ColumnData_Boolean):
        new_data = ColumnData_Boolean(bytes(data.value[i] for i in keep))
    else:
        new_data = type(data)([data.value[i] for i in keep])
    nulls = None
    if col.nulls is not None:
        nulls = null_bitmap([is_null(col.nulls, i) for i in keep])
    return ColumnVector(new_data, nulls)


def without_rows(rows: Rows, rejected: Sequence[int]) -> Rows:
    """`rows` minus the rows at the `rejected` indexes, every column in step."""
    if not rejected:
        return rows
    drop = set(rejected)
    keep = [i for i in range(rows.row_count) if i not in drop]
    return Rows(len(keep), [take(c, keep) for c in rows.columns])
