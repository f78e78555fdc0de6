import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driftChartData, rankColumns } from '../src/drift/history.js';
import type { DriftReport } from '../src/drift/report.js';
import { createMetrics, MAX_DRIFT_COLUMNS, MAX_DRIFT_JOBS } from '../src/observe/metrics.js';
import { day, driftModel, FEATURES } from './support/drift-day.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Seeing drift (issue #27): `nightscore drift` tells a job's drift per date from its runs'
 * `_drift.json` and draws PSI over time; `status` marks a date that drifted; the worker that
 * commits a run exports its drift on /metrics; and a job with `alerts.on: [drift]` is told.
 */

const SAME = '2026-03-01';
const SHIFTED = '2026-03-02';
/** Scored by the job's file without a drift block: no drift measured. */
const PLAIN = '2026-03-03';
/** Never run. */
const MISSING = '2026-03-04';

let ws: Workspace;
let receiver: Server;
const posts: Array<Record<string, unknown>> = [];
let jobFile: string;

const baseJob = (drift: Record<string, unknown> | undefined, alerts?: Record<string, unknown>) => ({
  name: 'seen',
  input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'], missing: { f4: 'nan' } },
  model: { path: 'model.onnx', inputs: { num: FEATURES, region: 'region' } },
  output: { uri: 'out/seen/dt={date}/', format: 'csv' },
  limits: { max_reject_rate: 0.01 },
  ...(drift ? { drift } : {}),
  ...(alerts ? { alerts } : {}),
});

beforeAll(async () => {
  ws = await Workspace.create();
  receiver = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      posts.push(JSON.parse(text) as Record<string, unknown>);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  await ws.write('model.onnx', driftModel());
  await ws.write('reference.csv', day(5_000, 1));
  await ws.write(`in/dt=${SAME}/a.csv`, day(5_000, 2));
  await ws.write(`in/dt=${SHIFTED}/a.csv`, day(5_000, 3, { shift: 1, scale: 2, missing: 0.2, unseen: 0.1 }));
  await ws.write(`in/dt=${PLAIN}/a.csv`, day(5_000, 4));
  const plain = await ws.job('plain.yaml', baseJob(undefined));
  const built = await runCli(['profile', 'build', plain, ws.path('reference.csv'), '-o', ws.path('profile.json')]);
  expect(built.code, built.stderr).toBe(0);
  jobFile = await ws.job('seen.yaml', baseJob({ profile: 'profile.json' }, { webhook, on: ['drift'] }));
  for (const [file, date] of [[jobFile, SAME], [jobFile, SHIFTED], [plain, PLAIN]] as const) {
    const res = await runCli(['run', file, '--date', date]);
    expect(res.code, res.stderr).toBe(0);
  }
  // A _drift.json the date's run did not write (its manifest measured no drift) speaks for nothing.
  await ws.write(`out/seen/dt=${PLAIN}/_drift.json`, await ws.read(`out/seen/dt=${SHIFTED}/_drift.json`));
}, 120_000);
afterAll(async () => {
  await new Promise((r) => receiver?.close(r));
  await ws?.remove();
});

interface Column {
  name: string;
  status: string;
  statistic: string;
  value: number | null;
  psi: number | null;
}
const report = async (date: string) => JSON.parse(await ws.read(`out/seen/dt=${date}/_drift.json`)) as { status: string; drifted: string[]; columns: Column[] };
const lineOf = (stdout: string, date: string) => stdout.split('\n').find((l) => l.startsWith(date)) ?? '';
/** The columns to look at first: those that make the overall status (drift, warn, inconclusive), then ok, each by its primary statistic, highest first. */
const ORDER = ['drift', 'warn', 'inconclusive', 'ok'];
const topColumns = (r: { columns: Column[] }) =>
  [...r.columns]
    .sort((a, b) => ORDER.indexOf(a.status) - ORDER.indexOf(b.status) || (b.value ?? -1) - (a.value ?? -1))
    .slice(0, 5)
    .map((c) => `${c.name} ${c.statistic} ${c.value === null ? '-' : +c.value.toPrecision(3)} ${c.status}`)
    .join(', ');

