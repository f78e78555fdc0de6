import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { day, driftModel, FEATURES } from './support/drift-day.js';
import { allIn, createTestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Drift (docs/drift.md): `nightscore profile build` profiles reference data through the job's
 * readers and model; every run then counts what it scored on the profile's bins and reports,
 * per column and overall, in `_drift.json` and the manifest.
 */

let ws: Workspace;
let profile: string;
const baseJob = (name: string, drift: Record<string, unknown> | undefined, model = 'model.onnx', chunk: Record<string, unknown> = {}) => ({
  name,
  input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'], missing: { f4: 'nan' } },
  model: { path: model, inputs: { num: FEATURES, region: 'region' } },
  output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
  chunk,
  limits: { max_reject_rate: 0.01 },
  ...(drift ? { drift } : {}),
});

const SAME = '2026-03-01';
const SHIFTED = '2026-03-02';
const SMALL = '2026-03-03';

beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write('model.onnx', driftModel());
  await ws.write('other.onnx', driftModel(0.5));
  await ws.write('reference.csv', day(20_000, 1));
  await ws.write(`in/dt=${SAME}/a.csv`, day(20_000, 2));
  await ws.write(`in/dt=${SHIFTED}/a.csv`, day(20_000, 3, { shift: 1, scale: 2, missing: 0.2, unseen: 0.1 }));
  await ws.write(`in/dt=${SMALL}/a.csv`, day(200, 4));
  await ws.job('build.yaml', baseJob('build', undefined));
  profile = ws.path('profile.json');
  const built = await runCli(['profile', 'build', ws.path('build.yaml'), ws.path('reference.csv'), '-o', profile]);
  expect(built.code, built.stderr).toBe(0);
  expect(built.stderr).toMatch(/profile {2}.*profile\.json {2}sha256 [0-9a-f]{64}\n {9}8 columns; reference rows: 20000 read, 20000 profiled, 0 rejected; bins fitted on 20000/);
});
afterAll(async () => {
  await ws?.remove();
});

interface Report {
  status: string;
  drifted: string[];
  columns: Array<{ name: string; role: string; kind: string; status: string; psi: number | null; js: number | null; ks: number | null; missing_delta: number | null; unseen_share: number | null; reasons: string[] }>;
  counts: Record<string, { bins: number[] }>;
}

const drift = async (name: string, date: string): Promise<Report> => JSON.parse(await ws.read(`out/${name}/dt=${date}/_drift.json`)) as Report;
const statuses = (r: Report) => Object.fromEntries(r.columns.map((c) => [c.name, c.status]));

/** The statistics as docs/drift.md defines them, computed here from the two files' counts. */
const shares = (bins: number[]) => {
  const n = bins.reduce((a, b) => a + b, 0);
  return bins.map((b) => b / n);
};
const deciles = (bins: number[]) => Array.from({ length: 10 }, (_, d) => bins.slice(d === 0 ? 0 : 10 * d + 1, d === 9 ? bins.length : 10 * d + 11).reduce((a, b) => a + b, 0));
function psiOf(ref: number[], run: number[]): number {
  const [p, q] = [shares(ref), shares(run)];
  return p.reduce((s, pi, i) => {
    const a = pi || 1e-4;
    const b = q[i]! || 1e-4;
    return s + (b - a) * Math.log(b / a);
  }, 0);
}
function jsOf(ref: number[], run: number[]): number {
  const [p, q] = [shares(ref), shares(run)];
  let d = 0;
  p.forEach((pi, i) => {
    const m = (pi + q[i]!) / 2;
    if (pi > 0) d += 0.5 * pi * Math.log2(pi / m);
    if (q[i]! > 0) d += 0.5 * q[i]! * Math.log2(q[i]! / m);
  });
  return Math.sqrt(d);
}
function ksOf(ref: number[], run: number[]): number {
  const [p, q] = [shares(ref), shares(run)];
  let [cp, cq, worst] = [0, 0, 0];
  p.forEach((pi, i) => {
    cp += pi;
    cq += q[i]!;
    worst = Math.max(worst, Math.abs(cp - cq));
  });
  return worst;
}

describe('a reference profile', () => {
  it('holds every column the model reads and writes, with its kind of bins and the reference counts', async () => {
    const p = JSON.parse(await readFile(profile, 'utf8'));
    expect(p.format).toBe('nightscore.profile');
    expect(p.columns.map((c: { role: string; name: string; bins: { kind: string } }) => `${c.role}:${c.name}:${c.bins.kind}`)).toEqual([
      ...FEATURES.map((f) => `feature:${f}:numeric`),
      'feature:region:categorical',
      'prediction:probability:probability',
    ]);
    const f1 = p.columns[0];
    expect(f1.bins.edges).toHaveLength(101);
    expect(f1.counts.n).toBe(20_000);
    // Percentile edges: about one hundredth of the reference in each bin.
    for (const b of f1.counts.bins.slice(1, 101)) expect(b).toBeGreaterThanOrEqual(150);
    expect(p.columns[6].bins.values).toEqual(['north', 'south', 'east', 'west']);
  });
});

