// memo-categorize: a weir transform written in JavaScript.
//
// Adds a text column `category` from keywords in the memo column (see categorize.js for the
// default rules and the config). Rows no rule matches get `fallback` ("other"), or are
// rejected when `reject_unmatched` is set; a null memo counts as unmatched.
//
// Build: componentize-js src/plugin.js --wit wit --world-name transformer-plugin \
//          -d http fetch-event -o memo-categorize.wasm

import { log } from 'weir:plugin/log@0.1.0';
import { CONFIG_SCHEMA, categorize, parseConfig } from './categorize.js';
import { invalidConfig, isWeirError, other, textCells, textColumn, withoutRows } from './weir-columns.js';

const NAME = 'memo-categorize';

class Transform {
  constructor(config, input) {
    const names = input.columns.map((c) => c.name);
    this.memo = names.indexOf(config.memo);
    if (this.memo < 0) throw invalidConfig(`${NAME}: memo: no column "${config.memo}" in ${names.join(', ')}`);
    if (['integer', 'real', 'boolean', 'blob'].includes(input.columns[this.memo].kind)) {
      throw invalidConfig(`${NAME}: memo: column "${config.memo}" is ${input.columns[this.memo].kind}, not text`);
    }
    if (names.includes(config.output)) throw invalidConfig(`${NAME}: output: the input already has a column "${config.output}"`);
    this.config = config;
    this.schema = {
      columns: [...input.columns, { name: config.output, kind: 'text', nullable: false }],
      primaryKey: input.primaryKey,
    };
  }

  outputSchema() {
    return this.schema;
  }

  apply(input) {
    try {
      const { rules, fallback, reject_unmatched: rejectUnmatched } = this.config;
      const memos = textCells(input.columns[this.memo], input.rowCount);
      const categories = [];
      const rejects = [];
      memos.forEach((memo, index) => {
        const category = memo === null ? null : categorize(memo, rules);
        if (category !== null) categories.push(category);
        else if (!rejectUnmatched) categories.push(fallback);
        else rejects.push({ index, reason: `${this.config.memo}: no category matches ${JSON.stringify(memo)}` });
      });
      if (rejects.length > 0) log('debug', `${NAME}: rejected ${rejects.length} of ${input.rowCount} rows`);
      const kept = withoutRows(input, rejects.map((r) => r.index));
      return { rows: { rowCount: kept.rowCount, columns: [...kept.columns, textColumn(categories)] }, rejects };
    } catch (e) {
      // Anything but the error variant would trap the instance; report it as `other` instead.
      throw isWeirError(e) ? e : other(`${NAME}: ${e}`);
    }
  }
}

export const transformer = {
  Transform,
  describe() {
    return { name: NAME, version: '0.1.0', description: 'categorises transactions by memo keywords', configSchema: CONFIG_SCHEMA };
  },
  open(config, input) {
    let parsed;
    try {
      parsed = parseConfig(config);
    } catch (e) {
      throw isWeirError(e) ? invalidConfig(`${NAME}: ${e.val}`) : other(`${NAME}: ${e}`);
    }
    return new Transform(parsed, input);
  },
};
