import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../src/demo/churn-data.js';
import { sliceLineRange } from '../src/formats/line-range.js';
import { parseJob } from '../src/job/load.js';
import { planChunks } from '../src/run/plan.js';
import { prepareJob } from '../src/run/bind.js';
import { runJob } from '../src/run/run.js';
import { csvOf } from './support/data.js';
import { runCli, Workspace, REPO } from './support/workspace.js';

const obj = (uri: string, bytes: number, gzip = false) => ({ uri, bytes, gzip, version: 'v1' });

describe('planning chunks', () => {
  it('packs small objects together and splits large ones into equal ranges, without reading data', () => {
    const plan = planChunks([obj('a', 30), obj('b', 30), obj('c', 50), obj('d', 250), obj('e', 10), obj('f.gz', 500, true)], { chunkBytes: 100, split: true });
    expect(plan.map((c) => c.segments.map((s) => `${s.uri}[${s.start},${s.end})`).join(' '))).toEqual([
      'a[0,30) b[0,30)',
      'c[0,50)',
      'd[0,84)',
      'd[84,168)',
      'd[168,250)',
      'e[0,10)',
      'f.gz[0,500)',
    ]);
    expect(plan.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('never splits when split is false', () => {
    expect(planChunks([obj('a', 250)], { chunkBytes: 100, split: false }).map((c) => c.segments.length)).toEqual([1]);
  });
});

/** Reads [start, end) of `data` the way a chunk does, delivering it in odd-sized buffers. */
async function slice(data: Buffer, start: number, end: number, piece: number): Promise<string> {
  const from = start > 0 ? start - 1 : 0;
  const pieces: Buffer[] = [];
  for (let i = from; i < data.length; i += piece) pieces.push(data.subarray(i, i + piece));
  const out: Buffer[] = [];
  const stats = { newlines: 0 };
  for await (const b of sliceLineRange(Readable.from(pieces), { skipFirst: start > 0, last: end >= data.length ? Infinity : end - 1 - from }, stats)) out.push(b);
  return Buffer.concat(out).toString();
}

describe('byte ranges end on record boundaries', () => {
  it('consecutive ranges partition the lines exactly, for any range size and buffer size', async () => {
    const next = rng(99);
    for (let trial = 0; trial < 200; trial++) {
      const lines = Array.from({ length: 1 + Math.floor(next() * 40) }, (_, i) => `row${i},${'x'.repeat(Math.floor(next() * 30))}`);
      const text = lines.join('\n') + (next() < 0.5 ? '\n' : '');
      const data = Buffer.from(text);
      const size = 1 + Math.floor(next() * 60);
      const piece = 1 + Math.floor(next() * 17);
      const parts: string[] = [];
      for (let start = 0; start < data.length; start += size) parts.push(await slice(data, start, Math.min(start + size, data.length), piece));
      expect(parts.join('')).toBe(text);
      for (const p of parts) if (p) expect(p.startsWith('row')).toBe(true);
    }
  });
});

describe('split runs', () => {
  let ws: Workspace;
  beforeAll(async () => {
    ws = await Workspace.create();
  });
  afterAll(async () => {
    await ws.remove();
  });

  const job = (name: string, chunk: Record<string, number>, csv: Record<string, unknown> = {}) =>
    ws.job(`${name}.yaml`, {
      name,
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'], csv },
      model: { path: `${REPO}/models/churn/model.onnx` },
      output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
      chunk,
      limits: { max_reject_rate: 0.2 },
    });

  async function outputs(name: string, date: string) {
    const m = await ws.manifest(`out/${name}/dt=${date}`);
    const read = async (list: Array<{ uri: string }>, dir = '') =>
      (await Promise.all(list.map((p) => ws.read(`out/${name}/dt=${date}/${dir}${p.uri.split('/').pop()}`)))).map((t) => t.split('\n').slice(1).join('\n')).join('');
    return { m, predictions: await read(m.parts), rejects: await read(m.rejects, '_rejects/') };
  }

  it('a split run writes the same rows and the same absolute reject lines as a whole-object run', async () => {
    const lines = csvOf(400, 3).trimEnd().split('\n');
    for (const at of [5, 97, 180, 181, 333, 400]) lines[at] = lines[at]!.replace(/,[^,]*$/, ',bad');
    await ws.write('in/dt=2026-07-01/a.csv', `${lines.join('\n')}\n`);
    await ws.write('in/dt=2026-07-01/b.csv', csvOf(50, 4));
    const whole = await job('whole', { rows: 64 });
    const split = await job('split', { rows: 64, bytes: 2000 });
    expect((await runCli(['run', whole, '--date', '2026-07-01'])).code).toBe(0);
    expect((await runCli(['run', split, '--date', '2026-07-01'])).code).toBe(0);
    const a = await outputs('whole', '2026-07-01');
    const b = await outputs('split', '2026-07-01');
    expect(a.m.chunks).toBe(1);
    expect(b.m.chunks).toBeGreaterThan(10);
    expect(b.m.rows).toEqual({ read: 450, scored: 444, rejected: 6 });
    expect(b.predictions).toBe(a.predictions);
    expect(b.rejects).toBe(a.rejects);
    expect(b.rejects.split('\n').filter(Boolean).map((r) => r.split(',')[1])).toEqual(['6', '98', '181', '182', '334', '401']);
    expect(b.m.inputs.map((i) => i.rows)).toEqual([400, 50]);

    // The same split run on one thread (the default uses every CPU) writes the same parts.
    const single = await job('split-1', { rows: 64, bytes: 2000 });
    expect((await runCli(['run', single, '--date', '2026-07-01', '--threads', '1'])).code).toBe(0);
    const c = await outputs('split-1', '2026-07-01');
    expect(c.m.chunks).toBe(b.m.chunks);
    expect(c.predictions).toBe(b.predictions);
    expect(c.rejects).toBe(b.rejects);
  });

  it('a quoted newline at a split point fails the run with the fix; split: false reads it whole', async () => {
    const rows = csvOf(60, 5).trimEnd().split('\n');
    // Every key holds a quoted newline 200 bytes in; the first split point (header + 50
    // bytes) falls inside the first row's quoted field.
    for (let i = 1; i < rows.length; i++) rows[i] = rows[i]!.replace(/^K[^,]*/, `"${'x'.repeat(200)}\n${i}"`);
    await ws.write('in/dt=2026-07-02/a.csv', `${rows.join('\n')}\n`);
    const bytes = Buffer.byteLength(rows[0]!) + 1 + 50;
    const res = await runCli(['run', await job('quoted', { bytes }), '--date', '2026-07-02']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('CSV_QUOTED_NEWLINE_AT_SPLIT');
    expect(res.stderr).toContain('set input.csv.split: false');
    expect(await ws.list('out/quoted/dt=2026-07-02')).not.toContain('_SUCCESS');

    const whole = await runCli(['run', await job('quoted-whole', { bytes }, { split: false }), '--date', '2026-07-02', '--json']);
    expect(whole.code).toBe(0);
    expect(JSON.parse(whole.stdout).rows).toEqual({ read: 60, scored: 60, rejected: 0 });
  });

  it('splits honour each file\'s own line end: every style and chunk size gives the parts and rejects of a whole-file read', async () => {
    const rows = csvOf(300, 9).trimEnd().split('\n');
    for (const at of [1, 77, 150, 299]) rows[at] = rows[at]!.replace(/,[^,]*$/, ',bad');
    for (const [style, eol] of [['lf', '\n'], ['crlf', '\r\n'], ['cr', '\r']] as const) {
      // In a CR-only file an LF is data: keys holding one must neither split a record nor double it.
      const body = rows.map((r, i) => (style === 'cr' && i > 0 && i % 7 === 0 ? r.replace(/^K/, 'K\nx') : r)).join(eol) + eol;
      const date = `2026-08-0${['lf', 'crlf', 'cr'].indexOf(style) + 1}`;
      await ws.write(`in/dt=${date}/a.csv`, body);
      const results = [];
      for (const bytes of [1_000_000, 300, 701, 1500, 4099]) {
        const name = `eol-${style}-${bytes}`;
        const file = await job(name, { rows: 32, bytes });
        const prepared = await prepareJob(parseJob(await ws.read(`${name}.yaml`), file));
        const manifest = await runJob(prepared, date);
        expect(manifest.status, name).toBe('succeeded');
        expect(manifest.rows, name).toEqual({ read: 300, scored: 296, rejected: 4 });
        results.push({ name, chunks: manifest.chunks, ...(await outputs(name, date)) });
      }
      const [whole, ...splits] = results;
      expect(whole!.chunks).toBe(1);
      for (const split of splits) {
        expect(split.chunks, split.name).toBeGreaterThan(1);
        expect(split.predictions, split.name).toBe(whole!.predictions);
        expect(split.rejects, split.name).toBe(whole!.rejects);
      }
    }
  });
});

