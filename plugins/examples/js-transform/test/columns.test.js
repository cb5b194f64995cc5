// Unit tests of the column helpers, run natively by Node: `just plugins-examples-test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  booleanColumn, cells, column, integerColumn, invalidConfig, isWeirError, nullBitmap, textCells, textColumn, withoutRows,
} from '../src/weir-columns.js';

test('text round trip with nulls and non-ASCII', () => {
  const col = textColumn(['Zürich', null, '', 'Bern']);
  assert.ok(col.data.val.data instanceof Uint8Array);
  assert.ok(col.data.val.ends instanceof Uint32Array);
  assert.deepEqual(Array.from(col.data.val.ends), [7, 7, 7, 11]);
  assert.deepEqual(Array.from(col.nulls), [0b0010]);
  assert.deepEqual(textCells(col, 4), ['Zürich', null, '', 'Bern']);
  assert.deepEqual(textCells(textColumn(['a', 'bc', '', 'def']), 4), ['a', 'bc', '', 'def']);
});

test('lists are typed arrays and 64-bit integers are BigInt', () => {
  const ints = integerColumn([1, null, 2n ** 62n]);
  assert.ok(ints.data.val instanceof BigInt64Array);
  assert.deepEqual(cells(ints, 3), [1n, null, 2n ** 62n]);
  assert.ok(column('real', [0.5]).data.val instanceof Float64Array);
  assert.ok(booleanColumn([true, false]).data.val instanceof Uint8Array);
  assert.equal(booleanColumn([true, false]).nulls, undefined);
  assert.equal(nullBitmap([false, false]), undefined);
  assert.deepEqual(cells(column('blob', [new Uint8Array([0, 255])]), 1), [new Uint8Array([0, 255])]);
});

test('withoutRows keeps columns and bitmaps in step', () => {
  const rows = {
    rowCount: 4,
    columns: [textColumn(['a', null, 'c', 'd']), integerColumn([1, 2, 3, 4]), integerColumn([null, 2, null, 4]), booleanColumn([true, false, true, false])],
  };
  const out = withoutRows(rows, [1, 2]);
  assert.equal(out.rowCount, 2);
  assert.deepEqual(out.columns.map((c) => cells(c, 2)), [['a', 'd'], [1n, 4n], [null, 4n], [true, false]]);
  assert.equal(withoutRows(rows, []), rows);
});

test('errors are the contract variant', () => {
  assert.deepEqual(invalidConfig('x'), { tag: 'invalid-config', val: 'x' });
  assert.ok(isWeirError(invalidConfig('x')));
  assert.ok(!isWeirError(new Error('x')));
  assert.throws(() => textCells(integerColumn([1]), 1), (e) => e.tag === 'bad-data');
});
