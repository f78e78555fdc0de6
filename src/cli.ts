#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitCodeFor, toNightscoreError, usageError } from './errors.js';
import { writeDemoDay } from './demo/demo.js';
import { loadJob, locateRun } from './job/load.js';
import { parseLogicalDate } from './job/template.js';
import { createLogger } from './observe/log.js';
import { formatSummary, terminalProgress } from './observe/progress.js';
import { listInputs } from './run/plan.js';
import { prepareJob, runJob } from './run/run.js';
import { VERSION } from './version.js';

const interactive = Boolean(process.stderr.isTTY);
const log = createLogger({ interactive });
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Yesterday in UTC: the logical date a nightly run scores by default. */
function yesterday(): string {
  return new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
}

async function runCommand(jobFile: string, opts: { date: string; json?: boolean }): Promise<number> {
  const date = parseLogicalDate(opts.date);
  const job = await loadJob(jobFile);
  const prepared = await prepareJob(job);
  const progress = interactive && !opts.json ? terminalProgress(process.stderr) : undefined;
  log.info({ job: job.name, date, model_sha256: prepared.model.sha256 }, 'run started');
  const manifest = await runJob(prepared, date, { onEvent: progress?.onEvent }).finally(() => progress?.clear());
  log[manifest.error ? 'error' : 'info']({ job: job.name, date, rows: manifest.rows, duration_ms: manifest.duration_ms, error: manifest.error }, `run ${manifest.status}`);
  process.stdout.write(opts.json ? `${JSON.stringify(manifest, null, 2)}\n` : `${formatSummary(manifest)}\n`);
  if (!manifest.error) return 0;
  if (!opts.json) process.stderr.write(`nightscore: ${manifest.error.code}: ${manifest.error.message}${manifest.error.hint ? `\n  hint: ${manifest.error.hint}` : ''}\n`);
  return exitCodeFor(manifest.error.kind);
}

async function validateCommand(jobFile: string, opts: { date?: string }): Promise<number> {
  const job = await loadJob(jobFile);
  const prepared = await prepareJob(job);
  const lines = [
    `job      ${job.name} (${job.file}): valid`,
    `model    ${prepared.model.path}  sha256 ${prepared.model.sha256.slice(0, 16)}…`,
    `         input "${prepared.scorer.inputName}" float32 [N, ${prepared.scorer.features.length}]; features ${prepared.scorer.features.join(', ')}`,
    `         columns ${prepared.scorer.outputs.flatMap((o) => o.names).join(', ')}`,
  ];
  if (opts.date) {
    const date = parseLogicalDate(opts.date);
    const inputs = await listInputs(locateRun(job, date).inputUri, job.input.format, date);
    lines.push(`input    ${date}: ${inputs.length} object(s), ${inputs.reduce((s, i) => s + i.bytes, 0)} bytes`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

async function demoCommand(opts: { date: string; rows: string; files: string }): Promise<number> {
  const date = parseLogicalDate(opts.date);
  const rows = Number(opts.rows);
  const files = Number(opts.files);
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(files) || files < 1) {
    throw usageError('BAD_OPTION', '--rows and --files take positive whole numbers');
  }
  const jobFile = path.join(REPO, 'jobs', 'churn-daily.yaml');
  const job = await loadJob(jobFile);
  if (job.input.uri.startsWith('s3://')) throw usageError('BAD_OPTION', 'the demo writes its input locally; the example job must use local paths');
  process.stderr.write(`writing a demo day of ${rows.toLocaleString('en-US')} customers for ${date}…\n`);
  const input = await writeDemoDay(job, date, { rows, files, seed: 7 });
  process.stderr.write(`input ready at ${input}\nscoring: nightscore run ${path.relative(process.cwd(), jobFile)} --date ${date}\n\n`);
  const code = await runCommand(jobFile, { date });
  const { outputUri } = locateRun(job, date);
  process.stdout.write(`\npredictions: ${outputUri}part-*.csv\nrun record:  ${outputUri}_manifest.json\n`);
  return code;
}

function buildProgram(): Command {
  const program = new Command('nightscore')
    .description('Batch-score a day of CSV data with an ONNX model, from local files or S3.')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run nightscore --help for usage)');
  const dateOption = new Option('--date <YYYY-MM-DD>', 'logical date to score').makeOptionMandatory();
  program
    .command('run')
    .description('score one logical date in this process (no Redis needed)')
    .argument('<job.yaml>', 'job definition')
    .addOption(dateOption)
    .option('--json', 'print the run manifest as JSON instead of the summary')
    .action(async (job: string, opts: { date: string; json?: boolean }) => {
      process.exitCode = await runCommand(job, opts);
    });
  program
    .command('validate')
    .description('check a job file and its model signature, and with --date that the input exists; scores nothing')
    .argument('<job.yaml>', 'job definition')
    .option('--date <YYYY-MM-DD>', 'also check that the input for this date exists')
    .action(async (job: string, opts: { date?: string }) => {
      process.exitCode = await validateCommand(job, opts);
    });
  program
    .command('demo')
    .description('generate a day of input for the example job (jobs/churn-daily.yaml) and score it')
    .option('--date <YYYY-MM-DD>', 'logical date', yesterday())
    .option('--rows <n>', 'customers to generate', '200000')
    .option('--files <n>', 'input files', '2')
    .action(async (opts: { date: string; rows: string; files: string }) => {
      process.exitCode = await demoCommand(opts);
    });
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version "errors" are successes; every other parse error is bad usage.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const error = toNightscoreError(err);
    log.error({ err: error.toJSON() }, error.message);
    process.stderr.write(`${interactive ? '\r\x1b[2K' : ''}nightscore: ${error.describe()}\n`);
    if (error.code === 'INTERNAL' && err instanceof Error && err.stack) log.debug({ stack: err.stack }, 'stack');
    process.exitCode = error.exitCode;
  }
}

void main(process.argv);
