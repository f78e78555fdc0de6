import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../src/registry/registry.js';
import { resetStorageCache } from '../src/storage/open.js';
import { logisticModel } from '../scripts/onnx-builder.js';
import { startConditionalProxy, type ConditionalProxy } from './support/conditional-proxy.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { startS3, type S3Server } from './support/s3.js';
import { runCli, Workspace } from './support/workspace.js';
import { readEnvironment, useEnvironment } from '../src/settings.js';

/**
 * Scoring with registered models: a job names `models:/churn@champion`, each run pins the
 * version the alias points to (or pointed to, with --model-as-of) and its manifest, part
 * metadata and status say which; workers fetch the version from S3 into an empty cache.
 * The two versions are logistic models with different weights, so the predictions say
 * which one scored, as well as the manifests.
 */

const FEATURES = ['a', 'b', 'c'];
const V1 = { weights: [1, -1, 0.5], bias: 0 };
const V2 = { weights: [-2, 0.25, 1], bias: 0.5 };
const ROWS = 40;
const DATES = ['2026-03-08', '2026-03-09', '2026-03-10', '2026-03-11', '2026-03-12'];

let ws: Workspace;
let s3: S3Server;
let proxy: ConditionalProxy;
let env: Record<string, string>;
const rowsOf = (date: string) => Array.from({ length: ROWS }, (_, i) => FEATURES.map((_, j) => Math.fround(((i * 7 + j * 3 + Number(date.slice(-2))) % 11) / 4 - 1.2)));
const p1 = (w: { weights: number[]; bias: number }, x: number[]) => 1 / (1 + Math.exp(-(w.bias + x.reduce((s, v, j) => s + v * w.weights[j]!, 0))));

beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write('v1.onnx', logisticModel({ ...V1, featureNames: FEATURES }));
  await ws.write('v2.onnx', logisticModel({ ...V2, featureNames: FEATURES }));
  for (const date of DATES) await ws.write(`in/dt=${date}/a.csv`, [`id,${FEATURES.join(',')}`, ...rowsOf(date).map((r, i) => `${date}-${i},${r.join(',')}`)].join('\n') + '\n');
  s3 = await startS3(['registry']);
  proxy = await startConditionalProxy(s3.endpoint, s3.client);
  process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
  useEnvironment(readEnvironment(process.env));
  resetStorageCache();
  env = { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, NIGHTSCORE_REGISTRY_URI: 's3://registry/models/' };
  // The history of a champion: v1 from March 1st, v2 promoted on March 10th at noon.
  let now = new Date('2026-03-01T08:00:00Z');
  const registry = new Registry('s3://registry/models/', { clock: () => now, by: 'ds@team' });
  await registry.register('churn', ws.path('v1.onnx'), { alias: 'champion' });
  now = new Date('2026-03-09T08:00:00Z');
  await registry.register('churn', ws.path('v2.onnx'));
  now = new Date('2026-03-10T12:00:00Z');
  await registry.setAlias('churn', 'champion', 2, { reason: 'promoted after the March review' });
});
afterAll(async () => {
  await proxy?.close();
  await s3?.close();
  await ws?.remove();
});

async function job(name: string, model: string, format: 'csv' | 'parquet' = 'csv'): Promise<string> {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: { uri: model },
    output: { uri: `out/${name}/dt={date}/`, format, columns: { probabilities: ['p0', 'p1'] } },
  });
}

/** Checks a date's predictions against one version's weights, and that its manifest names that version. */
async function expectScoredBy(name: string, date: string, version: 1 | 2): Promise<void> {
  const weights = version === 1 ? V1 : V2;
  const out = (await ws.csv(`out/${name}/dt=${date}/part-00000.csv`)).slice(1);
  expect(out).toHaveLength(ROWS);
  rowsOf(date).forEach((x, i) => {
    expect(out[i]![0]).toBe(`${date}-${i}`);
    expect(Number(out[i]![2])).toBeCloseTo(p1(weights, x), 5);
  });
  const manifest = await ws.manifest(`out/${name}/dt=${date}`);
  expect(manifest.model).toMatchObject({ name: 'churn', version, uri: `s3://registry/models/churn/versions/${version}/model.onnx` });
}

