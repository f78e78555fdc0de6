import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, Workspace } from './support/workspace.js';

/**
 * A run that fails part-way says what it did: the objects it listed, the rows its finished
 * chunks read, and the parts they left in the folder; and a missing feature column's hint
 * names the job key that named the column.
 */
let ws: Workspace;
const DATE = '2026-01-02';
// 60 rows: over the 256-byte chunk, so a.csv is a chunk of its own and b.csv the next.
const GOOD = `id,a,b\n${Array.from({ length: 60 }, (_, i) => `${i},${i / 2},${i / 4}`).join('\n')}\n`;
const BAD = 'id,a,bb\n100,1,2\n';

beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('plain.onnx', { weights: [0.1, -0.2], bias: 0 });
  await ws.model('named.onnx', { weights: [0.1, -0.2], bias: 0, featureNames: ['a', 'b'] });
  await ws.write(`in/dt=${DATE}/a.csv`, GOOD);
  await ws.write(`in/dt=${DATE}/b.csv`, BAD);
});
afterAll(async () => ws?.remove());

function job(name: string, model: Record<string, unknown>) {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'], csv: { split: false } },
    model,
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
    chunk: { bytes: 256 },
  });
}

describe('a run that fails on a missing column in its second object', () => {
  it('summarises what is true: both objects, the rows and the part of the chunk that finished', async () => {
    const res = await runCli(['run', await job('features', { path: 'plain.onnx', features: ['a', 'b'] }), '--date', DATE, '--threads', '1']);
    expect(res.code).toBe(1);
    const m = await ws.manifest(`out/features/dt=${DATE}`);
    expect(m.status).toBe('failed');
    expect(m.chunks).toBe(2);
    expect(m.rows).toEqual({ read: 60, scored: 60, rejected: 0 });
    expect(m.inputs.map((i) => [i.uri.replace(/.*\//, ''), i.bytes, i.rows])).toEqual([['a.csv', GOOD.length, 60], ['b.csv', BAD.length, 0]]);
    expect(m.parts).toEqual([{ uri: expect.stringMatching(/\/part-00000\.csv$/), rows: 60 }]);
    expect(await ws.list(`out/features/dt=${DATE}`)).toEqual(['_manifest.json', 'part-00000.csv']);
    expect(res.stdout).toContain(`(2 objects, ${GOOD.length + BAD.length} B)`);
    expect(res.stdout).toContain('60 read · 60 scored · 0 rejected');
    expect(res.stdout).toContain('(2 chunks, 1 part)');
  });

  it.each([
    ['model.features', { path: 'plain.onnx', features: ['a', 'b'] }, 'hint: Fix model.features in the job file'],
    ['model.inputs', { path: 'plain.onnx', inputs: { input: ['a', 'b'] } }, 'hint: Fix model.inputs in the job file'],
    ['neither (the model names its features)', { path: 'named.onnx' }, "hint: The model's feature_names metadata names it (the job sets neither model.features nor model.inputs)"],
  ])('a job whose columns come from %s: the hint names it', async (_, model, hint) => {
    const name = `hint-${Object.keys(model).join('-')}`;
    const file = await job(name, model);
    for (const command of ['run', 'validate']) {
      const res = await runCli([command, file, '--date', DATE]);
      expect(res.stderr).toContain('no column "b" (feature); did you mean "bb"?');
      expect(res.stderr).toContain(hint);
    }
  });
});
