import { Readable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { openCsv } from '../src/formats/csv-read.js';
import { scanLayout } from '../src/formats/csv-scan.js';
import { float32Columns, scanColumns } from './support/columns.js';
import { parseFeature } from '../src/formats/numbers.js';
import { BatchBuilder, mapColumns } from '../src/formats/batch.js';
import { rng } from '../src/demo/churn-data.js';

/**
 * The byte-level scanner against csv-parse, the parser it replaced: thousands of randomly
 * generated tricky files (quotes, doubled quotes, quoted delimiters and newlines, BOM, CRLF
 * and CR line ends, blank lines, ragged rows, odd numbers, non-ASCII, malformed quoting),
 * each fed to the scanner in random pieces. Both sides must agree on every row: its key,
 * its float32 features bit for bit, or its reject line and reason, or the error.
 */

const FEATURES = ['a', 'b', 'c'];
const KEYS = ['id'];

/** Accepted rows (key and float32 features) and rejects (line, key, reason), each in file order; or the error. */
type Outcome = { rows: string[]; rejects: string[]; error?: string };

/** What the previous reader (csv-parse + the per-row checks it fed) made of a file. */
function reference(bytes: Buffer, delimiter = ','): Outcome {
  const out: Outcome = { rows: [], rejects: [] };
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(bytes, { bom: true, delimiter, skip_empty_lines: true, relax_column_count: true, info: true, max_record_size: 1 << 20 }) as unknown as typeof records;
  } catch (err) {
    // csv-parse's line drifts after a quoted line break (see below), and a failed parse
    // returns no records to correct it by: compare the line only where nothing drifts.
    const e = err as { code: string; lines: number };
    const drifts = /"[^"]*[\r\n]/.test(bytes.toString('latin1'));
    return { rows: [], rejects: [], error: `${e.code.replace(/^(?!CSV_)/, 'CSV_')}@${drifts ? '?' : e.lines}` };
  }
  const [head, ...rest] = records;
  if (!head) return { ...out, error: 'INPUT_EMPTY' };
  let columns;
  try {
    columns = mapColumns(head.record.map((h) => h.trim()), FEATURES, KEYS, 'x.csv');
  } catch (err) {
    return { ...out, error: (err as { code: string }).code };
  }
  // A line is what an editor (or wc -l) counts: LF, or CR in CR files. csv-parse counts
  // every CR and LF inside quoted fields as a line, so its numbers drift after a quoted
  // CRLF; `drift` undoes that to give the line each record starts on.
  const eol = /^[^\n"]*\r(?!\n)/.test(bytes.toString('latin1')) ? '\r' : '\n';
  const count = (text: string, re: RegExp) => text.match(re)?.length ?? 0;
  let drift = 0;
  for (const { record, info } of rest) {
    const text = record.join('');
    const counted = count(text, /[\r\n]/g);
    const line = info.lines - counted - drift;
    drift += counted - count(text, eol === '\r' ? /\r/g : /\n/g);
    const key = columns.keys.map((k) => record[k] ?? '').join('|');
    if (record.length !== columns.width) {
      out.rejects.push(`${line} ${key}: expected ${columns.width} fields, got ${record.length}`);
      continue;
    }
    const values: number[] = [];
    let reason: string | undefined;
    for (const [j, at] of columns.features.entries()) {
      const parsed = parseFeature(record[at] as string);
      if (!parsed.ok) {
        reason = `column ${FEATURES[j]}: ${parsed.reason}`;
        break;
      }
      values.push(parsed.value);
    }
    if (reason) out.rejects.push(`${line} ${key}: ${reason}`);
    else out.rows.push(`${key} ${values.map(bits).join(' ')}`);
  }
  return out;
}

