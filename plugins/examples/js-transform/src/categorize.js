// The plugin's logic, free of host imports so that Node can unit-test it.

import { invalidConfig } from './weir-columns.js';

/** First matching rule wins; keywords match anywhere in the memo, ignoring case. */
export const DEFAULT_RULES = [
  { category: 'salary', keywords: ['gehalt', 'lohn'] },
  { category: 'rent', keywords: ['miete'] },
  { category: 'utilities', keywords: ['strom', 'wasser'] },
  { category: 'fees', keywords: ['gebühr'] },
  { category: 'refund', keywords: ['rückerstattung', 'storno', 'gutschrift'] },
  { category: 'cash', keywords: ['bar-einzahlung', 'bareinzahlung', 'geldautomat'] },
  { category: 'invoice', keywords: ['rechnung'] },
  { category: 'transfer', keywords: ['überweisung'] },
];

const DEFAULTS = { memo: 'memo', output: 'category', rules: DEFAULT_RULES, fallback: 'other', reject_unmatched: false };

export const CONFIG_SCHEMA = JSON.stringify({
  type: 'object',
  additionalProperties: false,
  properties: {
    memo: { type: 'string', default: DEFAULTS.memo, description: 'the text column to search' },
    output: { type: 'string', default: DEFAULTS.output, description: 'the category column to add' },
    rules: {
      type: 'array',
      description: 'tried in order; the first rule with a keyword in the memo wins',
      items: {
        type: 'object',
        required: ['category', 'keywords'],
        additionalProperties: false,
        properties: { category: { type: 'string' }, keywords: { type: 'array', items: { type: 'string' } } },
      },
    },
    fallback: { type: 'string', default: DEFAULTS.fallback, description: 'category of a memo no rule matches' },
    reject_unmatched: { type: 'boolean', default: false, description: 'reject such rows instead' },
  },
});

/** Parse and check the JSON config; throws `invalid-config` naming the key. */
export function parseConfig(json) {
  let raw;
  try {
    raw = JSON.parse(json || '{}');
  } catch (e) {
    throw invalidConfig(`config is not JSON: ${e.message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalidConfig('config must be a table');
  for (const key of Object.keys(raw)) {
    if (!(key in DEFAULTS)) throw invalidConfig(`unknown config key "${key}"; expected one of ${Object.keys(DEFAULTS).join(', ')}`);
  }
  const config = { ...DEFAULTS, ...raw };
  for (const key of ['memo', 'output', 'fallback']) {
    if (typeof config[key] !== 'string') throw invalidConfig(`${key}: expected a string`);
  }
  if (typeof config.reject_unmatched !== 'boolean') throw invalidConfig('reject_unmatched: expected true or false');
  if (!Array.isArray(config.rules)) throw invalidConfig('rules: expected a list of { category, keywords }');
  config.rules = config.rules.map((rule, i) => {
    if (typeof rule?.category !== 'string' || !Array.isArray(rule.keywords)
        || !rule.keywords.every((k) => typeof k === 'string' && k.length > 0)) {
      throw invalidConfig(`rules[${i}]: expected { category = "...", keywords = ["...", ...] }`);
    }
    return compileRule(rule);
  });
  return config;
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A rule with one case-insensitive regular expression for all its keywords. */
export function compileRule({ category, keywords }) {
  return { category, keywords, pattern: new RegExp(keywords.map(escapeRegExp).join('|'), 'iu') };
}

/** The category of one memo, or `null` when no rule matches. */
export function categorize(memo, rules) {
  // One regular expression per rule: the regex engine is native code, the JS loop is not.
  for (const rule of rules) if (rule.pattern.test(memo)) return rule.category;
  return null;
}
