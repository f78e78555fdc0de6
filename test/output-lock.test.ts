import { spawn } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NightscoreError } from '../src/errors.js';
import { writeDemoDay } from '../src/demo/demo.js';
import { loadJob } from '../src/job/load.js';
import { acquireOutputLock, checkOutputLock, pidSpace, releaseOutputLock, renewOutputLock } from '../src/run/lock.js';
import { openLocation, resetStorageCache, type Location } from '../src/storage/open.js';
import { startFaultProxy } from './support/fault-proxy.js';
import { startS3 } from './support/s3.js';
import { REPO, runCli, startCli, Workspace } from './support/workspace.js';
import { readEnvironment, useEnvironment } from '../src/settings.js';

/** The output lock on real local files: create-if-absent, leases, takeover and fencing. */

let ws: Workspace;
let out: Location;
beforeEach(async () => {
  ws = await Workspace.create();
  out = openLocation(`${ws.path('out')}/`);
});
afterEach(async () => {
  await ws.remove();
});

const claim = (owner: string, attempt = owner) => ({ owner, attempt, job: 'j', date: '2026-01-01' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const lockFiles = async () => (await readdir(ws.path('out'))).filter((f) => f.startsWith('_LOCK.'));

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof NightscoreError ? err.code : String(err);
  }
}

