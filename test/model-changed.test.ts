import { readdir, rename, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHURN_FEATURES } from '../src/demo/churn-data.js';
import { writeDemoDay } from '../src/demo/demo.js';
import { loadJob } from '../src/job/load.js';
import { logisticModel } from '../scripts/onnx-builder.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { runCli, startCli, Workspace } from './support/workspace.js';

/** The model that scored is the model the manifest names: a model file replaced mid-run fails the run. */

let ws: Workspace;
let tq: TestQueue | undefined;
beforeEach(async () => {
  ws = await Workspace.create();
});
afterEach(async () => {
  await tq?.close();
  tq = undefined;
  await ws.remove();
});

const DATE = '2026-06-01';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const model = (bias: number) => logisticModel({ weights: CHURN_FEATURES.map((_, i) => (i % 3) - 1), bias });

async function job(extra: Record<string, unknown> = {}): Promise<string> {
  await ws.write('models/m.onnx', model(0));
  const file = await ws.job('t.yaml', {
    name: 't',
    input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
    model: { path: 'models/m.onnx', features: CHURN_FEATURES, ...extra },
    output: { uri: 'out/dt={date}/', format: 'csv' },
    chunk: { rows: 200, bytes: 300_000 },
  });
  await writeDemoDay(await loadJob(file), DATE, { rows: 200_000, files: 2, seed: 8 });
  return file;
}

/** Waits for the first part, then deploys another model over the job's, as a deploy would (rename into place). */
async function replaceModelOnceScoring(): Promise<void> {
  for (let i = 0; i < 400 && !(await readdir(ws.path(`out/dt=${DATE}`)).catch(() => [] as string[])).some((f) => f.startsWith('part-')); i++) await sleep(20);
  await writeFile(ws.path('models/m.onnx.new'), model(3));
  await rename(ws.path('models/m.onnx.new'), ws.path('models/m.onnx'));
}

describe('a model replaced during a run', () => {
  it('in process: the run fails with MODEL_CHANGED naming both hashes, and writes no _SUCCESS', async () => {
    const file = await job();
    const run = startCli(['run', file, '--date', DATE, '--threads', '2']);
    await replaceModelOnceScoring();
    const { code, stderr } = await run.done;
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(/MODEL_CHANGED: .*m\.onnx changed during the run: it has sha256 [0-9a-f]{64} now, but the run was planned with sha256 [0-9a-f]{64}/);
    const manifest = await ws.manifest(`out/dt=${DATE}`);
    expect(manifest.status).toBe('failed');
    expect(manifest.error?.code).toBe('MODEL_CHANGED');
    expect(await ws.list(`out/dt=${DATE}`)).not.toContain('_SUCCESS');
  });

  it('in process, with model.sha256 pinned: the run in flight fails, and the next is refused at once', async () => {
    const { createHash } = await import('node:crypto');
    const file = await job({ sha256: createHash('sha256').update(model(0)).digest('hex') });
    const run = startCli(['run', file, '--date', DATE, '--threads', '2']);
    await replaceModelOnceScoring();
    const { code, stderr } = await run.done;
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(/MODEL_CHANGED/);
    const failed = await ws.manifest(`out/dt=${DATE}`);
    const again = await runCli(['run', file, '--date', DATE]);
    expect(again.code, again.stderr).toBe(1);
    expect(again.stderr).toMatch(/MODEL_SHA_MISMATCH: .*m\.onnx has sha256 [0-9a-f]{64}, but the job pins model\.sha256/);
    // Refused before planning: the failed attempt's record is untouched.
    expect(await ws.manifest(`out/dt=${DATE}`)).toEqual(failed);
    expect(await ws.list(`out/dt=${DATE}`)).not.toContain('_SUCCESS');
  });

  it('on the queue: the run fails with MODEL_CHANGED, not retried, and writes no _SUCCESS', async () => {
    tq = await createTestQueue();
    const file = await job();
    await tq.startWorker({}, ['--concurrency', '1']);
    expect((await runCli(['run', file, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
    await replaceModelOnceScoring();
    const [status] = await tq.waitFor(file, DATE, DATE, allIn(['succeeded', 'failed']));
    expect(status!.state, JSON.stringify(status)).toBe('failed');
    expect(status!.error).toMatch(/^MODEL_CHANGED: /);
    const manifest = await ws.manifest(`out/dt=${DATE}`);
    expect(manifest.error?.code).toBe('MODEL_CHANGED');
    expect(await ws.list(`out/dt=${DATE}`)).not.toContain('_SUCCESS');
  });
});
