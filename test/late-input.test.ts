import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { runCli, startCli, Workspace } from './support/workspace.js';

/**
 * Late upstream data and re-runs (docs/operations.md, "Operating nightscore"): a run waits for its input
 * as a delayed job (input.wait), holding no worker slot; a failed date is run again by the
 * next `run --queue` (or fire); `--force` runs a succeeded date again, never one in flight.
 */

let ws: Workspace;
let tq: TestQueue;
const FEATURES = ['x', 'y'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('m.onnx', { weights: [1, -1], bias: 0, featureNames: FEATURES });
  tq = await createTestQueue();
  await tq.startWorker();
});
afterAll(async () => {
  await tq?.close();
  await ws?.remove();
});

const day = (date: string) => ws.write(`in/dt=${date}/a.csv`, `id,x,y\n${date}-1,1,2\n${date}-2,3,1\n`);

async function job(name: string, input: Record<string, unknown> = {}): Promise<string> {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'], ...input },
    model: { path: 'm.onnx' },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
  });
}

describe('late input', () => {
  it('waits on the queue for input that lands 3 s after the run started, then scores it', async () => {
    const file = await job('late', { wait: { timeout: '60s', poll: '1s' } });
    const date = '2026-04-02';
    expect((await runCli(['run', file, '--date', date, '--queue'], { env: tq.env })).code).toBe(0);
    await sleep(1500);
    const [waiting] = await tq.status(file, date, date);
    expect(waiting).toMatchObject({ state: 'scheduled', waiting_for_input: { reason: expect.stringContaining(`no input for ${date}`) } });
    await sleep(1500);
    await day(date);
    const [done] = await tq.waitFor(file, date, date, allIn(['succeeded', 'failed']), 30_000);
    expect(done).toMatchObject({ state: 'succeeded', rows: { scored: 2, rejected: 0 }, attempts: 1 });
  });

  it('with input.ready_marker, does not score a day whose files are there until the marker is', async () => {
    const file = await job('marked', { wait: { timeout: '60s', poll: '1s' }, ready_marker: '_SUCCESS' });
    const date = '2026-04-01';
    const enq = await runCli(['run', file, '--date', date, '--queue'], { env: tq.env });
    expect(enq.code, enq.stderr).toBe(0);
    await day(date);
    await sleep(2500);
    // The data is there, its marker is not: a day still being written is not scored.
    const [notReady] = await tq.status(file, date, date);
    expect(notReady).toMatchObject({ state: 'scheduled', waiting_for_input: { reason: expect.stringContaining('_SUCCESS is not there (input.ready_marker)') } });
    await ws.write(`in/dt=${date}/_SUCCESS`, '');
    const [done] = await tq.waitFor(file, date, date, allIn(['succeeded', 'failed']), 30_000);
    expect(done).toMatchObject({ state: 'succeeded', rows: { scored: 2, rejected: 0 }, attempts: 1 });
  });

  it('gives up after the timeout with INPUT_NOT_FOUND, having held no worker slot meanwhile: another date is scored while five wait', async () => {
    const waiter = await job('never', { wait: { timeout: '8s', poll: '1s' } });
    const dates = ['2026-05-01', '2026-05-02', '2026-05-03', '2026-05-04', '2026-05-05'];
    expect((await runCli(['backfill', waiter, '--from', dates[0]!, '--to', dates.at(-1)!], { env: tq.env })).code).toBe(0);
    // The worker takes four runs at a time: five waiting in slots would hold them all until they gave up.
    const other = await job('other');
    await day('2026-05-09');
    const res = await runCli(['run', other, '--date', '2026-05-09', '--queue', '--wait'], { env: tq.env });
    expect(res.code, res.stderr).toBe(0);
    const failed = await tq.waitFor(waiter, dates[0]!, dates.at(-1)!, allIn(['failed', 'succeeded']), 40_000);
    const [scored] = await tq.status(other, '2026-05-09', '2026-05-09');
    for (const r of failed) {
      expect(r.state).toBe('failed');
      expect(r.error).toMatch(/^INPUT_NOT_FOUND: no input for 2026-05-0\d: .* after waiting 8 seconds \(since /);
      expect(r.attempts).toBe(1);
      // Scored while they waited, not after they gave up.
      expect(Date.parse(scored!.finished_at!)).toBeLessThan(Date.parse(r.finished_at!));
    }
    // status: a header naming the Redis and the output, totals, and exit 1 for failed dates.
    const status = await runCli(['status', waiter, '--from', dates[0]!, '--to', dates.at(-1)!], { env: tq.env });
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(new RegExp(`^redis   redis://127\\.0\\.0\\.1:6379  \\(queue prefix ${tq.config.prefix}\\)\\n\\nnever  output out/never/dt=\\{date\\}/`));
    expect(status.stdout).toContain('totals  5 failed (5 dates)');
    const folder = await runCli(['status', '--jobs-dir', ws.dir, '--from', '2026-05-09', '--to', '2026-05-09'], { env: tq.env });
    expect(folder.code, folder.stderr).toBe(0);
    expect(folder.stdout).toMatch(/\nother {2}output out\/other\/dt=\{date\}\/.*\n2026-05-09 {2}succeeded/);
    expect(folder.stdout).toContain('\nnever  output');
    // --to defaults to yesterday, the last logical date.
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const byDefault = await runCli(['status', waiter], { env: tq.env });
    expect(byDefault.stdout).toMatch(new RegExp(`\\n${yesterday}  missing`));
    expect(byDefault.stdout).toContain('totals  7 missing (7 dates)');
  }, 90_000);
});

describe('re-runs', () => {
  it('runs a failed date again on the next run --queue, a succeeded one only with --force, and refuses --force while it is in flight', async () => {
    const file = await job('rerun');
    const date = '2026-06-01';
    const first = await runCli(['run', file, '--date', date, '--queue', '--wait'], { env: tq.env });
    expect(first.code).toBe(1);
    expect(first.stdout).toContain('INPUT_NOT_FOUND');
    await day(date);
    // Scored in process meanwhile: status says what the output says, not the queue's old failure.
    expect((await runCli(['run', file, '--date', date])).code).toBe(0);
    const [fixed] = await tq.status(file, date, date);
    expect(fixed).toMatchObject({ state: 'succeeded', rows: { scored: 2 } });
    const scored = await runCli(['run', file, '--date', date, '--queue'], { env: tq.env });
    expect(scored.stderr).toContain(`already succeeded (--force runs it again): rerun@${date}`);
    // A failed run whose date was not scored since is run again.
    const other = '2026-06-03';
    expect((await runCli(['run', file, '--date', other, '--queue', '--wait'], { env: tq.env })).code).toBe(1);
    await day(other);
    const second = await runCli(['run', file, '--date', other, '--queue', '--wait'], { env: tq.env });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`enqueued again (it had failed): rerun@${other}`);
    const attempt = (await ws.manifest(`out/rerun/dt=${date}`)).attempt;
    const again = await runCli(['run', file, '--date', date, '--queue', '--wait'], { env: tq.env });
    expect(again.stderr).toContain('already succeeded (--force runs it again)');
    expect((await ws.manifest(`out/rerun/dt=${date}`)).attempt).toBe(attempt);
    const forced = await runCli(['run', file, '--date', date, '--queue', '--force', '--wait'], { env: tq.env });
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain('enqueued again (it had succeeded)');
    expect((await ws.manifest(`out/rerun/dt=${date}`)).attempt).not.toBe(attempt);

    // A run record trimmed from Redis is no invitation: the output's _SUCCESS still says succeeded.
    await (await tq.queues.runs.getJob(`rerun@${date}`))!.remove();
    const trimmed = await runCli(['run', file, '--date', date, '--queue'], { env: tq.env });
    expect(trimmed.stderr).toContain('already succeeded (--force runs it again)');
    expect(await tq.queues.runs.getJobState(`rerun@${date}`)).toBe('unknown');

    // In flight: a run waiting for its input.
    const waiting = await job('inflight', { wait: { timeout: '30s', poll: '1s' } });
    expect((await runCli(['run', waiting, '--date', '2026-06-02', '--queue'], { env: tq.env })).code).toBe(0);
    await sleep(500);
    const refused = await runCli(['run', waiting, '--date', '2026-06-02', '--queue', '--force'], { env: tq.env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('nightscore: RUN_IN_PROGRESS: inflight@2026-06-02 is in flight on the queue');

    // Ctrl-C while following a run stops following, not the run.
    const follower = startCli(['run', waiting, '--date', '2026-06-02', '--queue', '--wait'], tq.env);
    // Following once it has said what it found (a slow start under load is not a Ctrl-C before it follows).
    for (let waited = 0; !follower.output().includes('already queued') && waited < 20_000; waited += 100) await sleep(100);
    follower.child.kill('SIGINT');
    const followed = await follower.done;
    expect(followed.code).toBe(130);
    expect(followed.stderr).toContain('nightscore: stopped following inflight@2026-06-02; the run goes on on the workers');
    expect((await tq.status(waiting, '2026-06-02', '2026-06-02'))[0]!.state).toBe('scheduled');
  }, 60_000);

  it('a later scheduler fire for a date whose run failed runs it again; one for a date that succeeded does not', async () => {
    const file = await ws.job('fired.yaml', { name: 'fired', schedule: { cron: '0 2 * * *', tz: 'UTC' }, input: { uri: 'in/dt={date}/', format: 'csv' }, model: { path: 'm.onnx' }, output: { uri: 'out/fired/dt={date}/', format: 'csv' } });
    const date = '2026-08-09';
    const fire = Date.parse('2026-08-10T02:00:00Z');
    await tq.queues.runs.add('fire', { jobFile: file }, { timestamp: fire });
    await tq.waitFor(file, date, date, allIn(['failed']));
    await day(date);
    await tq.queues.runs.add('fire', { jobFile: file }, { timestamp: fire + 60_000 });
    const [done] = await tq.waitFor(file, date, date, allIn(['succeeded']));
    const attempt = (await ws.manifest(`out/fired/dt=${date}`)).attempt;
    const third = await tq.queues.runs.add('fire', { jobFile: file }, { timestamp: fire + 120_000 });
    while (!['completed', 'failed'].includes(await third.getState())) await sleep(100);
    expect((await ws.manifest(`out/fired/dt=${date}`)).attempt).toBe(attempt);
    expect(done!.attempts).toBe(1);
  });

  it('a marker is looked for in the input folder, with or without its trailing slash, never above it', async () => {
    const date = '2026-07-05';
    await day(date);
    await ws.write('in/_SUCCESS', '');
    const file = await ws.job('noslash.yaml', { name: 'noslash', input: { uri: 'in/dt={date}', format: 'csv', ready_marker: '_SUCCESS' }, model: { path: 'm.onnx' }, output: { uri: 'out/noslash/dt={date}/', format: 'csv' } });
    const res = await runCli(['run', file, '--date', date]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`in/dt=${date}/_SUCCESS is not there (input.ready_marker)`);
    await ws.write(`in/dt=${date}/_SUCCESS`, '');
    expect((await runCli(['run', file, '--date', date])).code).toBe(0);
  });

  it('in process, run --wait-for-input waits for the input with a countdown, then scores', async () => {
    const file = await job('local-wait', { wait: { timeout: '30s', poll: '1s' } });
    const date = '2026-07-01';
    setTimeout(() => void day(date), 2500);
    const res = await runCli(['run', file, '--date', date, '--wait-for-input'], { env: { NIGHTSCORE_LOG_LEVEL: 'info' } });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('"msg":"input not there yet: waiting"');
    expect((await ws.manifest(`out/local-wait/dt=${date}`)).rows).toMatchObject({ read: 2, scored: 2 });
    const noWait = await job('local-nowait');
    const bad = await runCli(['run', noWait, '--date', date, '--wait-for-input'], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('sets no input.wait');
  });
});
