import path from 'node:path';
import type { Logger } from 'pino';
import { optionInteger } from '../env.js';
import type { Settings } from '../settings.js';
import { exitCodeFor, NightscoreError, toNightscoreError } from '../errors.js';
import { alertPayload, outcomesOf, sendAlert } from '../observe/alerts.js';
import { writeDemoDay } from '../demo/demo.js';
import { openLocation } from '../storage/open.js';
import { loadJob, locateRun, modelLocation, registryOf, type JobDefinition } from '../job/load.js';
import { daysEnding, yesterday } from '../job/dates.js';
import { isModelRef, parseModelRef } from '../registry/ref.js';
import { Registry, registryRoot } from '../registry/registry.js';
import { waitForInput, type WaitState } from '../run/wait.js';
import { parseLogicalDate } from '../job/template.js';
import { formatSummary, terminalProgress } from '../observe/progress.js';
import { listInputs, type SkippedObject } from '../run/plan.js';
import { checkOutputApart } from '../run/begin.js';
import { prepareJob, type PreparedJob } from '../run/bind.js';
import { checkInputColumns } from '../run/inspect.js';
import { featureColumns } from '../model/features.js';
import { runJob, type RunJobOptions } from '../run/run.js';
import { planRetry } from '../run/retry.js';
import { PACKAGE_ROOT } from '../version.js';

/** What every command gets from the CLI: a logger, and whether a person is watching. */
export interface CommandContext {
  log: Logger;
  interactive: boolean;
  /** Every setting, checked once as the process started (cli.ts). */
  settings: Settings;
}

/** Each scoring thread costs a V8 heap and a model session: past this, threads only cost memory. */
const MAX_THREADS = 256;


/**
 * nightscore retry: a failed date's failed chunks only, when it still plans as it did; else
 * the whole date, saying why.
 */
export async function retryCommand(ctx: CommandContext, jobFile: string, opts: { date: string; json?: boolean; threads?: string }): Promise<number> {
  const date = parseLogicalDate(opts.date);
  const threads = threadsOption(opts.threads);
  const job = await loadJob(jobFile);
  const retry = await planRetry(job, date);
  if (retry.kind === 'nothing') {
    process.stderr.write(`nightscore: ${retry.reason}\n`);
    return 0;
  }
  if (retry.kind === 'whole') process.stderr.write(`nightscore: scoring the whole date: ${retry.reason}\n`);
  else {
    for (const r of retry.rescored) process.stderr.write(`nightscore: ${r.reason}\n`);
    process.stderr.write(`nightscore: retrying chunk${retry.todo.length === 1 ? '' : 's'} ${retry.todo.join(', ')} of ${retry.planned.chunks.length}; keeping the parts of the ${retry.completed.length} that succeeded\n`);
  }
  // The job and model as retry planned with them (the alias as the date was planned, with
  // --model-as-of): the run scores what was compared.
  return scoreDate(ctx, retry.prepared, date, { ...opts, threads, ...(retry.kind === 'chunks' ? { retry: { planned: retry.planned, completed: retry.completed } } : {}) });
}

/** nightscore run: score one date in this process. */
export async function runCommand(ctx: CommandContext, jobFile: string, opts: { date: string; json?: boolean; threads?: string; waitForInput?: boolean }): Promise<number> {
  const date = parseLogicalDate(opts.date);
  const threads = threadsOption(opts.threads);
  const job = await loadJob(jobFile);
  if (opts.waitForInput && !job.input.wait) {
    throw new NightscoreError('BAD_OPTION', `--wait-for-input waits as input.wait says, and ${job.file} sets no input.wait`, {
      hint: 'Add input: { wait: { timeout: "6h", poll: "5m" } } to the job file.',
    });
  }
  return scoreDate(ctx, await prepareJob(job), date, { ...opts, threads });
}

function threadsOption(raw: string | undefined): number | undefined {
  return optionInteger('--threads', raw, { min: 1, max: MAX_THREADS, unit: 'threads' });
}

