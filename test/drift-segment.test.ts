import { readFile, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyCounts } from '../src/drift/counts.js';
import { checkProfile, type Profile } from '../src/drift/profile.js';
import { locateSegmentColumn, SegmentedCounter } from '../src/drift/segment.js';
import { ColumnKeys, type Batch } from '../src/formats/batch.js';
import type { FeatureColumn } from '../src/model/features.js';
import { driftModel, FEATURES, REGIONS, segmentDay } from './support/drift-day.js';
import { allIn, createTestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Drift per segment (docs/drift.md, "Segments"): with `drift.segment`, `profile build` fixes the
 * segment column's most frequent reference values in the profile, and every run reports each
 * segment against the same segment of the reference, beside the whole run.
 */

let ws: Workspace;
/** Segmented by region (a feature), by the job's drift.segment. */
let byRegion: string;
/** Segmented by store (a key column), by --segment over a job without one. */
let byStore: string;
/** Not segmented. */
let plain: string;

const job = (name: string, drift: Record<string, unknown> | undefined, chunk: Record<string, unknown> = {}) => ({
  name,
  input: { uri: 'in/dt={date}/', format: 'csv', key: ['id', 'store'] },
  model: { path: 'model.onnx', inputs: { num: FEATURES, region: 'region' } },
  output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
  chunk,
  limits: { max_reject_rate: 0.01 },
  ...(drift ? { drift } : {}),
});

const SAME = '2026-04-01';
const EAST = '2026-04-02';
const STORES = '2026-04-03';
const REFERENCE = segmentDay(40_000, 11, { noStore: 0.01 });
const STORES_DAY = segmentDay(10_000, 14, { newStore: 0.05, noStore: 0.02 });

beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write('model.onnx', driftModel());
  await ws.write('reference.csv', REFERENCE);
  await ws.write(`in/dt=${SAME}/a.csv`, segmentDay(40_000, 12));
  await ws.write(`in/dt=${EAST}/a.csv`, segmentDay(40_000, 13, { region: 'east', shift: 1.5 }));
  await ws.write(`in/dt=${STORES}/a.csv`, STORES_DAY);
  await ws.job('build-region.yaml', job('build-region', { segment: 'region' }));
  await ws.job('build.yaml', job('build', undefined));
  byRegion = ws.path('by-region.json');
  byStore = ws.path('by-store.json');
  plain = ws.path('plain.json');
  const built = await Promise.all([
    runCli(['profile', 'build', ws.path('build-region.yaml'), ws.path('reference.csv'), '-o', byRegion]),
    runCli(['profile', 'build', ws.path('build.yaml'), ws.path('reference.csv'), '-o', byStore, '--segment', 'store']),
    runCli(['profile', 'build', ws.path('build.yaml'), ws.path('reference.csv'), '-o', plain]),
  ]);
  for (const b of built) expect(b.code, b.stderr).toBe(0);
  expect(built[0]!.stderr).toMatch(/segments of region: 4 values, then OTHER and NULL/);
});
afterAll(async () => {
  await ws?.remove();
});

interface SegmentReport {
  segment: { kind: string; value?: string };
  rows: number;
  rows_ref: number;
  status: string;
  drifted: string[];
  columns: Array<{ name: string; status: string }>;
}
interface Report {
  status: string;
  segment_column?: string;
  segments?: SegmentReport[];
}

const report = async (name: string, date: string): Promise<Report> => JSON.parse(await ws.read(`out/${name}/dt=${date}/_drift.json`)) as Report;
const readProfileFile = async (file: string): Promise<Profile> => JSON.parse(await readFile(file, 'utf8')) as Profile;
const label = (s: SegmentReport['segment']) => (s.kind === 'value' ? s.value! : s.kind.toUpperCase());
const storesOf = (csv: string) => csv.trim().split('\n').slice(1).map((line) => line.split(',')[1]!);

