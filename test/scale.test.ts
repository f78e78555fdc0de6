import { readFile } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHURN_FEATURES } from '../src/demo/churn-data.js';
import { parseJob } from '../src/job/load.js';
import { beginRun } from '../src/run/begin.js';
import { prepareJob } from '../src/run/bind.js';
import { finishRun } from '../src/run/finish.js';
import { runChunk } from '../src/run/chunk.js';
import { chunkSpec } from '../src/run/spec.js';
import { REPO, runCli, startCli, Workspace } from './support/workspace.js';

/** A day of many small objects, and settings that would make one. */

let ws: Workspace;
beforeAll(async () => {
  ws = await Workspace.create();
});
afterAll(async () => {
  await ws.remove();
});

const FILES = 20_000;
const DATE = '2026-05-01';

const jobText = (chunk = '') =>
  `name: many\ninput: { uri: "in/dt={date}/", format: csv, key: [customer_id] }\nmodel: { path: ${REPO}/models/churn/model.onnx }\noutput: { uri: "out/dt={date}/", format: csv }\n${chunk}`;

describe('a day of 20,000 one-row files', () => {
  it('plans, scores and commits in well under a minute, and the commit never blocks the event loop for long', async () => {
    const header = ['customer_id', ...CHURN_FEATURES].join(',');
    for (let i = 0; i < FILES; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, FILES - i) }, (_, j) => ws.write(`in/dt=${DATE}/f-${String(i + j).padStart(5, '0')}.csv`, `${header}\nK${i + j},${CHURN_FEATURES.map(() => '1').join(',')}\n`)));
    }
    const started = Date.now();
    const prepared = await prepareJob(parseJob(jobText(), ws.path('many.yaml')));
    const plan = await beginRun(prepared, DATE);
    const results = [];
    for (const chunk of plan.chunks) results.push(await runChunk(chunkSpec(plan.spec, chunk)));
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const commitStarted = Date.now();
    const manifest = await finishRun(plan, results);
    const commitMs = Date.now() - commitStarted;
    delay.disable();
    expect(manifest.status).toBe('succeeded');
    expect(manifest.rows).toEqual({ read: FILES, scored: FILES, rejected: 0 });
    expect(manifest.inputs).toHaveLength(FILES);
    expect(manifest.inputs.every((i) => i.rows === 1)).toBe(true);
    // A quadratic plan or commit takes many minutes here; a linear one tens of seconds on a busy 2-core machine.
    expect(Date.now() - started).toBeLessThan(60_000);
    // A worker renews its locks every few seconds from this thread (lock renewal at half of
    // NIGHTSCORE_LOCK_MS, 15 s by default): the commit must leave it room.
    expect(delay.max / 1e6, `commit took ${commitMs} ms`).toBeLessThan(500);
  });
});

describe('settings that would explode a day are refused', () => {
  it('chunk.bytes below 256 is JOB_INVALID at its line', async () => {
    const file = await ws.write('tiny.yaml', jobText('chunk:\n  rows: 10\n  bytes: 1\n'));
    const res = await runCli(['validate', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/JOB_INVALID: .*tiny\.yaml:7: chunk\.bytes: expected at least 256 bytes/);
  });

  it('--threads takes 1 to 256, and threads beyond the chunks are never started', async () => {
    const file = await ws.write('one.yaml', jobText().replace(/dt=\{date\}/g, 'one/dt={date}'));
    await ws.write(`in/one/dt=${DATE}/a.csv`, `${['customer_id', ...CHURN_FEATURES].join(',')}\nK1,${CHURN_FEATURES.map(() => '1').join(',')}\n`);
    for (const bad of ['0', '99999', 'many']) {
      const res = await runCli(['run', file, '--date', DATE, '--threads', bad]);
      expect(res.code, bad).toBe(2);
      expect(res.stderr).toMatch(/BAD_OPTION: --threads takes a whole number of threads from 1 to 256/);
    }
    // One chunk: --threads 64 starts at most the CPUs' threads before the plan, none after it.
    const threadsOf = async (n: string) => {
      const run = startCli(['run', file, '--date', DATE, '--threads', n]);
      let max = 0;
      let done = false;
      void run.done.then(() => (done = true));
      while (!done) {
        const status = await readFile(`/proc/${run.child.pid}/status`, 'utf8').catch(() => '');
        max = Math.max(max, Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? 0));
        await new Promise((r) => setTimeout(r, 5));
      }
      expect((await run.done).code).toBe(0);
      return max;
    };
    const few = await threadsOf('2');
    const many = await threadsOf('64');
    expect(many).toBeLessThanOrEqual(few + 4);
  });
});
