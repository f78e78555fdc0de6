import { DuckDBInstance } from '@duckdb/node-api';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { day, driftModel, FEATURES } from './support/drift-day.js';
import { createTestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * The sticky canary (docs/shadow.md, "The sticky canary"): rows whose key hashes below the
 * fraction are scored by the canary model in the published output, and a model_version column
 * says which model scored each row. The split is the same on every date and re-run, and a data
 * team reproduces it in SQL; the test does so with DuckDB's md5.
 */

let ws: Workspace;
const ROWS = 5000;
const FRACTION = 0.1;
const SALT = '2026-q4';
const DATES = ['2026-04-01', '2026-04-02'];

beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write('champion.onnx', driftModel(-0.2));
  await ws.write('canary.onnx', driftModel(0.4));
  // The same customers on both dates, with other values.
  await ws.write(`in/dt=${DATES[0]}/a.csv`, day(ROWS, 31));
  await ws.write(`in/dt=${DATES[1]}/a.csv`, day(ROWS, 32).replace(/^c32-/gm, 'c31-'));
  await ws.job('canary.yaml', {
    name: 'canary',
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { path: 'champion.onnx', inputs: { num: FEATURES, region: 'region' } },
    output: { uri: 'out/dt={date}/', format: 'csv' },
    canary: { uri: 'canary.onnx', fraction: FRACTION, salt: SALT },
  });
});
afterAll(async () => {
  await ws?.remove();
});

/** Each model's probability per key for a date, straight from onnxruntime. */
async function direct(date: string): Promise<Record<'champion' | 'canary', Map<string, number>>> {
  const lines = (await ws.read(`in/dt=${date}/a.csv`)).trim().split('\n').slice(1).map((l) => l.split(','));
  const feeds = {
    num: new ort.Tensor('float32', Float32Array.from(lines.flatMap((l) => FEATURES.map((_, j) => Number(l[1 + j])))), [lines.length, FEATURES.length]),
    region: new ort.Tensor('string', lines.map((l) => l[1 + FEATURES.length]!), [lines.length, 1]),
  };
  const run = async (file: string) => {
    const session = await ort.InferenceSession.create(ws.path(file));
    const p = (await session.run(feeds)).probability!.data as Float32Array;
    await session.release();
    return new Map(lines.map((l, i) => [l[0]!, p[i]!]));
  };
  return { champion: await run('champion.onnx'), canary: await run('canary.onnx') };
}

/** The date's published rows: key → [probability, model_version]. */
async function published(date: string): Promise<Map<string, [number, string]>> {
  const [header, ...rows] = (await ws.read(`out/dt=${date}/part-00000.csv`)).trim().split('\n');
  expect(header).toBe('id,probability,model_version');
  const out = new Map<string, [number, string]>();
  for (const row of rows) {
    const [id, p, version] = row.split(',');
    // Every row once.
    expect(out.has(id!)).toBe(false);
    out.set(id!, [Math.fround(Number(p)), version!]);
  }
  return out;
}

describe('a sticky canary', () => {
  it('publishes the canary rows from the canary model, the same keys on two dates and on a re-run, a split DuckDB reproduces', async () => {
    const canaryKeys: string[][] = [];
    for (const date of [...DATES, DATES[0]!]) {
      const run = await runCli(['run', ws.path('canary.yaml'), '--date', date]);
      expect(run.code, run.stderr).toBe(0);
      const manifest = JSON.parse(await ws.read(`out/dt=${date}/_manifest.json`));
      const { labels, threshold } = manifest.canary;
      expect(labels.canary).not.toBe(labels.champion);
      const rows = await published(date);
      expect(rows.size).toBe(ROWS);
      expect(manifest.rows).toEqual({ read: ROWS, scored: ROWS, rejected: 0 });
      const scores = await direct(date);
      const onCanary: string[] = [];
      for (const [id, [p, version]] of rows) {
        const model = version === labels.canary ? 'canary' : 'champion';
        expect(version === labels.canary || version === labels.champion).toBe(true);
        expect(p).toBe(scores[model].get(id));
        if (model === 'canary') onCanary.push(id);
      }
      expect(manifest.canary.rows).toEqual({ champion: ROWS - onCanary.length, canary: onCanary.length });
      expect(run.stdout).toContain(`  canary   ${onCanary.length} rows by ${labels.canary} (10.0% of keys, salt "${SALT}")`);
      // Binomial: n = 5000, p = 0.1, σ = √(n p (1 − p)) ≈ 21.2; within 5σ.
      expect(Math.abs(onCanary.length - ROWS * FRACTION)).toBeLessThan(5 * Math.sqrt(ROWS * FRACTION * (1 - FRACTION)));
      canaryKeys.push(onCanary.sort());

      // The split as a data team computes it: the first 8 bytes of md5(salt || '\x1f' || key) below T.
      const db = await DuckDBInstance.create(':memory:');
      const sql = await db.connect();
      const reader = await sql.runAndReadAll(
        `SELECT id FROM read_csv('${ws.path(`out/dt=${date}/part-00000.csv`)}', header = true, all_varchar = true)
         WHERE ('0x' || substr(md5('${SALT}' || chr(31) || id), 1, 16))::UBIGINT < ${threshold}::UBIGINT ORDER BY id`,
      );
      expect(reader.getRowObjects().map((r) => r.id as string)).toEqual(canaryKeys.at(-1));
      sql.closeSync();
    }
    expect(canaryKeys[1]).toEqual(canaryKeys[0]);
    expect(canaryKeys[2]).toEqual(canaryKeys[0]);
  });

  it('backfill --reprocess stale counts a canary date\'s second model: another canary, or none, makes the date stale', async () => {
    const job = (canary: Record<string, unknown> | undefined) =>
      ws.job('canary.yaml', {
        name: 'canary',
        input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
        model: { path: 'champion.onnx', inputs: { num: FEATURES, region: 'region' } },
        output: { uri: 'out/dt={date}/', format: 'csv' },
        ...(canary ? { canary } : {}),
      });
    const tq = await createTestQueue();
    try {
      const line = async () => {
        const dry = await runCli(['backfill', ws.path('canary.yaml'), '--from', DATES[0]!, '--to', DATES[0]!, '--reprocess', 'stale', '--dry-run'], { env: tq.env });
        expect(dry.code, dry.stderr).toBe(0);
        return dry.stdout.split('\n').find((l) => l.startsWith(DATES[0]!))!;
      };
      expect(await line()).toMatch(/skip\s+scored by sha256 [0-9a-f]{12}$/);
      // status names the date's second model and the rows it published.
      const manifest = JSON.parse(await ws.read(`out/dt=${DATES[0]}/_manifest.json`));
      const status = await runCli(['status', ws.path('canary.yaml'), '--from', DATES[0]!, '--to', DATES[0]!], { env: tq.env });
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(`canary ${manifest.canary.labels.canary} ${manifest.canary.rows.canary.toLocaleString('en-US')} rows`);
      await ws.write('canary2.onnx', driftModel(0.5));
      await job({ uri: 'canary2.onnx', fraction: FRACTION, salt: SALT });
      expect(await line()).toMatch(/enqueue\s+scored by sha256 [0-9a-f]{12}; its canary rows by sha256 [0-9a-f]{12}, now a canary of sha256 [0-9a-f]{12}$/);
      await job(undefined);
      expect(await line()).toMatch(/enqueue\s+.*; its canary rows by sha256 [0-9a-f]{12}, now no canary$/);
    } finally {
      await tq.close();
      await job({ uri: 'canary.onnx', fraction: FRACTION, salt: SALT });
    }
  });
});
