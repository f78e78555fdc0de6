import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startS3, type S3Server } from './support/s3.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * nightscore retry: a run whose second chunk failed (its object's reads all answered 500) is
 * retried chunk by chunk: only that chunk is scored again, the other parts stay untouched
 * (mtimes), and the result is the whole day. A date whose input changed since is scored whole.
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
  proxy = await startFaultProxy(s3.endpoint, (_, path) => (failing && path.endsWith('/c.csv') ? 'error500' : undefined));
});
afterAll(async () => {
  await proxy?.close();
  await s3?.close();
  await ws?.remove();
});

const env = () => ({ ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, AWS_MAX_ATTEMPTS: '1' });
// At 256 bytes a chunk, a.csv and b.csv (about 120 bytes each) are chunk 0, c.csv chunk 1.
const job = () => ws.job('r.yaml', { name: 'r', input: { uri: 's3://raw/day/dt={date}/', format: 'csv', key: ['id'] }, model: { path: 'm.onnx' }, output: { uri: 'out/dt={date}/', format: 'csv' }, chunk: { bytes: 256 } });
const mtime = async (f: string) => (await stat(ws.path(`out/dt=${DATE}/${f}`))).mtimeMs;

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
});
