import { Worker, type Job } from 'bullmq';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { decodeFailure, NightscoreError } from '../errors.js';
import { loadJobsDir } from '../job/load.js';
import { startHealthServer } from '../observe/http.js';
import { redactSecrets } from '../redact.js';
import { within } from '../within.js';
import { createMetrics, MAX_DRIFT_COLUMNS } from '../observe/metrics.js';
import { topPsi } from '../drift/history.js';
import { judged, type DriftReport } from '../drift/report.js';
import type { ShadowSummary } from '../shadow/report.js';
import { outputLeaseMs } from '../run/lock.js';
import { prepareJob } from '../run/bind.js';
import type { ChunkResult } from '../run/chunk-result.js';
import { ChunkThreadPool } from '../run/thread-pool.js';
import { chunkProcessor, type ChunkJobData } from './chunk-processor.js';
import { connectionOptions, QUEUES, type QueueConfig } from './config.js';
import { queueBacklog, type QueueBacklog } from './backlog.js';
import { keepRunLeases } from './lease-keeper.js';
import { openQueues, type Queues } from './queues.js';
import { checkRedis } from './redis-check.js';
import { runProcessor, type RunSummary } from './run-processor.js';

export interface WorkerOptions {
  /**
   * Chunks scored at once, each in its own worker thread with its own model session.
   * @defaultValue the number of CPUs
   */
  concurrency?: number;
  /** Port of /healthz, /readyz and /metrics; 0 picks a free one. @defaultValue 9464 */
  port?: number;
  /** Address the health server binds to. @defaultValue 127.0.0.1 */
  host?: string;
  /** Host names the health server answers for besides loopback names and IP literals. @defaultValue NIGHTSCORE_HTTP_ALLOWED_HOSTS */
  allowedHosts?: readonly string[];
  /** Job files whose models /readyz checks load. */
  jobsDir?: string;
  /** How long SIGTERM waits for running chunks before releasing them to other workers. @defaultValue 30 s */
  shutdownTimeoutMs?: number;
}

export interface RunningWorker {
  port: number;
  /** Stops taking work, lets running chunks finish (up to the timeout), then closes everything. */
  close(): Promise<void>;
}

/**
 * Starts a queue worker: runs (plan and commit, on the main thread) and chunks (scoring,
 * in worker threads so parsing and inference never block the lock renewal here).
 */
export async function startWorker(config: QueueConfig, opts: WorkerOptions, log: Logger): Promise<RunningWorker> {
  // Every job file is checked once before any work is taken: two with one name share run ids.
  if (opts.jobsDir) await loadJobsDir(opts.jobsDir);
  await checkRedisAtStart(config, log);
  const queues = openQueues(config, (err) => log.error({ err: err.message }, 'queue error'));
  const connection = connectionOptions(config);
  const common = { connection, prefix: config.prefix, lockDuration: config.lockMs, stalledInterval: config.stalledIntervalMs, maxStalledCount: config.maxStalledCount };
  const concurrency = opts.concurrency ?? availableParallelism();
  const metrics = createMetrics(async () => {
    const out: Array<{ queue: string; state: string; count: number }> = [];
    for (const q of [queues.runs, queues.chunks]) {
      const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'waiting-children', 'failed', 'completed', 'prioritized');
      for (const [state, count] of Object.entries(counts)) out.push({ queue: q.name, state, count });
    }
    return out;
  });

  // The health server comes first: a worker that cannot serve /healthz and /metrics (its port
  // is taken) stops before it takes any work, rather than run unseen.
  let health: Awaited<ReturnType<typeof startHealthServer>>;
  try {
    health = await startHealthServer({
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 9464,
      allowedHosts: opts.allowedHosts,
      registry: metrics.registry,
      notReady: () => notReady(queues.runs, opts.jobsDir),
      backlog: () => boundedBacklog(queues),
    });
  } catch (err) {
    metrics.stop();
    await queues.close();
    throw err;
  }

  // The status the run was judged on (with drift.baseline previous, against the earlier dates), as the manifest says it.
  const onDrift = (job: string, report: DriftReport) => metrics.recordDrift(job, { status: judged(report).status, psi: topPsi(report, MAX_DRIFT_COLUMNS) });
  const onShadow = (job: string, shadow: ShadowSummary) => metrics.recordShadow(job, shadow.challengers);
  const runs = new Worker(QUEUES.runs, runProcessor(queues, log, onDrift, onShadow), { ...common, concurrency: 4 });
  const pool = new ChunkThreadPool(concurrency);
  const chunks = new Worker(QUEUES.chunks, chunkProcessor(pool, log), { ...common, concurrency });
  const started = new Map<string, number>();
  chunks.on('active', (job: Job) => {
    started.set(job.id!, Date.now());
    metrics.chunksInFlight.inc();
  });
  chunks.on('completed', (job: Job, result: ChunkResult) => {
    metrics.chunksInFlight.dec();
    metrics.chunkSeconds.observe({ job: (job.data as ChunkJobData).spec.run.job }, (Date.now() - (started.get(job.id!) ?? Date.now())) / 1000);
    started.delete(job.id!);
    const { rows } = result.stats;
    const labels = { job: (job.data as ChunkJobData).spec.run.job };
    metrics.rowsRead.inc(labels, rows.read);
    metrics.rowsScored.inc(labels, rows.scored);
    metrics.rowsRejected.inc(labels, rows.rejected);
    log.info({ chunk: job.id, rows }, 'chunk scored');
  });
  // A failure reason is the error's record (queue/errors.ts): counted and logged by its code.
  const countFailure = (what: 'chunk' | 'run', job: Job | undefined, err: Error) => {
    const e = decodeFailure(err.message);
    metrics.failures.inc({ job: jobOf(job), reason: e.code });
    log.warn({ [what]: job?.id, attempts: job?.attemptsMade, err: e.toJSON() }, `${what} failed`);
  };
  chunks.on('failed', (job: Job | undefined, err: Error) => {
    if (job && started.delete(job.id!)) metrics.chunksInFlight.dec();
    countFailure('chunk', job, err);
  });
  runs.on('failed', (job: Job | undefined, err: Error) => {
    countFailure('run', job, err);
  });
  runs.on('completed', (job: Job, result: unknown) => {
    const summary = result as RunSummary | undefined;
    if (job.name !== 'run' || summary?.status !== 'succeeded') return;
    metrics.lastSuccess.set({ job: jobOf(job) }, Date.now() / 1000);
    if (summary.duration_ms != null) metrics.runSeconds.set({ job: jobOf(job) }, summary.duration_ms / 1000);
  });
  for (const w of [runs, chunks]) w.on('error', (err) => log.error({ err: err.message }, 'worker error'));

  const stopLeases = keepRunLeases(queues, outputLeaseMs(), log);
  log.info({ port: health.port, concurrency, prefix: config.prefix, redis: redactSecrets(config.redisUrl) }, 'worker started');

  let closing: Promise<void> | undefined;
  return {
    port: health.port,
    close: () =>
      (closing ??= (async () => {
        // Every step is bounded: with Redis or storage gone, BullMQ's and ioredis's closes
        // wait for a connection that never comes. The graceful part gets three quarters of
        // the timeout; what is still running then is released (its chunk lock lapses, another
        // worker takes it over as stalled, and its deterministic part is overwritten).
        const timeoutMs = opts.shutdownTimeoutMs ?? 30_000;
        const deadline = Date.now() + timeoutMs;
        const graceful = await within(Promise.all([runs.close(), chunks.close()]), timeoutMs * 0.75);
        if (!graceful) await within(Promise.all([runs.close(true), chunks.close(true)]), (deadline - Date.now()) / 3);
        stopLeases();
        metrics.stop();
        health.server.closeAllConnections();
        await within(Promise.all([pool.close(), queues.close(), new Promise((resolve) => health.server.close(resolve))]), deadline - Date.now());
        log.info({ graceful }, 'worker stopped');
      })()),
  };
}