describe('a segmented profile', () => {
  it('fixes the segment values and counts each segment on the profile\'s own bins, adding up to the whole reference', async () => {
    const p = await readProfileFile(byRegion);
    expect(p.segment!.column).toBe('region');
    // Ties and all: the most frequent first, here the four regions a quarter each.
    expect([...p.segment!.values].sort()).toEqual([...REGIONS].sort());
    expect(p.segment!.segments.map((s) => s.segment)).toEqual([...p.segment!.values.map((value) => ({ kind: 'value', value })), { kind: 'other' }, { kind: 'null' }]);
    expect(p.segment!.segments.reduce((a, s) => a + s.rows, 0)).toBe(40_000);
    const f1 = p.columns[0]!;
    for (const s of p.segment!.segments) expect(s.counts['feature:f1']!.bins).toHaveLength(f1.counts.bins.length);
    const summed = f1.counts.bins.map((_, b) => p.segment!.segments.reduce((a, s) => a + s.counts['feature:f1']!.bins[b]!, 0));
    expect(summed).toEqual(f1.counts.bins);
  });

  it('keeps the 50 most frequent values of a column with more (ties in code-unit order); the rest are OTHER, an empty value NULL', async () => {
    const p = await readProfileFile(byStore);
    const tally = new Map<string, number>();
    for (const s of storesOf(REFERENCE)) if (s !== '') tally.set(s, (tally.get(s) ?? 0) + 1);
    expect(tally.size).toBe(60);
    const top = [...tally].sort(([a, m], [b, n]) => n - m || (a < b ? -1 : 1)).slice(0, 50).map(([s]) => s);
    expect(p.segment!.values).toEqual(top);
    const rows = Object.fromEntries(p.segment!.segments.map((s) => [label(s.segment), s.rows]));
    expect(rows.OTHER).toBe([...tally].filter(([s]) => !top.includes(s)).reduce((a, [, n]) => a + n, 0));
    expect(rows.NULL).toBe(storesOf(REFERENCE).filter((s) => s === '').length);
  });

  it('built with --bins-from an unsegmented profile, fixes the same segments and counts as one fitted on the same reference', async () => {
    const file = ws.path('from-plain.json');
    const built = await runCli(['profile', 'build', ws.path('build.yaml'), ws.path('reference.csv'), '-o', file, '--bins-from', plain, '--segment', 'store']);
    expect(built.code, built.stderr).toBe(0);
    const [from, fitted] = [await readProfileFile(file), await readProfileFile(byStore)];
    expect(from.segment!.values).toHaveLength(50);
    expect(from.segment).toEqual(fitted.segment);
  });
});

