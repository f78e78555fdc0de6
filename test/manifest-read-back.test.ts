import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestQueue, type TestQueue } from './support/queue.js';
import { scoredChurnDay } from './support/scored-day.js';
import { runCli, Workspace } from './support/workspace.js';

/**
 * A manifest found in an output folder is input: anyone who can write the folder may have
 * written it. What status and backfill read of it (state, model, counts, times) is checked as
 * its type, and a manifest that is not one nightscore writes is MANIFEST_INVALID naming the
 * field, never a crash and never a state made up from a field that is not there.
 */

const DATE = '2026-04-01';
let ws: Workspace;
let tq: TestQueue;
let jobFile: string;

beforeAll(async () => {
  tq = await createTestQueue();
});
afterAll(async () => {
  await tq.close();
});
beforeEach(async () => {
  ws = await Workspace.create();
  jobFile = await scoredChurnDay(ws, DATE);
});
afterEach(async () => {
  await ws.remove();
});

describe('a manifest read back by status and backfill', () => {
  it.each([
    ['its model removed', { model: null }, 'model'],
    ['a model without its sha256', { model: { ref: 'x', path: '/m.onnx' } }, 'model.sha256'],
    ['counts that are text', { rows: { read: '30', scored: 30, rejected: 0 } }, 'rows.read'],
    ['a state nightscore never writes', { status: 'done' }, 'status'],
  ])('with %s is MANIFEST_INVALID naming the field', async (_label, change, field) => {
    const manifest = await ws.manifest(`out/dt=${DATE}`);
    await ws.write(`out/dt=${DATE}/_manifest.json`, JSON.stringify({ ...manifest, ...change }));
    await expect(tq.status(jobFile, DATE, DATE)).rejects.toMatchObject({ code: 'MANIFEST_INVALID', column: field });
    const backfill = await runCli(['backfill', jobFile, '--from', DATE, '--to', DATE, '--reprocess', 'stale', '--dry-run'], { env: tq.env });
    expect(backfill.code, backfill.stderr).toBe(2);
    expect(backfill.stderr).toContain(`nightscore: MANIFEST_INVALID: file://${ws.path(`out/dt=${DATE}/_manifest.json`)} is not a manifest nightscore writes: ${field}`);
  });

  it('as nightscore wrote it reads as before', async () => {
    const [row] = await tq.status(jobFile, DATE, DATE);
    expect(row).toMatchObject({ date: DATE, state: 'succeeded', rows: { read: 30, scored: 30, rejected: 0 } });
  });
});