const modelGets = (version: number) => proxy.gets.filter((p) => p === `/registry/models/churn/versions/${version}/model.onnx`).length;

describe('a job that names a registered model', () => {
  it('scores with the version its alias points to, fetched into an empty cache, and says so in the manifest, the part metadata and on the terminal', async () => {
    const file = await job('by-alias', 'models:/churn@champion', 'parquet');
    const res = await runCli(['run', file, '--date', DATES[0]!], { env: { ...env, NIGHTSCORE_MODEL_CACHE: ws.path('cache-cli') } });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout + res.stderr).toContain('churn@2 (models:/churn@champion; s3://registry/models/churn/versions/2/model.onnx)');
    const manifest = await ws.manifest(`out/by-alias/dt=${DATES[0]}`);
    expect(manifest.model).toMatchObject({ ref: 'models:/churn@champion', name: 'churn', version: 2, alias: 'champion', uri: 's3://registry/models/churn/versions/2/model.onnx' });
    expect(manifest.models[0]!.registry).toEqual({ ref: 'models:/churn@champion', name: 'churn', version: 2, alias: 'champion', as_of: null });
    const registered = JSON.parse(await s3.get('registry', 'models/churn/versions/2/version.json')) as { sha256: string };
    expect(manifest.model.sha256).toBe(registered.sha256);
    const part = await asyncBufferFromFile(ws.path(`out/by-alias/dt=${DATES[0]}/part-00000.parquet`));
    const kv = Object.fromEntries(((await parquetMetadataAsync(part)).key_value_metadata ?? []).map((e) => [e.key, e.value]));
    expect(kv).toMatchObject({ 'nightscore.model_name': 'churn', 'nightscore.model_version': '2', 'nightscore.model_ref': 'models:/churn@champion', 'nightscore.model_sha256': registered.sha256 });
  });

  it('scores with a version named by number, whatever the alias says', async () => {
    const file = await job('by-version', 'models:/churn/1');
    const res = await runCli(['run', file, '--date', DATES[1]!], { env: { ...env, NIGHTSCORE_MODEL_CACHE: ws.path('cache-cli') } });
    expect(res.code, res.stderr).toBe(0);
    await expectScoredBy('by-version', DATES[1]!, 1);
  });

  describe('on the queue', () => {
    let tq: TestQueue;
    beforeAll(async () => {
      tq = await createTestQueue({ ...env, NIGHTSCORE_MODEL_CACHE: ws.path('cache-worker') });
    });
    afterAll(async () => tq?.close());

    it('backfill --model-as-of date scores the dates before the promotion with v1 and the later ones with v2, each version fetched once by a worker with an empty cache; --reprocess stale then re-scores exactly the v1 dates', async () => {
      const file = await job('timeline', 'models:/churn@champion');
      proxy.gets.length = 0;
      await tq.startWorker();
      const res = await runCli(['backfill', file, '--from', DATES[0]!, '--to', DATES.at(-1)!, '--model-as-of', 'date'], { env: tq.env });
      expect(res.code, res.stderr).toBe(0);
      const rows = await tq.waitFor(file, DATES[0]!, DATES.at(-1)!, allIn(['succeeded', 'failed']));
      expect(rows.map((r) => [r.date, r.state, r.model])).toEqual(DATES.map((d, i) => [d, 'succeeded', i < 2 ? 'churn@1' : 'churn@2']));
      // The alias moved at noon on the 10th: the end of the 10th is after it.
      for (const [i, date] of DATES.entries()) await expectScoredBy('timeline', date, i < 2 ? 1 : 2);
      const manifest = await ws.manifest(`out/timeline/dt=${DATES[0]}`);
      expect(manifest.models[0]!.registry).toMatchObject({ alias: 'champion', version: 1, as_of: '2026-03-09T00:00:00.000Z' });
      expect([modelGets(1), modelGets(2)]).toEqual([1, 1]);

      const status = await runCli(['status', file, '--from', DATES[0]!, '--to', DATES.at(-1)!], { env: tq.env });
      expect(status.stdout).toMatch(new RegExp(`${DATES[0]}\\s+succeeded.*model churn@1 `));

      const dry = await runCli(['backfill', file, '--from', DATES[0]!, '--to', DATES.at(-1)!, '--reprocess', 'stale', '--dry-run'], { env: tq.env });
      expect(dry.code, dry.stderr).toBe(0);
      const enqueued = dry.stdout.split('\n').filter((l) => l.includes(' enqueue '));
      expect(enqueued.map((l) => l.slice(0, 10))).toEqual(DATES.slice(0, 2));
      expect(enqueued[0]).toContain('scored by churn@1, now churn@2');
      const again = await runCli(['backfill', file, '--from', DATES[0]!, '--to', DATES.at(-1)!, '--reprocess', 'stale'], { env: tq.env });
      expect(again.stdout).toContain('2 of 5 dates enqueued');
      const before = await Promise.all(DATES.slice(2).map((d) => ws.manifest(`out/timeline/dt=${d}`)));
      await tq.waitFor(file, DATES[0]!, DATES.at(-1)!, (r) => r.every((s) => s.state === 'succeeded' && s.model === 'churn@2'));
      for (const date of DATES) await expectScoredBy('timeline', date, 2);
      // The v2 dates were not run again.
      const after = await Promise.all(DATES.slice(2).map((d) => ws.manifest(`out/timeline/dt=${d}`)));
      expect(after.map((m) => m.attempt)).toEqual(before.map((m) => m.attempt));
    }, 120_000);

    it('adopting the registry from a path keeps the dates the same bytes scored: --reprocess stale skips them', async () => {
      await ws.job('adopt.yaml', { name: 'adopt', input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: 'v2.onnx' }, output: { uri: 'out/adopt/dt={date}/', format: 'csv' } });
      expect((await runCli(['run', ws.path('adopt.yaml'), '--date', DATES[0]!], { env })).code).toBe(0);
      await job('adopt', 'models:/churn@champion');
      const dry = await runCli(['backfill', ws.path('adopt.yaml'), '--from', DATES[0]!, '--to', DATES[0]!, '--reprocess', 'stale', '--dry-run'], { env: tq.env });
      expect(dry.stdout).toContain(`${DATES[0]}  skip     scored by the bytes of churn@2`);
      // A date before the alias was first set has no model to compare with: kept, and said why.
      await ws.write('in/dt=2026-02-27/a.csv', `id,${FEATURES.join(',')}\nk,1,2,3\n`);
      expect((await runCli(['run', ws.path('adopt.yaml'), '--date', '2026-02-27'], { env })).code).toBe(0);
      const before = await runCli(['backfill', ws.path('adopt.yaml'), '--from', '2026-02-27', '--to', '2026-02-27', '--reprocess', 'stale', '--model-as-of', 'date', '--dry-run'], { env: tq.env });
      expect(before.code, before.stderr).toBe(0);
      expect(before.stdout).toMatch(/2026-02-27 {2}skip {5}no model to compare with: .*pointed to no version at 2026-02-28T00:00:00\.000Z/);
    });
  });

  it('--model-as-of is refused for a job whose model is a version, not an alias', async () => {
    const file = await job('fixed', 'models:/churn/1');
    const res = await runCli(['backfill', file, '--from', DATES[0]!, '--to', DATES[1]!, '--model-as-of', 'date'], { env });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('BAD_OPTION: --model-as-of reads a registry alias as it was');
  });

  it('fails with S3_UNAVAILABLE naming the registry object (a code the queue retries) when the registry does not answer', async () => {
    const file = await job('unreachable', 'models:/churn@champion');
    const res = await runCli(['run', file, '--date', DATES[0]!], { env: { ...env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' } });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/nightscore: S3_UNAVAILABLE: .*s3:\/\/registry\/models\/churn\/aliases\.json/);
  });
});
