#!/usr/bin/env node
/** Argument parsing only: each command lives in src/commands. */
import { Command, CommanderError, Option } from 'commander';
import { demoCommand, retryCommand, runCommand, validateCommand, type CommandContext, type DemoOptions } from './commands/local.js';
import { yesterday } from './job/dates.js';
import { toNightscoreError, type NightscoreError } from './errors.js';
import { createLogger } from './observe/log.js';
import { secretsFromEnv, useSecrets } from './redact.js';
import { readEnvironment, readSettings, useEnvironment, type Settings } from './settings.js';
import { VERSION } from './version.js';
import type { PromoteOptions } from './commands/promote.js';
import type { EvaluateCommandOptions } from './commands/evaluate.js';

const interactive = Boolean(process.stderr.isTTY);
// The secrets first: the error of a bad setting may print one (a Redis URL with its password).
useSecrets(secretsFromEnv(process.env));
// The environment is read once, here, and every setting checked before any command does any
// work (see the preAction hook): a bad one is BAD_ENV, exit 2, naming it. --help and --version
// run whatever they say. The commands take the settings from their context; storage, the model
// cache, locks, the registry and alerts take them from useEnvironment.
const settings = checkedSettings();
// The logger reports that very error, so it starts at the default level when the level is bad.
const ctx: CommandContext = {
  log: createLogger({ interactive, level: settings instanceof Error ? undefined : settings.NIGHTSCORE_LOG_LEVEL }),
  interactive,
  // No command runs when a setting is bad (the preAction hook): the defaults only fill the type.
  settings: settings instanceof Error ? readSettings({}) : settings,
};

function checkedSettings(): Settings | NightscoreError {
  try {
    const environment = readEnvironment(process.env);
    useEnvironment(environment);
    return environment.settings;
  } catch (err) {
    return toNightscoreError(err);
  }
}

// The queue commands load BullMQ, ioredis and prom-client (half a second of start-up);
// `run` on local files, the embedded default, does without them.
const queue = () => import('./commands/queue.js');
const models = () => import('./commands/model.js');
const ui = () => import('./commands/ui.js');
const profiles = () => import('./commands/profile.js');
const drifts = () => import('./commands/drift.js');
const evaluations = () => import('./commands/evaluate.js');
const promotions = () => import('./commands/promote.js');
const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Runs a command and records its exit code. */
const exit = (fn: () => Promise<number>) => async () => {
  process.exitCode = await fn();
};

