import type { RedisOptions } from 'bullmq';
import { parseRedisUrl, readRedisCaFile, type Settings } from '../settings.js';

/** Where the queue lives and how it behaves; every field comes from the settings (docs/operations.md, "Queue settings"). */
export interface QueueConfig {
  /** Redis URL: redis://, rediss:// (TLS), with user:password when the server needs them. */
  redisUrl: string;
  /** PEM file of the CA that signed a `rediss://` server's certificate, when the system CAs do not know it. */
  redisCaFile: string | undefined;
  /** Key prefix for every BullMQ key; one prefix per deployment (or per test). */
  prefix: string;
  /** How long a worker holds a chunk's lock before another may take it; renewed at half. */
  lockMs: number;
  /** How often workers look for chunks whose lock expired (a crashed worker). */
  stalledIntervalMs: number;
  /** How many times a chunk may stall (its worker died) before it fails. */
  maxStalledCount: number;
  /** Attempts for transient failures (storage 5xx, timeouts), with exponential backoff from backoffMs. */
  attempts: number;
  backoffMs: number;
  /** Finished runs Redis keeps, completed and failed each (oldest trimmed first); manifests keep the rest. */
  keepRuns: number;
}

/** The queue's part of the settings, each checked at start against the form it takes (settings.ts). */
export function queueConfig(settings: Settings): QueueConfig {
  return {
    redisUrl: settings.NIGHTSCORE_REDIS_URL,
    redisCaFile: settings.NIGHTSCORE_REDIS_CA_FILE,
    // BullMQ builds every key as <prefix>:<queue>:…; the setting's form keeps colons and braces out.
    prefix: settings.NIGHTSCORE_QUEUE_PREFIX,
    lockMs: settings.NIGHTSCORE_LOCK_MS,
    stalledIntervalMs: settings.NIGHTSCORE_STALLED_INTERVAL_MS,
    maxStalledCount: settings.NIGHTSCORE_MAX_STALLED,
    attempts: settings.NIGHTSCORE_ATTEMPTS,
    backoffMs: settings.NIGHTSCORE_BACKOFF_MS,
    keepRuns: settings.NIGHTSCORE_KEEP_RUNS,
  };
}

/**
 * BullMQ connection options from a Redis URL. `maxRetriesPerRequest: null` is what BullMQ
 * requires of worker connections: a command waits for Redis to come back instead of failing
 * the job. `rediss://` connects with TLS, verifying the server against the system CAs, or
 * against NIGHTSCORE_REDIS_CA_FILE alone when it is set.
 */
export function connectionOptions(config: QueueConfig): RedisOptions {
  const url = parseRedisUrl(config.redisUrl);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(url.port || 6379),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: config.redisCaFile ? { ca: readRedisCaFile(config.redisCaFile) } : {} } : {}),
    maxRetriesPerRequest: null,
  };
}

export const QUEUES = { runs: 'runs', chunks: 'chunks' } as const;

/** A run's id is its job and date, so the same run is never enqueued twice while it exists. */
export function runId(job: string, date: string): string {
  return `${job}@${date}`;
}

/** The output lock owner of a queued run: every try of the run on this queue is the same owner. */
export function runLockOwner(prefix: string, id: string): string {
  return `queue:${prefix}:${id}`;
}

/** Chunk ids include the attempt, so a re-run of a date is not mistaken for its earlier attempt. */
export function chunkId(run: string, attempt: string, index: number): string {
  return `${run}.${attempt.slice(0, 8)}.c${index}`;
}

export function schedulerId(job: string): string {
  return `job.${job}`;
}
