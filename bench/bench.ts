/**
 * npm run bench: end-to-end throughput and peak memory of `nightscore run` (the real CLI,
 * dist/cli.js) on generated days of the example churn job, at two input sizes so that
 * flat memory shows as equal peaks. Medians over several runs; a table on stdout and
 * JSON in .bench/results.json.
 *
 *   npm run bench -- --rows 1000000 --runs 3
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeDemoDay } from '../src/demo/demo.js';
import { loadJob } from '../src/job/load.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.join(repo, '.bench');
const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '3' } } });
const rows = Number(values.rows);
const runs = Number(values.runs);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

interface Sample {
  seconds: number;
  maxRssMb: number;
}

function runOnce(jobFile: string, date: string): Sample {
  // GNU time reports the child's peak RSS; the CLI runs exactly as a user runs it.
  const res = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, path.join(repo, 'dist/cli.js'), 'run', jobFile, '--date', date, '--json'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, NIGHTSCORE_LOG_LEVEL: 'warn', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  if (res.status !== 0) throw new Error(`nightscore run failed (${res.status}): ${res.stderr}`);
  const [seconds, kb] = res.stderr.trim().split('\n').pop()!.split(' ').map(Number) as [number, number];
  const manifest = JSON.parse(res.stdout) as { rows: { read: number } };
  if (manifest.rows.read !== sizeOf(date)) throw new Error(`expected ${sizeOf(date)} rows, read ${manifest.rows.read}`);
  return { seconds, maxRssMb: kb / 1024 };
}

const sizes = [Math.max(1, Math.floor(rows / 4)), rows];
const dates = ['2030-01-01', '2030-01-02'];
const sizeOf = (date: string) => sizes[dates.indexOf(date)] as number;

execFileSync('npm', ['run', '-s', 'build'], { cwd: repo, stdio: 'inherit' });
mkdirSync(path.join(work, 'jobs'), { recursive: true });
const jobFile = path.join(work, 'jobs', 'bench.yaml');
writeFileSync(
  jobFile,
  [
    'name: bench-churn',
    'input: { uri: "../in/dt={date}/", format: csv, key: [customer_id] }',
    `model: { path: "${path.join(repo, 'models/churn/model.onnx')}" }`,
    'output: { uri: "../out/dt={date}/", format: csv }',
    'chunk: { rows: 50000, bytes: 16000000 }',
    '',
  ].join('\n'),
);
const job = await loadJob(jobFile);

const results = [];
for (const [i, date] of dates.entries()) {
  const n = sizes[i] as number;
  process.stderr.write(`generating ${n.toLocaleString('en-US')} rows…\n`);
  await writeDemoDay(job, date, { rows: n, files: 4, seed: 11 });
  const samples = Array.from({ length: runs }, () => runOnce(jobFile, date));
  results.push({
    case: 'csv + logistic (example model), nightscore run in process',
    rows: n,
    runs,
    median_seconds: median(samples.map((s) => s.seconds)),
    median_rows_per_s: Math.round(n / median(samples.map((s) => s.seconds))),
    median_peak_rss_mb: Math.round(median(samples.map((s) => s.maxRssMb))),
    samples,
  });
}

const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version };
writeFileSync(path.join(work, 'results.json'), `${JSON.stringify({ machine, results }, null, 2)}\n`);
console.log(`machine: ${machine.cpus} × ${machine.cpu}, ${machine.memory_gb} GB, node ${machine.node}`);
console.log('| case | rows | median s | median rows/s | median peak RSS |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(`| ${r.case} | ${r.rows.toLocaleString('en-US')} | ${r.median_seconds.toFixed(2)} | ${r.median_rows_per_s.toLocaleString('en-US')} | ${r.median_peak_rss_mb} MB |`);
}
