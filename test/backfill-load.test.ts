import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { dateRange } from '../src/job/dates.js';
import { csvOf } from './support/data.js';
import { inputKeys, outputKeys } from './support/keys.js';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { startRedisServer, type RedisServer } from './support/redis-server.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * A year of small days through two worker processes, on a Redis of the test's own so its
 * memory and keys are the queue's alone. Finished runs are trimmed to NIGHTSCORE_KEEP_RUNS and
 * completed chunks removed, so what Redis holds afterwards does not grow with the dates; the
 * manifests are the history.
 */
const DATES = dateRange('2025-01-01', '2025-12-31');
const KEEP_RUNS = 40;

let ws: Workspace | undefined;
let tq: TestQueue | undefined;
let server: RedisServer | undefined;
afterAll(async () => {
  await tq?.close();
  await server?.stop();
  await ws?.remove();
});

describe('a backfill of 365 dates', () => {
  it('two workers score every date once, and Redis keeps a bounded number of finished runs', async () => {
    expect(DATES).toHaveLength(365);
    ws = await Workspace.create();
    server = await startRedisServer();
    tq = await createTestQueue({ NIGHTSCORE_REDIS_URL: `redis://127.0.0.1:${server.port}`, NIGHTSCORE_KEEP_RUNS: String(KEEP_RUNS) });
    for (const [i, date] of DATES.entries()) await ws.write(`in/dt=${date}/a.csv`, csvOf(4 + (i % 9), i));
    const job = await ws.job('year.yaml', {
      name: 'year',
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
      model: { path: `${REPO}/models/churn/model.onnx` },
      output: { uri: 'out/dt={date}/', format: 'csv' },
      // Two chunks for the larger days: runs with several children.
      chunk: { rows: 100, bytes: 1000 },
    });
    const t0 = Date.now();
    const backfill = await runCli(['backfill', job, '--from', DATES[0]!, '--to', DATES.at(-1)!], { env: tq.env });
    expect(backfill.stdout).toContain('365 of 365 dates enqueued');
    await Promise.all([tq.startWorker(), tq.startWorker()]);

    const done = () => DATES.filter((d) => existsSync(ws!.path(`out/dt=${d}/_SUCCESS`))).length;
    let peakKeys = 0;
    for (let n = done(); n < DATES.length; n = done()) {
      if (Date.now() - t0 > 75_000) throw new Error(`${n} of 365 dates done after 75 s\n${tq.workerLogs().slice(-5000)}`);
      expect(await tq.queues.runs.getFailedCount()).toBe(0);
      peakKeys = Math.max(peakKeys, Number(server.cli('DBSIZE').trim()));
      await new Promise((r) => setTimeout(r, 500));
    }
    const seconds = (Date.now() - t0) / 1000;

    // Every date: succeeded, every input row exactly once in its output.
    for (const date of DATES) {
      const m = await ws.manifest(`out/dt=${date}`);
      expect(m.status).toBe('succeeded');
      expect(await outputKeys(ws.path(`out/dt=${date}`))).toEqual(await inputKeys(ws.path(`in/dt=${date}`)));
    }
    // Runs Redis no longer holds still show as succeeded, from their manifests.
    const status = await tq.status(job, DATES[0]!, DATES.at(-1)!);
    expect(status.filter((s) => s.state === 'succeeded')).toHaveLength(365);

    // Redis keeps at most KEEP_RUNS finished runs and no completed chunk: a few keys per kept
    // run (its hash, its children's results) plus the queues' own, however many dates ran.
    await new Promise((r) => setTimeout(r, 500));
    const prefix = tq.config.prefix;
    const keys = server.cli('--scan', '--pattern', `${prefix}:*`).trim().split('\n');
    const kept = new Set(keys.filter((k) => k.startsWith(`${prefix}:runs:year@`)).map((k) => k.split(':')[2]));
    expect(kept.size).toBeLessThanOrEqual(KEEP_RUNS);
    expect(keys.filter((k) => k.startsWith(`${prefix}:chunks:year@`))).toEqual([]);
    expect(keys.length).toBeLessThan(4 * KEEP_RUNS + 30);
    // Each queue's event stream is trimmed to its cap of 2,000 (approximately: Redis trims
    // whole nodes); at BullMQ's default of 10,000 the chunks' stream would hold ~3,000 here.
    // In bytes, that is most of what remains: ~2,000 events of ~150 bytes per queue, next to
    // ~2 KB per kept run.
    const client = new Redis(server.port, '127.0.0.1');
    const lengths = await Promise.all(['runs', 'chunks'].map((q) => client.xlen(`${prefix}:${q}:events`)));
    let total = 0;
    for (const k of keys) total += Number(await client.call('MEMORY', 'USAGE', k, 'SAMPLES', '0'));
    client.disconnect();
    for (const n of lengths) expect(n).toBeLessThanOrEqual(2_000 + 200);
    console.log(`365 dates in ${seconds.toFixed(1)} s; Redis: ${keys.length} keys (peak ${peakKeys}), ${kept.size} runs kept, ${(total / 1024).toFixed(0)} KiB under the prefix`);
    expect(total).toBeLessThan(1024 * 1024);
  }, 110_000);
});
