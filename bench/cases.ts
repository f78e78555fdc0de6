/**
 * How each kind of case is measured. Every measurement is a separate process (the CLI, a
 * worker, or a bench script), so the benchmark's own memory and JIT never mix into a figure.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { listInputs, planChunks } from '../src/run/plan.js';
import { CLI_ARGS, REPO, startWorkers, timeNode, type WorkerGroup } from './procs.js';

/** One measured run. */
export interface Sample {
  seconds: number;
  /** Peak RSS of the measured process (in process, ORT and parse alone; the enqueuing CLI for the queue). */
  peakRssMb: number;
  /** Queue: p99 event-loop delay of each worker's main thread during this run, in ms. */
  eldP99Ms?: number[];
  /** Queue: the run's own duration from its manifest (plan to commit), in s. */
  runSeconds?: number | null;
  /** Queue: wall time of the enqueuing CLI (`run --queue --wait`), its own start-up included, in s. */
  cliSeconds?: number;
}

export interface Measured {
  samples: Sample[];
  /** Queue: each worker's peak RSS (VmHWM) over the whole case, warm-up included, in MB. */
  workerPeakRssMb?: number[];
  /** What else a case records (chunk counts, concurrency). */
  detail?: Record<string, unknown>;
}

const TSX = [path.join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs')];
const BENCH = (file: string) => path.join(REPO, 'bench', file);

/** A timer that rejects: a stuck run fails the benchmark instead of hanging it. */
function deadline(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} took longer than ${Math.round(ms / 1000)} s; giving up`)), ms).unref());
}
const limitFor = (rows: number) => Math.max(120_000, rows / 2);

/** Dates of successive runs: each queued run is a new date, so no run id repeats. */
export function dateOf(i: number): string {
  return new Date(Date.UTC(2031, 0, 1 + i)).toISOString().slice(0, 10);
}

/** `nightscore run` in process, `runs` times, checking every run read `rows` rows. */
export async function measureInProcess(jobFile: string, rows: number, runs: number, drift = false): Promise<Measured> {
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    const t = await timeNode([...CLI_ARGS, 'run', jobFile, '--date', dateOf(0), '--json'], {}, deadline(limitFor(rows), 'nightscore run'));
    const manifest = JSON.parse(t.stdout) as { status: string; rows: { read: number }; duration_ms: number | null; drift?: { status: string } };
    check(manifest.status === 'succeeded' && manifest.rows.read === rows, `run of ${jobFile}: status ${manifest.status}, read ${manifest.rows.read} of ${rows} rows`);
    check(!drift || manifest.drift !== undefined, `run of ${jobFile}: the manifest has no drift block`);
    samples.push({ seconds: t.seconds, peakRssMb: t.peakRssMb, runSeconds: manifest.duration_ms === null ? null : manifest.duration_ms / 1000 });
  }
  return { samples };
}

/**
 * `nightscore profile build` of `jobFile` on the reference rows in `referenceDir`, into
 * `profile`: what the drift cases run against, built by the CLI as an operator would.
 */
export async function buildProfile(jobFile: string, referenceDir: string, profile: string): Promise<string> {
  await timeNode([...CLI_ARGS, 'profile', 'build', jobFile, `${referenceDir}/`, '-o', profile], {}, deadline(600_000, 'nightscore profile build'));
  return profile;
}

/**
 * Drift's cost: `nightscore run` of the job without drift and of the same job with a drift
 * profile, alternately, `runs` pairs. The samples are the runs with drift; each pair's ratio
 * (with / without) is kept, so the cost is read from runs timed side by side on a machine
 * whose speed drifts.
 */
export async function measureDriftCost(plainJob: string, driftJob: string, rows: number, runs: number): Promise<Measured> {
  const samples: Sample[] = [];
  const pairs: Array<{ plain_s: number; drift_s: number }> = [];
  for (let i = 0; i < runs; i++) {
    const [plain] = (await measureInProcess(plainJob, rows, 1)).samples;
    const [drift] = (await measureInProcess(driftJob, rows, 1, true)).samples;
    pairs.push({ plain_s: plain!.seconds, drift_s: drift!.seconds });
    samples.push(drift!);
  }
  return { samples, detail: { pairs } };
}

/**
 * A challenger's cost: `nightscore run` of the job alone and of the same job with one
 * challenger (shadow:), alternately, `runs` pairs. Each pair keeps the extra CPU seconds of the
 * run with the challenger, and the seconds the challenger spent in its own inference (the
 * manifest's shadow block, summed over chunks): the cost is how far the first exceeds the second.
 */
export async function measureShadowCost(plainJob: string, shadowJob: string, rows: number, runs: number): Promise<Measured> {
  const samples: Sample[] = [];
  const pairs: Array<{ plain_cpu_s: number; shadow_cpu_s: number; challenger_s: number }> = [];
  for (let i = 0; i < runs; i++) {
    const plain = await timeNode([...CLI_ARGS, 'run', plainJob, '--date', dateOf(0), '--json'], {}, deadline(limitFor(rows), 'nightscore run'));
    const shadow = await timeNode([...CLI_ARGS, 'run', shadowJob, '--date', dateOf(0), '--json'], {}, deadline(limitFor(rows), 'nightscore run'));
    const manifest = JSON.parse(shadow.stdout) as { status: string; rows: { read: number }; duration_ms: number | null; shadow?: { challengers: Array<{ status: string; seconds: number }> } };
    const challenger = manifest.shadow?.challengers[0];
    check(manifest.status === 'succeeded' && manifest.rows.read === rows && challenger?.status === 'compared', `run of ${shadowJob}: status ${manifest.status}, read ${manifest.rows.read} of ${rows} rows, challenger ${challenger?.status ?? 'absent'}`);
    pairs.push({ plain_cpu_s: plain.cpuSeconds, shadow_cpu_s: shadow.cpuSeconds, challenger_s: challenger!.seconds });
    samples.push({ seconds: shadow.seconds, peakRssMb: shadow.peakRssMb, runSeconds: manifest.duration_ms === null ? null : manifest.duration_ms / 1000 });
  }
  return { samples, detail: { pairs } };
}

export interface QueueCaseOptions {
  workers: number;
  redisUrl: string;
  concurrency?: number;
  /** A job over a few small chunks, run once first so every worker thread has loaded the model. */
  warmJob: string;
  outRoot: string;
}

/**
 * `nightscore run --queue --wait` on `workers` fresh worker processes, `runs` times, timed
 * from enqueued to finished as the queue records them (the command's own wall time, start-up
 * included, is kept beside it). Each run's event-loop delay
 * p99 comes from the workers' /metrics: prom-client's nodejs_eventloop_lag_p99_seconds
 * covers the time since the previous scrape, so a scrape just before the run starts the window.
 */
export async function measureQueue(jobFile: string, jobName: string, rows: number, runs: number, o: QueueCaseOptions): Promise<Measured> {
  const group = await startWorkers(o.workers, o.redisUrl, o.concurrency);
  try {
    await queuedRun(group, o.warmJob, dateOf(0), -1, limitFor(0));
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      await Promise.all(group.workers.map((w) => w.metrics()));
      const status = await queuedRun(group, jobFile, dateOf(i + 1), rows, limitFor(rows));
      const after = await Promise.all(group.workers.map((w) => w.metrics()));
      samples.push({ ...status, eldP99Ms: after.map((m) => (m.nightscore_process_nodejs_eventloop_lag_p99_seconds ?? NaN) * 1000) });
      await rm(path.join(o.outRoot, jobName, `dt=${dateOf(i + 1)}`), { recursive: true, force: true });
    }
    return { samples, workerPeakRssMb: group.workers.map((w) => w.peakRssMb()), detail: { workers: o.workers, concurrency: o.concurrency ?? 'default (CPUs)' } };
  } finally {
    await group.stop();
  }
}

async function queuedRun(group: WorkerGroup, jobFile: string, date: string, rows: number, limitMs: number): Promise<Sample> {
  const abort = Promise.race([group.died, deadline(limitMs, `queued run of ${path.basename(jobFile)}`)]);
  const t = await timeNode([...CLI_ARGS, 'run', jobFile, '--date', date, '--queue', '--wait', '--json'], group.env, abort);
  const s = JSON.parse(t.stdout) as { state: string; rows?: { read: number }; duration_ms?: number | null; enqueued_at?: string; finished_at?: string; error?: string };
  check(s.state === 'succeeded', `queued run of ${jobFile} for ${date}: ${s.state}${s.error ? `: ${s.error}` : ''}`);
  if (rows >= 0) check(s.rows?.read === rows, `queued run of ${jobFile}: read ${s.rows?.read} of ${rows} rows`);
  check(s.enqueued_at !== undefined && s.finished_at !== undefined, `queued run of ${jobFile}: the status has no queue times`);
  // The queue's own record of the run, enqueued to finished: what the workers took, without
  // the enqueuing CLI's start-up (about half a second of module loading), kept as cliSeconds.
  const seconds = (Date.parse(s.finished_at!) - Date.parse(s.enqueued_at!)) / 1000;
  return { seconds, cliSeconds: t.seconds, peakRssMb: t.peakRssMb, runSeconds: s.duration_ms == null ? null : s.duration_ms / 1000 };
}

/**
 * Per-chunk queue overhead: pairs of queued runs through one warm worker, one of a single
 * empty file and one of `files` empty files (each its own chunk); the difference in wall
 * time, over the extra chunks, is what a chunk costs with nothing to score.
 */
export async function measureChunkOverhead(oneJob: string, manyJob: string, manyDir: string, chunkBytes: number, runs: number, o: QueueCaseOptions): Promise<Measured> {
  const files = planChunks((await listInputs(`${manyDir}/`, 'csv', 'bench')).objects, { chunkBytes, split: true }).length;
  const group = await startWorkers(1, o.redisUrl, o.concurrency);
  try {
    await queuedRun(group, o.warmJob, dateOf(0), -1, limitFor(0));
    const samples: Sample[] = [];
    const pairs: Array<{ one_chunk_s: number; many_chunks_s: number }> = [];
    for (let i = 0; i < runs; i++) {
      const one = await queuedRun(group, oneJob, dateOf(i + 1), 0, limitFor(0));
      const many = await queuedRun(group, manyJob, dateOf(i + 1), 0, limitFor(0) + files * 1000);
      pairs.push({ one_chunk_s: one.seconds, many_chunks_s: many.seconds });
      samples.push({ seconds: (many.seconds - one.seconds) / (files - 1), peakRssMb: many.peakRssMb });
    }
    return { samples, workerPeakRssMb: group.workers.map((w) => w.peakRssMb()), detail: { chunks: files, pairs, concurrency: o.concurrency ?? 'default (CPUs)' } };
  } finally {
    await group.stop();
  }
}

/** onnxruntime alone on the same rows in memory (bench/ort-alone.ts), `threads` sessions in parallel. */
export async function measureOrtAlone(model: string, output: string, rows: number, seed: number, threads: number, runs: number): Promise<Measured> {
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    const args = [...TSX, BENCH('ort-alone.ts'), '--model', model, '--output', output, '--rows', String(rows), '--seed', String(seed), '--threads', String(threads)];
    const t = await timeNode(args, {}, deadline(limitFor(rows), 'onnxruntime alone'));
    const r = JSON.parse(t.stdout) as { seconds: number };
    samples.push({ seconds: r.seconds, peakRssMb: t.peakRssMb });
  }
  return { samples, detail: { threads, note: 'peak RSS includes the whole matrix in memory' } };
}

/** Parse alone (bench/parse-alone.ts): the chunk path with no model, on one thread. */
export async function measureParseAlone(format: 'csv' | 'parquet', dir: string, rows: number, chunkBytes: number, scratch: string, runs: number): Promise<Measured> {
  const samples: Sample[] = [];
  let chunks = 0;
  for (let i = 0; i < runs; i++) {
    const args = [...TSX, BENCH('parse-alone.ts'), '--format', format, '--dir', dir, '--scratch', scratch, '--chunk-bytes', String(chunkBytes)];
    const t = await timeNode(args, {}, deadline(limitFor(rows), 'parse alone'));
    const r = JSON.parse(t.stdout) as { seconds: number; rows: number; chunks: number };
    check(r.rows === rows, `parse alone read ${r.rows} of ${rows} rows`);
    chunks = r.chunks;
    samples.push({ seconds: r.seconds, peakRssMb: t.peakRssMb });
  }
  return { samples, detail: { chunks, threads: 1 } };
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/**
 * The page of runs by date (bench/ui-page.ts), `jobs` × `dates` succeeded dates, `runs`
 * times: a sample is the median warm page; the cold first page and a page whose cache has
 * lapsed go with it.
 */
export async function measureUiPage(storage: 'file' | 's3', jobs: number, dates: number, runs: number, redisUrl: string): Promise<Measured> {
  const samples: Sample[] = [];
  const pages: Array<{ cold: number; revalidate: number }> = [];
  for (let i = 0; i < runs; i++) {
    const args = [...TSX, BENCH('ui-page.ts'), '--storage', storage, '--jobs', String(jobs), '--dates', String(dates), '--redis', redisUrl];
    const t = await timeNode(args, {}, deadline(300_000, 'the UI page'));
    const r = JSON.parse(t.stdout) as { cells: number; warm: number; cold: number; revalidate: number };
    check(r.cells === jobs * dates, `the page showed ${r.cells} of ${jobs * dates} dates`);
    samples.push({ seconds: r.warm, peakRssMb: t.peakRssMb });
    pages.push({ cold: r.cold, revalidate: r.revalidate });
  }
  return { samples, detail: { pages, note: 'peak RSS includes the S3 server (s3rver) in the same process for ui/s3' } };
}

