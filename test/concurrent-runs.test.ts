import type { ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { csvOf } from './support/data.js';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { REPO, runCli, startCli as startCliProcess, Workspace, type StartedCli } from './support/workspace.js';

/**
 * Two attempts at the same date at once: one wins whole, the other fails with
 * RUN_IN_PROGRESS and leaves the winner's output alone. The attempts differ in their
 * output column names (`a_…`, `b_…`), as they would after a model or job change between
 * them, so a part of the loser left in the winner's output shows in its header.
 */

let ws: Workspace;
let tq: TestQueue | undefined;
const children: ChildProcess[] = [];
beforeEach(async () => {
  ws = await Workspace.create();
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await tq?.close();
  tq = undefined;
  await ws.remove();
});

const DATE = '2026-05-01';
const OUT = `out/dt=${DATE}`;

/** A job named `name` whose prediction columns start with `name`; every job shares one output folder. */
function raceJob(name: string): Promise<string> {
  return ws.job(`${name}.yaml`, {
    name,
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: 'out/dt={date}/', format: 'csv', columns: { label: `${name}_label`, probabilities: [`${name}_stay`, `${name}_churn`] } },
    // Many small chunks: a run takes a few seconds and writes its parts one by one.
    chunk: { rows: 1000, bytes: 200_000 },
  });
}

/** `files` × 50,000 rows for the date; returns the row count. */
async function day(files: number): Promise<number> {
  for (let f = 0; f < files; f++) await ws.write(`in/dt=${DATE}/p${f}.csv`, csvOf(50_000, f));
  return files * 50_000;
}

/** Starts the CLI without waiting for it, so a test can pause or kill it. */
function startCli(args: string[], env: Record<string, string> = {}): StartedCli {
  const started = startCliProcess(args, env);
  children.push(started.child);
  return started;
}

/** Resolves once the output folder holds a `running` manifest of a run of job `name`: that run has the date. */
async function untilRunning(name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(ws.path(OUT, '_manifest.json'), 'utf8').catch(() => '');
    try {
      const m = JSON.parse(text) as { job: string; status: string };
      if (m.job === name && m.status === 'running') return;
    } catch {
      // Not there yet.
    }
    if (Date.now() > deadline) throw new Error(`no running manifest of ${name} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The output folder is wholly one attempt of job `name`: its parts only, every input row once, no lock left. */
async function expectWhollyFrom(name: string, rows: number): Promise<void> {
  const m = await ws.manifest(OUT);
  expect(m).toMatchObject({ job: name, status: 'succeeded', rows: { read: rows, scored: rows, rejected: 0 } });
  const parts = m.parts.map((p) => p.uri.split('/').pop()!);
  expect(await ws.list(OUT)).toEqual(['_SUCCESS', '_manifest.json', ...parts]);
  const keys: string[] = [];
  for (const [i, part] of parts.entries()) {
    const csv = await ws.csv(`${OUT}/${part}`);
    expect(csv[0], part).toEqual(['customer_id', `${name}_label`, `${name}_stay`, `${name}_churn`]);
    expect(csv.length - 1, part).toBe(m.parts[i]!.rows);
    keys.push(...csv.slice(1).map((r) => r[0]!));
  }
  expect(keys.length).toBe(rows);
  expect(new Set(keys).size).toBe(rows);
}

const folderUri = () => `file://${ws.path(OUT)}/`;

describe('two `nightscore run`s of the same date at once', () => {
  it('started together: exactly one succeeds, and the output is wholly that attempt', async () => {
    const rows = await day(6);
    const [a, b] = await Promise.all([raceJob('a'), raceJob('b')]);
    const results = await Promise.all([runCli(['run', a, '--date', DATE, '--threads', '1']), runCli(['run', b, '--date', DATE, '--threads', '1'])]);
    expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
    const winner = results[0]!.code === 0 ? 'a' : 'b';
    const loser = results[winner === 'a' ? 1 : 0]!;
    expect(loser.stderr).toContain(`nightscore: RUN_IN_PROGRESS: ${folderUri()} is being written by an in-process run (nightscore run)`);
    expect(loser.stderr).toContain('hint: Wait for that run to finish');
    await expectWhollyFrom(winner, rows);
  });

  it('one paused mid-run keeps the date: the other fails fast without touching it, and the first completes', async () => {
    const rows = await day(2);
    const [a, b] = await Promise.all([raceJob('a'), raceJob('b')]);
    const first = startCli(['run', a, '--date', DATE, '--threads', '1']);
    await untilRunning('a');
    // Frozen while it holds the date (as a long GC pause or a stopped container would be).
    first.child.kill('SIGSTOP');
    const before = await ws.list(OUT);
    const second = await runCli(['run', b, '--date', DATE]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`RUN_IN_PROGRESS: .* is being written by an in-process run \\(nightscore run\\), attempt [0-9a-f]{8}, on host .+ pid ${first.child.pid}, started `));
    expect(await ws.list(OUT)).toEqual(before);
    first.child.kill('SIGCONT');
    const done = await first.done;
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    await expectWhollyFrom('a', rows);
  });

  it('a SIGKILLed run on this host is taken over at once; one on another host blocks the date until its lease lapses', async () => {
    const rows = await day(2);
    const a = await raceJob('a');
    const lease = { NIGHTSCORE_OUTPUT_LEASE_MS: '6000' };
    const dead = startCli(['run', a, '--date', DATE, '--threads', '1'], lease);
    await untilRunning('a');
    dead.child.kill('SIGKILL');
    await dead.done;
    // Its pid is gone from this host's process table: no need to wait for the lease.
    const next = await runCli(['run', a, '--date', DATE], { env: lease });
    expect(next.stderr).toBe('');
    expect(next.code).toBe(0);
    await expectWhollyFrom('a', rows);

    const remote = startCli(['run', a, '--date', DATE, '--threads', '1'], lease);
    await untilRunning('a');
    remote.child.kill('SIGKILL');
    await remote.done;
    // The same lock as a holder on another machine writes it: its pid says nothing here.
    const [lockName] = (await readdir(ws.path(OUT))).filter((f) => f.startsWith('_LOCK.'));
    const lockFile = ws.path(OUT, lockName!);
    await writeFile(lockFile, JSON.stringify({ ...JSON.parse(await readFile(lockFile, 'utf8')), host: 'another-host' }));
    const killedAt = Date.now();

    const early = await runCli(['run', a, '--date', DATE], { env: lease });
    expect(early.code).toBe(1);
    expect(early.stderr).toContain(`on host another-host pid ${remote.child.pid}`);
    expect(early.stderr).toMatch(/If it died, its lock lapses at \S+ \(lease 6000 ms\)/);

    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 6_500 - Date.now())));
    const later = await runCli(['run', a, '--date', DATE], { env: lease });
    expect(later.stderr).toBe('');
    expect(later.code).toBe(0);
    // The dead run's lock and temporary files are gone with its parts.
    await expectWhollyFrom('a', rows);
  });
});