describe('output lock', () => {
  it('of many attempts racing for a free folder, exactly one gets it', async () => {
    const codes = await Promise.all(Array.from({ length: 8 }, (_, i) => codeOf(acquireOutputLock(out, claim(`run:${i}`), 60_000))));
    expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
    expect(codes.filter((c) => c === 'RUN_IN_PROGRESS')).toHaveLength(7);
    expect(await lockFiles()).toHaveLength(1);
  });

  it('of many attempts racing for a lapsed lock, exactly one takes it over', async () => {
    const dead = await acquireOutputLock(out, claim('run:dead'), 100);
    await sleep(150);
    const codes = await Promise.all(Array.from({ length: 8 }, (_, i) => codeOf(acquireOutputLock(out, claim(`run:${i}`), 60_000))));
    expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
    expect(await lockFiles()).toHaveLength(1);
    expect(await codeOf(checkOutputLock(out, dead))).toBe('RUN_LOCK_LOST');
  });

  it('a holder that lapsed is fenced: its checks fail, its release leaves the new holder alone', async () => {
    const slow = await acquireOutputLock(out, claim('run:slow'), 100);
    expect(await codeOf(acquireOutputLock(out, claim('run:next'), 60_000))).toBe('RUN_IN_PROGRESS');
    await sleep(150);
    const next = await acquireOutputLock(out, claim('run:next'), 60_000);
    const lost = await checkOutputLock(out, slow).catch((err: NightscoreError) => err);
    expect(lost).toBeInstanceOf(NightscoreError);
    expect((lost as NightscoreError).message).toMatch(/^attempt run:slow no longer holds the lock on file:\/\/.*\/out\/: it is held by an in-process run \(nightscore run\), attempt run:next/);
    expect(await codeOf(renewOutputLock(out, slow))).toBe('RUN_LOCK_LOST');
    await releaseOutputLock(out, slow);
    expect(await codeOf(checkOutputLock(out, next))).toBe('ok');
  });

  it('a renewed lock stays live past its first lease; a released one is gone', async () => {
    const a = await acquireOutputLock(out, claim('run:a'), 300);
    for (let i = 0; i < 4; i++) {
      await sleep(100);
      await renewOutputLock(out, a);
    }
    expect(await codeOf(acquireOutputLock(out, claim('run:b'), 300))).toBe('RUN_IN_PROGRESS');
    await releaseOutputLock(out, a);
    expect(await lockFiles()).toEqual([]);
    expect(await codeOf(acquireOutputLock(out, claim('run:b'), 300))).toBe('ok');
  });

  it('a queued run retried after its worker died takes its own live lock over at once; the old try is fenced', async () => {
    const first = await acquireOutputLock(out, claim('queue:p:j@2026-01-01', 'try-1'), 60_000);
    const retry = await acquireOutputLock(out, claim('queue:p:j@2026-01-01', 'try-2'), 60_000);
    expect(await codeOf(checkOutputLock(out, first))).toBe('RUN_LOCK_LOST');
    expect(await codeOf(checkOutputLock(out, retry))).toBe('ok');
    expect(await lockFiles()).toHaveLength(1);
    expect(await codeOf(acquireOutputLock(out, claim('queue:p:k@2026-01-01', 'other'), 60_000))).toBe('RUN_IN_PROGRESS');
  });

  it('a damaged lock object counts as live for the default lease: it never hands the date over early', async () => {
    await ws.write('out/_LOCK.0000000000000003', '{"owner": "run:x", "attem');
    const err = await acquireOutputLock(out, claim('run:y'), 60_000).catch((e: NightscoreError) => e);
    expect((err as NightscoreError).code).toBe('RUN_IN_PROGRESS');
    expect((err as NightscoreError).message).toContain('is being written by an unreadable lock object');
    expect((err as NightscoreError).hint).toContain('(lease 120000 ms)');
  });
});
describe('locks of processes that are gone', () => {
  /** The pid of a process that has exited. */
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => child.once('exit', r));
    return child.pid!;
  }
  const record = (owner: string, pid: number) =>
    JSON.stringify({ owner, attempt: 'gone', job: 'j', date: '2026-01-01', host: hostname(), pid, pid_space: pidSpace(), acquired_at: new Date().toISOString(), lease_ms: 600_000 });

  it('a live lock whose in-process holder on this host is gone is taken over at once; a live holder or a queued run keeps it', async () => {
    await ws.write('out/_LOCK.0000000000000001', record('run:gone', await deadPid()));
    expect(await codeOf(acquireOutputLock(out, claim('run:next'), 60_000))).toBe('ok');
    expect(await lockFiles()).toEqual(['_LOCK.0000000000000002']);

    const alive = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await ws.remove();
      await ws.write('out/_LOCK.0000000000000001', record('run:alive', alive.pid!));
      expect(await codeOf(acquireOutputLock(out, claim('run:next'), 60_000))).toBe('RUN_IN_PROGRESS');
    } finally {
      alive.kill();
    }
    // A queued run's lock is renewed by every worker: its planner's pid says nothing.
    await ws.remove();
    await ws.write('out/_LOCK.0000000000000001', record('queue:p:j@2026-01-01', await deadPid()));
    expect(await codeOf(acquireOutputLock(out, claim('run:next'), 60_000))).toBe('RUN_IN_PROGRESS');
  });

  it('Ctrl-C of nightscore run stops it: exit 130, a failed manifest, no _SUCCESS and no _LOCK, and the next run goes at once', async () => {
    const file = await ws.job('t.yaml', {
      name: 't',
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
      model: { path: `${REPO}/models/churn/model.onnx` },
      output: { uri: 'scores/dt={date}/', format: 'csv' },
      chunk: { rows: 200, bytes: 400_000 },
    });
    await writeDemoDay(await loadJob(file), '2026-01-01', { rows: 300_000, files: 2, seed: 2 });
    const run = startCli(['run', file, '--date', '2026-01-01', '--threads', '1'], { NIGHTSCORE_LOG_LEVEL: 'error' });
    const dir = ws.path('scores/dt=2026-01-01');
    for (let i = 0; i < 400 && !(await readdir(dir).catch(() => [] as string[])).some((f) => f.startsWith('part-')); i++) await sleep(25);
    run.child.kill('SIGINT');
    const { code, stderr } = await run.done;
    expect(code, stderr).toBe(130);
    expect(stderr).toContain('SIGINT: stopping the run, releasing its lock');
    const files = await readdir(dir);
    expect(files.filter((f) => f.startsWith('_LOCK') || f === '_SUCCESS')).toEqual([]);
    const manifest = await ws.manifest('scores/dt=2026-01-01');
    expect(manifest.status).toBe('failed');
    expect(manifest.error?.code).toBe('RUN_INTERRUPTED');
    expect(manifest.rows.read).toBeLessThan(300_000);
    const again = await runCli(['run', file, '--date', '2026-01-01']);
    expect(again.code, again.stderr).toBe(0);
  });

  // Terminated from outside under a native call, onnxruntime-node aborts the whole process
  // (exit 134, "terminate called after throwing an instance of 'Napi::Error'"): the scoring
  // threads end themselves once their calls return.
  it('Ctrl-C while scoring threads are inside the model stops the run cleanly, every time', async () => {
    const file = await ws.job('t.yaml', {
      name: 't',
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
      model: { path: `${REPO}/test/fixtures/slow-model/model.onnx` },
      output: { uri: 'scores/dt={date}/', format: 'csv' },
      chunk: { rows: 2_000, bytes: 400_000 },
    });
    await writeDemoDay(await loadJob(file), '2026-01-01', { rows: 100_000, files: 1, seed: 3 });
    const dir = ws.path('scores/dt=2026-01-01');
    for (const wait of [0, 150, 400]) {
      await rm(dir, { recursive: true, force: true });
      const run = startCli(['run', file, '--date', '2026-01-01', '--threads', '3'], { NIGHTSCORE_LOG_LEVEL: 'error' });
      for (let i = 0; i < 400 && !(await readdir(dir).catch(() => [] as string[])).some((f) => f.startsWith('part-')); i++) await sleep(10);
      await sleep(wait);
      run.child.kill('SIGINT');
      const { code, stderr } = await run.done;
      expect(code, stderr).toBe(130);
      expect(stderr).not.toContain('Napi::Error');
    }
  });
});