describe('drift on every run', () => {
  it('a day drawn like the reference: every column ok, and the run says so', async () => {
    await ws.job('same.yaml', baseJob('same', { profile: 'profile.json' }));
    const res = await runCli(['run', ws.path('same.yaml'), '--date', SAME]);
    expect(res.code, res.stderr).toBe(0);
    const report = await drift('same', SAME);
    expect(report.status).toBe('ok');
    expect(Object.values(statuses(report))).toEqual(Array(8).fill('ok'));
    const manifest = JSON.parse(await ws.read(`out/same/dt=${SAME}/_manifest.json`));
    expect(manifest.drift).toMatchObject({ status: 'ok', drifted: [], file: '_drift.json', mode: 'warn' });
  });

  it('a day where two features shift, one scales, one goes missing, a region is new and the predictions move: exactly those drift', async () => {
    await ws.job('shifted.yaml', baseJob('shifted', { profile: 'profile.json' }));
    const res = await runCli(['run', ws.path('shifted.yaml'), '--date', SHIFTED]);
    expect(res.code, res.stderr).toBe(0);
    const report = await drift('shifted', SHIFTED);
    expect(statuses(report)).toEqual({ f1: 'drift', f2: 'drift', f3: 'drift', f4: 'drift', f5: 'ok', f6: 'ok', region: 'drift', probability: 'drift' });
    expect(report.status).toBe('drift');
    const byName = Object.fromEntries(report.columns.map((c) => [c.name, c]));
    expect(byName.f4!.missing_delta).toBeCloseTo(0.2, 1);
    expect(byName.region!.unseen_share).toBeCloseTo(0.1, 1);
    // PSI, JS and KS against a computation of their own, on the same bins.
    const ref = JSON.parse(await readFile(profile, 'utf8')) as { columns: Array<{ role: string; name: string; counts: { bins: number[] } }> };
    for (const c of report.columns) {
      const refBins = ref.columns.find((r) => r.name === c.name && r.role === c.role)!.counts.bins;
      const runBins = report.counts[`${c.role}:${c.name}`]!.bins;
      if (c.kind === 'numeric') {
        expect(c.psi, c.name).toBeCloseTo(psiOf(deciles(refBins), deciles(runBins)), 12);
        expect(c.ks, c.name).toBeCloseTo(ksOf(refBins, runBins), 12);
      } else {
        expect(c.js, c.name).toBeCloseTo(jsOf(refBins, runBins), 12);
      }
    }
    expect(res.stdout + res.stderr).toMatch(/drift {4}drift · drifted: f1, f2, f3, f4 and 2 more {2}\(_drift\.json; drift\.mode warn\)/);
  });

  it('under drift.mode: enforce, the drifted day fails naming its columns, with no _SUCCESS; _drift.json stays', async () => {
    await ws.job('enforced.yaml', baseJob('enforced', { profile: 'profile.json', mode: 'enforce' }));
    const res = await runCli(['run', ws.path('enforced.yaml'), '--date', SHIFTED]);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/nightscore: DRIFT_DETECTED: enforced 2026-03-02 drifted from its reference profile: f1 \(psi [\d.]+ at or over drift threshold 0\.25 and 3 × floor [\d.]+\), f2 \(psi .*\), f3 \(psi .*\), f4 \(missing share moved by 0\.2\d* \(threshold 0\.05, .*\)\), region \(.*unseen share 0\.09\d* \(threshold 0\.01\)\), probability \(js /);
    // The error line only: the worker's log lines carry ids and times in which 'f5' can occur.
    expect(res.stderr.split('\n').find((l) => l.startsWith('nightscore: DRIFT_DETECTED'))).not.toMatch(/\bf[56]\b/);
    expect(await ws.list(`out/enforced/dt=${SHIFTED}`)).not.toContain('_SUCCESS');
    expect((await drift('enforced', SHIFTED)).status).toBe('drift');
    const same = await runCli(['run', ws.path('enforced.yaml'), '--date', SAME]);
    expect(same.code, same.stderr).toBe(0);
  });

  it('200 rows against a reference of 20,000 are inconclusive, never ok', async () => {
    await ws.job('small.yaml', baseJob('small', { profile: 'profile.json' }));
    const res = await runCli(['run', ws.path('small.yaml'), '--date', SMALL]);
    expect(res.code, res.stderr).toBe(0);
    const report = await drift('small', SMALL);
    expect(report.status).toBe('inconclusive');
    expect(Object.values(statuses(report))).not.toContain('ok');
  });

  it("a profile built for another model is refused at plan time, before any row is read", async () => {
    await ws.job('mismatch.yaml', baseJob('mismatch', { profile: 'profile.json' }, 'other.onnx'));
    const res = await runCli(['run', ws.path('mismatch.yaml'), '--date', SAME]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/nightscore: PROFILE_MISMATCH: the drift profile .*profile\.json was built for the model with sha256 [0-9a-f]{64}; this run's model is [0-9a-f]{64}/);
    await expect(ws.list('out/mismatch')).rejects.toThrow();
  });

  it('the same date scored in process in one chunk, and by three queue workers in small chunks, writes the same _drift.json bytes', async () => {
    // One chunk here, dozens on the queue: the same rows counted in other groupings, merged in another order of arrival.
    const file = await ws.job('both.yaml', baseJob('both', { profile: 'profile.json' }));
    expect((await runCli(['run', file, '--date', SHIFTED])).code).toBe(0);
    expect(JSON.parse(await ws.read(`out/both/dt=${SHIFTED}/_manifest.json`)).chunks).toBe(1);
    const inProcess = await ws.read(`out/both/dt=${SHIFTED}/_drift.json`);
    await ws.job('both.yaml', { ...baseJob('both', { profile: 'profile.json' }), chunk: { rows: 500, bytes: 64 * 1024 } });
    const tq = await createTestQueue();
    try {
      for (let i = 0; i < 3; i++) await tq.startWorker();
      expect((await runCli(['run', file, '--date', SHIFTED, '--queue', '--force'], { env: tq.env })).code).toBe(0);
      const [status] = await tq.waitFor(file, SHIFTED, SHIFTED, allIn(['succeeded', 'failed']), 120_000);
      expect(status!.state, JSON.stringify(status)).toBe('succeeded');
      const manifest = JSON.parse(await ws.read(`out/both/dt=${SHIFTED}/_manifest.json`));
      expect(manifest.chunks).toBeGreaterThan(10);
      // Three workers took chunks: the merge met them in an order of their making.
      expect(tq.workerLogs().match(/"pid":(\d+).*"msg":"chunk scored"/g)?.length).toBeGreaterThan(10);
    } finally {
      await tq.close();
    }
    expect(await ws.read(`out/both/dt=${SHIFTED}/_drift.json`)).toBe(inProcess);
  });
});

describe('a profile attached to a registry version', () => {
  it('is what runs of models:/… measure against, with no drift block (mode warn); one built for another model is refused', async () => {
    const env = { NIGHTSCORE_REGISTRY_URI: ws.path('registry') };
    expect((await runCli(['model', 'register', 'drifty', ws.path('model.onnx'), '--alias', 'champion'], { env })).code).toBe(0);
    expect((await runCli(['model', 'register', 'drifty', ws.path('other.onnx')], { env })).code).toBe(0);
    const attached = await runCli(['model', 'profile', 'attach', 'drifty@champion', profile], { env });
    expect(attached.code, attached.stderr).toBe(0);
    expect(attached.stdout).toMatch(/^models:\/drifty\/1: profile attached \(.*registry\/drifty\/versions\/1\/profile\.json, sha256 [0-9a-f]{64}\)/);
    const wrong = await runCli(['model', 'profile', 'attach', 'drifty/2', profile], { env });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/PROFILE_MISMATCH: .*profile\.json was built for the model with sha256 [0-9a-f]{64}; drifty version 2 is [0-9a-f]{64}/);

    const job = { ...baseJob('registered', undefined), model: { uri: 'models:/drifty@champion', inputs: { num: FEATURES, region: 'region' } } };
    await ws.job('registered.yaml', job);
    const res = await runCli(['run', ws.path('registered.yaml'), '--date', SHIFTED], { env });
    expect(res.code, res.stderr).toBe(0);
    const manifest = JSON.parse(await ws.read(`out/registered/dt=${SHIFTED}/_manifest.json`));
    expect(manifest.drift).toMatchObject({ status: 'drift', mode: 'warn', profile: { uri: expect.stringMatching(/registry\/drifty\/versions\/1\/profile\.json$/) } });
    // Version 2 has none: its runs measure nothing, unless the job asks, which is then a clear error.
    await ws.job('v2.yaml', { ...job, name: 'v2', output: { uri: 'out/v2/dt={date}/', format: 'csv' }, model: { ...job.model, uri: 'models:/drifty/2' } });
    expect((await runCli(['run', ws.path('v2.yaml'), '--date', SAME], { env })).code).toBe(0);
    expect(JSON.parse(await ws.read(`out/v2/dt=${SAME}/_manifest.json`)).drift).toBeUndefined();
    await ws.job('v2.yaml', { ...job, name: 'v2', output: { uri: 'out/v2/dt={date}/', format: 'csv' }, model: { ...job.model, uri: 'models:/drifty/2' }, drift: { mode: 'enforce' } });
    const asked = await runCli(['run', ws.path('v2.yaml'), '--date', SAME], { env });
    expect(asked.code).toBe(2);
    expect(asked.stderr).toContain('PROFILE_NOT_FOUND: ' + ws.path('v2.yaml') + ': drift is set, but names no profile, and drifty version 2 has none attached');
  });
});

