import { createHash } from 'node:crypto';
import { copyFile, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHURN_FEATURES } from '../src/demo/churn-data.js';
import { toNightscoreError } from '../src/errors.js';
import { loadJob } from '../src/job/load.js';
import { withLocalModel } from '../src/model/fetch.js';
import { Registry } from '../src/registry/registry.js';
import { prepareJob } from '../src/run/bind.js';
import { openLocation, resetStorageCache } from '../src/storage/open.js';
import { logisticModel } from '../scripts/onnx-builder.js';
import { startConditionalProxy, type ConditionalProxy } from './support/conditional-proxy.js';
import { startS3, type S3Server } from './support/s3.js';
import { REPO, Workspace } from './support/workspace.js';
import { readEnvironment, useEnvironment } from '../src/settings.js';

/**
 * The registry on both its backends: a local folder, and S3 behind a proxy that enforces
 * If-None-Match / If-Match as AWS S3 and MinIO do (s3rver ignores them). Versions are
 * immutable, alias moves are compare-and-swap, and the history says where an alias pointed when.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a registry file edited as JSON, field by field, as anyone with write access could
type Doc = Record<string, any>;
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const modelA = logisticModel({ weights: CHURN_FEATURES.map((_, i) => (i % 3) - 1), bias: 0, featureNames: [...CHURN_FEATURES] });
const modelB = logisticModel({ weights: CHURN_FEATURES.map((_, i) => (i % 2) - 0.5), bias: 1, featureNames: [...CHURN_FEATURES] });

let ws: Workspace;
let s3: S3Server;
let proxy: ConditionalProxy;
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.write('a.onnx', modelA);
  await ws.write('b.onnx', modelB);
  s3 = await startS3(['registry']);
  // Racing conditional writes wait a little each, so that every racer has read first.
  proxy = await startConditionalProxy(s3.endpoint, s3.client, { holdMs: 30 });
  process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
  useEnvironment(readEnvironment(process.env));
  resetStorageCache();
});
afterAll(async () => {
  await proxy?.close();
  await s3?.close();
  await ws?.remove();
});

const codeOf = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? toNightscoreError(r.reason).code : 'ok');

describe.each([
  ['a local folder', () => ws.path('registry')],
  ['S3', () => 's3://registry/models/'],
])('a registry in %s', (_, rootOf) => {
  let root: string;
  let registry: Registry;
  beforeAll(() => {
    root = rootOf();
    registry = new Registry(root, { by: 'test@ci' });
  });

  it('registers versions 1 and 2 with their record, an alias, and events; refs resolve by alias, version and latest', async () => {
    const v1 = await registry.register('churn', ws.path('a.onnx'), { alias: 'champion', tags: { team: 'growth' }, metrics: { auc: 0.81 }, description: 'first' });
    const v2 = await registry.register('churn', ws.path('b.onnx'), { description: 'second' });
    expect([v1.version, v2.version]).toEqual([1, 2]);
    expect(v1).toMatchObject({
      name: 'churn',
      sha256: sha(modelA),
      bytes: modelA.length,
      files: [{ name: 'model.onnx', sha256: sha(modelA), bytes: modelA.length }],
      created_by: 'test@ci',
      source: ws.path('a.onnx'),
      description: 'first',
      features: CHURN_FEATURES,
      tags: { team: 'growth' },
      metrics: { auc: 0.81 },
      signature: { inputs: [{ name: 'input', type: 'float32', shape: ['N', CHURN_FEATURES.length] }], outputs: [{ name: 'label', type: 'int64' }, { name: 'probabilities', type: 'float32' }] },
    });
    expect(v2.sha256).toBe(sha(modelB));
    const byAlias = await registry.resolve('models:/churn@champion');
    expect(byAlias).toMatchObject({ name: 'churn', version: 1, alias: 'champion', uri: registry.uri('churn', 'versions', '1', 'model.onnx') });
    expect((await registry.resolve('models:/churn/2')).record.sha256).toBe(sha(modelB));
    expect((await registry.resolve('models:/churn/latest')).version).toBe(2);
    const { storage, key } = openLocation(byAlias.uri);
    const stored = Buffer.concat(await (await storage.read(key)).toArray());
    expect(sha(stored)).toBe(sha(modelA));
    expect((await registry.events('churn')).map((e) => (e.kind === 'register' ? `register ${e.version}` : e.kind === 'alias' ? `alias ${e.alias} ${e.from}→${e.to}` : `gate ${e.verdict}`))).toEqual(['register 1', 'alias champion null→1', 'register 2']);
    expect(await registry.names()).toEqual(['churn']);
  });

  it('never writes under a registered version again: racing registers get numbers of their own', async () => {
    const { storage, key } = openLocation(registry.uri('churn', 'versions', '1', 'model.onnx'));
    expect(await storage.createIfAbsent(key, 'not a model')).toBe(false);
    const racers = await Promise.all([1, 2, 3, 4].map(() => new Registry(root).register('churn', ws.path('b.onnx'))));
    expect(racers.map((r) => r.version).sort()).toEqual([3, 4, 5, 6]);
    expect(await registry.versionNumbers('churn')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(sha(Buffer.concat(await (await storage.read(key)).toArray()))).toBe(sha(modelA));
  });

  it('moves an alias by compare-and-swap: of six moves racing from one generation exactly one lands, the others get ALIAS_CONFLICT', async () => {
    const { generation } = await registry.aliases('churn');
    const refusedBefore = proxy.refused;
    const results = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((v) => new Registry(root, { by: `racer-${v}` }).setAlias('churn', 'champion', v, { ifGeneration: generation, reason: `race ${v}` })));
    expect(results.map(codeOf).filter((c) => c === 'ok')).toHaveLength(1);
    expect(results.map(codeOf).filter((c) => c !== 'ok')).toEqual(Array(5).fill('ALIAS_CONFLICT'));
    const winner = results.findIndex((r) => r.status === 'fulfilled') + 1;
    const after = await registry.aliases('churn');
    expect(after).toMatchObject({ generation: generation + 1, aliases: { champion: winner }, last: { by: `racer-${winner}`, from: 1, to: winner } });
    const moves = await registry.aliasHistory('churn', 'champion');
    expect(moves.map((m) => [m.from, m.to, m.by])).toEqual([[null, 1, 'test@ci'], [1, winner, `racer-${winner}`]]);
    // On S3 the losers reached the server and were refused by If-Match, not by a read.
    if (root.startsWith('s3://')) expect(proxy.refused - refusedBefore).toBeGreaterThan(0);
  });

  it('reads an alias as it was at an instant, from a history that a writer stopped mid-move leaves whole', async () => {
    let now = new Date('2026-03-01T12:00:00Z');
    const timed = new Registry(root, { clock: () => now, by: 'ops@ci' });
    await timed.register('fraud', ws.path('a.onnx'), { alias: 'champion' });
    now = new Date('2026-03-05T09:00:00Z');
    await timed.register('fraud', ws.path('b.onnx'));
    now = new Date('2026-03-10T12:00:00Z');
    await timed.setAlias('fraud', 'champion', 2, { reason: 'promote' });
    const at = async (iso: string) => (await timed.resolve('models:/fraud@champion', { asOf: new Date(iso) })).version;
    // As of an instant: the moves before it (a move at the first instant of a day is that day's).
    expect(await at('2026-03-01T12:00:00.001Z')).toBe(1);
    expect(await at('2026-03-10T12:00:00Z')).toBe(1);
    expect(await at('2026-03-10T12:00:00.001Z')).toBe(2);
    expect((await timed.resolve('models:/fraud@champion')).version).toBe(2);
    await expect(timed.resolve('models:/fraud@champion', { asOf: new Date('2026-02-28T00:00:00Z') })).rejects.toMatchObject({ code: 'MODEL_ALIAS_NOT_FOUND', message: expect.stringContaining('first set at 2026-03-01T12:00:00.000Z') });
    // A writer stopped between its swap and its event file: aliases.json still tells the move.
    const events = openLocation(timed.uri('fraud', 'events', ''));
    const files = (await events.storage.list(events.key)).map((o) => o.key);
    const promote = files.find((k) => k.endsWith('-alias-g2.json'))!;
    await events.storage.delete(promote);
    expect(await at('2026-03-11T00:00:00Z')).toBe(2);
    // … and the next move writes it before its own.
    now = new Date('2026-03-12T00:00:00Z');
    await timed.setAlias('fraud', 'challenger', 1);
    expect((await events.storage.list(events.key)).map((o) => o.key)).toContain(promote);
    // A hole in the history (an event deleted by hand) is refused, not read past.
    await events.storage.delete(files.find((k) => k.endsWith('-alias-g1.json'))!);
    await expect(at('2026-03-11T00:00:00Z')).rejects.toMatchObject({ code: 'REGISTRY_HISTORY_INCOMPLETE' });
  });

  it('compares what was read, byte for byte: a swap from a version already replaced fails, however alike the bodies', async () => {
    const { storage, key } = openLocation(registry.uri('cas-probe.json'));
    await storage.put(key, '{"n":0}');
    const v0 = (await storage.readVersioned(key))!.version;
    expect(await storage.replaceIfMatch(key, '{"n":1}', v0)).toBe(true);
    // Same size, within the same clock tick: only the bytes tell them apart.
    expect(await storage.replaceIfMatch(key, '{"n":2}', v0)).toBe(false);
    expect((await storage.readVersioned(key))!.body.toString()).toBe('{"n":1}');
  });

  it('resolves while aliases move: no read meets a half-seen history', async () => {
    await registry.register('busy', ws.path('a.onnx'), { alias: 'champion' });
    await registry.register('busy', ws.path('b.onnx'));
    let moving = true;
    const mover = (async () => {
      for (let i = 0; i < 12; i++) await registry.setAlias('busy', 'champion', (i % 2) + 1);
      moving = false;
    })();
    const errors: string[] = [];
    while (moving) {
      await Promise.all([
        registry.resolve('models:/busy@champion').catch((e: unknown) => errors.push(toNightscoreError(e).code)),
        registry.resolve('models:/busy@champion', { asOf: new Date(Date.now() + 86_400_000) }).catch((e: unknown) => errors.push(toNightscoreError(e).code)),
      ]);
      // Reads keep landing inside each move (the proxy holds every write 30 ms) without
      // starving the mover of the in-process server when other test files load the cores.
      await new Promise((r) => setTimeout(r, 5));
    }
    await mover;
    expect(errors).toEqual([]);
    expect((await registry.aliasHistory('busy', 'champion')).length).toBe(13);
  });

  it('names a model with external data registered from any file name by the files it is stored as, and scores it', async () => {
    await copyFile(`${REPO}/models/torch-mlp/model.onnx`, ws.path('mlp.onnx'));
    await copyFile(`${REPO}/models/torch-mlp/model.onnx.data`, ws.path('model.onnx.data'));
    const record = await registry.register('mlp', ws.path('mlp.onnx'), { alias: 'champion' });
    expect(record.files.map((f) => f.name)).toEqual(['model.onnx', 'model.onnx.data']);
    const file = await ws.job(`mlp-${root.startsWith('s3') ? 's3' : 'local'}.yaml`, { name: 'mlp', registry: root, input: { uri: 'in/', format: 'csv' }, model: { uri: 'models:/mlp@champion', features: Array.from({ length: 20 }, (_, i) => `f${i}`) }, output: { uri: 'out/', format: 'csv' } });
    process.env.NIGHTSCORE_MODEL_CACHE = ws.path(`cache-mlp-${root.startsWith('s3') ? 's3' : 'local'}`);
    useEnvironment(readEnvironment(process.env));
    try {
      expect((await prepareJob(await loadJob(file))).spec.sha256).toBe(record.sha256);
    } finally {
      delete process.env.NIGHTSCORE_MODEL_CACHE;
      useEnvironment(readEnvironment(process.env));
    }
    // A download beside another model's weights would pair them: refused.
    const resolved = await registry.resolve('models:/mlp@champion');
    await ws.write(`beside-${root.length}/model.onnx.data`, 'other weights');
    await expect(registry.download(resolved, ws.path(`beside-${root.length}`, 'x.onnx'))).rejects.toMatchObject({ code: 'FILE_IO', message: expect.stringContaining('would pair another model with these weights') });
    await registry.download(resolved, ws.path(`own-${root.length}`, 'x.onnx'));
    expect(sha(await readFile(ws.path(`own-${root.length}`, 'model.onnx.data')))).toBe(record.files[1]!.sha256);
  });

  it('finds a version whose stored bytes were changed, and a run refuses to score them', async () => {
    await registry.register('tampered', ws.path('a.onnx'), { alias: 'champion' });
    const resolved = await registry.resolve('models:/tampered@champion');
    expect(await registry.verify(resolved)).toEqual([]);
    const { storage, key } = openLocation(resolved.uri);
    await storage.put(key, Buffer.from(modelB));
    expect(await registry.verify(resolved)).toEqual([{ file: resolved.uri, expected: sha(modelA), found: sha(modelB) }]);
    const file = await ws.job(`tampered-${root.startsWith('s3') ? 's3' : 'local'}.yaml`, {
      name: 'tampered',
      registry: root,
      input: { uri: 'in/', format: 'csv' },
      model: { uri: 'models:/tampered@champion' },
      output: { uri: 'out/', format: 'csv' },
    });
    process.env.NIGHTSCORE_MODEL_CACHE = ws.path(`cache-${root.startsWith('s3') ? 's3' : 'local'}`);
    useEnvironment(readEnvironment(process.env));
    try {
      await expect(prepareJob(await loadJob(file))).rejects.toMatchObject({ code: 'REGISTRY_CORRUPT', message: expect.stringContaining('tampered version 1') });
    } finally {
      delete process.env.NIGHTSCORE_MODEL_CACHE;
      useEnvironment(readEnvironment(process.env));
    }
    await expect(registry.download(resolved, ws.path('dl', 'm.onnx'))).rejects.toMatchObject({ code: 'REGISTRY_CORRUPT' });
  });

  /** A registry file as JSON, and one written back as someone with write access to the bucket could. */
  const readDoc = async (uri: string) => {
    const { storage, key } = openLocation(uri);
    return JSON.parse(Buffer.concat(await (await storage.read(key)).toArray()).toString('utf8')) as Doc;
  };
  const putDoc = async (uri: string, body: string | object) => {
    const { storage, key } = openLocation(uri);
    await storage.put(key, typeof body === 'string' ? body : JSON.stringify(body));
  };
  const eventUri = async (name: string, suffix: string) => {
    const events = openLocation(registry.uri(name, 'events', ''));
    const key = (await events.storage.list(events.key)).map((o) => o.key).find((k) => k.endsWith(suffix))!;
    return events.storage.uri(key);
  };

  // Each case damages one field of one record of a model of its own; reading it is REGISTRY_CORRUPT naming the file and the field.
  it.each([
    { field: 'files[1].name', file: 'version.json', damage: (d: Doc) => d.files.push({ name: '../../evil/pwned.txt', sha256: sha(Buffer.from('pwned')), bytes: 5 }) },
    { field: 'files', file: 'version.json', damage: (d: Doc) => delete d.files },
    { field: 'version', file: 'version.json', damage: (d: Doc) => (d.version = '1') },
    { field: 'name', file: 'version.json', damage: (d: Doc) => (d.name = 'churn') },
    { field: 'sha256', file: 'version.json', damage: (d: Doc) => (d.sha256 = 'abc') },
    { field: 'created_at', file: 'version.json', damage: (d: Doc) => (d.created_at = 'yesterday') },
    { field: 'aliases.champion', file: 'aliases.json', damage: (d: Doc) => (d.aliases.champion = '../../churn/versions/1') },
    { field: 'generation', file: 'aliases.json', damage: (d: Doc) => (d.generation = d.last.generation = 1e12) },
    { field: 'last.to', file: 'aliases.json', damage: (d: Doc) => (d.last.to = -1) },
    { field: 'generation', file: '-alias-g1.json', damage: (d: Doc) => (d.generation = 1.5) },
    { field: 'at', file: '-alias-g1.json', damage: (d: Doc) => (d.at = 'soon') },
    { field: 'sha256', file: '-register-v1.json', damage: (d: Doc) => (d.sha256 = null) },
  ])('refuses $file whose $field is not what nightscore writes: REGISTRY_CORRUPT naming both', async ({ field, file, damage }) => {
    const name = `damaged-${file.replace(/[^a-z0-9]/g, '')}-${field.replace(/[^a-z0-9]/g, '')}-${Math.random().toString(36).slice(2, 8)}`;
    await registry.register(name, ws.path('a.onnx'), { alias: 'champion' });
    const uri = file === 'version.json' ? registry.uri(name, 'versions', '1', file) : file === 'aliases.json' ? registry.uri(name, file) : await eventUri(name, file);
    const doc = await readDoc(uri);
    damage(doc);
    await putDoc(uri, doc);
    const read = file === 'version.json' ? registry.resolve(`models:/${name}/1`) : file === 'aliases.json' ? registry.resolve(`models:/${name}@champion`) : registry.aliasHistory(name);
    const err = await read.then(() => undefined, (e: unknown) => toNightscoreError(e));
    expect(err?.code, err?.message).toBe('REGISTRY_CORRUPT');
    expect(err!.message).toContain(`${uri}: ${field} is `);
    expect(err!.hint).toContain('restore');
  });

  it('never writes a file a version.json names outside the model cache or the download folder', async () => {
    const tag = `escape-${root.startsWith('s3') ? 's3' : 'local'}`;
    await registry.register('escape', ws.path('a.onnx'), { alias: 'champion' });
    // The object the hostile name points to is there, with the sha256 the record claims for it.
    const evil = registry.uri('escape', 'versions', '1', '../../evil/pwned.txt');
    await putDoc(evil, 'pwned');
    const record = await readDoc(registry.uri('escape', 'versions', '1', 'version.json'));
    record.files.push({ name: '../../evil/pwned.txt', sha256: sha(Buffer.from('pwned')), bytes: 5 });
    record.sha256 = createHash('sha256').update(record.files.map((f: { sha256: string; name: string }) => `${f.sha256}  ${f.name}\n`).join('')).digest('hex');
    await putDoc(registry.uri('escape', 'versions', '1', 'version.json'), record);
    const file = await ws.job(`${tag}/job.yaml`, { name: 'escape', registry: root, input: { uri: 'in/', format: 'csv' }, model: { uri: 'models:/escape@champion' }, output: { uri: 'out/', format: 'csv' } });
    // The cache's fetch folder is <cache>/.incoming-…/: "../../evil" from it is <tag>/evil, as it is from <tag>/dl/a/.
    process.env.NIGHTSCORE_MODEL_CACHE = ws.path(tag, 'cache');
    useEnvironment(readEnvironment(process.env));
    try {
      await expect(prepareJob(await loadJob(file))).rejects.toMatchObject({ code: 'REGISTRY_CORRUPT', message: expect.stringContaining('files[1].name is "../../evil/pwned.txt", expected a plain file name') });
    } finally {
      delete process.env.NIGHTSCORE_MODEL_CACHE;
      useEnvironment(readEnvironment(process.env));
    }
    const escaped = async () => (await readdir(ws.path(tag), { recursive: true })).includes(join('evil', 'pwned.txt'));
    expect(await escaped()).toBe(false);
    // A run planned elsewhere reaches a worker as a spec through the queue: the cache refuses such a name itself.
    if (root.startsWith('s3://')) {
      process.env.NIGHTSCORE_MODEL_CACHE = ws.path(tag, 'cache');
      useEnvironment(readEnvironment(process.env));
      try {
        const files = record.files.map((f: { name: string; sha256: string; bytes: number }) => ({ path: registry.uri('escape', 'versions', '1', f.name), sha256: f.sha256, bytes: f.bytes }));
        await expect(withLocalModel(files[0].path, { location: files[0].path, sha256: record.sha256, files }, async (p) => p)).rejects.toMatchObject({ code: 'MODEL_EXTERNAL_DATA_INVALID' });
      } finally {
        delete process.env.NIGHTSCORE_MODEL_CACHE;
        useEnvironment(readEnvironment(process.env));
      }
      expect(await escaped()).toBe(false);
    }
    await expect(registry.resolve('models:/escape@champion').then((r) => registry.download(r, ws.path(tag, 'dl', 'a', 'm.onnx')))).rejects.toMatchObject({ code: 'REGISTRY_CORRUPT' });
    expect(await escaped()).toBe(false);
  });

  it('says which files a version lists that its model does not read, each sha256 told once', async () => {
    const tag = `extra-${root.startsWith('s3') ? 's3' : 'local'}`;
    await registry.register('extra', ws.path('a.onnx'), { alias: 'champion' });
    await putDoc(registry.uri('extra', 'versions', '1', 'extra.bin'), 'extra');
    const uri = registry.uri('extra', 'versions', '1', 'version.json');
    const record = await readDoc(uri);
    record.files.push({ name: 'extra.bin', sha256: sha(Buffer.from('extra')), bytes: 5 });
    record.sha256 = createHash('sha256').update(record.files.map((f: { sha256: string; name: string }) => `${f.sha256}  ${f.name}\n`).join('')).digest('hex');
    await putDoc(uri, record);
    const file = await ws.job(`${tag}/job.yaml`, { name: 'extra', registry: root, input: { uri: 'in/', format: 'csv' }, model: { uri: 'models:/extra@champion' }, output: { uri: 'out/', format: 'csv' } });
    process.env.NIGHTSCORE_MODEL_CACHE = ws.path(tag, 'cache');
    useEnvironment(readEnvironment(process.env));
    try {
      const err = await prepareJob(await loadJob(file)).then(() => undefined, (e: unknown) => toNightscoreError(e));
      expect(err).toMatchObject({ code: 'REGISTRY_CORRUPT', message: 'models:/extra@champion (extra version 1): its version.json lists the files model.onnx, extra.bin, but its model reads model.onnx' });
    } finally {
      delete process.env.NIGHTSCORE_MODEL_CACHE;
      useEnvironment(readEnvironment(process.env));
    }
  });

  it('tells a history that claims more moves than it has from a corrupt one, without walking the claim', async () => {
    await registry.register('claims', ws.path('a.onnx'), { alias: 'champion' });
    const uri = registry.uri('claims', 'aliases.json');
    const doc = await readDoc(uri);
    doc.generation = doc.last.generation = 999_999_999;
    await putDoc(uri, doc);
    const started = Date.now();
    await expect(registry.resolve('models:/claims@champion', { asOf: new Date() })).rejects.toMatchObject({ code: 'REGISTRY_HISTORY_INCOMPLETE', message: expect.stringContaining('lacks the alias move(s) of generation 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, … (999999997 of 999999999)') });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('registry references in a job file', () => {
  it('are checked at load: a malformed one is JOB_INVALID at its line; none resolves without a registry', async () => {
    const base = { name: 'r', input: { uri: 'in/', format: 'csv' }, output: { uri: 'out/', format: 'csv' } };
    const bad = await ws.job('bad-ref.yaml', { ...base, model: { uri: 'models:/churn' } });
    const line = (await readFile(bad, 'utf8')).split('\n').findIndex((l) => l.includes('models:/churn')) + 1;
    await expect(loadJob(bad)).rejects.toMatchObject({ code: 'JOB_INVALID', line, message: expect.stringContaining('models:/churn" is not a model reference: it names no alias or version') });
    const unset = await ws.job('no-registry.yaml', { ...base, model: { uri: 'models:/churn@champion' } });
    const saved = process.env.NIGHTSCORE_REGISTRY_URI;
    delete process.env.NIGHTSCORE_REGISTRY_URI;
    useEnvironment(readEnvironment(process.env));
    try {
      await expect(prepareJob(await loadJob(unset))).rejects.toMatchObject({ code: 'REGISTRY_NOT_SET' });
    } finally {
      if (saved !== undefined) process.env.NIGHTSCORE_REGISTRY_URI = saved;
      useEnvironment(readEnvironment(process.env));
    }
  });

  it('pin the version they resolve to; a job pinning model.sha256 is checked against it', async () => {
    const root = ws.path('pins');
    const registry = new Registry(root);
    await registry.register('churn', ws.path('a.onnx'), { alias: 'champion' });
    await registry.register('churn', ws.path('b.onnx'), { alias: 'challenger' });
    const job = (model: Record<string, unknown>) => ws.job('pinned.yaml', { name: 'p', registry: 'pins', input: { uri: 'in/', format: 'csv' }, model, output: { uri: 'out/', format: 'csv' } });
    const prepared = await prepareJob(await loadJob(await job({ uri: 'models:/churn@challenger' })));
    expect(prepared.spec).toMatchObject({ sha256: sha(modelB), location: ws.path('pins', 'churn', 'versions', '2', 'model.onnx'), registry: { ref: 'models:/churn@challenger', name: 'churn', version: 2, alias: 'challenger', as_of: null } });
    await expect(prepareJob(await loadJob(await job({ uri: 'models:/churn@champion', sha256: sha(modelB) })))).rejects.toMatchObject({
      code: 'MODEL_SHA_MISMATCH',
      message: expect.stringContaining('models:/churn@champion resolves to churn version 1'),
    });
    await writeFile(ws.path('pins', 'churn', 'aliases.json'), (await readFile(ws.path('pins', 'churn', 'aliases.json'), 'utf8')).replace('"champion": 1', '"champion": 7'));
    await expect(prepareJob(await loadJob(await job({ uri: 'models:/churn@champion' })))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND', message: expect.stringContaining('churn has no version 7') });
    await rm(ws.path('pins'), { recursive: true });
  });
});
