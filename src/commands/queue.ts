import { QueueEvents } from 'bullmq';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { NightscoreError, toNightscoreError } from '../errors.js';
import { dateRange, daysEnding, logicalDateFor, yesterday } from '../job/dates.js';
import { loadJob, loadJobsDir } from '../job/load.js';
import { parseLogicalDate } from '../job/template.js';
import { optionInteger } from '../env.js';
import { connectionOptions, queueConfig } from '../queue/config.js';
import { openQueues, type Queues } from '../queue/queues.js';
import { checkRedis } from '../queue/redis-check.js';
import { listSchedules, setPaused, syncSchedules } from '../queue/schedule.js';
import { backfillProgress, findBackfill, getBackfill, listBackfills, lostBackfill, type BackfillProgress } from '../queue/backfills.js';
import { cancelBackfill, checkBackfillOptions, checkModelAsOfFits, decideBackfill, startBackfill, submitRun } from '../queue/service.js';
import { formatTable } from '../observe/table.js';
import { formatStatus, readStatus, statesLine, type DateStatus } from '../queue/status.js';
import { redactSecrets } from '../redact.js';
import { within } from '../within.js';
import { startWorker } from '../queue/worker.js';
import type { CommandContext } from './local.js';

/**
 * Opens the queues for one command, after one plain connection attempt: a wrong password,
 * an untrusted certificate or an unreachable server is a clear error, not a command that
 * waits forever while BullMQ reconnects.
 */
async function withQueues<T>(ctx: CommandContext, fn: (queues: Queues) => Promise<T>): Promise<T> {
  const config = queueConfig(ctx.settings);
  await checkRedis(config);
  const queues = openQueues(config, (err) => ctx.log.warn({ err: err.message }, 'Redis connection error'));
  try {
    return await fn(queues);
  } finally {
    await queues.close();
  }
}

