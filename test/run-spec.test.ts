import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHURN_FEATURES } from '../src/demo/churn-data.js';
import { writeDemoDay } from '../src/demo/demo.js';
import { decodeFailure } from '../src/errors.js';
import { loadJob } from '../src/job/load.js';
import { loadModel, releaseModels, type LoadedModel } from '../src/model/session.js';
import { runId } from '../src/queue/config.js';
import { SPEC_VERSION } from '../src/run/spec.js';
import { beginRun } from '../src/run/begin.js';
import { prepareJob } from '../src/run/bind.js';
import { mergeStats, type ChunkStats } from '../src/run/chunk-result.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/** The engine version a manifest records: onnxruntime-node's, as installed. */
const ORT_VERSION = (JSON.parse(await readFile(`${REPO}/node_modules/onnxruntime-node/package.json`, 'utf8')) as { version: string }).version;

/**
 * A run is planned once into a frozen spec (RunSpec, ChunkSpec): the manifest records the
 * models it pinned, and chunks score from the spec, never from the job file again.
 */

let ws: Workspace;
let tq: TestQueue;
beforeAll(async () => {
  ws = await Workspace.create();
  tq = await createTestQueue();
});
afterAll(async () => {
  await tq?.close();
  await ws?.remove();
});

const MODEL = `${REPO}/models/churn/model.onnx`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function churnJob(name: string, extra: { model?: Record<string, unknown>; output?: Record<string, unknown>; chunk?: Record<string, unknown> } = {}) {
  return {
    name,
    input: { uri: `in/${name}/dt={date}/`, format: 'csv', key: ['customer_id'] },
    model: { path: MODEL, ...extra.model },
    output: { uri: `out/${name}/dt={date}/`, format: 'csv', columns: { label: 'churn_predicted', probabilities: ['p_stay', 'p_churn'] }, ...extra.output },
    chunk: { rows: 500, ...extra.chunk },
  };
}

