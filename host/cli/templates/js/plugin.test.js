// Unit tests, natively with Node: npm test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { transformer } from '../src/plugin.js';
import { cells, integerColumn, textColumn } from '../src/weir-columns.js';

const schema = {
  columns: [{ name: 'id', kind: 'integer', nullable: false }, { name: 'name', kind: 'text', nullable: true }],
  primaryKey: ['id'],
};

test('adds the length and rejects nulls', () => {
  const t = transformer.open('{"column": "name"}', schema);
  assert.equal(t.outputSchema().columns.at(-1).name, 'name_length');
  const out = t.apply({ rowCount: 3, columns: [integerColumn([1, 2, 3]), textColumn(['Zoë', null, ''])] });
  assert.deepEqual(out.rejects, [{ index: 1, reason: 'name: null' }]);
  assert.deepEqual(out.rows.columns.map((c) => cells(c, out.rows.rowCount)), [[1n, 3n], ['Zoë', ''], [3n, 0n]]);
});

test('an unknown column is invalid-config', () => {
  assert.throws(() => transformer.open('{"column": "nmae"}', schema), (e) => e.tag === 'invalid-config');
});