/** What the scanner makes of the same bytes, fed in the given pieces, in batches of `batchRows` rows. */
async function scanned(pieces: Buffer[], batchRows = 7, delimiter = ','): Promise<Outcome> {
  const out: Outcome = { rows: [], rejects: [] };
  try {
    const csv = await openCsv(Readable.from(pieces), { source: 'x.csv', delimiter, maxRecordBytes: 1 << 20 });
    const columns = mapColumns(csv.header.names, FEATURES, KEYS, 'x.csv');
    const layout = scanLayout(columns.width, scanColumns(columns.features), columns.keys, FEATURES);
    const builder = new BatchBuilder(float32Columns(FEATURES), batchRows, 'x.csv', KEYS.length, layout.textColumn);
    const drain = (full: BatchBuilder) => {
      const batch = full.take();
      for (let r = 0; r < batch.rows; r++) {
        out.rows.push(`${batch.keys.value(r, 0)} ${Array.from(batch.features.subarray(r * 3, r * 3 + 3), bits).join(' ')}`);
      }
      for (const r of full.takeRejects()) out.rejects.push(`${r.line} ${r.key.join('|')}: ${r.reason}`);
    };
    for await (const full of csv.scan(layout, builder)) drain(full);
    drain(builder);
  } catch (err) {
    const e = err as { code: string; cause?: { code: string; line: number } };
    const drifts = /"[^"]*[\r\n]/.test(Buffer.concat(pieces).toString('latin1'));
    return { rows: [], rejects: [], error: e.cause ? `${e.cause.code}@${drifts ? '?' : e.cause.line}` : e.code };
  }
  return out;
}

const bits = (v: number) => (Object.is(v, -0) ? '-0' : String(v));

/** A random CSV file in the given line-end style, with a header naming id, a, b, c (and maybe extras). */
function randomCsv(next: () => number, eol: string, delimiter = ','): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)] as T;
  const columns = ['id', 'a', 'b', 'c', ...(next() < 0.3 ? ['extra'] : [])].sort(() => next() - 0.5);
  const numbers = ['0', '1', '-1', '3.25', '-0.5', '.5', '5.', '+2', '1e3', '1E-3', '-2.5e+2', ' 7 ', '\t8', '0.1', '123456789012345678', '1.0000000000000002',
    '3.4028235e38', '1e39', '-0', '0e0', '', 'nan', 'inf', 'x', '1,5', '١', '1_000', '0x10', '1e', '.', '-', '12abc', '4.9e-324', '7.0e-46', '00012.5000'];
  const quote = (v: string) => (v.includes(delimiter) || /["\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  const field = (name: string): string => {
    const quoteIt = next() < 0.15;
    let v: string;
    if (name === 'id') v = pick(['k1', 'clé', '日本', 'a,b', 'say "hi"', 'two\nlines', 'crlf\r\ninside', '', ' sp ', 'e\u0301']);
    else if (name === 'extra') v = pick(['x', '', 'q,q', 'multi\nline']);
    else {
      const roll = next();
      // Everyday decimals; digits and exponents either side of the fast path's limits
      // (15 significant digits, 10^±22); and the odd cases in `numbers`.
      if (roll < 0.5) v = String(Math.round((next() - 0.5) * 1e6) / 10 ** Math.floor(next() * 8));
      else if (roll < 0.75) v = ((next() - 0.5) * 10 ** Math.floor(next() * 60 - 30)).toPrecision(1 + Math.floor(next() * 18)).replace('e+', pick(['e+', 'e', 'E']));
      else v = pick(numbers);
    }
    return quoteIt ? `"${v.replaceAll('"', '""')}"` : quote(v);
  };
  const lines = [columns.map(quote).join(delimiter)];
  const rows = Math.floor(next() * 12);
  for (let r = 0; r < rows; r++) {
    const roll = next();
    if (roll < 0.08) lines.push('');
    else if (roll < 0.13) lines.push(columns.slice(0, Math.floor(next() * columns.length)).map(field).join(delimiter));
    else if (roll < 0.16) lines.push([...columns, 'id'].map(field).join(delimiter));
    else lines.push(columns.map(field).join(delimiter));
  }
  let text = lines.join(eol) + (next() < 0.8 ? eol : '');
  // Now and then, break the quoting the ways real files do.
  const damage = next();
  const d = delimiter.replace(/[\\^$.*+?()[\]{}|-]/g, '\\$&');
  if (damage < 0.03) text = text.replace(new RegExp(`${d}([^${d}"\\r\\n]+)(?=[${d}\\r\\n])`), `${delimiter}$1"x`);
  else if (damage < 0.06) text = text.replace(new RegExp(`"([^"]*)"(?=[${d}\\r\\n])`), '"$1"y');
  else if (damage < 0.08) text += ['"unclosed', 1, 2, 3].join(delimiter);
  return (next() < 0.1 ? '\ufeff' : '') + text;
}

