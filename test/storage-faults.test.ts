import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJob } from '../src/job/load.js';
import { beginRun } from '../src/run/begin.js';
import { prepareJob } from '../src/run/bind.js';
import { runChunk } from '../src/run/chunk.js';
import { chunkSpec } from '../src/run/spec.js';
import { openLocation } from '../src/storage/open.js';
import { csvOf } from './support/data.js';
import { startS3, type S3Server } from './support/s3.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

let ws: Workspace;
beforeAll(async () => {
  ws = await Workspace.create();
});
afterAll(async () => {
  await ws.remove();
});

const churnJob = (name: string, input: string, output: string) =>
  ws.job(`${name}.yaml`, {
    name,
    input: { uri: input, format: 'csv', key: ['customer_id'] },
    model: { path: `${REPO}/models/churn/model.onnx` },
    output: { uri: output, format: 'csv' },
    chunk: { rows: 100, bytes: 2000 },
  });

describe('inputs that change under a run', () => {
  it('a local input rewritten after planning fails its chunks with INPUT_CHANGED instead of misreading ranges', async () => {
    await ws.write('in/dt=2026-02-01/a.csv', csvOf(100, 1));
    const job = await loadJob(await churnJob('changed', 'in/dt={date}/', 'out/changed/dt={date}/'));
    const prepared = await prepareJob(job);
    const plan = await beginRun(prepared, '2026-02-01');
    expect(plan.chunks.length).toBeGreaterThan(1);
    await new Promise((r) => setTimeout(r, 20));
    await ws.write('in/dt=2026-02-01/a.csv', csvOf(90, 2));
    await expect(runChunk(chunkSpec(plan.spec, plan.chunks[1]!))).rejects.toMatchObject({
      code: 'INPUT_CHANGED',
      message: expect.stringMatching(/a\.csv changed \(or vanished\) after the run was planned$/),
    });
  });

  describe('on S3', () => {
    let s3: S3Server;
    beforeAll(async () => {
      s3 = await startS3(['inputs']);
    });
    afterAll(async () => {
      await s3?.close();
    });

    // s3rver ignores If-Match, so here it is the check of the ETag the server answers with
    // that refuses the other version; real S3 refuses it itself (412) on the If-Match.
    it('a read of another version than the planned ETag is refused', async () => {
      await s3.put('inputs', 'x.csv', 'a,b\n1,2\n');
      const { storage, key } = openLocation('s3://inputs/x.csv');
      const planned = (await storage.stat(key))!.version;
      expect(planned).toMatch(/^"[0-9a-f]+"$/);
      await s3.put('inputs', 'x.csv', 'a,b\n3,4\n');
      await expect(storage.read(key, { start: 0 }, planned)).rejects.toMatchObject({ code: 'INPUT_CHANGED' });
      const now = (await storage.stat(key))!.version;
      const chunks: Buffer[] = [];
      for await (const c of await storage.read(key, { start: 0 }, now)) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('a,b\n3,4\n');
    });
  });
});

const root = process.getuid?.() === 0;

describe('local disk faults', () => {
  it.runIf(root)('a full output disk is a clear error, and no _SUCCESS is written', async () => {
    const full = ws.path('full');
    mkdirSync(full, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32k', 'tmpfs', full]);
    try {
      await ws.write('in/dt=2026-02-02/a.csv', csvOf(3000, 3));
      const job = await churnJob('full', 'in/dt={date}/', `${full}/dt={date}/`);
      const res = await runCli(['run', job, '--date', '2026-02-02']);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/FILE_NO_SPACE: cannot write .*full\/dt=2026-02-02\/.*no space left on device/i);
      expect(res.stderr).toContain('hint: The disk is full');
      expect(res.stderr).not.toMatch(/\n\s+at /);
      expect(execFileSync('ls', ['-a', `${full}/dt=2026-02-02`], { encoding: 'utf8' })).not.toContain('_SUCCESS');
    } finally {
      execFileSync('umount', [full]);
    }
  });

  it('an unwritable output folder is a clear error', async () => {
    await ws.write('in/dt=2026-02-03/a.csv', csvOf(10, 4));
    // A file where the output folder should be: no user, root included, can create under it.
    writeFileSync(ws.path('blocked'), 'not a folder');
    const job = await churnJob('blocked', 'in/dt={date}/', 'blocked/dt={date}/');
    const res = await runCli(['run', job, '--date', '2026-02-03']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/FILE_NOT_FOLDER: cannot (write|list|delete) .*blocked/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});
