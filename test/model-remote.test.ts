import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withLocalModel } from '../src/model/fetch.js';
import { modelIdentity } from '../src/model/session.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { allIn, createTestQueue } from './support/queue.js';
import { startS3, type S3Server } from './support/s3.js';
import { TORCH_MLP, TORCH_MLP_FEATURES, torchMlpDay } from './support/torch-mlp.js';
import { REPO, runCli, Workspace } from './support/workspace.js';
import { readEnvironment, useEnvironment } from '../src/settings.js';

/**
 * A model in object storage (model.uri: s3://…): workers need nothing on their disk. Its files
 * (here a torch export with its weights in model.onnx.data) are fetched into the model cache
 * once per version, verified by sha256 before a process first uses them, and fetched again
 * when the cached copy is not the bytes the run pinned.
 */

const EXPORT = TORCH_MLP;
const FEATURES = TORCH_MLP_FEATURES;
const DATE = '2026-11-02';
const ROWS = 200;

let ws: Workspace;
let s3: S3Server;
let proxy: FaultProxy;
/** Every object read (GET) through the proxy, by path. */
const reads: string[] = [];
let expected: Float32Array;
beforeAll(async () => {
  ws = await Workspace.create();
  s3 = await startS3(['models']);
  proxy = await startFaultProxy(s3.endpoint, (_, path) => void reads.push(path));
  for (const f of ['model.onnx', 'model.onnx.data']) await s3.put('models', `churn/v1/${f}`, await readFile(`${EXPORT}/${f}`));
  ({ expected } = await torchMlpDay(ws, DATE, ROWS, 9));
});
afterAll(async () => {
  await proxy?.close();
  await s3?.close();
  await ws?.remove();
});

const env = (cache: string) => ({ ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, NIGHTSCORE_MODEL_CACHE: ws.path(cache) });

async function job(name: string): Promise<string> {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { uri: 's3://models/churn/v1/model.onnx', features: FEATURES },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
  });
}

async function expectScored(name: string): Promise<void> {
  const out = (await ws.csv(`out/${name}/dt=${DATE}/part-00000.csv`)).slice(1);
  expect(out).toHaveLength(ROWS);
  out.forEach(([id, p], i) => {
    expect(id).toBe(`k${i}`);
    expect(Math.fround(Number(p))).toBe(expected[i]);
  });
}

const modelReads = () => reads.filter((p) => p.startsWith('/models/'));

