// Columnar batch helpers for weir plugins written in JavaScript (componentize-js).
//
// A batch's `rows` hold one column vector per schema column: `{ data, nulls }`, where `data` is
// the case the column's kind calls for (`{ tag: 'text', val: { data, ends } }`,
// `{ tag: 'integer', val: BigInt64Array }`, ...) and `nulls` an optional LSB-first bitmap
// (bit i set = row i is null; `undefined` = no nulls).
//
// What these helpers get right for you:
// - lists cross as typed arrays: `list<u8>` Uint8Array, `list<u32>` Uint32Array, `list<s64>`
//   BigInt64Array, `list<f64>` Float64Array. Returning a plain Array works but is converted
//   element by element (50-80x slower); returning Numbers where BigInts belong traps;
// - 64-bit integers are BigInt (`5n`), also in scalars such as `value.integer`;
// - an error is thrown as exactly `{ tag: 'invalid-config', val: 'message' }`; throwing an
//   `Error` or a string traps the instance. Use `invalidConfig(...)` and friends.
//
// This module imports nothing from the host, so plain Node can load it in unit tests.

const decoder = new TextDecoder();
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Errors: `throw invalidConfig('...')`, never `throw new Error(...)`.

/** The configuration is wrong; the worker fails at once (not retried). */
export const invalidConfig = (message) => ({ tag: 'invalid-config', val: String(message) });
/** The batch as a whole cannot be processed; the worker fails (not retried). */
export const badData = (message) => ({ tag: 'bad-data', val: String(message) });
/** Something is temporarily unavailable; retried with backoff. */
export const unavailable = (message) => ({ tag: 'unavailable', val: String(message) });
/** Anything else; retried within the restart budget. */
export const other = (message) => ({ tag: 'other', val: String(message) });

/** Whether `e` is already one of the contract's error cases. */
export function isWeirError(e) {
  return e !== null && typeof e === 'object'
    && ['invalid-config', 'unavailable', 'access-denied', 'bad-data', 'other'].includes(e.tag)
    && typeof e.val === 'string';
}

// ---------------------------------------------------------------------------------------------
// Null bitmaps.

/** Whether bit `row` of an LSB-first bitmap is set (`undefined` = no nulls). */
export function isNull(nulls, row) {
  return nulls !== undefined && ((nulls[row >> 3] >> (row & 7)) & 1) === 1;
}

/** The LSB-first bitmap of an array of flags, or `undefined` when none is set. */
export function nullBitmap(flags) {
  let out;
  for (let i = 0; i < flags.length; i++) {
    if (flags[i]) {
      out ??= new Uint8Array((flags.length + 7) >> 3);
      out[i >> 3] |= 1 << (i & 7);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading columns.

/** The values of a var-width buffer as Uint8Array views, one per row. */
export function varWidthValues({ data, ends }) {
  const out = new Array(ends.length);
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    out[i] = data.subarray(start, ends[i]);
    start = ends[i];
  }
  return out;
}

/** The values of a text buffer as strings, one per row (null rows read as ''). */
export function textValues({ data, ends }) {
  const out = new Array(ends.length);
  const whole = decoder.decode(data);
  // Only all-ASCII text decodes to as many UTF-16 units as it has bytes: then byte offsets
  // are string offsets, and one decode serves every row.
  const ascii = whole.length === data.length;
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    out[i] = ascii ? whole.slice(start, ends[i]) : decoder.decode(data.subarray(start, ends[i]));
    start = ends[i];
  }
  return out;
}

/**
 * Every cell of a column as a JS value, `null` for null: string for text-stored kinds (text,
 * decimal, date, timestamp, json), bigint, number, boolean or Uint8Array.
 */
export function cells(column, rowCount) {
  const { tag, val } = column.data;
  let values;
  switch (tag) {
    case 'text': values = textValues(val); break;
    case 'blob': values = varWidthValues(val); break;
    case 'boolean': values = Array.from(val, (b) => b !== 0); break;
    default: values = Array.from(val); // integer (bigint) or real (number)
  }
  if (column.nulls !== undefined) {
    for (let i = 0; i < rowCount; i++) if (isNull(column.nulls, i)) values[i] = null;
  }
  return values;
}

/** The cells of a text-stored column; throws `bad-data` for another storage. */
export function textCells(column, rowCount) {
  if (column.data.tag !== 'text') throw badData(`expected a text column, got ${column.data.tag}`);
  return cells(column, rowCount);
}

// ---------------------------------------------------------------------------------------------
// Building columns.

/** A var-width buffer of Uint8Array values. */
export function varWidth(values) {
  const ends = new Uint32Array(values.length);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    total += values[i].length;
    ends[i] = total;
  }
  const data = new Uint8Array(total);
  let offset = 0;
  for (const v of values) {
    data.set(v, offset);
    offset += v.length;
  }
  return { data, ends };
}

