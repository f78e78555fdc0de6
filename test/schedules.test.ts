import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { runCli, startCli, Workspace } from './support/workspace.js';

/**
 * Schedules you can see and stop (docs/operations.md, "The queue: schedules, backfills, workers"): `schedule list`, `pause`/`resume`, and
 * `sync` that removes only the schedulers of its own folder. Fires here come from real BullMQ
 * job schedulers, on a cron with a seconds field so that a test sees several.
 */

let ws: Workspace;
let tq: TestQueue;
const base = { input: { uri: 'in/dt={date}/', format: 'csv' }, model: { path: '../m.onnx' }, output: { uri: 'out/dt={date}/', format: 'csv' } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('m.onnx', { weights: [1], bias: 0, featureNames: ['x'] });
  tq = await createTestQueue();
});
afterAll(async () => {
  await tq?.close();
  await ws?.remove();
});

describe('schedules', () => {
  it('sync removes only its own folder\'s schedulers, says which it leaves, and --dry-run changes nothing', async () => {
    await ws.job('team-a/a1.yaml', { name: 'a1', schedule: { cron: '0 2 * * *' }, ...base });
    await ws.job('team-a/a2.yaml', { name: 'a2', schedule: { cron: '0 3 * * *' }, ...base });
    await ws.job('team-b/b1.yaml', { name: 'b1', schedule: { cron: '0 4 * * *', tz: 'Europe/Berlin' }, ...base });
    expect((await runCli(['schedule', 'sync', ws.path('team-a')], { env: tq.env })).code).toBe(0);
    const b = await runCli(['schedule', 'sync', ws.path('team-b')], { env: tq.env });
    expect(b.stdout).toBe(`schedulers upserted: job.b1\nleft alone (job files in other folders; --prune removes them): job.a1 (${ws.path('team-a/a1.yaml')}), job.a2 (${ws.path('team-a/a2.yaml')})\n`);
    const keys = async () => (await tq.queues.runs.getJobSchedulers(0, -1)).map((s) => s.key).sort();
    expect(await keys()).toEqual(['job.a1', 'job.a2', 'job.b1']);

    // a2's file goes: team-a's next sync removes its scheduler, first only on paper.
    await runCli(['schedule', 'sync', ws.path('team-b')], { env: tq.env });
    const { rm } = await import('node:fs/promises');
    await rm(ws.path('team-a/a2.yaml'));
    const dry = await runCli(['schedule', 'sync', ws.path('team-a'), '--dry-run'], { env: tq.env });
    expect(dry.stdout).toContain('dry run: schedulers would be upserted: job.a1\nwould be removed: job.a2\n');
    expect(await keys()).toEqual(['job.a1', 'job.a2', 'job.b1']);
    await runCli(['schedule', 'sync', ws.path('team-a')], { env: tq.env });
    expect(await keys()).toEqual(['job.a1', 'job.b1']);
    const pruned = await runCli(['schedule', 'sync', ws.path('team-b'), '--prune'], { env: tq.env });
    expect(pruned.stdout).toContain('removed: job.a1');
    expect(await keys()).toEqual(['job.b1']);

    const list = await runCli(['schedule', 'list'], { env: tq.env });
    expect(list.stdout.split('\n')[0]).toMatch(/^JOB\s+CRON\s+TZ\s+NEXT FIRE\s+LAST RUN\s+PAUSED$/);
    expect(list.stdout).toMatch(/b1\s+0 4 \* \* \*\s+Europe\/Berlin\s+\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z\s+\d{4}-\d\d-\d\d missing\s+no/);
  });

  it('pause stops the fires of a live scheduler, and resume restarts them', async () => {
    await ws.job('live/tick.yaml', { name: 'tick', schedule: { cron: '* * * * * *' }, ...base });
    const worker = await tq.startWorker();
    expect((await runCli(['schedule', 'sync', ws.path('live')], { env: tq.env })).code).toBe(0);
    const fired = () => (worker.log().match(/"msg":"schedule fired"/g) ?? []).length;
    const skipped = () => (worker.log().match(/"msg":"schedule paused: fire skipped"/g) ?? []).length;
    /** Polls (fires come every second) until `what` holds, or fails saying what the worker logged. */
    const until = async (what: () => boolean, label: string) => {
      for (const deadline = Date.now() + 15_000; !what(); await sleep(50)) if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}:\n${worker.log()}`);
    };
    await until(() => fired() >= 1, 'a fire');

    const paused = await runCli(['schedule', 'pause', 'tick'], { env: tq.env });
    expect(paused.stdout).toContain('tick: schedule paused');
    // A fire already under way when the pause landed may still be logged: count from the first skip.
    await until(() => skipped() >= 1, 'a skipped fire');
    const before = fired();
    await until(() => skipped() >= 3, 'two more skipped fires');
    expect(fired()).toBe(before);
    const list = (await runCli(['schedule', 'list', '--json'], { env: tq.env })).stdout;
    expect(JSON.parse(list)).toContainEqual(expect.objectContaining({ job: 'tick', paused: true, next: null }));

    // A sync while paused keeps it paused.
    await runCli(['schedule', 'sync', ws.path('live')], { env: tq.env });
    const afterSync = skipped();
    await until(() => skipped() >= afterSync + 1, 'a fire skipped after the sync');
    expect(fired()).toBe(before);

    await runCli(['schedule', 'resume', 'tick'], { env: tq.env });
    await until(() => fired() > before, 'a fire after resume');
    const unknown = await runCli(['schedule', 'pause', 'nope'], { env: tq.env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('there is no schedule for a job named "nope"');
  }, 30_000);

  it('sync --watch (a deployment\'s scheduler) syncs again when the job files change, keeps the last good schedules while a file is broken, and stops on SIGTERM', async () => {
    await ws.job('watched/w1.yaml', { name: 'w1', schedule: { cron: '0 2 * * *' }, ...base });
    const watch = startCli(['schedule', 'sync', ws.path('watched'), '--watch'], { ...tq.env, NIGHTSCORE_LOG_LEVEL: 'info', NIGHTSCORE_SCHEDULE_WATCH_MS: '200' });
    const cronOf = async (key: string) => (await tq.queues.runs.getJobSchedulers(0, -1)).find((s) => s.key === key)?.pattern;
    const until = async (what: () => Promise<boolean>, label: string) => {
      const deadline = Date.now() + 15_000;
      while (!(await what())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}:\n${watch.output()}`);
        await sleep(100);
      }
    };
    await until(async () => (await cronOf('job.w1')) === '0 2 * * *', 'the first sync');
    // A ConfigMap update: the file changes, and one more appears.
    await ws.job('watched/w1.yaml', { name: 'w1', schedule: { cron: '30 4 * * *' }, ...base });
    await ws.job('watched/w2.yaml', { name: 'w2', schedule: { cron: '0 5 * * *' }, ...base });
    await until(async () => (await cronOf('job.w1')) === '30 4 * * *' && (await cronOf('job.w2')) === '0 5 * * *', 'the re-sync');
    // A broken file: nothing is removed or changed, and the log says why, once.
    await ws.write('watched/w2.yaml', 'name: w2\nschedule: { cron: "not a cron" }\n');
    await until(async () => watch.output().includes('cannot be synced'), 'the error');
    await sleep(1000);
    expect(watch.output().match(/cannot be synced/g)).toHaveLength(1);
    expect(await cronOf('job.w2')).toBe('0 5 * * *');
    // Fixed by removing it: its scheduler goes.
    const { rm } = await import('node:fs/promises');
    await rm(ws.path('watched/w2.yaml'));
    await until(async () => (await cronOf('job.w2')) === undefined, 'the removal');
    expect(await cronOf('job.w1')).toBe('30 4 * * *');
    watch.child.kill('SIGTERM');
    const end = await watch.done;
    expect(end.code, watch.output()).toBe(0);
    expect(watch.output()).toContain('schedule watch stopped');
  }, 40_000);
});