describe('what a run counts', () => {
  it('is what the model scored: rows the reader or the model rejected are not counted, missing values are', async () => {
    // A OneHotEncoder with handle_unknown="error" (zeros: 0) fails on the unknown region of one row.
    await ws.write('strict.onnx', driftModel(-0.2, 'error'));
    await ws.job('strict-build.yaml', baseJob('strict-build', undefined, 'strict.onnx'));
    expect((await runCli(['profile', 'build', ws.path('strict-build.yaml'), ws.path('reference.csv'), '-o', ws.path('strict.json')])).code).toBe(0);
    const text = day(2_000, 5, { missing: 0.1 }).replace('\nc5-7,', '\nc5-7,not-a-number,').replace(/(\nc5-9,[^\n]*,)[a-z]+\n/, '$1central\n');
    await ws.write('in/dt=2026-03-05/a.csv', text);
    await ws.job('counted.yaml', baseJob('counted', { profile: 'strict.json' }, 'strict.onnx'));
    const res = await runCli(['run', ws.path('counted.yaml'), '--date', '2026-03-05']);
    expect(res.code, res.stderr).toBe(0);
    const manifest = JSON.parse(await ws.read('out/counted/dt=2026-03-05/_manifest.json'));
    expect(manifest.rows).toEqual({ read: 2_000, scored: 1_998, rejected: 2 });
    const report = (await drift('counted', '2026-03-05')) as Report & { counts: Record<string, { n: number; missing: number; nan: number }> };
    for (const [column, c] of Object.entries(report.counts)) expect(c.n + c.missing + c.nan, column).toBe(1_998);
    expect(report.counts['feature:f4']!.missing).toBeGreaterThan(150);
  });
});