/** A text buffer of strings. */
export function textVarWidth(strings) {
  const joined = strings.join('');
  const data = encoder.encode(joined);
  if (data.length !== joined.length) return varWidth(strings.map((s) => encoder.encode(s)));
  // All ASCII: one encode, and string lengths are byte lengths.
  const ends = new Uint32Array(strings.length);
  let total = 0;
  for (let i = 0; i < strings.length; i++) {
    total += strings[i].length;
    ends[i] = total;
  }
  return { data, ends };
}

/** The storage (`column-data` case) a kind uses. */
export function storageOf(kind) {
  return ['integer', 'real', 'boolean', 'blob'].includes(kind) ? kind : 'text';
}

/**
 * A column of `kind` ('text', 'integer', 'decimal', ...) from JS values, `null` or
 * `undefined` for null (its slot becomes 0 or empty). Integers may be given as numbers.
 */
export function column(kind, values) {
  const n = values.length;
  const nulls = nullBitmap(values.map((v) => v === null || v === undefined));
  let data;
  switch (storageOf(kind)) {
    case 'integer': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = values[i] == null ? 0n : BigInt(values[i]);
      data = { tag: 'integer', val: out };
      break;
    }
    case 'real': data = { tag: 'real', val: Float64Array.from(values, (v) => (v == null ? 0 : Number(v))) }; break;
    case 'boolean': data = { tag: 'boolean', val: Uint8Array.from(values, (v) => (v ? 1 : 0)) }; break;
    case 'blob': data = { tag: 'blob', val: varWidth(values.map((v) => v ?? new Uint8Array(0))) }; break;
    default: data = { tag: 'text', val: textVarWidth(values.map((v) => (v == null ? '' : String(v)))) };
  }
  return { data, nulls };
}

/** A text column; `null` is null. */
export const textColumn = (values) => column('text', values);
/** A boolean column, one byte per row; `null` is null. */
export const booleanColumn = (values) => column('boolean', values);
/** An integer column (BigInt64Array); numbers are converted; `null` is null. */
export const integerColumn = (values) => column('integer', values);
/** A real column (Float64Array); `null` is null. */
export const realColumn = (values) => column('real', values);

// ---------------------------------------------------------------------------------------------
// Dropping rows (rejected rows are not in a transform's output).

/** The rows `keep` (ascending indexes) of a column, of whatever storage. */
export function take(col, keep) {
  const { tag, val } = col.data;
  let data;
  if (tag === 'text' || tag === 'blob') {
    const values = varWidthValues(val);
    data = { tag, val: varWidth(keep.map((i) => values[i])) };
  } else {
    const out = new val.constructor(keep.length); // same typed array type
    keep.forEach((from, to) => { out[to] = val[from]; });
    data = { tag, val: out };
  }
  const nulls = col.nulls === undefined ? undefined : nullBitmap(keep.map((i) => isNull(col.nulls, i)));
  return { data, nulls };
}

/** `rows` without the rows at the `rejected` indexes, every column in step. */
export function withoutRows(rows, rejected) {
  if (rejected.length === 0) return rows;
  const drop = new Set(rejected);
  const keep = [];
  for (let i = 0; i < rows.rowCount; i++) if (!drop.has(i)) keep.push(i);
  return { rowCount: keep.length, columns: rows.columns.map((c) => take(c, keep)) };
}