/** nightscore worker: consume runs and chunks until SIGTERM/SIGINT. */
export async function workerCommand(ctx: CommandContext, opts: { concurrency?: string; port?: string; host?: string; jobsDir?: string; ui?: string | true }): Promise<number> {
  // A worker's log is its only output: on a terminal too, it says what it does.
  if (ctx.settings.NIGHTSCORE_LOG_LEVEL === undefined) ctx.log.level = 'info';
  // Every setting was checked before the command started (cli.ts); the options are checked here, before anything starts.
  const config = queueConfig(ctx.settings);
  const timeoutMs = ctx.settings.NIGHTSCORE_SHUTDOWN_TIMEOUT_MS;
  const port = opts.port === undefined ? ctx.settings.NIGHTSCORE_HTTP_PORT : optionInteger('--port', opts.port, { min: 0, max: 65_535, unit: 'port' });
  const concurrency = optionInteger('--concurrency', opts.concurrency, { min: 1, max: 1_024, unit: 'threads' });
  const allowed = ctx.settings.NIGHTSCORE_HTTP_ALLOWED_HOSTS;
  const uiPort = opts.ui === true ? 8080 : optionInteger('--ui', opts.ui, { min: 0, max: 65_535, unit: 'port' });
  // A rejected promise in the worker's own plumbing is a bug, but one that must not take the
  // other chunks of this process down with it: say so loudly and keep serving.
  process.on('unhandledRejection', (reason) => {
    ctx.log.error({ err: reason instanceof Error ? { message: reason.message, stack: reason.stack } : String(reason) }, 'unhandled rejection (a bug in nightscore; please report it): the worker goes on');
  });
  // Listen for signals before anything starts: a SIGTERM that lands between "worker started"
  // and a later listener would otherwise kill the process outright, mid-start. Whatever the
  // state of Redis, storage or the health server, the process is gone by the timeout.
  let signalled: string | undefined;
  let stop: ((signal: string) => void) | undefined;
  const onSignal = (signal: string) => {
    if (!signalled) {
      setTimeout(() => {
        ctx.log.warn({ signal, timeout_ms: timeoutMs }, 'shutdown timed out: exiting; running chunks are taken over by other workers');
        process.exit(0);
      }, timeoutMs).unref();
    }
    signalled ??= signal;
    stop?.(signal);
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  const host = opts.host ?? ctx.settings.NIGHTSCORE_HTTP_HOST;
  // --ui: the read-only web UI on the worker's address, started first, so that a missing token stops the worker before it takes work.
  const ui = uiPort === undefined ? undefined : await (await import('../ui/server.js')).startUiServer({ port: uiPort, host, jobsDir: opts.jobsDir, config, token: ctx.settings.NIGHTSCORE_UI_TOKEN, log: ctx.log });
  const worker = await startWorker(config, { concurrency, port, host, allowedHosts: allowed, jobsDir: opts.jobsDir, shutdownTimeoutMs: timeoutMs }, ctx.log).catch(async (err: unknown) => {
    await ui?.close();
    throw err;
  });
  await new Promise<void>((resolve) => {
    stop = (signal: string) => {
      ctx.log.info({ signal }, 'stopping: no new work; finishing or releasing running chunks');
      worker.close().finally(() => ui?.close()).then(resolve, resolve);
    };
    if (signalled) stop(signalled);
  });
  // Everything is closed; do not let a lingering handle keep a stopped pod alive.
  setTimeout(() => process.exit(0), 1_000).unref();
  return 0;
}

/** nightscore schedule sync: one job scheduler per job file with a schedule; with --watch, again on every change. */
export async function scheduleSyncCommand(ctx: CommandContext, dir: string, opts: { dryRun?: boolean; prune?: boolean; watch?: boolean } = {}): Promise<number> {
  if (opts.watch) return watchSchedules(ctx, dir, opts);
  // Every file is read and checked before Redis is touched: nothing is half-applied.
  const jobs = await loadJobsDir(dir);
  const result = await withQueues(ctx, (queues) => syncSchedules(queues, jobs, { dir, ...opts }));
  process.stdout.write(`${syncLines(result, opts.dryRun).join('\n')}\n`);
  return 0;
}

function syncLines(result: Awaited<ReturnType<typeof syncSchedules>>, dryRun: boolean | undefined): string[] {
  const would = dryRun ? 'would be ' : '';
  const lines = [`${dryRun ? 'dry run: ' : ''}schedulers ${would}upserted: ${result.upserted.join(', ') || '(none)'}`];
  if (result.removed.length) lines.push(`${would}removed: ${result.removed.join(', ')}`);
  if (result.leftAlone.length) lines.push(`left alone (job files in other folders; --prune removes them): ${result.leftAlone.map((l) => `${l.id}${l.file ? ` (${l.file})` : ''}`).join(', ')}`);
  return lines;
}

/**
 * schedule sync --watch: the scheduler process of a deployment. Syncs at start, then whenever
 * the folder's job files change (a Kubernetes ConfigMap update swaps them all at once), until
 * SIGTERM. It polls the files' contents rather than watching events: a mounted ConfigMap
 * changes by a symlink swap that file watchers report unevenly. A folder that stops
 * validating keeps the schedules of its last good state (and says why) until it is fixed.
 */
async function watchSchedules(ctx: CommandContext, dir: string, opts: { dryRun?: boolean; prune?: boolean }): Promise<number> {
  if (ctx.settings.NIGHTSCORE_LOG_LEVEL === undefined) ctx.log.level = 'info';
  const everyMs = ctx.settings.NIGHTSCORE_SCHEDULE_WATCH_MS;
  // The first sync must work (a bad folder or Redis is the deployment's error to see at once).
  // The files are fingerprinted before they are read: a change in between is synced again.
  let synced = await jobsFingerprint(dir);
  const first = await loadJobsDir(dir);
  const config = queueConfig(ctx.settings);
  await checkRedis(config);
  const queues = openQueues(config, (err) => ctx.log.warn({ err: err.message }, 'Redis connection error'));
  let stopped = false;
  let wake: () => void = () => undefined;
  let onStop: () => void = () => undefined;
  // A sync waiting for a Redis that is down must not hold a SIGTERM up: it gives way to it.
  const stopping = new Promise<void>((resolve) => (onStop = resolve));
  const stop = () => {
    stopped = true;
    wake();
    onStop();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const untilStopped = async <T>(work: Promise<T>): Promise<T | undefined> => Promise.race([work, stopping.then(() => undefined)]);
  try {
    const result = await untilStopped(syncSchedules(queues, first, { dir, ...opts }));
    if (result) ctx.log.info({ dir, lines: syncLines(result, opts.dryRun) }, 'schedules synced; watching the job files');
    let reported: string | undefined;
    while (!stopped) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, everyMs).unref();
      });
      if (stopped) break;
      try {
        const now = await jobsFingerprint(dir);
        if (now === synced) continue;
        const result = await untilStopped(syncSchedules(queues, await loadJobsDir(dir), { dir, ...opts }));
        if (!result) break;
        synced = now;
        reported = undefined;
        ctx.log.info({ dir, lines: syncLines(result, opts.dryRun) }, 'job files changed: schedules synced');
      } catch (err) {
        const e = toNightscoreError(err);
        // Said once per problem, not every few seconds.
        if (e.message !== reported) ctx.log.error({ err: e.toJSON() }, 'job files changed but cannot be synced; the schedules stay as they were');
        reported = e.message;
      }
    }
  } finally {
    await within(queues.close(), 2_000);
  }
  ctx.log.info('schedule watch stopped');
  return 0;
}

