import * as ort from 'onnxruntime-node';
import { readFile, rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHURN_FEATURES } from '../src/demo/churn-data.js';
import { csvOf } from './support/data.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

let ws: Workspace;
beforeEach(async () => {
  ws = await Workspace.create();
});
afterEach(async () => {
  await ws.remove();
});

/** The example job, pointed at this test's workspace. */
async function exampleJob(extra: Record<string, unknown> = {}): Promise<string> {
  return ws.job('jobs/churn.yaml', {
    name: 'churn-daily',
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: 'out/dt={date}/', format: 'csv', columns: { label: 'churn_predicted', probabilities: ['p_stay', 'p_churn'] } },
    chunk: { rows: 1000 },
    ...extra,
  });
}

/** Scores rows with onnxruntime directly: the reference the CLI's output must equal. */
async function scoreDirectly(rows: number[][]): Promise<{ label: BigInt64Array; probabilities: Float32Array }> {
  const session = await ort.InferenceSession.create(`${REPO}/models/churn/model.onnx`);
  const x = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, CHURN_FEATURES.length]);
  const out = await session.run({ input: x });
  return { label: out.label!.data as BigInt64Array, probabilities: out.probabilities!.data as Float32Array };
}

describe('spreadsheet safety', () => {
  it('output.csv.escape_formulas quote-prefixes text cells that start a formula, and leaves numbers alone', async () => {
    const text = [
      ['customer_id', ...CHURN_FEATURES].join(','),
      ['"=HYPERLINK(""x"")"', ...CHURN_FEATURES.map(() => '1')].join(','),
      ['@SUM(A1)', ...CHURN_FEATURES.map(() => '-2')].join(','),
      ['plain', ...CHURN_FEATURES.map((_, j) => (j === 0 ? 'oops' : '1'))].join(','),
      ['+1', ...CHURN_FEATURES.map((_, j) => (j === 0 ? '' : '1'))].join(','),
    ].join('\n');
    await ws.write('jobs/in/dt=2026-03-09/a.csv', text);
    const on = await exampleJob({ output: { uri: 'on/dt={date}/', format: 'csv', csv: { escape_formulas: true } }, limits: { max_reject_rate: 1 } });
    const onRes = await runCli(["run", on, "--date", "2026-03-09"]);
    expect(onRes.stderr).toBe("");
    expect(onRes.code).toBe(0);
    const part = await ws.csv('jobs/on/dt=2026-03-09/part-00000.csv');
    expect(part.slice(1).map((r) => r[0])).toEqual(["'=HYPERLINK(\"x\")", "'@SUM(A1)"]);
    expect(part.slice(1).every((r) => r.slice(1).every((v) => !v.startsWith("'")))).toBe(true);
    const rejects = await ws.csv('jobs/on/dt=2026-03-09/_rejects/part-00000.csv');
    expect(rejects.slice(1).map((r) => r[2])).toEqual(['plain', "'+1"]);

    const off = await exampleJob({ output: { uri: 'off/dt={date}/', format: 'csv' }, limits: { max_reject_rate: 1 } });
    expect((await runCli(['run', off, '--date', '2026-03-09'])).code).toBe(0);
    expect((await ws.csv('jobs/off/dt=2026-03-09/part-00000.csv')).slice(1).map((r) => r[0])).toEqual(['=HYPERLINK("x")', '@SUM(A1)']);
  });
});

