import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelAsOf } from '../src/job/dates.js';
import { loadJob } from '../src/job/load.js';
import { Registry } from '../src/registry/registry.js';
import { prepareJob } from '../src/run/bind.js';
import type { RunManifest } from '../src/run/manifest.js';
import { runJob } from '../src/run/run.js';
import { resetStorageCache } from '../src/storage/open.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startS3, type S3Server } from './support/s3.js';
import { runCli, Workspace } from './support/workspace.js';
import { readEnvironment, useEnvironment } from '../src/settings.js';

/**
 * nightscore retry: a run whose second chunk failed (its object's reads all answered 500) is
 * retried chunk by chunk: only that chunk is scored again, the other parts stay untouched
 * (mtimes), and the result is the whole day. A date whose input changed since is scored whole.
 * The failed manifest is read back as untrusted: retry keeps a part only while it holds the
 * bytes its chunk wrote, touches only the files our own layout names, and scores with the
 * model version the date was planned with.
 */

let ws: Workspace;
let s3: S3Server;
let proxy: FaultProxy;
let failing = true;
const DATE = '2026-10-01';
const rows = (p: string) => ['id,x', ...Array.from({ length: 20 }, (_, i) => `${p}${i},${i}`)].join('\n') + '\n';
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('m.onnx', { weights: [1], bias: 0, featureNames: ['x'] });
  s3 = await startS3(['raw']);
  for (const p of ['a', 'b', 'c']) await s3.put('raw', `day/dt=${DATE}/${p}.csv`, rows(p));
  proxy = await startFaultProxy(s3.endpoint, (_, path) => (failing && /\/[cz]\.csv$/.test(path) ? 'error500' : undefined));
});
afterAll(async () => {
  await proxy?.close();
  await s3?.close();
  await ws?.remove();
});

const env = () => ({ ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, AWS_MAX_ATTEMPTS: '1' });
// At 256 bytes a chunk, a.csv and b.csv (about 120 bytes each) are chunk 0, c.csv chunk 1.
const job = () => ws.job('r.yaml', { name: 'r', input: { uri: 's3://raw/day/dt={date}/', format: 'csv', key: ['id'] }, model: { path: 'm.onnx' }, output: { uri: 'out/dt={date}/', format: 'csv' }, chunk: { bytes: 256 } });
const mtime = async (f: string, date = DATE) => (await stat(ws.path(`out/dt=${date}/${f}`))).mtimeMs;
/** Fails a first run of `date` over `files` (those named c or z fail their chunk), then lets reads through again. */
async function failedRun(file: string, date: string, files = ['a', 'b', 'c']): Promise<void> {
  failing = true;
  for (const p of files) await s3.put('raw', `day/dt=${date}/${p}.csv`, rows(p));
  const first = await runCli(['run', file, '--date', date, '--threads', '1'], { env: env() });
  expect(first.code, first.stderr).toBe(1);
  failing = false;
}
/** Rewrites a date's manifest, as someone with write access to the output folder could. */
async function editManifest(date: string, edit: (m: RunManifest) => void): Promise<void> {
  const file = ws.path(`out/dt=${date}/_manifest.json`);
  const manifest = JSON.parse(await readFile(file, 'utf8'));
  edit(manifest);
  await writeFile(file, JSON.stringify(manifest));
}
const dataRows = async (rel: string) => (await ws.csv(rel)).length - 1;