/**
 * A wrong password, an untrusted certificate or a bad URL never fixes itself: the worker
 * stops with the reason. An unreachable Redis may be starting alongside the worker, so the
 * worker starts anyway and BullMQ connects when Redis comes (/readyz says so meanwhile).
 */
async function checkRedisAtStart(config: QueueConfig, log: Logger): Promise<void> {
  try {
    await checkRedis(config);
  } catch (err) {
    if (!(err instanceof NightscoreError) || err.code !== 'REDIS_UNAVAILABLE') throw err;
    log.warn({ err: err.message }, 'Redis is not reachable yet; waiting for it');
  }
}

async function notReady(queue: { getJobCounts(...states: string[]): Promise<unknown> }, jobsDir: string | undefined): Promise<string | undefined> {
  // Worker connections wait for Redis rather than fail, so bound the check in time.
  const timeout = new Promise<string>((resolve) => setTimeout(resolve, 2_000, 'Redis did not answer within 2 s').unref());
  const redis = queue.getJobCounts('waiting').then(
    () => undefined,
    (err: Error) => `Redis: ${err.message}`,
  );
  const problem = await Promise.race([redis, timeout]);
  if (problem) return problem;
  if (!jobsDir) return undefined;
  try {
    for (const job of await loadJobsDir(jobsDir)) {
      try {
        await prepareJob(job);
      } catch (err) {
        return `${path.basename(job.file)}: ${(err as Error).message}`;
      }
    }
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/**
 * The backlog, or REDIS_UNAVAILABLE after 2 s: the queue's connections wait for Redis rather
 * than fail, and an autoscaler polling during an outage must get an answer, not a socket that
 * never closes (and a command queued for when Redis returns).
 */
async function boundedBacklog(queues: Queues): Promise<QueueBacklog> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NightscoreError('REDIS_UNAVAILABLE', 'Redis did not answer within 2 s: the backlog is unknown', { hint: 'Check that Redis runs and that NIGHTSCORE_REDIS_URL names it; /readyz says the same.' })), 2_000);
  });
  try {
    return await Promise.race([queueBacklog(queues), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The job name of a run or chunk job: from its spec, else from its id (`<job>@<date>`). */
function jobOf(job: Job | undefined): string {
  const data = job?.data as Partial<ChunkJobData> & { plan?: { spec?: { job?: { name?: string } } } } | undefined;
  return data?.spec?.run.job ?? data?.plan?.spec?.job?.name ?? job?.id?.split('@')[0] ?? 'unknown';
}
