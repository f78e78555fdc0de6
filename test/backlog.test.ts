import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueBacklog, type QueueBacklog } from '../src/queue/backlog.js';
import { BACKFILL_PRIORITY } from '../src/queue/queues.js';
import { csvOf } from './support/data.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { startRedisServer } from './support/redis-server.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * GET /backlog is what the Kubernetes autoscaler (KEDA's metrics-api trigger) scales the
 * workers on: chunks waiting + prioritized + active. A backfill's chunks are prioritized
 * (below tonight's runs), so a count of the `wait` list alone would see none of them.
 */
let ws: Workspace;
let tq: TestQueue;
const DATES = ['2026-10-01', '2026-10-02', '2026-10-03', '2026-10-04'];
beforeAll(async () => {
  ws = await Workspace.create();
  for (const [i, d] of DATES.entries()) await ws.write(`in/dt=${d}/a.csv`, csvOf(40_000, i));
  tq = await createTestQueue();
});
afterAll(async () => {
  await tq?.close();
  await ws?.remove();
});

/** The shipped churn model over this file's inputs, in chunks of `chunkBytes`, writing out/<name>/. */
const churnJob = (name: string, chunkBytes: number) =>
  ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
    chunk: { bytes: chunkBytes },
  });

describe('the backlog endpoint', () => {
  it("equals the queue's waiting + prioritized + active chunks while a backfill runs, and 0 after", async () => {
    const file = await churnJob('backlog', 64 * 1024);
    const worker = await tq.startWorker({}, ['--concurrency', '1']);
    const backlog = async () => (await fetch(`http://127.0.0.1:${worker.port}/backlog`)).json() as Promise<QueueBacklog>;
    const res = await runCli(['backfill', file, '--from', DATES[0]!, '--to', DATES.at(-1)!], { env: tq.env });
    expect(res.code, res.stderr).toBe(0);

    // Chunks finish all the time: compare only when the queue read the same before and after
    // the request, so the endpoint saw that state too.
    const compared: QueueBacklog[] = [];
    const deadline = Date.now() + 60_000;
    while (compared.length < 5 && Date.now() < deadline) {
      const before = await queueBacklog(tq.queues);
      const served = await backlog();
      const after = await queueBacklog(tq.queues);
      if (JSON.stringify(before.chunks) !== JSON.stringify(after.chunks) || before.backlog === 0) {
        // Not a tight loop: the worker under test shares these two cores.
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const { waiting, prioritized, active } = before.chunks;
      expect(served.chunks).toEqual(before.chunks);
      expect(served.backlog).toBe(waiting + prioritized + active);
      compared.push(served);
    }
    expect(compared.length, `too few steady moments to compare; worker log:\n${worker.log()}`).toBe(5);
    // The backfill's chunks wait in the prioritized set, and one is scoring at a time.
    expect(compared.some((b) => b.chunks.prioritized > 0 && b.chunks.active === 1)).toBe(true);
    const sample = (await tq.queues.chunks.getJobs(['prioritized'], 0, 0))[0];
    expect(sample?.opts.priority).toBe(BACKFILL_PRIORITY);

    await tq.waitFor(file, DATES[0]!, DATES.at(-1)!, allIn(['succeeded']), 120_000);
    expect(await backlog()).toMatchObject({ backlog: 0, chunks: { waiting: 0, prioritized: 0, active: 0 } });
    worker.child.kill('SIGTERM');
    await worker.exited;
  }, 150_000);

  it("a run enqueued behind a backfill is scored first: the backfill's runs and chunks yield to it", async () => {
    // Many small chunks: the backfill takes seconds, however fast the machine.
    const file = await churnJob('yield', 16 * 1024);
    await ws.write('in/dt=2026-10-09/a.csv', csvOf(4_000, 9));
    const worker = await tq.startWorker({}, ['--concurrency', '1']);
    expect((await runCli(['backfill', file, '--from', DATES[0]!, '--to', DATES.at(-1)!], { env: tq.env })).code).toBe(0);
    expect((await runCli(['run', file, '--date', '2026-10-09', '--queue'], { env: tq.env })).code).toBe(0);
    await tq.waitFor(file, '2026-10-09', '2026-10-09', allIn(['succeeded']), 60_000);
    const backfilled = await tq.status(file, DATES[0]!, DATES.at(-1)!);
    // Queued last, done before the backfill: at most the date being scored when it came finished first.
    expect(backfilled.filter((r) => r.state === 'succeeded').length, worker.log()).toBeLessThanOrEqual(1);
    // The rest of the backfill is not this test's business: close() stops the worker and empties the queue.
  }, 150_000);

  it('answers 503 REDIS_UNAVAILABLE within seconds while Redis is down, rather than never', async () => {
    const redis = await startRedisServer();
    const own = await createTestQueue({ NIGHTSCORE_REDIS_URL: `redis://127.0.0.1:${redis.port}` });
    const worker = await own.startWorker();
    try {
      expect((await fetch(`http://127.0.0.1:${worker.port}/backlog`)).status).toBe(200);
      await redis.stop();
      const started = Date.now();
      const res = await fetch(`http://127.0.0.1:${worker.port}/backlog`, { signal: AbortSignal.timeout(20_000) });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('REDIS_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      // Its Redis is gone: no clean-up to do there (own.close() would wait for it).
      worker.child.kill('SIGKILL');
      await worker.exited;
      await Promise.race([own.queues.close(), new Promise((r) => setTimeout(r, 1_000))]);
    }
  });
});
