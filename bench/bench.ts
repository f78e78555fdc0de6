/**
 * npm run bench: a reproducible benchmark (issue #5). It generates its own data (a string key
 * and 20 numeric features, as CSV and as Parquet) and models (a 150-tree depth-4 ensemble and
 * a logistic regression), runs the real CLI (dist/cli.js) in process and through the queue on
 * 1 and 2 worker processes, and measures onnxruntime alone, parsing alone, peak RSS at 1× and
 * 4× the rows, the workers' event-loop delay and the queue's cost per chunk. Medians over
 * --runs; a markdown table on stdout, every sample in .bench/results.json.
 * In-process runs are timed as the CLI's wall time; queued runs as the queue records them,
 * enqueued to finished, with the enqueuing CLI's wall time (its start-up included) beside.
 *
 *   npm run bench                                  # 1M rows, 3 runs, every case
 *   npm run bench -- --rows 20000 --runs 1         # a quick check that everything works
 *   npm run bench -- --only queue2,ort --skip-large
 *
 * Case ids (--only matches any part of one): parse/{csv,parquet}, ort/{tree,linear}/t{1,N},
 * run/{csv,parquet}/{tree,linear}, run/csv/{tree,linear}+drift, run/csv/tree+shadow, queue{1,2}/{csv,parquet}/{tree,linear},
 * run/csv/linear@4x, queue1/csv/linear@4x, overhead/queue1/empty, ui/{file,s3}.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildProfile, measureChunkOverhead, measureDriftCost, measureInProcess, measureOrtAlone, measureParseAlone, measureQueue, measureShadowCost, measureUiPage, type Measured } from './cases.js';
import { ensureDataset, ensureEmptyFiles, FEATURES, KEY, type Dataset } from './data.js';
import { checkRedis, checkTools, REPO } from './procs.js';
import { checkTargets, formatTable, summarise, type CaseResult } from './report.js';
import { MODEL_OUTPUTS, writeJob, writeModels, type Format, type ModelKind } from './setup.js';

function fail(message: string): never {
  process.stderr.write(`\nbench failed: ${message}\n`);
  process.exit(1);
}

const { values: opt } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    only: { type: 'string' },
    'skip-large': { type: 'boolean', default: false },
    seed: { type: 'string', default: '11' },
    'chunk-mb': { type: 'string', default: '16' },
    concurrency: { type: 'string' },
    'empty-files': { type: 'string', default: '200' },
  },
});
const rows = Number(opt.rows);
const runs = Number(opt.runs);
const seed = Number(opt.seed);
const chunkBytes = Math.round(Number(opt['chunk-mb']) * 1024 * 1024);
const concurrency = opt.concurrency === undefined ? undefined : Number(opt.concurrency);
const emptyFiles = Number(opt['empty-files']);
for (const [name, v] of Object.entries({ rows, runs, seed, 'chunk-mb': chunkBytes, 'empty-files': emptyFiles - 1, ...(concurrency === undefined ? {} : { concurrency }) })) {
  if (!Number.isInteger(v) || v < 1) fail(`--${name} takes a positive whole number${name === 'empty-files' ? ' above 1' : ''}`);
}
const filters = opt.only?.split(',').map((f) => f.trim()).filter(Boolean);
const wanted = (id: string) => (!filters || filters.some((f) => id.includes(f))) && !(opt['skip-large'] && id.endsWith('@4x'));
const redisUrl = process.env.NIGHTSCORE_REDIS_URL || 'redis://127.0.0.1:6379';
const cores = cpus().length;

const root = path.join(REPO, '.bench');
const dirs = { data: path.join(root, 'data'), models: path.join(root, 'models'), jobs: path.join(root, 'jobs'), out: path.join(root, 'out') };
rmSync(dirs.out, { recursive: true, force: true });
for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });

/** Every case, in the order they run; `measure` is called only for the wanted ones. */
interface CaseSpec {
  id: string;
  title: string;
  rows: number;
  measure: () => Promise<Measured>;
}

const models = writeModels(dirs.models, seed);
const datasets = new Map<string, Promise<Dataset>>();
const dataset = (format: Format, n: number) => {
  const key = `${format}-${n}`;
  if (!datasets.has(key)) datasets.set(key, ensureDataset(dirs.data, format, n, seed));
  return datasets.get(key)!;
};
const job = async (name: string, format: Format, model: ModelKind, n: number) =>
  writeJob(dirs.jobs, { name, inputDir: (await dataset(format, n)).dir, format, model, modelPath: models[model], outRoot: dirs.out, chunkBytes });