describe('an in-process run and a queued run of the same date', () => {
  it('a queued run in flight keeps the date from an in-process run', async () => {
    tq = await createTestQueue();
    const rows = await day(2);
    const [q, l] = await Promise.all([raceJob('q'), raceJob('l')]);
    const worker = await tq.startWorker({}, ['--concurrency', '1']);
    expect((await runCli(['run', q, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
    await untilRunning('q');
    // Hold the queued run in flight while the in-process run tries the date.
    worker.child.kill('SIGSTOP');
    const local = await runCli(['run', l, '--date', DATE], { env: tq.env });
    worker.child.kill('SIGCONT');
    expect(local.code).toBe(1);
    expect(local.stderr).toContain(`RUN_IN_PROGRESS: ${folderUri()} is being written by queued run q@${DATE}, attempt `);
    const [status] = await tq.waitFor(q, DATE, DATE, (r) => r[0]!.state === 'succeeded' || r[0]!.state === 'failed');
    expect(status!.error).toBeUndefined();
    expect(status!.state).toBe('succeeded');
    await expectWhollyFrom('q', rows);
  });

  it('an in-process run in flight makes a queued run of the date fail at once, leaving the output alone', async () => {
    tq = await createTestQueue();
    const rows = await day(2);
    const [q, l] = await Promise.all([raceJob('q'), raceJob('l')]);
    await tq.startWorker({}, ['--concurrency', '1']);
    const local = startCli(['run', l, '--date', DATE, '--threads', '1'], tq.env);
    await untilRunning('l');
    local.child.kill('SIGSTOP');
    const before = await ws.list(OUT);
    const queued = await runCli(['run', q, '--date', DATE, '--queue', '--wait'], { env: tq.env });
    expect(await ws.list(OUT)).toEqual(before);
    local.child.kill('SIGCONT');
    expect(queued.code).toBe(1);
    expect(queued.stdout).toMatch(new RegExp(`${DATE} {2}failed .*attempts 1 {2}error: RUN_IN_PROGRESS: .* is being written by an in-process run \\(nightscore run\\)`));
    const done = await local.done;
    expect(done.code).toBe(0);
    await expectWhollyFrom('l', rows);
  });

  it('queued runs of one date are one run: concurrent enqueues and a backfill add a single job', async () => {
    tq = await createTestQueue();
    await ws.write(`in/dt=${DATE}/a.csv`, csvOf(10, 1));
    const q = await raceJob('q');
    const results = await Promise.all([
      runCli(['run', q, '--date', DATE, '--queue'], { env: tq.env }),
      runCli(['run', q, '--date', DATE, '--queue'], { env: tq.env }),
      runCli(['backfill', q, '--from', DATE, '--to', DATE], { env: tq.env }),
    ]);
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    expect(await tq.queues.runs.getJobCountByTypes('waiting', 'active', 'delayed', 'completed', 'failed', 'waiting-children', 'prioritized')).toBe(1);
    expect((await tq.queues.runs.getJob(`q@${DATE}`))?.data).toMatchObject({ date: DATE });
  });
});
