import { Agent, get } from 'node:http';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeDemoDay } from '../src/demo/demo.js';
import { Redis, type RedisOptions } from 'ioredis';
import { loadJob } from '../src/job/load.js';
import { connectionOptions } from '../src/queue/config.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { REPO, runCli, startCli, Workspace } from './support/workspace.js';

/** Workers that stay alive through their plumbing's failures, and die cleanly when told. */

let ws: Workspace;
let tq: TestQueue | undefined;
beforeEach(async () => {
  ws = await Workspace.create();
});
afterEach(async () => {
  await tq?.close();
  tq = undefined;
  await ws.remove();
});

const DATE = '2026-10-01';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function dayJob(name: string, rows: number, batch: number): Promise<string> {
  const file = await ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: 'out/dt={date}/', format: 'csv' },
    chunk: { rows: batch },
  });
  await writeDemoDay(await loadJob(file), DATE, { rows, files: 1, seed: 3 });
  await writeDemoDay(await loadJob(file), '2026-10-02', { rows: 500, files: 1, seed: 4 });
  return file;
}

describe('a worker stays alive', () => {
  it('a chunk that vanishes from Redis while it is scored is logged, and the worker goes on serving', async () => {
    tq = await createTestQueue();
    const job = await dayJob('vanish', 300_000, 200);
    const worker = await tq.startWorker({}, ['--concurrency', '1']);
    expect((await runCli(['run', job, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
    let active: string | undefined;
    for (let i = 0; i < 400 && !active; i++) {
      const [chunk] = await tq.queues.chunks.getActive();
      if (chunk && typeof chunk.progress === 'object') active = chunk.id;
      else await sleep(20);
    }
    expect(active, tq.workerLogs()).toBeDefined();
    // What a Redis restarted empty, a flush or a stalled chunk completed elsewhere leaves behind.
    const redis = new Redis(connectionOptions(tq.config) as RedisOptions);
    expect(await redis.del(`${tq.config.prefix}:chunks:${active}`)).toBe(1);
    redis.disconnect();
    for (let i = 0; i < 300 && !worker.log().includes('could not record chunk progress'); i++) await sleep(20);
    expect(worker.log()).toContain('could not record chunk progress');

    // Still serving: the next date is scored by the same process.
    expect((await runCli(['run', job, '--date', '2026-10-02', '--queue'], { env: tq.env })).code).toBe(0);
    const [status] = await tq.waitFor(job, '2026-10-02', '2026-10-02', allIn(['succeeded', 'failed']));
    expect(status!.state, tq.workerLogs()).toBe('succeeded');
    expect(worker.child.exitCode).toBeNull();
    expect(worker.log()).not.toMatch(/unhandled rejection|Missing key for job[^"]*"\s*\n\s+at /);
  });
});

describe('a worker that cannot work properly stops before it takes any', () => {
  let blocker: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => (blocker ? blocker.close(r) : r(undefined)));
    blocker = undefined;
  });

  it('a health port in use is HTTP_PORT_IN_USE, exit 2, and no run is taken', async () => {
    tq = await createTestQueue();
    const job = await dayJob('port', 500, 100);
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const { port } = blocker.address() as AddressInfo;
    expect((await runCli(['run', job, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
    const res = await runCli(['worker', '--port', String(port)], { env: tq.env });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`HTTP_PORT_IN_USE: cannot serve /healthz and /metrics on 127.0.0.1:${port}: the port is in use`);
    expect(await tq.queues.runs.getJobState(`port@${DATE}`)).toBe('waiting');
  });

  it.each([
    ['NIGHTSCORE_LOCK_MS', 'abc', /BAD_ENV: NIGHTSCORE_LOCK_MS must be a whole number of milliseconds from 1000 to 86400000, got "abc"/],
    ['NIGHTSCORE_STALLED_INTERVAL_MS', '0', /BAD_ENV: NIGHTSCORE_STALLED_INTERVAL_MS must be a whole number of milliseconds from 1000/],
    ['NIGHTSCORE_ATTEMPTS', '0', /BAD_ENV: NIGHTSCORE_ATTEMPTS must be a whole number of attempts from 1 to 100/],
    ['NIGHTSCORE_SHUTDOWN_TIMEOUT_MS', '-5', /BAD_ENV: NIGHTSCORE_SHUTDOWN_TIMEOUT_MS must be/],
    ['NIGHTSCORE_HTTP_PORT', '70000', /BAD_ENV: NIGHTSCORE_HTTP_PORT must be a whole number of port from 0 to 65535/],
  ])('%s=%s is BAD_ENV, exit 2, naming the range', async (name, value, pattern) => {
    tq = await createTestQueue();
    const started = Date.now();
    const res = await runCli(['worker'], { env: { ...tq.env, [name]: value } });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(pattern);
    expect(res.stderr).not.toMatch(/INTERNAL/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('two job files with one name in --jobs-dir stop the worker, naming both', async () => {
    tq = await createTestQueue();
    const body = { name: 'same', input: { uri: 'in/', format: 'csv' }, model: { path: 'm.onnx' }, output: { uri: 'out/', format: 'csv' } };
    await ws.job('jobs/a.yaml', body);
    await ws.job('jobs/b.yaml', body);
    const res = await runCli(['worker', '--port', '0', '--jobs-dir', ws.path('jobs')], { env: tq.env });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/JOB_NAME_DUPLICATE: .*a\.yaml and .*b\.yaml both have name: same/);
  });
});

describe('a worker always dies within its shutdown timeout', () => {
  it('with Redis unreachable, SIGTERM exits within NIGHTSCORE_SHUTDOWN_TIMEOUT_MS', async () => {
    // A port nothing listens on: the worker starts (Redis may come later) and retries forever.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as AddressInfo;
    await new Promise((r) => closed.close(r));
    const worker = startCli(['worker', '--port', '0'], { NIGHTSCORE_REDIS_URL: `redis://127.0.0.1:${port}`, NIGHTSCORE_QUEUE_PREFIX: 'nstest-unreachable', NIGHTSCORE_SHUTDOWN_TIMEOUT_MS: '3000', NIGHTSCORE_LOG_LEVEL: 'info' });
    for (let i = 0; i < 200 && !worker.output().includes('worker started'); i++) await sleep(50);
    expect(worker.output()).toContain('worker started');
    await sleep(1_000);
    // A scraper holding a keep-alive connection to /metrics must not hold the process either.
    const healthPort = Number(/"port":(\d+)/.exec(worker.output())?.[1]);
    const agent = new Agent({ keepAlive: true });
    const healthz = await new Promise<number | undefined>((resolve) => get({ host: '127.0.0.1', port: healthPort, path: '/healthz', agent }, (res) => res.resume().on('end', () => resolve(res.statusCode))));
    expect(healthz).toBe(200);
    const t0 = Date.now();
    worker.child.kill('SIGTERM');
    const code = await Promise.race([worker.done.then((r) => r.code), sleep(10_000).then(() => 'still running')]);
    if (code === 'still running') worker.child.kill('SIGKILL');
    expect(code, worker.output()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3_800);
    agent.destroy();
  });
});