/** Scores one date of a prepared job in this process (run, retry). */
async function scoreDate(ctx: CommandContext, prepared: PreparedJob, date: string, opts: { json?: boolean; threads?: number; waitForInput?: boolean; retry?: RunJobOptions['retry'] }): Promise<number> {
  const { log, interactive } = ctx;
  const { job } = prepared;
  const { threads } = opts;
  const progress = interactive && !opts.json ? terminalProgress(process.stderr) : undefined;
  log.info({ job: job.name, date, model_sha256: prepared.model.sha256 }, 'run started');
  // Ctrl-C or SIGTERM stops the run cleanly: a failed manifest, the lock released, no
  // _SUCCESS. A second one exits at once (the lock is then taken over by the next run on
  // this host, whose pid check sees this process gone).
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(signalExitCode(signal));
    process.stderr.write(`${interactive ? '\r\x1b[2K' : ''}nightscore: ${signal}: stopping the run, releasing its lock (again to exit at once)\n`);
    stop.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A run that fails before it has a manifest (its input never came) is alerted too.
  const alertError = async (err: unknown): Promise<never> => {
    const e = toNightscoreError(err);
    const payload = alertPayload(job, date, { error: e });
    await sendAlert(job, payload, outcomesOf(payload, e.kind, job), log);
    throw err;
  };
  if (opts.waitForInput) {
    await waitWithCountdown(ctx, job, date, stop.signal).catch((err: unknown) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      return alertError(err);
    });
  }
  const manifest = await runJob(prepared, date, { onEvent: progress?.onEvent, threads, signal: stop.signal, retry: opts.retry })
    .finally(() => {
      progress?.clear();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    })
    .catch(alertError);
  const payload = alertPayload(job, date, { manifest });
  await sendAlert(job, payload, outcomesOf(payload, manifest.error?.kind, job), log);
  if (manifest.skipped.length && !opts.json) process.stderr.write(`${formatSkipped(manifest.skipped)}\n`);
  // On a terminal the error is told once, by the `nightscore: CODE` line below (as cli.ts does
  // for a thrown one); piped, the log line carries it for whatever reads the JSON.
  const logged = interactive && !opts.json ? {} : { error: manifest.error };
  log[manifest.error ? 'error' : 'info']({ job: job.name, date, rows: manifest.rows, duration_ms: manifest.duration_ms, ...logged }, `run ${manifest.status}`);
  process.stdout.write(opts.json ? `${JSON.stringify(manifest, null, 2)}\n` : `${formatSummary(manifest)}\n`);
  if (!manifest.error) return 0;
  if (!opts.json) process.stderr.write(`nightscore: ${manifest.error.code}: ${manifest.error.message}${manifest.error.hint ? `\n  hint: ${manifest.error.hint}` : ''}\n`);
  if (stop.signal.aborted) return signalExitCode(stop.signal.reason as NodeJS.Signals);
  return exitCodeFor(manifest.error.kind);
}

/** Waits for late input: a countdown line on a terminal, a log line per look otherwise. */
async function waitWithCountdown(ctx: CommandContext, job: JobDefinition, date: string, signal: AbortSignal): Promise<void> {
  let state: WaitState | undefined;
  const line = () => {
    if (!state) return;
    const s = (t: number) => `${Math.max(0, Math.round((t - Date.now()) / 1000))} s`;
    process.stderr.write(`\r\x1b[2Kwaiting for input: ${state.reason}; looking again in ${s(state.next)}, giving up in ${s(state.deadline)}`);
  };
  const timer = ctx.interactive ? setInterval(line, 1000) : undefined;
  try {
    await waitForInput(job, date, job.input.wait!, {
      signal,
      onWait: (s) => {
        state = s;
        if (ctx.interactive) line();
        else ctx.log.info({ job: job.name, date, reason: s.reason, next_look: new Date(s.next).toISOString(), gives_up: new Date(s.deadline).toISOString() }, 'input not there yet: waiting');
      },
    });
  } finally {
    if (timer) clearInterval(timer);
    if (ctx.interactive && state) process.stderr.write('\r\x1b[2K');
  }
}

/** The shell's exit code for a process stopped by a signal: 130 for SIGINT, 143 for SIGTERM. */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (signal === 'SIGINT' ? 2 : 15);
}

/** The objects under the input prefix a run did not read, for the terminal (the manifest lists them all). */
export function formatSkipped(skipped: SkippedObject[]): string {
  const shown = skipped.slice(0, 10).map((s) => `  ${s.uri} (${s.reason})`);
  if (skipped.length > shown.length) shown.push(`  … and ${skipped.length - shown.length} more (see the manifest's "skipped")`);
  return `skipped  ${skipped.length} object(s) under the input that are not read:\n${shown.join('\n')}`;
}