describe('nightscore run, local files', () => {
  it('scores a day and its predictions equal a direct onnxruntime run on the same rows', async () => {
    const job = await exampleJob();
    // Columns in another order than the model's, plus an extra column: matched by name.
    const header = ['region', 'customer_id', ...[...CHURN_FEATURES].reverse()];
    const rows: number[][] = [];
    const lines = [header.join(',')];
    for (let i = 0; i < 2500; i++) {
      const features = CHURN_FEATURES.map((_, j) => Number((((i * 7919 + j * 104729) % 1000) / 37.3 - 9).toFixed(3)));
      rows.push(features);
      lines.push(['north', `C${i}`, ...[...features].reverse()].join(','));
    }
    await ws.write('jobs/in/dt=2026-03-01/a.csv', `${lines.join('\n')}\n`);

    const res = await runCli(['run', job, '--date', '2026-03-01', '--json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const manifest = JSON.parse(res.stdout);
    expect(manifest).toMatchObject({ job: 'churn-daily', date: '2026-03-01', status: 'succeeded', rows: { read: 2500, scored: 2500, rejected: 0 } });

    const out = await ws.csv('jobs/out/dt=2026-03-01/part-00000.csv');
    expect(out[0]).toEqual(['customer_id', 'churn_predicted', 'p_stay', 'p_churn']);
    const expected = await scoreDirectly(rows);
    expect(out.length - 1).toBe(2500);
    out.slice(1).forEach(([id, label, pStay, pChurn], r) => {
      expect(id).toBe(`C${r}`);
      expect(label).toBe(String(expected.label[r]));
      // Printed floats must read back as the very same float32.
      expect(Math.fround(Number(pStay))).toBe(expected.probabilities[2 * r]);
      expect(Math.fround(Number(pChurn))).toBe(expected.probabilities[2 * r + 1]);
    });
  });

  it('writes the run record: manifest, parts, and _SUCCESS last', async () => {
    const job = await exampleJob();
    await ws.write('jobs/in/dt=2026-03-02/a.csv', csvOf(10, 0));
    await ws.write('jobs/in/dt=2026-03-02/b.csv.gz', await gzip(csvOf(5, 100)));
    await ws.write('jobs/in/dt=2026-03-02/_SUCCESS', '');
    await ws.write('jobs/in/dt=2026-03-02/notes.txt', 'not input');

    const res = await runCli(['run', job, '--date', '2026-03-02']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('churn-daily 2026-03-02: succeeded');
    expect(res.stdout).toMatch(/15 read · 15 scored · 0 rejected/);
    // Small objects are packed into one chunk, so one part.
    expect(await ws.list('jobs/out/dt=2026-03-02')).toEqual(['_SUCCESS', '_manifest.json', 'part-00000.csv']);
    const m = await ws.manifest('jobs/out/dt=2026-03-02');
    const modelBytes = await readFile(`${REPO}/models/churn/model.onnx`);
    const { createHash } = await import('node:crypto');
    expect(m.model.sha256).toBe(createHash('sha256').update(modelBytes).digest('hex'));
    expect(m.inputs.map((i: { uri: string; rows: number }) => [i.uri.split('/').pop(), i.rows])).toEqual([
      ['a.csv', 10],
      ['b.csv.gz', 5],
    ]);
    expect(m.chunks).toBe(1);
    expect(m.parts.map((p: { rows: number }) => p.rows)).toEqual([15]);
    expect(m.rejects).toEqual([]);
    expect(m.error).toBeNull();
    expect(Date.parse(m.finished_at!) - Date.parse(m.started_at)).toBe(m.duration_ms);
  });

  it('sends bad rows to the rejects file with line, key and reason, and scores every other row', async () => {
    const job = await exampleJob();
    const good = (id: string) => [id, ...CHURN_FEATURES.map(() => '1')].join(',');
    const withValue = (id: string, col: number, value: string) => [id, ...CHURN_FEATURES.map((_, j) => (j === col ? value : '1'))].join(',');
    const text = [
      ['customer_id', ...CHURN_FEATURES].join(','),
      good('ok1'),
      withValue('empty', 0, ''),
      withValue('word', 1, 'abc'),
      '',
      withValue('nan', 2, 'NaN'),
      withValue('huge', 3, '1e39'),
      'short,1,2',
      withValue('"quoted\nnewline"', 4, 'x'),
      good('ok2'),
      withValue('hex', 5, '0x10'),
    ].join('\r\n');
    await ws.write('jobs/in/dt=2026-03-03/a.csv', text);

    const res = await runCli(['run', job, '--date', '2026-03-03', '--json']);
    // 8 of 10 rows rejected: far above the 1% limit, so the run fails with exit 3.
    expect(res.code).toBe(3);
    const m = JSON.parse(res.stdout);
    expect(m.rows).toEqual({ read: 9, scored: 2, rejected: 7 });
    expect(m.status).toBe('failed');
    expect(m.error.code).toBe('REJECT_RATE_EXCEEDED');
    const out = await ws.csv('jobs/out/dt=2026-03-03/part-00000.csv');
    expect(out.slice(1).map((r) => r[0])).toEqual(['ok1', 'ok2']);
    const rejects = await ws.csv('jobs/out/dt=2026-03-03/_rejects/part-00000.csv');
    expect(rejects[0]).toEqual(['source', 'line', 'customer_id', 'reason']);
    expect(rejects.slice(1).map(([source, line, key, reason]) => [source!.split('/').pop(), line, key, reason])).toEqual([
      ['a.csv', '3', 'empty', 'column tenure_months: empty value (set input.missing: nan to score it as a missing value)'],
      ['a.csv', '4', 'word', 'column monthly_charges: expected a number, got "abc"'],
      ['a.csv', '6', 'nan', 'column total_charges: not finite: "NaN" (set input.missing: nan to score it as a missing value)'],
      ['a.csv', '7', 'huge', 'column contract_months: out of float32 range: "1e39"'],
      ['a.csv', '8', 'short', `expected ${CHURN_FEATURES.length + 1} fields, got 3`],
      ['a.csv', '9', 'quoted\nnewline', 'column support_tickets_90d: expected a number, got "x"'],
      ['a.csv', '12', 'hex', 'column late_payments_12m: expected a number, got "0x10"'],
    ]);
    expect(await ws.list('jobs/out/dt=2026-03-03')).not.toContain('_SUCCESS');
  });

  it('keeps read = scored + rejected and succeeds while rejects stay under the limit', async () => {
    const job = await exampleJob({ limits: { max_reject_rate: 0.05 } });
    const lines = csvOf(200, 0).trimEnd().split('\n');
    lines[50] = lines[50]!.replace(/,[^,]*$/, ',oops');
    lines[120] = lines[120]!.replace(/,[^,]*$/, ',');
    await ws.write('jobs/in/dt=2026-03-04/a.csv', `${lines.join('\n')}\n`);
    const res = await runCli(['run', job, '--date', '2026-03-04', '--json']);
    expect(res.code).toBe(0);
    const m = JSON.parse(res.stdout);
    expect(m.rows).toEqual({ read: 200, scored: 198, rejected: 2 });
    expect((await ws.csv('jobs/out/dt=2026-03-04/part-00000.csv')).length - 1).toBe(198);
    expect((await ws.csv('jobs/out/dt=2026-03-04/_rejects/part-00000.csv')).length - 1).toBe(2);
    expect(m.rejects).toHaveLength(1);
  });

  it('re-running a date leaves exactly one attempt’s parts', async () => {
    // 300-byte chunks: each ~1.4 kB input object is split into several byte ranges.
    const job = await exampleJob({ chunk: { rows: 1000, bytes: 300 } });
    for (const name of ['a', 'b', 'c']) await ws.write(`jobs/in/dt=2026-03-05/${name}.csv`, csvOf(20, name.charCodeAt(0)));
    expect((await runCli(['run', job, '--date', '2026-03-05'])).code).toBe(0);
    const first = await ws.manifest('jobs/out/dt=2026-03-05');
    const partNames = (m: { parts: Array<{ uri: string }> }) => m.parts.map((p) => p.uri.split('/').pop()!);
    expect(first.chunks).toBeGreaterThan(6);
    expect(await ws.list('jobs/out/dt=2026-03-05')).toEqual(['_SUCCESS', '_manifest.json', ...partNames(first)]);

    // The upstream re-export now has two files: the last parts must not survive the re-run.
    await rm(ws.path('jobs/in/dt=2026-03-05/c.csv'));
    expect((await runCli(['run', job, '--date', '2026-03-05'])).code).toBe(0);
    const second = await ws.manifest('jobs/out/dt=2026-03-05');
    expect(second.attempt).not.toBe(first.attempt);
    expect(second.chunks).toBeLessThan(first.chunks);
    expect(await ws.list('jobs/out/dt=2026-03-05')).toEqual(['_SUCCESS', '_manifest.json', ...partNames(second)]);
    expect(second.rows).toEqual({ read: 40, scored: 40, rejected: 0 });
    const rows = (await Promise.all(partNames(second).map((p) => ws.csv(`jobs/out/dt=2026-03-05/${p}`)))).flatMap((p) => p.slice(1));
    expect(rows.map((r) => r[0])).toEqual([...Array.from({ length: 20 }, (_, i) => `K97-${i}`), ...Array.from({ length: 20 }, (_, i) => `K98-${i}`)]);
  });

  it('a failed re-run removes the earlier _SUCCESS, so readers stop trusting the folder', async () => {
    const job = await exampleJob();
    await ws.write('jobs/in/dt=2026-03-06/a.csv', csvOf(20, 0));
    expect((await runCli(['run', job, '--date', '2026-03-06'])).code).toBe(0);
    await ws.write('jobs/in/dt=2026-03-06/a.csv', `${['customer_id', ...CHURN_FEATURES].join(',')}\n"unclosed,1\n`);
    const res = await runCli(['run', job, '--date', '2026-03-06']);
    expect(res.code).toBe(1);
    expect(await ws.list('jobs/out/dt=2026-03-06')).toEqual(['_manifest.json']);
    expect((await ws.manifest('jobs/out/dt=2026-03-06')).status).toBe('failed');
  });
});

async function gzip(text: string): Promise<Buffer> {
  const { gzipSync } = await import('node:zlib');
  return gzipSync(text);
}