describe('a model in S3', () => {
  it('is fetched with its external data into the cache, scores as onnxruntime does on the export, and the manifest names its URIs', async () => {
    const file = await job('remote');
    const res = await runCli(['run', file, '--date', DATE], { env: env('cache-a') });
    expect(res.code, res.stderr).toBe(0);
    await expectScored('remote');
    expect(modelReads().sort()).toEqual(['/models/churn/v1/model.onnx', '/models/churn/v1/model.onnx.data']);
    const manifest = await ws.manifest(`out/remote/dt=${DATE}`);
    expect(manifest.models[0]!.location).toBe('s3://models/churn/v1/model.onnx');
    expect(manifest.models[0]!.files.map((f) => f.path)).toEqual(['s3://models/churn/v1/model.onnx', 's3://models/churn/v1/model.onnx.data']);
    expect(manifest.model.path).toBe('s3://models/churn/v1/model.onnx');
  });

  it('is not fetched again while the object is unchanged: a second run reads it from the cache', async () => {
    const before = modelReads().length;
    const res = await runCli(['run', await job('cached'), '--date', DATE], { env: env('cache-a') });
    expect(res.code, res.stderr).toBe(0);
    await expectScored('cached');
    expect(modelReads().length).toBe(before);
  });

  it('a cached file corrupted on disk is found by its sha256 and fetched again, never scored', async () => {
    const cache = ws.path('cache-a');
    const [folder] = (await readdir(cache)).filter((n) => /^[0-9a-f]{64}-[0-9a-f]{8}$/.test(n));
    const data = `${cache}/${folder}/model.onnx.data`;
    const bytes = await readFile(data);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    await writeFile(data, bytes);
    const before = modelReads().length;
    const res = await runCli(['run', await job('corrupt'), '--date', DATE], { env: env('cache-a') });
    expect(res.code, res.stderr).toBe(0);
    await expectScored('corrupt');
    expect(modelReads().slice(before)).toEqual(['/models/churn/v1/model.onnx.data']);
  });

  it('is scored on the queue by a worker with an empty cache, whose only copy is in S3', async () => {
    const tq = await createTestQueue({ ...env('cache-worker') });
    try {
      await tq.startWorker();
      const file = await job('queued');
      // The run is planned here, with a cache of its own: the worker's is empty.
      const res = await runCli(['run', file, '--date', DATE, '--queue'], { env: { ...tq.env, ...env('cache-planner') } });
      expect(res.code, res.stderr).toBe(0);
      const [status] = await tq.waitFor(file, DATE, DATE, allIn(['succeeded', 'failed']));
      expect(status!.state, status!.error).toBe('succeeded');
      await expectScored('queued');
      expect((await readdir(ws.path('cache-worker'))).filter((n) => /^[0-9a-f]{64}-[0-9a-f]{8}$/.test(n))).toHaveLength(1);
    } finally {
      await tq.close();
    }
  });

  it('a missing object is MODEL_NOT_FOUND naming it; missing external data is MODEL_EXTERNAL_DATA_MISSING naming its URI', async () => {
    const file = await ws.job('absent.yaml', {
      name: 'absent',
      input: { uri: 'in/dt={date}/', format: 'csv' },
      model: { uri: 's3://models/churn/v9/model.onnx', features: FEATURES },
      output: { uri: 'out/absent/dt={date}/', format: 'csv' },
    });
    const res = await runCli(['validate', file], { env: env('cache-b') });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('MODEL_NOT_FOUND: cannot read model s3://models/churn/v9/model.onnx: there is no such object');
    await s3.put('models', 'churn/v2/model.onnx', await readFile(`${EXPORT}/model.onnx`));
    const halfFile = await ws.write('half.yaml', (await readFile(file, 'utf8')).replaceAll('v9', 'v2').replaceAll('absent', 'half'));
    const half = await runCli(['validate', halfFile], { env: env('cache-b') });
    expect(half.code).toBe(1);
    expect(half.stderr).toContain('MODEL_EXTERNAL_DATA_MISSING: s3://models/churn/v2/model.onnx keeps tensors in s3://models/churn/v2/model.onnx.data ("model.onnx.data"), which is not there');
  });

  it('keeps the cache under NIGHTSCORE_MODEL_CACHE_BYTES, removing the least recently used models first', async () => {
    await s3.put('models', 'small/model.onnx', await readFile(`${REPO}/models/churn/model.onnx`));
    const file = await ws.job('small.yaml', {
      name: 'small',
      input: { uri: 'in/dt={date}/', format: 'csv' },
      model: { uri: 's3://models/small/model.onnx' },
      output: { uri: 'out/small/dt={date}/', format: 'csv' },
    });
    const folders = async () => (await readdir(ws.path('cache-a'))).filter((n) => /^[0-9a-f]{64}-[0-9a-f]{8}$/.test(n));
    expect(await folders()).toHaveLength(1);
    const res = await runCli(['validate', file], { env: { ...env('cache-a'), NIGHTSCORE_MODEL_CACHE_BYTES: '1' } });
    expect(res.code, res.stderr).toBe(0);
    // The model just fetched is kept, over the bound; the torch export, used longer ago, is gone.
    const left = await folders();
    expect(left).toHaveLength(1);
    expect(res.stdout).toContain(`sha256 ${left[0]!.slice(0, 16)}`);
  });

  it('a scoring thread whose pinned bytes are no longer at the URI fails with MODEL_CHANGED, never loads the new bytes', async () => {
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const model = await readFile(`${EXPORT}/model.onnx`);
    const planned = await readFile(`${EXPORT}/model.onnx.data`);
    await s3.put('models', 'swap/model.onnx', model);
    // The weights were replaced after the run was planned with the export's.
    await s3.put('models', 'swap/model.onnx.data', await readFile(`${REPO}/test/fixtures/torch-mlp-seed4/model.onnx.data`));
    process.env.NIGHTSCORE_MODEL_CACHE = ws.path('cache-swap');
    useEnvironment(readEnvironment(process.env));
    const files = [
      { path: 's3://models/swap/model.onnx', sha256: sha(model), bytes: model.length },
      { path: 's3://models/swap/model.onnx.data', sha256: sha(planned), bytes: planned.length },
    ];
    const pinned = { location: 's3://models/swap/model.onnx', sha256: modelIdentity(files, ['model.onnx', 'model.onnx.data']), files };
    await expect(withLocalModel(pinned.location, pinned, async (p) => p)).rejects.toMatchObject({ code: 'MODEL_CHANGED', message: expect.stringMatching(/^s3:\/\/models\/swap\/model\.onnx\.data changed during the run/) });
    expect((await readdir(ws.path('cache-swap'))).filter((n) => n.startsWith(pinned.sha256))).toEqual([]);
    // Put back, the planned bytes are fetched and published under the model's identity.
    await s3.put('models', 'swap/model.onnx.data', planned);
    const path = await withLocalModel(pinned.location, pinned, async (p) => p);
    expect(path).toMatch(new RegExp(`/cache-swap/${pinned.sha256}-[0-9a-f]{8}/model\\.onnx$`));
    expect(sha(await readFile(path.replace(/model\.onnx$/, 'model.onnx.data')))).toBe(sha(planned));
  });
});
