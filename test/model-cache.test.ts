import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheError, parseEntry } from '../src/model/cache.js';
import { withLocalModel } from '../src/model/fetch.js';
import { loadModel, modelIdentity } from '../src/model/session.js';
import { startS3, type S3Server } from './support/s3.js';
import { TORCH_MLP, TORCH_MLP_FEATURES, torchMlpDay } from './support/torch-mlp.js';
import { REPO, runCli, Workspace } from './support/workspace.js';
import { readEnvironment, useEnvironment } from '../src/settings.js';

/**
 * The model cache is read back, so nothing in it is believed on sight: a cache folder another
 * user owns or can write is refused, an index entry is checked against the object before its
 * folder is used, a folder one process is loading is not evicted by another, and a damaged
 * entry is rebuilt rather than failing every later run.
 */

const EXPORT = TORCH_MLP;
/** The same network with other weights, of the same size: what a planted folder would hold. */
const OTHER = `${REPO}/test/fixtures/torch-mlp-seed4`;
const URI = 's3://models/churn/v1/model.onnx';
const FEATURES = TORCH_MLP_FEATURES;
const DATE = '2026-11-03';
const ROWS = 50;
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

let ws: Workspace;
let s3: S3Server;
let expected: Float32Array;
beforeAll(async () => {
  ws = await Workspace.create();
  s3 = await startS3(['models']);
  for (const f of ['model.onnx', 'model.onnx.data']) await s3.put('models', `churn/v1/${f}`, await readFile(`${EXPORT}/${f}`));
  await s3.put('models', 'small/model.onnx', await readFile(`${REPO}/models/churn/model.onnx`));
  ({ expected } = await torchMlpDay(ws, DATE, ROWS, 3));
});
afterAll(async () => {
  await s3?.close();
  await ws?.remove();
});

const env = (cache: string, extra: Record<string, string> = {}) => ({ ...s3.env, NIGHTSCORE_MODEL_CACHE: ws.path(cache), ...extra });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const isModelFolder = (n: string) => /^[0-9a-f]{64}-[0-9a-f]{8}$/.test(n);

async function job(name: string, uri = URI): Promise<string> {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] },
    model: uri === URI ? { uri, features: FEATURES } : { uri },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
  });
}

async function expectScored(name: string): Promise<void> {
  const out = (await ws.csv(`out/${name}/dt=${DATE}/part-00000.csv`)).slice(1);
  expect(out.map(([, p]) => Math.fround(Number(p)))).toEqual([...expected]);
}

async function etag(key: string): Promise<string> {
  return (await s3.client.send(new HeadObjectCommand({ Bucket: 'models', Key: key }))).ETag!;
}

/** The index entry's file for URI's current version, as the cache names it. */
async function entryFile(cache: string): Promise<string> {
  const size = (await stat(`${EXPORT}/model.onnx`)).size;
  return ws.path(cache, 'sources', createHash('sha256').update(`${URI}\0${await etag('churn/v1/model.onnx')}\0${size}`).digest('hex'));
}

describe('the model cache folder', () => {
  it('defaults to a folder of this user alone in the temp folder, created 0700', async () => {
    const tmp = ws.path('tmp');
    await mkdir(tmp);
    const res = await runCli(['validate', await job('default')], { env: { ...s3.env, NIGHTSCORE_MODEL_CACHE: '', TMPDIR: tmp } });
    expect(res.code, res.stderr).toBe(0);
    const s = await stat(`${tmp}/nightscore-models-${process.getuid!()}`);
    expect(s.mode & 0o777).toBe(0o700);
  });

  it('that others can write is refused with MODEL_CACHE_UNSAFE, never read', async () => {
    await mkdir(ws.path('cache-open'));
    await chmod(ws.path('cache-open'), 0o777);
    const res = await runCli(['run', await job('open'), '--date', DATE], { env: env('cache-open') });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`MODEL_CACHE_UNSAFE: the model cache ${ws.path('cache-open')} is writable by others (mode 0777): another user could plant a model in it`);
    expect(res.stderr).toContain('Point NIGHTSCORE_MODEL_CACHE at a folder this user owns and only it can write');
    expect(await readdir(ws.path('cache-open'))).toEqual([]);
  });

  it.runIf(isRoot)('that another user owns is refused with MODEL_CACHE_UNSAFE, even when only they can write it', async () => {
    await mkdir(ws.path('cache-theirs'), { mode: 0o700 });
    await chown(ws.path('cache-theirs'), NOBODY, NOBODY);
    const res = await runCli(['run', await job('theirs'), '--date', DATE], { env: env('cache-theirs') });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`MODEL_CACHE_UNSAFE: the model cache ${ws.path('cache-theirs')} is owned by uid ${NOBODY}, not by this process's uid 0`);
  });
});