describe('drift against recent days', () => {
  it('baseline previous: 7 compares with the union of the last 7 succeeded dates, which equals a profile built from their inputs on the same bins', async () => {
    const week = ['2026-04-01', '2026-04-02', '2026-04-03', '2026-04-04', '2026-04-05', '2026-04-06', '2026-04-07'];
    for (const [i, d] of week.entries()) {
      const text = day(1_000, 100 + i);
      await ws.write(`week/dt=${d}/a.csv`, text);
      await ws.write(`seven/dt=${d}/a.csv`, text);
    }
    await ws.write('week/dt=2026-04-08/a.csv', day(1_000, 200, { shift: 1 }));
    await ws.job('weekly.yaml', { ...baseJob('weekly', { profile: 'profile.json', baseline: { previous: 7 } }), input: { ...baseJob('weekly', undefined).input, uri: 'week/dt={date}/' } });
    for (const d of [...week, '2026-04-08']) expect((await runCli(['run', ws.path('weekly.yaml'), '--date', d])).code, d).toBe(0);
    const report = JSON.parse(await ws.read('out/weekly/dt=2026-04-08/_drift.json'));
    expect(report.baseline).toEqual({ previous: 7 });
    expect(report.previous.dates).toEqual([...week].reverse());
    expect(report.previous.skipped).toEqual([]);
    // The union of the seven runs' counts is the profile of their inputs, counted on the same bins.
    const built = await runCli(['profile', 'build', ws.path('weekly.yaml'), ws.path('seven'), '--bins-from', profile, '-o', ws.path('seven.json')]);
    expect(built.code, built.stderr).toBe(0);
    const seven = JSON.parse(await ws.read('seven.json')) as { columns: Array<{ role: string; name: string; counts: unknown }> };
    expect(seven.columns).toHaveLength(8);
    for (const c of seven.columns) expect(JSON.stringify(report.previous.counts[`${c.role}:${c.name}`]), c.name).toBe(JSON.stringify(c.counts));
    // Judged against the week: f1 and f2 moved since; the manifest says which baseline it used.
    expect(report.previous.drifted).toEqual(expect.arrayContaining(['f1', 'f2']));
    const manifest = JSON.parse(await ws.read('out/weekly/dt=2026-04-08/_manifest.json'));
    expect(manifest.drift).toMatchObject({ baseline: { previous: 7 }, reference_status: report.status, status: report.previous.status });
  });
});
