import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { csvOf } from './support/data.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { startS3, type S3Server } from './support/s3.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

let ws: Workspace;
let tq: TestQueue;
beforeEach(async () => {
  ws = await Workspace.create();
});
afterEach(async () => {
  await tq?.close();
  await ws?.remove();
});

const DATES = ['2026-09-01', '2026-09-02', '2026-09-03'];

function churnJob(name: string, input: string, output: string, extra: Record<string, unknown> = {}) {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: input, format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: output, format: 'csv' },
    chunk: { rows: 100, bytes: 4000 },
    ...extra,
  });
}

describe('runs on the queue', () => {
  let s3: S3Server | undefined;
  afterEach(async () => {
    await s3?.close();
    s3 = undefined;
  });

  it('a backfill of 3 dates run by 2 worker processes equals the in-process runs, row for row', async () => {
    const server = (s3 = await startS3(['features', 'scores']));
    tq = await createTestQueue(server.env);
    const counts: Record<string, number> = {};
    for (const [i, date] of DATES.entries()) {
      counts[date] = 0;
      for (const part of ['a', 'b']) {
        const n = 60 + i * 7 + (part === 'b' ? 13 : 0);
        counts[date] += n;
        await server.put('features', `churn/dt=${date}/${part}.csv`, csvOf(n, i * 10 + part.charCodeAt(0)));
      }
    }
    const queued = await churnJob('queued', 's3://features/churn/dt={date}/', 's3://scores/queued/dt={date}/');
    const local = await churnJob('local', 's3://features/churn/dt={date}/', 's3://scores/local/dt={date}/');
    await Promise.all([tq.startWorker(), tq.startWorker()]);

    const backfill = await runCli(['backfill', queued, '--from', DATES[0]!, '--to', DATES[2]!], { env: tq.env });
    expect(backfill.stderr).toBe('');
    expect(backfill.stdout).toContain('3 of 3 dates enqueued');
    const rows = await tq.waitFor(queued, DATES[0]!, DATES[2]!, allIn(['succeeded', 'failed']));
    if (rows.some((r) => r.state !== 'succeeded')) console.error(tq.workerLogs());
    expect(rows.map((r) => [r.state, r.error])).toEqual([['succeeded', undefined], ['succeeded', undefined], ['succeeded', undefined]]);
    // The queue's own times: enqueued by the backfill just now, finished after that.
    for (const r of rows) {
      expect(Date.parse(r.enqueued_at!)).toBeGreaterThan(Date.now() - 120_000);
      expect(Date.parse(r.finished_at!)).toBeGreaterThanOrEqual(Date.parse(r.enqueued_at!));
    }

    for (const date of DATES) {
      expect((await runCli(['run', local, '--date', date], { env: tq.env })).code).toBe(0);
      const q = JSON.parse(await server.get('scores', `queued/dt=${date}/_manifest.json`));
      const l = JSON.parse(await server.get('scores', `local/dt=${date}/_manifest.json`));
      expect(q.status).toBe('succeeded');
      expect(q.rows).toEqual({ read: counts[date], scored: counts[date], rejected: 0 });
      expect(q.chunks).toBeGreaterThan(2);
      expect(q.chunks).toBe(l.chunks);
      const names = (await server.keys('scores', `queued/dt=${date}/`)).map((k) => k.split('/').pop());
      expect(names).toEqual(['_SUCCESS', '_manifest.json', ...q.parts.map((p: { uri: string }) => p.uri.split('/').pop())]);
      for (const part of q.parts as Array<{ uri: string }>) {
        const name = part.uri.split('/').pop();
        expect(await server.get('scores', `queued/dt=${date}/${name}`)).toBe(await server.get('scores', `local/dt=${date}/${name}`));
      }
    }
  });

  it('triggering the same backfill twice enqueues nothing new, and --reprocess failed re-runs only the failed date', async () => {
    tq = await createTestQueue();
    for (const date of DATES) await ws.write(`in/dt=${date}/a.csv`, csvOf(30, 1));
    // The second date's export lost a feature column: its run fails.
    await ws.write(`in/dt=${DATES[1]}/a.csv`, csvOf(30, 1).replace('tenure_months', 'tenure'));
    const job = await churnJob('daily', 'in/dt={date}/', 'out/dt={date}/');
    const first = await runCli(['backfill', job, '--from', DATES[0]!, '--to', DATES[2]!], { env: tq.env });
    const second = await runCli(['backfill', job, '--from', DATES[0]!, '--to', DATES[2]!], { env: tq.env });
    expect(first.stdout).toContain('3 of 3 dates enqueued');
    expect(second.stdout).toContain('0 of 3 dates enqueued');
    expect(await tq.queues.runs.getJobCountByTypes('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed')).toBe(3);

    await tq.startWorker();
    let rows = await tq.waitFor(job, DATES[0]!, DATES[2]!, allIn(['succeeded', 'failed']));
    expect(rows.map((r) => r.state)).toEqual(['succeeded', 'failed', 'succeeded']);
    expect(rows[1]!.error).toContain('INPUT_MISSING_COLUMN');
    const attemptOf = async (date: string) => (await ws.manifest(`out/dt=${date}`)).attempt;
    const before = await Promise.all(DATES.map(attemptOf));

    // A missing backfill changes nothing: every date has run.
    expect((await runCli(['backfill', job, '--from', DATES[0]!, '--to', DATES[2]!], { env: tq.env })).stdout).toContain('0 of 3 dates enqueued');
    await ws.write(`in/dt=${DATES[1]}/a.csv`, csvOf(30, 1));
    const dry = await runCli(['backfill', job, '--from', DATES[0]!, '--to', DATES[2]!, '--reprocess', 'failed', '--dry-run'], { env: tq.env });
    expect(dry.stdout).toContain(`${DATES[1]}  enqueue  failed before`);
    expect(dry.stdout).toContain('dry run: 1 of 3 dates would be enqueued');
    const redo = await runCli(['backfill', job, '--from', DATES[0]!, '--to', DATES[2]!, '--reprocess', 'failed'], { env: tq.env });
    expect(redo.stdout).toContain('1 of 3 dates enqueued');
    rows = await tq.waitFor(job, DATES[0]!, DATES[2]!, allIn(['succeeded']));
    const after = await Promise.all(DATES.map(attemptOf));
    expect(after[0]).toBe(before[0]);
    expect(after[1]).not.toBe(before[1]);
    expect(after[2]).toBe(before[2]);
  });

  it('a model error fails the run at once, without retries, with the message in status', async () => {
    tq = await createTestQueue();
    await ws.write(`in/dt=${DATES[0]}/a.csv`, csvOf(10, 1));
    const job = await churnJob('wrongmodel', 'in/dt={date}/', 'out/dt={date}/', {
      model: { path: `${REPO}/models/churn/model.onnx`, features: ['tenure_months', 'monthly_charges'] },
    });
    await tq.startWorker();
    const res = await runCli(['run', job, '--date', DATES[0]!, '--queue', '--wait'], { env: tq.env });
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/2026-09-01 {2}failed .*attempts 1 {2}error: MODEL_SIGNATURE: .*model\.onnx: input "input" has shape \[N, 20\], but the job has 2 features/);
    const status = await runCli(['status', job, '--from', DATES[0]!, '--to', DATES[0]!, '--json'], { env: tq.env });
    expect(JSON.parse(status.stdout)[0]).toMatchObject({ state: 'failed', attempts: 1 });
  });

  it('a scheduler fire scores the logical date before the fire date (lag 1), once', async () => {
    tq = await createTestQueue();
    await ws.write('in/dt=2026-11-21/a.csv', csvOf(10, 1));
    const job = await churnJob('nightly', 'in/dt={date}/', 'out/dt={date}/', { schedule: { cron: '0 2 * * *', tz: 'UTC' } });
    await tq.startWorker();
    // What the scheduler adds at 02:00 on the 22nd, twice (as two racing schedulers would).
    const fire = Date.parse('2026-11-22T02:00:00Z');
    await tq.queues.runs.add('fire', { jobFile: job }, { timestamp: fire });
    await tq.queues.runs.add('fire', { jobFile: job }, { timestamp: fire });
    const rows = await tq.waitFor(job, '2026-11-21', '2026-11-22', (r) => r[0]!.state === 'succeeded');
    expect(rows[1]!.state).toBe('missing');
    expect(await tq.queues.runs.getJobCountByTypes('completed', 'failed', 'active', 'waiting')).toBe(3);
  });

  it('--max-parallel-runs keeps at most that many runs of the backfill in flight, oldest first', async () => {
    tq = await createTestQueue();
    const dates = ['2026-08-01', '2026-08-02', '2026-08-03', '2026-08-04'];
    for (const date of dates) await ws.write(`in/dt=${date}/a.csv`, csvOf(300, 2));
    const job = await churnJob('paced', 'in/dt={date}/', 'out/dt={date}/');
    await tq.startWorker();
    const res = await runCli(['backfill', job, '--from', dates[0]!, '--to', dates[3]!, '--max-parallel-runs', '1'], { env: tq.env });
    expect(res.stdout).toContain('4 of 4 dates enqueued (at most 1 run at a time)');
    let maxInFlight = 0;
    let inFlightWithoutTime = 0;
    await tq.waitFor(job, dates[0]!, dates[3]!, (rows) => {
      const inFlight = rows.filter((r) => r.state === 'running' || r.state === 'scheduled');
      maxInFlight = Math.max(maxInFlight, inFlight.length);
      inFlightWithoutTime += inFlight.filter((r) => !r.enqueued_at).length;
      return rows.every((r) => r.state === 'succeeded');
    });
    // Polling can miss a run that is quick, so the runs' own records decide: each started
    // after the one before it finished, oldest date first.
    expect(maxInFlight).toBeLessThanOrEqual(1);
    const runs = await Promise.all(dates.map(async (d) => ws.manifest(`out/dt=${d}`)));
    for (let i = 1; i < runs.length; i++) expect(Date.parse(runs[i]!.started_at)).toBeGreaterThanOrEqual(Date.parse(runs[i - 1]!.finished_at!));
    // A run in flight, when a poll saw one, already said when it was enqueued.
    expect(inFlightWithoutTime).toBe(0);
  });

  it('a Parquet day through the queue: row groups become chunks, and the parts equal the in-process run', async () => {
    tq = await createTestQueue();
    const { copyFile, mkdir } = await import('node:fs/promises');
    await mkdir(ws.path('pq/dt=2026-07-07'), { recursive: true });
    await copyFile(`${REPO}/test/fixtures/parquet-testing/alltypes_tiny_pages.parquet`, ws.path('pq/dt=2026-07-07/t.parquet'));
    await ws.model('m.onnx', { weights: [0.01, 0.02, 0.03], bias: 0 });
    const job = (name: string) =>
      ws.job(`${name}.yaml`, {
        name,
        input: { uri: 'pq/dt={date}/', format: 'parquet', key: ['id'] },
        model: { path: 'm.onnx', features: ['int_col', 'bigint_col', 'double_col'] },
        output: { uri: `out/${name}/dt={date}/`, format: 'parquet' },
        chunk: { rows: 1000 },
      });
    const queued = await job('pq-queued');
    const local = await job('pq-local');
    await tq.startWorker();
    const res = await runCli(['run', queued, '--date', '2026-07-07', '--queue', '--wait'], { env: tq.env });
    expect(res.code).toBe(0);
    expect((await runCli(['run', local, '--date', '2026-07-07'], { env: tq.env })).code).toBe(0);
    const q = await ws.manifest('out/pq-queued/dt=2026-07-07');
    // One row group of 7,300 rows, chunk.rows 1000: four equal ranges of at most two batches.
    expect(q.chunks).toBe(4);
    expect(q.rows).toEqual({ read: 7300, scored: 7300, rejected: 0 });
    const { parquetReadObjects } = await import('hyparquet');
    const { readFile } = await import('node:fs/promises');
    const rowsOf = async (name: string, part: string) =>
      parquetReadObjects({ file: (await readFile(ws.path(`out/${name}/dt=2026-07-07/${part}`))).buffer as ArrayBuffer });
    for (const part of q.parts) {
      const name = part.uri.split('/').pop()!;
      const rows = await rowsOf('pq-queued', name);
      expect(rows.length).toBe(part.rows);
      expect(rows).toEqual(await rowsOf('pq-local', name));
    }
  });
});