describe('output lock on an S3 server', () => {
  // s3rver ignores If-None-Match, so it cannot show that racing creators get one lock (AWS S3
  // and MinIO honour it); it does show the rest of the protocol speaks S3.
  it('is taken, renewed, refused to others, fenced and released through the S3 API', async () => {
    const s3 = await startS3(['scores']);
    try {
      const at = openLocation('s3://scores/churn/dt=2026-01-01/');
      const a = await acquireOutputLock(at, claim('run:a'), 60_000);
      const [key] = await s3.keys('scores', 'churn/');
      expect(key).toMatch(/^churn\/dt=2026-01-01\/_LOCK\.0{15}1$/);
      await renewOutputLock(at, a);
      expect(await codeOf(acquireOutputLock(at, claim('run:b'), 60_000))).toBe('RUN_IN_PROGRESS');
      expect(await codeOf(checkOutputLock(at, { ...a, key: `${key}0` }))).toBe('RUN_LOCK_LOST');
      await releaseOutputLock(at, a);
      expect(await s3.keys('scores', 'churn/')).toEqual([]);
      // A heartbeat after the release must not bring the lock back.
      expect(await at.storage.touch(key!)).toBe(false);
      expect(await s3.keys('scores', 'churn/')).toEqual([]);
    } finally {
      await s3.close();
    }
  });

  it('a lock read cut short or refused is read again, never taken for a damaged or lapsed lock', async () => {
    const s3 = await startS3(['scores']);
    const proxy = await startFaultProxy(s3.endpoint, (n) => (n === 0 ? 'truncate' : n === 1 ? 'error500' : undefined));
    try {
      const held = await acquireOutputLock(openLocation('s3://scores/day/'), claim('run:a'), 60_000);
      process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
      useEnvironment(readEnvironment(process.env));
      resetStorageCache();
      const err = await acquireOutputLock(openLocation('s3://scores/day/'), claim('run:b'), 60_000).catch((e: NightscoreError) => e);
      expect(proxy.injected).toEqual(['truncate', 'error500']);
      expect((err as NightscoreError).code).toBe('RUN_IN_PROGRESS');
      expect((err as NightscoreError).message).toContain('is being written by an in-process run (nightscore run), attempt run:a');
      expect(await codeOf(checkOutputLock(openLocation('s3://scores/day/'), held))).toBe('ok');
    } finally {
      await proxy.close();
      await s3.close();
    }
  });
});