describe('drift per segment', () => {
  it('a day where only east shifts: east drifts on f1, f2 and the prediction, every other region is ok', async () => {
    await ws.job('east.yaml', job('east', { profile: 'by-region.json', segment: 'region' }));
    const res = await runCli(['run', ws.path('east.yaml'), '--date', EAST]);
    expect(res.code, res.stderr).toBe(0);
    const r = await report('east', EAST);
    expect(r.segment_column).toBe('region');
    const by = Object.fromEntries(r.segments!.map((s) => [label(s.segment), s]));
    // OTHER and NULL have no rows on either side: not reported.
    expect(Object.keys(by).sort()).toEqual([...REGIONS].sort());
    expect(by.east!.status).toBe('drift');
    expect(by.east!.drifted).toEqual(['f1', 'f2', 'probability']);
    for (const region of REGIONS.filter((x) => x !== 'east')) {
      expect(by[region]!.status, region).toBe('ok');
      expect(by[region]!.columns.map((c) => c.status), region).toEqual(Array(8).fill('ok'));
    }
    expect(by.east!.rows + by.north!.rows + by.south!.rows + by.west!.rows).toBe(40_000);
    const manifest = JSON.parse(await ws.read(`out/east/dt=${EAST}/_manifest.json`));
    expect(manifest.drift.segments).toEqual({ column: 'region', drifted: [{ kind: 'value', value: 'east' }], drifted_total: 1 });
    expect(res.stdout + res.stderr).toMatch(/segments of region drifted: "east" {2}\(_drift\.json; drift\.mode warn\)/);
  });

  it('a day drawn like the reference: every segment ok', async () => {
    await ws.job('same.yaml', job('same', { profile: 'by-region.json', segment: 'region' }));
    const res = await runCli(['run', ws.path('same.yaml'), '--date', SAME]);
    expect(res.code, res.stderr).toBe(0);
    const r = await report('same', SAME);
    expect(r.segments!.map((s) => `${label(s.segment)}:${s.status}`).sort()).toEqual(REGIONS.map((x) => `${x}:ok`).sort());
  });

  it('a store the reference never had falls into OTHER with the stores past the 50, an empty one into NULL', async () => {
    await ws.job('stores.yaml', job('stores', { profile: 'by-store.json', segment: 'store' }));
    const res = await runCli(['run', ws.path('stores.yaml'), '--date', STORES]);
    expect(res.code, res.stderr).toBe(0);
    const top = (await readProfileFile(byStore)).segment!.values;
    const day = storesOf(STORES_DAY);
    const rows = Object.fromEntries((await report('stores', STORES)).segments!.map((s) => [label(s.segment), s.rows]));
    expect(day.filter((s) => s === 's-new').length).toBeGreaterThan(0);
    expect(rows.OTHER).toBe(day.filter((s) => s !== '' && !top.includes(s)).length);
    expect(rows.NULL).toBe(day.filter((s) => s === '').length);
    expect(rows.s00).toBe(day.filter((s) => s === 's00').length);
  });

  it('the same date in one chunk and in dozens of small chunks writes the same _drift.json bytes', async () => {
    const file = await ws.job('chunks.yaml', job('chunks', { profile: 'by-region.json', segment: 'region' }));
    expect((await runCli(['run', file, '--date', EAST])).code).toBe(0);
    expect(JSON.parse(await ws.read(`out/chunks/dt=${EAST}/_manifest.json`)).chunks).toBe(1);
    const one = await ws.read(`out/chunks/dt=${EAST}/_drift.json`);
    await ws.job('chunks.yaml', job('chunks', { profile: 'by-region.json', segment: 'region' }, { rows: 500, bytes: 64 * 1024 }));
    const many = await runCli(['run', file, '--date', EAST, '--force']);
    expect(many.code, many.stderr).toBe(0);
    expect(JSON.parse(await ws.read(`out/chunks/dt=${EAST}/_manifest.json`)).chunks).toBeGreaterThan(10);
    expect(await ws.read(`out/chunks/dt=${EAST}/_drift.json`)).toBe(one);
  });

  it('and on three queue workers, the same bytes again', async () => {
    const file = ws.path('chunks.yaml');
    const one = await ws.read(`out/chunks/dt=${EAST}/_drift.json`);
    // Gone before, so the bytes compared are the queue run's own.
    await rm(ws.path(`out/chunks/dt=${EAST}/_drift.json`));
    // On the queue each chunk's counts come back through Redis as its job's return value, merged in their order of arrival.
    const tq = await createTestQueue();
    try {
      for (let i = 0; i < 3; i++) await tq.startWorker();
      expect((await runCli(['run', file, '--date', EAST, '--queue', '--force'], { env: tq.env })).code).toBe(0);
      const [status] = await tq.waitFor(file, EAST, EAST, allIn(['succeeded', 'failed']), 60_000);
      expect(status!.state, JSON.stringify(status)).toBe('succeeded');
    } finally {
      await tq.close();
    }
    expect(await ws.read(`out/chunks/dt=${EAST}/_drift.json`)).toBe(one);
  });
});

describe('refused at plan time', () => {
  it('a job that segments, with a profile that has no segments or segments by another column: PROFILE_MISMATCH, exit 2, nothing read', async () => {
    await ws.job('unsegmented.yaml', job('unsegmented', { profile: 'plain.json', segment: 'region' }));
    const res = await runCli(['run', ws.path('unsegmented.yaml'), '--date', SAME]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/nightscore: PROFILE_MISMATCH: the job sets drift.segment: region, and the drift profile .*plain\.json has no segments/);
    await ws.job('other.yaml', job('other', { profile: 'by-store.json', segment: 'region' }));
    const other = await runCli(['run', ws.path('other.yaml'), '--date', SAME]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/PROFILE_MISMATCH: .*by-store\.json is segmented by "store"/);
    await expect(ws.list('out/unsegmented')).rejects.toThrow();
    await expect(ws.list('out/other')).rejects.toThrow();
  });

  it('a segment column that is neither a key nor a feature: JOB_INVALID naming it', async () => {
    await ws.job('nowhere.yaml', job('nowhere', { profile: 'by-region.json', segment: 'country' }));
    const res = await runCli(['run', ws.path('nowhere.yaml'), '--date', SAME]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/nightscore: JOB_INVALID: drift.segment: "country" is neither a key column \(input.key: "id", "store"\) nor a column the model reads/);
  });
});

