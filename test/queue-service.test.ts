import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NightscoreError } from '../src/errors.js';
import { loadJob, type JobDefinition } from '../src/job/load.js';
import { cancelBackfill, decideBackfill, startBackfill, submitRun } from '../src/queue/service.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * The queue's rules, called in process as `run --queue`, `backfill` and the scheduler's fires
 * call them (src/queue/service.ts), on a real Redis under a prefix of each test's own:
 * - a date never run is enqueued; submitted again while its run is in flight it is left
 *   alone, and with --force refused (RUN_IN_PROGRESS): a run being run is never replaced;
 * - a date that succeeded (on the queue, or as its output says) is left alone, and with
 *   --force enqueued again;
 * - a date whose run failed is enqueued again, unless its output says it succeeded since;
 * - a backfill skips the dates in flight; cancelling it removes its queued dates.
 */

let ws: Workspace;
const FEATURES = ['x', 'y'];
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('m.onnx', { weights: [1, -1], bias: 0, featureNames: FEATURES });
});
afterAll(async () => {
  await ws?.remove();
});

const day = (date: string) => ws.write(`in/dt=${date}/a.csv`, `id,x,y\n${date}-1,1,2\n${date}-2,3,1\n`);

async function job(name: string): Promise<JobDefinition> {
  const file = await ws.job(`${name}.yaml`, { name, input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: 'm.onnx' }, output: { uri: `out/${name}/dt={date}/`, format: 'csv' } });
  return loadJob(file);
}

/** The error a promise rejects with. */
async function refusal(p: Promise<unknown>): Promise<NightscoreError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(NightscoreError);
  return err as NightscoreError;
}

describe('submitting the run of a date, with no worker to take it', () => {
  let tq: TestQueue;
  beforeAll(async () => {
    tq = await createTestQueue();
  });
  afterAll(async () => {
    await tq?.close();
  });

  it('a date never run is enqueued; submitted twice it is left alone; with force, refused with RUN_IN_PROGRESS', async () => {
    const def = await job('twice');
    const date = '2026-07-01';
    expect(await submitRun(tq.queues, def, date)).toEqual({ id: `twice@${date}`, added: true, was: 'unknown' });
    const queued = await tq.queues.runs.getJob(`twice@${date}`);
    expect(queued!.data).toMatchObject({ jobFile: def.file, date, step: 'plan' });

    expect(await submitRun(tq.queues, def, date)).toEqual({ id: `twice@${date}`, added: false, was: 'waiting' });

    const err = await refusal(submitRun(tq.queues, def, date, { force: true }));
    expect(err.code).toBe('RUN_IN_PROGRESS');
    expect(err.message).toBe(`twice@${date} is in flight on the queue (waiting); --force re-runs a date that failed or succeeded, never one being run`);
    expect(err.hint).toBe('Wait for it to finish (nightscore status), then force it again.');
    // The run in flight is the one first enqueued, untouched.
    expect((await tq.queues.runs.getJob(`twice@${date}`))!.timestamp).toBe(queued!.timestamp);
  });

  it('a date whose output says it succeeded is left alone; with force, enqueued again', async () => {
    const def = await job('scored');
    const date = '2026-07-02';
    await day(date);
    const local = await runCli(['run', def.file, '--date', date]);
    expect(local.code, local.stderr).toBe(0);

    // The queue holds no run of the date: the output has the last word.
    expect(await submitRun(tq.queues, def, date)).toEqual({ id: `scored@${date}`, added: false, was: 'completed' });
    expect(await tq.queues.runs.getJobState(`scored@${date}`)).toBe('unknown');

    expect(await submitRun(tq.queues, def, date, { force: true })).toEqual({ id: `scored@${date}`, added: true, was: 'completed' });
    expect(await tq.queues.runs.getJobState(`scored@${date}`)).toBe('waiting');
  });

  it('a backfill skips the dates in flight and enqueues the others; cancelling it removes those still queued', async () => {
    const def = await job('filled');
    const dates = ['2026-07-10', '2026-07-11', '2026-07-12'];
    await submitRun(tq.queues, def, dates[1]!);
    const plan = await decideBackfill(tq.queues, def, dates, { reprocess: 'all' });
    expect(plan.decisions).toEqual([
      { date: dates[0], enqueue: true, reason: 'reprocess all' },
      { date: dates[1], enqueue: false, reason: 'in flight (waiting)' },
      { date: dates[2], enqueue: true, reason: 'reprocess all' },
    ]);
    const { id, added } = await startBackfill(tq.queues, plan);
    expect(added).toBe(2);
    expect((await tq.queues.runs.getJob(`filled@${dates[0]}`))!.data).toMatchObject({ backfill: id });

    expect(await cancelBackfill(tq.queues, id)).toEqual({ removed: [dates[0], dates[2]], running: [], finished: [] });
    // The date submitted on its own is not the backfill's: it stays.
    expect(await tq.queues.runs.getJobState(`filled@${dates[1]}`)).toBe('waiting');
  });

  it('a backfill refuses an unknown --reprocess, and --model-as-of for a job whose model is no registry alias', async () => {
    const def = await job('badopt');
    const err = await refusal(decideBackfill(tq.queues, def, ['2026-07-20'], { reprocess: 'some' }));
    expect(err.code).toBe('BAD_OPTION');
    expect(err.message).toBe('--reprocess takes missing, failed, all or stale, got "some"');
    const asOf = await refusal(decideBackfill(tq.queues, def, ['2026-07-20'], { reprocess: 'missing', modelAsOf: 'date' }));
    expect(asOf.code).toBe('BAD_OPTION');
    expect(asOf.message).toContain('--model-as-of reads a registry alias as it was');
  });
});

describe('submitting the run of a date whose run failed', () => {
  let tq: TestQueue;
  beforeAll(async () => {
    tq = await createTestQueue();
    await tq.startWorker();
  });
  afterAll(async () => {
    await tq?.close();
  });

  it('is enqueued again; once its output says it succeeded since, it is left alone, and with force enqueued again', async () => {
    const def = await job('failing');
    const date = '2026-07-03';
    const other = '2026-07-04';
    for (const d of [date, other]) expect(await submitRun(tq.queues, def, d)).toMatchObject({ added: true, was: 'unknown' });
    // No input: both fail.
    await tq.waitFor(def.file, date, other, allIn(['failed']));

    // Its input landed: a failed run is run again, and succeeds.
    await day(other);
    expect(await submitRun(tq.queues, def, other)).toEqual({ id: `failing@${other}`, added: true, was: 'failed' });
    await tq.waitFor(def.file, other, other, allIn(['succeeded']));

    // Scored in process since it failed: the queue's failure is not the date's state.
    await day(date);
    const local = await runCli(['run', def.file, '--date', date]);
    expect(local.code, local.stderr).toBe(0);
    expect(await submitRun(tq.queues, def, date)).toEqual({ id: `failing@${date}`, added: false, was: 'completed' });
    expect(await tq.queues.runs.getJobState(`failing@${date}`)).toBe('failed');
    expect(await submitRun(tq.queues, def, date, { force: true })).toEqual({ id: `failing@${date}`, added: true, was: 'completed' });
    await tq.waitFor(def.file, date, date, allIn(['succeeded']));
    // Succeeded on the queue: left alone.
    expect(await submitRun(tq.queues, def, date)).toEqual({ id: `failing@${date}`, added: false, was: 'completed' });
  }, 60_000);
});
