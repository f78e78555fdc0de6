import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Downstream jobs read a job's outputs with globs and dataset readers. These are the globs
 * docs/output.md, "Reading the outputs", gives, run by DuckDB over two scored dates with rejected rows:
 * each must read the predictions and nothing else.
 */

const DATES = ['2026-11-30', '2026-12-01'];
/** Per date: 6 good rows and 2 rejected. */
const DAY = ['id,a', 'k1,1', 'k2,2', 'k3,3', 'bad1,x', 'k4,4', 'k5,5', 'bad2,', 'k6,6'].join('\n') + '\n';

let ws: Workspace;
let duck: DuckDBConnection;
beforeAll(async () => {
  ws = await Workspace.create();
  for (const date of DATES) await ws.write(`in/dt=${date}/a.csv`, DAY);
  await ws.model('model.onnx', { weights: [0.5], bias: 0 });
  duck = await (await DuckDBInstance.create(':memory:')).connect();
});
afterAll(async () => {
  duck?.closeSync();
  await ws?.remove();
});

async function scoreDates(name: string, output: Record<string, unknown>): Promise<void> {
  const file = await ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { path: 'model.onnx', features: ['a'] },
    output: { format: 'csv', ...output },
    limits: { max_reject_rate: 0.5 },
  });
  for (const date of DATES) {
    const res = await runCli(['run', file, '--date', date]);
    expect(res.code, res.stderr).toBe(0);
  }
}

async function ids(sql: string): Promise<string[]> {
  return (await duck.runAndReadAll(sql)).getRowObjectsJS().map((r) => String(r.id)).sort();
}

const PREDICTED = DATES.flatMap(() => ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']).sort();

describe('the default layout (rejects in _rejects/ of each date)', () => {
  beforeAll(() => scoreDates('default', { uri: 'default/dt={date}/' }));

  it('part-*.csv one level down reads the predictions only, with the date from hive partitioning', async () => {
    const root = ws.path('default');
    expect(await ids(`SELECT id FROM read_csv('${root}/*/part-*.csv')`)).toEqual(PREDICTED);
    const dates = (await duck.runAndReadAll(`SELECT DISTINCT dt::VARCHAR AS dt FROM read_csv('${root}/*/part-*.csv', hive_partitioning = true) ORDER BY dt`)).getRowObjectsJS();
    expect(dates.map((d) => d.dt)).toEqual(DATES);
  });

  it('a recursive glob (**/*.csv) would take the rejects files for data: the reason for output.rejects_uri', async () => {
    const all = await ids(`SELECT id FROM read_csv('${ws.path('default')}/**/*.csv', union_by_name = true)`);
    expect(all).toEqual([...PREDICTED, 'bad1', 'bad1', 'bad2', 'bad2'].sort());
  });
});

describe('output.rejects_uri: rejects in a tree of their own', () => {
  beforeAll(() => scoreDates('apart', { uri: 'apart/dt={date}/', rejects_uri: 'apart-rejects/dt={date}/' }));

  it('any glob over the output reads the predictions only, and the rejects tree holds every rejected row', async () => {
    expect(await ids(`SELECT id FROM read_csv('${ws.path('apart')}/**/*.csv')`)).toEqual(PREDICTED);
    expect(await ids(`SELECT id FROM read_csv('${ws.path('apart-rejects')}/**/*.csv')`)).toEqual(['bad1', 'bad1', 'bad2', 'bad2']);
    const manifest = await ws.manifest(`apart/dt=${DATES[1]}`);
    expect(manifest.rows).toEqual({ read: 8, scored: 6, rejected: 2 });
    expect(manifest.rejects).toEqual([{ uri: `file://${ws.path(`apart-rejects/dt=${DATES[1]}/part-00000.csv`)}`, rows: 2 }]);
  });

  it('a re-run replaces the rejects it owns there and leaves other files alone; a stranger named like a rejects file stops it', async () => {
    const date = DATES[1]!;
    await ws.write(`apart-rejects/dt=${date}/notes.md`, 'ours, not nightscore\'s');
    const file = ws.path('apart.yaml');
    await ws.write(`in/dt=${date}/a.csv`, ['id,a', 'k1,1', 'k2,2'].join('\n') + '\n');
    try {
      expect((await runCli(['run', file, '--date', date])).code).toBe(0);
      expect(await ws.list(`apart-rejects/dt=${date}`)).toEqual(['_OWNER.json', 'notes.md']);
      await ws.write(`apart-rejects/dt=${date}/part-00007.csv`, 'source,line,id,reason\n');
      const res = await runCli(['run', file, '--date', date]);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('OUTPUT_NOT_OURS: ');
      expect(res.stderr).toContain('(output.rejects_uri) holds 1 file(s) named like nightscore rejects');
    } finally {
      await ws.write(`in/dt=${date}/a.csv`, DAY);
    }
  });

  it('a rejects folder belongs to one output: another job pointed at it is refused before it touches anything', async () => {
    const date = DATES[0]!;
    const before = await ws.list(`apart-rejects/dt=${date}`);
    const file = await ws.job('intruder.yaml', {
      name: 'intruder',
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
      model: { path: 'model.onnx', features: ['a'] },
      output: { uri: 'intruder/dt={date}/', format: 'csv', rejects_uri: 'apart-rejects/dt={date}/' },
      limits: { max_reject_rate: 0.5 },
    });
    const res = await runCli(['run', file, '--date', date]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`OUTPUT_NOT_OURS: file://${ws.path(`apart-rejects/dt=${date}`)}/ (output.rejects_uri) holds the rejects of file://${ws.path(`apart/dt=${date}`)}/`);
    expect(await ws.list(`apart-rejects/dt=${date}`)).toEqual(before);
    expect(await ids(`SELECT id FROM read_csv('${ws.path(`apart-rejects/dt=${date}`)}/*.csv')`)).toEqual(['bad1', 'bad2']);
  });

  it('is refused when it is the output folder itself, or names no date where output.uri does', async () => {
    const job = (name: string, rejects: string) =>
      ws.job(`${name}.yaml`, { name, input: { uri: 'in/dt={date}/', format: 'csv' }, model: { path: 'model.onnx', features: ['a'] }, output: { uri: 'same/dt={date}/', format: 'csv', rejects_uri: rejects } });
    const same = await runCli(['validate', await job('same', 'same/dt={date}'), '--date', DATES[0]!]);
    expect(same.code).toBe(2);
    expect(same.stderr).toContain('REJECTS_URI_CLASH: ');
    const undated = await runCli(['validate', await job('undated', 'rejects/')]);
    expect(undated.code).toBe(2);
    expect(undated.stderr).toContain('output.rejects_uri: "rejects/" names no date, but output.uri does');
  });
});
