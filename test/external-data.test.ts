import { createHash } from 'node:crypto';
import { copyFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, releaseModels } from '../src/model/session.js';
import { runOnQueue } from './support/queue.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * Models whose weights live beside them, as torch.onnx.export(dynamo=True) writes them by
 * default (models/torch-mlp, made by its export.py): the external data is the model's own,
 * whatever the working directory, and the model's identity covers it.
 */

const EXPORT = `${REPO}/models/torch-mlp`;
/** The same network exported with other weights: the model.onnx.data a careless folder may hold. */
const OTHER = `${REPO}/test/fixtures/torch-mlp-seed4`;
const FEATURES = Array.from({ length: 20 }, (_, i) => `f${i}`);
const DATE = '2026-11-01';
const ROWS = 300;

let ws: Workspace;
let rows: number[][];
beforeAll(async () => {
  ws = await Workspace.create();
  let seed = 5;
  const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 2;
  rows = Array.from({ length: ROWS }, () => FEATURES.map(() => Math.fround(next())));
  await ws.write(`in/dt=${DATE}/a.csv`, [`id,${FEATURES.join(',')}`, ...rows.map((r, i) => `k${i},${r.join(',')}`)].join('\n') + '\n');
});
afterAll(async () => {
  await releaseModels();
  await ws?.remove();
});

/** A copy of an export in the workspace, so a test may change it. */
async function deploy(name: string, from = EXPORT): Promise<string> {
  await ws.write(`${name}/.keep`, '');
  for (const f of ['model.onnx', 'model.onnx.data']) await copyFile(`${from}/${f}`, ws.path(`${name}/${f}`));
  return ws.path(`${name}/model.onnx`);
}

async function job(name: string, model: string, extra: Record<string, unknown> = {}): Promise<string> {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { path: model, features: FEATURES, ...extra },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
  });
}

/** onnxruntime on the model loaded from its path, which resolves external data against its folder. */
async function reference(model: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(rows.flat()), [ROWS, FEATURES.length]) });
  await session.release();
  return out.p!.data as Float32Array;
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