/** The names and contents of a folder's job files, hashed: what a re-sync depends on. */
async function jobsFingerprint(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort()) hash.update(name).update('\0').update(await readFile(path.join(dir, name))).update('\0');
  return hash.digest('hex');
}

/** Enqueued work waits for a worker: say so when none is connected to this queue. */
async function warnIfNoWorker(queues: Queues): Promise<void> {
  if ((await queues.runs.getWorkersCount()) > 0) return;
  process.stderr.write(`nightscore: warning: no worker is connected to this queue (${redactSecrets(queues.config.redisUrl)}, prefix ${queues.config.prefix}); the run waits until one starts (nightscore worker)\n`);
}

/**
 * Follows a backfill to its end: a progress line on a terminal, a line per change otherwise.
 * Exit 1 if a date failed, was cancelled or interrupted. A record that vanishes meanwhile was
 * lost by the queue: its dates are listed as their output folders say, and BACKFILL_LOST thrown.
 */
async function followBackfill(ctx: CommandContext, queues: Queues, id: string): Promise<number> {
  let lastLine = '';
  let record = await getBackfill(queues, id);
  for (;;) {
    const found = await findBackfill(queues, id);
    if (!found) {
      if (ctx.interactive) process.stderr.write('\n');
      const { dates, error } = await lostBackfill(queues, record);
      process.stdout.write(`${formatStatus(dates)}\n`);
      throw error;
    }
    record = found;
    const progress = await backfillProgress(queues, record);
    const line = progressLine(progress);
    if (ctx.interactive) process.stderr.write(`\r\x1b[2K${line}`);
    else if (line !== lastLine) process.stderr.write(`${line}\n`);
    lastLine = line;
    if (progress.done) {
      if (ctx.interactive) process.stderr.write('\n');
      const unfinished = progress.dates.filter((d) => UNFINISHED.includes(d.state));
      process.stderr.write(unfinished.map((d) => `${unfinishedLine(d)}\n`).join(''));
      return unfinished.length > 0 ? 1 : 0;
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** The states that make a followed backfill exit 1. */
const UNFINISHED: string[] = ['failed', 'cancelled', 'interrupted'];

/** `  2026-09-05  failed  INPUT_MISSING_COLUMN: …`: a date that did not succeed, and why, on one line. */
function unfinishedLine(d: DateStatus): string {
  // A message read back from the queue or a manifest may span lines (a header quoted in it).
  return `  ${d.date}  ${d.state}${d.error ? `  ${d.error.replace(/\s*\n\s*/g, ' ')}` : ''}`;
}

function progressLine(p: BackfillProgress): string {
  const states = statesLine(p.counts);
  const eta = p.eta_ms === null ? '' : `, about ${Math.ceil(p.eta_ms / 60_000)} min left`;
  return `backfill ${p.record.id} (${p.record.job}): ${states} of ${p.dates.length} dates; ${p.rows.scored.toLocaleString('en-US')} rows scored${eta}`;
}

/** nightscore backfill show <id>. */
export async function backfillShowCommand(ctx: CommandContext, id: string, opts: { json?: boolean }): Promise<number> {
  return withQueues(ctx, async (queues) => {
    const progress = await backfillProgress(queues, await getBackfill(queues, id));
    if (opts.json) process.stdout.write(`${JSON.stringify(progress, null, 2)}\n`);
    else {
      const r = progress.record;
      process.stdout.write(
        [
          `${progressLine(progress)}`,
          `created ${r.created_at}; --reprocess ${r.reprocess}${r.model_as_of ? `, --model-as-of ${r.model_as_of}` : ''}${r.max_parallel ? `, at most ${r.max_parallel} at a time` : ''}${r.cancelled_at ? `; cancelled ${r.cancelled_at}` : ''}`,
          formatStatus(progress.dates),
        ].join('\n') + '\n',
      );
    }
    return 0;
  });
}

/** nightscore backfill cancel <id>. */
export async function backfillCancelCommand(ctx: CommandContext, id: string): Promise<number> {
  return withQueues(ctx, async (queues) => {
    const { removed, running, finished } = await cancelBackfill(queues, id);
    const ended = finished.length ? `; ${finished.length} had already finished (${finished.map((f) => `${f.date} ${f.state}`).join(', ')})` : '';
    process.stdout.write(`backfill ${id} cancelled: ${removed.length} queued date(s) removed${removed.length ? ` (${removed.join(', ')})` : ''}; ${running.length} running date(s) finish${running.length ? ` (${running.join(', ')})` : ''}${ended}\n`);
    return 0;
  });
}

/** nightscore backfills: the recent backfills. */
export async function backfillListCommand(ctx: CommandContext, opts: { json?: boolean }): Promise<number> {
  return withQueues(ctx, async (queues) => {
    const all = await Promise.all((await listBackfills(queues)).slice(0, 50).map((r) => backfillProgress(queues, r).catch(() => undefined)));
    const shown = all.filter((p): p is BackfillProgress => p !== undefined);
    if (opts.json) process.stdout.write(`${JSON.stringify(shown.map((p) => ({ ...p.record, counts: p.counts, done: p.done })), null, 2)}\n`);
    else if (shown.length === 0) process.stdout.write('no backfills on this queue\n');
    else {
      process.stdout.write(`${formatTable(['ID', 'JOB', 'DATES', 'CREATED', 'STATES'], shown.map((p) => [p.record.id, p.record.job, `${p.record.enqueued[0] ?? '-'}..${p.record.enqueued.at(-1) ?? '-'} (${p.record.enqueued.length})`, p.record.created_at, statesLine(p.counts) || '-']))}\n`);
    }
    return 0;
  });
}

/** nightscore schedule list: every schedule, its next fire, its last run's state. */
export async function scheduleListCommand(ctx: CommandContext, opts: { json?: boolean }): Promise<number> {
  const rows = await withQueues(ctx, (queues) => listSchedules(queues));
  if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  else if (rows.length === 0) process.stdout.write('no schedules on this queue (nightscore schedule sync <jobs-dir> creates them)\n');
  else process.stdout.write(`${formatTable(['JOB', 'CRON', 'TZ', 'NEXT FIRE', 'LAST RUN', 'PAUSED'], rows.map((r) => [r.job, r.cron, r.tz, r.next ?? '-', r.last ? `${r.last.date} ${r.last.state}` : '-', r.paused ? 'yes' : 'no']))}\n`);
  return 0;
}

/** nightscore schedule pause|resume <job>. */
export async function schedulePauseCommand(ctx: CommandContext, job: string, paused: boolean): Promise<number> {
  await withQueues(ctx, (queues) => setPaused(queues, job, paused));
  process.stdout.write(`${job}: schedule ${paused ? 'paused (fires enqueue nothing until resume; missed dates are not caught up)' : 'resumed'}\n`);
  return 0;
}

/** nightscore run --queue: enqueue one date, and with --wait follow it to the end. */
export async function enqueueCommand(ctx: CommandContext, jobFile: string, opts: { date: string; wait?: boolean; json?: boolean; force?: boolean }): Promise<number> {
  const date = parseLogicalDate(opts.date);
  const job = await loadJob(jobFile);
  return withQueues(ctx, async (queues) => {
    const { id, added, was } = await submitRun(queues, job, date, { force: opts.force });
    const told = added ? (was === 'unknown' ? 'enqueued' : `enqueued again (it had ${was === 'completed' ? 'succeeded' : was})`) : was === 'completed' ? 'already succeeded (--force runs it again)' : `already queued (${was})`;
    process.stderr.write(`${told}: ${id}\n`);
    if (added) await warnIfNoWorker(queues);
    if (!opts.wait) return 0;
    const events = new QueueEvents(queues.runs.name, { connection: connectionOptions(queues.config), prefix: queues.config.prefix });
    events.on('error', (err) => ctx.log.warn({ err: err.message }, 'Redis connection error'));
    // Ctrl-C stops following, not the run: it is the workers'.
    const onSignal = () => {
      process.stderr.write(`${ctx.interactive ? '\r\x1b[2K' : ''}nightscore: stopped following ${id}; the run goes on on the workers (nightscore status ${jobFile} --from ${date} --to ${date})\n`);
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    const started = Date.now();
    const ticker = ctx.interactive
      ? setInterval(() => {
          void readStatus(queues, job, [date]).then(([s]) => {
            if (!s) return;
            const secs = (Date.now() - started) / 1000;
            const rows = s.rows?.read ?? 0;
            const chunks = s.chunks ? `${s.chunks.done}/${s.chunks.total} chunks, ` : '';
            process.stderr.write(`\r\x1b[2K${id}: ${s.waiting_for_input ? 'waiting for input' : s.state} ${chunks}${rows.toLocaleString('en-US')} rows (${Math.round(rows / Math.max(secs, 0.001)).toLocaleString('en-US')} rows/s)`);
          }, () => undefined);
        }, 1000)
      : undefined;
    try {
      const run = await queues.runs.getJob(id);
      // The queue's events can be missed (a reconnect), and a run removed meanwhile (a backfill
      // cancelled, a --force elsewhere) never finishes: its state is looked at too.
      let gone: NodeJS.Timeout | undefined;
      const removed = new Promise<void>((resolve) => {
        gone = setInterval(() => void queues.runs.getJobState(id).then((s) => ['completed', 'failed', 'unknown'].includes(s) && resolve(), () => undefined), 1_000);
      });
      await Promise.race([run?.waitUntilFinished(events).catch(() => undefined), removed]).finally(() => clearInterval(gone));
    } finally {
      if (ticker) clearInterval(ticker);
      if (ctx.interactive) process.stderr.write('\r\x1b[2K');
      process.off('SIGINT', onSignal);
      await events.close();
    }
    const [status] = await readStatus(queues, job, [date]);
    process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatus([status!])}\n`);
    return status?.state === 'succeeded' ? 0 : 1;
  });
}

/** nightscore backfill: one run per date in a range. */
export async function backfillCommand(
  ctx: CommandContext,
  jobFile: string,
  opts: { from?: string; to?: string; days?: string; reprocess: string; maxParallelRuns?: string; dryRun?: boolean; reverse?: boolean; modelAsOf?: string; wait?: boolean },
): Promise<number> {
  const days = optionInteger('--days', opts.days, { min: 1, max: 3_660, unit: 'days' });
  if (days !== undefined && opts.from !== undefined) {
    throw new NightscoreError('BAD_OPTION', 'backfill takes --from or --days, not both', { hint: 'For example: --from 2026-03-01 --to 2026-03-31, or --days 7 (the week ending at --to, by default the last logical date of the job).' });
  }
  if (days === undefined && (opts.from === undefined || opts.to === undefined)) {
    throw new NightscoreError('BAD_OPTION', `backfill needs --from and --to, the first and last dates (or --days)`, { hint: 'For example: nightscore backfill jobs/churn.yaml --from 2026-03-01 --to 2026-03-31, or --days 7 for the week ending yesterday' });
  }
  // The options are checked before the job file is read and Redis is asked anything (decideBackfill checks them again).
  checkBackfillOptions(opts);
  const maxParallel = optionInteger('--max-parallel-runs', opts.maxParallelRuns, { min: 1, max: 100_000, unit: 'runs' });
  const job = await loadJob(jobFile);
  checkModelAsOfFits(job, opts.modelAsOf);
  // --days without --to ends at the job's last logical date: yesterday for a nightly job with lag 1, in its schedule's zone.
  const last = () => logicalDateFor(Date.now(), job.schedule?.tz ?? 'UTC', job.schedule?.lag ?? 1);
  const dates = days === undefined ? dateRange(opts.from!, opts.to!) : daysEnding(opts.to ?? last(), days);
  if (opts.reverse) dates.reverse();
  return withQueues(ctx, async (queues) => {
    const plan = await decideBackfill(queues, job, dates, { reprocess: opts.reprocess, modelAsOf: opts.modelAsOf, maxParallel });
    const { decisions } = plan;
    for (const d of decisions) process.stdout.write(`${d.date}  ${d.enqueue ? 'enqueue' : 'skip   '}  ${d.reason}\n`);
    if (opts.dryRun) {
      process.stdout.write(`dry run: ${decisions.filter((d) => d.enqueue).length} of ${dates.length} dates would be enqueued\n`);
      return 0;
    }
    const { id, added } = await startBackfill(queues, plan);
    process.stdout.write(`backfill ${id}: ${added} of ${dates.length} dates enqueued${maxParallel ? ` (at most ${maxParallel} run${maxParallel === 1 ? '' : 's'} at a time)` : ''}\n`);
    if (added > 0) await warnIfNoWorker(queues);
    if (!opts.wait) return 0;
    return followBackfill(ctx, queues, id);
  });
}

/**
 * nightscore status: one line per date, per job, under a header naming the Redis and the
 * output location, with totals per state; exit 1 when a date in range failed.
 */
export async function statusCommand(ctx: CommandContext, jobFile: string | undefined, opts: { from?: string; to?: string; json?: boolean; jobsDir?: string; watch?: boolean }): Promise<number> {
  const jobs = jobFile ? [await loadJob(jobFile)] : await loadJobsDir(opts.jobsDir ?? 'jobs');
  const to = opts.to ?? yesterday();
  const from = opts.from ?? new Date(Date.parse(`${parseLogicalDate(to)}T00:00:00Z`) - 6 * 86_400_000).toISOString().slice(0, 10);
  const dates = dateRange(from, to);
  const config = queueConfig(ctx.settings);
  return withQueues(ctx, async (queues) => {
    for (;;) {
      const all = await Promise.all(jobs.map(async (job) => ({ job, rows: await readStatus(queues, job, dates) })));
      if (opts.json) {
        const json = jobFile ? all[0]!.rows : Object.fromEntries(all.map(({ job, rows }) => [job.name, rows]));
        process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      } else {
        const text = [`redis   ${redactSecrets(config.redisUrl)}  (queue prefix ${config.prefix})`];
        for (const { job, rows } of all) text.push('', `${job.name}  output ${job.output.uri}  (${job.file})`, formatStatus(rows), totals(rows));
        if (opts.watch && ctx.interactive) process.stdout.write('\x1b[H\x1b[2J');
        process.stdout.write(`${text.join('\n')}\n`);
      }
      const rows = all.flatMap((a) => a.rows);
      const busy = rows.some((r) => r.state === 'running' || r.state === 'scheduled');
      if (!opts.watch || !busy) return rows.some((r) => r.state === 'failed' || r.state === 'interrupted') ? 1 : 0;
      await new Promise((r) => setTimeout(r, 2_000));
    }
  });
}

/** `totals: 5 succeeded · 1 failed · 1 missing`, in a fixed order. */
function totals(rows: DateStatus[]): string {
  const counts: Record<string, number> = {};
  for (const r of rows) counts[r.state] = (counts[r.state] ?? 0) + 1;
  return `totals  ${statesLine(counts)} (${rows.length} date${rows.length === 1 ? '' : 's'})`;
}
