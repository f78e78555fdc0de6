/**
 * What every UI request reads through: the queues (read only), the output cache, the stale
 * checker and the job files, with Redis calls bounded in time. BullMQ's connections wait for
 * a Redis that is down rather than fail (a worker must outlive a restart), so a page asks
 * once whether the connection is up and otherwise renders what the output folders say.
 */
import { NightscoreError, toNightscoreError, type ErrorRecord } from '../errors.js';
import { loadJobsDir, type JobDefinition } from '../job/load.js';
import type { Queues } from '../queue/queues.js';
import { redactSecrets } from '../redact.js';
import { ChartCache } from './charts.js';
import { OutputCache, type OutputCacheOptions } from './output.js';
import { StaleChecker } from './stale.js';

/** Something the page could not read, and where: shown as a banner with the error's code and hint. */
export interface Notice {
  /** What it concerns: "redis", a job name, "job files". */
  scope: string;
  error: ErrorRecord;
}

export interface UiContextOptions {
  jobsDir: string;
  queues: Queues;
  /** How long a Redis call may take before the page goes on without it. @defaultValue 2000 ms */
  redisTimeoutMs?: number;
  /** How long the job files are kept before the folder is read again. @defaultValue 10 s */
  jobsTtlMs?: number;
  outputs?: OutputCacheOptions;
}

export class UiContext {
  readonly queues: Queues;
  readonly outputs: OutputCache;
  readonly stale = new StaleChecker();
  readonly charts = new ChartCache();
  readonly redisTimeoutMs: number;
  private readonly jobsDir: string;
  private readonly jobsTtlMs: number;
  private jobs: { at: number; list: JobDefinition[]; problem?: Notice } | undefined;
  private loading: Promise<void> | undefined;
  /** The queue's Redis client, once it first connected. */
  private client: { status?: string } | undefined;

  constructor(opts: UiContextOptions) {
    this.queues = opts.queues;
    this.outputs = new OutputCache(opts.outputs);
    this.jobsDir = opts.jobsDir;
    this.redisTimeoutMs = opts.redisTimeoutMs ?? 2_000;
    this.jobsTtlMs = opts.jobsTtlMs ?? 10_000;
  }

  /**
   * Starts from the job files as read at start (an invalid folder is the caller's error: the
   * server does not start), and gives Redis the Redis timeout to connect: pages served before
   * it has are told it is unavailable at once, rather than each waiting for it.
   */
  async init(jobs: JobDefinition[]): Promise<void> {
    this.jobs = { at: Date.now(), list: jobs };
    const connected = this.queues.runs.getBackend().client.then((c) => void (this.client = c as { status?: string }));
    await this.bounded(connected, 'connecting').catch(() => undefined);
  }

  /**
   * The job files, read again every `jobsTtlMs`. A folder that stops validating keeps its
   * last good jobs on the page, with a notice saying why.
   */
  async jobList(): Promise<{ jobs: JobDefinition[]; notices: Notice[] }> {
    if (!this.jobs || Date.now() - this.jobs.at > this.jobsTtlMs) {
      this.loading ??= loadJobsDir(this.jobsDir)
        .then(
          (list) => void (this.jobs = { at: Date.now(), list }),
          (err: unknown) => void (this.jobs = { at: Date.now(), list: this.jobs?.list ?? [], problem: { scope: 'job files', error: toNightscoreError(err).toJSON() } }),
        )
        .finally(() => (this.loading = undefined));
      await this.loading;
    }
    return { jobs: this.jobs!.list, notices: this.jobs!.problem ? [this.jobs!.problem] : [] };
  }

  async job(name: string): Promise<JobDefinition> {
    const found = (await this.jobList()).jobs.find((j) => j.name === name);
    if (!found) {
      throw new NightscoreError('UI_NOT_FOUND', `no job named "${name}" in ${this.jobsDir}`, { hint: 'The jobs are listed on the front page and at /api/jobs.' });
    }
    return found;
  }

  /**
   * Resolves when the Redis connection is up; otherwise a REDIS_UNAVAILABLE that says the
   * page shows the output folders alone. Nothing is sent while the connection is down, so
   * pages viewed during an outage do not queue up commands for when it returns.
   */
  async redisReady(): Promise<void> {
    if (!this.client) throw this.unavailable('not connected yet');
    // ioredis's own state: "reconnecting" while Redis is away.
    if (this.client.status !== 'ready') throw this.unavailable(`the connection is ${this.client.status ?? 'not open'}`);
  }

  /** `work`, or REDIS_UNAVAILABLE once it has taken longer than `ms` (the Redis timeout). */
  async bounded<T>(work: Promise<T>, what: string, ms = this.redisTimeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.unavailable(`${what} took over ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private unavailable(why: string): NightscoreError {
    return new NightscoreError('REDIS_UNAVAILABLE', `Redis at ${redactSecrets(this.queues.config.redisUrl)} does not answer (${why})`, {
      hint: 'Check that Redis runs and that NIGHTSCORE_REDIS_URL names it. Meanwhile the page shows what the output folders say: queued and running dates, and the queue panels, are missing.',
    });
  }
}

/** An error as a notice of `scope`. */
export function noticeOf(scope: string, err: unknown): Notice {
  return { scope, error: toNightscoreError(err).toJSON() };
}