/** Cuts bytes into 1..n random pieces, so records, CRLFs and UTF-8 characters straddle reads. */
function randomPieces(next: () => number, bytes: Buffer): Buffer[] {
  const pieces: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = next() < 0.5 ? 1 + Math.floor(next() * 4) : 1 + Math.floor(next() * 64);
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return pieces.length ? pieces : [bytes];
}

describe('CSV scanner vs csv-parse (differential)', () => {
  for (const [style, eol] of [['LF', '\n'], ['CRLF', '\r\n'], ['CR', '\r']] as const) {
    it(`agrees on 1,500 random ${style} files fed in random pieces`, async () => {
      const next = rng(style.length * 7919);
      let errors = 0;
      let rejects = 0;
      for (let i = 0; i < 1500; i++) {
        const bytes = Buffer.from(randomCsv(next, eol));
        const expected = reference(bytes);
        const actual = await scanned(randomPieces(next, bytes));
        expect(actual, `file ${i}: ${JSON.stringify(bytes.toString())}`).toEqual(expected);
        if (expected.error) errors++;
        rejects += expected.rejects.length;
      }
      // The generator must actually produce the hard cases, or agreement proves little.
      expect(errors).toBeGreaterThan(50);
      expect(rejects).toBeGreaterThan(500);
    });
  }

  // Tab, semicolon and space, where padding must not swallow the delimiter; '.' and 'e',
  // characters of numbers, where the number scans must not read across it.
  for (const [name, delimiter] of [['tab', '\t'], ['semicolon', ';'], ['space', ' '], ['point', '.'], ['e', 'e']] as const) {
    it(`agrees on 500 random files delimited by ${name}`, async () => {
      const next = rng(name.length * 104729);
      let rejects = 0;
      for (let i = 0; i < 500; i++) {
        const bytes = Buffer.from(randomCsv(next, '\n', delimiter));
        const expected = reference(bytes, delimiter);
        expect(await scanned(randomPieces(next, bytes), 7, delimiter), `file ${i}: ${JSON.stringify(bytes.toString())}`).toEqual(expected);
        rejects += expected.rejects.length;
      }
      expect(rejects).toBeGreaterThan(150);
    });
  }

  it('agrees on long files read in large pieces, through batches that grow and are reused', async () => {
    // Thousands of rows per batch: the builder starts small and doubles, hands out a full
    // batch and refills the same key buffer; reads of up to 64 KiB cut records everywhere.
    const next = rng(20261122);
    for (const eol of ['\n', '\r\n']) {
      const lines = ['id,a,b,c'];
      for (let r = 0; r < 9000; r++) {
        const num = () => (next() < 0.01 ? 'x' : String(Math.round((next() - 0.5) * 1e6) / 10 ** Math.floor(next() * 8)));
        const id = next() < 0.02 ? '"q,""uoted"""' : `k${r}`;
        lines.push(next() < 0.005 ? '' : [id, num(), num(), num()].join(','));
      }
      const bytes = Buffer.from(lines.join(eol) + eol);
      const pieces: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + Math.floor(next() * 65536);
        pieces.push(bytes.subarray(at, at + size));
        at += size;
      }
      const expected = reference(bytes);
      expect(expected.rows.length).toBeGreaterThan(8000);
      expect(await scanned(pieces, 3000)).toEqual(expected);
    }
  });
});

describe('CSV scanner numbers', () => {
  it('reads numbers next to float32 rounding boundaries exactly as parseFeature does', async () => {
    // Midpoints between neighbouring float32 values, written with 6 to 25 digits: the texts
    // where converting through a double in two inexact steps would round the wrong way.
    const next = rng(42);
    const f32 = new Float32Array(2);
    const u32 = new Uint32Array(f32.buffer);
    const texts: string[] = [];
    while (texts.length < 20_000) {
      u32[0] = Math.floor(next() * 0x7f000000);
      u32[1] = (u32[0] as number) + 1;
      const mid = ((f32[0] as number) + (f32[1] as number)) / 2;
      const text = mid.toPrecision(6 + Math.floor(next() * 20));
      texts.push(next() < 0.5 ? text : `-${text}`);
    }
    const csv = `id,a,b,c\n${texts.map((t, i) => `${i},${t},0,0`).join('\n')}\n`;
    const out = await scanned([Buffer.from(csv)]);
    expect(out.rejects).toEqual([]);
    expect(out.rows).toEqual(texts.map((t, i) => `${i} ${bits((parseFeature(t) as { value: number }).value)} 0 0`));
  });
});
