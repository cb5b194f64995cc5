// {{name}}: a weir transform written in JavaScript. {{description}}
//
// Adds an integer column `<column>_length`: the number of characters of the text in `column`.
// Rows where that text is null are rejected.
//
// Config: `column` (required), the text column to measure.
//
// Build: npm ci && npm run build   (componentize-js, output dist/{{name}}.wasm)
// Test:  npm test                  (test/, natively with Node)
//
// The host's imports (`import { log } from 'weir:plugin/log@0.1.0'`) exist only inside weir;
// keep them out of the modules your tests import.

import { integerColumn, invalidConfig, textCells, withoutRows } from './weir-columns.js';

const NAME = '{{name}}';
const CONFIG_SCHEMA = JSON.stringify({
  type: 'object',
  additionalProperties: false,
  required: ['column'],
  properties: { column: { type: 'string', description: 'the text column to measure' } },
});

class Transform {
  constructor(input, column) {
    this.column = column;
    this.name = input.columns[column].name;
    this.schema = {
      columns: [...input.columns, { name: `${this.name}_length`, kind: 'integer', nullable: false }],
      primaryKey: input.primaryKey,
    };
  }

  outputSchema() {
    return this.schema;
  }

  apply(input) {
    const texts = textCells(input.columns[this.column], input.rowCount);
    const lengths = [];
    const rejects = [];
    texts.forEach((text, index) => {
      // A reject drops this row only; the host records it with its source position.
      if (text === null) rejects.push({ index, reason: `${this.name}: null` });
      else lengths.push([...text].length);
    });
    const kept = withoutRows(input, rejects.map((r) => r.index));
    // 64-bit integers are BigInt: integerColumn builds a BigInt64Array.
    return { rows: { rowCount: kept.rowCount, columns: [...kept.columns, integerColumn(lengths)] }, rejects };
  }
}

export const transformer = {
  Transform,
  describe() {
    return { name: NAME, version: '0.1.0', description: '{{description}}', configSchema: CONFIG_SCHEMA };
  },
  open(config, input) {
    // Only `{ tag, val }` error values may be thrown: anything else traps the instance.
    let column;
    try {
      column = JSON.parse(config).column;
    } catch {
      column = undefined;
    }
    if (typeof column !== 'string') throw invalidConfig(`${NAME}: config needs \`column\`, the text column to measure`);
    const index = input.columns.findIndex((c) => c.name === column);
    if (index < 0) throw invalidConfig(`${NAME}: no column "${column}" in ${input.columns.map((c) => c.name).join(', ')}`);
    if (['integer', 'real', 'boolean', 'blob'].includes(input.columns[index].kind)) {
      throw invalidConfig(`${NAME}: column "${column}" is not text`);
    }
    return new Transform(input, index);
  },
};
