import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../scripts/onnx-builder.js';
import { seededRandom } from '../src/random.js';
import { Comparer, mergeComparisons, type CompareRule, type Scored } from '../src/shadow/compare.js';
import { createMetrics, MAX_DRIFT_JOBS, MAX_SHADOW_CHALLENGERS } from '../src/observe/metrics.js';
import { day, driftModel, FEATURES } from './support/drift-day.js';
import { allIn, createTestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Challengers (docs/shadow.md): the job's `shadow` models score the same batches as the model,
 * and each is compared with it row by row into `_shadow.json`, exactly however the chunks were
 * spread. The expected figures are computed here from each model's own onnxruntime outputs.
 */

let ws: Workspace;
const DATE = '2026-03-01';
const ROWS = 6000;

/** A model of two of the features, f3 then f1, in one float input: another feature list than the champion's. */
const pairModel = () =>
  buildModel({
    inputs: [{ name: 'x', elem: 'float', shape: ['N', 2] }],
    outputs: [{ name: 'probability', elem: 'float', shape: ['N', 1] }],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['z0'] },
      { op: 'Add', inputs: ['z0', 'B'], outputs: ['z'] },
      { op: 'Sigmoid', inputs: ['z'], outputs: ['probability'] },
    ],
    floats: { W: { dims: [2, 1], values: [0.3, 0.8] }, B: { dims: [1], values: [-0.1] } },
  });

const job = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
  model: { path: 'champion.onnx', inputs: { num: FEATURES, region: 'region' } },
  output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
  shadow: [
    { uri: 'same.onnx', name: 'same' },
    { uri: 'bolder.onnx', name: 'bolder' },
    { uri: 'pair.onnx', name: 'pair', features: ['f3', 'f1'] },
    { uri: 'broken.onnx', name: 'broken' },
    { uri: 'strict.onnx', name: 'strict' },
  ],
  ...extra,
});

/** Each model's probability for every row of the day, straight from onnxruntime. */
async function direct(): Promise<Record<'champion' | 'bolder' | 'pair', Float32Array>> {
  const lines = (await ws.read(`in/dt=${DATE}/a.csv`)).trim().split('\n').slice(1).map((l) => l.split(','));
  const num = Float32Array.from(lines.flatMap((l) => FEATURES.map((_, j) => Number(l[1 + j]))));
  const region = lines.map((l) => l[1 + FEATURES.length]!);
  const pair = Float32Array.from(lines.flatMap((l) => [Number(l[3]), Number(l[1])]));
  const run = async (file: string, feeds: Record<string, ort.Tensor>) => {
    const session = await ort.InferenceSession.create(ws.path(file));
    const out = (await session.run(feeds)).probability!.data as Float32Array;
    await session.release();
    return out;
  };
  const twoInputs = { num: new ort.Tensor('float32', num, [lines.length, FEATURES.length]), region: new ort.Tensor('string', region, [lines.length, 1]) };
  return {
    champion: await run('champion.onnx', twoInputs),
    bolder: await run('bolder.onnx', twoInputs),
    pair: await run('pair.onnx', { x: new ort.Tensor('float32', pair, [lines.length, 2]) }),
  };
}

/** What the comparison of `y` with `x` must say, computed row by row. */
function expected(x: Float32Array, y: Float32Array) {
  const decisions = [0, 0, 0, 0];
  let agree = 0;
  let max = 0;
  let abs = 0;
  for (let i = 0; i < x.length; i++) {
    const dx = x[i]! >= 0.5 ? 1 : 0;
    const dy = y[i]! >= 0.5 ? 1 : 0;
    decisions[dx * 2 + dy]!++;
    if (dx === dy) agree++;
    max = Math.max(max, Math.abs(x[i]! - y[i]!));
    abs += Math.abs(x[i]! - y[i]!);
  }
  const n = x.length;
  return { n, agreement: agree / n, decisions, flips: { to_positive: decisions[1]! / n, to_negative: decisions[2]! / n }, max, mean: abs / n };
}

beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write('champion.onnx', driftModel(-0.2));
  await ws.write('same.onnx', driftModel(-0.2));
  await ws.write('bolder.onnx', driftModel(0.4));
  await ws.write('pair.onnx', pairModel());
  await ws.write('broken.onnx', 'not a model');
  // The champion's weights, but a region it was not trained on fails the row (skl2onnx's handle_unknown="error").
  await ws.write('strict.onnx', driftModel(-0.2, 'error'));
  await ws.write(`in/dt=${DATE}/a.csv`, day(ROWS, 7, { unseen: 0.05 }));
});
afterAll(async () => {
  await ws?.remove();
});

describe('challengers scored beside the champion', () => {
  it('compare row by row: the identical one agrees everywhere, the others as their own outputs say; a broken one is recorded and the run succeeds', async () => {
    const file = await ws.job('shadow.yaml', job('shadow', { cost: { per_cpu_hour: 0.05 } }));
    const run = await runCli(['run', file, '--date', DATE]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^ {2}shadow {3}same 100\.00% agree · bolder \d+\.\d\d% agree · pair \d+\.\d\d% agree · broken no data · strict 100\.00% agree {2}\(_shadow\.json\)$/m);
    const folder = `out/shadow/dt=${DATE}`;
    expect(await ws.list(folder)).toContain('_SUCCESS');
    const report = JSON.parse(await ws.read(`${folder}/_shadow.json`));
    const by = Object.fromEntries(report.challengers.map((c: { name: string }) => [c.name, c]));
    expect(report.compare).toEqual({ output: 'probability', column: 0, threshold: 0.5, kind: 'score' });

    expect(by.same).toMatchObject({ status: 'compared', rows_compared: ROWS, agreement: 1, max_abs_diff: 0, mean_abs_diff: 0, pearson: 1, score_js: 0, flips: { to_positive: 0, to_negative: 0 } });

    const scores = await direct();
    for (const name of ['bolder', 'pair'] as const) {
      const want = expected(scores.champion, scores[name]);
      const got = by[name];
      expect(got.status).toBe('compared');
      expect(got.rows_compared).toBe(want.n);
      expect(got.agreement).toBe(want.agreement);
      expect(got.counts.decisions).toEqual(want.decisions);
      expect(got.flips).toEqual(want.flips);
      expect(got.max_abs_diff).toBe(want.max);
      expect(got.mean_abs_diff).toBeCloseTo(want.mean, 12);
      expect(got.agreement).toBeLessThan(1);
    }
    // The bolder model (a higher bias) only ever turns decisions positive.
    expect(by.bolder.flips.to_negative).toBe(0);
    expect(by.bolder.flips.to_positive).toBeGreaterThan(0.05);

    // A challenger failing on some rows leaves them uncompared; the champion scored them all.
    const unseen = (await ws.read(`in/dt=${DATE}/a.csv`)).split('\n').filter((l) => l.endsWith(',central')).length;
    expect(unseen).toBeGreaterThan(100);
    expect(by.strict).toMatchObject({ status: 'compared', rows_compared: ROWS - unseen, agreement: 1, max_abs_diff: 0 });
    expect(by.strict.counts.failed).toBe(unseen);

    expect(by.broken).toMatchObject({ status: 'no data', rows_compared: 0, model: null, agreement: null });
    expect(by.broken.error.code).toMatch(/^MODEL_/);
    const manifest = JSON.parse(await ws.read(`${folder}/_manifest.json`));
    expect(manifest.status).toBe('succeeded');
    expect(manifest.model.path).toBe(ws.path('champion.onnx'));
    expect(manifest.shadow.challengers.map((c: { name: string; status: string }) => `${c.name} ${c.status}`)).toEqual(['same compared', 'bolder compared', 'pair compared', 'broken no data', 'strict compared']);
    expect(manifest.shadow.challengers.find((c: { name: string }) => c.name === 'broken').error).toBe(by.broken.error.message);
    // cost: each model's inference seconds at the price per CPU hour, and the total.
    const cost = manifest.cost as { per_cpu_hour: number; models: Array<{ role: string; seconds: number; cost: number }>; total: number };
    expect(cost.models.map((m) => m.role)).toEqual(['champion', 'challenger:same', 'challenger:bolder', 'challenger:pair', 'challenger:strict']);
    for (const m of cost.models) {
      expect(m.seconds).toBeGreaterThan(0);
      expect(m.cost).toBe((m.seconds / 3600) * 0.05);
    }
    expect(cost.total).toBeCloseTo(cost.models.reduce((t, m) => t + m.cost, 0), 15);
    expect(manifest.shadow.challengers.find((c: { name: string }) => c.name === 'same').seconds).toBe(cost.models[1]!.seconds);
    // The parts are the champion's alone.
    const part = (await ws.read(`${folder}/part-00000.csv`)).trim().split('\n');
    expect(part[0]).toBe('id,probability');
    expect(Math.fround(Number(part[1]!.split(',')[1]))).toBe(scores.champion[0]);
  });

  it('the same date in process in one chunk and by three queue workers in small chunks writes the same _shadow.json bytes; the committing worker exports agreement on /metrics, and alerts.on: [shadow] posts', async () => {
    const posts: Array<{ date: string; text: string; shadow: Array<{ name: string; agreement: number | null }> }> = [];
    const receiver = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        posts.push(JSON.parse(text) as (typeof posts)[number]);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const alerts = { webhook: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, on: ['shadow'], min_agreement: 0.99 };
    const file = await ws.job('both.yaml', job('both', { alerts }));
    expect((await runCli(['run', file, '--date', DATE])).code).toBe(0);
    const inProcess = await ws.read(`out/both/dt=${DATE}/_shadow.json`);
    await ws.job('both.yaml', job('both', { alerts, chunk: { rows: 300, bytes: 16 * 1024 } }));
    const tq = await createTestQueue();
    try {
      const workers = [];
      for (let i = 0; i < 3; i++) workers.push(await tq.startWorker());
      expect((await runCli(['run', file, '--date', DATE, '--queue', '--force'], { env: tq.env })).code).toBe(0);
      const [status] = await tq.waitFor(file, DATE, DATE, allIn(['succeeded', 'failed']), 120_000);
      expect(status!.state, JSON.stringify(status)).toBe('succeeded');
      expect(JSON.parse(await ws.read(`out/both/dt=${DATE}/_manifest.json`)).chunks).toBeGreaterThan(10);
      const statusLine = await runCli(['status', file, '--from', DATE, '--to', DATE], { env: tq.env });
      expect(statusLine.stdout).toMatch(/· shadow: same 100\.00%, bolder \d+\.\d\d%, pair \d+\.\d\d%, broken no data, strict 100\.00%$/m);
      // One worker committed the run: its /metrics has each challenger's agreement and rows.
      const texts = await Promise.all(workers.map(async (w) => (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text()));
      const committed = texts.find((t) => t.includes('nightscore_shadow_rows_compared{job="both"'))!;
      const report = JSON.parse(inProcess) as { challengers: Array<{ name: string; agreement: number | null; rows_compared: number }> };
      for (const c of report.challengers) {
        expect(committed).toContain(`nightscore_shadow_rows_compared{job="both",challenger="${c.name}"} ${c.rows_compared}\n`);
        if (c.agreement === null) expect(committed).not.toContain(`nightscore_shadow_agreement{job="both",challenger="${c.name}"}`);
        else expect(committed).toContain(`nightscore_shadow_agreement{job="both",challenger="${c.name}"} ${c.agreement}\n`);
      }
    } finally {
      await tq.close();
      receiver.close();
    }
    expect(await ws.read(`out/both/dt=${DATE}/_shadow.json`)).toBe(inProcess);
    // Both runs posted, each naming the challengers below 0.99 or with no data.
    expect(posts.map((p) => p.date)).toEqual([DATE, DATE]);
    expect(posts[0]!.text).toMatch(/ · challengers: bolder \d+\.\d\d% agree, pair \d+\.\d\d% agree, broken no data \(.*_shadow\.json\)$/);
    expect(posts[0]!.shadow.map((c) => c.name)).toEqual(['same', 'bolder', 'pair', 'broken', 'strict']);
  });
});

describe('comparisons merged', () => {
  /** A batch of `rows` scores for both models (float32, some rows failed by either), as a chunk's stage sees them. */
  function batch(next: () => number, rows: number): { rows: number; champion: Scored; challenger: Scored } {
    const failedBy = (p: number) => Array.from({ length: rows }, (_, r) => r).filter(() => next() < p).map((row) => ({ row, message: 'x' }));
    const scored = (failed: Scored['failed'], spread: number): Scored => {
      const values = Float32Array.from({ length: rows - failed.length }, () => (next() < 0.01 ? NaN : next() ** spread));
      return { outputs: [{ columns: { output: 'p', type: 'float32', names: ['p'] }, data: values }], failed };
    };
    return { rows, champion: scored(failedBy(0.02), 1), challenger: scored(failedBy(0.05), 3) };
  }
  const rule: CompareRule = { output: 'p', column: 0, threshold: 0.5, kind: 'score' };

  it('give the same bytes in any grouping and order of the chunks (30 seeds)', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const next = seededRandom(seed);
      const batches = Array.from({ length: 1 + Math.floor(next() * 12) }, () => batch(next, Math.floor(next() * 400)));
      const chunk = (group: typeof batches) => {
        const c = new Comparer(rule);
        for (const b of group) c.add(b.rows, b.champion, b.challenger);
        return c.result();
      };
      const whole = JSON.stringify(mergeComparisons([chunk(batches)]));
      // Random cuts into chunks, merged in a shuffled order, in two rounds.
      const parts = [];
      for (let i = 0; i < batches.length; ) {
        const n = 1 + Math.floor(next() * 3);
        parts.push(chunk(batches.slice(i, i + n)));
        i += n;
      }
      parts.sort(() => next() - 0.5);
      const half = Math.floor(parts.length / 2);
      const merged = mergeComparisons([mergeComparisons(parts.slice(0, half)), mergeComparisons(parts.slice(half))]);
      expect(JSON.stringify(merged), `seed ${seed}`).toBe(whole);
    }
  });

  it('of float32 scores (bucketed sums) equal those of the same scores as doubles (value by value), byte for byte (30 seeds)', () => {
    const asDoubles = (s: Scored): Scored => ({ ...s, outputs: s.outputs.map((o) => ({ ...o, data: Float64Array.from(o.data as Float32Array) })) });
    for (let seed = 1; seed <= 30; seed++) {
      const next = seededRandom(seed);
      const fast = new Comparer(rule);
      const slow = new Comparer(rule);
      for (let i = 0; i < 5; i++) {
        const b = batch(next, Math.floor(next() * 3000));
        // Scores of every size and sign, where sums of products and differences need every bit.
        for (const s of [b.champion, b.challenger]) {
          const data = s.outputs[0]!.data as Float32Array;
          for (let j = 0; j < data.length; j++) if (next() < 0.2) data[j] = Math.fround((next() - 0.5) * 2 ** Math.floor(next() * 80 - 40));
        }
        fast.add(b.rows, b.champion, b.challenger);
        slow.add(b.rows, asDoubles(b.champion), asDoubles(b.challenger));
      }
      expect(JSON.stringify(fast.result()), `seed ${seed}`).toBe(JSON.stringify(slow.result()));
    }
  });
});

