/**
 * onnxruntime alone: the benchmark's rows as one float32 matrix in memory, scored in
 * batches by `threads` worker threads, each with its own session created as nightscore
 * creates it (src/model/session.ts: one intra-op thread), each scoring its share of the
 * rows. No parsing, no output. Prints JSON { seconds, rows }, timed from all sessions ready
 * to the last batch scored.
 *
 *   tsx bench/ort-alone.ts --model m.onnx --output probability --rows 1000000 --seed 11 [--threads 2] [--batch 50000]
 */
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../src/model/session.js';
import { FEATURES, featureMatrix } from './data.js';

interface Share {
  model: string;
  output: string;
  data: SharedArrayBuffer;
  from: number;
  to: number;
  batch: number;
}

const WIDTH = FEATURES.length;

// A worker thread does not inherit tsx's loader under Node 20: it registers it, then loads this file.
const THREAD_BOOT = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;

async function scoreShare(share: Share): Promise<void> {
  const { session } = await loadModel(share.model);
  // onnxruntime-node takes no SharedArrayBuffer-backed tensors: copy this share once, before timing.
  const mine = new Float32Array(share.data, share.from * WIDTH * 4, (share.to - share.from) * WIDTH).slice();
  const run = async (from: number, to: number) => {
    const at = from - share.from;
    const tensor = new ort.Tensor('float32', mine.subarray(at * WIDTH, (at + to - from) * WIDTH), [to - from, WIDTH]);
    return session.run({ [session.inputs[0]!.name]: tensor }, [share.output]);
  };
  await run(share.from, Math.min(share.to, share.from + 1));
  parentPort!.postMessage('ready');
  await new Promise((resolve) => parentPort!.once('message', resolve));
  for (let from = share.from; from < share.to; from += share.batch) await run(from, Math.min(share.to, from + share.batch));
  parentPort!.postMessage('done');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      output: { type: 'string' },
      rows: { type: 'string', default: '1000000' },
      seed: { type: 'string', default: '11' },
      threads: { type: 'string', default: '1' },
      batch: { type: 'string', default: '50000' },
    },
  });
  const rows = Number(values.rows);
  const threads = Number(values.threads);
  const data = new SharedArrayBuffer(rows * WIDTH * 4);
  featureMatrix(rows, Number(values.seed), new Float32Array(data));
  const per = Math.ceil(rows / threads);
  const workers = Array.from({ length: threads }, (_, t) => {
    const share: Share = { model: values.model!, output: values.output!, data, from: t * per, to: Math.min(rows, (t + 1) * per), batch: Number(values.batch) };
    return new Worker(THREAD_BOOT, { eval: true, workerData: share });
  });
  const next = (w: Worker, expected: string) =>
    new Promise<void>((resolve, reject) => {
      w.once('message', (m) => (m === expected ? resolve() : reject(new Error(`unexpected message ${String(m)}`))));
      w.once('error', reject);
    });
  await Promise.all(workers.map((w) => next(w, 'ready')));
  const started = performance.now();
  const done = Promise.all(workers.map((w) => next(w, 'done')));
  for (const w of workers) w.postMessage('go');
  await done;
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(workers.map((w) => w.terminate()));
  process.stdout.write(`${JSON.stringify({ seconds, rows, threads })}\n`);
}

if (isMainThread) await main();
else await scoreShare(workerData as Share);
