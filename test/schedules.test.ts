import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Schedules you can see and stop (README "The queue"): `schedule list`, `pause`/`resume`, and
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
    await sleep(2500);
    expect(fired()).toBeGreaterThanOrEqual(1);

    const paused = await runCli(['schedule', 'pause', 'tick'], { env: tq.env });
    expect(paused.stdout).toContain('tick: schedule paused');
    await sleep(500);
    const before = fired();
    await sleep(3000);
    expect(fired()).toBe(before);
    expect(skipped()).toBeGreaterThanOrEqual(2);
    const list = (await runCli(['schedule', 'list', '--json'], { env: tq.env })).stdout;
    expect(JSON.parse(list)).toContainEqual(expect.objectContaining({ job: 'tick', paused: true, next: null }));

    // A sync while paused keeps it paused.
    await runCli(['schedule', 'sync', ws.path('live')], { env: tq.env });
    await sleep(1500);
    expect(fired()).toBe(before);

    await runCli(['schedule', 'resume', 'tick'], { env: tq.env });
    await sleep(2500);
    expect(fired()).toBeGreaterThan(before);
    const unknown = await runCli(['schedule', 'pause', 'nope'], { env: tq.env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('there is no schedule for a job named "nope"');
  }, 30_000);
});
