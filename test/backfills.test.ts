import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * Backfills as objects: an id, `backfills`, `backfill show`, `backfill cancel` and `--wait`;
 * enqueuing with no worker warns. Cancel removes the dates still queued, lets running ones
 * finish, and leaves no `_SUCCESS` for a cancelled date.
 */

let ws: Workspace;
let tq: TestQueue;
const DATES = ['2026-09-01', '2026-09-02', '2026-09-03', '2026-09-04'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
beforeAll(async () => {
  ws = await Workspace.create();
  await ws.model('m.onnx', { weights: [1], bias: 0, featureNames: ['x'] });
  for (const d of DATES) await ws.write(`in/dt=${d}/a.csv`, 'id,x\n1,1\n2,2\n');
  tq = await createTestQueue();
});
afterAll(async () => {
  await tq?.close();
  await ws?.remove();
});

const job = (name: string) => ws.job(`${name}.yaml`, { name, input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'] }, model: { path: 'm.onnx' }, output: { uri: `out/${name}/dt={date}/`, format: 'csv' } });
const idOf = (stdout: string) => /^backfill (bf-\S+):/m.exec(stdout)![1]!;

describe('backfills', () => {
  it('warns when no worker is there; cancel removes every queued date, and a worker started later scores none of them', async () => {
    const file = await job('cancelled');
    const res = await runCli(['backfill', file, '--from', DATES[0]!, '--to', DATES.at(-1)!], { env: tq.env });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^backfill bf-\d{8}T\d{6}-[0-9a-f]{4}: 4 of 4 dates enqueued$/m);
    expect(res.stderr).toContain('nightscore: warning: no worker is connected to this queue');
    const id = idOf(res.stdout);
    const single = await runCli(['run', file, '--date', '2026-09-20', '--queue'], { env: tq.env });
    expect(single.stderr).toContain('nightscore: warning: no worker is connected to this queue');
    await (await tq.queues.runs.getJob('cancelled@2026-09-20'))!.remove();
    const cancel = await runCli(['backfill', 'cancel', id], { env: tq.env });
    expect(cancel.stdout).toBe(`backfill ${id} cancelled: 4 queued date(s) removed (${DATES.join(', ')}); 0 running date(s) finish\n`);
    const worker = await tq.startWorker();
    await sleep(2000);
    expect(worker.log()).not.toContain('run planned');
    const show = await runCli(['backfill', 'show', id, '--json'], { env: tq.env });
    expect(JSON.parse(show.stdout)).toMatchObject({ counts: { cancelled: 4 }, done: true, record: { cancelled_at: expect.any(String) } });
    for (const d of DATES) await expect(ws.list(`out/cancelled/dt=${d}`)).rejects.toThrow(/ENOENT/);
  });

  it('--max-parallel-runs 1 then cancel: the running date finishes whole, the rest are never run', async () => {
    const file = await job('paced');
    const res = await runCli(['backfill', file, '--from', DATES[0]!, '--to', DATES.at(-1)!, '--max-parallel-runs', '1'], { env: tq.env });
    const id = idOf(res.stdout);
    await tq.waitFor(file, DATES[0]!, DATES[0]!, allIn(['running', 'succeeded']), 30_000);
    const cancel = await runCli(['backfill', 'cancel', id], { env: tq.env });
    expect(cancel.code, cancel.stderr).toBe(0);
    await sleep(3000);
    const rows = await tq.status(file, DATES[0]!, DATES.at(-1)!);
    const succeeded = rows.filter((r) => r.state === 'succeeded').map((r) => r.date);
    // The first date (and at most one more that the feeder had already handed over) ran whole.
    expect(succeeded[0]).toBe(DATES[0]);
    expect(succeeded.length).toBeLessThanOrEqual(2);
    for (const r of rows.filter((x) => x.state !== 'succeeded')) {
      expect(r.state).toBe('missing');
      await expect(ws.list(`out/paced/dt=${r.date}`)).rejects.toThrow(/ENOENT/);
    }
  }, 60_000);

  it('--wait follows it to the end and exits 1 when a date failed; backfills lists it', async () => {
    const file = await job('waited');
    await ws.write('in/dt=2026-09-05/a.csv', 'id,y\n1,1\n');
    const res = await runCli(['backfill', file, '--from', DATES[0]!, '--to', '2026-09-05', '--wait'], { env: tq.env });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/backfill bf-\S+ \(waited\): 4 succeeded · 1 failed of 5 dates; 8 rows scored/);
    // Which date failed, and why, one line each: the summary alone does not say.
    const why = res.stderr.split('\n').filter((l) => l.startsWith('  '));
    expect(why).toHaveLength(1);
    expect(why[0]).toMatch(/^ {2}2026-09-05 {2}failed {2}INPUT_MISSING_COLUMN: file:\/\/.*\/in\/dt=2026-09-05\/a\.csv:1: no column "x" \(feature\)/);
    const list = await runCli(['backfills'], { env: tq.env });
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+JOB\s+DATES\s+CREATED\s+STATES$/);
    expect(list.stdout).toMatch(new RegExp(`${idOf(res.stdout)}\\s+waited\\s+2026-09-01\\.\\.2026-09-05 \\(5\\)\\s+\\S+\\s+4 succeeded · 1 failed`));
    // Again with --reprocess all: the old outcomes are not this backfill's; --wait waits for the new runs.
    const before = await Promise.all(DATES.map((d) => ws.manifest(`out/waited/dt=${d}`)));
    const again = await runCli(['backfill', file, '--from', DATES[0]!, '--to', '2026-09-05', '--reprocess', 'all', '--max-parallel-runs', '1', '--wait'], { env: tq.env });
    expect(again.code).toBe(1);
    const after = await Promise.all(DATES.map((d) => ws.manifest(`out/waited/dt=${d}`)));
    after.forEach((m, i) => expect(m.attempt).not.toBe(before[i]!.attempt));
    const missing = await runCli(['backfill', 'show', 'bf-nope'], { env: tq.env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('there is no backfill bf-nope on this queue');
  }, 60_000);

  it('cancel lists each date as it is: ended runs as finished, queued ones as removed, none of them as running', async () => {
    const [ok, bad, late] = ['2026-09-11', '2026-09-12', '2026-09-13'];
    await ws.write(`in/dt=${ok}/a.csv`, 'id,x\n1,1\n');
    await ws.write(`in/dt=${bad}/a.csv`, 'id,y\n1,1\n');
    // The last date's input is not there: its run waits for it on the queue, looking once at its
    // start and again after 30 s, so the cancel below meets it queued (delayed), not taken by a
    // worker for a look (which cancel rightly lists as running).
    const file = await ws.job('mixed.yaml', { name: 'mixed', input: { uri: 'in/dt={date}/', format: 'csv', key: ['id'], wait: { timeout: '60s', poll: '30s' } }, model: { path: 'm.onnx' }, output: { uri: 'out/mixed/dt={date}/', format: 'csv' } });
    if ((await tq.queues.runs.getWorkersCount()) === 0) await tq.startWorker();
    const res = await runCli(['backfill', file, '--from', ok, '--to', late], { env: tq.env });
    const id = idOf(res.stdout);
    await tq.waitFor(file, ok, late, (r) => r.map((d) => d.waiting_for_input ? 'waiting' : d.state).join() === 'succeeded,failed,waiting', 30_000);
    const cancel = await runCli(['backfill', 'cancel', id], { env: tq.env });
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toBe(`backfill ${id} cancelled: 1 queued date(s) removed (${late}); 0 running date(s) finish; 2 had already finished (${ok} succeeded, ${bad} failed)\n`);
    const show = await runCli(['backfill', 'show', id, '--json'], { env: tq.env });
    expect(JSON.parse(show.stdout)).toMatchObject({ counts: { succeeded: 1, failed: 1, cancelled: 1 }, done: true });
  }, 60_000);

  it('--days N is the N dates ending at --to; with --from it is a usage error', async () => {
    const file = await job('days');
    const dry = await runCli(['backfill', file, '--days', '3', '--to', DATES[2]!, '--dry-run'], { env: tq.env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toBe(`${DATES[0]}  enqueue  missing\n${DATES[1]}  enqueue  missing\n${DATES[2]}  enqueue  missing\ndry run: 3 of 3 dates would be enqueued\n`);
    const both = await runCli(['backfill', file, '--days', '3', '--from', DATES[0]!], { env: tq.env });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('nightscore: BAD_OPTION: backfill takes --from or --days, not both');
  });
});
