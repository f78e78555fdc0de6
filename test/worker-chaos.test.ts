import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeDemoDay } from '../src/demo/demo.js';
import { loadJob } from '../src/job/load.js';
import { inputKeys, outputKeys } from './support/keys.js';
import { allIn, createTestQueue, type TestQueue, type WorkerProcess } from './support/queue.js';
import { REPO, runCli, Workspace } from './support/workspace.js';
import { rng } from '../src/demo/churn-data.js';

/**
 * Chaos: SIGKILL random workers at random moments during a multi-date backfill (while runs
 * are planned, chunks scored, runs committed), start a replacement after each kill, and check
 * that every run succeeds with every row exactly once and nothing of a dead attempt remains.
 * The RNG is seeded: CHAOS_SEED=<seed> replays a failing schedule of kills.
 */
const DATES = ['2026-07-01', '2026-07-02', '2026-07-03', '2026-07-04', '2026-07-05'];
const KILLS = 4;
const ROWS = 40_000;
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

let ws: Workspace | undefined;
let tq: TestQueue | undefined;
afterAll(async () => {
  await tq?.close();
  await ws?.remove();
});

describe('worker chaos', () => {
  it(`SIGKILLs random workers ${KILLS} times during a 5-date backfill: every run succeeds, every row once (seed ${SEED})`, async () => {
    console.log(`worker chaos: CHAOS_SEED=${SEED}`);
    const random = rng(SEED);
    ws = await Workspace.create();
    // Short locks so a dead worker's chunk is taken over in ~2 s; chunks may stall more than
    // the default 3 times when kills land on them again and again.
    tq = await createTestQueue({ NIGHTSCORE_LOCK_MS: '2000', NIGHTSCORE_STALLED_INTERVAL_MS: '1000', NIGHTSCORE_MAX_STALLED: '20' });
    const file = await ws.job('chaos.yaml', {
      name: 'chaos',
      input: { uri: 'in/dt={date}/', format: 'csv', key: ['customer_id'] },
      model: { path: `${REPO}/models/churn/model.onnx` },
      output: { uri: 'out/dt={date}/', format: 'csv' },
      chunk: { rows: 500, bytes: 150_000 },
    });
    const job = await loadJob(file);
    for (const [i, date] of DATES.entries()) await writeDemoDay(job, date, { rows: ROWS, files: 2, seed: 100 + i });

    const workers: WorkerProcess[] = await Promise.all([0, 1, 2].map(() => tq!.startWorker({}, ['--concurrency', '1'])));
    const backfill = await runCli(['backfill', file, '--from', DATES[0]!, '--to', DATES.at(-1)!], { env: tq.env });
    expect(backfill.stdout).toContain('5 of 5 dates enqueued');

    // The moments are drawn as points in the work (after the n-th chunk scored, plus a random
    // delay), not as times, so the kills land while work remains however fast scoring gets.
    const finished = allIn(['succeeded', 'failed']);
    const moments = Array.from({ length: KILLS }, () => 3 + Math.floor(random() * 60)).sort((a, b) => a - b);
    const scored = () => tq!.workerLogs().split('"msg":"chunk scored"').length - 1;
    const kills: string[] = [];
    const replacements: Array<Promise<void>> = [];
    for (const moment of moments) {
      while (scored() < moment && !finished(await tq.status(file, DATES[0]!, DATES.at(-1)!))) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, random() * 300));
      if (finished(await tq.status(file, DATES[0]!, DATES.at(-1)!))) break;
      const alive = () => workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
      // Every worker may be dead for a moment (kills faster than replacements start).
      if (alive().length === 0) await Promise.all(replacements);
      const live = alive();
      const victim = live[Math.floor(random() * live.length)]!;
      const active = (await tq.queues.chunks.getActive()).length + (await tq.queues.runs.getActive()).length;
      victim.child.kill('SIGKILL');
      expect(await victim.exited).toBe('SIGKILL');
      kills.push(`pid ${victim.child.pid} after ${scored()} chunks (${active} jobs active)`);
      // The replacement starts in the background: the next moment may come before it is up.
      replacements.push(tq.startWorker({}, ['--concurrency', '1']).then((w) => void workers.push(w)));
    }
    await Promise.all(replacements);
    console.log(`worker chaos (seed ${SEED}): killed ${kills.join(', ')}`);
    expect(kills.length, `the backfill finished before ${KILLS} kills (seed ${SEED})`).toBe(KILLS);

    const rows = await tq.waitFor(file, DATES[0]!, DATES.at(-1)!, finished, 80_000);
    expect(rows.map((r) => [r.date, r.state, r.error]), `seed ${SEED}`).toEqual(DATES.map((d) => [d, 'succeeded', undefined]));
    for (const date of DATES) {
      const out = ws.path(`out/dt=${date}`);
      // Every input row exactly once: the multisets of keys are equal.
      expect(await outputKeys(out), `${date}, seed ${SEED}`).toEqual(await inputKeys(ws.path(`in/dt=${date}`)));
      // Nothing but the committed attempt: its parts and rejects, the manifest, _SUCCESS.
      const m = await ws.manifest(`out/dt=${date}`);
      expect(m.rows.read).toBe(ROWS);
      expect(m.chunks).toBeGreaterThanOrEqual(15);
      const rel = (uri: string) => path.relative(out, new URL(uri).pathname);
      const expected = ['_SUCCESS', '_manifest.json', ...m.parts.map((p) => rel(p.uri)), ...m.rejects.map((r) => rel(r.uri))];
      if (m.rejects.length > 0) expected.push('_rejects');
      const files = (await readdir(out, { recursive: true })).map(String);
      expect(files.sort(), `${date}, seed ${SEED}`).toEqual(expected.sort());
    }
  }, 150_000);
});