describe('nightscore drift', () => {
  it('prints a line per date: its run, its drift status and the five columns to look at first; exits 1 as a date drifted', async () => {
    const res = await runCli(['drift', jobFile, '--from', SAME, '--to', MISSING]);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toMatch(/^seen {2}output \S*out\/seen\/dt=\{date\}\/ {2}\(\S*seen\.yaml\)\nDATE +RUN +DRIFT +TOP COLUMNS\n/);
    const cells = (date: string) => lineOf(res.stdout, date).split(/ {2,}/);
    for (const date of [SAME, SHIFTED]) {
      const r = await report(date);
      expect(cells(date)).toEqual([date, 'succeeded', r.status, topColumns(r)]);
    }
    expect(cells(SHIFTED)[3]).toMatch(/^(\S+ (psi|js) [\d.]+ drift(, |$)){5}/);
    expect(cells(PLAIN)).toEqual([PLAIN, 'succeeded', '-', 'no drift measured']);
    expect(cells(MISSING)).toEqual([MISSING, 'missing', '-']);
    // No date in range drifted: exit 0.
    expect((await report(SAME)).status).not.toBe('drift');
    expect((await runCli(['drift', jobFile, '--from', SAME, '--to', SAME])).code).toBe(0);
  });

  it('--svg writes PSI per column over the dates, one line per column, with no script', async () => {
    const res = await runCli(['drift', jobFile, '--from', SAME, '--to', MISSING, '--svg', ws.path('drift.svg')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`chart    ${ws.path('drift.svg')}: PSI per column, 8 columns\n`);
    const svg = await readFile(ws.path('drift.svg'), 'utf8');
    expect(svg).toMatch(/^<svg /);
    expect(svg).not.toMatch(/<script|javascript:|href=/i);
    // A legend entry per column, its name as text.
    for (const column of [...FEATURES, 'region', 'probability']) expect(svg).toContain(`>${column}<title>${column}</title></text>`);
    // Each point's tooltip names its column, date and PSI: the shifted date's f1 is there, past the drift rule.
    const f1 = (await report(SHIFTED)).columns.find((c) => c.name === 'f1')!;
    expect(svg).toContain(`<title>f1 2026-03-02: PSI ${+f1.psi!.toPrecision(3)}</title>`);
    expect(f1.psi).toBeGreaterThan(0.25);
  });

  it('--png writes the same chart as PNG; --json gives every column of every date', async () => {
    const res = await runCli(['drift', jobFile, '--from', SAME, '--to', MISSING, '--png', ws.path('drift.png'), '--json']);
    expect(res.code).toBe(1);
    const png = await readFile(ws.path('drift.png'));
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.length).toBeGreaterThan(5_000);
    const json = JSON.parse(res.stdout) as Array<{ date: string; state: string; drift: { status: string; drifted: string[]; columns: Column[] } | null }>;
    expect(json.map((d) => [d.date, d.state, d.drift?.status ?? null])).toEqual([
      [SAME, 'succeeded', (await report(SAME)).status],
      [SHIFTED, 'succeeded', 'drift'],
      [PLAIN, 'succeeded', null],
      [MISSING, 'missing', null],
    ]);
    expect(json[1]!.drift!.drifted).toEqual((await report(SHIFTED)).drifted);
    expect(json[1]!.drift!.columns.map((c) => c.name)).toEqual([...FEATURES, 'region', 'probability']);
  });
});