const warmJob = async (format: Format, model: ModelKind) => {
  // Eight small objects in many small chunks, so every worker thread scores one before timing.
  const warm = await ensureDataset(dirs.data, format, 16_000, seed, 8, 2_000);
  return writeJob(dirs.jobs, { name: `warm-${format}-${model}`, inputDir: warm.dir, format, model, modelPath: models[model], outRoot: dirs.out, chunkBytes: 64 * 1024 });
};
// One scoring thread per core across the workers, as a deployment would size them (one
// worker per core, or one per machine with a thread per core): more only oversubscribes.
const queueOpts = async (workers: number, format: Format, model: ModelKind) => ({
  workers,
  redisUrl,
  concurrency: concurrency ?? Math.max(1, Math.floor(cores / workers)),
  warmJob: await warmJob(format, model),
  outRoot: dirs.out,
});

const FORMATS: Format[] = ['csv', 'parquet'];
const MODELS: ModelKind[] = ['tree', 'linear'];
const label = { csv: 'CSV', parquet: 'Parquet', tree: 'tree 150×4', linear: 'logistic' };
const specs: CaseSpec[] = [];
for (const format of FORMATS) {
  specs.push({
    id: `parse/${format}`,
    title: `parse alone, ${label[format]}, 1 thread`,
    rows,
    measure: async () => measureParseAlone(format, (await dataset(format, rows)).dir, rows, chunkBytes, dirs.out, runs),
  });
}
for (const model of MODELS) {
  for (const threads of [...new Set([1, cores])]) {
    const output = Object.keys(MODEL_OUTPUTS[model])[0]!;
    specs.push({ id: `ort/${model}/t${threads}`, title: `onnxruntime alone, ${label[model]}, ${threads} thread${threads > 1 ? 's' : ''}`, rows, measure: () => measureOrtAlone(models[model], output, rows, seed, threads, runs) });
  }
}
for (const format of FORMATS) {
  for (const model of MODELS) {
    const name = `bench-${format}-${model}-${rows}`;
    specs.push({ id: `run/${format}/${model}`, title: `run in process, ${label[format]}, ${label[model]}`, rows, measure: async () => measureInProcess(await job(name, format, model, rows), rows, runs) });
  }
}
// Drift's cost (issue #27): the in-process CSV cases without and with drift, in pairs, on a
// profile built by the CLI from a reference day of the same generator (another seed).
const referenceRows = Math.min(rows, 200_000);
for (const model of MODELS) {
  specs.push({
    id: `run/csv/${model}+drift`,
    title: `run in process, CSV, ${label[model]}, with drift`,
    rows,
    measure: async () => {
      const plain = await job(`bench-csv-${model}-${rows}`, 'csv', model, rows);
      const reference = await ensureDataset(dirs.data, 'csv', referenceRows, seed + 1000);
      const profile = await buildProfile(plain, reference.dir, path.join(dirs.out, `profile-${model}.json`));
      const drifted = writeJob(dirs.jobs, { name: `bench-csv-${model}-${rows}-drift`, inputDir: (await dataset('csv', rows)).dir, format: 'csv', model, modelPath: models[model], outRoot: dirs.out, chunkBytes, driftProfile: profile });
      return measureDriftCost(plain, drifted, rows, runs);
    },
  });
}
// A challenger's cost (issue #28): the in-process CSV tree case alone and with a copy of its
// model as a challenger, in pairs: the extra CPU against the challenger's own inference time.
specs.push({
  id: 'run/csv/tree+shadow',
  title: 'run in process, CSV, tree 150×4, with one challenger',
  rows,
  measure: async () => {
    const plain = await job(`bench-csv-tree-${rows}`, 'csv', 'tree', rows);
    const copy = path.join(dirs.models, 'tree-challenger.onnx');
    copyFileSync(models.tree, copy);
    const shadowed = writeJob(dirs.jobs, { name: `bench-csv-tree-${rows}-shadow`, inputDir: (await dataset('csv', rows)).dir, format: 'csv', model: 'tree', modelPath: models.tree, outRoot: dirs.out, chunkBytes, challenger: copy });
    return measureShadowCost(plain, shadowed, rows, runs);
  },
});
for (const workers of [1, 2]) {
  for (const format of FORMATS) {
    for (const model of MODELS) {
      const name = `bench-${format}-${model}-${rows}`;
      specs.push({
        id: `queue${workers}/${format}/${model}`,
        title: `queue, ${workers} worker${workers > 1 ? 's' : ''}, ${label[format]}, ${label[model]}`,
        rows,
        measure: async () => measureQueue(await job(name, format, model, rows), name, rows, runs, await queueOpts(workers, format, model)),
      });
    }
  }
}
const large = 4 * rows;
const largeName = `bench-csv-linear-${large}`;
specs.push(
  { id: 'run/csv/linear@4x', title: `run in process, CSV, logistic, 4× rows`, rows: large, measure: async () => measureInProcess(await job(largeName, 'csv', 'linear', large), large, runs) },
  {
    id: 'queue1/csv/linear@4x',
    title: `queue, 1 worker, CSV, logistic, 4× rows`,
    rows: large,
    measure: async () => measureQueue(await job(largeName, 'csv', 'linear', large), largeName, large, runs, await queueOpts(1, 'csv', 'linear')),
  },
  {
    id: 'overhead/queue1/empty',
    title: `queue overhead, 1 worker, ${emptyFiles} empty chunks`,
    rows: 0,
    measure: async () => {
      const [one, many] = [await ensureEmptyFiles(dirs.data, 1), await ensureEmptyFiles(dirs.data, emptyFiles)];
      // chunk.bytes of one header: each file is a chunk of its own.
      const perFile = many.bytes / emptyFiles;
      const common = { format: 'csv' as const, model: 'linear' as const, modelPath: models.linear, outRoot: dirs.out, chunkBytes: perFile, minRows: 0 };
      const oneJob = writeJob(dirs.jobs, { ...common, name: 'overhead-1', inputDir: one.dir });
      const manyJob = writeJob(dirs.jobs, { ...common, name: `overhead-${emptyFiles}`, inputDir: many.dir });
      return measureChunkOverhead(oneJob, manyJob, many.dir, perFile, runs, { ...(await queueOpts(1, 'csv', 'linear')), warmJob: oneJob });
    },
  },
);

