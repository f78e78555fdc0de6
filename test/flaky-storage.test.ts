import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { csvOf } from './support/data.js';
import { startFaultProxy, type Fault, type FaultProxy } from './support/fault-proxy.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { startS3, type S3Server } from './support/s3.js';
import { REPO, runCli, Workspace, parseCsv } from './support/workspace.js';

/**
 * Storage that misbehaves between nightscore and the S3 server: 503 SlowDown, 500s,
 * connections reset mid-body, bodies cut short behind a matching Content-Length, and
 * servers that stall (accept a request and send nothing, or stop mid-body).
 * Every scenario checks the output row by row against the input.
 */
let s3: S3Server;
let ws: Workspace;
let proxy: FaultProxy | undefined;
let tq: TestQueue | undefined;
const DATE = '2026-04-01';
const ROWS = 120;

beforeAll(async () => {
  s3 = await startS3(['raw', 'out']);
  ws = await Workspace.create();
  for (const part of ['a', 'b', 'c']) await s3.put('raw', `day/dt=${DATE}/${part}.csv`, csvOf(ROWS, part.charCodeAt(0)));
});
afterEach(async () => {
  await tq?.close();
  tq = undefined;
  await proxy?.close();
  proxy = undefined;
});
afterAll(async () => {
  await s3.close();
  await ws.remove();
});

/** S3 idle timeout for the runs under test (NIGHTSCORE_S3_TIMEOUT_MS), so a stall costs a second, not 30. */
const TIMEOUT_MS = 1000;

async function withFaults(name: string, plan: (n: number, path: string) => Fault | undefined) {
  proxy = await startFaultProxy(s3.endpoint, plan);
  const job = await ws.job(`${name}.yaml`, {
    name,
    input: { uri: 's3://raw/day/dt={date}/', format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: `s3://out/${name}/dt={date}/`, format: 'csv' },
    chunk: { rows: 50, bytes: 3000 },
  });
  return { job, env: { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, NIGHTSCORE_S3_TIMEOUT_MS: String(TIMEOUT_MS) } };
}

/** Keys in the succeeded output, in part order. */
async function outputKeys(name: string): Promise<string[]> {
  const m = JSON.parse(await s3.get('out', `${name}/dt=${DATE}/_manifest.json`));
  const keys: string[] = [];
  for (const p of m.parts as Array<{ uri: string }>) keys.push(...parseCsv(await s3.get('out', p.uri.replace('s3://out/', ''))).slice(1).map((r) => r[0]!));
  return keys;
}

const expectedKeys = ['a', 'b', 'c'].flatMap((p) => Array.from({ length: ROWS }, (_, i) => `K${p.charCodeAt(0)}-${i}`));