describe('the model cache index', () => {
  it('an entry naming a planted folder is checked against the object, so the planted model is never scored', async () => {
    // What another user with write access to the cache would leave: an entry for the object's
    // current version (its ETags and sizes) naming a folder of the same network with their weights.
    const model = await readFile(`${EXPORT}/model.onnx`);
    const theirs = await readFile(`${OTHER}/model.onnx.data`);
    const names = ['model.onnx', 'model.onnx.data'];
    const files = [
      { path: URI, sha256: sha(model), bytes: model.length, version: await etag('churn/v1/model.onnx') },
      { path: URI.replace(/model\.onnx$/, 'model.onnx.data'), sha256: sha(theirs), bytes: theirs.length, version: await etag('churn/v1/model.onnx.data') },
    ];
    const identity = modelIdentity(files, names);
    const folder = ws.path('cache-planted', `${identity}-${createHash('sha256').update(names.join('\0')).digest('hex').slice(0, 8)}`);
    await ws.write(`cache-planted/${folder.slice(folder.lastIndexOf('/') + 1)}/model.onnx`, model);
    await writeFile(`${folder}/model.onnx.data`, theirs);
    await ws.write(`cache-planted/sources/${(await entryFile('cache-planted')).split('/').pop()}`, JSON.stringify({ location: URI, sha256: identity, files }));
    expect(parseEntry(await readFile(await entryFile('cache-planted'), 'utf8'), URI)).toBeDefined();

    const res = await runCli(['run', await job('planted'), '--date', DATE], { env: env('cache-planted') });
    expect(res.code, res.stderr).toBe(0);
    await expectScored('planted');
    const manifest = await ws.manifest(`out/planted/dt=${DATE}`);
    expect(manifest.models[0]!.sha256).not.toBe(identity);
    expect(manifest.models[0]!.files.map((f) => f.sha256)).toEqual([sha(model), sha(await readFile(`${EXPORT}/model.onnx.data`))]);
    // The entry now names the object's true bytes.
    expect(JSON.parse(await readFile(await entryFile('cache-planted'), 'utf8')).sha256).toBe(manifest.models[0]!.sha256);
  });

  it('an entry cut short by a full disk, or of another shape, is dropped and rebuilt; the run scores', async () => {
    const first = await runCli(['run', await job('whole'), '--date', DATE], { env: env('cache-cut') });
    expect(first.code, first.stderr).toBe(0);
    const file = await entryFile('cache-cut');
    const text = await readFile(file, 'utf8');
    for (const [i, damaged] of [text.slice(0, text.length / 2), '', 'null', JSON.stringify({ ...JSON.parse(text), files: 'model.onnx' })].entries()) {
      await writeFile(file, damaged);
      const res = await runCli(['run', await job(`cut${i}`), '--date', DATE], { env: env('cache-cut') });
      expect(res.code, `${JSON.stringify(damaged)}: ${res.stderr}`).toBe(0);
      await expectScored(`cut${i}`);
      expect(await readFile(file, 'utf8')).toBe(text);
    }
  });
});