describe('drift in status, /metrics and alerts', () => {
  let tq: TestQueue;
  beforeAll(async () => {
    tq = await createTestQueue();
  });
  afterAll(async () => {
    await tq?.close();
  });

  it('alerts.on: [drift] posts once, for the date that drifted, naming its columns', () => {
    expect(posts.map((p) => p.date)).toEqual([SHIFTED]);
    expect(posts[0]).toMatchObject({ status: 'succeeded', drift: { status: 'drift', drifted: ['f1', 'f2', 'f3', 'f4', 'region', 'probability'] } });
    expect(posts[0]!.text).toMatch(/^nightscore: seen 2026-03-02 succeeded: 5000 rows scored, 0 rejected · drift: f1, f2, f3, f4, region, probability \(.*\/out\/seen\/dt=2026-03-02\/_drift\.json\)$/);
  });

  it('status marks the date that drifted, with its columns', async () => {
    const res = await runCli(['status', jobFile, '--from', SAME, '--to', PLAIN], { env: tq.env });
    expect(res.code, res.stderr).toBe(0);
    expect(lineOf(res.stdout, SHIFTED)).toMatch(/^2026-03-02 {2}succeeded .* · drift: f1, f2, f3, f4 and 2 more$/);
    expect(lineOf(res.stdout, SAME)).not.toContain('drift');
    expect(lineOf(res.stdout, PLAIN)).not.toContain('drift');
  });

  it("the worker that commits a drifted run exports its columns' PSI and its status on /metrics, and alerts", async () => {
    posts.length = 0;
    const worker = await tq.startWorker();
    const res = await runCli(['run', jobFile, '--date', SHIFTED, '--queue', '--wait', '--force'], { env: tq.env });
    expect(res.code, res.stderr).toBe(0);
    await tq.waitFor(jobFile, SHIFTED, SHIFTED, allIn(['succeeded']));
    const metrics = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
    expect(metrics).toContain('nightscore_drift_status{job="seen"} 2\n');
    const psi = Object.fromEntries([...metrics.matchAll(/^nightscore_drift_psi\{job="seen",column="(\w+)"\} (\S+)$/gm)].map((m) => [m[1], Number(m[2])]));
    const expected = Object.fromEntries((await report(SHIFTED)).columns.filter((c) => c.psi !== null).map((c) => [c.name, c.psi]));
    expect(psi).toEqual(expected);
    expect(psi.f1).toBeGreaterThan(0.25);
    for (let deadline = Date.now() + 5_000; posts.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    expect(posts.map((p) => p.date)).toEqual([SHIFTED]);
  }, 90_000);
});

/** A report with only what the views read: each column's name, status, primary statistic and PSI. */
const fake = (date: string, columns: Array<[name: string, status: string, value: number | null, psi?: number | null]>) =>
  ({ date, status: 'warn', policy: { psi: { warn: 0.1, drift: 0.25 } }, columns: columns.map(([name, status, value, psi]) => ({ name, status, statistic: 'psi', value, psi: psi === undefined ? value : psi })) }) as unknown as DriftReport;

describe('what is shown of many columns', () => {
  it('the columns to look at first are those that make the overall status, each by its statistic, not the highest values alone', () => {
    const r = fake(SAME, [
      ['calm', 'ok', 0.09],
      ['gone', 'drift', 0.01],
      ['few', 'inconclusive', 0.3],
      ['moved', 'warn', 0.12],
      ['more', 'drift', 0.5],
      ['empty', 'ok', null],
    ]);
    expect(rankColumns(r, 5).map((c) => c.name)).toEqual(['more', 'gone', 'moved', 'few', 'calm']);
  });

  it('the chart draws the 8 columns with the highest PSI on any date, and says how many it left out', () => {
    const columns = (scale: number) => Array.from({ length: 12 }, (_, i) => [`c${i}`, 'ok', i === 0 ? 0.9 * (1 - scale) : i * 0.01 * scale] as [string, string, number]);
    const { data, left } = driftChartData([
      { date: SAME, state: 'succeeded', report: fake(SAME, columns(0)) },
      { date: SHIFTED, state: 'succeeded', report: undefined },
      { date: PLAIN, state: 'succeeded', report: fake(PLAIN, columns(1)) },
    ]);
    expect(left).toBe(4);
    expect(data.series.map((s) => s.column)).toEqual(['c0', 'c11', 'c10', 'c9', 'c8', 'c7', 'c6', 'c5']);
    expect(data.series[0]!.values).toEqual([0.9, null, 0]);
    expect(data.thresholds).toEqual({ warn: 0.1, drift: 0.25 });
  });

  it(`/metrics keeps at most ${MAX_DRIFT_COLUMNS} columns per job and the ${MAX_DRIFT_JOBS} jobs last committed, each job's series its last run's`, async () => {
    const metrics = createMetrics(async () => []);
    try {
      metrics.recordDrift('first', { status: 'drift', psi: [{ column: 'old', psi: 1 }] });
      metrics.recordDrift('first', { status: 'ok', psi: Array.from({ length: 30 }, (_, i) => ({ column: `c${i}`, psi: 1 / (i + 1) })) });
      for (let j = 0; j < MAX_DRIFT_JOBS; j++) metrics.recordDrift(`job${j}`, { status: 'inconclusive', psi: [{ column: 'x', psi: 0 }] });
      let text = await metrics.registry.metrics();
      // One job too many: the one committed longest ago is forgotten.
      expect(text).not.toContain('job="first"');
      expect(text).toContain(`nightscore_drift_status{job="job${MAX_DRIFT_JOBS - 1}"} 3\n`);
      metrics.recordDrift('first', { status: 'warn', psi: Array.from({ length: 30 }, (_, i) => ({ column: `c${i}`, psi: 1 / (i + 1) })) });
      text = await metrics.registry.metrics();
      expect(text.match(/^nightscore_drift_psi\{job="first",/gm)).toHaveLength(MAX_DRIFT_COLUMNS);
      expect(text).toContain('nightscore_drift_status{job="first"} 1\n');
      expect(text).not.toContain('job="job0"');
      expect(text.match(/^nightscore_drift_status\{/gm)).toHaveLength(MAX_DRIFT_JOBS);
    } finally {
      metrics.stop();
    }
  });
});
