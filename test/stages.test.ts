import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJob } from '../src/job/load.js';
import { planDate } from '../src/run/begin.js';
import { prepareJob } from '../src/run/bind.js';
import { runChunk } from '../src/run/chunk.js';
import { chunkSpec, type ModelSpec, type RunSpec } from '../src/run/spec.js';
import { buildModel } from '../scripts/onnx-builder.js';
import { Workspace } from './support/workspace.js';

/**
 * A chunk scores every model of its spec, each bound on the chunk's thread by its role, and
 * hands each batch through its stages: the champion's outputs and rejects are written; a
 * challenger scores the same batch, and what it gives is counted in the chunk's result, not
 * written. No planner adds a challenger yet: this builds the spec as one will.
 */

const DATE = '2026-12-03';
const ROWS = 2_000;

/** idx (int64 [N]) into a table of `rows` × 2 floats: an index past the table fails its row. */
const table = (rows: number, scale: number) =>
  buildModel({
    inputs: [{ name: 'idx', elem: 'int64', shape: ['N'] }],
    outputs: [{ name: 'emb', elem: 'float', shape: ['N', 2] }],
    nodes: [{ op: 'Gather', inputs: ['E', 'idx'], outputs: ['emb'], attrs: { axis: 0 } }],
    floats: { E: { dims: [rows, 2], values: Array.from({ length: rows * 2 }, (_, i) => Math.sin(i + 1) * scale) } },
  });

let ws: Workspace;
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write('champion.onnx', table(100, 1.5));
  // The challenger knows only the first 60 indices: it fails on rows the champion scores.
  await ws.write('challenger.onnx', table(60, -2.5));
  await ws.write(`in/dt=${DATE}/a.csv`, `id,idx\n${Array.from({ length: ROWS }, (_, i) => `k${i},${(i * 7) % 100}`).join('\n')}\n`);
});
afterAll(async () => ws?.remove());

async function prepared(name: string, model: string) {
  const file = await ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { path: model, inputs: { idx: ['idx'] } },
    output: { uri: 'out/dt={date}/', format: 'csv' },
    chunk: { rows: 256 },
  });
  return prepareJob(await loadJob(file));
}

describe('the stages of a chunk', () => {
  it('binds two models on one thread and scores each batch through both: the champion writes, the challenger is counted', async () => {
    const champion = await prepared('stages', ws.path('champion.onnx'));
    const { spec, chunks } = await planDate(champion, DATE);
    expect(chunks).toHaveLength(1);

    const alone = await runChunk(chunkSpec(spec, chunks[0]!));
    const part = await readFile(ws.path(`out/dt=${DATE}/part-00000.csv`));
    expect(alone.stats.rows).toEqual({ read: ROWS, scored: ROWS, rejected: 0 });
    expect(alone.stats.stages).toBeUndefined();

    const challenger: ModelSpec = { ...(await prepared('stages-challenger', ws.path('challenger.onnx'))).spec, role: 'challenger:small' };
    const both: RunSpec = { ...spec, models: [...spec.models, challenger] };
    const result = await runChunk(chunkSpec(both, chunks[0]!));

    // The part is the champion's, byte for byte; no row is rejected for the challenger's failures.
    expect(await readFile(ws.path(`out/dt=${DATE}/part-00000.csv`))).toEqual(part);
    expect(result.stats.rows).toEqual(alone.stats.rows);
    expect(result.stagedRejects).toBeNull();
    // Every batch went through the challenger: the rows it scored and those it failed on (index 60 and up).
    const failing = Array.from({ length: ROWS }, (_, i) => (i * 7) % 100).filter((idx) => idx >= 60).length;
    expect(result.stats.stages).toEqual({ 'score.challenger:small': { failed: failing, rows: ROWS - failing } });
  });

  it('counts the rows the champion fails on, which it rejects', async () => {
    await ws.write(`in2/dt=${DATE}/a.csv`, `id,idx\n${Array.from({ length: 300 }, (_, i) => `k${i},${i === 123 ? 100 : i % 100}`).join('\n')}\n`);
    const file = await ws.job('stages-reject.yaml', {
      name: 'stages-reject',
      input: { uri: 'in2/dt={date}/', format: 'csv', key: ['id'] },
      model: { path: ws.path('champion.onnx'), inputs: { idx: ['idx'] } },
      output: { uri: 'out2/dt={date}/', format: 'csv' },
    });
    const { spec, chunks } = await planDate(await prepareJob(await loadJob(file)), DATE);
    const result = await runChunk(chunkSpec(spec, chunks[0]!));
    expect(result.stats.rows).toEqual({ read: 300, scored: 299, rejected: 1 });
    expect(result.stats.stages).toEqual({ 'score.champion': { failed: 1 } });
  });
});