describe('a model with external data', () => {
  it('scores as onnxruntime does from the model\'s folder, from a working directory holding another export\'s model.onnx.data', async () => {
    const model = await deploy('m');
    const trap = await deploy('elsewhere', OTHER);
    const file = await job('cwd', model);
    const res = await runCli(['run', file, '--date', DATE], { cwd: trap.replace(/model\.onnx$/, '') });
    expect(res.code, res.stderr).toBe(0);
    const expected = await reference(model);
    expect(expected).not.toEqual(await reference(trap));
    const out = (await ws.csv(`out/cwd/dt=${DATE}/part-00000.csv`)).slice(1);
    expect(out).toHaveLength(ROWS);
    out.forEach(([id, p], i) => {
      expect(id).toBe(`k${i}`);
      expect(Math.fround(Number(p))).toBe(expected[i]);
    });
  });

  it('scores the same on the queue, from a worker whose working directory is elsewhere', async () => {
    const model = await deploy('q');
    const file = await job('queued', model);
    const status = await runOnQueue(file, DATE);
    expect(status.state, status.error).toBe('succeeded');
    const expected = await reference(model);
    const out = (await ws.csv(`out/queued/dt=${DATE}/part-00000.csv`)).slice(1);
    expect(out.map(([, p]) => Math.fround(Number(p)))).toEqual([...expected]);
  });

  it('is identified by all its files: the manifest lists each, and sha256 is that of their sha256sum listing', async () => {
    const model = await deploy('id');
    const file = await job('id', model);
    expect((await runCli(['run', file, '--date', DATE])).code).toBe(0);
    const [onnx, data] = await Promise.all([readFile(model), readFile(`${model}.data`)]);
    const manifest = await ws.manifest(`out/id/dt=${DATE}`);
    expect(manifest.models[0]!.files).toEqual([
      { path: model, sha256: sha256(onnx), bytes: onnx.length },
      { path: `${model}.data`, sha256: sha256(data), bytes: data.length },
    ]);
    // What `sha256sum model.onnx model.onnx.data | sha256sum` prints in the model's folder.
    expect(manifest.models[0]!.sha256).toBe(sha256(`${sha256(onnx)}  model.onnx\n${sha256(data)}  model.onnx.data\n`));
    expect(manifest.model.sha256).toBe(manifest.models[0]!.sha256);
  });

  it('pinned by model.sha256: weights tampered with beside an unchanged model file are refused', async () => {
    const model = await deploy('pin');
    const identity = (await loadModel(model)).sha256;
    const file = await job('pin', model, { sha256: identity });
    expect((await runCli(['run', file, '--date', DATE])).code).toBe(0);
    const data = await readFile(`${model}.data`);
    data[100] = data[100]! ^ 0x01;
    await writeFile(`${model}.data`, data);
    const res = await runCli(['run', file, '--date', DATE]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`MODEL_SHA_MISMATCH: ${model} with its external data (${model}.data) has sha256 `);
    expect(res.stderr).toContain(`but the job pins model.sha256 ${identity}`);
  });

  it('whose external data file is missing fails with MODEL_EXTERNAL_DATA_MISSING naming the file expected', async () => {
    const model = await deploy('missing');
    await rm(`${model}.data`);
    const res = await runCli(['run', await job('missing', model), '--date', DATE]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`MODEL_EXTERNAL_DATA_MISSING: ${model} keeps tensors in ${model}.data ("model.onnx.data"), which cannot be read`);
    expect(res.stderr).not.toMatch(/re-export/i);
  });

  it('whose external data arrives after a failed load loads once it is there, and keeps working', async () => {
    const model = await deploy('late');
    await rm(`${model}.data`);
    await expect(loadModel(model)).rejects.toMatchObject({ code: 'MODEL_EXTERNAL_DATA_MISSING' });
    await copyFile(`${EXPORT}/model.onnx.data`, `${model}.data`);
    const loaded = await loadModel(model);
    const x = new ort.Tensor('float32', Float32Array.from(rows[0]!), [1, FEATURES.length]);
    const first = (await loaded.session.run({ input: x })).p!.data;
    // A later deploy of the model file keeps the version before it loaded.
    await writeFile(model, await readFile(model));
    await loadModel(model);
    expect((await loaded.session.run({ input: x })).p!.data).toEqual(first);
  });

  it('whose external data is named outside its folder is refused with MODEL_EXTERNAL_DATA_INVALID', async () => {
    const { onnx } = onnxProto;
    const model = await deploy('escape');
    const proto = onnx.ModelProto.decode(await readFile(model));
    for (const t of proto.graph!.initializer!) for (const e of t.externalData ?? []) if (e.key === 'location') e.value = '../m/model.onnx.data';
    await writeFile(model, onnx.ModelProto.encode(proto).finish());
    const res = await runCli(['run', await job('escape', model), '--date', DATE]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`MODEL_EXTERNAL_DATA_INVALID: ${model} keeps tensors in "../m/model.onnx.data", which is not a plain file name inside the model's folder`);
  });

  it('is reloaded by a long-lived process when only its external data is replaced', async () => {
    const model = await deploy('redeploy');
    const before = await loadModel(model);
    await copyFile(`${OTHER}/model.onnx.data`, `${model}.data.new`);
    await rename(`${model}.data.new`, `${model}.data`);
    const after = await loadModel(model);
    expect(after.sha256).not.toBe(before.sha256);
    expect(after.files[1]!.sha256).toBe(sha256(await readFile(`${OTHER}/model.onnx.data`)));
    // The new weights score, not the ones loaded first (the model file keeps its own biases).
    const x = new ort.Tensor('float32', Float32Array.from(rows[0]!), [1, FEATURES.length]);
    const now = await ort.InferenceSession.create(model);
    expect((await after.session.run({ input: x })).p!.data).toEqual((await now.run({ input: x })).p!.data);
    expect((await after.session.run({ input: x })).p!.data).not.toEqual((await before.session.run({ input: x })).p!.data);
    // And again: every redeploy of the weights alone is a version of its own.
    await copyFile(`${EXPORT}/model.onnx.data`, `${model}.data.new`);
    await rename(`${model}.data.new`, `${model}.data`);
    const again = await loadModel(model);
    expect(again.sha256).toBe(before.sha256);
    expect((await again.session.run({ input: x })).p!.data).toEqual((await (await ort.InferenceSession.create(model)).run({ input: x })).p!.data);
    // The first version is the third back now: released, as a long-lived worker keeps two.
    await expect(before.session.run({ input: x })).rejects.toThrow(/disposed/);
    expect(await loadModel(model)).toBe(again);
  });
});
