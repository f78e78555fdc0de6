import { readdir } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NightscoreError } from '../src/errors.js';
import { acquireOutputLock, checkOutputLock, releaseOutputLock, renewOutputLock } from '../src/run/lock.js';
import { openLocation, type Location } from '../src/storage/open.js';
import { startS3 } from './support/s3.js';
import { Workspace } from './support/workspace.js';

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
    await acquireOutputLock(out, claim('run:dead'), 100);
    await sleep(150);
    const codes = await Promise.all(Array.from({ length: 8 }, (_, i) => codeOf(acquireOutputLock(out, claim(`run:${i}`), 60_000))));
    expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
    expect(await lockFiles()).toHaveLength(1);
    expect(await codeOf(checkOutputLock(out, claim('run:dead')))).toBe('RUN_LOCK_LOST');
  });

  it('a holder that lapsed is fenced: its checks fail, its release leaves the new holder alone', async () => {
    await acquireOutputLock(out, claim('run:slow'), 100);
    expect(await codeOf(acquireOutputLock(out, claim('run:next'), 60_000))).toBe('RUN_IN_PROGRESS');
    await sleep(150);
    await acquireOutputLock(out, claim('run:next'), 60_000);
    const lost = await checkOutputLock(out, claim('run:slow')).catch((err: NightscoreError) => err);
    expect(lost).toBeInstanceOf(NightscoreError);
    expect((lost as NightscoreError).message).toMatch(/^attempt run:slow no longer holds the lock on file:\/\/.*\/out\/: it is held by an in-process run \(nightscore run\), attempt run:next/);
    expect(await codeOf(renewOutputLock(out, claim('run:slow')))).toBe('RUN_LOCK_LOST');
    await releaseOutputLock(out, claim('run:slow'));
    expect(await codeOf(checkOutputLock(out, claim('run:next')))).toBe('ok');
  });

  it('a renewed lock stays live past its first lease; a released one is gone', async () => {
    await acquireOutputLock(out, claim('run:a'), 300);
    for (let i = 0; i < 4; i++) {
      await sleep(100);
      await renewOutputLock(out, claim('run:a'));
    }
    expect(await codeOf(acquireOutputLock(out, claim('run:b'), 300))).toBe('RUN_IN_PROGRESS');
    await releaseOutputLock(out, claim('run:a'));
    expect(await lockFiles()).toEqual([]);
    expect(await codeOf(acquireOutputLock(out, claim('run:b'), 300))).toBe('ok');
  });

  it('a queued run retried after its worker died takes its own live lock over at once; the old try is fenced', async () => {
    await acquireOutputLock(out, claim('queue:p:j@2026-01-01', 'try-1'), 60_000);
    expect(await codeOf(acquireOutputLock(out, claim('queue:p:j@2026-01-01', 'try-2'), 60_000))).toBe('ok');
    expect(await codeOf(checkOutputLock(out, claim('queue:p:j@2026-01-01', 'try-1')))).toBe('RUN_LOCK_LOST');
    expect(await codeOf(checkOutputLock(out, claim('queue:p:j@2026-01-01', 'try-2')))).toBe('ok');
    expect(await codeOf(acquireOutputLock(out, claim('queue:p:k@2026-01-01', 'other'), 60_000))).toBe('RUN_IN_PROGRESS');
  });
});

describe('output lock on an S3 server', () => {
  // s3rver ignores If-None-Match, so it cannot show that racing creators get one lock (AWS S3
  // and MinIO honour it); it does show the rest of the protocol speaks S3.
  it('is taken, renewed, refused to others, fenced and released through the S3 API', async () => {
    const s3 = await startS3(['scores']);
    try {
      const at = openLocation('s3://scores/churn/dt=2026-01-01/');
      await acquireOutputLock(at, claim('run:a'), 60_000);
      const [key] = await s3.keys('scores', 'churn/');
      expect(key).toMatch(/^churn\/dt=2026-01-01\/_LOCK\.0{15}1$/);
      await renewOutputLock(at, claim('run:a'));
      expect(await codeOf(acquireOutputLock(at, claim('run:b'), 60_000))).toBe('RUN_IN_PROGRESS');
      expect(await codeOf(checkOutputLock(at, claim('run:b')))).toBe('RUN_LOCK_LOST');
      await releaseOutputLock(at, claim('run:a'));
      expect(await s3.keys('scores', 'churn/')).toEqual([]);
      // A heartbeat after the release must not bring the lock back.
      expect(await at.storage.touch(key!)).toBe(false);
      expect(await s3.keys('scores', 'churn/')).toEqual([]);
    } finally {
      await s3.close();
    }
  });
});