/** nightscore validate: check the job file, the model signature and (with a date) the input. */
export async function validateCommand(jobFile: string, opts: { date?: string }): Promise<number> {
  const job = await loadJob(jobFile);
  const prepared = await prepareJob(job);
  const lines = [
    `job      ${job.name} (${job.file}): valid`,
    `model    ${prepared.spec.location}  sha256 ${prepared.model.sha256.slice(0, 16)}…`,
    ...prepared.scorer.inputs.map((i) => `         input "${i.name}" ${i.type} [N${i.rank === 2 ? `, ${i.columns.length}` : ''}]; features ${i.columns.join(', ')}`),
    `         columns ${prepared.scorer.outputs.flatMap((o) => (o.names.length > 0 ? o.names : [`${o.output}_… (its width is learned from the first rows of each date)`])).join(', ')}`,
  ];
  // Whether output and input overlap can depend on the date; without one, check yesterday's.
  const date = opts.date ? parseLogicalDate(opts.date) : yesterday();
  const where = locateRun(job, date);
  await checkOutputApart(job, where, date);
  if (opts.date) {
    const { objects, skipped } = await listInputs(where.inputUri, job.input.format, date);
    await checkInputColumns(objects, job.input.format, job.input.csv, featureColumns(prepared.scorer.inputs, []), job.input.key, prepared.spec.binding.job_key);
    lines.push(`input    ${date}: ${objects.length} object(s), ${objects.reduce((s, i) => s + i.bytes, 0)} bytes; every feature and key column is there`);
    if (skipped.length) lines.push(formatSkipped(skipped));
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** nightscore demo: write a demo day for the example job and score it. */
export interface DemoOptions {
  date: string;
  rows: string;
  files: string;
  /** Another job to write demo input for (one with the example job's columns): compose seeds S3 this way. */
  job?: string;
  /** Days of input, ending at `date`. @defaultValue 1 */
  days?: string;
  /** Write the input and stop: a queue's workers (a backfill) score it. */
  inputOnly?: boolean;
  /** For a job naming models:/name@alias whose alias is unset: register the shipped example model there. */
  registerModel?: boolean;
}

/**
 * nightscore demo: a day (or days) of realistic input for the example job, scored in this
 * process. With --job and --input-only it seeds a deployment's object storage instead,
 * writing only dates that have no input yet; with --register-model, a job naming its model
 * models:/name@alias gets the example model registered under that alias when the alias is
 * not set yet, so a fresh stack has everything it needs to score.
 */
export async function demoCommand(ctx: CommandContext, opts: DemoOptions): Promise<number> {
  const date = parseLogicalDate(opts.date);
  const rows = optionInteger('--rows', opts.rows, { min: 1, max: 100_000_000, unit: 'rows' })!;
  const files = optionInteger('--files', opts.files, { min: 1, max: 1_000, unit: 'files' })!;
  const days = optionInteger('--days', opts.days, { min: 1, max: 366, unit: 'days' }) ?? 1;
  const jobFile = opts.job ?? path.join(PACKAGE_ROOT, 'jobs', 'churn-daily.yaml');
  const job = await loadJob(jobFile);
  if (opts.registerModel) await registerExampleModel(job);
  const dates = daysEnding(date, days);
  let written = 0;
  for (const d of dates) {
    // Another job's input may be real data, or a date the workers are scoring: never replaced.
    if (opts.job !== undefined && (await hasInput(job, d))) {
      process.stderr.write(`${d}: input already there (${locateRun(job, d).inputUri}); left as it is\n`);
      continue;
    }
    process.stderr.write(`writing a demo day of ${rows.toLocaleString('en-US')} customers for ${d}…\n`);
    process.stderr.write(`input ready at ${await writeDemoDay(job, d, { rows, files, seed: 7 })}\n`);
    written++;
  }
  const range = dates.length === 1 ? `--date ${date}` : `--from ${dates[0]} --to ${date}`;
  if (opts.inputOnly) {
    process.stdout.write(`demo input written for ${written} of ${dates.length} date(s); score them with: nightscore ${dates.length === 1 ? 'run' : 'backfill'} ${jobFile} ${range}${dates.length === 1 ? ' [--queue]' : ''}\n`);
    return 0;
  }
  let code = 0;
  for (const d of dates) {
    process.stderr.write(`scoring: nightscore run ${path.relative(process.cwd(), jobFile)} --date ${d}\n\n`);
    code = Math.max(code, await runCommand(ctx, jobFile, { date: d }));
    const { outputUri } = locateRun(job, d);
    process.stdout.write(`\npredictions: ${outputUri}part-*.csv\nrun record:  ${outputUri}_manifest.json\n`);
  }
  return code;
}

async function hasInput(job: JobDefinition, date: string): Promise<boolean> {
  const { storage, key } = openLocation(locateRun(job, date).inputUri);
  return (await storage.list(key)).length > 0;
}

/** For a job whose model is models:/name@alias with the alias unset: registers the shipped example model there. */
async function registerExampleModel(job: JobDefinition): Promise<void> {
  const written = modelLocation(job);
  if (!isModelRef(written)) return;
  const ref = parseModelRef(written);
  if (ref.kind !== 'alias') return;
  const registry = new Registry(registryRoot(registryOf(job)));
  if ((await registry.aliases(ref.name)).aliases[ref.alias] !== undefined) return;
  const record = await registry.register(ref.name, path.join(PACKAGE_ROOT, 'models', 'churn', 'model.onnx'), { alias: ref.alias, reason: 'nightscore demo: the example model', description: 'the shipped example churn model' });
  process.stderr.write(`registered the example model as ${ref.name}/${record.version} (${ref.name}@${ref.alias}) in ${registry.root}\n`);
}