function buildProgram(): Command {
  const program = new Command('nightscore')
    .description('Batch-score days of CSV data with an ONNX model, locally or from S3, in process or on a BullMQ queue.')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run nightscore --help for usage)')
    .hook('preAction', () => {
      if (settings instanceof Error) throw settings;
    });

  program
    .command('run')
    .description('score one logical date: in this process (no Redis needed), or with --queue on the workers')
    .argument('<job.yaml>', 'job definition')
    .addOption(new Option('--date <YYYY-MM-DD>', 'logical date to score').makeOptionMandatory())
    .option('--json', 'print the run manifest (or, with --queue --wait, the status) as JSON')
    .option('--threads <n>', 'in process: chunks scored at once on worker threads (default: the CPUs)')
    .option('--queue', 'enqueue the run for the workers instead of scoring here')
    .option('--wait', 'with --queue: wait until the run finishes')
    .option('--force', 'with --queue: run the date again even if it succeeded (a failed date is always run again)')
    .option('--wait-for-input', 'in process: wait for late input as input.wait says, with a countdown')
    .action((job: string, opts: { date: string; json?: boolean; queue?: boolean; wait?: boolean; threads?: string; force?: boolean; waitForInput?: boolean }) =>
      exit(async () => (opts.queue ? (await queue()).enqueueCommand(ctx, job, opts) : runCommand(ctx, job, opts)))(),
    );
  program
    .command('retry')
    .description("score a failed date's failed chunks again, keeping the others' parts, when it still plans as it did (else the whole date)")
    .argument('<job.yaml>', 'job definition')
    .addOption(new Option('--date <YYYY-MM-DD>', 'logical date').makeOptionMandatory())
    .option('--json', 'print the run manifest as JSON')
    .option('--threads <n>', 'chunks scored at once on worker threads (default: the CPUs)')
    .action((job: string, opts: { date: string; json?: boolean; threads?: string }) => exit(() => retryCommand(ctx, job, opts))());
  program
    .command('validate')
    .description('check a job file and its model signature, and with --date that the input exists; scores nothing')
    .argument('<job.yaml>', 'job definition')
    .option('--date <YYYY-MM-DD>', 'also check that the input for this date exists')
    .action((job: string, opts: { date?: string }) => exit(() => validateCommand(job, opts))());
  program
    .command('demo')
    .description('generate a day of input for the example job (jobs/churn-daily.yaml) and score it')
    .option('--date <YYYY-MM-DD>', 'logical date (the last, with --days)', yesterday())
    .option('--rows <n>', 'customers to generate', '200000')
    .option('--files <n>', 'input files', '2')
    .option('--days <n>', 'days of input, ending at --date', '1')
    .option('--job <job.yaml>', "another job with the example's columns (a deployment's: seeds its object storage; dates with input are left alone)")
    .option('--input-only', 'write the input and stop (for the workers to score: nightscore backfill)')
    .option('--register-model', "with --job: register the example model under the job's models:/name@alias when that alias is unset")
    .action((opts: DemoOptions) => exit(() => demoCommand(ctx, opts))());
  program
    .command('worker')
    .description('consume runs and chunks from the queue until SIGTERM/SIGINT; serves /healthz, /readyz, /metrics')
    .option('--concurrency <n>', 'chunks scored at once, each in its own thread (default: number of CPUs)')
    .option('--port <port>', 'health and metrics port (default 9464, or NIGHTSCORE_HTTP_PORT; 0 picks one)')
    .option('--host <address>', 'health and metrics address (default 127.0.0.1, or NIGHTSCORE_HTTP_HOST)')
    .option('--jobs-dir <dir>', 'job files whose models /readyz checks (and, with --ui, whose dates the UI shows; default jobs)')
    .option('--ui [port]', 'also serve the read-only web UI (nightscore ui) on --host, on this port (default 8080)')
    .action((opts: { concurrency?: string; port?: string; host?: string; jobsDir?: string; ui?: string | true }) => exit(async () => (await queue()).workerCommand(ctx, opts))());
  const schedule = program.command('schedule').description('manage the cron schedules of job files');
  schedule
    .command('sync')
    .description('upsert one scheduler per job file with a schedule; remove those of this folder whose file is gone (never others without --prune)')
    .argument('[jobs-dir]', 'folder of job files', 'jobs')
    .option('--dry-run', 'say what would change, change nothing')
    .option('--prune', 'also remove schedulers of job files in other folders')
    .option('--watch', 'keep running: sync again whenever the job files change (a deployment\'s scheduler), until SIGTERM')
    .action((dir: string, opts: { dryRun?: boolean; prune?: boolean; watch?: boolean }) => exit(async () => (await queue()).scheduleSyncCommand(ctx, dir, opts))());
  schedule
    .command('list')
    .description('every schedule: job, cron, time zone, next fire, last run, paused')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => exit(async () => (await queue()).scheduleListCommand(ctx, opts))());
  schedule
    .command('pause')
    .description("stop a job's fires (its scheduler stays; resume restarts them)")
    .argument('<job>', 'job name')
    .action((job: string) => exit(async () => (await queue()).schedulePauseCommand(ctx, job, true))());
  schedule
    .command('resume')
    .description("restart a paused job's fires (missed dates are not caught up: backfill them)")
    .argument('<job>', 'job name')
    .action((job: string) => exit(async () => (await queue()).schedulePauseCommand(ctx, job, false))());
  const backfill = program
    .command('backfill')
    .description('enqueue one run per date in a range, as a backfill with an id (backfill show|cancel <id>, backfills)')
    .argument('<job.yaml>', 'job definition')
    .option('--from <YYYY-MM-DD>', 'first date (required)')
    .option('--to <YYYY-MM-DD>', "last date (required with --from; with --days, default the job's last logical date)")
    .option('--days <n>', 'instead of --from: the n dates ending at --to')
    .option('--reprocess <which>', 'missing (no _SUCCESS, never run), failed, all, or stale (succeeded, scored by another model version than this backfill would use)', 'missing')
    .option('--model-as-of <when>', 'registry alias as of: date (the end of each logical date), now, or a YYYY-MM-DD', 'now')
    .option('--max-parallel-runs <n>', 'runs of this backfill in flight at once')
    .option('--reverse', 'newest date first')
    .option('--dry-run', 'print what would be enqueued, enqueue nothing')
    .option('--wait', 'follow the backfill to its end (a progress line on a terminal); exit 1 if a date failed')
    .action((job: string, opts: { from?: string; to?: string; days?: string; reprocess: string; maxParallelRuns?: string; dryRun?: boolean; reverse?: boolean; modelAsOf?: string; wait?: boolean }) =>
      exit(async () => (await queue()).backfillCommand(ctx, job, opts))(),
    );
  backfill
    .command('show')
    .description("a backfill's dates by state, rows and ETA")
    .argument('<id>', 'backfill id (from backfill or backfills)')
    .option('--json', 'print JSON')
    .action((id: string, opts: { json?: boolean }) => exit(async () => (await queue()).backfillShowCommand(ctx, id, opts))());
  backfill
    .command('cancel')
    .description('remove the dates still queued and stop feeding; running dates finish (nothing is half-published)')
    .argument('<id>', 'backfill id')
    .action((id: string) => exit(async () => (await queue()).backfillCancelCommand(ctx, id))());
  program
    .command('backfills')
    .description('the recent backfills: id, job, dates by state')
    .argument('[list]', '(the only action)')
    .option('--json', 'print JSON')
    .action((_: string | undefined, opts: { json?: boolean }) => exit(async () => (await queue()).backfillListCommand(ctx, opts))());
  program
    .command('status')
    .description('one line per date: state, chunks, rows, duration, model, attempts; exit 1 when a date in range failed')
    .argument('[job.yaml]', 'job definition (default: every job of --jobs-dir)')
    .option('--jobs-dir <dir>', 'every job file of a folder', 'jobs')
    .option('--from <YYYY-MM-DD>', 'first date (default: a week before --to)')
    .option('--to <YYYY-MM-DD>', 'last date (default: yesterday, the last logical date)')
    .option('--watch', 'redraw every 2 s until no date in range is queued or running')
    .option('--json', 'print JSON')
    .action((job: string | undefined, opts: { from?: string; to?: string; json?: boolean; jobsDir: string; watch?: boolean }) => exit(async () => (await queue()).statusCommand(ctx, job, opts))());
  program
    .command('ui')
    .description('serve a read-only web page of runs by date, run pages, the queue and Bull Board, until SIGTERM/SIGINT (beyond loopback it needs NIGHTSCORE_UI_TOKEN)')
    .option('--jobs-dir <dir>', 'the job files whose dates it shows', 'jobs')
    .option('--port <port>', 'port (0 picks one)', '8080')
    .option('--host <address>', 'address; other than loopback, every request must carry NIGHTSCORE_UI_TOKEN', '127.0.0.1')
    .action((opts: { jobsDir: string; port: string; host: string }) => exit(async () => (await ui()).uiCommand(ctx, opts))());
  const profile = program.command('profile').description('reference profiles, which runs measure their drift against (docs/drift.md)');
  profile
    .command('build')
    .description("read reference data (training or validation) as a run of the job would, and write its profile: every column's bins and the reference's counts")
    .argument('<job.yaml | models:/name@alias>', "the job whose model and binding the profile is for; or a registered model, read with its own binding (the columns of its inputs' names), as a job with only model.uri reads it")
    .argument('<reference>', 'reference data: a CSV or Parquet file or folder, local or s3://')
    .option('-o, --output <profile.json>', 'where to write the profile, local or s3:// (default: stdout)')
    .option('--rows <n>', `scored rows the numeric bins are fitted on, at most (a fixed-seed sample)`, '1000000')
    .option('--format <csv|parquet>', "the reference's format (default: from its name, else the job's; required for a folder with models:/)")
    .option('--bins-from <profile.json>', "count on this profile's bins instead of fitting new ones (its counts then compare with runs on it)")
    .option('--registry <uri>', 'with models:/: the registry root, s3://bucket/prefix/ or a folder (default NIGHTSCORE_REGISTRY_URI)')
    .option('--segment <column>', "profile per segment of this key or feature column too (default: the job's drift.segment)")
    .action((job: string, reference: string, opts: Record<string, string | undefined>) => exit(async () => (await profiles()).profileBuildCommand(job, reference, opts))());
  program
    .command('drift')
    .description("a job's drift per date from its runs' _drift.json: overall status and the columns to look at; exit 1 when a date in range drifted")
    .argument('<job.yaml>', 'job definition')
    .option('--from <YYYY-MM-DD>', 'first date (default: a week before --to)')
    .option('--to <YYYY-MM-DD>', 'last date (default: yesterday)')
    .option('--svg <out.svg>', 'also write PSI per column over the dates as an SVG chart (the 8 columns with the highest PSI), local or s3://')
    .option('--png <out.png>', 'the same chart as PNG')
    .option('--json', 'print JSON: per date, its state and every column\'s statistic and status')
    .action((job: string, opts: { from?: string; to?: string; svg?: string; png?: string; json?: boolean }) => exit(async () => (await drifts()).driftCommand(job, opts))());
  const model = program.command('model').description('the model registry: versions, aliases and their history (NIGHTSCORE_REGISTRY_URI, or --registry)');
  const registryOptions = (c: Command) => c.option('--registry <uri>', 'registry root: s3://bucket/prefix/ or a folder (default NIGHTSCORE_REGISTRY_URI)').option('--json', 'print JSON');
  registryOptions(
    model
      .command('register')
      .description('register a model file (and its external data beside it) as the next version of <name>')
      .argument('<name>', 'model name')
      .argument('<file.onnx>', 'the model file')
      .option('--alias <alias>', 'also point this alias at the new version')
      .option('--tag <key=value>', 'a tag (repeatable)', collect)
      .option('--metric <key=value>', 'a metric to record with the version (repeatable)', collect)
      .option('--description <text>', 'what this version is')
      .option('--reason <text>', 'why, for the events log')
      .option('--check <golden.csv>', "compare with the training library's predictions first; refuse the version when they differ (recorded on it when they match)")
      .option('--tolerance <t>', 'with --check: a cell passes when |got − expected| ≤ t × (1 + |expected|) (default 1e-5)')
      .option('--job <job.yaml>', "with --check: feed the golden rows as this job's binding does")
      .option('--reference <data>', 'build the profile of this reference data (CSV or Parquet, file or folder, local or s3://) with the model, before the version is claimed, and store it with the version: its runs measure drift against it')
      .option('--reference-job <job.yaml>', "with --reference: read it with this job's binding (its model.uri is not used; default: the model's own, as profile build models:/… does)")
      .option('--reference-format <csv|parquet>', "with --reference: its format (default: from its name, else --reference-job's)"),
  ).action((name: string, file: string, opts: Record<string, never>) => exit(async () => (await models()).registerCommand(name, file, opts))());
  registryOptions(
    model
      .command('check')
      .description("score golden rows with a model and compare with the training library's predictions (expected_<column>); exit 1 naming the worst rows when they differ")
      .argument('<model>', 'a model file, or a models:/ reference')
      .argument('<golden.csv>', 'input rows and the predictions of the library the model was trained with')
      .option('--tolerance <t>', 'a cell passes when |got − expected| ≤ t × (1 + |expected|) (default 1e-5)')
      .option('--job <job.yaml>', "feed the golden rows as this job's binding does (model.features/inputs, output.columns, input.missing)"),
  ).action((ref: string, file: string, opts: Record<string, never>) => exit(async () => (await models()).checkCommand(ref, file, opts))());
  model
    .command('evaluate')
    .description("score labelled data with a model and print its metrics (scikit-learn's definitions); exit 1 when a --min or --max bound fails")
    .argument('<model>', 'a model file, or a models:/ reference')
    .argument('<data>', 'labelled data: a CSV or Parquet file or folder, local or s3://')
    .requiredOption('--label <column>', 'the column holding the truth (for a classifier, the positive class is --positive)')
    .option('--job <job.yaml>', "read the data as this job's binding does (model.features/inputs, output.columns, input.missing); its model is not used")
    .option('--format <csv|parquet>', "the data's format (default: from its name, else the job's)")
    .option('--registry <uri>', 'with models:/ and no --job: the registry root (default NIGHTSCORE_REGISTRY_URI)')
    .option('--task <classification|regression>', 'default: classification when the model writes a label or two probabilities')
    .option('--score <column>', "the prediction column compared with the label (default: the positive class's probability, or the one number)")
    .option('--positive <label>', 'the label of the positive class (default "1")')
    .option('--threshold <p>', 'a score at or above it predicts the positive class, when the model writes no label (default 0.5)')
    .option('--min <metric=value>', 'fail unless the metric is at least this (repeatable): accuracy, precision, recall, f1, auc, log_loss, rmse, mae, r2', collect)
    .option('--max <metric=value>', 'fail unless the metric is at most this (repeatable)', collect)
    .option('--register', 'with models:/: record the metrics and the verdicts on the version (model show prints them)')
    .option('--json', 'print JSON')
    .action((ref: string, data: string, opts: EvaluateCommandOptions) => exit(async () => (await evaluations()).evaluateCommand(ref, data, opts))());
  registryOptions(model.command('list').description('models, or the versions of one').argument('[name]', 'model name')).action((name: string | undefined, opts: Record<string, never>) =>
    exit(async () => (await models()).listCommand(name, opts))(),
  );
  registryOptions(model.command('show').description('what a reference resolves to: version, files, signature, aliases').argument('<ref>', 'models:/name@alias, models:/name/3, models:/name/latest (or name@alias)')).action(
    (ref: string, opts: Record<string, never>) => exit(async () => (await models()).showCommand(ref, opts))(),
  );
  registryOptions(model.command('verify').description('re-hash the stored bytes of a version against its record').argument('<ref>', 'a model reference')).action((ref: string, opts: Record<string, never>) =>
    exit(async () => (await models()).verifyCommand(ref, opts))(),
  );
  registryOptions(model.command('download').description('copy a version (and its external data) to a file, verified').argument('<ref>', 'a model reference').argument('<file>', 'where to write it')).action(
    (ref: string, file: string, opts: Record<string, never>) => exit(async () => (await models()).downloadCommand(ref, file, opts))(),
  );
  const modelProfile = model.command('profile').description('the reference profile a version\'s runs measure drift against (docs/drift.md)');
  registryOptions(modelProfile.command('attach').description('attach a profile built for the version\'s model (nightscore profile build)').argument('<ref>', 'a model reference').argument('<profile.json>', 'the profile')).action(
    (ref: string, file: string, opts: Record<string, never>) => exit(async () => (await models()).profileAttachCommand(ref, file, opts))(),
  );
  const alias = model.command('alias').description('move, delete and trace aliases');
  const moveOptions = (c: Command) => registryOptions(c.option('--reason <text>', 'why, for the history').option('--if-generation <n>', 'only if the aliases are still at this generation (see model alias history)'));
  moveOptions(alias.command('set').description('point an alias at a version (compare-and-swap: a concurrent move makes this fail with ALIAS_CONFLICT)').argument('<name>').argument('<alias>').argument('<version>')).action(
    (name: string, a: string, version: string, opts: Record<string, never>) => exit(async () => (await models()).aliasSetCommand(name, a, version, opts))(),
  );
  moveOptions(alias.command('delete').description('remove an alias').argument('<name>').argument('<alias>')).action((name: string, a: string, opts: Record<string, never>) =>
    exit(async () => (await models()).aliasDeleteCommand(name, a, opts))(),
  );
  moveOptions(
    model.command('rollback').description('move an alias back to the version its last move took it from (compare-and-swap; the history keeps both moves)').argument('<name>').argument('<alias>'),
  ).action((name: string, a: string, opts: Record<string, never>) => exit(async () => (await models()).rollbackCommand(name, a, opts))());
  model
    .command('promote')
    .description("judge the challenger by the comparisons of the job's last days (a gate file) and, when it passes, move the alias to its version (compare-and-swap); exit 0 pass, 1 fail, 3 inconclusive (nothing moves)")
    .argument('<name>', 'the model name')
    .requiredOption('--from <alias>', 'the alias of the challenger judged (the job scores models:/<name>@<alias> in its shadow list)')
    .requiredOption('--to <alias>', 'the alias to move, when the gate passes')
    .requiredOption('--gate <gate.yaml>', 'the bounds: min_days, min_rows, agreement, score_js, reject_rate_delta, drift (docs/shadow.md)')
    .requiredOption('--job <job.yaml>', 'the job whose runs compared the challenger with the model')
    .option('--date <YYYY-MM-DD>', "the window's last date (default: yesterday, the last logical date)", yesterday())
    .option('--dry-run', 'judge and print; move nothing, store nothing')
    .option('--if-generation <n>', 'move only if the aliases are still at this generation (default: as read when the gate starts)')
    .option('--registry <uri>', "the registry root (default: the job's registry, else NIGHTSCORE_REGISTRY_URI)")
    .option('--json', 'print JSON')
    .action((name: string, opts: PromoteOptions) => exit(async () => (await promotions()).promoteCommand(name, opts))());
  registryOptions(alias.command('history').description('every move of the aliases: when, from, to, who, why').argument('<name>').argument('[alias]')).action(
    (name: string, a: string | undefined, opts: Record<string, never>) => exit(async () => (await models()).aliasHistoryCommand(name, a, opts))(),
  );
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
    // On a terminal the line below is the error; the log line would say it a second time.
    if (!interactive) ctx.log.error({ err: error.toJSON() }, error.message);
    process.stderr.write(`${interactive ? '\r\x1b[2K' : ''}nightscore: ${error.describe()}\n`);
    if (error.code === 'INTERNAL' && err instanceof Error && err.stack) ctx.log.debug({ stack: err.stack }, 'stack');
    process.exitCode = error.exitCode;
  }
}

void main(process.argv);
