import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { CsvText } from '../src/formats/csv-text.js';
import { escapeFormula } from '../src/formats/csv-text.js';
import { keyText } from '../src/formats/key-values.js';
import { formatPredictions } from '../src/formats/csv-write.js';
import type { OutputValues } from '../src/model/scorer.js';
import { ColumnKeys } from '../src/formats/batch.js';
import { formatFloat32 } from '../src/formats/numbers.js';
import { rng } from '../src/demo/churn-data.js';

const text = () => new CsvText(16, 0x2c, /[",\r\n]/);

describe('CSV text for prediction parts', () => {
  it('prints every float32 as formatFloat32 does: random bit patterns, powers of ten and their neighbours, extremes', () => {
    const next = rng(7);
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const values: number[] = [0, -0, NaN, Infinity, -Infinity, 1, -1, 0.5, 3.4028234663852886e38, 1.401298464324817e-45, 1.1754943508222875e-38];
    for (let i = 0; i < 300_000; i++) {
      u32[0] = Math.floor(next() * 2 ** 32);
      values.push(f32[0] as number);
    }
    for (let e = -45; e <= 38; e++) {
      f32[0] = Number(`1e${e}`);
      for (let d = -3; d <= 3; d++) {
        const at = new Float32Array(1);
        new Uint32Array(at.buffer)[0] = (u32[0] as number) + d;
        values.push(at[0] as number);
      }
    }
    // Short mantissas: powers of two (where the spacing below halves), integers near 2^24 and
    // 2^25 (where the midpoints between neighbours are themselves short decimals), and the
    // ulps around each: where reading back is decided at the edge of the rounding interval.
    const around = (v: number, ulps: number) => {
      f32[0] = v;
      for (let d = -ulps; d <= ulps; d++) {
        const at = new Float32Array(1);
        new Uint32Array(at.buffer)[0] = (u32[0] as number) + d;
        values.push(at[0] as number);
      }
    };
    for (let b = -60; b <= 90; b++) for (const scale of [1, 1.5, 1.25, 1.75]) around(scale * 2 ** b, 3);
    for (const b of [24, 25, 26, 27]) around(2 ** b, 300);
    // Near a tie at 8 digits, where 10^k is no longer exact (found by sweeping every float32
    // from 2^100 to 1e31; once printed with 9 digits).
    values.push(1.4545597500000256e30, 1.4745644500000987e30, 1.6523516499999928e30, 1.6723563500000658e30, 1.85014354999996e30);
    // Probabilities, what models mostly print: dense in (0, 1).
    for (let i = 0; i < 200_000; i++) values.push(Math.fround(next()));
    const out = text();
    for (const v of values) {
      out.float32(v);
      out.endRow();
    }
    const lines = out.bytes().toString('latin1').split('\n');
    lines.pop();
    const mismatches = values.map((v, i) => [formatFloat32(v), lines[i]]).filter(([a, b]) => a !== b);
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(lines.length).toBe(values.length);
  });

  it('prints integers (int64 labels included) as String() does', () => {
    const next = rng(9);
    const values: Array<number | bigint> = [0, -0, 1, -1, 9, 10, 2 ** 53 - 1, -(2 ** 53) + 1, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, -(2n ** 53n) - 1n, 0n, -5n];
    for (let i = 0; i < 10_000; i++) {
      const n = Math.floor((next() - 0.5) * 10 ** Math.floor(next() * 16));
      values.push(n, BigInt(n));
    }
    const out = text();
    for (const v of values) {
      out.integer(v);
      out.endRow();
    }
    expect(out.bytes().toString('latin1')).toBe(values.map((v) => `${String(v)}\n`).join(''));
  });

  it('quotes text cells exactly as csv-stringify does', () => {
    const next = rng(3);
    const parts = ['a', 'é', '日本', ',', '"', '\n', '\r', ' ', "'", '=1', '', '-'];
    const cells = Array.from({ length: 20_000 }, () => Array.from({ length: Math.floor(next() * 5) }, () => parts[Math.floor(next() * parts.length)]).join(''));
    const out = text();
    for (let i = 0; i < cells.length; i += 2) {
      out.text(cells[i] as string);
      out.separator();
      out.text(cells[i + 1] as string);
      out.endRow();
    }
    const rows = [];
    for (let i = 0; i < cells.length; i += 2) rows.push([cells[i], cells[i + 1]]);
    expect(out.bytes().toString('utf8')).toBe(stringify(rows));
  });

  it('writes cells given as bytes exactly as the same text, with and without formula escaping', () => {
    const next = rng(4);
    const parts = ['a', 'é', ',', '"', '\n', '\r', '=', '+', '-', '@', '\t', ' ', "'"];
    for (const escapeFormulas of [false, true]) {
      const viaText = text();
      const viaBytes = text();
      for (let i = 0; i < 20_000; i++) {
        const cell = Array.from({ length: Math.floor(next() * 4) }, () => parts[Math.floor(next() * parts.length)]).join('');
        viaText.text(escapeFormulas ? escapeFormula(cell) : cell);
        const bytes = Buffer.from(`xx${cell}yy`);
        viaBytes.textBytes(bytes, 2, bytes.length - 2, escapeFormulas);
        viaText.endRow();
        viaBytes.endRow();
      }
      expect(viaBytes.bytes().toString('utf8')).toBe(viaText.bytes().toString('utf8'));
    }
  });
});

describe('prediction rows', () => {
  it('match csv-stringify with formatFloat32 for every output type, delimiter and formula setting', () => {
    const next = rng(5);
    const rows = 500;
    const f32 = Float32Array.from({ length: rows * 2 }, () => Math.fround((next() - 0.5) * 10 ** Math.floor(next() * 12 - 6)));
    const f64 = Float64Array.from({ length: rows }, () => (next() - 0.5) * 1e3);
    const i64 = BigInt64Array.from({ length: rows }, () => BigInt(Math.floor(next() * 2e9) - 1e9));
    const bools = Uint8Array.from({ length: rows }, () => (next() < 0.5 ? 1 : 0));
    const labels = Array.from({ length: rows }, (_, r) => ['yes', '=cmd', 'a;b', 'x,y', '-1'][r % 5] as string);
    const outputs = [
      { columns: { output: 'p', type: 'float32', names: ['p0', 'p1'] }, data: f32 },
      { columns: { output: 'd', type: 'float64', names: ['d'] }, data: f64 },
      { columns: { output: 'l', type: 'int64', names: ['l'] }, data: i64 },
      { columns: { output: 'b', type: 'bool', names: ['b'] }, data: bools },
      { columns: { output: 's', type: 'string', names: ['s'] }, data: labels },
    ] as unknown as OutputValues[];
    const keys = Array.from({ length: rows }, (_, r) => [`k${r}`, ['+1', 'x;y', '"q"', 'é', ''][r % 5], r % 7 === 0 ? null : r]);
    for (const delimiter of [',', ';', '\t', '.']) {
      for (const escapeFormulas of [false, true]) {
        const esc = (t: string) => (escapeFormulas ? escapeFormula(t) : t);
        // An empty-string key is written `""`, a null key as an empty cell (docs/output.md, "Keys"):
        // csv-stringify writes both empty, so the empty string goes through as a stand-in.
        const EMPTY = '\u0001empty\u0001';
        const expected = stringify(
          keys.map((key, r) => [
            ...key.map((k) => (k === '' ? EMPTY : esc(keyText(k)))),
            formatFloat32(f32[2 * r] as number),
            formatFloat32(f32[2 * r + 1] as number),
            String(f64[r]),
            String(i64[r]),
            bools[r] ? 'true' : 'false',
            esc(labels[r] as string),
          ]),
          { delimiter },
        ).replaceAll(EMPTY, '""');
        const keyColumns = [0, 1, 2].map((k) => keys.map((key) => key[k]));
        const batchKeys = new ColumnKeys(keyColumns, Int32Array.from({ length: rows }, (_, r) => r));
        expect(formatPredictions(batchKeys, 3, outputs, rows, { delimiter, escapeFormulas }).toString('utf8')).toBe(expected);
      }
    }
  });
});
