// Unit tests of the plugin's logic, run natively by Node: `just plugins-examples-test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { categorize, parseConfig } from '../src/categorize.js';

test('default rules categorise the bank-recon memos', () => {
  const cases = {
    'Miete März': 'rent',
    'Gehalt\nZusatz: Prämie': 'salary',
    'Lastschrift Strom; Abschlag': 'utilities',
    'GEBÜHREN Kontoführung': 'fees',
    'Rückerstattung\nBeleg 12; Storno': 'refund',
    'Bar-Einzahlung': 'cash',
    'Rechnung Nr. 4711': 'invoice',
    'Überweisung "dringend"': 'transfer',
    'Kaffee': null,
  };
  for (const [memo, category] of Object.entries(cases)) assert.equal(categorize(memo, parseConfig('{}').rules), category, memo);
});

test('config: defaults, custom rules, and invalid-config errors naming the key', () => {
  assert.equal(parseConfig('{}').fallback, 'other');
  const config = parseConfig(JSON.stringify({ rules: [{ category: 'coffee', keywords: ['KAFFEE'] }], reject_unmatched: true }));
  assert.equal(categorize('Kaffee', config.rules), 'coffee');
  for (const [json, needle] of [
    ['{"rule": []}', 'unknown config key "rule"'],
    ['{"rules": [{"category": "x"}]}', 'rules[0]'],
    ['{"reject_unmatched": "yes"}', 'reject_unmatched'],
    ['[1]', 'must be a table'],
    ['{', 'not JSON'],
  ]) {
    assert.throws(() => parseConfig(json), (e) => e.tag === 'invalid-config' && e.val.includes(needle), json);
  }
});