describe("a segment block read back", () => {
  const forged = async (edit: (p: Profile) => void): Promise<unknown> => {
    const p = await readProfileFile(byRegion);
    edit(p);
    try {
      checkProfile(p, 'forged.json');
    } catch (err) {
      return err;
    }
    return undefined;
  };

  it('is checked as its type: a forged block is PROFILE_INVALID naming the field', async () => {
    expect(await forged(() => undefined)).toBeUndefined();
    expect(await forged((p) => p.segment!.values.push(p.segment!.values[0]!))).toMatchObject({ code: 'PROFILE_INVALID', column: 'segment.values' });
    expect(await forged((p) => { p.segment!.values = Array.from({ length: 51 }, (_, i) => `v${i}`); })).toMatchObject({ code: 'PROFILE_INVALID', column: 'segment.values' });
    expect(await forged((p) => { p.segment!.segments[0]!.segment = { kind: 'other' }; })).toMatchObject({ code: 'PROFILE_INVALID', column: 'segment.segments[0].segment' });
    expect(await forged((p) => { p.segment!.segments.pop(); })).toMatchObject({ code: 'PROFILE_INVALID', column: 'segment.segments' });
    // A count moved from one bin to another: the bins still add up to n, but no longer to the profile's counts.
    expect(await forged((p) => {
      const bins = p.segment!.segments[1]!.counts['feature:f1']!.bins;
      bins[50]! += 1;
      bins[51]! -= 1;
    })).toMatchObject({ code: 'PROFILE_INVALID', message: expect.stringMatching(/segment\.segments: expected the segments' counts of feature:f1 to add up/) });
    expect(await forged((p) => { p.segment!.segments[2]!.counts['feature:f2']!.n += 1; })).toMatchObject({ code: 'PROFILE_INVALID', column: 'segment.segments[2].counts.feature:f2.n' });
    expect(await forged((p) => { p.segment!.segments[0]!.rows += 1; })).toMatchObject({ code: 'PROFILE_INVALID', column: expect.stringMatching(/^segment\.segments\[0\]\.counts\.feature:f1\.n$/) });
    expect(await forged((p) => { delete p.segment!.segments[3]!.counts['prediction:probability']; })).toMatchObject({ code: 'PROFILE_INVALID', column: 'segment.segments[3].counts' });
    // A value spelled like a marker is a value: the markers are tagged, never text.
    expect(await forged((p) => { p.segment!.segments[0]!.segment = { kind: 'value', value: 'OTHER' }; })).toMatchObject({ code: 'PROFILE_INVALID', column: 'segment.segments[0].segment' });
  });
});

describe('a row\'s segment', () => {
  /** Counts one batch of a model reading `columns` (one probability output) into segments of `segment`, and gives each segment's rows. */
  const segmentRows = (rows: number, columns: FeatureColumn[], values: Batch['columns'], float32: number[], segment: string, fixed: string[]): Record<string, number> => {
    const output = { output: 'p', type: 'float32' as const, names: ['p'] };
    const profile = { columns: [
      ...columns.map((c) => ({ name: c.name, role: 'feature' as const, bins: { kind: 'discrete' as const, values: [] }, counts: emptyCounts({ kind: 'discrete', values: [] }) })),
      { name: 'p', role: 'prediction' as const, bins: { kind: 'probability' as const }, counts: emptyCounts({ kind: 'probability' }) },
    ] };
    const model = { columns, outputs: [output] };
    const counter = new SegmentedCounter(profile, fixed, model, locateSegmentColumn(segment, [], columns));
    const batch: Batch = { rows, features: Float32Array.from(float32), columns: values, keys: new ColumnKeys([], new Int32Array(0)), lines: new Float64Array(rows) };
    counter.add(batch, [], [{ columns: output, data: new Float32Array(rows).fill(0.5) }]);
    return Object.fromEntries(Object.entries(counter.result()).map(([k, v]) => [k, v.rows]));
  };

  it('of a float32 column is its shortest text at float32, a NaN (missing) NULL, -0 the segment of 0', () => {
    const columns: FeatureColumn[] = [{ name: 'x', type: 'float32', missing: true }];
    expect(segmentRows(6, columns, [undefined], [0.1, 0.1, NaN, -0, 0, 2.5], 'x', ['0.1', '0'])).toEqual({ null: 1, other: 1, 'value:0': 2, 'value:0.1': 2 });
  });

  it('of an int64 column is its exact digits: two values past 2^53 that are one double are two segments', () => {
    const columns: FeatureColumn[] = [{ name: 'n', type: 'int64', missing: false }];
    const values = BigInt64Array.from([2n ** 53n, 2n ** 53n + 1n, 2n ** 53n + 1n]);
    expect(segmentRows(3, columns, [values], [], 'n', ['9007199254740992', '9007199254740993'])).toEqual({ 'value:9007199254740992': 1, 'value:9007199254740993': 2 });
  });
});
