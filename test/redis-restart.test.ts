import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeDemoDay } from '../src/demo/demo.js';
import { loadJob } from '../src/job/load.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { startRedisServer, type RedisServer } from './support/redis-server.js';
import { parseCsv, REPO, runCli, startCli, Workspace } from './support/workspace.js';

/** A Redis server of the test's own, on a free loopback port, persisting to an append-only file. */
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
  });
}

const DATE = '2026-06-01';
let ws: Workspace;
let tq: TestQueue | undefined;
let redis: ChildProcess | undefined;
const dir = mkdtempSync(path.join(tmpdir(), 'nightscore-redis-'));

afterAll(async () => {
  await tq?.close();
  redis?.kill('SIGKILL');
  await ws?.remove();
  rmSync(dir, { recursive: true, force: true });
});

describe('Redis restart', () => {
  it('workers reconnect after Redis restarts mid-run; the run completes with every row once', async () => {
    ws = await Workspace.create();
    const port = await freePort();
    redis = await startRedis(port, dir);
    tq = await createTestQueue({ NIGHTSCORE_REDIS_URL: `redis://127.0.0.1:${port}`, NIGHTSCORE_LOCK_MS: '5000', NIGHTSCORE_STALLED_INTERVAL_MS: '2000' });
    const file = await ws.job('restart.yaml', {
      name: 'restart',
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
      model: { path: `${REPO}/models/churn/model.onnx` },
      output: { uri: 'out/dt={date}/', format: 'csv' },
      chunk: { rows: 500, bytes: 1_000_000 },
    });
    await writeDemoDay(await loadJob(file), DATE, { rows: 80_000, files: 2, seed: 9 });
    await tq.startWorker({}, ['--concurrency', '1']);
    expect((await runCli(['run', file, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
    for (let i = 0; i < 400 && (await tq.queues.chunks.getActiveCount()) === 0; i++) await new Promise((r) => setTimeout(r, 25));

    // Stop Redis (SIGTERM: it writes its append-only file), wait, start it again on the same data.
    const stopped = new Promise((resolve) => redis!.once('exit', resolve));
    redis.kill('SIGTERM');
    await stopped;
    await new Promise((r) => setTimeout(r, 1500));
    redis = await startRedis(port, dir);

    const [status] = await tq.waitFor(file, DATE, DATE, allIn(['succeeded', 'failed']), 120_000);
    expect(status!.state).toBe('succeeded');
    const input = readdirSync(ws.path(`in/dt=${DATE}`)).flatMap((f) => parseCsv(readFileSync(ws.path(`in/dt=${DATE}`, f), 'utf8')).slice(1).map((r) => r[0]!));
    const outDir = ws.path(`out/dt=${DATE}`);
    const output = readdirSync(outDir, { recursive: true })
      .map(String)
      .filter((f) => /part-\d+\.csv$/.test(f))
      .flatMap((f) => parseCsv(readFileSync(path.join(outDir, f), 'utf8')).slice(1).map((r) => (f.startsWith('_rejects') ? r[2]! : r[0]!)));
    expect(output.length).toBe(input.length);
    expect(output.sort()).toEqual(input.sort());
  }, 180_000);
});

describe('Redis restarted without its data', () => {
  const lost: { ws?: Workspace; tq?: TestQueue; redis?: RedisServer } = {};
  afterAll(async () => {
    await lost.tq?.close();
    await lost.redis?.stop();
    await lost.ws?.remove();
  });

  it('backfill --wait says the queue lost the backfill, lists its dates as their output folders say, and running it again finishes it', async () => {
    const [done, cut, never] = ['2026-06-10', '2026-06-11', '2026-06-12'];
    const ws = (lost.ws = await Workspace.create());
    // No persistence: a restart comes back empty.
    lost.redis = await startRedisServer();
    const { port } = lost.redis;
    const tq = (lost.tq = await createTestQueue({ NIGHTSCORE_REDIS_URL: `redis://127.0.0.1:${port}`, NIGHTSCORE_LOCK_MS: '5000', NIGHTSCORE_STALLED_INTERVAL_MS: '2000' }));
    const file = await ws.job('lost.yaml', {
      name: 'lost',
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
      model: { path: `${REPO}/models/churn/model.onnx` },
      output: { uri: 'out/dt={date}/', format: 'csv' },
      chunk: { rows: 500, bytes: 1_000_000 },
    });
    const job = await loadJob(file);
    await writeDemoDay(job, done, { rows: 200, files: 1, seed: 1 });
    await writeDemoDay(job, cut, { rows: 80_000, files: 2, seed: 2 });
    await writeDemoDay(job, never, { rows: 200, files: 1, seed: 3 });
    const worker = await tq.startWorker();
    // One date at a time: the last is not handed over before the second ends.
    const wait = startCli(['backfill', file, '--from', done, '--to', never, '--max-parallel-runs', '1', '--wait'], tq.env);
    await tq.waitFor(file, done, never, (r) => r[0]!.state === 'succeeded' && r[1]!.state === 'running' && (r[1]!.chunks?.done ?? 0) > 0, 60_000);

    // The worker goes down with Redis: one left running could finish the second date, or feed
    // the third to the new, empty Redis, between the status read above and the restart.
    worker.child.kill('SIGKILL');
    await worker.exited;
    await lost.redis.stop();
    lost.redis = await startRedisServer({ port });

    const res = await Promise.race([wait.done, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`backfill --wait still running:\n${wait.output()}`)), 60_000))]);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr, res.stderr).toMatch(/nightscore: BACKFILL_LOST: backfill bf-\S+ \(lost\) is no longer on the queue \(redis:\/\/127\.0\.0\.1:\d+, prefix nstest-\w+\): Redis lost it, and its runs, while it was followed\. Its dates, as their output folders say: 1 succeeded · 1 interrupted · 1 missing of 3/);
    expect(res.stderr).toContain(`hint: Run it again: nightscore backfill ${file} --from ${done} --to ${never} --max-parallel-runs 1 (--reprocess missing, the default, keeps the dates that succeeded and scores the others).`);
    const lines = res.stdout.split('\n');
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${done}  succeeded `)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${cut}  interrupted `)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${never}  missing `)));

    // Again, as the hint says: the succeeded date is kept, the other two are scored.
    const kept = await ws.manifest(`out/dt=${done}`);
    await tq.startWorker();
    const again = await runCli(['backfill', file, '--from', done, '--to', never, '--max-parallel-runs', '1', '--wait'], { env: tq.env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`${done}  skip   `);
    expect(again.stderr).toMatch(/: 2 succeeded of 2 dates/);
    expect((await ws.manifest(`out/dt=${done}`)).attempt).toBe(kept.attempt);
  }, 240_000);
});