describe('the manifest names the models the run pinned', () => {
  it('every file with its sha256 and size, the binding, the outputs and the engine threads: the same in process and on the queue', async () => {
    const DATE = '2026-10-01';
    const local = await ws.job('local.yaml', churnJob('local', { model: { threads: 2 } }));
    await writeDemoDay(await loadJob(local), DATE, { rows: 3_000, files: 2, seed: 4 });
    const queued = await ws.job('queued.yaml', { ...churnJob('queued', { model: { threads: 2 } }), input: { uri: 'in/local/dt={date}/', format: 'csv', key: ['customer_id'] } });
    const bytes = await readFile(MODEL);
    const sha256 = createHash('sha256').update(bytes).digest('hex');

    expect((await runCli(['run', local, '--date', DATE])).code).toBe(0);
    const inProcess = await ws.manifest(`out/local/dt=${DATE}`);
    expect(inProcess.models).toEqual([
      {
        role: 'champion',
        location: MODEL,
        sha256,
        files: [{ path: MODEL, sha256, bytes: bytes.length }],
        binding: { inputs: [{ name: 'input', type: 'float32', columns: CHURN_FEATURES, rank: 2 }], job_key: 'feature_names' },
        outputs: [
          { output: 'label', type: 'int64', names: ['churn_predicted'] },
          { output: 'probabilities', type: 'float32', names: ['p_stay', 'p_churn'] },
        ],
        unwrapped: [],
        engine: { name: 'onnxruntime', version: ORT_VERSION, threads: 2 },
        // The shipped model's producer_name: the tool whose export fixes a hint names.
        producer: 'nightscore-builder',
        registry: null,
      },
    ]);
    expect(inProcess.model.sha256).toBe(sha256);

    const worker = await tq.startWorker({}, ['--concurrency', '1']);
    expect((await runCli(['run', queued, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
    const [status] = await tq.waitFor(queued, DATE, DATE, allIn(['succeeded', 'failed']));
    expect(status!.state, status!.error).toBe('succeeded');
    expect((await ws.manifest(`out/queued/dt=${DATE}`)).models).toEqual(inProcess.models);
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
});

describe('chunks score from the spec', () => {
  it('a job file edited while a queued run is in flight changes nothing of that run', async () => {
    const DATE = '2026-10-02';
    const file = await ws.job('edited.yaml', churnJob('edited', { chunk: { rows: 200, bytes: 300_000 } }));
    await writeDemoDay(await loadJob(file), DATE, { rows: 120_000, files: 2, seed: 5 });
    const worker = await tq.startWorker({}, ['--concurrency', '1']);
    expect((await runCli(['run', file, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
    const out = ws.path(`out/edited/dt=${DATE}`);
    for (let i = 0; i < 400 && !(await readdir(out).catch(() => [] as string[])).some((f) => f.startsWith('part-')); i++) await sleep(20);
    // Another model, other column names, another key: the next run's business, not this one's.
    await ws.job('edited.yaml', {
      ...churnJob('edited', { output: { columns: { label: 'renamed' } } }),
      model: { path: await ws.model('other.onnx', { weights: CHURN_FEATURES.map(() => 0.1), bias: 1 }), features: CHURN_FEATURES },
    });
    // The edit landed while the run was in flight: its manifest still says running.
    expect((await ws.manifest(`out/edited/dt=${DATE}`)).status).toBe('running');
    const [status] = await tq.waitFor(file, DATE, DATE, allIn(['succeeded', 'failed']));
    expect(status!.state, status!.error).toBe('succeeded');
    const manifest = await ws.manifest(`out/edited/dt=${DATE}`);
    expect(manifest.chunks).toBeGreaterThan(2);
    expect(manifest.models[0]!.location).toBe(MODEL);
    for (const part of manifest.parts) {
      const [header] = await ws.csv(`out/edited/dt=${DATE}/${part.uri.split('/').pop()!}`);
      expect(header).toEqual(['customer_id', 'churn_predicted', 'p_stay', 'p_churn']);
    }
    worker.child.kill('SIGTERM');
    await worker.exited;
  });

  it('a chunk job queued by an earlier nightscore, without a spec, fails with QUEUE_JOB_OUTDATED and is not retried', async () => {
    const worker = await tq.startWorker();
    const old = await tq.queues.chunks.add('chunk', { run: 'old@2026-01-01', date: '2026-01-01', outputUri: ws.path('out/old/'), chunk: { index: 0, segments: [] } }, { attempts: 3 });
    let state = await old.getState();
    for (let i = 0; i < 200 && state !== 'failed' && state !== 'completed'; i++) {
      await sleep(50);
      state = await old.getState();
    }
    expect(state).toBe('failed');
    const job = (await tq.queues.chunks.getJob(old.id!))!;
    expect(job.attemptsMade).toBe(1);
    expect(decodeFailure(job.failedReason).toJSON()).toMatchObject({ code: 'QUEUE_JOB_OUTDATED', kind: 'internal', message: expect.stringMatching(/queued by an earlier nightscore/) });
    // A spec of another version is refused too, not scored by a guess.
    const other = await tq.queues.chunks.add('chunk', { run: 'other@2026-01-01', lock: {}, spec: { version: 999 } }, { attempts: 3 });
    for (let i = 0; i < 200 && !['failed', 'completed'].includes(await other.getState()); i++) await sleep(50);
    const refused = (await tq.queues.chunks.getJob(other.id!))!;
    expect(refused.attemptsMade).toBe(1);
    expect(decodeFailure(refused.failedReason).toJSON()).toMatchObject({ code: 'QUEUE_JOB_OUTDATED', message: expect.stringMatching(new RegExp(`planned with run spec version 999, and this worker reads version ${SPEC_VERSION};`)) });
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
});

describe('a run queued by an earlier nightscore', () => {
  it('fails with QUEUE_JOB_OUTDATED: its manifest says so and its output lock is released at once', async () => {
    const DATE = '2026-10-03';
    const file = await ws.job('legacy.yaml', churnJob('legacy'));
    const def = await loadJob(file);
    await writeDemoDay(def, DATE, { rows: 1_000, files: 1, seed: 6 });
    // An attempt begun as the earlier version did: output opened, lock held, a plan without a spec.
    const id = runId(def.name, DATE);
    const { spec, chunks, manifest, lock } = await beginRun(await prepareJob(def), DATE, `queue:${tq.config.prefix}:${id}`);
    const legacyPlan = { date: DATE, outputUri: spec.output.uri, inputs: spec.input.objects, chunks, manifest, lock };
    await tq.queues.runs.add('run', { jobFile: file, date: DATE, step: 'finalize', plan: legacyPlan, job: def }, { jobId: id, attempts: 3 });
    const worker = await tq.startWorker();
    const [status] = await tq.waitFor(file, DATE, DATE, allIn(['succeeded', 'failed']));
    expect(status).toMatchObject({ state: 'failed', attempts: 1, error: expect.stringMatching(/^QUEUE_JOB_OUTDATED: /) });
    const after = await ws.manifest(`out/legacy/dt=${DATE}`);
    expect(after).toMatchObject({ attempt: manifest.attempt, status: 'failed', error: { code: 'QUEUE_JOB_OUTDATED', kind: 'internal' } });
    expect((await ws.list(`out/legacy/dt=${DATE}`)).filter((f) => f.startsWith('_LOCK'))).toEqual([]);
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
});

describe('a long-lived process', () => {
  it('keeps two loaded versions of a model file, however many deploys it sees, and releases older ones', async () => {
    const path = ws.path('deployed.onnx');
    const loaded: LoadedModel[] = [];
    for (let v = 0; v < 4; v++) {
      await ws.model('deployed.onnx', { weights: CHURN_FEATURES.map(() => v), bias: v });
      loaded.push(await loadModel(path));
    }
    const one = async (m: LoadedModel) => {
      const { Tensor } = await import('onnxruntime-node');
      return m.session.run({ input: new Tensor('float32', new Float32Array(CHURN_FEATURES.length), [1, CHURN_FEATURES.length]) });
    };
    expect(new Set(loaded.map((m) => m.sha256)).size).toBe(4);
    for (const m of loaded.slice(2)) await expect(one(m)).resolves.toBeDefined();
    for (const m of loaded.slice(0, 2)) await expect(one(m)).rejects.toThrow();
    await releaseModels();
  });
});

describe('chunk statistics', () => {
  const random = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const stats = (next: () => number, i: number): ChunkStats => {
    const scored = Math.floor(next() * 1e6);
    const rejected = Math.floor(next() * 100);
    return { rows: { read: scored + rejected, scored, rejected }, inputs: { [`file:///in/${i % 7}.csv`]: scored + rejected } };
  };

  it('merge to the same totals whatever the order and grouping of the chunks', () => {
    const next = random(7);
    const chunks = Array.from({ length: 500 }, (_, i) => stats(next, i));
    const once = mergeStats(chunks);
    expect(once.rows.read).toBe(chunks.reduce((n, c) => n + c.rows.read, 0));
    expect(Object.values(once.inputs).reduce((a, b) => a + b, 0)).toBe(once.rows.read);
    for (let trial = 0; trial < 20; trial++) {
      const shuffled = [...chunks].sort(() => next() - 0.5);
      const cut = Math.floor(next() * shuffled.length);
      // Merged in two groups, then together: as a commit over partial merges would.
      expect(mergeStats([mergeStats(shuffled.slice(0, cut)), mergeStats(shuffled.slice(cut))])).toEqual(once);
    }
  });

  it('refuse a count that is not an exact integer rather than round it', () => {
    const big = { rows: { read: 2 ** 53, scored: 2 ** 53, rejected: 0 }, inputs: {} };
    expect(() => mergeStats([big, { rows: { read: 1, scored: 1, rejected: 0 }, inputs: {} }])).toThrow(expect.objectContaining({ code: 'STATS_NOT_EXACT' }));
    expect(() => mergeStats([{ rows: { read: 0.5, scored: 0, rejected: 0 }, inputs: {} }])).toThrow(expect.objectContaining({ code: 'STATS_NOT_EXACT' }));
  });
});