for (const storage of ['file', 's3'] as const) {
  specs.push({
    id: `ui/${storage}`,
    title: `the page of runs by date, 10 jobs × 30 dates, ${storage === 's3' ? 'S3 (s3rver)' : 'local folders'}`,
    rows: 0,
    measure: () => measureUiPage(storage, 10, 30, runs, redisUrl),
  });
}

async function main(): Promise<void> {
  const chosen = specs.filter((s) => wanted(s.id));
  if (chosen.length === 0) throw new Error(`--only ${opt.only} matches no case; ids: ${specs.map((s) => s.id).join(', ')}`);
  checkTools();
  if (chosen.some((s) => s.id.startsWith('queue') || s.id.startsWith('overhead') || s.id.startsWith('ui/'))) await checkRedis(redisUrl);
  process.stderr.write('building dist/ (npm run build)…\n');
  execFileSync('npm', ['run', '-s', 'build'], { cwd: REPO, stdio: 'inherit' });

  const machine = {
    cpu: cpus()[0]?.model,
    cores,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    free_memory_gb_at_start: Math.round(freemem() / 2 ** 30),
    load_average_at_start: loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    kernel: release(),
  };
  const results: CaseResult[] = [];
  for (const spec of chosen) {
    process.stderr.write(`${spec.id}: ${spec.rows.toLocaleString('en-US')} rows × ${runs} run(s)…\n`);
    results.push({ id: spec.id, title: spec.title, rows: spec.rows, ...(await spec.measure()) });
  }

  const summaries = results.map(summarise);
  const targets = checkTargets(summaries, cores);
  const inputs = Object.fromEntries(await Promise.all([...datasets.entries()].map(async ([k, d]) => [k, { bytes: (await d).bytes, files: (await d).files.length }])));
  const options = { rows, runs, seed, chunk_bytes: chunkBytes, chunk_rows: 50_000, concurrency: concurrency ?? 'cores / workers', only: filters ?? null, skip_large: opt['skip-large'], features: FEATURES.length, key: KEY };
  writeFileSync(path.join(root, 'results.json'), `${JSON.stringify({ machine, options, inputs, finished_at: new Date().toISOString(), summaries, targets, results }, null, 2)}\n`);
  console.log(`machine: ${machine.cores} × ${machine.cpu}, ${machine.memory_gb} GB, node ${machine.node}; load ${machine.load_average_at_start.join(' ')} at start`);
  console.log(`medians of ${runs} run(s); chunk.bytes ${(chunkBytes / 2 ** 20).toFixed(0)} MiB, chunk.rows 50,000\n`);
  console.log(formatTable(summaries, targets));
  console.log(`\nevery sample: ${path.relative(process.cwd(), path.join(root, 'results.json'))}`);
}

// A failure (Redis away, a worker that died, a run that failed) ends the benchmark with its reason, not a stack.
main().catch((err: Error) => fail(err.message));