describe('challengers on /metrics', () => {
  it(`keep at most ${MAX_SHADOW_CHALLENGERS} challengers per job and the ${MAX_DRIFT_JOBS} jobs last committed, each job's series its last run's`, async () => {
    const metrics = createMetrics(async () => []);
    try {
      const challengers = (n: number, agreement: number | null) => Array.from({ length: n }, (_, i) => ({ name: `c${i}`, agreement, rows_compared: 10 }));
      metrics.recordShadow('first', challengers(3, 0.5));
      metrics.recordShadow('first', challengers(12, 0.9));
      for (let j = 0; j < MAX_DRIFT_JOBS - 1; j++) metrics.recordShadow(`job${j}`, challengers(1, null));
      let text = await metrics.registry.metrics();
      expect(text.match(/^nightscore_shadow_agreement\{job="first",/gm)).toHaveLength(MAX_SHADOW_CHALLENGERS);
      expect(text).toContain('nightscore_shadow_agreement{job="first",challenger="c0"} 0.9\n');
      // No data: rows compared, no agreement.
      expect(text).toContain('nightscore_shadow_rows_compared{job="job0",challenger="c0"} 10\n');
      expect(text).not.toContain('nightscore_shadow_agreement{job="job0"');
      metrics.recordShadow('last', challengers(1, 1));
      text = await metrics.registry.metrics();
      expect(text).not.toContain('job="first"');
      expect(new Set([...text.matchAll(/^nightscore_shadow_rows_compared\{job="([^"]+)"/gm)].map((m) => m[1])).size).toBe(MAX_DRIFT_JOBS);
    } finally {
      metrics.stop();
    }
  });
});
