import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHURN_FEATURES } from '../src/demo/churn-data.js';
import type { RunManifest } from '../src/run/manifest.js';
import { buildModel } from '../scripts/onnx-builder.js';
import { csvOf } from './support/data.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { allIn, createTestQueue, type TestQueue } from './support/queue.js';
import { startS3, type S3Server } from './support/s3.js';
import { REPO, runCli, Workspace } from './support/workspace.js';

/**
 * One error contract: a chunk's failure reads the same — code, kind, message, hint, source,
 * line, column — in the manifest whether the date was scored in process or on the queue;
 * `status` shows that code and message either way, and the worker's /metrics counts it under
 * that code.
 */

let ws: Workspace;
let s3: S3Server;
let proxy: FaultProxy;
let tq: TestQueue;
let metricsUrl: string;
beforeAll(async () => {
  ws = await Workspace.create();
  s3 = await startS3(['raw']);
  proxy = await startFaultProxy(s3.endpoint, () => 'truncate');
  const env = { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, NIGHTSCORE_ATTEMPTS: '1' };
  tq = await createTestQueue(env);
  metricsUrl = `http://127.0.0.1:${(await tq.startWorker()).port}/metrics`;
});

/** nightscore_failures_total of one code, over every job, as the worker's /metrics says now. */
async function failuresCounted(code: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return [...text.matchAll(new RegExp(`^nightscore_failures_total\\{job="[^"]+",reason="${code}"\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
}
afterAll(async () => {
  await tq?.close();
  await proxy?.close();
  await s3?.close();
  await ws?.remove();
});

const DATE = '2026-09-01';
const header = ['customer_id', ...CHURN_FEATURES].join(',');
const row = (k: string) => [k, ...CHURN_FEATURES.map(() => '1')].join(',');

/** A model that passes the one-row probe, then answers [1, F] for a batch of N rows. */
const batchBlind = () =>
  buildModel({
    inputs: [{ name: 'input', elem: 'float', shape: ['N', CHURN_FEATURES.length] }],
    outputs: [{ name: 'o', elem: 'float', shape: [1, CHURN_FEATURES.length] }],
    nodes: [{ op: 'ReduceMean', inputs: ['input'], outputs: ['o'], attrs: { axes: [0], keepdims: 1 } }],
  });

/** A model whose symbolic input width its weights contradict: it fails on every row. */
const everyRowRefused = () =>
  buildModel({
    inputs: [{ name: 'input', elem: 'float', shape: ['N', 'F'] }],
    outputs: [{ name: 'o', elem: 'float', shape: ['N', 1] }],
    floats: { W: { dims: [CHURN_FEATURES.length + 1, 1], values: new Array(CHURN_FEATURES.length + 1).fill(1) } },
    nodes: [{ op: 'MatMul', inputs: ['input', 'W'], outputs: ['o'] }],
  });

/** Each case: the code and kind, where the record says the problem is, and how to make it. */
const CASES: Array<{ code: string; kind: string; place: Record<string, unknown>; setup: (name: string) => Promise<Record<string, unknown>> }> = [
  {
    code: 'CSV_MALFORMED',
    place: { source: expect.stringMatching(/csv-malformed\/dt=2026-09-01\/a\.csv$/), line: 3 },
    kind: 'input',
    setup: async (name) => {
      await ws.write(`in/${name}/dt=${DATE}/a.csv`, `${header}\n${row('k1')}\n${row('k"2')}x"\n`);
      return {};
    },
  },
  {
    code: 'INPUT_MISSING_COLUMN',
    place: { source: expect.stringMatching(/input-missing-column\/dt=2026-09-01\/a\.csv$/) },
    kind: 'input',
    setup: async (name) => {
      await ws.write(`in/${name}/dt=${DATE}/a.csv`, `${header.replace('tenure_months', 'tenure')}\n${row('k1')}\n`);
      return {};
    },
  },
  {
    code: 'INPUT_EMPTY',
    place: { source: expect.stringMatching(/input-empty\/dt=2026-09-01\/a\.csv$/), line: 1 },
    kind: 'input',
    setup: async (name) => {
      await ws.write(`in/${name}/dt=${DATE}/a.csv`, '');
      return {};
    },
  },
  {
    code: 'INPUT_TRUNCATED',
    place: { source: 's3://raw/input-truncated/dt=2026-09-01/a.csv', retryable: true },
    kind: 'storage',
    setup: async (name) => {
      await s3.put('raw', `${name}/dt=${DATE}/a.csv`, csvOf(200, 1));
      return { input: { uri: `s3://raw/${name}/dt={date}/`, format: 'csv', key: ['customer_id'] } };
    },
  },
  {
    code: 'MODEL_OUTPUT_SHAPE',
    place: { source: expect.stringMatching(/model-output-shape\.onnx$/) },
    kind: 'model',
    setup: async (name) => {
      await ws.write(`in/${name}/dt=${DATE}/a.csv`, csvOf(50, 2));
      return { model: { path: await ws.write(`${name}.onnx`, batchBlind()), features: CHURN_FEATURES } };
    },
  },
  {
    code: 'MODEL_RUN_FAILED',
    place: { source: expect.stringMatching(/model-run-failed\/dt=2026-09-01\/a\.csv$/), line: 2, message: expect.stringMatching(/the model failed on each of the first \d+ rows of the chunk, given alone/) },
    kind: 'model',
    setup: async (name) => {
      await ws.write(`in/${name}/dt=${DATE}/a.csv`, csvOf(50, 3));
      return { model: { path: await ws.write(`${name}.onnx`, everyRowRefused()), features: CHURN_FEATURES } };
    },
  },
  {
    code: 'REJECT_RATE_EXCEEDED',
    place: {},
    kind: 'limit',
    setup: async (name) => {
      await ws.write(`in/${name}/dt=${DATE}/a.csv`, `${header}\n${row('k1')}\n${row('k2').replace(/,1$/, ',x')}\n`);
      return {};
    },
  },
];

describe('a failure reads the same in process and on the queue', () => {
  it.each(CASES)('$code ($kind)', async ({ code, kind, place, setup }) => {
    const name = code.toLowerCase().replace(/_/g, '-');
    const file = await ws.job(`${name}.yaml`, {
      name,
      input: { uri: `in/${name}/dt={date}/`, format: 'csv', key: ['customer_id'] },
      model: { path: `${REPO}/models/churn/model.onnx` },
      output: { uri: `out/${name}/dt={date}/`, format: 'csv' },
      chunk: { rows: 10 },
      ...(await setup(name)),
    });
    const local = await runCli(['run', file, '--date', DATE, '--json'], { env: tq.env });
    expect(local.code, local.stderr).not.toBe(0);
    const inProcess = (JSON.parse(local.stdout) as RunManifest).error!;
    expect(inProcess).toMatchObject({ code, kind, ...place });
    expect((await tq.status(file, DATE, DATE))[0]).toMatchObject({ state: 'failed', error: `${inProcess.code}: ${inProcess.message}` });
    expect(await failuresCounted(code)).toBe(0);

    expect((await runCli(['run', file, '--date', DATE, '--queue'], { env: tq.env })).code).toBe(0);
    const [status] = await tq.waitFor(file, DATE, DATE, allIn(['succeeded', 'failed']));
    const queued = (await ws.manifest(`out/${name}/dt=${DATE}`)).error;
    expect(queued).toEqual(inProcess);
    expect(status!.error).toBe(`${inProcess.code}: ${inProcess.message}`);
    // The chunk's failure (a commit's limits, the run's) and the run's, both under the code.
    expect(await failuresCounted(code)).toBeGreaterThanOrEqual(kind === 'limit' ? 1 : 2);
  });
});
