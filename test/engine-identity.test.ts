import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJob } from '../src/job/load.js';
import { bindModel, prepareJob } from '../src/run/bind.js';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { scoredChurnDay } from './support/scored-day.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * The engine a model scores under (its name, version and settings) is part of the model's
 * identity, as its sha256 is: a date scored under another engine version is stale, as a date
 * scored by other bytes is, and a worker of another engine does not score a chunk planned
 * under this one. A manifest of an earlier nightscore, which records no engine version, is
 * judged by its model alone.
 */

const ORT_VERSION = (JSON.parse(await readFile(`${REPO}/node_modules/onnxruntime-node/package.json`, 'utf8')) as { version: string }).version;
const DATE = '2026-04-01';
let ws: Workspace;
let tq: TestQueue;
let jobFile: string;

beforeAll(async () => {
  tq = await createTestQueue();
  ws = await Workspace.create();
  jobFile = await scoredChurnDay(ws, DATE);
});
afterAll(async () => {
  await tq?.close();
  await ws?.remove();
});

/** What the tests edit of a manifest. */
interface Edited {
  model: { sha256: string };
  models: Array<{ engine: { name: string; version?: string; threads: number } }>;
}

/** backfill --reprocess stale's line for the date, after `edit` of its manifest (undone after). */
async function staleLine(edit: (m: Edited) => void): Promise<string> {
  const file = `out/dt=${DATE}/_manifest.json`;
  const written = await readFile(ws.path(file), 'utf8');
  const manifest = JSON.parse(written) as Edited;
  edit(manifest);
  await ws.write(file, JSON.stringify(manifest));
  try {
    const dry = await runCli(['backfill', jobFile, '--from', DATE, '--to', DATE, '--reprocess', 'stale', '--dry-run'], { env: tq.env });
    expect(dry.code, dry.stderr).toBe(0);
    return dry.stdout.split('\n').find((l) => l.startsWith(DATE))!;
  } finally {
    await ws.write(file, written);
  }
}

describe('the engine in a model\'s identity', () => {
  it('is recorded in the manifest: name, version and threads', async () => {
    expect((await ws.manifest(`out/dt=${DATE}`)).models[0]!.engine).toEqual({ name: 'onnxruntime', version: ORT_VERSION, threads: 1 });
  });

  it('makes a date scored under another engine version stale, as other model bytes do', async () => {
    const same = await staleLine(() => undefined);
    expect(same).not.toContain(' enqueue ');
    expect(same).toMatch(/scored by sha256 [0-9a-f]{12}$/);
    const bytes = await staleLine((m) => (m.model.sha256 = '0'.repeat(64)));
    expect(bytes).toContain(' enqueue ');
    const engine = await staleLine((m) => (m.models[0]!.engine.version = '0.0.1'));
    expect(engine).toContain(' enqueue ');
    expect(engine).toMatch(new RegExp(`scored by sha256 [0-9a-f]{12} under onnxruntime 0\\.0\\.1, 1 thread, now onnxruntime ${ORT_VERSION.replace(/\./g, '\\.')}, 1 thread$`));
    const threads = await staleLine((m) => (m.models[0]!.engine.threads = 4));
    expect(threads).toContain(' enqueue ');
    expect(threads).toContain('under onnxruntime');
  });

  it('of a manifest that records no engine version (an earlier nightscore) is not compared', async () => {
    const line = await staleLine((m) => delete m.models[0]!.engine.version);
    expect(line).not.toContain(' enqueue ');
  });

  it('read back from a manifest is checked as its type: MANIFEST_INVALID naming the field', async () => {
    const file = `out/dt=${DATE}/_manifest.json`;
    const written = await readFile(ws.path(file), 'utf8');
    const manifest = JSON.parse(written);
    manifest.models[0].engine.version = 130;
    await ws.write(file, JSON.stringify(manifest));
    try {
      const dry = await runCli(['backfill', jobFile, '--from', DATE, '--to', DATE, '--reprocess', 'stale', '--dry-run'], { env: tq.env });
      expect(dry.code).toBe(2);
      expect(dry.stderr).toContain('is not a manifest nightscore writes: models.0.engine.version');
    } finally {
      await ws.write(file, written);
    }
  });

  it('is checked by a thread binding a spec: a chunk planned under another engine version is MODEL_ENGINE_CHANGED', async () => {
    const { spec } = await prepareJob(await loadJob(jobFile));
    await expect(bindModel(spec, ['customer_id'])).resolves.toBeDefined();
    await expect(bindModel({ ...spec, engine: { ...spec.engine, version: '0.0.1' } }, ['customer_id'])).rejects.toMatchObject({
      code: 'MODEL_ENGINE_CHANGED',
      message: `the run was planned to score ${REPO}/models/churn/model.onnx with onnxruntime 0.0.1, 1 thread, but this worker has onnxruntime ${ORT_VERSION}, 1 thread`,
    });
  });
});