describe('retry', () => {
  it('scores only the failed chunk again, keeping the parts of the others untouched', async () => {
    const file = await job();
    const first = await runCli(['run', file, '--date', DATE, '--threads', '1'], { env: env() });
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('S3_UNAVAILABLE');
    const kept = await mtime('part-00000.csv');
    failing = false;
    const retry = await runCli(['retry', file, '--date', DATE], { env: env() });
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stderr).toContain('retrying chunk 1 of 2; keeping the parts of the 1 that succeeded');
    expect(await mtime('part-00000.csv')).toBe(kept);
    const manifest = await ws.manifest(`out/dt=${DATE}`);
    expect(manifest).toMatchObject({ status: 'succeeded', rows: { read: 60, scored: 60, rejected: 0 } });
    expect(manifest.parts.map((p) => p.uri.split('/').pop())).toEqual(['part-00000.csv', 'part-00001.csv']);
    const ids = (await Promise.all([0, 1].map((i) => ws.csv(`out/dt=${DATE}/part-0000${i}.csv`)))).flatMap((t) => t.slice(1).map((r) => r[0]));
    expect(ids).toEqual(['a', 'b', 'c'].flatMap((p) => Array.from({ length: 20 }, (_, i) => `${p}${i}`)));
    const again = await runCli(['retry', file, '--date', DATE], { env: env() });
    expect(again.stderr).toContain('succeeded (attempt');
  });

  it('scores the whole date, saying why, when an input changed since the failed run', async () => {
    const file = await job();
    failing = true;
    const date = '2026-10-02';
    for (const p of ['a', 'b', 'c']) await s3.put('raw', `day/dt=${date}/${p}.csv`, rows(p));
    expect((await runCli(['run', file, '--date', date, '--threads', '1'], { env: env() })).code).toBe(1);
    failing = false;
    await s3.put('raw', `day/dt=${date}/a.csv`, rows('A'));
    const retry = await runCli(['retry', file, '--date', date], { env: env() });
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stderr).toMatch(/scoring the whole date: the date no longer plans as it did: s3:\/\/raw\/day\/dt=2026-10-02\/a\.csv changed/);
    expect((await ws.csv(`out/dt=${date}/part-00000.csv`))[1]![0]).toBe('A0');
  });

  it('scores the whole date, saying why, when the model scores under another engine version than the failed run planned', async () => {
    const file = await job();
    const date = '2026-10-09';
    await failedRun(file, date);
    await editManifest(date, (m) => (m.retry!.spec.models[0]!.engine.version = '0.0.1'));
    const retry = await runCli(['retry', file, '--date', date], { env: env() });
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stderr).toMatch(/scoring the whole date: the date no longer plans as it did: the model scores under another engine \(onnxruntime 0\.0\.1, 1 thread then, onnxruntime \d+\.\d+\.\d+, 1 thread now\)/);
    expect(await dataRows(`out/dt=${date}/part-00000.csv`) + await dataRows(`out/dt=${date}/part-00001.csv`)).toBe(60);
  });

  it('keeps a part only while it holds the bytes its chunk wrote: a part cut short is scored again, never published', async () => {
    const file = await job();
    const date = '2026-10-03';
    // a+b are chunk 0, m+n chunk 1, z (failing) chunk 2.
    await failedRun(file, date, ['a', 'b', 'm', 'n', 'z']);
    expect((await ws.manifest(`out/dt=${date}`)).retry!.completed[1]!.part).toMatchObject({ bytes: expect.any(Number), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const kept = await mtime('part-00000.csv', date);
    const cut = ws.path(`out/dt=${date}/part-00001.csv`);
    await writeFile(cut, (await readFile(cut, 'utf8')).split('\n').slice(0, 11).join('\n') + '\n');
    const retry = await runCli(['retry', file, '--date', date], { env: env() });
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stderr).toMatch(/part-00001\.csv is not what its chunk wrote \(\d+ bytes, sha256 [0-9a-f]{12}… now; \d+ bytes, sha256 [0-9a-f]{12}… then\): chunk 1 is scored again/);
    expect(retry.stderr).toContain('retrying chunks 1, 2 of 3; keeping the parts of the 1 that succeeded');
    expect(await mtime('part-00000.csv', date)).toBe(kept);
    expect(await dataRows(`out/dt=${date}/part-00001.csv`)).toBe(40);
    const manifest = await ws.manifest(`out/dt=${date}`);
    expect(manifest).toMatchObject({ status: 'succeeded', rows: { read: 100, scored: 100, rejected: 0 } });
    expect(manifest.parts.map((p) => p.rows)).toEqual([40, 40, 20]);
  });

  describe('refuses a failed manifest that is not as nightscore wrote it, and keeps or removes nothing on its word', () => {
    const date = '2026-10-04';
    let file: string;
    const ledger = () => ws.path('elsewhere', 'ledger.csv');
    const LEDGER = 'source,start,line,reason\nthe books,0,1,keep me\n';
    /** Names `file` as chunk 0's staged rejects, with every count and digest as a chunk would record them: only its name gives it away. */
    const stage = (m: RunManifest, file: string, body: string) => {
      const chunk = m.retry!.completed[0]!;
      chunk.stagedRejects = { uri: pathToFileURL(file).href, rows: 1, bytes: Buffer.byteLength(body), sha256: createHash('sha256').update(body).digest('hex') };
      chunk.stats.rows = { ...chunk.stats.rows, read: chunk.stats.rows.read + 1, rejected: 1 };
      const first = Object.keys(chunk.stats.inputs)[0]!;
      chunk.stats.inputs[first]! += 1;
    };
    beforeAll(async () => {
      file = await job();
      await failedRun(file, date);
      await ws.write('elsewhere/ledger.csv', LEDGER);
    });

    it.each([
      ['retry.completed[0].stagedRejects.uri', (m: RunManifest) => stage(m, ledger(), LEDGER), /retry\.completed\[0\]\.stagedRejects\.uri is not file:\/\/\S+\/out\/dt=2026-10-04\/_rejects\/\.staged-00000\.csv, the name nightscore gives that chunk's file \(it names "file:\/\/\S+\/elsewhere\/ledger\.csv"\)/],
      ['retry.completed[0].part.uri', (m: RunManifest) => (m.retry!.completed[0]!.part.uri = pathToFileURL(ledger()).href), /retry\.completed\[0\]\.part\.uri is not file:\/\/\S+\/part-00000\.csv/],
      ['retry.completed[0].part.rows', (m: RunManifest) => (m.retry!.completed[0]!.part.rows = '40' as unknown as number), /retry\.completed\[0\]\.part\.rows is not a whole number from 0/],
      ['retry.completed[0].index', (m: RunManifest) => (m.retry!.completed[0]!.index = 7), /retry\.completed\[0\]\.index is not the index of one of the 2 chunks planned/],
      ['models[0].registry', (m: RunManifest) => (m.models[0]!.registry = { ref: 'models:/churn@champion', name: 'churn', version: 'one' as unknown as number, alias: 'champion', as_of: null }), /models\[0\]\.registry\.version is not a version number/],
    ])('%s', async (_, edit, message) => {
      const manifest = await readFile(ws.path(`out/dt=${date}/_manifest.json`), 'utf8');
      const before = await ws.list(`out/dt=${date}`);
      try {
        await editManifest(date, edit);
        const retry = await runCli(['retry', file, '--date', date], { env: env() });
        expect(await ws.read('elsewhere/ledger.csv').catch(() => 'gone')).toBe(LEDGER);
        expect(await ws.list(`out/dt=${date}`)).toEqual(before);
        expect(retry.code, retry.stderr).toBe(2);
        expect(retry.stderr).toMatch(message);
        expect(retry.stderr).toContain('MANIFEST_INVALID');
        expect(retry.stderr).toContain(`hint: Something other than nightscore changed the manifest. Score the whole date again rather than retry it: nightscore run ${file} --date ${date}`);
      } finally {
        await writeFile(ws.path(`out/dt=${date}/_manifest.json`), manifest);
      }
    });
  });

  it('scores with the model version the date was planned with (backfill --model-as-of), not the alias\'s current one', async () => {
    // churn@champion named v1 until October 10th, v2 since: October 5th was planned with v1.
    const V1 = { weights: [1], bias: 0 };
    const V2 = { weights: [-1], bias: 0.5 };
    await ws.model('v1.onnx', { ...V1, featureNames: ['x'] });
    await ws.model('v2.onnx', { ...V2, featureNames: ['x'] });
    let now = new Date('2026-09-01T08:00:00Z');
    const registry = new Registry(ws.path('registry'), { clock: () => now, by: 'ds@team' });
    await registry.register('churn', ws.path('v1.onnx'), { alias: 'champion' });
    now = new Date('2026-10-10T12:00:00Z');
    await registry.register('churn', ws.path('v2.onnx'), { alias: 'champion' });
    const file = await ws.job('pinned.yaml', { name: 'pinned', input: { uri: 's3://raw/day/dt={date}/', format: 'csv', key: ['id'] }, model: { uri: 'models:/churn@champion' }, registry: 'registry', output: { uri: 'out/dt={date}/', format: 'csv' }, chunk: { bytes: 256 } });
    const date = '2026-10-05';
    for (const p of ['a', 'b', 'c']) await s3.put('raw', `day/dt=${date}/${p}.csv`, rows(p));
    // The run a worker makes of a backfill --model-as-of date: the alias read at the date's end.
    failing = true;
    const saved = { ...process.env };
    Object.assign(process.env, env());
    useEnvironment(readEnvironment(process.env));
    resetStorageCache();
    try {
      const failed = await runJob(await prepareJob(await loadJob(file), { asOf: modelAsOf('date', date, 'UTC') }), date);
      expect(failed).toMatchObject({ status: 'failed', model: { version: 1 }, error: { code: 'S3_UNAVAILABLE' } });
    } finally {
      process.env = saved;
      useEnvironment(readEnvironment(process.env));
      resetStorageCache();
      failing = false;
    }
    const retry = await runCli(['retry', file, '--date', date], { env: env() });
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stderr).toContain('retrying chunk 1 of 2; keeping the parts of the 1 that succeeded');
    const manifest = await ws.manifest(`out/dt=${date}`);
    expect(manifest.models[0]!.registry).toEqual({ ref: 'models:/churn@champion', name: 'churn', version: 1, alias: 'champion', as_of: '2026-10-06T00:00:00.000Z' });
    const scored = await ws.csv(`out/dt=${date}/part-00001.csv`);
    const p1 = (x: number) => 1 / (1 + Math.exp(-(V1.bias + V1.weights[0]! * x)));
    expect(scored.slice(1).map((r) => [r[0], Number(r.at(-1)).toFixed(5)])).toEqual(Array.from({ length: 20 }, (_, i) => [`c${i}`, p1(i).toFixed(5)]));
  });
});