describe('processes sharing the cache at its bound', () => {
  it('a folder in use is not evicted by another process fetching another model; it is loaded whole', async () => {
    process.env.NIGHTSCORE_MODEL_CACHE = ws.path('cache-shared');
    process.env.NIGHTSCORE_MODEL_CACHE_BYTES = '1';
    useEnvironment(readEnvironment(process.env));
    try {
      const model = await withLocalModel(URI, undefined, async (path) => {
        // Another process fetches another model at a bound of one byte: everything not in use goes.
        const other = await runCli(['validate', await job('small', 's3://models/small/model.onnx')], { env: env('cache-shared', { NIGHTSCORE_MODEL_CACHE_BYTES: '1' }) });
        expect(other.code, other.stderr).toBe(0);
        return loadModel(path);
      });
      expect(model.files.map((f) => f.sha256)).toEqual([sha(await readFile(`${EXPORT}/model.onnx`)), sha(await readFile(`${EXPORT}/model.onnx.data`))]);
      // Once released it may go: the next fetch at the bound evicts it, and a later use fetches it again.
      await s3.put('models', 'small/v2/model.onnx', await readFile(`${REPO}/models/churn/model.onnx`));
      const again = await runCli(['validate', await job('small2', 's3://models/small/v2/model.onnx')], { env: env('cache-shared', { NIGHTSCORE_MODEL_CACHE_BYTES: '1' }) });
      expect(again.code, again.stderr).toBe(0);
      expect((await readdir(ws.path('cache-shared'))).filter(isModelFolder)).toHaveLength(1);
      const res = await runCli(['run', await job('shared'), '--date', DATE], { env: env('cache-shared', { NIGHTSCORE_MODEL_CACHE_BYTES: '1' }) });
      expect(res.code, res.stderr).toBe(0);
      await expectScored('shared');
    } finally {
      delete process.env.NIGHTSCORE_MODEL_CACHE;
      delete process.env.NIGHTSCORE_MODEL_CACHE_BYTES;
      useEnvironment(readEnvironment(process.env));
    }
  });

  it('two processes scoring two models over and over at a bound of one byte never fail each other', async () => {
    const a = await job('loop-a');
    const b = await job('loop-b', 's3://models/small/model.onnx');
    const loop = async (file: string) => {
      for (let i = 0; i < 3; i++) {
        const res = await runCli(['validate', file], { env: env('cache-race', { NIGHTSCORE_MODEL_CACHE_BYTES: '1' }) });
        expect(res.code, res.stderr).toBe(0);
      }
    };
    await Promise.all([loop(a), loop(b)]);
  });
});

describe('a full disk under the cache', () => {
  const mnt = () => ws.path('tiny');
  beforeAll(async () => {
    if (!isRoot) return;
    await mkdir(mnt(), { mode: 0o700 });
    // One page: the model's folders fit, its weights do not.
    await promisify(execFile)('mount', ['-t', 'tmpfs', '-o', 'size=4k,mode=0700', 'tmpfs', mnt()]);
  });
  afterAll(async () => {
    if (isRoot) await promisify(execFile)('umount', [mnt()]).catch(() => undefined);
  });

  it.runIf(isRoot)('is FILE_NO_SPACE naming the cache, not INTERNAL', async () => {
    const res = await runCli(['run', await job('full'), '--date', DATE], { env: { ...s3.env, NIGHTSCORE_MODEL_CACHE: mnt() } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`FILE_NO_SPACE: cannot write the model cache ${mnt()}: ENOSPC (its disk is full)`);
    expect(res.stderr).toContain('NIGHTSCORE_MODEL_CACHE_BYTES');
  });

  it('maps ENOSPC and EDQUOT to FILE_NO_SPACE, EACCES and EROFS to MODEL_CACHE_UNWRITABLE', () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    expect(cacheError(errno('ENOSPC'), '/c')).toMatchObject({ code: 'FILE_NO_SPACE', column: 'NIGHTSCORE_MODEL_CACHE' });
    expect(cacheError(errno('EDQUOT'), '/c')).toMatchObject({ code: 'FILE_NO_SPACE' });
    expect(cacheError(errno('EACCES'), '/c')).toMatchObject({ code: 'MODEL_CACHE_UNWRITABLE', message: 'cannot write the model cache /c: EACCES' });
    expect(cacheError(errno('EROFS'), '/c')).toMatchObject({ code: 'MODEL_CACHE_UNWRITABLE' });
  });
});