describe('flaky storage', () => {
  it('503 SlowDown and 500 on reads are retried with backoff: the run succeeds with every row once', async () => {
    const { job, env } = await withFaults('slow', (n) => (n % 3 === 0 ? 'slowdown' : n % 3 === 1 && n < 6 ? 'error500' : undefined));
    const res = await runCli(['run', job, '--date', DATE], { env });
    expect(res.code).toBe(0);
    expect(proxy!.injected.length).toBeGreaterThan(3);
    expect(await outputKeys('slow')).toEqual(expectedKeys);
  });

  it('a body cut short is detected, never scored: in process the run fails cleanly', async () => {
    // Every read comes back half-length. A range whose records all lie in the first half
    // loses nothing; the ranges that need the rest must notice.
    const { job, env } = await withFaults('cut', () => 'truncate');
    const res = await runCli(['run', job, '--date', DATE], { env });
    expect(proxy!.injected.length).toBeGreaterThan(0);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/INPUT_TRUNCATED: s3:\/\/raw\/day\/dt=2026-04-01\/.*\.csv: the body ended after \d+ of \d+ bytes/);
    expect(await s3.keys('out', `cut/dt=${DATE}/`)).not.toContain(`cut/dt=${DATE}/_SUCCESS`);
    expect(JSON.parse(await s3.get('out', `cut/dt=${DATE}/_manifest.json`)).status).toBe('failed');
  });

  it('storage that never recovers fails the run cleanly, with no _SUCCESS', async () => {
    const { job, env } = await withFaults('down', () => 'slowdown');
    // Two tries per request: what is tested is how the run fails, not how long the SDK backs off.
    const res = await runCli(['run', job, '--date', DATE], { env: { ...env, AWS_MAX_ATTEMPTS: '2' } });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/S3_UNAVAILABLE: cannot read s3:\/\/raw\/.*SlowDown/);
    expect(await s3.keys('out', `down/dt=${DATE}/`)).not.toContain(`down/dt=${DATE}/_SUCCESS`);
  });

  it('a read that stalls before any byte is timed out and retried: the run succeeds with every row once', async () => {
    const { job, env } = await withFaults('stall-once', (n) => (n === 0 ? 'stall' : undefined));
    const t0 = Date.now();
    const res = await runCli(['run', job, '--date', DATE], { env });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(proxy!.injected).toEqual(['stall']);
    // The retry came from the idle timeout, not from a connection the proxy dropped.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(await outputKeys('stall-once')).toEqual(expectedKeys);
  });

  it.each([
    ['before any byte', 'stall' as const],
    ['mid-body', 'stall-body' as const],
  ])('storage that stalls %s forever fails the run cleanly in bounded time, with no _SUCCESS', async (_label, fault) => {
    const name = `hang-${fault}`;
    const { job, env } = await withFaults(name, () => fault);
    const t0 = Date.now();
    const res = await runCli(['run', job, '--date', DATE], { env: { ...env, AWS_MAX_ATTEMPTS: '2' } });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/S3_UNAVAILABLE: cannot read s3:\/\/raw\/day\/dt=2026-04-01\/[abc]\.csv: TimeoutError: .*timed out after 1000 ms/);
    expect(res.stderr).toContain('hint: The storage service did not answer');
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(await s3.keys('out', `${name}/dt=${DATE}/`)).not.toContain(`${name}/dt=${DATE}/_SUCCESS`);
    expect(JSON.parse(await s3.get('out', `${name}/dt=${DATE}/_manifest.json`)).status).toBe('failed');
  });

  it('a Parquet footer whose body fails mid-transfer is a storage error, not a corrupt file', async () => {
    await s3.put('raw', `pq/dt=${DATE}/x.parquet`, await readFile(path.join(REPO, 'test/fixtures/parquet-testing/alltypes_plain.parquet')));
    proxy = await startFaultProxy(s3.endpoint, () => 'stall-body');
    const job = await ws.job('pq.yaml', {
      name: 'pq',
      input: { uri: 's3://raw/pq/dt={date}/', format: 'parquet' },
      model: { path: await ws.model('pq.onnx', { weights: [1], bias: 0 }), features: ['int_col'] },
      output: { uri: 's3://out/pq/dt={date}/', format: 'csv' },
    });
    const res = await runCli(['run', job, '--date', DATE], { env: { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, NIGHTSCORE_S3_TIMEOUT_MS: String(TIMEOUT_MS) } });
    expect(res.code).toBe(1);
    // Retryable on the queue; PARQUET_INVALID would fail the night for a network blip.
    expect(res.stderr).toMatch(/S3_UNAVAILABLE: cannot read s3:\/\/raw\/pq\/dt=2026-04-01\/x\.parquet: TimeoutError/);
    expect(res.stderr).not.toContain('PARQUET_INVALID');
  });

  it('a manifest read reset mid-body is read again: a re-run of the date succeeds', async () => {
    let resets = 0;
    const { job, env } = await withFaults('reread', (_, path) => (path.endsWith('/_manifest.json') && resets++ === 0 ? 'reset' : undefined));
    expect((await runCli(['run', job, '--date', DATE], { env })).code).toBe(0);
    const res = await runCli(['run', job, '--date', DATE], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(proxy!.injected).toEqual(['reset']);
    expect(await outputKeys('reread')).toEqual(expectedKeys);
  });

  describe('staged rejects read back short at commit', () => {
    /** A day whose chunks each stage one reject; the output on S3 behind the proxy. */
    async function withRejects(name: string, plan: (n: number, path: string) => Fault | undefined) {
      const bad = (p: string) => `${csvOf(ROWS, p.charCodeAt(0))}bad-${p},x\n`;
      for (const p of ['d', 'e']) await s3.put('raw', `${name}/dt=${DATE}/${p}.csv`, bad(p));
      proxy = await startFaultProxy(s3.endpoint, plan);
      const job = await ws.job(`${name}.yaml`, {
        name,
        input: { uri: `s3://raw/${name}/dt={date}/`, format: 'csv', key: ['customer_id'] },
        model: { path: `${REPO}/models/churn/model.onnx` },
        output: { uri: `s3://out/${name}/dt={date}/`, format: 'csv' },
        chunk: { rows: 50, bytes: 3000 },
        limits: { max_reject_rate: 0.5 },
      });
      return { job, env: { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, NIGHTSCORE_S3_TIMEOUT_MS: String(TIMEOUT_MS) } };
    }
    const staged = (path: string) => path.includes('/_rejects/.staged-');

    it('in process: the run fails with REJECTS_READ_SHORT and a failed manifest, never a short rejects file', async () => {
      const { job, env } = await withRejects('short-rejects', (_, path) => (staged(path) ? 'truncate' : undefined));
      const res = await runCli(['run', job, '--date', DATE], { env });
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toMatch(/REJECTS_READ_SHORT: s3:\/\/out\/short-rejects\/.*\.staged-\d+\.csv read back \d+ of the \d+ bytes its chunk staged/);
      const manifest = JSON.parse(await s3.get('out', `short-rejects/dt=${DATE}/_manifest.json`));
      expect(manifest).toMatchObject({ status: 'failed', error: { code: 'REJECTS_READ_SHORT', kind: 'storage', retryable: true } });
      expect(await s3.keys('out', `short-rejects/dt=${DATE}/`)).not.toContain(`short-rejects/dt=${DATE}/_SUCCESS`);
    });

    it('on the queue: the commit is tried again, and publishes every reject once', async () => {
      let cut = 0;
      const { job, env } = await withRejects('retried-rejects', (_, path) => (staged(path) && cut++ === 0 ? 'truncate' : undefined));
      tq = await createTestQueue(env);
      await tq.startWorker();
      expect((await runCli(['run', job, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
      const [status] = await tq.waitFor(job, DATE, DATE, allIn(['succeeded', 'failed']));
      expect(status!.state, JSON.stringify(status)).toBe('succeeded');
      expect(proxy!.injected).toEqual(['truncate']);
      const manifest = JSON.parse(await s3.get('out', `retried-rejects/dt=${DATE}/_manifest.json`));
      const rejected = [];
      for (const r of manifest.rejects as Array<{ uri: string }>) rejected.push(...parseCsv(await s3.get('out', r.uri.replace('s3://out/', ''))).slice(1).map((row) => row[2]));
      expect(rejected.sort()).toEqual(['bad-d', 'bad-e']);
    });
  });

  it('on the queue, resets and cut bodies are retried per chunk: the run succeeds with every row exactly once', async () => {
    // Each fault once, on every other read. A chunk has 5 attempts (NIGHTSCORE_ATTEMPTS) and at
    // most four of these can end one (a 503 is retried inside the S3 client), so the run must
    // succeed however the reads interleave; an endless cycle of faults could, now and then, land
    // five on one chunk and fail the day as it should.
    const faults: Fault[] = ['reset', 'truncate', 'slowdown', 'stall-body', 'truncate', 'slowdown'];
    const { job, env } = await withFaults('queued', (n) => (n >= 2 && n % 2 === 0 ? faults[n / 2 - 1] : undefined));
    tq = await createTestQueue(env);
    await tq.startWorker({}, ['--concurrency', '2']);
    expect((await runCli(['run', job, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
    const [status] = await tq.waitFor(job, DATE, DATE, allIn(['succeeded', 'failed']));
    expect(status!.state, JSON.stringify(status)).toBe('succeeded');
    expect(proxy!.injected).toEqual(expect.arrayContaining(['reset', 'truncate', 'stall-body']));
    expect([...(await outputKeys('queued'))].sort()).toEqual([...expectedKeys].sort());
    expect(await outputKeys('queued')).toEqual(expectedKeys);
  });
});
